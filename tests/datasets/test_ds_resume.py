"""A job killed half way resumes without duplicates or loss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.datasets.writer import SetWriter
from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_file

ROOT = Path(__file__).resolve().parents[2]

# A generator-like job: skips ids already written, and dies by SIGKILL (no cleanup at all)
# right after writing record KILL_AT; MODE chooses what the kill interrupts.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from gpt2guard.datasets.records import Record
    from gpt2guard.datasets.writer import SetWriter

    out, kill_at, mode, flush_every = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

    class Dying(SetWriter):
        def _write_manifest(self, complete):
            if mode == "orphan" and len(self._shards) == 3:  # shard 2 renamed, manifest not yet updated
                os.kill(os.getpid(), signal.SIGKILL)
            super()._write_manifest(complete)

    w = Dying(out, "gen", "train", shard_size=100, flush_every=flush_every)
    for i in range(1000):
        if i in w.existing_ids:
            continue
        w.write(Record(id=i, text=f"sample {i}", length=2, label="machine"))
        if i == kill_at and mode == "torn":
            w._fh.write(b'{"id": 123456, "ended": tr')  # a line torn by the kill
            w._fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    w.close()
""")


def run_child(out: Path, kill_at: int, mode: str, flush_every: int = 1) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(kill_at), mode, str(flush_every)], env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode


def finish(out: Path) -> list[int]:
    with SetWriter(out, "gen", "train", shard_size=100) as w:
        for i in range(1000):
            if i not in w.existing_ids:
                w.write(Record(id=i, text=f"sample {i}", length=2, label="machine"))
    return [r.id for r in open_set(out, "gen", "train")]


def check_complete(out: Path, ids: list[int]) -> None:
    assert ids == list(range(1000))  # every record once, in order
    m = read_manifest(out, "gen", "train")
    assert m["complete"] and m["records"] == 1000 and len(m["shards"]) == 10
    assert all(sha256_file(out / s["file"]) == s["sha256"] for s in m["shards"])
    assert not list(out.glob(".*.partial"))


@pytest.mark.parametrize("flush_every", [1, 7])
def test_sigkill_with_torn_line_resumes(tmp_path, flush_every):
    assert run_child(tmp_path, 250, "torn", flush_every) == -9
    m = read_manifest(tmp_path, "gen", "train")
    assert not m["complete"] and [s["records"] for s in m["shards"]] == [100, 100]
    with pytest.raises(GuardError, match="incomplete"):
        list(open_set(tmp_path, "gen", "train"))
    assert [r.id for r in open_set(tmp_path, "gen", "train", allow_incomplete=True)] == list(range(200))
    w = SetWriter(tmp_path, "gen", "train", shard_size=100)
    # flushed records survive the kill; the torn line is cut off
    assert w.existing_ids == set(range(251)) if flush_every == 1 else set(range(200)) <= w.existing_ids
    assert 123456 not in w.existing_ids
    w.abort()
    check_complete(tmp_path, finish(tmp_path))


def test_sigkill_between_shard_rename_and_manifest_resumes(tmp_path):
    assert run_child(tmp_path, -1, "orphan") == -9
    assert len(read_manifest(tmp_path, "gen", "train")["shards"]) == 2
    assert (tmp_path / "gen.train.00002.jsonl").is_file()  # finished but not in the manifest
    check_complete(tmp_path, finish(tmp_path))


def test_resumed_job_changes_nothing_when_complete(tmp_path):
    check_complete(tmp_path, finish(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    check_complete(tmp_path, finish(tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_append_to_single_file_set_and_resume_the_append(tmp_path):
    with SetWriter(tmp_path, "s", "test") as w:
        for i in range(5):
            w.write(Record(id=i, text=f"t{i}"))
    w = SetWriter(tmp_path, "s", "test")
    w.write(Record(id=5, text="t5"))
    w._release()  # dies mid-append: the file is back to a partial one
    assert not (tmp_path / "s.test.jsonl").exists()
    with SetWriter(tmp_path, "s", "test") as w:
        assert w.existing_ids == set(range(6))
        w.write(Record(id=6, text="t6"))
    assert [r.id for r in open_set(tmp_path, "s", "test")] == list(range(7))
    assert read_manifest(tmp_path, "s", "test")["shards"][0]["records"] == 7


def test_changed_shard_is_detected_on_resume(tmp_path):
    check_complete(tmp_path, finish(tmp_path))
    shard = tmp_path / "gen.train.00004.jsonl"
    lines = shard.read_text().splitlines()
    lines[3] = json.dumps({"id": 403, "ended": None, "length": 2, "text": "tampered"})
    shard.write_text("\n".join(lines) + "\n")
    with pytest.raises(GuardError, match="00004.jsonl changed since it was written"):
        SetWriter(tmp_path, "gen", "train", shard_size=100)


def test_two_writers_on_one_set_are_refused(tmp_path):
    with SetWriter(tmp_path, "s", "train"):
        with pytest.raises(GuardError, match="another job is writing s.train"):
            SetWriter(tmp_path, "s", "train")
    with SetWriter(tmp_path, "s", "train"):  # the lock is released on close
        pass


def test_layout_change_is_refused(tmp_path):
    with SetWriter(tmp_path, "s", "train", shard_size=10) as w:
        w.write(Record(id=1, text="x"))
    with pytest.raises(GuardError, match="is sharded; asked to write it single"):
        SetWriter(tmp_path, "s", "train")
