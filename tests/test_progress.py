"""Progress bars: drawn on a terminal, never in a pipe, a captured stream or when asked for quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpt2guard.progress import progress_bar, show_progress

ROOT = Path(__file__).resolve().parents[1]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_only_on_a_terminal_and_only_when_asked():
    tty, pipe = FakeTerminal(), io.StringIO()
    assert show_progress(True, tty) and not show_progress(False, tty) and not show_progress(True, pipe)
    for stream, progress in ((tty, True), (tty, False), (pipe, True)):
        assert sum(progress_bar(range(5), progress=progress, stream=stream, desc="work")) == 10
    assert "work" in tty.getvalue() and "5/5" in tty.getvalue()
    assert pipe.getvalue() == ""
    quiet = FakeTerminal()
    list(progress_bar(range(5), progress=False, stream=quiet))
    assert quiet.getvalue() == ""


def test_scoring_engine_writes_no_bar_into_captured_stderr(micro_family, capfd):
    """The release simulation scores with progress=True; with stderr redirected (not a
    terminal) nothing of the bar may reach it."""
    from gpt2guard.detector.scoring import Scorer
    from gpt2guard.family import load_model

    Scorer(load_model("micro", "small"), cache=False, progress=True).score(["A sentence of plain English prose."] * 3)
    out, err = capfd.readouterr()
    assert "scoring" not in err and "tok/s" not in err and "%|" not in err


def test_generation_and_family_build_write_no_bar_when_captured(micro_family, tmp_path, capfd):
    from gpt2guard.generator.run import GenerationJob, run_generation

    run_generation(GenerationJob(out=str(tmp_path), family="micro", sizes="small", sampling="pure", n=2, length=8,
                                 seed=0), progress=True)
    assert "%|" not in capfd.readouterr().err


def _run_on_terminal(args, cache):
    """Run the CLI with stderr on a pseudo-terminal (stdout piped); returns (stdout, terminal text)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a real terminal has a size
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GPT2GUARD_CACHE": cache, "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-c", "from gpt2guard.cli import main; main()", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0, b"".join(chunks).decode(errors="replace")
    return out, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.slow
def test_score_draws_a_bar_on_a_terminal_and_none_with_no_progress(micro_family, isolated_cache, tmp_path):
    import time

    def fresh_doc():  # a text never scored before: a cached one needs no scoring, and so no bar
        doc = tmp_path / f"essay-{time.time_ns()}.txt"
        doc.write_text("The module provides functions for working with files and directories. " * 3
                       + f"Run {time.time_ns()} of the test.")
        return str(doc)

    args = ["--family", "micro", "--threshold", "0", "--format", "json"]
    out, term = _run_on_terminal(["score", fresh_doc(), *args], isolated_cache)
    assert "scoring" in term and "tok" in term  # the bar, on the terminal
    assert "scoring" not in out and '"decision"' in out  # stdout holds only the verdicts
    out, term = _run_on_terminal(["score", fresh_doc(), *args, "--no-progress"], isolated_cache)
    assert "scoring" not in term and '"decision"' in out


def test_long_commands_have_the_progress_switch():
    from click.testing import CliRunner

    from gpt2guard.cli import main

    for cmd in (["score"], ["detector", "train"], ["detector", "calibrate"], ["detector", "eval"], ["generate"],
                ["release", "simulate"], ["family", "build"]):
        result = CliRunner().invoke(main, [*cmd, "--help"])
        assert result.exit_code == 0 and "--progress / --no-progress" in result.output, cmd
