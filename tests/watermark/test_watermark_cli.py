"""The watermark's command line: keygen, generate --watermark, score --watermark, and their
errors (one line, a non-zero exit, nothing written)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="gpt2guard")


def one_line_error(result, pattern=None):
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    if pattern:
        assert pattern in lines[0], lines[0]


def test_keygen_writes_once_and_info_shows_no_secret(micro_family, tmp_path):
    path = tmp_path / "k.key"
    result = run(["watermark", "keygen", "--out", path, "--family", "micro", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    secret = json.loads(path.read_text())["key"]
    assert info["family"] == "micro" and len(info["digest"]) == 64 and secret not in result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = path.read_bytes()
    one_line_error(run(["watermark", "keygen", "--out", path, "--family", "micro"]), "--force")
    assert path.read_bytes() == before
    assert run(["watermark", "keygen", "--out", path, "--family", "micro", "--force"]).exit_code == 0
    assert path.read_bytes() != before
    shown = run(["watermark", "info", path])
    assert shown.exit_code == 0 and json.loads(path.read_text())["key"] not in shown.output
    assert json.loads(path.read_text())["digest"] in shown.output


def test_keygen_errors(micro_family, tmp_path):
    one_line_error(run(["watermark", "keygen", "--out", tmp_path, "--family", "micro"]))
    one_line_error(run(["watermark", "keygen", "--out", tmp_path / "k", "--family", "nope"]))
    one_line_error(run(["watermark", "keygen", "--out", tmp_path / "k", "--family", "micro", "--seed", "-1"]))
    assert not (tmp_path / "k").exists()


@pytest.fixture(scope="module")
def marked_set(micro_key, tmp_path_factory):
    """A watermarked and an unwatermarked micro set, made through the CLI."""
    out = tmp_path_factory.mktemp("wm-cli")
    for sub, extra in (("marked", ["--watermark", micro_key[1]]), ("plain", [])):
        result = run(["generate", "--family", "micro", "--sizes", "small", "--sampling", "pure", "--n", "6",
                      "--length", "100", "--continue-past-eos", "--out", out / sub, "--no-progress", *extra])
        assert result.exit_code == 0, result.output
    return out / "marked" / "micro-small.train.jsonl", out / "plain" / "micro-small.train.jsonl"


def test_score_finds_the_watermark_alone(marked_set, micro_key):
    marked, plain = marked_set
    result = run(["score", marked, plain, "--watermark", micro_key[1], "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("["):])
    assert len(rows) == 12
    got = {r["name"].split("/")[-2]: [] for r in rows}
    for r in rows:
        got[r["name"].split("/")[-2]].append(r)
        assert {"n_scored", "green_fraction", "z", "p_value", "detected", "theoretical_fpr",
                "empirical_fpr"} <= set(r)
        assert r["theoretical_fpr"] == pytest.approx(3.167e-5, rel=1e-3) and r["empirical_n_human"] > 200
        assert "probability" not in r  # no detector ran
    assert sum(r["decision"] == "watermarked" for r in got["marked"]) >= 5  # a binary (NUL) text abstains
    assert not any(r["detected"] for r in got["plain"])
    assert "empirical" in result.output  # the false-positive rates are reported (stderr)


def test_score_tables_and_csv(marked_set, micro_key):
    table = run(["score", marked_set[0], "--watermark", micro_key[1]])
    assert table.exit_code == 0 and "watermarked" in table.output and "theoretical 3.2e-05" in table.output
    csv = run(["score", marked_set[0], "--watermark", micro_key[1], "--format", "csv"])
    header = [ln for ln in csv.output.splitlines() if ln.startswith("name,")][0]
    assert "z" in header.split(",") and "p_value" in header.split(",")


def test_score_runs_a_detector_beside_the_watermark(marked_set, micro_key):
    result = run(["score", marked_set[0], "--watermark", micro_key[1], "--method", "logp", "--family", "micro",
                  "--threshold", "0", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("["):])
    assert all("decision" in r and "score" in r and "z" in r["watermark"] for r in rows)
    csv = run(["score", marked_set[0], "--watermark", micro_key[1], "--method", "logp", "--family", "micro",
               "--threshold", "0", "--format", "csv"])
    assert "watermark_z" in csv.output and "watermark_detected" in csv.output


@pytest.mark.parametrize("extra, pattern", [
    (["--watermark-gamma", "1.5"], "--watermark-gamma"),
    (["--watermark-gamma", "0"], "--watermark-gamma"),
    (["--watermark-scheme", "nope"], "--watermark-scheme"),
    (["--watermark-z", "nan"], "--watermark-z"),
    (["--threshold", "1"], "sets up a detector"),
])
def test_score_option_errors(marked_set, micro_key, extra, pattern):
    one_line_error(run(["score", marked_set[0], "--watermark", micro_key[1], *extra]), pattern)


def test_score_key_errors(marked_set, foreign_key, tmp_path):
    one_line_error(run(["score", marked_set[0], "--watermark", tmp_path / "none.key"]), "no such file")
    bad = tmp_path / "bad.key"
    bad.write_text("{not json")
    one_line_error(run(["score", marked_set[0], "--watermark", bad]), "malformed")
    # a key for another tokenizer: the family is named, or the key's family cannot even be loaded
    one_line_error(run(["score", marked_set[0], "--watermark", foreign_key[1], "--family", "micro"]),
                   "is for the foreign tokenizer")
    one_line_error(run(["score", marked_set[0], "--watermark-gamma", "0.5"]), "goes with --watermark")


@pytest.mark.parametrize("extra, pattern", [
    (["--watermark-gamma", "1"], "--watermark-gamma"),
    (["--watermark-gamma", "-0.1"], "--watermark-gamma"),
    (["--watermark-delta", "-1"], "--watermark-delta"),
    (["--watermark-scheme", "righthash"], "--watermark-scheme"),
])
def test_generate_option_errors_write_nothing(micro_key, tmp_path, extra, pattern):
    out = tmp_path / "out"
    one_line_error(run(["generate", "--family", "micro", "--sizes", "small", "--n", "1", "--length", "4",
                        "--out", out, "--watermark", micro_key[1], *extra]), pattern)
    assert not out.exists()


def test_generate_key_errors_write_nothing(micro_family, foreign_key, tmp_path):
    out = tmp_path / "out"
    base = ["generate", "--family", "micro", "--sizes", "small", "--n", "1", "--length", "4", "--out", out]
    bad = tmp_path / "bad.key"
    bad.write_text('{"format": "gpt2guard.watermark-key", "version": 1, "key": "00"}')
    one_line_error(run([*base, "--watermark", tmp_path / "none.key"]), "no such file")
    one_line_error(run([*base, "--watermark", bad]), "malformed")
    one_line_error(run([*base, "--watermark", foreign_key[1]]), "is for the foreign tokenizer")
    one_line_error(run([*base, "--watermark-delta", "1"]), "goes with --watermark")
    assert not out.exists() or not any(out.iterdir())
