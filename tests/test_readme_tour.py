"""README's Quick start and "A short tour" run top to bottom, as written, on the micro family.

The commands are read from README.md at test time: every ``gpt2guard ...`` command of the
```bash blocks in those sections (``&&`` chains split, ``\\`` continuations joined, comments
dropped; ``pip``/``pytest`` steps skipped), in order, in one scratch directory holding a copy
of README.md. Each must exit 0. A block right after a ``<!-- tour: skip ... -->`` line is
left out: it needs data a user downloads first (OpenAI's gpt-2-output-dataset).

A command ending in ``&`` (``gpt2guard serve ... &``) starts a real server in the background
on a free port (the README's port is rewritten to it, in the ``curl`` commands too), and the
tour waits for ``/readyz``; each ``curl`` command then runs as written (its output must be
the API's JSON, never an error), and at the end the server is stopped with SIGTERM and must
exit 0, as ``kill %1`` does.

Before running, each command is rewritten mechanically, so the tour runs on the tiny micro
family in about a minute instead of nano's:

* a family name (``nano``, ``gpt2``: ``--family X`` or ``family build|info|path X``) becomes
  ``micro``, and every command that has a ``--family`` option taking a value and names none gets
  ``--family micro``;
* a fine-tuned detector's ``--base FAMILY:SIZE`` becomes ``micro:<size>`` (and, having no
  ``--family``, gets none);
* size names (``--sizes``, ``--size``, ``--reference-size``, ``family path``'s size, and the
  ``nano-<size>`` set names in paths) map to micro's by position (small -> small, every larger
  size -> medium); ``all`` stays ``all``;
* counts and lengths shrink: ``--n`` to 6, ``--length`` to 24, ``--tokens`` to 8, ``--n-boot``
  to 40 (given or not, on every command that has the option); ``datasets builtin`` gets
  ``--limit 150``; a plan written by ``release plan init``
  gets small ``[evaluation]`` counts.
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTIONS = ("Quick start", "A short tour")
SKIP = "<!-- tour: skip"
SMALL = {"--n": "6", "--length": "24", "--tokens": "8", "--n-boot": "40"}
PLAN_COUNTS = {"samples": 16, "test_samples": 16, "length": 32, "human_train": 24, "human_calibration": 40,
               "human_test": 24, "n_boot": 10}


def tour_blocks(text: str) -> list[str]:
    """The ```bash blocks of the tour's sections, in order, without the skipped ones."""
    blocks, section, previous, inside, lines = [], None, "", False, []
    for line in text.splitlines():
        if not inside and line.startswith("## "):
            section = line[3:].strip()
        if line.startswith("```"):
            if inside:
                blocks.append("\n".join(lines))
                inside = False
            elif line.strip() == "```bash" and section in SECTIONS and not previous.strip().startswith(SKIP):
                inside, lines = True, []
            continue
        if inside:
            lines.append(line)
        elif line.strip():
            previous = line
    return blocks


def tour_steps(text: str) -> list[list[str]]:
    """Each ``gpt2guard`` and ``curl`` command of the tour as an argument list, ``gpt2guard``
    dropped; a command started in the background keeps its trailing ``&``."""
    out = []
    for block in tour_blocks(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            words = shlex.split(line, comments=True)
            step = []
            for w in words + ["&&"]:
                if w in ("&&", ";", "&"):
                    if step and step[0] == "gpt2guard":
                        out.append(step[1:] + (["&"] if w == "&" else []))
                    elif step and step[0] == "curl":
                        out.append(step)
                    step = []
                else:
                    step.append(w)
    return out


def tour_commands(text: str) -> list[list[str]]:
    """Each ``gpt2guard`` command of the tour as an argument list (without ``gpt2guard``)."""
    return [[w for w in step if w != "&"] for step in tour_steps(text) if step[0] != "curl"]


def _size_map() -> dict[str, str]:
    from gpt2guard.family import get_family

    big = [s.name for s in get_family("nano").sizes]
    small = [s.name for s in get_family("micro").sizes]
    return {name: small[min(i, len(small) - 1)] for i, name in enumerate(big)}


def _command(args: list[str]):
    """The click command ``args`` names, and how many words named it."""
    cmd, depth = main, 0
    while hasattr(cmd, "commands") and depth < len(args) and args[depth] in cmd.commands:
        cmd, depth = cmd.commands[args[depth]], depth + 1
    return cmd, depth


def rewrite(args: list[str]) -> list[str]:
    """The module docstring's mechanical rewrite of one command."""
    sizes = _size_map()

    def size_list(value):
        return value if value == "all" else ",".join(dict.fromkeys(sizes.get(z, z) for z in value.split(",")))

    args = [re.sub(r"\bnano-(small|medium|large|xl)\b", lambda m: "micro-" + sizes[m.group(1)], a) for a in args]
    out, i = [], 0
    while i < len(args):
        a = args[i]
        if a == "--family" and i + 1 < len(args):
            out += [a, "micro"]
            i += 2
            continue
        if a == "--base" and i + 1 < len(args):
            size = args[i + 1].partition(":")[2]
            out += [a, "micro" + (f":{sizes.get(size, size)}" if size else "")]
            i += 2
            continue
        if a in ("--sizes", "--size", "--reference-size") and i + 1 < len(args):
            out += [a, size_list(args[i + 1])]
            i += 2
            continue
        if a in SMALL and i + 1 < len(args):
            out += [a, SMALL[a]]
            i += 2
            continue
        out.append(a)
        i += 1
    if out[:1] == ["family"] and len(out) > 2 and out[1] in ("build", "info", "path"):
        out[2] = "micro"
        if out[1] == "path" and len(out) > 3:
            out[3] = size_list(out[3])
    cmd, _ = _command(out)
    opts = {o for p in getattr(cmd, "params", []) if not getattr(p, "is_flag", False) for o in p.opts}
    if "--family" in opts and "--family" not in out and "--base" not in out:
        out += ["--family", "micro"]
    for opt, value in SMALL.items():  # defaults sized for nano shrink too
        if opt in opts and opt not in out:
            out += [opt, value]
    if out[:2] == ["datasets", "builtin"] and "--limit" not in out:
        out += ["--limit", "150"]
    return out


def shrink_plan(path: Path) -> None:
    """Small ``[evaluation]`` counts in a plan written by ``release plan init``."""
    text = path.read_text()
    for key, value in PLAN_COUNTS.items():
        text = re.sub(rf"(?m)^{key}\s*=\s*\d+", f"{key} = {value}", text)
    path.write_text(text)


def test_the_tour_is_found_and_rewritten():
    commands = tour_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 15 and commands[0][:3] == ["release", "plan", "init"]
    assert not any(c[:2] == ["datasets", "import"] for c in commands)  # the downloaded-data block is skipped
    assert rewrite(["generate", "--family", "nano", "--sizes", "small,xl", "--n", "1000", "--out", "d"]) == \
        ["generate", "--family", "micro", "--sizes", "small,medium", "--n", "6", "--out", "d", "--length", "24"]
    assert rewrite(["score", "data/gen/nano-xl-k40.train.jsonl"])[:2] == ["score", "data/gen/micro-medium-k40.train.jsonl"]
    assert rewrite(["detector", "train", "--sizes", "xl"])[-2:] == ["--family", "micro"]
    assert rewrite(["detector", "train", "--kind", "finetune", "--base", "nano:xl"]) == \
        ["detector", "train", "--kind", "finetune", "--base", "micro:medium"]
    assert rewrite(["family", "path", "gpt2", "medium"]) == ["family", "path", "micro", "medium"]


class Background:
    """``gpt2guard serve ... &``: a real server process on a free port, ready before the tour goes on."""

    def __init__(self, args: list[str], cwd: Path):
        import os
        import subprocess
        import sys
        import urllib.request

        from gpt2guard.serve.server import bind

        port_at = args.index("--port") + 1
        self.readme_port = args[port_at]
        with bind("127.0.0.1", 0) as probe:
            self.port = str(probe.getsockname()[1])
        args = args[:port_at] + [self.port] + args[port_at + 1:]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        self.proc = subprocess.Popen([sys.executable, "-m", "gpt2guard.cli", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gpt2guard {' '.join(args)} exited:\n{self.proc.communicate()[1]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"gpt2guard {' '.join(args)} was not ready in 5 minutes")

    def url(self, word: str) -> str:
        """A curl argument with the README's port rewritten to this server's."""
        return re.sub(rf"(localhost|127\.0\.0\.1):{self.readme_port}\b", rf"\g<1>:{self.port}", word)

    def stop(self) -> int:
        import signal

        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, err
        return self.proc.returncode


def run_curl(step: list[str], server: Background | None) -> dict:
    """One README ``curl`` command against the background server; its JSON answer."""
    import json
    import subprocess

    assert server is not None, f"{' '.join(step)}: no server was started before it"
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed: the tour's API call cannot run as written")
    done = subprocess.run([curl, *[server.url(w) for w in step[1:]]], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert "error" not in body, body
    return body


@pytest.mark.slow
def test_readme_tour_runs_top_to_bottom(micro_family, tmp_path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    shutil.copy(README, tmp_path / "README.md")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    server, answers = None, []
    try:
        for step in tour_steps(text):
            if step[0] == "curl":
                answers.append(run_curl(step, server))
                continue
            background = step[-1] == "&"
            run = rewrite([w for w in step if w != "&"])
            if background:
                server = Background(run, tmp_path)
                continue
            start = time.perf_counter()
            result = runner.invoke(main, run)
            print(f"{time.perf_counter() - start:6.1f}s  gpt2guard {' '.join(run)}")
            assert result.exit_code == 0, f"gpt2guard {' '.join(run)}\n(README: gpt2guard {' '.join(step)})\n" \
                                          f"{result.output}\n{result.exception!r}"
            if run[:3] == ["release", "plan", "init"]:
                shrink_plan(Path(next(a for a in run[3:] if not a.startswith("-"))))
    finally:
        if server is not None:
            server.stop()
    assert server is not None and answers and all(a["results"] for a in answers)
