"""The command line: help without torch, family commands, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from gpt2guard.cli import main


def test_help_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from gpt2guard.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
            "assert 'family' in r.output; "
            "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'ray') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_family_list_shows_sizes_and_availability(micro_family):
    result = CliRunner().invoke(main, ["family", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {(r["family"], r["size"]): r for r in json.loads(result.output)}
    assert rows[("gpt2", "xl")]["params"] == 1_557_611_200
    assert rows[("gpt2", "small")]["available"] == "no"
    assert rows[("micro", "medium")]["available"].endswith("medium")
    table = CliRunner().invoke(main, ["family", "list"]).output
    assert "124,439,808" in table


def test_family_info_reports_build(micro_family):
    result = CliRunner().invoke(main, ["family", "info", "micro", "--json"])
    info = json.loads(result.output)
    assert info["build"]["complete"] and [s["size"] for s in info["sizes"]] == ["small", "medium"]
    text = CliRunner().invoke(main, ["family", "info", "micro"]).output
    assert "val loss" in text and "corpus:" in text


def test_family_build_reports_losses(micro_family):
    result = CliRunner().invoke(main, ["family", "build", "micro"])
    assert result.exit_code == 0, result.output
    assert "val loss" in result.output and str(micro_family) in result.output


def test_errors_are_one_line_and_nonzero(tmp_path):
    runner = CliRunner()
    for args, needle in [(["family", "info", "nope"], "unknown family 'nope'"),
                         (["family", "build", "gpt2"], "not builtin"),
                         (["family", "path", "gpt2", "large"], "openai-community/gpt2-large"),
                         (["family", "path", "gpt2", "huge"], "has no size 'huge'"),
                         (["family", "path", str(tmp_path)], "no config.json")]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
