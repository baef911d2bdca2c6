"""Bad lines stop an import with file and line, or are skipped and counted; nothing is lost silently."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.datasets.jsonl import ReadStats, iter_jsonl
from gpt2guard.datasets.sets import open_set, read_manifest
from gpt2guard.errors import GuardError

GOOD = [{"id": i, "text": f"good document number {i}"} for i in range(6)]


BAD = {"invalid json": b'{"id": 100, "text": "broken json"',
       "invalid utf8": b'{"id": 101, "text": "caf\xe9 in latin-1"}',
       "missing text": b'{"id": 102, "body": "no text field"}',
       "not object": b"[1, 2, 3]",
       "text not string": b'{"id": 103, "text": 42}'}


def messy_file(path):
    """Six good records, one bad line of each kind (lines 3, 5, 7, 9, 10) and a blank line (6)."""
    good = [json.dumps(g).encode() for g in GOOD]
    bad = list(BAD.values())
    lines = good[:2] + bad[:1] + good[2:3] + bad[1:2] + [b""] + bad[2:3] + good[3:4] + bad[3:5] + good[4:]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("reason", BAD)
def test_first_bad_line_stops_with_file_and_line(tmp_path, reason):
    lines = [json.dumps(g).encode() for g in GOOD]
    lines.insert(3, BAD[reason])
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(GuardError, match=rf"bad.jsonl:4: {reason}:"):
        list(iter_jsonl(path))


def test_skip_counts_every_bad_line(tmp_path):
    stats = ReadStats()
    recs = list(iter_jsonl(messy_file(tmp_path / "messy.jsonl"), on_error="skip", stats=stats))
    assert [r.id for r in recs] == [0, 1, 2, 3, 4, 5]
    assert dict(stats.skipped) == {"invalid_json": 1, "invalid_utf8": 1, "missing_text": 1, "not_object": 1,
                                   "text_not_string": 1}
    assert stats.lines == stats.records + stats.n_skipped + stats.blank == 12
    assert [e["line"] for e in stats.examples] == [3, 5, 7, 9, 10]


def test_truncated_gzip_is_an_error_not_a_short_read(tmp_path):
    import gzip

    data = gzip.compress(b"".join(json.dumps(g).encode() + b"\n" for g in GOOD * 50))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(GuardError, match="corrupt or truncated gzip"):
        list(iter_jsonl(path))


def test_cli_import_bad_line_is_one_error_line(tmp_path, micro_tokenizer):
    path = messy_file(tmp_path / "messy.jsonl")
    res = CliRunner().invoke(main, ["datasets", "import", str(path), str(tmp_path / "out"), "--set", "m",
                                    "--family", "micro"])
    assert res.exit_code != 0
    assert res.output.strip().splitlines() == [
        f"Error: {path}:3: invalid json: Expecting ',' delimiter at column 34 (--skip-bad skips and counts such lines)"]


def test_cli_import_skip_bad_reports_counts_in_output_manifest_and_card(tmp_path, micro_tokenizer):
    path, out = messy_file(tmp_path / "messy.jsonl"), tmp_path / "out"
    res = CliRunner().invoke(main, ["datasets", "import", str(path), str(out), "--set", "m", "--split", "train",
                                    "--skip-bad", "--family", "micro", "--label", "human"])
    assert res.exit_code == 0, res.output
    assert "6 records" in res.output
    assert "invalid_json 1, invalid_utf8 1, missing_text 1, not_object 1, text_not_string 1" in res.output
    manifest = read_manifest(out, "m", "train")
    assert manifest["skipped"] == {"invalid_json": 1, "invalid_utf8": 1, "missing_text": 1, "not_object": 1,
                                   "text_not_string": 1}
    card = (out / "m.card.md").read_text()
    assert "skipped input lines: invalid_json 1, invalid_utf8 1" in card and "(5 in all)" in card
    recs = list(open_set(out, "m", "train"))
    assert [r.label for r in recs] == ["human"] * 6 and all(r.length > 0 for r in recs)


def test_cli_errors_never_show_a_traceback(tmp_path):
    runner = CliRunner()
    (tmp_path / "d").mkdir()
    for args in (["datasets", "stats", str(tmp_path / "d"), "nope"],
                 ["datasets", "split", str(tmp_path / "d"), "nope", "--fractions", "0.5,0.5,0.5"],
                 ["datasets", "import", str(tmp_path / "d"), str(tmp_path / "o"), "--set", "x", "--format", "jsonl"],
                 ["datasets", "match", str(tmp_path / "d"), "--human", "h", "--machine", "m", "--out", str(tmp_path)],
                 ["datasets", "prompts", str(tmp_path / "d"), "h"]):
        res = runner.invoke(main, args)
        assert res.exit_code != 0 and "Traceback" not in res.output, args
        assert res.output.startswith("Error: ") and len(res.output.strip().splitlines()) == 1, res.output
