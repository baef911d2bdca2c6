"""Data that cannot silently lie: no text shared across splits, one job per set, refused
commands that change nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from ds_helpers import openai_lines, prose, write_jsonl

from gpt2guard.cli import main
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.datasets.writer import SetWriter


def run(*args, ok=True):
    res = CliRunner().invoke(main, ["datasets", *map(str, args)])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def tree(directory) -> dict:
    """SHA-256 of every file under a directory, hidden ones and locks included."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def write_set(directory, name, split, records):
    with SetWriter(directory, name, split) as w:
        for r in records:
            w.write(r)


# --- texts shared across train, valid and test ------------------------------------------------

def test_validate_and_stats_fail_on_texts_shared_across_splits(tmp_path):
    write_set(tmp_path, "s", "train", [Record(id=i, text=prose(i, 30), length=1, label="human") for i in range(6)])
    write_set(tmp_path, "s", "valid", [Record(id=10 + i, text=prose(10 + i, 30), length=1) for i in range(3)])
    # the same text as train's id 4 up to whitespace, and an empty text that train also has
    write_set(tmp_path, "s", "test", [Record(id=20, text="  " + prose(4, 30).replace(" ", "\n ", 3) + "\n", length=1),
                                      Record(id=21, text=prose(21, 30), length=1)])
    res = run("validate", tmp_path / "s.test.manifest.json", ok=False)
    assert res.exit_code == 1 and "shared_across_splits 1" in res.output
    assert "id 4 in train = id 20 in test" in res.output
    res = run("validate", tmp_path / "s.train.jsonl", ok=False)
    assert res.exit_code == 1 and "shared_across_splits" in res.output
    assert run("validate", tmp_path / "s.valid.jsonl").exit_code == 0  # valid shares nothing
    res = run("stats", tmp_path, "s", ok=False)
    assert res.exit_code == 1 and "texts in more than one of train, valid, test: 1" in res.output
    assert "1 text(s) appear in more than one of train, valid, test (e.g. id 4 in train = id 20 in test)" \
        in res.output
    res = run("stats", tmp_path, "s", "--json", ok=False)
    assert res.exit_code == 1
    assert json.loads(res.stdout)["overlap"]["records"] == {"train": 1, "valid": 0, "test": 1}
    from gpt2guard.datasets.card import write_card

    assert "**Shared texts: 1 text(s)" in write_card(tmp_path, "s").read_text()  # the card says so, and still writes
    # removing the shared text makes both pass; empty texts are not compared
    (tmp_path / "s.test.manifest.json").unlink()
    write_jsonl(tmp_path / "s.test.jsonl", [{"id": 21, "length": 1, "text": prose(21, 30)},
                                            {"id": 22, "length": 0, "text": ""}])
    write_jsonl(tmp_path / "s.valid.jsonl", [{"id": 10, "length": 0, "text": " "}])
    assert run("validate", tmp_path / "s.test.jsonl").exit_code == 0
    assert run("stats", tmp_path, "s").exit_code == 0


# --- resumed imports with other settings --------------------------------------------------------

def test_import_resume_with_other_settings_is_refused_and_runs_counted(tmp_path, micro_tokenizer):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(a, openai_lines(5))
    write_jsonl(b, openai_lines(4, start=100))
    out = tmp_path / "out"
    run("import", a, out, "--set", "s", "--label", "human", "--family", "micro")
    before = tree(out)
    for args, needle in [(["--label", "machine"], '--label (label "machine") differs from the set\'s label "human"'),
                         (["--label", "human", "--keep-lengths"], "--keep-lengths (keep_lengths true) differs"),
                         (["--label", "human", "--text-field", "body"], "--text-field"),
                         (["--label", "human", "--no-flags"], "--no-flags (flags false) differs")]:
        res = run("import", a, out, "--set", "s", "--family", "micro", *args, ok=False)
        assert res.exit_code != 0 and needle in res.output, res.output
        assert "use a new --out or the same settings" in res.output and len(res.output.strip().splitlines()) == 1
        assert tree(out) == before
    # another source must agree on flags; its label may differ
    res = run("import", b, out, "--set", "s", "--family", "micro", "--no-flags", ok=False)
    assert "--no-flags (flags false) differs" in res.output and tree(out) == before
    run("import", b, out, "--set", "s", "--label", "machine", "--family", "micro")
    run("import", a, out, "--set", "s", "--label", "human", "--family", "micro")  # a no-op: not a run
    runs = read_manifest(out, "s", "all")["meta"]["runs"]
    assert [(r["source"], r["written"]) for r in runs] == [(str(a), 5), (str(b), 4)]
    assert "2 runs wrote 9 records" in (out / "s.card.md").read_text()


# --- refused split and dedup change nothing ---------------------------------------------------

@pytest.fixture
def split_done(tmp_path):
    recs = [Record(id=i, text=prose(i, 20), source=f"s{i % 30}", label="human") for i in range(120)]
    recs += [Record(id=1000 + i, text=prose(i, 20), source=f"s{i % 30}") for i in range(5)]  # exact duplicates
    write_set(tmp_path / "in", "h", "all", recs)
    run("split", tmp_path / "in", "h", "--out", tmp_path / "out", "--seed", "0")
    return tmp_path


def test_refused_split_leaves_finished_sets_byte_identical(split_done, monkeypatch):
    out = split_done / "out"
    before = tree(out)
    res = run("split", split_done / "in", "h", "--out", out, "--seed", "1", ok=False)
    assert res.exit_code != 0 and "made by other steps or parameters" in res.output
    assert tree(out) == before
    assert run("stats", out, "h").exit_code == 0  # still complete: training can use them
    # a run that fails half way (here: its input turns bad) changes nothing either
    import gpt2guard.datasets.splits as splits

    def breaks(*a, **k):
        for n, rec in enumerate(open_set(*a, **k)):
            if n == 50:
                raise OSError("disk read error")
            yield rec

    monkeypatch.setattr(splits, "open_set", breaks)
    with pytest.raises(OSError):
        splits.split_set(split_done / "in", "h", "all", out, seed=0)
    monkeypatch.undo()
    assert {k: v for k, v in tree(out).items() if not k.startswith(".h.staging")} == before
    # the same command again finishes (resuming what was staged) and writes the same bytes
    run("split", split_done / "in", "h", "--out", out, "--seed", "0")
    assert tree(out) == before


def test_refused_dedup_leaves_finished_sets_byte_identical(split_done):
    src, out = split_done / "out", split_done / "dedup"
    res = json.loads(run("dedup", src, "h", "--split", "train", "--out", out, "--json").output)
    assert res["exact"] >= 1
    before = tree(out)
    res = run("dedup", src, "h", "--split", "train", "--out", out, "--exact-only", ok=False)
    assert res.exit_code != 0 and "made by other steps or parameters" in res.output
    assert tree(out) == before
    assert read_manifest(out, "h", "train")["complete"]
    res = run("dedup", src, "h", "--split", "nope", "--out", out, ok=False)
    assert res.exit_code != 0 and tree(out) == before
    run("dedup", src, "h", "--split", "train", "--out", out)  # the same command again: same bytes
    assert tree(out) == before
