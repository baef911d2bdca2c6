"""``gpt2guard datasets attack``: attacked copies of a set, resumable, refused cleanly."""

from __future__ import annotations

import fcntl
import json

import pytest
from click.testing import CliRunner

from gpt2guard.attacks import attack
from gpt2guard.attacks.sets import record_seed
from gpt2guard.cli import main
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.datasets.writer import SetWriter

DOCS = [
    "The colour of the car was grey. The neighbours said it had an odour!",
    "I believe they will receive the letter in 2024. Then a friend wrote 12 lines.",
    "Beautiful weather across the country; the government announced 45 new programmes.",
    "An apple a day keeps the doctor away. The centre will organise a meeting?",
]


@pytest.fixture
def src(tmp_path):
    d = tmp_path / "src"
    for split in ("train", "test"):
        with SetWriter(d, "web", split) as w:
            for i, text in enumerate(DOCS):
                w.write(Record(id=f"{split}{i}", text=text, label="human" if i % 2 else "machine",
                               provenance=None if i % 2 else {"family": "micro", "seed": i}))
    return d


def run(args, code=0):
    res = CliRunner().invoke(main, ["datasets", "attack"] + args)
    assert res.exit_code == code, res.output
    return res


def snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_writes_one_set_per_attack_with_provenance(src, tmp_path, micro_tokenizer):
    out = tmp_path / "out"
    res = run([str(src), "web", "--attack", "homoglyph=1.0,whitespace=0.25", "--seed", "7", "--out", str(out),
               "--family", "micro", "--json"])
    result = json.loads(res.output)
    assert [s["set"] for s in result["sets"]] == ["web-homoglyph-1", "web-whitespace-0p25"]
    from gpt2guard.datasets.tokens import count_tokens

    for name, attack_name, rate in (("web-homoglyph-1", "homoglyph", 1.0), ("web-whitespace-0p25", "whitespace", 0.25)):
        for split in ("train", "test"):
            orig = list(open_set(src, "web", split))
            recs = list(open_set(out, name, split))
            assert [r.id for r in recs] == [r.id for r in orig] and [r.label for r in recs] == [r.label for r in orig]
            for o, r in zip(orig, recs):
                prov = r.provenance["attack"]
                assert (prov["attack"], prov["rate"], prov["set_seed"]) == (attack_name, rate, 7)
                assert prov["seed"] == record_seed(7, o.id)
                again = attack(o.text, attack_name, rate, prov["seed"])
                assert r.text == again.text != o.text and prov["n_changed"] == again.n_changed
                assert r.length == count_tokens([r.text], micro_tokenizer)[0]
                if o.provenance:  # the generation provenance is kept beside the attack
                    assert r.provenance["family"] == "micro"
            counts = result["sets"][[s["set"] for s in result["sets"]].index(name)]["splits"][split]
            assert counts["records"] == len(DOCS)
            assert counts["changed"] == sum(r.provenance["attack"]["n_changed"] for r in recs)
            meta = read_manifest(out, name, split)["meta"]
            assert meta["steps"][-1]["op"] == "attack" and meta["tokenizer"]["family"] == "micro"
        assert (out / f"{name}.card.md").is_file()


def test_rerun_is_a_no_op_and_other_arguments_are_refused(src, tmp_path, micro_tokenizer):
    out = tmp_path / "out"
    run([str(src), "web", "--attack", "case=0.5", "--out", str(out), "--family", "micro"])
    before = snapshot(out)
    res = run([str(src), "web", "--attack", "case=0.5", "--out", str(out), "--family", "micro"])
    assert "already complete" in res.output and snapshot(out) == before
    res = run([str(src), "web", "--attack", "case=0.5", "--seed", "1", "--out", str(out), "--family", "micro"], code=2)
    assert len(res.output.strip().splitlines()) == 1 and "other steps or parameters" in res.output
    assert snapshot(out) == before


def test_killed_run_resumes_to_the_same_sets(src, tmp_path, monkeypatch, micro_tokenizer):
    import gpt2guard.attacks.sets as sets_mod

    whole = tmp_path / "whole"
    run([str(src), "web", "--attack", "number_swap=1", "--out", str(whole), "--family", "micro"])
    calls = {"n": 0}
    real = sets_mod.attack_record

    def dies(rec, spec, seed):
        calls["n"] += 1
        if calls["n"] == 6:  # during the second split
            raise KeyboardInterrupt
        return real(rec, spec, seed)

    out = tmp_path / "out"
    monkeypatch.setattr(sets_mod, "attack_record", dies)
    res = CliRunner().invoke(main, ["datasets", "attack", str(src), "web", "--attack", "number_swap=1", "--out",
                                    str(out), "--family", "micro"])
    assert res.exit_code == 130 and "resume" in res.output
    assert not list(out.glob("web-number_swap-1.*.jsonl"))  # nothing half-way in the output
    staged = list(out.glob(".*.staging"))
    assert staged and list(open_set(staged[0], "web-number_swap-1", "train", allow_incomplete=True)) == []
    assert (staged[0] / ".web-number_swap-1.train.jsonl.partial").read_text().count("\n") == len(DOCS)
    monkeypatch.setattr(sets_mod, "attack_record", real)
    run([str(src), "web", "--attack", "number_swap=1", "--out", str(out), "--family", "micro"])
    for split in ("train", "test"):
        assert (out / f"web-number_swap-1.{split}.jsonl").read_bytes() == \
            (whole / f"web-number_swap-1.{split}.jsonl").read_bytes()


def test_a_second_job_on_the_same_output_is_refused(src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".web-case-1.test.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        res = run([str(src), "web", "--attack", "case=1", "--out", str(out), "--family", "micro"], code=2)
    assert "another job is writing web-case-1.test" in res.output
    assert not list(out.glob("web-case-1.*.jsonl"))


@pytest.mark.parametrize("spec,message", [
    ("nonesuch=0.5", "unknown attack 'nonesuch'"),
    ("homoglyph=1.5", r"rate must be a number in [0, 1]"),
    ("homoglyph=-0.1", r"rate must be a number in [0, 1]"),
    ("homoglyph", "must be name=rate"),
    ("case=0.5,case=0.5", "given twice"),
])
def test_bad_attacks_are_one_line_and_write_nothing(src, tmp_path, spec, message):
    out = tmp_path / "out"
    res = run([str(src), "web", "--attack", spec, "--out", str(out)], code=2)
    assert message in res.output and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not out.exists()


def test_missing_set_is_one_line(src, tmp_path):
    res = run([str(src), "nope", "--attack", "case=1", "--out", str(tmp_path / "out")], code=2)
    assert "no set 'nope'" in res.output and not (tmp_path / "out").exists()
