"""What the fuzz tests share: the command walk, input mutations drawn with hypothesis, and
the one check every run must pass (no traceback; a failure is one ``Error:`` line)."""

from __future__ import annotations

import json
import shutil
import traceback
from pathlib import Path

import click
from hypothesis import strategies as st

from gpt2guard.cli import main


def walk(cmd: click.Command = main, path: tuple = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the CLI as a tuple of names, e.g. ``("release", "card", "build")``."""
    if isinstance(cmd, click.Group):
        return [p for name, sub in sorted(cmd.commands.items()) for p in walk(sub, path + (name,))]
    return [path]


def command(path: tuple[str, ...]) -> click.Command:
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    return cmd


# --- values -------------------------------------------------------------------------------

ODD_NUMBERS = ["nan", "NaN", "inf", "-inf", "-1", "0", "-0.0", "1", "2", "1e308", "-1e-300", "99999999999999999999999",
               "", " ", "abc", "0x10", "1,5", "0.5", "1e-9"]
ODD_STRINGS = ["", " ", "-", "..", "nope", "ünïcödé", "a" * 300, "--help-not", "x,y,,", "cuda:99", "tpu", "meta",
               "{}", "[]", "../../etc", "$HOME"]
DEVICES = ["cuda:99", "cuda", "tpu", "meta", "mps", "xla", "CPU", "cuda:-1", "cuda:x", "", "cpu:0", "vulkan"]
WRONG_JSON = [b"", b"[]", b"{}", b"null", b"1", b'"text"', b"true", b"[1, 2, 3]", b'{"a": NaN}', b"NaN",
              b'{"format": []}', b"\xef\xbb\xbf{}", b"{" * 50 + b"}" * 50]


def number(data, extra=()):
    """An odd option value, or (two times in three when given) one of the sane ``extra``, so that
    most runs get past option parsing to the inputs."""
    if extra and data.draw(st.integers(0, 2)) < 2:
        return data.draw(st.sampled_from(list(extra)))
    return data.draw(st.sampled_from(ODD_NUMBERS + list(extra)))


def text(data, extra=()):
    """An odd string, or (two times in three when given) one of the sane ``extra``."""
    if extra and data.draw(st.integers(0, 2)) < 2:
        return data.draw(st.sampled_from(list(extra)))
    return data.draw(st.sampled_from(ODD_STRINGS + list(extra)) | st.text(max_size=20))


def maybe(data, *option_and_values):
    """``[option, value]`` or nothing."""
    return list(option_and_values) if data.draw(st.booleans()) else []


# --- bytes --------------------------------------------------------------------------------

def mutate(data, good: bytes) -> bytes:
    """A damaged version of ``good``: empty, truncated, bit-flipped, spliced with invalid UTF-8,
    random bytes, or JSON of the wrong type."""
    kind = data.draw(st.sampled_from(["empty", "truncate", "flip", "invalid-utf8", "random", "wrong-json", "lines",
                                      "same"]))
    if kind == "empty":
        return b""
    if kind == "truncate":
        return good[: data.draw(st.integers(0, max(0, len(good) - 1)))]
    if kind == "flip":
        buf = bytearray(good or b"\0")
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(buf) - 1))
            buf[i] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(buf)
    if kind == "invalid-utf8":
        i = data.draw(st.integers(0, len(good)))
        return good[:i] + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xe9t\xe9"])) + good[i:]
    if kind == "random":
        return data.draw(st.binary(max_size=200))
    if kind == "wrong-json":
        return data.draw(st.sampled_from(WRONG_JSON))
    if kind == "lines":  # drop, repeat or swap whole lines
        lines = good.split(b"\n")
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "blank"]))
        i = data.draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines[i] = data.draw(st.sampled_from([b"", b" ", b"{}", b"[]", b"null", b'{"id": 1}', b'{"text": 5}']))
        return b"\n".join(lines)
    return good


def mutate_json(data, obj):
    """A structurally damaged copy of a JSON object: a key dropped, or a value of the wrong type."""
    obj = json.loads(json.dumps(obj))
    if not isinstance(obj, dict) or not obj:
        return obj
    key = data.draw(st.sampled_from(sorted(obj)))
    if data.draw(st.booleans()):
        del obj[key]
    else:
        obj[key] = data.draw(st.sampled_from([None, [], {}, "x", -1, 1e308, True, [1, "a"], {"a": None}]))
    return obj


def damage_file(data, path: Path) -> str:
    """Damage one file in place (bytes, or for a JSON object its structure); returns what was done."""
    good = path.read_bytes()
    if path.suffix == ".json" and data.draw(st.booleans()):
        try:
            obj = json.loads(good)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            path.write_text(json.dumps(mutate_json(data, obj)))
            return f"{path.name}: structure"
    path.write_bytes(mutate(data, good))
    return f"{path.name}: bytes"


def damaged_copy(data, src: Path, dst: Path, pattern: str = "*") -> Path:
    """Copy directory ``src`` to ``dst`` and damage one of its files matching ``pattern``."""
    shutil.copytree(src, dst)
    files = sorted(p for p in dst.rglob(pattern) if p.is_file())
    if files:
        damage_file(data, data.draw(st.sampled_from(files)))
    return dst


# --- the check ------------------------------------------------------------------------------

#: Commands whose exit code 1 reports findings (a bad set, an altered file, an incomplete card),
#: printed as lines of their own rather than as an error.
FINDINGS = {("datasets", "validate"), ("release", "verify"), ("release", "card", "check")}


def check(result, path, args) -> None:
    """A run ends cleanly, or fails with one ``Error:`` line and a non-zero exit; never a traceback."""
    where = f"gpt2guard {' '.join(map(str, args))}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"{where} crashed:\n{tb}")
    assert "Traceback" not in result.output, f"{where}:\n{result.output}"
    if result.exit_code == 0:
        return
    if result.exit_code == 1 and tuple(path) in FINDINGS:
        return
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), f"{where} exited {result.exit_code} without a one-line error:\n" \
                                                     f"{result.output}"
    assert lines[-1].strip() != "Error:", f"{where}: empty error message"
