"""Round trips through SetWriter and open_set, and the OpenAI gpt-2-output-dataset layout."""

from __future__ import annotations

import gzip
import json

import pytest
from ds_helpers import openai_lines, write_jsonl

from gpt2guard.datasets.jsonl import iter_jsonl
from gpt2guard.datasets.names import OPENAI_SETS, parse_file, set_name
from gpt2guard.datasets.readers import read_source
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import list_sets, open_set, read_manifest
from gpt2guard.datasets.writer import SetWriter
from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_file


def sample_records() -> list[Record]:
    return [
        Record(id=0, text="Plain text.", length=3, ended=True, label="human", source="a"),
        Record(id="doc/1", text="Ünïcode — “quotes”, emoji 🙂 and a\nnewline", length=12, ended=False,
               label="machine", provenance={"family": "nano", "size": "small", "sampling": {"top_k": 40}, "seed": 3},
               flags=["repetition"], token_logprobs=[-1.5, -0.25]),
        Record(id=2, text="tab\tand control \x01 chars", length=5, extra={"url": "http://x", "domain": "x"}),
        Record(id=3, text="", length=0, ended=True, flags=["empty"]),
    ]


@pytest.mark.parametrize("shard_size", [None, 2])
def test_round_trip_keeps_every_field(tmp_path, shard_size):
    recs = sample_records()
    with SetWriter(tmp_path, "nano-small-k40", "train", shard_size=shard_size, meta={"config": {"k": 40}}) as w:
        for r in recs:
            w.write(r)
    back = list(open_set(tmp_path, "nano-small-k40", "train"))
    assert [r.to_dict() for r in back] == [r.to_dict() for r in recs]
    m = read_manifest(tmp_path, "nano-small-k40", "train")
    assert m["complete"] and m["records"] == 4 and m["meta"]["config"] == {"k": 40}
    for shard in m["shards"]:
        assert sha256_file(tmp_path / shard["file"]) == shard["sha256"]
    expected = ["nano-small-k40.train.jsonl"] if shard_size is None else [
        "nano-small-k40.train.00000.jsonl", "nano-small-k40.train.00001.jsonl"]
    assert [s["file"] for s in m["shards"]] == expected
    assert not list(tmp_path.glob(".*.partial"))


def test_single_file_set_reads_like_openai_files(tmp_path):
    """Tools written for gpt-2-output-dataset read each line with json.loads and use the four core keys."""
    with SetWriter(tmp_path, "nano-small", "test") as w:
        for r in sample_records():
            w.write(r)
    lines = (tmp_path / "nano-small.test.jsonl").read_text(encoding="utf-8").splitlines()
    objs = [json.loads(line) for line in lines]
    assert [list(o)[:4] for o in objs] == [["id", "ended", "length", "text"]] * 4
    assert objs[1]["text"] == sample_records()[1].text
    assert "🙂" in lines[1]  # non-ASCII written as UTF-8, not escaped


def test_open_set_reads_openai_layout_plain_and_gzip(openai_dir):
    assert list_sets(openai_dir) == {"small-117M-k40": ["test"], "webtext": ["test"]}
    web = list(open_set(openai_dir, "webtext", "test"))
    k40 = list(open_set(openai_dir, "small-117M-k40", "test"))
    assert [r.to_dict() for r in web] == [Record.from_dict(o).to_dict() for o in openai_lines(12, start=255000)]
    assert len(k40) == 10 and k40[0].id == 255000 and k40[0].length == 62
    with pytest.raises(GuardError, match=r"no set 'xl-1542M' split 'test'.*webtext: test"):
        list(open_set(openai_dir, "xl-1542M", "test"))


def test_openai_import_labels_and_provenance(openai_dir):
    web = list(read_source(openai_dir, "openai", source_set="webtext", source_split="test"))
    k40 = list(read_source(openai_dir, source_set="small-117M-k40", source_split="test"))
    assert {r.label for r in web} == {"human"} and all(r.provenance is None for r in web)
    assert {r.label for r in k40} == {"machine"}
    assert k40[0].provenance["sampling"] == {"method": "top_k", "top_k": 40}
    assert k40[0].provenance["size"] == "small"


def test_names_follow_openai_pattern():
    assert "xl-1542M-nucleus" in OPENAI_SETS and "small-117M-k40" in OPENAI_SETS and len(OPENAI_SETS) == 13
    assert set_name("nano", "small") == "nano-small"
    assert set_name("nano", "small", "k40") == "nano-small-k40"
    assert parse_file("nano-small-k40.train.00003.jsonl") == ("nano-small-k40", "train")
    assert parse_file("webtext.test.jsonl.gz") == ("webtext", "test")
    assert parse_file(".nano-small.train.jsonl.partial") is None
    with pytest.raises(GuardError, match="invalid set name"):
        SetWriter("/tmp", "bad.name", "train")


def test_generic_jsonl_text_field_and_ids(tmp_path):
    src = tmp_path / "any.jsonl.gz"  # compressed, detected by content
    src.write_bytes(gzip.compress(b'{"body": "first text", "url": "u1"}\n\n{"body": "second", "key": 7}\n'))
    recs = list(iter_jsonl(src, text_field="body", source_field="url"))
    assert [(r.id, r.text, r.source) for r in recs] == [(0, "first text", "u1"), (2, "second", None)]
    assert recs[1].extra == {"key": 7}
    back = Record.from_dict(recs[0].to_dict())
    assert back.text == "first text" and back.extra == {"url": "u1"}


def test_writer_refuses_duplicate_ids_and_existing_set(tmp_path):
    write_jsonl(tmp_path / "x.train.jsonl", openai_lines(3))
    with pytest.raises(GuardError, match="already exists"):
        SetWriter(tmp_path, "x", "train", resume=False)
    with SetWriter(tmp_path, "x", "train") as w:  # appending to a plain file adopts it
        assert w.existing_ids == {0, 1, 2}
        with pytest.raises(GuardError, match="duplicate id 1"):
            w.write(Record(id=1, text="again"))
        w.write(Record(id=3, text="new"))
    assert [r.id for r in open_set(tmp_path, "x", "train")] == [0, 1, 2, 3]
    with SetWriter(tmp_path, "x", "train", resume=False, overwrite=True) as w:
        w.write(Record(id=9, text="fresh"))
    assert [r.id for r in open_set(tmp_path, "x", "train")] == [9]


def test_lone_surrogates_are_refused_on_both_sides(tmp_path):
    with SetWriter(tmp_path, "s", "train") as w:
        with pytest.raises(GuardError, match="lone surrogate"):
            w.write(Record(id=1, text="bad \ud800 text"))
        w.write(Record(id=2, text="good"))
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "bad \\ud800 text"}\n{"id": 2, "text": "ok \\u00e9"}\n')
    with pytest.raises(GuardError, match=r"in.jsonl:1: invalid utf8"):
        list(iter_jsonl(src))
    assert [r.text for r in iter_jsonl(src, on_error="skip")] == ["ok é"]
