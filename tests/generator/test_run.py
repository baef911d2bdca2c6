"""Generation jobs end to end: sets on disk, provenance, regeneration, resume, prompts, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set
from gpt2guard.errors import GuardError
from gpt2guard.generator.run import GenerationJob, regenerate, run_generation


def read(out, name, split="train"):
    return list(open_set(out, name, split))


def test_cli_writes_every_size_and_method_with_provenance(micro_family, tmp_path):
    out = tmp_path / "gen"
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sampling", "pure,top-k=40,nucleus=0.8-1.0",
                                       "--n", "5", "--length", "24", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("["):])
    names = [s["set"] for s in summary]
    assert names == ["micro-small", "micro-small-k40", "micro-small-nucleus",
                     "micro-medium", "micro-medium-k40", "micro-medium-nucleus"]
    for name in names:
        records = read(out, name)
        assert [r.id for r in records] == list(range(5))
        assert (out / f"{name}.card.md").is_file()
        for r in records:
            prov = r.provenance
            assert r.label == "machine" and prov["set"] == name and prov["family"] == "micro"
            assert prov["new_tokens"] <= 24 and prov["max_new_tokens"] == 24
            assert prov["stop_reason"] in ("eos", "length")
            assert r.ended == (prov["stop_reason"] == "eos")
            assert len(prov["model_hash"]) == 64 and "torch" in prov["versions"]
    nucleus = read(out, "micro-small-nucleus")
    ps = [r.provenance["top_p"] for r in nucleus]
    assert all(0.8 <= p < 1.0 for p in ps) and len(set(ps)) == 5  # p drawn per record


def test_records_regenerate_from_provenance(micro_family, tmp_path):
    run_generation(GenerationJob(out=str(tmp_path), family="micro", sizes="medium",
                                 sampling="top-k=40,nucleus-openai=0.9:temperature=0.8", n=4, length=20),
                   progress=False)
    for name in ("micro-medium-k40", "micro-medium-nucleus-openai0_9-t0_8"):
        for record in read(tmp_path, name):
            assert regenerate(record) == record.text
    forged = Record.from_dict({**read(tmp_path, "micro-medium-k40")[0].to_dict()})
    forged.provenance["seed"] += 1
    with pytest.raises(GuardError, match="does not derive from its job seed"):
        regenerate(forged)
    del forged.provenance["job_seed"]  # without the derivation to check, the text gives it away
    assert regenerate(forged) != forged.text


def test_regeneration_follows_the_recorded_linear_backend(micro_family, monkeypatch):
    """A record regenerates on the backend it names; an older record that names none on
    torch's default path; an unknown name is refused."""
    import gpt2guard.generator.sample as sample
    from gpt2guard.family import load_model
    from gpt2guard.family.linear import backend_for
    from gpt2guard.generator import generate_tokens, parse_sampling

    loaded = load_model("micro", "small", device="cpu")
    fast = backend_for("auto", loaded.model)
    made = generate_tokens(loaded, [[]], 30, parse_sampling("pure")[0], [5], linear="aten")[0]
    prov = {"family": "micro", "size": "small", **made.provenance(), "min_rows": 4, "stop_at_eos": True,
            "model_hash": loaded.model_hash}
    record = Record(id=0, text=made.text, length=made.length, ended=made.ended, label="machine", provenance=prov)
    assert regenerate(record) == made.text
    used = []
    real = sample.generate_tokens
    monkeypatch.setattr(sample, "generate_tokens", lambda *a, **kw: used.append(kw["linear"]) or real(*a, **kw))
    regenerate(record)
    record.provenance["linear"] = fast
    regenerate(record)
    del record.provenance["linear"]
    assert regenerate(record) == made.text
    assert used == ["aten", fast, "aten"]
    record.provenance["linear"] = "blas"
    with pytest.raises(GuardError, match="unknown linear backend 'blas'"):
        regenerate(record)


def test_a_resumed_set_keeps_the_backend_it_began_with(micro_family, tmp_path):
    """A set is finished on the backend it began with; a manifest naming none means torch's
    default path; a set begun by the older generator (no job recorded) is not resumed."""
    from gpt2guard.datasets.sets import read_manifest
    from gpt2guard.generator.run import _set_backend
    from gpt2guard.family import load_model
    from gpt2guard.family.linear import backend_for

    loaded = load_model("micro", "small", device="cpu")
    auto = backend_for("auto", loaded.model, rows=8)  # measured on this CPU for the job's batch of 8
    assert _set_backend(tmp_path, "micro-small", "train", loaded) == auto
    run_generation(GenerationJob(out=str(tmp_path), family="micro", sizes="small", sampling="pure", n=2,
                                 length=8), progress=False)
    manifest_path = tmp_path / "micro-small.train.manifest.json"
    manifest = read_manifest(tmp_path, "micro-small", "train")
    assert manifest["meta"]["config"]["linear"] == auto
    # asking a resumed set for another backend is refused with one line
    other = "aten" if auto == "onednn" else "onednn"
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling", "pure",
                                       "--n", "3", "--length", "8", "--linear", other, "--out", str(tmp_path)])
    assert result.exit_code != 0 and f"begun on the '{auto}' linear backend" in result.output
    # finishing it on its own backend
    run_generation(GenerationJob(out=str(tmp_path), family="micro", sizes="small", sampling="pure", n=3,
                                 length=8), progress=False)
    assert read(tmp_path, "micro-small")[2].provenance["linear"] == auto
    legacy = read_manifest(tmp_path, "micro-small", "train")
    del legacy["meta"]["config"]["linear"]
    manifest_path.write_text(json.dumps(legacy))
    assert _set_backend(tmp_path, "micro-small", "train", loaded) == "aten"
    del legacy["meta"]["job"]
    manifest_path.write_text(json.dumps(legacy))
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling", "pure",
                                       "--n", "4", "--length", "8", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "begun by an older gpt2guard generator" in result.output


def test_killed_run_resumes_to_the_uninterrupted_result(micro_family, tmp_path, monkeypatch):
    import gpt2guard.generator.sample as sample

    job = dict(family="micro", sizes="small", sampling="top-k=40", n=8, length=16, batch_size=1)
    run_generation(GenerationJob(out=str(tmp_path / "clean"), **job), progress=False)

    real, calls = sample.generate_tokens, []

    def dies_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate_tokens", dies_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_generation(GenerationJob(out=str(tmp_path / "killed"), **job), progress=False)
    assert calls == [1, 1]  # the first chunk of four records finished before the kill

    monkeypatch.setattr(sample, "generate_tokens", real)
    summary = run_generation(GenerationJob(out=str(tmp_path / "killed"), **job), progress=False)
    assert summary[0]["written"] == 4 and summary[0]["records"] == 8
    resumed = read(tmp_path / "killed", "micro-small-k40")
    clean = read(tmp_path / "clean", "micro-small-k40")
    assert [r.to_dict() for r in resumed] == [r.to_dict() for r in clean]
    assert all(r.provenance["min_rows"] == 1 and regenerate(r) == r.text for r in resumed[:3])


def test_continue_past_eos_fills_the_length(micro_family, tmp_path):
    run_generation(GenerationJob(out=str(tmp_path), family="micro", sizes="small", sampling="pure", n=6, length=30,
                                 stop_at_eos=False, logprobs=True), progress=False)
    for r in read(tmp_path, "micro-small"):
        assert r.provenance["new_tokens"] == 30 and r.provenance["stop_reason"] == "length"
        assert len(r.token_logprobs) == 30 and all(lp <= 0 for lp in r.token_logprobs)


def _human_prompts(directory, tokenizer, n: int, sentence: str) -> None:
    """``n`` human test documents (``sentence`` repeated 3 + i times) and their 8-token prompts."""
    from gpt2guard.datasets.prompts import prompts_set
    from gpt2guard.datasets.writer import SetWriter

    with SetWriter(directory, "human", "test") as w:
        for i in range(n):
            w.write(Record(id=f"doc{i}", text=sentence.format(i=i) * (3 + i), label="human", source=f"mod{i}"))
    prompts_set(directory, "human", "test", n_tokens=8, tokenizer=tokenizer, min_continuation=4, card=False)


def test_conditional_generation_matches_human_continuation_lengths(micro_family, micro_tokenizer, tmp_path):
    _human_prompts(tmp_path, micro_tokenizer, 3, "Document {i} explains how the parser reads a file. ")
    conts = {r.id: r for r in read(tmp_path, "human-continuations", "test")}
    run_generation(GenerationJob(out=str(tmp_path / "gen"), family="micro", sizes="small", sampling="top-k=40", n=3,
                                 length=100, prompts=str(tmp_path / "human-prompts.test.jsonl"), stop_at_eos=False),
                   progress=False)
    for r in read(tmp_path / "gen", "micro-small-k40"):
        paired = conts[r.provenance["prompt_id"]]
        assert r.provenance["max_new_tokens"] == len(micro_tokenizer.encode(paired.text))
        assert r.provenance["new_tokens"] == r.provenance["max_new_tokens"]
        assert r.source == paired.source
        assert regenerate(r) == r.text


@pytest.mark.parametrize("args, needle", [
    (["--sizes", "huge"], "has no size 'huge'"),
    (["--sampling", "beam=4"], "beam"),
    (["--sampling", "top-k=0"], "k"),
    (["--sampling", "nucleus=1.5"], "1.5"),
    (["--length", "500"], "context window"),
    (["--n", "0"], "--n"),
])
def test_bad_input_fails_before_any_model_loads(micro_family, tmp_path, monkeypatch, args, needle):
    import gpt2guard.family

    monkeypatch.setattr(gpt2guard.family, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unwritable_output_directory(micro_family, tmp_path):
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--length", "20",
                                       "--out", str(tmp_path / "file" / "sub")])
    assert result.exit_code == 2 and "cannot write to output directory" in result.output


def _tree_digest(directory) -> dict:
    import hashlib
    from pathlib import Path

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(directory).iterdir())
            if p.is_file() and not p.name.endswith(".lock")}


def test_two_splits_of_one_set_never_share_texts_or_seeds(micro_family, tmp_path):
    """The same command for train and test (default seed) writes different records, each
    split's manifest names its own job, and stats and validate see no shared text."""
    from gpt2guard.datasets.sets import read_manifest
    from gpt2guard.generator.run import record_seed

    for split in ("train", "test"):
        result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling", "pure",
                                           "--n", "6", "--length", "24", "--split", split, "--out", str(tmp_path)])
        assert result.exit_code == 0, result.output
    train, test = read(tmp_path, "micro-small", "train"), read(tmp_path, "micro-small", "test")
    assert {r.text for r in train}.isdisjoint(r.text for r in test)
    assert {r.provenance["seed"] for r in train}.isdisjoint(r.provenance["seed"] for r in test)
    assert train[3].provenance["seed"] == record_seed(0, "micro-small", "train", 3)
    jobs = {s: read_manifest(tmp_path, "micro-small", s)["meta"]["job"] for s in ("train", "test")}
    assert jobs["train"]["id"] != jobs["test"]["id"] and jobs["test"]["settings"]["split"] == "test"
    assert all(r.provenance["job"] == jobs["train"]["id"] for r in train)
    stats = CliRunner().invoke(main, ["datasets", "stats", str(tmp_path), "micro-small"])
    assert stats.exit_code == 0 and "texts in more than one of train, valid, test: 0" in stats.output
    assert "source groups in more than one of train, valid, test: 0" in stats.output  # id 0 twice: two documents
    card = (tmp_path / "micro-small.card.md").read_text()
    assert f"generated by job `{jobs['test']['id']}`" in card and "split test" in card


def test_resume_with_other_settings_is_refused_and_runs_are_counted(micro_family, tmp_path):
    from gpt2guard.datasets.sets import read_manifest

    base = ["generate", "--family", "micro", "--sizes", "small", "--sampling", "top-k=40", "--length", "16",
            "--out", str(tmp_path)]
    assert CliRunner().invoke(main, base + ["--n", "3"]).exit_code == 0
    before = _tree_digest(tmp_path)
    for extra, needle in [(["--seed", "1"], "--seed 1 differs from the set's seed 0"),
                          (["--continue-past-eos"], "--continue-past-eos false differs from the set's stop_at_eos"),
                          (["--logprobs"], "--logprobs true differs"),
                          (["--batch-size", "1"], "--batch-size gives one-row passes, not the set's wider passes")]:
        result = CliRunner().invoke(main, base + ["--n", "5", *extra])
        assert result.exit_code != 0, extra
        assert needle in result.output and "use a new --out or the same settings" in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        assert _tree_digest(tmp_path) == before  # nothing written, nothing marked
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling",
                                       "top-k=40", "--length", "17", "--n", "5", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "--length 17 differs from the set's length 16" in result.output
    # the same settings with a larger --n resume the job; both runs are counted
    assert CliRunner().invoke(main, base + ["--n", "5"]).exit_code == 0
    meta = read_manifest(tmp_path, "micro-small-k40", "train")["meta"]
    assert [r["written"] for r in meta["runs"]] == [3, 2] and meta["config"]["n"] == 5
    assert len({r["job"] for r in meta["runs"]}) == 1
    assert CliRunner().invoke(main, base + ["--n", "5"]).exit_code == 0  # nothing to do: not a contributing run
    assert len(read_manifest(tmp_path, "micro-small-k40", "train")["meta"]["runs"]) == 2
    assert "2 runs wrote 5 records" in (tmp_path / "micro-small-k40.card.md").read_text()


@pytest.mark.parametrize("extra", [[], ["--continue-past-eos"], ["--sampling", "pure", "--batch-size", "1"]])
def test_generated_sets_validate_against_their_family(micro_family, tmp_path, extra):
    """`length` is the token count of `text` under the family's tokenizer, so what generate
    writes passes `datasets validate --family micro`: unconditional, past <|endoftext|>, and
    records that stopped at <|endoftext|>."""
    args = ["generate", "--family", "micro", "--sizes", "small", "--n", "8", "--length", "40", "--out", str(tmp_path)]
    assert CliRunner().invoke(main, args + extra).exit_code == 0
    manifests = sorted(tmp_path.glob("*.train.manifest.json"))
    assert manifests
    records = [r for m in manifests for r in read(tmp_path, m.name.split(".")[0])]
    if not extra:
        assert any(r.provenance["stop_reason"] == "eos" for r in records)
    else:
        assert any(r.length != r.provenance["new_tokens"] for r in records) or extra[0] != "--continue-past-eos"
    for m in manifests:
        result = CliRunner().invoke(main, ["datasets", "validate", str(m), "--family", "micro"])
        assert result.exit_code == 0, result.output


def test_conditional_sets_validate_against_their_family(micro_family, micro_tokenizer, tmp_path):
    _human_prompts(tmp_path, micro_tokenizer, 4, "Chapter {i}: the reader opens the file and parses it. ")
    result = CliRunner().invoke(main, ["generate", "--family", "micro", "--sizes", "small", "--sampling", "top-k=40",
                                       "--n", "4", "--length", "60", "--split", "test", "--prompts",
                                       str(tmp_path / "human-prompts.test.jsonl"), "--out", str(tmp_path / "gen")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["datasets", "validate", str(tmp_path / "gen" / "micro-small-k40.test.jsonl"),
                                       "--family", "micro"])
    assert result.exit_code == 0, result.output


def test_a_killed_unfinished_split_is_not_resumed_with_other_settings(micro_family, tmp_path, monkeypatch):
    """Records of a killed run sit in an unfinished shard the manifest does not count yet;
    a resume with another seed must still be refused, and the right one counts both runs."""
    import gpt2guard.generator.sample as sample
    from gpt2guard.datasets.sets import read_manifest

    real, calls = sample.generate_tokens, []

    def dies_on_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate_tokens", dies_on_second_chunk)
    job = dict(family="micro", sizes="small", sampling="pure", n=8, length=12, batch_size=1)
    with pytest.raises(KeyboardInterrupt):
        run_generation(GenerationJob(out=str(tmp_path), **job), progress=False)
    monkeypatch.setattr(sample, "generate_tokens", real)
    assert read_manifest(tmp_path, "micro-small", "train")["records"] == 0  # all four are in the partial shard
    with pytest.raises(GuardError, match="--seed 3 differs from the set's seed 0"):
        run_generation(GenerationJob(out=str(tmp_path), seed=3, **job), progress=False)
    run_generation(GenerationJob(out=str(tmp_path), **job), progress=False)
    runs = read_manifest(tmp_path, "micro-small", "train")["meta"]["runs"]
    assert [r["written"] for r in runs] == [4, 4]
