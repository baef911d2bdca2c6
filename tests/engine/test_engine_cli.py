"""The engine options on the command line: what a user can get wrong is one line and a
non-zero exit, before any model loads or anything is written."""

from __future__ import annotations

import socket
import sys

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main

GEN = ["generate", "--family", "micro", "--sizes", "small", "--sampling", "pure", "--n", "2", "--length", "4"]


def one_line(result) -> str:
    assert result.exit_code != 0, result.output
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line and "Traceback" not in line, result.output
    return line


@pytest.mark.parametrize("command", [GEN + ["--out", "{out}"], ["score", "{file}", "--method", "logp"],
                                     ["release", "simulate", "{file}", "--out", "{out}"]])
def test_engine_ray_without_ray_says_how_to_install_it(command, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the extra sees
    doc = tmp_path / "doc.txt"
    doc.write_text("Some text to judge.")
    args = [a.format(out=tmp_path / "out", file=doc) for a in command] + ["--engine", "ray"]
    line = one_line(CliRunner().invoke(main, args))
    assert line == "Error: --engine ray needs Ray: pip install 'gpt2guard[ray]'"
    assert not (tmp_path / "out").exists()


def test_ray_options_without_engine_ray_are_refused():
    line = one_line(CliRunner().invoke(main, GEN + ["--out", "x", "--ray-workers", "2"]))
    assert "--ray-workers goes with --engine ray" in line


def test_engine_ray_is_for_the_feature_detectors(tmp_path):
    line = one_line(CliRunner().invoke(main, ["detector", "train", "--data", str(tmp_path), "--kind", "tfidf",
                                              "--out", str(tmp_path / "det"), "--engine", "ray"]))
    assert "--kind tfidf runs here" in line


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("address, expect", [(f"127.0.0.1:{closed_port()}", "cannot reach a Ray cluster at"),
                                             ("no-port-here", "is not HOST:PORT")])
def test_an_unreachable_or_bad_ray_address_is_one_line(address, expect, micro_family, tmp_path):
    pytest.importorskip("ray.data", reason="Ray is not installed (pip install -e '.[ray]')")
    import ray

    assert not ray.is_initialized()
    out = tmp_path / "out"
    line = one_line(CliRunner().invoke(main, GEN + ["--out", str(out), "--engine", "ray", "--ray-address", address]))
    assert expect in line and address in line
    assert not list(out.glob("*.jsonl")) and not list(out.glob(".*partial"))
