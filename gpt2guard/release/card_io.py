"""Finding and reading the stage evaluations a card is made from.

A finished simulation run lays its stages out as
``RUN/scenarios/<scenario>/stages/<stage>/evaluation.json``; ``RUN/run.json`` lists the
scenario names under ``"scenarios"``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.release.card_format import get, is_num

SCHEMA_PREFIX = "gpt2guard.release.evaluation/"


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise GuardError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GuardError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise GuardError(f"{path}: not UTF-8 text") from None


def load_evaluation(path) -> dict:
    """Read one ``evaluation.json``; a missing file, invalid JSON or another schema is a GuardError."""
    path = Path(path)
    obj = _read_json(path, "evaluation")
    if not isinstance(obj, dict):
        raise GuardError(f"{path}: not an evaluation (expected a JSON object)")
    schema = obj.get("schema")
    if schema is not None and not str(schema).startswith(SCHEMA_PREFIX):
        raise GuardError(f"{path}: schema {schema!r} is not {SCHEMA_PREFIX}*")
    return obj


def _listed_scenarios(run: Path) -> list[str]:
    if not (run / "run.json").is_file():
        return []
    listed = _read_json(run / "run.json", "run manifest")
    items = listed.get("scenarios") if isinstance(listed, dict) else None
    return [str(s.get("name") if isinstance(s, dict) else s) for s in items or []]


def scenario_dir(run_dir, scenario: str | None = None) -> Path:
    """``RUN/scenarios/<scenario>``: the one named, else the first listed in ``run.json``,
    else the only one present."""
    run = Path(run_dir)
    if not run.is_dir():
        raise GuardError(f"run directory not found: {run}")
    root = run / "scenarios"
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if scenario is None:
        listed = _listed_scenarios(run)
        if listed:
            scenario = listed[0]
        elif len(present) == 1:
            scenario = present[0]
        elif not present:
            raise GuardError(f"no scenarios in run {run} (expected {root}/<scenario>/stages/*/evaluation.json)")
        else:
            raise GuardError(f"run {run} has several scenarios ({', '.join(present)}): choose one with --scenario")
    if scenario not in present:
        raise GuardError(f"scenario {scenario!r} not found in run {run}; present: {', '.join(present) or 'none'}")
    return root / scenario


def _stage_key(item: tuple[Path, dict]):
    idx = get(item[1], "stage", "index")
    return (idx if is_num(idx) else math.inf, item[0].parent.name)


def stage_evaluations(run_dir, scenario: str | None = None) -> list[dict]:
    """Every stage's evaluation of a scenario, in stage order."""
    stages = scenario_dir(run_dir, scenario) / "stages"
    files = sorted(stages.glob("*/evaluation.json"))
    if not files:
        raise GuardError(f"no stage evaluations under {stages} (has the simulation finished?)")
    return [e for _, e in sorted(((f, load_evaluation(f)) for f in files), key=_stage_key)]


def evaluation_for_size(run_dir, size: str, scenario: str | None = None) -> dict:
    """The evaluation of ``size`` in a run, as its card reads it: the latest stage that
    measured it (released or held), viewed for that size
    (:func:`~gpt2guard.release.card_size.size_view`)."""
    from gpt2guard.release.card_detect import stage_sizes
    from gpt2guard.release.card_size import size_view

    evaluations = stage_evaluations(run_dir, scenario)
    matches = [e for e in evaluations if size in stage_sizes(e)]
    if not matches:
        sizes = ", ".join(dict.fromkeys(z for e in evaluations for z in stage_sizes(e))) or "none"
        raise GuardError(f"size {size!r} is not in run {run_dir}; sizes evaluated: {sizes}")
    return size_view(matches[-1], size)
