"""Devices and dtypes: the scoring engine and the sampling loop on a GPU and in bfloat16.

Tests marked ``cuda`` need a CUDA GPU and are skipped elsewhere with the reason "CUDA not
available" (tests/conftest.py); ``bench/gpu_check.sh`` runs them with ``-m cuda``. The
bfloat16 tests run on the CPU too (the ``cpu`` parameter), so the dtype path is checked on
every machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

TEXTS = ["The module provides functions for working with files and directories. It returns a list of names, "
         "sorted in arbitrary order, and raises an error when the path does not exist.",
         "def main(argv):\n    parser = make_parser()\n    args = parser.parse_args(argv)\n    return run(args)\n",
         "Short one."]


def micro(device: str, dtype: str | None = None):
    from gpt2guard.family import load_model

    return load_model("micro", "small", device=device, dtype=dtype)


def score(loaded, **kw):
    from gpt2guard.detector import Scorer

    return Scorer(loaded, cache=False, **kw).score(TEXTS)


@pytest.mark.cuda
def test_scoring_on_cuda_equals_scoring_on_cpu(micro_family):
    cpu, gpu = score(micro("cpu")), score(micro("cuda"))
    for a, b in zip(cpu, gpu):
        assert a.n_tokens == b.n_tokens > 0
        np.testing.assert_allclose(b.logp, a.logp, atol=1e-3)
        np.testing.assert_allclose(b.entropy, a.entropy, atol=1e-3)
        np.testing.assert_allclose(b.var_ref, a.var_ref, atol=1e-2)
        assert np.mean(a.rank == b.rank) >= 0.95  # near-ties may order differently


@pytest.mark.cuda
def test_scoring_with_a_reference_model_on_cuda(micro_family):
    from gpt2guard.detector import Scorer
    from gpt2guard.family import load_model

    def pair(device):
        return Scorer(load_model("micro", "medium", device=device), load_model("micro", "small", device=device),
                      cache=False).score(TEXTS)

    for a, b in zip(pair("cpu"), pair("cuda")):
        np.testing.assert_allclose(b.cross_entropy, a.cross_entropy, atol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_weights_score_close_to_float32(micro_family, device):
    """A model cast to bfloat16 scores through the same engine: float32 statistics, close to the
    float32 model's."""
    f32, bf16 = score(micro(device)), score(micro(device, "bfloat16"))
    import torch

    assert next(micro(device, "bfloat16").model.parameters()).dtype == torch.bfloat16
    for a, b in zip(f32, bf16):
        assert b.logp.dtype == np.float32 and np.isfinite(b.logp).all()
        assert np.abs(b.logp - a.logp).mean() < 0.02  # measured on CPU: 0.002, at most 0.009 a token
        np.testing.assert_allclose(b.logp, a.logp, atol=0.2)


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_autocast_scores_close_to_float32(micro_family, device):
    f32, auto = score(micro(device)), score(micro(device), bf16=True)
    for a, b in zip(f32, auto):
        assert b.logp.dtype == np.float32
        np.testing.assert_allclose(b.logp, a.logp, atol=0.1)


def generate(loaded, seeds=(3, 4, 5, 6), length=24):
    from gpt2guard.generator import generate_tokens, parse_sampling

    prompts = [loaded.tokenizer.encode(t) for t in ("def main(argv):", "", "The parser reads", "x")]
    return generate_tokens(loaded, prompts, length, parse_sampling("top-k=40")[0], list(seeds), batch_size=4,
                           return_logprobs=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_generation_is_reproducible_from_its_seed(micro_family, device, dtype):
    loaded = micro(device, dtype)
    first, again = generate(loaded), generate(loaded)
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert [r.text for r in first] == [r.text for r in again]
    for r in first:
        assert 1 <= r.length <= 24 or r.stop_reason == "eos"
        assert r.logprobs is not None and len(r.logprobs) == r.length
        assert all(lp <= 0.0 for lp in r.logprobs)
    other = generate(loaded, seeds=(7, 8, 9, 10))
    assert [r.token_ids for r in other] != [r.token_ids for r in first]


@pytest.mark.cuda
def test_generation_on_cuda_records_the_device(micro_family):
    records = generate(micro("cuda"))
    assert all(r.kernels.get("device", "").startswith("cuda") for r in records)


@pytest.mark.cuda
def test_generate_cli_runs_on_cuda_and_repeats_itself(micro_family, tmp_path):
    from gpt2guard.cli import main
    from gpt2guard.datasets.sets import open_set

    texts = []
    for run in ("a", "b"):
        out = tmp_path / run
        result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling", "top-k=40",
                                           "--n", "6", "--length", "20", "--device", "cuda", "--out", str(out),
                                           "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.output[result.output.index("["):])
        assert [s["set"] for s in summary] == ["micro-small-k40"]
        texts.append([r.text for r in open_set(out, "micro-small-k40", "train")])
    assert len(texts[0]) == 6 and texts[0] == texts[1]


def test_cuda_marked_tests_are_skipped_with_the_reason_without_a_gpu(tmp_path):
    """The conftest hook: a ``cuda`` test is skipped, and says why, where torch sees no GPU."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import torch

    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    cuda: needs a CUDA GPU\n")
    (tmp_path / "test_marks.py").write_text("import pytest\n\n@pytest.mark.cuda\ndef test_gpu():\n    assert False\n\n"
                                            "def test_cpu():\n    assert True\n")
    run = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    if torch.cuda.is_available():
        assert "1 failed, 1 passed" in run.stdout, run.stdout
    else:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "1 passed, 1 skipped" in run.stdout, run.stdout
        assert "SKIPPED" in run.stdout and "CUDA not available" in run.stdout
