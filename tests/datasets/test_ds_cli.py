"""The ``gpt2guard datasets`` commands, end to end on real files, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from ds_helpers import openai_lines, prose, write_jsonl

from gpt2guard.cli import main
from gpt2guard.datasets.importing import import_set
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.datasets.tokens import count_tokens
from gpt2guard.errors import GuardError


def run(*args, ok=True):
    res = CliRunner().invoke(main, ["datasets", *map(str, args)])
    if ok:
        assert res.exit_code == 0, res.output
    return res


def test_builtin_set_resumes_validates_and_has_a_card(tmp_path, micro_tokenizer):
    out = tmp_path / "human"
    first = run("builtin", out, "--family", "micro", "--packages", "", "--limit", "120", "--json")
    splits = json.loads(first.output)["splits"]
    assert sum(s["records"] for s in splits.values()) == 120 and min(s["records"] for s in splits.values()) > 0
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert {"builtin.train.jsonl", "builtin.valid.jsonl", "builtin.test.jsonl", "builtin.card.md",
            "builtin.test.manifest.json"} <= set(files)
    again = run("builtin", out, "--family", "micro", "--packages", "", "--limit", "120")
    assert "(0 written now)" in again.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == files
    stats = json.loads(run("stats", out, "builtin", "--json").output)
    assert stats["leakage"]["shared_groups"] == 0
    assert stats["splits"]["train"]["labels"] == {"human": splits["train"]["records"]}
    assert run("validate", out / "builtin.test.manifest.json", "--family", "micro").output.endswith("ok\n")
    card = (out / "builtin.card.md").read_text()
    for heading in ("## Motivation", "## Composition", "## Collection process", "## Preprocessing", "## Uses",
                    "## Splits"):
        assert heading in card
    assert f"| test | {splits['test']['records']} |" in card and "`micro` tokenizer" in card


def test_read_builtin_maps_corpus_documents(monkeypatch):
    from gpt2guard.datasets import builtin, read_builtin

    docs = [builtin.CorpusDoc(f"pydoc:t{i}#0", f"pydoc:t{i}", ("train", "test")[i % 2], f"Text {i}.") for i in range(6)]
    monkeypatch.setattr(builtin, "builtin_corpus", lambda packages, seed: docs)
    recs = list(read_builtin("test", max_docs=4))
    assert [(r.id, r.source, r.text, r.label, r.ended) for r in recs] == [
        ("pydoc:t1#0", "pydoc:t1", "Text 1.", "human", True), ("pydoc:t3#0", "pydoc:t3", "Text 3.", "human", True)]
    with pytest.raises(GuardError, match="splits train, valid, test"):
        list(read_builtin("dev"))


def test_import_txt_directory(tmp_path, micro_tokenizer):
    src = tmp_path / "txt"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("First human document.\n")
    (src / "sub" / "b.txt").write_text("Second one, in a folder.")
    (src / "empty.txt").write_text("")
    (src / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (src / "notes.md").write_text("not a txt file")
    res = run("import", src, tmp_path / "out", "--set", "mine", "--skip-bad", "--family", "micro", "--json")
    result = json.loads(res.output)
    assert result["records"] == 3 and result["read"]["skipped"] == {"invalid_utf8": 1}
    assert result["flags"] == {"empty": 1}
    recs = list(open_set(tmp_path / "out", "mine", "all"))
    assert [(r.id, r.source) for r in recs] == [("a.txt", "a.txt"), ("empty.txt", "empty.txt"),
                                               ("sub/b.txt", "sub/b.txt")]
    assert recs[0].text == "First human document.\n" and recs[1].flags == ["empty"]
    assert [r.length for r in recs] == count_tokens([r.text for r in recs], micro_tokenizer)


def test_import_openai_files_then_split_match_and_card(tmp_path, openai_dir, micro_tokenizer):
    out = tmp_path / "sets"
    run("import", openai_dir, out, "--from-set", "webtext", "--split", "test", "--family", "micro")
    run("import", openai_dir, out, "--from-set", "small-117M-k40", "--split", "test", "--family", "micro")
    web = list(open_set(out, "webtext", "test"))
    assert len(web) == 12 and {r.label for r in web} == {"human"}
    assert [r.length for r in web] == count_tokens([r.text for r in web], micro_tokenizer)  # recounted
    kept = run("import", openai_dir, tmp_path / "kept", "--from-set", "webtext", "--split", "test",
               "--family", "micro", "--keep-lengths")
    assert "12 records" in kept.output
    assert [r.length for r in open_set(tmp_path / "kept", "webtext", "test")] == [42] * 12
    assert read_manifest(tmp_path / "kept", "webtext", "test")["meta"]["tokenizer"]["kept_source_lengths"] is True
    assert "other lengths kept from the source" in (tmp_path / "kept" / "webtext.card.md").read_text()
    res = json.loads(run("match", out, "--human", "webtext", "--machine", "small-117M-k40", "--out",
                         tmp_path / "matched", "--method", "truncate", "--family", "micro", "--json").output)
    assert res["ks_after"] < res["ks_before"]
    config = tmp_path / "gen.json"
    config.write_text(json.dumps({"family": "micro", "sampling": {"top_k": 40}, "seed": 11}))
    path = run("card", tmp_path / "matched", "small-117M-k40", "--config", config).output.strip()
    card = open(path).read()
    assert "Generation config" in card and '"top_k": 40' in card and "machine 10" in card
    assert "without any content filter" in card


def test_validate_reports_problems_and_exits_1(tmp_path, micro_tokenizer):
    path = tmp_path / "x.test.jsonl"
    objs = openai_lines(4)
    objs[1]["id"] = 0  # duplicate
    objs[2]["length"] = -3
    objs[3]["label"] = "robot"
    objs[0]["length"] = count_tokens([objs[0]["text"]], micro_tokenizer)[0]  # the one right length
    write_jsonl(path, objs)
    with open(path, "a") as f:
        f.write("{not json\n")
    res = run("validate", path, "--family", "micro", "--json", ok=False)
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["errors"] == {"bad_label": 1, "bad_length": 1, "duplicate_id": 1, "invalid_json": 1,
                                "length_mismatch": 2}
    assert report["examples"][0]["where"].endswith("x.test.jsonl:5")


def test_import_appends_other_sources_and_refuses_duplicate_ids(tmp_path, micro_tokenizer):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(a, openai_lines(5))
    write_jsonl(b, [dict(o, text="Other. " + o["text"]) for o in openai_lines(5, start=3)])  # ids 3 and 4 clash
    run("import", a, tmp_path / "out", "--set", "s", "--family", "micro")
    res = run("import", b, tmp_path / "out", "--set", "s", "--family", "micro", ok=False)
    assert res.exit_code != 0 and "duplicate id 3" in res.output
    res = run("import", b, tmp_path / "out", "--set", "s", "--family", "micro", "--skip-bad", "--json")
    assert json.loads(res.output)["read"]["skipped"] == {"duplicate_id": 2}
    assert [r.id for r in open_set(tmp_path / "out", "s", "all")] == list(range(8))
    assert read_manifest(tmp_path / "out", "s", "all")["skipped"] == {"duplicate_id": 2}
    again = json.loads(run("import", a, tmp_path / "out", "--set", "s", "--family", "micro", "--json").output)
    assert (again["written"], again["already_written"], again["records"]) == (0, 5, 8)  # same records: no-op


class Interrupting:
    """A tokenizer that stops the job (as Ctrl-C would) on its ``n``-th batch."""

    def __init__(self, tokenizer, n):
        self.backend_tokenizer, self.n, self.calls = self, n, 0
        self._inner = tokenizer.backend_tokenizer

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def encode_batch_fast(self, texts, **kw):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return self._inner.encode_batch_fast(texts, **kw)


def test_interrupted_import_resumes_without_duplicates_or_loss(tmp_path, micro_tokenizer):
    src = tmp_path / "big.jsonl"
    write_jsonl(src, [{"id": f"d{i}", "text": prose(i, 12)} for i in range(700)])
    with pytest.raises(KeyboardInterrupt):
        import_set(src, tmp_path / "out", "big", "all", tokenizer=Interrupting(micro_tokenizer, 3), family="micro")
    assert read_manifest(tmp_path / "out", "big", "all")["complete"] is False
    res = import_set(src, tmp_path / "out", "big", "all", tokenizer=micro_tokenizer, family="micro")
    assert res["already_written"] == 512 and res["written"] == 188 and res["records"] == 700
    assert [r.id for r in open_set(tmp_path / "out", "big", "all")] == [f"d{i}" for i in range(700)]
    with pytest.raises(GuardError, match="tokenizer"):  # lengths never mix two tokenizers
        import_set(src, tmp_path / "out", "big", "all", tokenizer=_OtherVocab(micro_tokenizer))


class _OtherVocab(Interrupting):
    def __init__(self, tokenizer):
        super().__init__(tokenizer, -1)

    def to_str(self):
        return self._inner.to_str() + " "
