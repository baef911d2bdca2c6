"""The crash paths the fuzzing found or the issue named, each pinned by a test: unknown
devices, damaged detector files, a cache index of the wrong type, a full disk while writing a
set, and option values that make no sense (refused by name, never silently used)."""

from __future__ import annotations

import errno
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.errors import GuardError


def one_line_error(result, *needles):
    """Exit 2 with a single ``Error:`` line holding every needle, and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- devices ------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["tpu", "meta", "xla", "vulkan", "cuda:x", ""])
def test_pick_device_refuses_devices_it_cannot_use(device):
    from gpt2guard.family.load import pick_device

    if device == "":
        assert pick_device(device) in ("cpu", "cuda")
        return
    with pytest.raises(GuardError, match="device"):
        pick_device(device)


def test_pick_device_cuda_index_beyond_the_gpus():
    import torch

    from gpt2guard.family.load import pick_device

    with pytest.raises(GuardError, match="cuda:99"):
        pick_device("cuda:99")
    assert pick_device("cpu") == "cpu"
    if torch.cuda.is_available():
        assert pick_device("cuda:0") == "cuda:0"


@pytest.mark.parametrize("device, needle", [("cuda:99", "cuda:99"), ("tpu", "tpu"), ("meta", "meta"),
                                            ("cuda:-1", "cuda:-1")])
def test_generate_with_an_unknown_device_is_one_line(micro_family, tmp_path, device, needle):
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--n", "1", "--length",
                                       "2", "--device", device, "--out", str(tmp_path / "o")])
    one_line_error(result, needle)
    assert not list((tmp_path / "o").glob("*.jsonl")) if (tmp_path / "o").exists() else True


# --- damaged detector files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfidf_dir(tmp_path_factory):
    from gpt2guard.detector.tfidf import TfidfDetector

    d = tmp_path_factory.mktemp("det")
    texts = [f"plain human words number {i} about files and paths" for i in range(6)] + \
            [f"token token model model sample {i} sample text" for i in range(6)]
    TfidfDetector(min_tokens=2).fit(texts, ["human"] * 6 + ["machine"] * 6).save(d)
    return d


def _npz_bytes(**arrays) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


DAMAGE = {
    "empty detector.json": ("detector.json", b"", "detector.json"),
    "detector.json a list": ("detector.json", b"[]", "JSON object"),
    "detector.json not UTF-8": ("detector.json", b"\xff\xfe{}", "detector.json"),
    "empty model.npz": ("model.npz", b"", "empty"),
    "truncated model.npz": ("model.npz", None, "model.npz"),
    "model.npz a single array": ("model.npz", "npy", "single array"),
    "model.npz missing an array": ("model.npz", "missing", "coef"),
    "model.npz wrong shapes": ("model.npz", "shapes", "damaged"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_score_with_a_damaged_detector_is_one_line(tfidf_dir, tmp_path, case):
    det = tmp_path / "det"
    shutil.copytree(tfidf_dir, det)
    name, content, needle = DAMAGE[case]
    if content is None:
        content = (det / name).read_bytes()[:100]
    elif content == "npy":
        import io

        buf = io.BytesIO()
        np.save(buf, np.zeros(3))
        content = buf.getvalue()
    elif content in ("missing", "shapes"):
        with np.load(det / name) as npz:
            arrays = {k: npz[k] for k in npz.files}
        if content == "missing":
            del arrays["coef"]
        else:
            arrays["coef"] = arrays["coef"][:-1]
        content = _npz_bytes(**arrays)
    (det / name).write_bytes(content)
    doc = tmp_path / "doc.txt"
    doc.write_text("plain human words about files and paths, long enough to judge")
    one_line_error(CliRunner().invoke(main, ["score", str(doc), "--detector", str(det)]), needle)


@pytest.mark.parametrize("key, value", [("vocabulary", None), ("vocabulary", {"a": "x"}), ("threshold", "high"),
                                        ("min_tokens", [1]), ("estimator", 5), ("threshold", None)])
def test_detector_json_with_wrong_types_is_refused(tfidf_dir, tmp_path, key, value):
    from gpt2guard.detector.trained import load_detector

    det = tmp_path / "det"
    shutil.copytree(tfidf_dir, det)
    meta = json.loads((det / "detector.json").read_text())
    meta[key] = value
    (det / "detector.json").write_text(json.dumps(meta))
    if key == "threshold" and value is None:  # an uncalibrated detector is valid: threshold 0
        assert load_detector(det).threshold is None
        return
    with pytest.raises(GuardError, match=key if key != "vocabulary" else "vocabulary"):
        load_detector(det)


# --- the weights-hash index --------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"[]", b'"x"', b"1", b'{"k": 1}', b"\xff", b""])
def test_a_hash_index_of_the_wrong_type_is_rebuilt(micro_family, tmp_path, monkeypatch, content):
    from gpt2guard.family import get_family, resolve_size
    from gpt2guard.family.load import weights_hash

    path = resolve_size(get_family("micro"), "small")
    expected = weights_hash(path)
    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path))
    (tmp_path / "hashes.json").write_bytes(content)
    assert weights_hash(path) == expected
    index = json.loads((tmp_path / "hashes.json").read_text())
    assert isinstance(index, dict) and all(isinstance(v, str) for v in index.values())


# --- a full disk while writing a set -------------------------------------------------------------

class FullDisk:
    """A file that takes ``writes[0]`` more writes, then writes half of the next one and fails
    like a full disk."""

    def __init__(self, fh, writes: list):
        self._fh, self._writes = fh, writes

    def write(self, data: bytes) -> int:
        if self._writes[0] <= 0:
            self._fh.write(data[: len(data) // 2])
            self._fh.flush()
            raise OSError(errno.ENOSPC, "No space left on device", self._fh.name)
        self._writes[0] -= 1
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)


def test_full_disk_while_writing_a_set_is_one_line_and_resumable(micro_family, tmp_path, monkeypatch):
    from gpt2guard.datasets.sets import open_set, read_manifest
    from gpt2guard.datasets.writer import SetWriter

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"document number {i} " * 5}) + "\n"
                           for i in range(10)))
    out = tmp_path / "out"
    args = ["datasets", "import", str(src), str(out), "--set", "s", "--split", "train", "--shard-size", "3",
            "--family", "micro"]
    budget = [4]  # the first shard (3 records), one record of the next, then half a line
    real_open = SetWriter._open_partial

    def open_partial(self, path, existing=b""):
        real_open(self, path, existing)
        self._fh = FullDisk(self._fh, budget)

    monkeypatch.setattr(SetWriter, "_open_partial", open_partial)
    line = one_line_error(CliRunner().invoke(main, args), "No space left on device", "run the same command again")
    assert "Traceback" not in line
    manifest = read_manifest(out, "s", "train")
    assert manifest is not None and not manifest["complete"]
    assert [s["records"] for s in manifest["shards"]] == [3]  # the finished shard is intact and listed
    assert not list(out.glob(".*.tmp-*"))  # no stray temporary files

    monkeypatch.setattr(SetWriter, "_open_partial", real_open)  # space freed
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ids = [r.id for r in open_set(out, "s", "train")]
    assert sorted(ids) == sorted(f"d{i}" for i in range(10))  # every record once: none lost, none twice
    assert CliRunner().invoke(main, ["datasets", "validate", str(out / "s.train.manifest.json")]).exit_code == 0


def test_full_disk_while_writing_a_file_leaves_the_old_one(tmp_path, monkeypatch):
    import os

    from gpt2guard.paths import atomic_write_text

    target = tmp_path / "m.json"
    target.write_text("old")

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_an_os_error_reaching_the_cli_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["release", "plan", "init", str(tmp_path / "file" / "plan.toml")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("Error: ")


# --- values that make no sense, and contradictory flags --------------------------------------------

REFUSED = [
    (["score", "-", "--fpr", "nan"], "--fpr"),
    (["score", "-", "--fpr", "0"], "--fpr"),
    (["score", "-", "--fpr", "1"], "--fpr"),
    (["score", "-", "--fpr", "-0.1"], "--fpr"),
    (["score", "-", "--threshold", "nan"], "--threshold"),
    (["score", "-", "--threshold", "inf"], "--threshold"),
    (["score", "-", "--min-tokens", "-1"], "--min-tokens"),
    (["score", "-", "--seed", "-1"], "--seed"),
    (["score", "-", "--method", "nope"], "--method"),
    (["score", "-", "--detector", ".", "--method", "logp"], "--method"),
    (["score", "-", "--detector", ".", "--fpr", "0.1"], "--fpr"),
    (["score", "-", "--threshold", "0", "--fpr", "0.1"], "--fpr"),
    (["generate", "--out", "o", "--n", "-1"], "--n"),
    (["generate", "--out", "o", "--length", "0"], "--length"),
    (["generate", "--out", "o", "--batch-size", "0"], "--batch-size"),
    (["generate", "--out", "o", "--shard-size", "0"], "--shard-size"),
    (["generate", "--out", "o", "--seed", "-5"], "--seed"),
    (["generate", "--out", "o", "--device", "tpu"], "--device"),
    (["generate", "--out", "o", "--no-match-length"], "--prompts"),
    (["detector", "train", "--data", ".", "--out", "o", "--fpr", "1.5"], "--fpr"),
    (["detector", "train", "--data", ".", "--out", "o", "--min-tokens", "-3"], "--min-tokens"),
    (["detector", "train", "--data", ".", "--out", "o", "--kind", "tfidf", "--references"], "--references"),
    (["detector", "train", "--data", ".", "--out", "o", "--kind", "boosting", "--cv", "3"], "--cv"),
    (["detector", "calibrate", ".", "--data", ".", "--n-boot", "0"], "--n-boot"),
    (["detector", "calibrate", ".", "--data", ".", "--n-boot", "10"], "--n-boot"),
    (["detector", "calibrate", ".", "--data", ".", "--fpr", "inf"], "--fpr"),
    (["detector", "calibrate", ".", "--data", ".", "--machine", "m"], "--probability"),
    (["detector", "eval", ".", "--data", ".", "--out", "o", "--n-boot", "0"], "--n-boot"),
    (["detector", "eval", ".", "--data", ".", "--out", "o", "--train-split", "x"], "--transfer"),
    (["datasets", "dedup", ".", "s", "--split", "t", "--out", "o", "--threshold", "nan"], "--threshold"),
    (["datasets", "dedup", ".", "s", "--split", "t", "--out", "o", "--threshold", "0"], "--threshold"),
    (["datasets", "dedup", ".", "s", "--split", "t", "--out", "o", "--threshold", "1.5"], "--threshold"),
    (["datasets", "dedup", ".", "s", "--split", "t", "--out", "o", "--exact-only", "--threshold", "0.5"],
     "--threshold"),
    (["datasets", "match", ".", "--human", "h", "--machine", "m", "--out", "o", "--bin-width", "0"], "--bin-width"),
    (["datasets", "match", ".", "--human", "h", "--machine", "m", "--out", "o", "--method", "truncate",
      "--bin-width", "8"], "--bin-width"),
    (["datasets", "split", ".", "s", "--seed", "99999999999"], "--seed"),
    (["datasets", "split", ".", "s", "--fractions", "nan,0.5,0.5"], "fractions"),
    (["datasets", "split", ".", "s", "--fractions", "inf,0,0"], "fractions"),
    (["family", "build", "micro", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("args, option", REFUSED, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_values_that_make_no_sense_are_refused_by_name(args, option, monkeypatch):
    import gpt2guard.family

    monkeypatch.setattr(gpt2guard.family, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    one_line_error(CliRunner().invoke(main, args, input=b"text"), option)
