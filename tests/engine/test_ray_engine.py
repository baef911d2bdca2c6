"""The Ray Data engine on a local Ray: the same records and statistics as the local engine,
resume after a killed run, and one clear line for what a user can get wrong.

One local Ray serves the whole module (started once, shut down at the end)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("ray.data", reason="Ray is not installed (pip install -e '.[ray]')")

from gpt2guard.cli import main  # noqa: E402
from gpt2guard.engine import Engine  # noqa: E402

GEN = ["generate", "--family", "micro", "--sizes", "small", "--sampling", "top-k=5", "--length", "16",
       "--seed", "7", "--batch-size", "2", "--shard-size", "4"]
N = ["--n", "96"]
SET = "micro-small-k5"
RAY = ["--engine", "ray", "--ray-workers", "2"]


@pytest.fixture(scope="module")
def ray_engine(micro_family):
    """A local Ray with room for two CPU actors, for every test of the module."""
    from gpt2guard.engine.ray_session import ray_session

    engine = Engine("ray", workers=2)
    with ray_session(engine):
        yield engine


def set_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


def records(out: Path) -> list[dict]:
    return [json.loads(line) for data in set_files(out).values() for line in data.splitlines()]


@pytest.fixture(scope="module")
def local_sets(micro_family, tmp_path_factory):
    """The sets the local engine writes: what every Ray run is compared with."""
    out = tmp_path_factory.mktemp("local")
    result = CliRunner().invoke(main, GEN + N + ["--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_a_set_made_on_ray_is_the_local_set_record_for_record(ray_engine, local_sets, tmp_path):
    result = CliRunner().invoke(main, GEN + N + ["--out", str(tmp_path)] + RAY)
    assert result.exit_code == 0, result.output
    ours, theirs = set_files(tmp_path), set_files(local_sets)
    assert list(ours) == list(theirs) and len(ours) == 24  # 24 shards of 4
    assert ours == theirs  # byte for byte: text, seeds, provenance, order
    manifest = json.loads((tmp_path / f"{SET}.train.manifest.json").read_text())
    assert manifest["complete"] and manifest["records"] == 96
    assert [r["id"] for r in records(tmp_path)] == list(range(96))


def test_a_watermarked_set_made_on_ray_is_the_local_one(ray_engine, tmp_path):
    """The watermark is applied on the workers, from the same key file (checked by digest),
    and the records equal a local run's; the key's secret is nowhere in the output."""
    from gpt2guard.watermark import keygen, load_key

    key = tmp_path / "api.key"
    keygen(key, seed=5, family="micro")
    marked = GEN + ["--n", "8", "--watermark", str(key)]
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    for out, extra in ((local, []), (on_ray, RAY)):
        result = CliRunner().invoke(main, marked + ["--out", str(out)] + extra)
        assert result.exit_code == 0, result.output
    assert set_files(on_ray) == set_files(local) and len(records(on_ray)) == 8
    digest = load_key(key).digest
    assert all(r["provenance"]["watermark"]["key_digest"] == digest for r in records(on_ray))
    secret = load_key(key).secret.hex()
    assert not any(secret in p.read_text(errors="replace") for p in on_ray.rglob("*") if p.is_file())


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_killed_ray_run_resumes_with_nothing_lost_or_duplicated(ray_engine, local_sets, tmp_path):
    """A Ray generate in its own process (with its own local Ray): a worker is killed once a
    shard is written, then the whole run (driver and its Ray); the rerun completes the sets."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gpt2guard.cli"] + GEN + N + ["--out", str(tmp_path)] + RAY
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    killed_worker, after = False, None
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and proc.poll() is None:
            shards = len(list(tmp_path.glob(f"{SET}.train.*.jsonl")))
            if shards and not killed_worker:
                workers = [p for p in children(proc.pid) if "MapWorker" in cmdline(p)]
                if workers:
                    os.kill(workers[0], signal.SIGKILL)  # Ray restarts the actor and retries its batch
                    killed_worker, after = True, shards
            elif killed_worker and shards > after:
                break  # the job went on after the worker died: now kill the driver
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    proc.stdout.close()
    assert killed_worker, stderr
    assert proc.returncode != 0, "the run finished before it could be killed: give it more records"
    assert 0 < len(records(tmp_path)) < 96  # some, not all, written
    result = CliRunner().invoke(main, GEN + N + ["--out", str(tmp_path)] + RAY)
    assert result.exit_code == 0, result.output
    assert set_files(tmp_path) == set_files(local_sets)
    manifest = json.loads((tmp_path / f"{SET}.train.manifest.json").read_text())
    assert manifest["complete"] and manifest["records"] == 96


def test_scores_on_ray_equal_local_scores(ray_engine, micro_family):
    from gpt2guard.detector.scoring import Scorer
    from gpt2guard.engine import make_scorer
    from gpt2guard.family import load_model

    texts = [f"Document {i}: " + "the quick brown fox jumps over the lazy dog. " * (1 + i % 7) for i in range(40)]
    texts += ["", b"\x00\x01binary", texts[3]]  # unscorable ones and a duplicate keep their places
    small, medium = load_model("micro", "small"), load_model("micro", "medium")
    local = Scorer(small, medium, cache=False, batch_tokens=256)
    remote = make_scorer(small, medium, cache=False, batch_tokens=256, engine=ray_engine)
    assert type(remote).__name__ == "RayScorer"
    for mine, theirs in zip(remote.score(texts), local.score(texts)):
        assert (mine.text_hash, mine.flags, mine.n_windows) == (theirs.text_hash, theirs.flags, theirs.n_windows)
        np.testing.assert_array_equal(mine.token_ids, theirs.token_ids)
        for name in ("logp", "entropy", "mean_ref", "var_ref", "cross_entropy", "cross_var"):
            np.testing.assert_allclose(getattr(mine, name), getattr(theirs, name), rtol=1e-4, atol=1e-4)
        assert np.sum(mine.rank != theirs.rank) <= 0.02 * len(mine.rank)  # a rank flips only where two logits tie to rounding
    for mine, theirs in zip(remote.score_sums(texts), local.score_sums(texts)):
        assert (mine.n_tokens, mine.flags) == (theirs.n_tokens, theirs.flags)
        assert mine.sums.keys() == theirs.sums.keys()
        for k in mine.sums:
            assert mine.sums[k] == pytest.approx(theirs.sums[k], rel=1e-5, abs=1e-4)


def test_score_command_on_ray_gives_the_local_verdicts(ray_engine, local_sets):
    files = [str(p) for p in sorted(local_sets.glob(f"{SET}.train.*.jsonl"))][:6]
    args = ["score", *files, "--method", "logp", "--family", "micro", "--threshold", "-5", "--min-tokens", "1",
            "--format", "json"]
    local = CliRunner().invoke(main, args)
    remote = CliRunner().invoke(main, args + RAY)
    assert local.exit_code == 0 and remote.exit_code == 0, (local.output, remote.output)
    a, b = json.loads(local.output), json.loads(remote.output)
    assert len(a) == len(b) == 24 and a[0]["scorer"] == b[0]["scorer"]
    assert [r["decision"] for r in a] == [r["decision"] for r in b]
    assert [r["n_tokens"] for r in a] == [r["n_tokens"] for r in b]
    def scores(rows):
        return np.array([np.nan if r["score"] is None else r["score"] for r in rows], dtype=float)

    assert np.isfinite(scores(a)).sum() >= 20
    np.testing.assert_allclose(scores(a), scores(b), rtol=1e-5)


def test_detector_train_and_eval_on_ray(ray_engine, local_sets, tmp_path):
    from gpt2guard.detector.trained import load_detector

    human = tmp_path / "human"
    human.mkdir()
    from gpt2guard.datasets.builtin import builtin_corpus

    docs = [d.text for d in builtin_corpus(max_words=60) if d.split == "train"][:24]
    with open(human / "webtext.train.jsonl", "w") as f:
        for i, t in enumerate(docs):
            f.write(json.dumps({"id": i, "text": t, "label": "human"}) + "\n")
    base = ["--data", str(human), "--data", str(local_sets), "--human", "webtext", "--family", "micro",
            "--sizes", "small", "--cv", "0"]
    for engine, out in (([], tmp_path / "local"), (RAY, tmp_path / "ray")):
        result = CliRunner().invoke(main, ["detector", "train", *base, "--out", str(out), *engine])
        assert result.exit_code == 0, result.output
    a, b = load_detector(tmp_path / "local"), load_detector(tmp_path / "ray")
    fa, fb = a.estimator_.to_arrays(), b.estimator_.to_arrays()
    assert fa.keys() == fb.keys()
    for k in fa:
        if np.asarray(fa[k]).dtype.kind == "f":
            np.testing.assert_allclose(fa[k], fb[k], rtol=1e-3, atol=1e-5, err_msg=k)
    result = CliRunner().invoke(main, ["detector", "eval", str(tmp_path / "ray"), "--data", str(human), "--data",
                                       str(local_sets), "--human", "webtext", "--split", "train", "--n-boot", "40",
                                       "--out", str(tmp_path / "eval"), *RAY])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["overall"]["auroc"] >= 0


def test_a_cluster_without_the_gpus_asked_for_is_one_line_before_any_work(ray_engine, tmp_path):
    out = tmp_path / "gen"
    result = CliRunner().invoke(main, GEN + ["--n", "4", "--out", str(out), "--engine", "ray",
                                             "--ray-gpus-per-worker", "1"])
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "no GPUs" in line and "--ray-gpus-per-worker" in line, line
    assert not list(out.glob("*.jsonl")) and not list(out.glob(".*partial"))


def test_a_failing_worker_is_one_line_and_the_written_records_stay(ray_engine, local_sets, tmp_path, monkeypatch):
    """Actors whose weights differ from the driver's refuse to work: one line, nothing half-written."""
    from gpt2guard.engine import ray_generate

    real = ray_generate.ray_records

    def other_weights(loaded, task, items, engine, chunk):
        from dataclasses import replace

        yield from real(replace(loaded, model_hash="0" * 64), task, items, engine, chunk)

    monkeypatch.setattr(ray_generate, "ray_records", other_weights)
    result = CliRunner().invoke(main, GEN + ["--n", "8", "--out", str(tmp_path)] + RAY)
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "give every node the same weights" in line, line
    monkeypatch.setattr(ray_generate, "ray_records", real)
    result = CliRunner().invoke(main, GEN + N + ["--out", str(tmp_path)] + RAY)
    assert result.exit_code == 0, result.output
    assert set_files(tmp_path) == set_files(local_sets)


def test_release_simulate_on_ray(ray_engine, tmp_path):
    """A staged release run with --engine ray (the micro plan's first stage): its samples are
    the local engine's, byte for byte, and its decision the one the release tests expect (the
    evidence is scored statistics, equal to local ones as tested above)."""
    from gpt2guard.release.data import generate_samples
    from gpt2guard.release.plan import load_plan

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "release"))
    try:
        from release_helpers import MICRO_PLAN
    finally:
        sys.path.pop(0)
    (tmp_path / "evidence").mkdir()
    for size in ("small", "medium"):
        (tmp_path / "evidence" / f"signoff-{size}.toml").write_text('approved = true\nby = "test board"\n')
    plan = tmp_path / "plan.toml"
    first = MICRO_PLAN.index("[[stages]]", MICRO_PLAN.index("[[stages]]") + 1)
    plan.write_text(MICRO_PLAN[:first])  # its first stage: micro small (the Ray tests' time is short)
    result = CliRunner().invoke(main, ["release", "simulate", str(plan), "--out", str(tmp_path / "ray"),
                                       "--scenario", "staged", "--json", *RAY])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["first"] and rows["first"]["decision"] == "release"
    generate_samples(tmp_path / "local", load_plan(plan), ["small"])  # the local engine
    ours = set_files(tmp_path / "ray" / "samples")
    assert len(ours) >= 2 and ours == set_files(tmp_path / "local")
