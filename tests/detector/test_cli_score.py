"""``gpt2guard score`` through click's CliRunner (micro family), the HTML report, bad input,
and the zero-shot detector's builtin calibration."""

from __future__ import annotations

import csv
import html
import io
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from gpt2guard.cli import main

TEXT = ("The module provides functions for working with files and directories. It returns a list of names, "
        "sorted in arbitrary order, and raises <b>an error</b> when the path does not exist & \"quotes\".")


@pytest.fixture(scope="module")
def docs(tmp_path_factory, micro_family):
    d = tmp_path_factory.mktemp("docs")
    (d / "a.txt").write_text(TEXT, encoding="utf-8")
    (d / "empty.txt").write_text("   \n\t ", encoding="utf-8")
    (d / "bin.dat").write_bytes(b"\x00\x01\x02\xff\xfe" * 20)
    (d / "latin1.txt").write_bytes("caf\xe9 au lait is what the module returns when asked".encode("latin-1") * 3)
    (d / "short.txt").write_text("Hi there.", encoding="utf-8")
    with open(d / "set.jsonl", "w", encoding="utf-8") as f:
        f.write(json.dumps({"id": "r1", "text": TEXT + " More text."}) + "\n")
        f.write(json.dumps({"id": "r2", "text": ""}) + "\n")
    return d


def run(args, input=None):
    result = CliRunner().invoke(main, args, input=input, catch_exceptions=False)
    return result


ZS = ["--family", "micro", "--threshold", "0.0"]


def test_score_json_every_input_kind(docs):
    files = [str(docs / n) for n in ("a.txt", "empty.txt", "bin.dat", "latin1.txt", "short.txt", "set.jsonl")]
    res = run(["score", *files, *ZS, "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert len(rows) == 7
    a = rows[str(docs / "a.txt")]
    assert a["decision"] in ("machine", "human") and a["n_tokens"] > 20 and a["n_windows"] >= 1
    assert a["method"] == "fast-detectgpt" and a["scorer"] == "micro:small"
    assert (a["decision"] == "machine") == (a["score"] > 0.0)
    for name, why in (("empty.txt", "empty"), ("bin.dat", "binary"), ("short.txt", "too short")):
        r = rows[str(docs / name)]
        assert r["decision"] == "abstain" and why in r["reason"], r
    assert rows[str(docs / "bin.dat")]["score"] is None
    assert "invalid_utf8" in rows[str(docs / "latin1.txt")]["flags"]
    assert rows[f"{docs / 'set.jsonl'}:r2"]["decision"] == "abstain"
    assert rows[f"{docs / 'set.jsonl'}:r1"]["decision"] != "abstain"


def test_score_table_csv_and_stdin(docs):
    res = run(["score", "-", *ZS, "--format", "csv"], input=TEXT)
    assert res.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert len(rows) == 1 and rows[0]["name"] == "-" and int(rows[0]["n_tokens"]) > 20
    res = run(["score", str(docs / "a.txt"), str(docs / "empty.txt"), *ZS])
    lines = res.output.strip().splitlines()
    assert lines[0].split()[:2] == ["name", "decision"] and "unscorable: empty" in lines[2]
    assert lines[-1].startswith("method fast-detectgpt")


def test_score_errors_are_one_line(docs):
    res = CliRunner().invoke(main, ["score", str(docs / "missing.txt"), *ZS])
    assert res.exit_code == 2 and "missing.txt" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["score", str(docs / "a.txt"), "--method", "nope", *ZS])
    assert res.exit_code == 2 and "nope" in res.output
    bad = docs / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "fine text here"}\nnot json\n', encoding="utf-8")
    res = CliRunner().invoke(main, ["score", str(bad), *ZS])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output
    res = CliRunner().invoke(main, ["score", str(bad), "--skip-bad", "--format", "json", *ZS])
    assert res.exit_code == 0 and "skipped 1 bad line" in res.output


def test_html_report(docs, tmp_path, micro_tokenizer):
    out = tmp_path / "r.html"
    res = run(["score", str(docs / "a.txt"), str(docs / "empty.txt"), *ZS, "--html", str(out)])
    assert res.exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    ids = micro_tokenizer(TEXT)["input_ids"]
    spans = page.split('<div class="tokens">')[1].split("</div>")[0]
    import re

    inner = re.findall(r'<span class="tok [^"]*" title="[^"]*">([^<]*)</span>', spans)
    assert len(inner) == len(ids) and html.unescape("".join(inner)) == micro_tokenizer.decode(ids)
    assert "an error</b>" not in page and "&amp;" in spans and "&lt;" in spans  # document text escaped
    for tid in ids:  # every token of the document, escaped, in order
        piece = html.escape(micro_tokenizer.decode([tid]))
        assert piece in spans
    assert spans.count('<span class="tok ') == len(ids)
    classes = {c for c in ("r10", "r100", "r1000", "rrest") if f"tok {c}" in spans}
    assert classes and " hot" in spans and "top: " in spans
    assert "nothing to show" in page  # the empty document


def test_top_alternatives_are_the_model_top5(micro_family):
    import torch

    from gpt2guard.detector.report_html import top_alternatives
    from gpt2guard.family import load_model

    loaded = load_model("micro", "small")
    ids = np.array(loaded.tokenizer(TEXT * 8)["input_ids"])  # several 128-token contexts long
    alt_ids, alt_p = top_alternatives(loaded, ids, 5)
    assert alt_ids.shape == (len(ids), 5) and np.all(np.diff(alt_p, axis=1) <= 0)
    with torch.no_grad():
        x = torch.tensor([[loaded.tokenizer.eos_token_id] + ids[:9].tolist()])
        p = torch.softmax(loaded.model(x).logits[0], -1)
    np.testing.assert_array_equal(alt_ids[:10], torch.topk(p, 5).indices.numpy())
    np.testing.assert_allclose(alt_p[:10], torch.topk(p, 5).values.numpy(), rtol=1e-5)
    # past the first window too, each position sees the context it was scored with: where
    # the engine ranks a token first, it is the top alternative, with the engine's probability
    from gpt2guard.detector import score_token_ids

    stats = score_token_ids([ids], loaded)[0]
    assert stats["n_windows"] > 1
    first = np.flatnonzero(stats["rank"] == 0)
    later = first[first >= loaded.n_positions]
    assert len(later) > 5
    np.testing.assert_array_equal(alt_ids[first, 0], ids[first])
    np.testing.assert_allclose(alt_p[first, 0], np.exp(stats["logp"][first]), rtol=1e-4)
    assert np.all(alt_p[:, 0] >= np.exp(stats["logp"]) - 1e-5)


def test_zero_shot_builtin_calibration(micro_family):
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    det = ZeroShotDetector("logrank", "micro", "small")
    cal = det.calibrate_builtin(0.1, max_docs=40, max_words=40, n_boot=50)
    assert det.threshold == cal.threshold and cal.n_human <= 40
    assert cal.warning and "100" in cal.warning  # 10 / 0.1 documents needed
    assert cal.achieved_fpr <= 0.1
    v = det.verdicts([TEXT, ""])
    assert v[1].decision == "abstain" and not math.isnan(v[0].score)


def test_html_report_of_a_long_document_shows_its_first_tokens(docs, tmp_path, micro_tokenizer):
    """--html renders at most --html-max-tokens tokens of a document and says so on the page
    and on stderr; the verdict judges every token."""
    import re

    long = docs / "long.txt"
    long.write_text(TEXT * 6, encoding="utf-8")
    out = tmp_path / "r.html"
    res = CliRunner().invoke(main, ["score", str(long), str(docs / "a.txt"), *ZS, "--format", "json", "--html",
                                    str(out), "--html-max-tokens", "100"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    n = len(micro_tokenizer(TEXT * 6)["input_ids"])
    rows = json.loads(res.stdout)
    assert rows[0]["n_tokens"] == n > 100 > rows[1]["n_tokens"] and "truncated" not in rows[0]["flags"]
    page = out.read_text(encoding="utf-8")
    first, second = page.split('<section class="doc">')[1:]
    assert len(re.findall(r'<span class="tok ', first)) == 100
    assert f"Showing the first 100 of {n:,} tokens" in first
    assert "Showing" not in second and len(re.findall(r'<span class="tok ', second)) == rows[1]["n_tokens"]
    assert "1 document(s) longer than --html-max-tokens 100 show their first 100 tokens" in res.stderr


def test_documents_are_read_and_scored_a_group_at_a_time(docs, monkeypatch):
    """Each group is scored before the next file is read, and the verdicts keep their input
    positions and are the verdicts of scoring everything at once."""
    from pathlib import Path

    from gpt2guard.detector import inputs
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    files = [str(docs / n) for n in ("a.txt", "empty.txt", "latin1.txt", "set.jsonl", "short.txt")]
    together = json.loads(run(["score", *files, *ZS, "--format", "json"]).stdout)
    events = []
    read, verdicts = Path.read_bytes, ZeroShotDetector.verdicts
    monkeypatch.setattr(Path, "read_bytes", lambda self: events.append(("read", self.name)) or read(self))
    monkeypatch.setattr(ZeroShotDetector, "verdicts",
                        lambda self, texts, names=None, stats=None: events.append(("score", len(texts)))
                        or verdicts(self, texts, names, stats))
    monkeypatch.setattr(inputs, "BATCH_DOCS", 2)
    grouped = json.loads(run(["score", *files, *ZS, "--format", "json"]).stdout)
    assert grouped == together and [r["index"] for r in grouped] == list(range(6))
    assert events.index(("score", 2)) < events.index(("read", "latin1.txt"))
    assert [e for e in events if e[0] == "score"] == [("score", 2)] * 3
