"""Release plans: which size is published when, at what access tier, behind which gates.

A plan is data, read from TOML or YAML (:func:`load_plan`) into the dataclasses below; unknown
keys, wrong types, out-of-range numbers, unsafe names, dates out of order and inconsistent
references are one-line errors naming the key; :func:`load_plan` also refuses what a
simulation would refuse before it starts (sizes, the context window). ``[prerelease]``
(:class:`Prerelease`) declares what counts as public before the first stage. Scenarios
(:class:`Scenario`) are variations of the plan (all sizes at once, another order, other
thresholds, shorter waits) that :func:`apply_scenario` turns into plans of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gpt2guard.errors import GuardError
from gpt2guard.release.schema import from_data, to_data

TIERS = ("closed", "partners", "api", "download", "open")
ARTIFACTS = ("weights", "model_card", "samples", "detector")
GATE_KINDS = ("detectability", "transfer", "quality_gain", "min_time", "signoff", "misuse_reports",
              "robust_detectability", "watermark_detectability")
NEEDS_THRESHOLD = ("detectability", "transfer", "quality_gain", "min_time", "misuse_reports", "robust_detectability",
                   "watermark_detectability")
SAMPLED = ("detectability", "robust_detectability", "watermark_detectability")  # kinds judged per sampling method
ATTACKED = ("robust_detectability", "watermark_detectability")  # kinds that declare attacks
NEEDS_FILE = ("signoff", "misuse_reports")
SEVERITIES = ("low", "medium", "high", "critical")

Tier = Literal["closed", "partners", "api", "download", "open"]
MAX_DAYS = 36_525  # a hundred years: the longest wait a plan may name
MAX_COUNT = 1_000_000  # the most documents, resamples or reports a plan may ask for
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# the range of a threshold by gate kind: (low, high, whether high itself is allowed)
THRESHOLD_RANGE = {"detectability": (0.0, 1.0, True), "transfer": (0.0, 1.0, True), "quality_gain": (0.0, 1.0, False),
                   "min_time": (0.0, float(MAX_DAYS), True), "misuse_reports": (0.0, float(MAX_COUNT), True),
                   "robust_detectability": (0.0, 1.0, True), "watermark_detectability": (0.0, 1.0, True)}


def check_name(value: str, path: str) -> None:
    """Refuse a stage, scenario or plan name that could not be one directory inside ``--out``."""
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value) or ".." in value:
        raise GuardError(f"{path}: {value!r} is not a safe name: use 1 to 64 letters, digits and . _ + -, "
                         "starting with a letter or digit, without '..' (it names a directory inside --out)")


def check_threshold(kind: str, value: float | None, path: str) -> None:
    """Refuse a threshold that is NaN, infinite or outside its kind's range."""
    if value is None or kind not in THRESHOLD_RANGE:
        return
    low, high, closed = THRESHOLD_RANGE[kind]
    if not math.isfinite(value) or value < low or value > high or (value == high and not closed):
        what = {"detectability": "a rate: between 0 and 1", "robust_detectability": "a rate: between 0 and 1",
                "watermark_detectability": "a rate: between 0 and 1", "transfer": "an AUROC drop: between 0 and 1",
                "quality_gain": "a relative perplexity reduction: at least 0 and below 1",
                "min_time": f"days: between 0 and {MAX_DAYS}",
                "misuse_reports": f"a count: between 0 and {MAX_COUNT}"}[kind]
        raise GuardError(f"{path}: a {kind} threshold is {what}, got {value!r}")


def check_file_pattern(value: str, path: str) -> None:
    """Refuse an evidence-file pattern that is absolute or climbs out of the plan's folder."""
    parts = re.split(r"[\\/]", value)
    if value.startswith(("/", "\\", "~")) or re.match(r"[A-Za-z]:", value) or ".." in parts or not value.strip():
        raise GuardError(f"{path}: {value!r} must be a path relative to the plan file's folder, without '..'")


CLEAN = "clean"
"""The evidence key of the unattacked texts, judged with every attack gate's attacks."""


def plan_attacks(plan: "Plan") -> list[str]:
    """Every attack any gate of the plan declares (``str`` of its AttackSpec), in first-declared order:
    what a stage measures its detectors against, whichever of its gates asks."""
    return list(dict.fromkeys(k for g in plan.gates.values() for k in g.attack_keys()))


@dataclass
class GateSpec:
    """A named check: its kind, threshold and, for sign-off and misuse gates, an evidence file.

    ``threshold`` means, by kind (see :mod:`gpt2guard.release.judge`): ``detectability`` the
    least TPR of the publishable detector at the calibrated FPR (a rate in [0, 1]);
    ``transfer`` the largest AUROC third parties' detectors may lack against it (in [0, 1]);
    ``quality_gain`` the largest relative perplexity reduction over the most capable public
    model (in [0, 1)); ``min_time`` the fewest days since the plan's previous step;
    ``misuse_reports`` the most reports at or above ``min_severity``. A detectability gate
    looks at the ``sampling`` methods listed (default all, judged on the worst). ``file`` may contain ``{size}`` and ``{stage}``; relative paths are
    relative to the plan file. With ``conservative`` the confidence bound (not the point
    estimate) must clear the threshold. A gate that is not ``required`` is recorded but
    does not hold a release.

    ``robust_detectability`` is the least TPR of the publishable detector at the threshold
    calibrated on clean human text, worst over clean and each of the ``attacks`` applied to
    the stage's machine test texts; ``watermark_detectability`` the least share of the
    stage's watermarked API texts detected at the stage's z threshold, worst over clean and
    each of the ``attacks`` (a stage without a watermark fails it). Both are rates in [0, 1]
    and look at ``sampling`` like a detectability gate. ``attacks`` are ``"name=rate"``
    specs of :func:`gpt2guard.attacks.parse_attacks` (``"homoglyph=1.0"``).
    """

    kind: Literal["detectability", "transfer", "quality_gain", "min_time", "signoff", "misuse_reports",
                  "robust_detectability", "watermark_detectability"]
    threshold: float | None = None
    required: bool = True
    conservative: bool = False
    file: str | None = None
    min_severity: Literal["low", "medium", "high", "critical"] = "high"
    sampling: list[str] | None = None
    attacks: list[str] | None = None
    description: str = ""

    def check(self, path: str) -> None:
        check_threshold(self.kind, self.threshold, f"{path}.threshold")
        if self.file is not None:
            check_file_pattern(self.file, f"{path}.file")
        if self.sampling is not None and self.kind not in SAMPLED:
            raise GuardError(f"{path}.sampling: only a detectability, robust_detectability or watermark_detectability "
                             "gate looks at sampling methods")
        if self.attacks is not None and self.kind not in ATTACKED:
            raise GuardError(f"{path}.attacks: only a robust_detectability or watermark_detectability gate "
                             "declares attacks")
        if self.kind == "robust_detectability" and not self.attacks:
            raise GuardError(f"{path}.attacks: a robust_detectability gate names at least one attack, "
                             'e.g. attacks = ["homoglyph=1.0", "whitespace=0.2"]')
        if self.attacks:
            self.attack_specs(path)
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

    def attack_keys(self) -> list[str]:
        """The declared attacks as evidence keys (``homoglyph=1``, ``whitespace=0.2``: ``str`` of
        each :class:`gpt2guard.attacks.AttackSpec`), in order; ``clean`` not included."""
        return [str(spec) for spec in self.attack_specs()]

    def attack_specs(self, path: str = "") -> list:
        """The declared attacks as :class:`gpt2guard.attacks.AttackSpec` (one-line errors
        naming ``path.attacks[i]``: an unknown attack, a rate outside [0, 1], a repeat)."""
        from gpt2guard.attacks import parse_attacks

        specs, seen = [], {}
        for i, text in enumerate(self.attacks or []):
            where = f"{path}.attacks[{i}]" if path else f"attacks[{i}]"
            if not isinstance(text, str) or not text.strip() or "," in text:
                raise GuardError(f"{where}: one attack per entry, as name=rate (e.g. \"homoglyph=1.0\"), got {text!r}")
            try:
                parsed = parse_attacks(text)
            except GuardError as exc:
                raise GuardError(f"{where}: {exc}") from None
            for spec in parsed:
                if str(spec) in seen:
                    raise GuardError(f"{where}: {spec} is declared twice (also attacks[{seen[str(spec)]}])")
                seen[str(spec)] = i
                specs.append(spec)
        return specs


WATERMARK_SCHEMES = ("lefthash", "selfhash")
"""Watermark schemes a plan may name (checked again by :class:`gpt2guard.watermark.WatermarkConfig`)."""


@dataclass
class Watermark:
    """A stage's API watermark: its key file and parameters.

    ``key`` is a file pattern like a gate's ``file`` (``{stage}``/``{size}`` filled, relative
    to the plan's folder), naming a key written by ``gpt2guard.watermark.keygen``; only its
    SHA-256 digest enters evidence and manifests. Every API text of the stage is generated
    with the green-list ``scheme`` (fraction ``gamma`` of the vocabulary green, logits of
    green tokens raised by ``delta``), and a text counts as watermarked when its z-score
    reaches ``z_threshold``.

    A key file the plan names must exist, unless ``create`` is true: then the first
    simulation that finds none writes a fresh secret key there (mode 0600) for the plan's
    family and records its digest. That is for simulated labs such as the default plan; a
    real plan names the lab's own key and leaves ``create`` out.
    """

    key: str
    gamma: float = 0.25
    delta: float = 2.0
    scheme: str = "lefthash"
    z_threshold: float = 4.0
    create: bool = False

    def check(self, path: str) -> None:
        check_file_pattern(self.key, f"{path}.key")
        if not (math.isfinite(self.gamma) and 0 < self.gamma < 1):
            raise GuardError(f"{path}.gamma: the green share of the vocabulary is between 0 and 1, got {self.gamma!r}")
        if not (math.isfinite(self.delta) and 0 < self.delta <= 100):
            raise GuardError(f"{path}.delta: the logit boost of green tokens is above 0 and at most 100, "
                             f"got {self.delta!r}")
        if self.scheme not in WATERMARK_SCHEMES:
            raise GuardError(f"{path}.scheme: unknown watermark scheme {self.scheme!r} "
                             f"(known: {', '.join(WATERMARK_SCHEMES)})")
        if not (math.isfinite(self.z_threshold) and 0 < self.z_threshold <= 100):
            raise GuardError(f"{path}.z_threshold: a z-score above 0 and at most 100, got {self.z_threshold!r}")


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
    watermark: Watermark | None = None

    def check(self, path: str) -> None:
        check_name(self.name, f"{path}.name")
        if not self.sizes:
            raise GuardError(f"{path}.sizes: a stage publishes at least one size")
        if not 0 <= self.after_days <= MAX_DAYS:
            raise GuardError(f"{path}.after_days: must be between 0 and {MAX_DAYS} days, got {self.after_days}")
        bad = [a for a in self.artifacts if a not in ARTIFACTS]
        if bad:
            raise GuardError(f"{path}.artifacts: unknown artifact {bad[0]!r} (known: {', '.join(ARTIFACTS)})")
        if "weights" in self.artifacts and self.tier not in ("download", "open"):
            raise GuardError(f"{path}.artifacts: weights are only published at the download or open tier, "
                             f"not {self.tier!r}")
        if self.watermark is not None and self.tier != "api":
            raise GuardError(f"{path}.watermark: only a stage at the api tier is watermarked (the lab generates "
                             f"every text it publishes there), not {self.tier!r}")


@dataclass
class Evaluation:
    """How much evidence each stage computes (per size and sampling method) and how."""

    samples: int = 120
    test_samples: int = 120
    length: int | None = None  # None: 128, or the family's context window less one when shorter
    sampling: list[str] = field(default_factory=lambda: ["pure", "top-k=40"])
    human_train: int = 180
    human_calibration: int = 400
    human_test: int = 500
    fpr: float = 0.01
    detector: Literal["logistic", "boosting", "finetune"] = "logistic"
    max_scorers: int = 1
    min_tokens: int = 16
    n_boot: int = 200
    batch_size: int = 16

    def check(self, path: str) -> None:
        if self.length is not None and not 1 <= self.length <= MAX_COUNT:
            raise GuardError(f"{path}.length: must be between 1 and {MAX_COUNT}, got {self.length}")
        for name in ("samples", "test_samples", "human_train", "human_calibration", "human_test",
                     "max_scorers", "n_boot", "batch_size"):
            if not 1 <= getattr(self, name) <= MAX_COUNT:
                raise GuardError(f"{path}.{name}: must be between 1 and {MAX_COUNT}, got {getattr(self, name)}")
        if not 0 < self.fpr < 0.5:  # false for NaN too
            raise GuardError(f"{path}.fpr: must be between 0 and 0.5, got {self.fpr}")
        if not self.sampling:
            raise GuardError(f"{path}.sampling: name at least one sampling method")
        from gpt2guard.generator.sampling import parse_sampling

        try:
            parse_sampling(",".join(self.sampling))
        except GuardError as exc:
            raise GuardError(f"{path}.sampling: {exc}") from None


@dataclass
class Prerelease:
    """What counts as public before the first stage: the reference a stage is judged against
    when nothing of the family is public yet.

    ``size`` names the family size whose quality stands for the public state of the art
    before stage 1 (default: the family's smallest); ``perplexity`` declares that state's
    perplexity on the run's held-out human text instead. The reference stays part of the
    public state at every later stage, so a released size is never judged against less.
    ``detector_auroc`` is the best AUROC a third party's detector reaches on a size nobody
    has trained a detector for: 0.5, chance, unless the plan declares a better one.
    """

    size: str | None = None
    perplexity: float | None = None
    detector_auroc: float = 0.5
    description: str = ""

    def check(self, path: str) -> None:
        where = f"{path}." if path else ""
        if self.size is not None and self.perplexity is not None:
            raise GuardError(f"{where}perplexity: give a reference size or a perplexity, not both")
        if self.perplexity is not None and not (math.isfinite(self.perplexity) and 1 <= self.perplexity < 1e9):
            raise GuardError(f"{where}perplexity: a perplexity is a finite number of at least 1, "
                             f"got {self.perplexity!r}")
        if not (math.isfinite(self.detector_auroc) and 0.5 <= self.detector_auroc <= 1):
            raise GuardError(f"{where}detector_auroc: an AUROC between 0.5 (chance) and 1, "
                             f"got {self.detector_auroc!r}")


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
    prerelease: Prerelease = field(default_factory=Prerelease)
    scenarios: list[Scenario] = field(default_factory=list)
    source: str | None = None  # the file it was read from: relative gate files resolve against it

    def check(self, path: str) -> None:
        where = path + "." if path else ""
        check_name(self.name, f"{where}name")
        check_name(self.baseline, f"{where}baseline")
        if not 0 <= self.seed < 2**63:
            raise GuardError(f"{where}seed: a seed is an integer from 0 to 2**63 - 1, got {self.seed}")
        from gpt2guard.release.data import sampling_key

        measured = {sampling_key(m) for m in self.evaluation.sampling}
        for name, g in self.gates.items():
            missing = [m for m in g.sampling or [] if sampling_key(m) not in measured]
            if missing:
                raise GuardError(f"{where}gates.{name}.sampling: {missing[0]!r} is not measured "
                                 f"(evaluation.sampling: {', '.join(self.evaluation.sampling)})")
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
        check_dates(self, where)
        names = {self.baseline}
        for i, sc in enumerate(self.scenarios):
            here = f"{where}scenarios[{i}]"
            check_name(sc.name, f"{here}.name")
            if sc.name in names:
                raise GuardError(f"{here}.name: duplicate scenario name {sc.name!r}")
            names.add(sc.name)
            for g, value in sc.thresholds.items():
                if g not in self.gates:
                    raise GuardError(f"{here}.thresholds: no gate named {g!r}")
                check_threshold(self.gates[g].kind, value, f"{here}.thresholds.{g}")
            if sc.order is not None:
                if sorted(sc.order) != sorted(seen_sizes):
                    raise GuardError(f"{here}.order: must list the plan's sizes {sorted(seen_sizes)} once each")
                if any(len(st.sizes) != 1 for st in self.stages):
                    raise GuardError(f"{here}.order: needs one size per stage")
            if sc.after_days is not None and not 0 <= sc.after_days <= MAX_DAYS:
                raise GuardError(f"{here}.after_days: must be between 0 and {MAX_DAYS} days, got {sc.after_days}")
            variant = apply_scenario(self, sc)
            for j, st in enumerate(variant.stages):  # the tier rule and safe names hold in every scenario mode
                try:
                    st.check(f"{here} stage {st.name!r}")
                except GuardError as exc:
                    raise GuardError(f"{exc} (in scenario {sc.name!r}, mode {sc.mode})") from None
            check_dates(variant, f"{here}: ")

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
    if "source" in data:
        raise GuardError("source: unknown key (it is set to the file a plan was read from)")
    plan = from_data(Plan, {**data, "source": source})
    check_sizes(plan)
    check_runnable(plan)
    return plan


def check_sizes(plan: Plan) -> None:
    """Every size a plan names exists in its family (no model is loaded)."""
    from gpt2guard.family import get_family

    try:
        spec = get_family(plan.family)
    except GuardError as exc:
        raise GuardError(f"family: {exc}") from None
    known = [s.name for s in spec.sizes]
    for i, st in enumerate(plan.stages):
        for size in st.sizes:
            if size not in known:
                raise GuardError(f"stages[{i}].sizes: family {plan.family!r} has no size {size!r} "
                                 f"(sizes: {', '.join(known)})")
    if plan.prerelease.size is not None and plan.prerelease.size not in known:
        raise GuardError(f"prerelease.size: family {plan.family!r} has no size {plan.prerelease.size!r} "
                         f"(sizes: {', '.join(known)})")


def check_runnable(plan: Plan) -> None:
    """What a simulation would refuse before it starts, checked without loading a model: every
    document fits every size's context window (one start token plus ``evaluation.length``)."""
    from gpt2guard.family import get_family
    from gpt2guard.generator.run import _context_window

    spec = get_family(plan.family)
    windows = [w for w in (_context_window(spec, z) for z in dict.fromkeys(plan.sizes)) if w]
    if plan.evaluation.length is None:
        plan.evaluation.length = min([128] + [w - 1 for w in windows])
    for size in dict.fromkeys(plan.sizes):
        window = _context_window(spec, size)
        if window is not None and plan.evaluation.length + 1 > window:
            raise GuardError(f"evaluation.length: {plan.evaluation.length} new tokens do not fit {plan.family} "
                             f"{size}'s context window of {window} tokens (at most {window - 1} after the start "
                             "token)")


def reference_label(plan: Plan) -> str:
    """How the pre-release reference is named in evidence: a size, or a declared perplexity."""
    if plan.prerelease.perplexity is not None:
        return f"declared perplexity {plan.prerelease.perplexity:g}"
    return prerelease_size(plan)


def prerelease_size(plan: Plan) -> str | None:
    """The family size standing for the public state before stage 1 (None with a declared perplexity)."""
    if plan.prerelease.perplexity is not None:
        return None
    if plan.prerelease.size is not None:
        return plan.prerelease.size
    from gpt2guard.family import get_family

    return get_family(plan.family).sizes[0].name


def read_data(path: str | Path) -> dict:
    """Parse a TOML, YAML or JSON file by its extension; one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise GuardError(f"no such file: {path}")
    from gpt2guard.paths import read_text_utf8

    text = read_text_utf8(path)
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
    for i, st in enumerate(plan.stages):
        try:
            last = st.date or last + dt.timedelta(days=st.after_days)
        except OverflowError:
            raise GuardError(f"stages[{i}].after_days: the stage's date would fall after the year 9999") from None
        dates.append(last)
    return dates


def check_dates(plan: Plan, where: str = "") -> None:
    """Stage dates never go back in time: none before the plan's start or an earlier stage."""
    prev, prev_name = plan.start, "the plan's start"
    for i, (st, date) in enumerate(zip(plan.stages, stage_dates(plan))):
        if date < prev:
            key = "date" if st.date else "after_days"
            raise GuardError(f"{where}stages[{i}].{key}: {st.name!r} on {date} comes before {prev_name} ({prev}); "
                             "stage dates must not go back in time")
        prev, prev_name = date, f"stage {st.name!r}"


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
        tier = max((st.tier for st in stages), key=TIERS.index)  # every size out at once, at the most open tier
        stages = [Stage(name="all", sizes=plan.sizes, tier=tier, after_days=0, date=None,
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


def evidence_notes(plan: Plan) -> list[str]:
    """Evidence files a gate of some scenario will not find or cannot read (the gate fails then;
    the plan itself is valid)."""
    notes, seen = [], set()
    for name, variant in scenarios(plan):
        for st in variant.stages:
            for g in st.gates:
                spec = variant.gates[g]
                if not spec.file:
                    continue
                path = resolve_file(variant, spec.file, st)
                if path in seen:
                    continue
                seen.add(path)
                if not path.is_file():
                    notes.append(f"gate {g!r} of stage {st.name!r} (scenario {name}) will fail: no file {path}")
                    continue
                try:
                    if spec.kind == "misuse_reports":
                        from gpt2guard.release.gates import read_reports

                        read_reports(path)
                    else:
                        read_data(path)
                except GuardError as exc:
                    notes.append(f"gate {g!r} of stage {st.name!r} (scenario {name}) will fail: {exc}")
    return notes


def key_files(plan: Plan) -> list[tuple[str, int, Stage, Path]]:
    """``(scenario, stage index, stage, key path)`` of every watermarked stage of every scenario."""
    out = []
    for name, variant in scenarios(plan):
        for i, st in enumerate(variant.stages):
            if st.watermark is not None:
                out.append((name, i, st, resolve_file(variant, st.watermark.key, st)))
    return out


def check_keys(plan: Plan, missing: list | None = None) -> dict[str, str]:
    """Load every watermark key the plan names, in every scenario; nothing is written.

    Parameters
    ----------
    plan : Plan
    missing : list, optional
        Receives the paths of absent key files whose stage has ``create = true`` (the first
        simulation makes them: :func:`make_keys`).

    Returns
    -------
    dict
        Key file (relative to the plan's folder, POSIX) -> SHA-256 digest of its key.

    Raises
    ------
    GuardError
        One line naming the plan, the stage's ``watermark.key`` and the file, when a key file
        is missing (without ``create``), is not a key, or is for another family's tokenizer.
    """
    files = key_files(plan)
    if not files:
        return {}
    from gpt2guard.watermark import load_key

    digests: dict[str, str] = {}
    for scenario, i, st, path in files:
        where = f"stages[{i}].watermark.key" + ("" if scenario == plan.baseline else f" (scenario {scenario!r})")
        rel = key_name(plan, path)
        if rel in digests or (missing is not None and path in missing):
            continue
        if not path.exists() and st.watermark.create and missing is not None:
            missing.append(path)
            continue
        if not path.exists():
            raise GuardError(_in_plan(plan, f"{where}: no key file {path} (make one with "
                                            f"`gpt2guard watermark keygen --out {path} --family {plan.family}`)"))
        try:
            key = load_key(path)
        except GuardError as exc:
            msg = str(exc)
            raise GuardError(_in_plan(plan, f"{where}: {msg if str(path) in msg else f'{path}: {msg}'}")) from None
        if key.family != plan.family:
            raise GuardError(_in_plan(plan, f"{where}: {path} is a key for the {key.family} tokenizer, "
                                            f"not the plan's family {plan.family}"))
        digests[rel] = key.digest
    return digests


def key_name(plan: Plan, path: Path) -> str:
    """How records name a key file: its path relative to the plan's folder (POSIX)."""
    base = Path(plan.source).parent if plan.source else Path.cwd()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.name


def make_keys(plan: Plan, paths: list[Path]) -> dict[str, str]:
    """Write a fresh secret key for the plan's family at each of ``paths`` (``create = true``
    stages whose key file is absent); returns their digests as :func:`check_keys` does."""
    from gpt2guard.watermark import keygen

    return {key_name(plan, p): keygen(p, family=plan.family).digest for p in paths}


def _in_plan(plan: Plan, msg: str) -> str:
    return f"{plan.source}: {msg}" if plan.source else msg
