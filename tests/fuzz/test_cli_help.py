"""Help texts: every command and every option says what it does; ``score --help`` lists the methods."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from fuzz_helpers import command, walk

from gpt2guard.cli import main

GROUPS = [(), ("family",), ("datasets",), ("detector",), ("release",), ("release", "plan"), ("release", "card"),
          ("watermark",)]


@pytest.mark.parametrize("path", walk() + GROUPS, ids=lambda p: "-".join(p) or "gpt2guard")
def test_every_command_and_option_has_help(path):
    cmd = command(path)
    assert (cmd.help or "").strip(), f"`gpt2guard {' '.join(path)}` has no help text (its docstring)"
    missing = [max(p.opts, key=len) for p in cmd.params if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not missing, f"options of `gpt2guard {' '.join(path)}` without help: {missing}"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    for p in cmd.params:
        if isinstance(p, click.Option):
            assert max(p.opts, key=len) in result.output


def test_groups_cover_every_group():
    def groups(cmd, path=()):
        if isinstance(cmd, click.Group):
            yield path
            for name, sub in cmd.commands.items():
                yield from groups(sub, path + (name,))

    assert sorted(groups(main)) == sorted(GROUPS)


def test_score_help_lists_every_method():
    from gpt2guard.detector.methods import list_methods

    result = CliRunner().invoke(main, ["score", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    names = list_methods()
    assert len(names) >= 9
    missing = [n for n in names if n not in result.output]
    assert not missing, f"score --help does not list {missing}"


def test_unknown_method_is_refused_with_the_list():
    from gpt2guard.detector.methods import list_methods

    result = CliRunner().invoke(main, ["score", "-", "--method", "detectgpt"], input=b"some text")
    assert result.exit_code == 2
    assert "--method" in result.output and all(n in result.output for n in list_methods())
    assert len(result.output.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("path", [p for p in GROUPS if p], ids=lambda p: "-".join(p))
def test_a_group_without_a_command_shows_its_help(path):
    result = CliRunner().invoke(main, list(path))
    assert "Commands:" in result.output and "Usage:" in result.output, result.output
    assert "Error:" not in result.output
