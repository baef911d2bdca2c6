"""Every command, fuzzed over its inputs: damaged files, sets, detectors, plans, runs, cards,
manifests and decision logs, and odd option values. Whatever the input, a command ends
cleanly or with one ``Error:`` line and a non-zero exit, never a traceback.

Each command has a case in ``CASES`` (a command added without one fails
``test_every_command_has_a_fuzz_case``). Examples are drawn by hypothesis with a fixed seed
(``derandomize``), a few dozen per command at most, so a run is repeatable and bounded.
"""

from __future__ import annotations

import os
import shutil
import time
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuzz_helpers import (DEVICES, check, damage_file, damaged_copy, maybe, mutate, number, text, walk)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpt2guard.cli import main

COMMANDS = walk()


def pick(data, *options):
    return data.draw(st.sampled_from(options))


def usually(data, good, *odd):
    """``good`` two times in three, else one of ``odd``: most runs reach the deeper code."""
    return good if data.draw(st.integers(0, 2)) < 2 else pick(data, *odd)


def damaged(data, good: Path, tmp: Path, name: str | None = None) -> Path:
    """A damaged copy of one file."""
    out = tmp / (name or good.name)
    out.write_bytes(mutate(data, good.read_bytes()))
    return out


def damaged_sets(data, ws, tmp: Path) -> Path:
    """The workspace's sets with one file (records or manifest) damaged."""
    return damaged_copy(data, ws.sets, tmp / "sets", pick(data, "*.jsonl", "*.manifest.json", "*"))


def sets_dir(data, ws, tmp: Path) -> Path:
    """Good sets, or damaged ones, or a directory that holds no sets."""
    choice = pick(data, "good", "good", "damaged", "damaged", "empty")
    if choice == "good":  # a copy: some commands write into the directory (a card, a lock)
        return Path(shutil.copytree(ws.sets, tmp / "sets"))
    if choice == "empty":
        (tmp / "empty").mkdir()
        return tmp / "empty"
    return damaged_sets(data, ws, tmp)


def detector_dir(data, ws, tmp: Path) -> Path:
    """A copy of a saved detector with detector.json or model.npz damaged (or removed)."""
    src = pick(data, ws.tfidf, ws.features)
    out = tmp / "det"
    shutil.copytree(src, out)
    target = out / pick(data, "detector.json", "model.npz")
    how = pick(data, "damage", "damage", "damage", "remove", "arrays")
    if how == "remove":
        target.unlink()
    elif how == "arrays":  # a readable archive with an array missing or of the wrong shape
        import numpy as np

        with np.load(out / "model.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        key = pick(data, *sorted(arrays))
        if data.draw(st.booleans()):
            del arrays[key]
        else:
            arrays[key] = pick(data, np.zeros(0), np.zeros((2, 3)), np.array(1.5), np.array(["x"]),
                               np.arange(7, dtype=np.int64))
        np.savez(out / "model.npz", **arrays)
    else:
        damage_file(data, target)
    return out


# --- one case per command: (data, ws, tmp) -> (args, stdin) --------------------------------

def family_list(data, ws, tmp):
    cache = tmp / "cache"
    (cache / "families" / "nano").mkdir(parents=True)
    (cache / "families" / "nano" / "manifest.json").write_bytes(mutate(data, b'{"sizes": {}, "seed": 0}'))
    (cache / "hashes.json").write_bytes(mutate(data, b'{}'))
    return ["--cache-dir", str(cache), "family", "list", *maybe(data, "--json")], None


def family_info(data, ws, tmp):
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_bytes(mutate(data, b'{"model_type": "gpt2", "n_layer": 1}'))
    name = pick(data, "micro", "gpt2", str(model), str(tmp / "missing"), text(data))
    return ["family", "info", name, *maybe(data, "--json")], None


def family_build(data, ws, tmp):
    name = pick(data, "gpt2", str(tmp), "nope", text(data))
    if name in ("nano", "micro"):  # a real build takes minutes
        name = "gpt2"
    seed = pick(data, "0", number(data))
    return ["family", "build", name, "--seed", seed], None


def family_path(data, ws, tmp):
    model = tmp / "model"
    model.mkdir()
    (model / "config.json").write_bytes(mutate(data, b'{"model_type": "gpt2"}'))
    name = pick(data, "micro", "gpt2", str(model), text(data))
    return ["family", "path", name, *([text(data, ["small", "xl", "medium"])] if data.draw(st.booleans()) else [])], \
        None


def family_file(data, ws, tmp) -> Path:
    """A family file over micro's two sizes: good, damaged, of odd suffix, naming a missing
    size, or mixing in a size with another tokenizer."""
    import json as _json

    from gpt2guard.family.resolve import family_dir

    micro = family_dir("micro")
    sizes = [("small", str(micro / "small")), ("medium", str(micro / "medium"))]
    how = pick(data, "good", "good", "damaged", "missing", "tokenizer", "yaml")
    if how == "missing":
        sizes[1] = ("medium", str(tmp / "gone"))
    elif how == "tokenizer":
        odd = Path(shutil.copytree(micro / "medium", tmp / "odd"))
        tok = _json.loads((odd / "tokenizer.json").read_text(encoding="utf-8"))
        tok["model"]["merges"] = tok["model"]["merges"][:-1]
        (odd / "tokenizer.json").write_text(_json.dumps(tok), encoding="utf-8")
        sizes[1] = ("medium", str(odd))
    name = usually(data, "lab", "nano", "my.lab", text(data))
    body = f"name = {_json.dumps(name)}\n" + "".join(
        f"[[sizes]]\nname = {_json.dumps(n)}\npath = {_json.dumps(p)}\n" for n, p in sizes)
    if how == "yaml":
        out = tmp / "family.yaml"
        out.write_text(f"name: {_json.dumps(name)}\nsizes:\n" + "".join(
            f"  - {{name: {n}, path: {_json.dumps(p)}}}\n" for n, p in sizes), encoding="utf-8")
        return out
    out = tmp / pick(data, "family.toml", "family.toml", "family.txt")
    out.write_bytes(mutate(data, body.encode()) if how == "damaged" else body.encode())
    return out


def family_add(data, ws, tmp):
    return ["--cache-dir", str(tmp / "cache"), "family", "add", str(family_file(data, ws, tmp)),
            *maybe(data, "--force")], None


def family_remove(data, ws, tmp):
    registry = tmp / "cache" / "user-families"
    registry.mkdir(parents=True)
    (registry / "lab.toml").write_bytes(mutate(data, b'name = "lab"\n[[sizes]]\nname = "s"\nhub = "a/b"\n'))
    return ["--cache-dir", str(tmp / "cache"), "family", "remove", usually(data, "lab", "nope", "../x", text(data))], \
        None


def datasets_builtin(data, ws, tmp):
    limit = pick(data, "1", "2", number(data))
    args = ["datasets", "builtin", str(tmp / "out"), "--family", "micro", "--limit", limit,
            "--packages", pick(data, "", "click", "nope_pkg", text(data)), "--seed", pick(data, "0", number(data))]
    return args + maybe(data, "--shard-size", number(data, ["5"])) + maybe(data, "--set", text(data, ["b"])), None


def datasets_import(data, ws, tmp):
    kind = pick(data, "jsonl", "jsonl", "txtdir", "openai")
    if kind == "jsonl":
        src = damaged(data, ws.jsonl, tmp, pick(data, "in.jsonl", "in.jsonl.gz", "in.txt"))
    else:
        src = damaged_copy(data, ws.txtdir if kind == "txtdir" else ws.sets, tmp / "src")
    args = ["datasets", "import", str(src), str(tmp / "out"), "--set", pick(data, "x", text(data)), "--family", "micro",
            "--format", pick(data, "auto", "jsonl", "openai", "txt")]
    if kind == "openai":
        args += ["--from-set", pick(data, "h", "m", text(data)), "--from-split", pick(data, "test", text(data))]
    return (args + maybe(data, "--skip-bad") + maybe(data, "--text-field", text(data, ["text"]))
            + maybe(data, "--id-field", text(data, ["id"])) + maybe(data, "--shard-size", number(data, ["3"]))
            + maybe(data, "--label", pick(data, "human", "machine", "robot")) + maybe(data, "--keep-lengths")), None


def datasets_split(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "split", str(d), pick(data, "h", text(data)), "--split", pick(data, "train", text(data)),
            "--out", str(tmp / "out"), "--fractions", pick(data, "0.8,0.1,0.1", "nan,0.5,0.5", "1", "-1,1,1", "", "a,b,c",
                                                              "0,0,0", "inf,0,0", "0.5,0.5", "1e308,1,1"),
            "--seed", pick(data, "0", number(data))] + maybe(data, "--shard-size", number(data, ["4"])), None


def datasets_match(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "match", str(d), "--human", pick(data, "h", text(data)), "--machine", pick(data, "m", "h"),
            "--split", pick(data, "test", "nope"), "--out", str(tmp / "out"), "--family", "micro",
            "--method", pick(data, "select", "truncate"), *maybe(data, "--bin-width", number(data, ["16"])),
            "--seed", pick(data, "0", number(data))], None


def datasets_prompts(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "prompts", str(d), pick(data, "h", text(data)), "--split", pick(data, "test", "nope"),
            "--out", str(tmp / "out"), "--family", "micro", "--tokens", number(data, ["4", "8"]),
            "--min-continuation", number(data, ["2"]), *maybe(data, "--limit", number(data, ["3"]))], None


def datasets_dedup(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "dedup", str(d), pick(data, "h", text(data)), "--split", pick(data, "test", "nope"),
            "--out", str(tmp / "out"), *maybe(data, "--threshold", number(data, ["0.8"])), *maybe(data, "--exact-only"),
            "--seed", pick(data, "0", number(data))], None


def datasets_stats(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "stats", str(d), pick(data, "h", "m", text(data)),
            *maybe(data, "--split", pick(data, "test", "nope")), *maybe(data, "--json")], None


def datasets_validate(data, ws, tmp):
    if data.draw(st.booleans()):
        path = damaged(data, ws.jsonl, tmp, "x.jsonl")
    else:
        d = damaged_sets(data, ws, tmp)
        path = d / pick(data, "h.test.manifest.json", "h.test.jsonl")
    return ["datasets", "validate", str(path), *maybe(data, "--text-field", text(data, ["text"])),
            *maybe(data, "--family", pick(data, "micro", "nope")), *maybe(data, "--json")], None


def datasets_card(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    config = tmp / "config.json"
    config.write_bytes(mutate(data, b'{"sampling": "top-k=40", "n": 10}'))
    return ["datasets", "card", str(d), pick(data, "h", "m", text(data)),
            *maybe(data, "--config", str(config)), *maybe(data, "--motivation", text(data))], None


def datasets_list(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    return ["datasets", "list", str(d), *maybe(data, "--json")], None


def generate(data, ws, tmp):
    prompts = tmp / "p.prompts.test.jsonl"
    prompts.write_bytes(mutate(data, b'{"id": "a", "text": "The model", "source": "s"}\n'))
    args = ["generate", "--family", "micro", "--sizes", usually(data, "small", "all", "huge", text(data)),
            "--sampling", usually(data, pick(data, "pure", "top-k=2"), "nucleus=nan", "top-k=-1", "nucleus=0.5-0.1",
                                  "pure:temperature=0", "pure:temperature=inf", text(data)),
            "--n", usually(data, "1", number(data)), "--length", usually(data, "2", number(data)),
            "--out", str(tmp / "out")]
    odd = data.draw(st.sampled_from(["device", "prompts", "batch", "shard", "seed", "split", None, None]))
    if odd == "device":
        args += ["--device", pick(data, *DEVICES)]
    elif odd == "prompts":
        args += ["--prompts", str(prompts), *maybe(data, "--no-match-length")]
    elif odd == "batch":
        args += ["--batch-size", number(data)]
    elif odd == "shard":
        args += ["--shard-size", number(data, ["1"])]
    elif odd == "seed":
        args += ["--seed", number(data, ["3"])]
    elif odd == "split":
        args += ["--split", text(data)]
    return args, None


def score(data, ws, tmp):
    files, stdin = [], None
    for _ in range(data.draw(st.integers(1, 2))):
        kind = pick(data, "txt", "jsonl", "stdin")
        if kind == "stdin":
            files.append("-")
            stdin = mutate(data, ws.doc.read_bytes())
        else:
            good = ws.doc if kind == "txt" else ws.jsonl
            name = tmp / f"f{len(files)}.{'jsonl' if kind == 'jsonl' else 'txt'}"
            if data.draw(st.booleans()):
                shutil.copy(good, name)
            else:
                damaged(data, good, tmp, name.name)
            files.append(str(name))
    args = ["score", *files, "--format", pick(data, "table", "json", "csv")]
    if data.draw(st.booleans()):
        det = detector_dir(data, ws, tmp) if data.draw(st.booleans()) else pick(data, ws.tfidf, ws.features)
        args += ["--detector", str(det), "--family", "micro"]  # --html's scorer: not nano
    else:
        args += ["--family", usually(data, "micro", str(family_file(data, ws, tmp))),
                 "--method", usually(data, pick(data, "logp", "binoculars"), "nope", text(data))]
        if data.draw(st.booleans()):
            args += ["--threshold", number(data, ["0.0"])]
        else:  # the direction learned on labelled sets (no builtin calibration: that takes a while)
            args += ["--labelled", str(sets_dir(data, ws, tmp)), "--human", pick(data, "h", text(data)),
                     "--machine", pick(data, "m", "h", "nope"), "--labelled-split", pick(data, "test", text(data))]
        args += maybe(data, "--direction", text(data, ["higher", "lower", "two-sided", "auto"]))
        args += maybe(data, "--suspect", text(data, ["micro", "gpt2"]))
    args += (maybe(data, "--fpr", number(data)) if not data.draw(st.integers(0, 3)) else []) + maybe(data, "--min-tokens", number(data, ["4"])) + maybe(data, "--skip-bad")
    args += maybe(data, "--html", str(tmp / "r.html"))
    return args, stdin


_TAKEN = []


def taken_port() -> int:
    """A localhost port this process holds for the session: a serve run that gets past its
    options and inputs ends on it with one line (never serves forever)."""
    if not _TAKEN:
        from gpt2guard.serve.server import bind

        _TAKEN.append(bind("127.0.0.1", 0))
    return _TAKEN[0].getsockname()[1]


def serve(data, ws, tmp):
    args = ["serve", "--port", usually(data, str(taken_port()), number(data)),
            "--host", usually(data, "127.0.0.1", "not-a-host", "999.1.1.1", "")]
    if data.draw(st.booleans()):
        det = detector_dir(data, ws, tmp) if data.draw(st.booleans()) else pick(data, ws.tfidf, ws.features)
        args += ["--detector", str(det), "--family", "micro"]
    else:
        args += ["--family", "micro", "--method", usually(data, "logp", "nope", text(data)),
                 "--threshold", number(data, ["0.0"])]
        args += maybe(data, "--direction", text(data, ["higher", "lower", "two-sided"]))
        args += maybe(data, "--suspect", text(data, ["micro", "gpt2"])) + maybe(data, "--labelled", str(ws.sets))
    for option, good in (("--min-tokens", "4"), ("--max-tokens", "500"), ("--max-docs", "8"), ("--queue-size", "16"),
                         ("--timeout", "5"), ("--max-body-mb", "1"), ("--max-wait-ms", "2"), ("--batch-tokens", "900"),
                         ("--detail-tokens", "50")):
        args += maybe(data, option, number(data, [good]))
    args += maybe(data, "--token", text(data, ["secret"])) + maybe(data, "--no-batching")
    return args, None


def detector_train(data, ws, tmp):
    kind = pick(data, "tfidf", "tfidf", "logistic", "finetune")
    # a finetune run always names a micro base (or a bad one): the default base, nano, would be built
    model = ["--base", usually(data, "micro:small", "micro:huge", "micro", text(data), str(tmp)),
             *maybe(data, "--epochs", pick(data, "1", "2", "0", "-1", "abc", "1e3")), *maybe(data, "--lr", number(data, ["0.003"])),
             *maybe(data, "--batch-size", number(data, ["8"]))] if kind == "finetune" else ["--family", "micro"]
    return ["detector", "train", "--data", str(sets_dir(data, ws, tmp)), "--human", pick(data, "h", text(data)),
            "--machine", pick(data, "m", "h", "nope"), "--kind", kind,
            *model, *maybe(data, "--fpr", number(data, ["0.2"])),
            *maybe(data, "--min-tokens", number(data, ["4"])), *maybe(data, "--cv", number(data, ["0", "2"])),
            *maybe(data, "--limit", number(data, ["5"])), *maybe(data, "--lexical"),
            "--seed", pick(data, "0", number(data)), "--out", str(tmp / "out")], None


def detector_calibrate(data, ws, tmp):
    det = detector_dir(data, ws, tmp) if data.draw(st.booleans()) else shutil.copytree(ws.tfidf, tmp / "good")
    return ["detector", "calibrate", str(det), "--data", str(sets_dir(data, ws, tmp)), "--human", "h",
            "--split", pick(data, "valid", "nope"), "--fpr", number(data, ["0.1"]), "--n-boot", number(data, ["50"]),
            *maybe(data, "--probability", pick(data, "platt", "isotonic")), *maybe(data, "--machine", "m")], None


def detector_eval(data, ws, tmp):
    det = detector_dir(data, ws, tmp) if data.draw(st.booleans()) else ws.tfidf
    return ["detector", "eval", str(det), "--data", str(sets_dir(data, ws, tmp)), "--human", "h", "--machine", "m",
            "--split", pick(data, "test", "nope"), "--n-boot", number(data, ["40"]), *maybe(data, "--transfer"),
            *maybe(data, "--train-split", "train"), "--out", str(tmp / "out")], None


def release_plan_init(data, ws, tmp):
    existing = tmp / "old.toml"
    existing.write_text("x")
    path = pick(data, str(tmp / "p.toml"), str(tmp / "p.yaml"), str(existing), str(tmp), str(existing / "sub.toml"))
    return ["release", "plan", "init", path, "--family", pick(data, "micro", "gpt2", "nope", text(data)),
            *maybe(data, "--force")], None


def damaged_plan(data, ws, tmp) -> Path:
    plan_dir = damaged_copy(data, ws.plan_dir, tmp / "plan", pick(data, "*.toml", "release-plan.toml"))
    if data.draw(st.booleans()):  # the watermarked stage's key file, damaged (the default plan names keys/medium.key)
        (plan_dir / "keys").mkdir(exist_ok=True)
        (plan_dir / "keys" / "medium.key").write_bytes(mutate(data, WATERMARK_KEY))
    return plan_dir / "release-plan.toml"


#: A key file's shape (its secret all zeros), for damaged_plan to damage.
WATERMARK_KEY = (b'{"format": "gpt2guard.watermark-key", "version": 1, "key": "' + b"00" * 32 + b'", "family": "micro", '
                 b'"tokenizer": "' + b"ab" * 32 + b'", "vocab_size": 4096}\n')


def release_plan_check(data, ws, tmp):
    return ["release", "plan", "check", str(damaged_plan(data, ws, tmp))], None


def release_simulate(data, ws, tmp):
    """Damaged plans, or a good plan with a damaged run.json; the output is a file, so a plan
    that still reads fails at once instead of running a simulation."""
    out = tmp / "out"
    if data.draw(st.booleans()):
        plan = damaged_plan(data, ws, tmp)
        out.write_text("not a directory")
    else:
        plan = ws.plan
        out.mkdir()
        (out / "run.json").write_bytes(mutate(data, b'{"plan_sha256": "00", "scenarios": []}'))
        if b'"00"' in (out / "run.json").read_bytes():  # still the same run file: make it unusable anyway
            (out / "stages").write_text("x")
            out = out / "stages"
    return ["release", "simulate", str(plan), "--out", str(out), *maybe(data, "--scenario", text(data)),
            *maybe(data, "--json")], None


def release_verify(data, ws, tmp):
    tree = damaged_copy(data, ws.tree, tmp / "tree", pick(data, "MANIFEST.json", "decisions.jsonl", "*"))
    return ["release", "verify", str(tree)], None


def release_keygen(data, ws, tmp):
    out = tmp / "keys"
    if data.draw(st.booleans()):  # an existing pair, or a file where the directory should be
        out.mkdir()
        (out / pick(data, "private.pem", "public.pem")).write_bytes(mutate(data, b"-----BEGIN PRIVATE KEY-----\n"))
    elif data.draw(st.booleans()):
        out.write_bytes(b"not a directory")
    return ["release", "keygen", "--out", str(out), *maybe(data, "--force")], None


def release_sign(data, ws, tmp):
    from gpt2guard.release.sign import generate_keys

    keys = tmp / "keys"
    generate_keys(keys)
    key = keys / "private.pem"
    choice = pick(data, "good", "damaged", "public", "missing")
    if choice == "damaged":
        key = damaged(data, key, tmp, "bad.pem")
    elif choice == "public":
        key = keys / "public.pem"
    elif choice == "missing":
        key = tmp / "none.pem"
    tree = damaged_copy(data, ws.tree, tmp / "tree", pick(data, "MANIFEST.json", "decisions.jsonl", "*"))
    return ["release", "sign", str(tree), "--key", str(key),
            *maybe(data, "--signature", pick(data, str(tmp / "sig"), str(tmp)))], None


def release_card_build(data, ws, tmp):
    how = pick(data, "evaluation", "run", "both", "neither")
    args = ["release", "card", "build", "--out", str(tmp / "card")]
    if how in ("evaluation", "both"):
        args += ["--evaluation", str(damaged(data, ws.evaluation, tmp, "evaluation.json"))]
    if how in ("run", "both"):
        run = damaged_copy(data, ws.run, tmp / "run", pick(data, "*.json", "run.json"))
        args += ["--run", str(run), *maybe(data, "--family"), *maybe(data, "--size", pick(data, "small", "xl"))]
    return args + maybe(data, "--scenario", pick(data, "staged", text(data))), None


def release_card_check(data, ws, tmp):
    card = damaged(data, ws.cards / "small" / "README.md", tmp, "README.md")
    return ["release", "card", "check", str(card), *maybe(data, str(ws.cards / "medium" / "README.md"))], None


def release_card_diff(data, ws, tmp):
    card = damaged(data, ws.cards / "small" / "README.md", tmp, "README.md")
    other = pick(data, ws.cards / "medium" / "README.md", tmp / "missing.md", tmp)
    return ["release", "card", "diff", str(card), str(other), *maybe(data, "--json")], None


def datasets_attack(data, ws, tmp):
    d = sets_dir(data, ws, tmp)
    specs = usually(data, pick(data, "homoglyph=1.0", "whitespace=0.2,case=0.5", "zero_width=1,misspelling=0.3"),
                    "nonesuch=0.5", "case=1.5", "case=-0", "case=nan", "case", "", "case=0.5,case=0.5", text(data))
    return ["datasets", "attack", str(d), pick(data, "h", "m", text(data)), "--attack", specs,
            "--seed", pick(data, "0", number(data)), "--out", str(tmp / pick(data, "out", "sets")),
            "--family", "micro", *maybe(data, "--split", pick(data, "test", "nope")),
            *maybe(data, "--shard-size", number(data, ["4"])), *maybe(data, "--json")], None


#: command -> (case, examples). Commands that load a model or write a set get fewer examples.
CASES = {
    ("family", "list"): (family_list, 12),
    ("family", "info"): (family_info, 12),
    ("family", "build"): (family_build, 10),
    ("family", "path"): (family_path, 12),
    ("family", "add"): (family_add, 12),
    ("family", "remove"): (family_remove, 10),
    ("datasets", "builtin"): (datasets_builtin, 3),
    ("datasets", "import"): (datasets_import, 30),
    ("datasets", "split"): (datasets_split, 20),
    ("datasets", "match"): (datasets_match, 15),
    ("datasets", "prompts"): (datasets_prompts, 15),
    ("datasets", "dedup"): (datasets_dedup, 15),
    ("datasets", "stats"): (datasets_stats, 15),
    ("datasets", "validate"): (datasets_validate, 20),
    ("datasets", "card"): (datasets_card, 12),
    ("datasets", "list"): (datasets_list, 10),
    ("generate",): (generate, 20),
    ("score",): (score, 30),
    ("serve",): (serve, 25),
    ("detector", "train"): (detector_train, 12),
    ("detector", "calibrate"): (detector_calibrate, 15),
    ("detector", "eval"): (detector_eval, 12),
    ("release", "plan", "init"): (release_plan_init, 10),
    ("release", "plan", "check"): (release_plan_check, 20),
    ("release", "simulate"): (release_simulate, 12),
    ("release", "verify"): (release_verify, 20),
    ("release", "keygen"): (release_keygen, 10),
    ("release", "sign"): (release_sign, 10),
    ("release", "card", "build"): (release_card_build, 12),
    ("release", "card", "check"): (release_card_check, 12),
    ("release", "card", "diff"): (release_card_diff, 12),
    ("datasets", "attack"): (datasets_attack, 15),
}


def test_every_command_has_a_fuzz_case():
    missing = [" ".join(p) for p in COMMANDS if p not in CASES]
    stale = [" ".join(p) for p in CASES if p not in COMMANDS]
    assert not missing, f"commands without a fuzz case in CASES: {missing}"
    assert not stale, f"fuzz cases for commands that no longer exist: {stale}"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: "-".join(p))
def test_fuzz(path, ws):
    if path not in CASES:
        pytest.fail(f"`gpt2guard {' '.join(path)}` has no fuzz case: add one to CASES")
    case, examples = CASES[path]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        with tempfile.TemporaryDirectory() as tmp:
            args, stdin = case(data, ws, Path(tmp))
            t0 = time.perf_counter()
            saved = dict(os.environ)  # --cache-dir and --weights-dir set the environment for the process
            try:
                result = CliRunner().invoke(main, [str(a) for a in args], input=stdin, prog_name="gpt2guard")
            finally:
                os.environ.clear()
                os.environ.update(saved)
            if os.environ.get("FUZZ_TRACE"):
                with open(os.environ["FUZZ_TRACE"], "a") as f:
                    f.write(f"{time.perf_counter() - t0:6.2f}s exit {result.exit_code} {' '.join(map(str, args))[:200]} "
                            f"| {result.output.strip().splitlines()[-1][:150] if result.output.strip() else ''}\n")
            check(result, path, args)

    run()


# --- watermark (issue 15) -------------------------------------------------------------------

def _good_key(tmp: Path) -> Path:
    from gpt2guard.watermark import keygen

    keygen(tmp / "good.key", seed=1, family="micro", force=True)
    return tmp / "good.key"


def _some_key(data, tmp: Path) -> Path:
    """A good micro key, a damaged one, a missing file or a directory."""
    good = _good_key(tmp)
    choice = pick(data, "good", "good", "damaged", "missing", "dir")
    if choice == "damaged":
        return damaged(data, good, tmp, "bad.key")
    if choice == "missing":
        return tmp / "none.key"
    return tmp if choice == "dir" else good


def watermark_keygen(data, ws, tmp):
    out = pick(data, tmp / "k.key", tmp / "sub" / "k.key", tmp, tmp / "exists.key")
    (tmp / "exists.key").write_bytes(mutate(data, b'{"format": "gpt2guard.watermark-key"}'))
    return ["watermark", "keygen", "--out", str(out), "--family", usually(data, "micro", "nope", text(data)),
            *maybe(data, "--seed", number(data, ["3"])), *maybe(data, "--force"), *maybe(data, "--json")], None


def watermark_info(data, ws, tmp):
    return ["watermark", "info", str(_some_key(data, tmp)), *maybe(data, "--json")], None


def _watermark_options(data, tmp, score: bool):
    args = ["--watermark", str(_some_key(data, tmp))] if data.draw(st.integers(0, 3)) else []
    args += maybe(data, "--watermark-gamma", number(data, ["0.25", "0.5"]))
    args += maybe(data, "--watermark-scheme", text(data, ["lefthash", "selfhash"]))
    args += maybe(data, "--watermark-z", number(data, ["4"])) if score else \
        maybe(data, "--watermark-delta", number(data, ["2"]))
    return args


_generate_plain, _score_plain = CASES[("generate",)][0], CASES[("score",)][0]


def generate_watermarked(data, ws, tmp):
    """``generate`` as before, half the time with the watermark options."""
    args, stdin = _generate_plain(data, ws, tmp)
    return args + (_watermark_options(data, tmp, False) if data.draw(st.booleans()) else []), stdin


def score_watermarked(data, ws, tmp):
    """``score`` as before, or a watermark test alone (no detector), or both."""
    how = pick(data, "plain", "plain", "alone", "both")
    if how == "alone":
        return ["score", str(ws.jsonl), "--family", usually(data, "micro", text(data)),
                "--format", pick(data, "table", "json", "csv"), *_watermark_options(data, tmp, True),
                *maybe(data, "--max-tokens", number(data, ["50"])), *maybe(data, "--threshold", "1")], None
    args, stdin = _score_plain(data, ws, tmp)
    return args + (_watermark_options(data, tmp, True) if how == "both" else []), stdin


CASES[("generate",)] = (generate_watermarked, CASES[("generate",)][1])
CASES[("score",)] = (score_watermarked, CASES[("score",)][1])
CASES[("watermark", "keygen")] = (watermark_keygen, 12)
CASES[("watermark", "info")] = (watermark_info, 12)


# --- the engine options (--engine ray, --ray-*) of every command that has them ------------------

ENGINE_ODD = [["--engine", "ray", "--ray-address", "bogus"], ["--engine", "ray", "--ray-address", "ray://"],
              ["--engine", "ray", "--ray-address", "127.0.0.1:notaport"], ["--engine", "spark"],
              ["--ray-workers", "0", "--engine", "ray"], ["--ray-gpus-per-worker", "-1", "--engine", "ray"],
              ["--ray-gpus-per-worker", "nan", "--engine", "ray"], ["--ray-address", "localhost:6379"]]


@pytest.mark.parametrize("odd", ENGINE_ODD, ids=lambda a: " ".join(a))
@pytest.mark.parametrize("path", [("generate",), ("score",), ("release", "simulate"), ("detector", "eval")],
                         ids=lambda p: "-".join(p))
def test_engine_options(path, odd, ws, tmp_path):
    args = {("generate",): ["generate", "--family", "micro", "--n", "1", "--length", "2", "--out", tmp_path / "o"],
            ("score",): ["score", ws.doc, "--method", "logp", "--family", "micro"],
            ("release", "simulate"): ["release", "simulate", tmp_path / "missing.toml", "--out", tmp_path / "o"],
            ("detector", "eval"): ["detector", "eval", tmp_path, "--data", tmp_path, "--out", tmp_path / "o"]}[path]
    result = CliRunner().invoke(main, [str(a) for a in args + odd], prog_name="gpt2guard")
    check(result, path, args + odd)
    assert result.exit_code != 0 and not (tmp_path / "o").exists()
