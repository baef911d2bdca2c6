"""Release plans: which size is published when, at what access tier, behind which gates.

A plan is data, read from TOML or YAML (:func:`load_plan`) into the dataclasses below; unknown
keys, wrong types and inconsistent references are one-line errors naming the key. Scenarios
(:class:`Scenario`) are variations of the plan (all sizes at once, another order, other
thresholds, shorter waits) that :func:`apply_scenario` turns into plans of their own.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gpt2guard.errors import GuardError
from gpt2guard.release.schema import from_data, to_data

TIERS = ("closed", "partners", "api", "download", "open")
ARTIFACTS = ("weights", "model_card", "samples", "detector")
GATE_KINDS = ("detectability", "transfer", "quality_gain", "min_time", "signoff", "misuse_reports")
NEEDS_THRESHOLD = ("detectability", "transfer", "quality_gain", "min_time", "misuse_reports")
NEEDS_FILE = ("signoff", "misuse_reports")
SEVERITIES = ("low", "medium", "high", "critical")

Tier = Literal["closed", "partners", "api", "download", "open"]


@dataclass
class GateSpec:
    """A named check: its kind, threshold and, for sign-off and misuse gates, an evidence file.

    ``threshold`` means, by kind: ``detectability`` the least TPR at the calibrated FPR;
    ``transfer`` the largest AUROC drop from released sizes to this one; ``quality_gain``
    the largest relative perplexity reduction over the last released size; ``min_time`` the
    fewest days since the last release; ``misuse_reports`` the most reports at or above
    ``min_severity``. A detectability gate looks at the ``sampling`` methods listed (default
    all, judged on the worst). ``file`` may contain ``{size}`` and ``{stage}``; relative paths are
    relative to the plan file. With ``conservative`` the confidence bound (not the point
    estimate) must clear the threshold. A gate that is not ``required`` is recorded but
    does not hold a release.
    """

    kind: Literal["detectability", "transfer", "quality_gain", "min_time", "signoff", "misuse_reports"]
    threshold: float | None = None
    required: bool = True
    conservative: bool = False
    file: str | None = None
    min_severity: Literal["low", "medium", "high", "critical"] = "high"
    sampling: list[str] | None = None
    description: str = ""

    def check(self, path: str) -> None:
        if self.sampling is not None and self.kind != "detectability":
            raise GuardError(f"{path}.sampling: only a detectability gate looks at sampling methods")
        if self.sampling is not None:
            from gpt2guard.generator.sampling import parse_sampling

            try:
                parse_sampling(",".join(self.sampling))
            except GuardError as exc:
                raise GuardError(f"{path}.sampling: {exc}") from None
        if self.kind in NEEDS_THRESHOLD and self.threshold is None:
            raise GuardError(f"{path}.threshold: required for a {self.kind} gate")
        if self.kind in NEEDS_FILE and not self.file:
            raise GuardError(f"{path}.file: required for a {self.kind} gate")


@dataclass
class Stage:
    """One step of the release: the sizes it publishes, when, how, and behind which gates."""

    name: str
    sizes: list[str]
    tier: Tier = "download"
    after_days: int = 0
    date: dt.date | None = None
    artifacts: list[str] = field(default_factory=lambda: list(ARTIFACTS))
    gates: list[str] = field(default_factory=list)

    def check(self, path: str) -> None:
        if not self.sizes:
            raise GuardError(f"{path}.sizes: a stage publishes at least one size")
        if self.after_days < 0:
            raise GuardError(f"{path}.after_days: must be 0 or more, got {self.after_days}")
        bad = [a for a in self.artifacts if a not in ARTIFACTS]
        if bad:
            raise GuardError(f"{path}.artifacts: unknown artifact {bad[0]!r} (known: {', '.join(ARTIFACTS)})")
        if "weights" in self.artifacts and self.tier not in ("download", "open"):
            raise GuardError(f"{path}.artifacts: weights are only published at the download or open tier, "
                             f"not {self.tier!r}")


@dataclass
class Evaluation:
    """How much evidence each stage computes (per size and sampling method) and how."""

    samples: int = 120
    test_samples: int = 120
    length: int = 128
    sampling: list[str] = field(default_factory=lambda: ["pure", "top-k=40"])
    human_train: int = 180
    human_calibration: int = 400
    human_test: int = 500
    fpr: float = 0.01
    detector: Literal["logistic", "boosting"] = "logistic"
    max_scorers: int = 1
    min_tokens: int = 16
    n_boot: int = 200
    batch_size: int = 16

    def check(self, path: str) -> None:
        for name in ("samples", "test_samples", "length", "human_train", "human_calibration", "human_test",
                     "max_scorers", "n_boot", "batch_size"):
            if getattr(self, name) < 1:
                raise GuardError(f"{path}.{name}: must be at least 1, got {getattr(self, name)}")
        if not 0 < self.fpr < 0.5:
            raise GuardError(f"{path}.fpr: must be between 0 and 0.5, got {self.fpr}")
        if not self.sampling:
            raise GuardError(f"{path}.sampling: name at least one sampling method")
        from gpt2guard.generator.sampling import parse_sampling

        try:
            parse_sampling(",".join(self.sampling))
        except GuardError as exc:
            raise GuardError(f"{path}.sampling: {exc}") from None


@dataclass
class Scenario:
    """A variation of the plan to compare with it.

    ``mode = "all-at-once"`` publishes every size in one stage on the start date; ``order``
    gives the stages' sizes in another order (stages keep their timing, tier and gates);
    ``thresholds`` overrides gate thresholds by gate name; ``after_days`` overrides every
    wait between stages.
    """

    name: str
    mode: Literal["staged", "all-at-once"] = "staged"
    order: list[str] | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    after_days: int | None = None
    description: str = ""


@dataclass
class Plan:
    """A staged release plan (see ``gpt2guard release plan init`` for an annotated example)."""

    name: str
    stages: list[Stage]
    gates: dict[str, GateSpec] = field(default_factory=dict)
    family: str = "nano"
    seed: int = 0
    start: dt.date = dt.date(2019, 2, 14)
    on_hold: Literal["stop", "continue"] = "stop"
    baseline: str = "staged"
    description: str = ""
    evaluation: Evaluation = field(default_factory=Evaluation)
    scenarios: list[Scenario] = field(default_factory=list)
    source: str | None = None  # the file it was read from: relative gate files resolve against it

    def check(self, path: str) -> None:
        where = path + "." if path else ""
        if not self.stages:
            raise GuardError(f"{where}stages: a plan has at least one stage")
        seen_names, seen_sizes = set(), {}
        for i, st in enumerate(self.stages):
            if st.name in seen_names:
                raise GuardError(f"{where}stages[{i}].name: duplicate stage name {st.name!r}")
            seen_names.add(st.name)
            for size in st.sizes:
                if size in seen_sizes:
                    raise GuardError(f"{where}stages[{i}].sizes: {size!r} is already published by stage "
                                     f"{seen_sizes[size]!r}")
                seen_sizes[size] = st.name
            for g in st.gates:
                if g not in self.gates:
                    raise GuardError(f"{where}stages[{i}].gates: no gate named {g!r} "
                                     f"(defined: {', '.join(self.gates) or 'none'})")
        names = {self.baseline}
        for i, sc in enumerate(self.scenarios):
            here = f"{where}scenarios[{i}]"
            if sc.name in names:
                raise GuardError(f"{here}.name: duplicate scenario name {sc.name!r}")
            names.add(sc.name)
            for g in sc.thresholds:
                if g not in self.gates:
                    raise GuardError(f"{here}.thresholds: no gate named {g!r}")
            if sc.order is not None:
                if sorted(sc.order) != sorted(seen_sizes):
                    raise GuardError(f"{here}.order: must list the plan's sizes {sorted(seen_sizes)} once each")
                if any(len(st.sizes) != 1 for st in self.stages):
                    raise GuardError(f"{here}.order: needs one size per stage")
            if sc.after_days is not None and sc.after_days < 0:
                raise GuardError(f"{here}.after_days: must be 0 or more")

    @property
    def sizes(self) -> list[str]:
        """Every size the plan publishes, in stage order."""
        return [s for st in self.stages for s in st.sizes]

    def to_dict(self) -> dict:
        return to_data(self)


def parse_plan(data: dict, source: str | None = None) -> Plan:
    """A validated :class:`Plan` from parsed TOML/YAML data."""
    if not isinstance(data, dict):
        raise GuardError("a release plan is a table of keys (name, family, stages, gates...)")
    plan = from_data(Plan, {**data, "source": source})
    check_sizes(plan)
    return plan


def check_sizes(plan: Plan) -> None:
    """Every size a plan names exists in its family (no model is loaded)."""
    from gpt2guard.family import get_family

    spec = get_family(plan.family)
    known = [s.name for s in spec.sizes]
    for i, st in enumerate(plan.stages):
        for size in st.sizes:
            if size not in known:
                raise GuardError(f"stages[{i}].sizes: family {plan.family!r} has no size {size!r} "
                                 f"(sizes: {', '.join(known)})")


def read_data(path: str | Path) -> dict:
    """Parse a TOML, YAML or JSON file by its extension; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise GuardError(f"no such file: {path}")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        if suffix == ".json":
            return json.loads(text)
    except Exception as exc:  # noqa: BLE001 - parse errors of three libraries, reported as one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GuardError(f"{path}: not valid {suffix[1:].upper()}: {first}") from None
    raise GuardError(f"{path}: a plan is a .toml, .yaml, .yml or .json file")


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; errors name the file and the key."""
    try:
        return parse_plan(read_data(path), source=str(Path(path).resolve()))
    except GuardError as exc:
        msg = str(exc)
        raise GuardError(msg if str(path) in msg else f"{path}: {msg}") from None


def stage_dates(plan: Plan) -> list[dt.date]:
    """The scheduled date of every stage: an explicit ``date``, else the previous stage's
    date (the plan's ``start`` for the first) plus ``after_days``."""
    dates, last = [], plan.start
    for st in plan.stages:
        last = st.date or last + dt.timedelta(days=st.after_days)
        dates.append(last)
    return dates


def apply_scenario(plan: Plan, scenario: Scenario | None) -> Plan:
    """The plan a scenario describes (the plan itself for None)."""
    if scenario is None:
        return plan
    gates = {name: replace(g, threshold=scenario.thresholds.get(name, g.threshold)) for name, g in plan.gates.items()}
    stages = list(plan.stages)
    if scenario.order is not None:
        stages = [replace(st, name=size, sizes=[size]) for st, size in zip(stages, scenario.order)]
    if scenario.after_days is not None:
        stages = [replace(st, after_days=scenario.after_days if i else st.after_days, date=None if i else st.date)
                  for i, st in enumerate(stages)]
    if scenario.mode == "all-at-once":
        gate_names = list(dict.fromkeys(g for st in stages for g in st.gates))
        artifacts = list(dict.fromkeys(a for st in stages for a in st.artifacts))
        stages = [Stage(name="all", sizes=plan.sizes, tier=stages[-1].tier, after_days=0, date=None,
                        artifacts=artifacts, gates=gate_names)]
    return replace(plan, stages=stages, gates=gates, scenarios=[], baseline=scenario.name,
                   description=scenario.description or plan.description)


def scenarios(plan: Plan, only: list[str] | None = None) -> list[tuple[str, Plan]]:
    """``(name, plan)`` of the baseline and each scenario, optionally only the named ones."""
    out = [(plan.baseline, plan)] + [(sc.name, apply_scenario(plan, sc)) for sc in plan.scenarios]
    if only:
        known = [n for n, _ in out]
        missing = [n for n in only if n not in known]
        if missing:
            raise GuardError(f"no scenario {missing[0]!r} in the plan (scenarios: {', '.join(known)})")
        out = [(n, p) for n, p in out if n in only]
    return out


def resolve_file(plan: Plan | None, pattern: str, stage: Stage) -> Path:
    """A gate's evidence file for a stage: ``{size}``/``{stage}`` filled, relative to the plan
    file (to the working directory without a plan file)."""
    name = pattern.replace("{size}", "+".join(stage.sizes)).replace("{stage}", stage.name)
    path = Path(name).expanduser()
    if not path.is_absolute() and plan is not None and plan.source:
        path = Path(plan.source).parent / path
    return path
