"""Gates as code: each gate kind is a function from a stage's evidence to a :class:`GateResult`.

The functions are pure: :class:`~gpt2guard.release.judge.StageEvidence` holds the numbers a
simulation measured (or a test constructed) and the gate compares one metric with its
threshold, recording the value, its confidence interval, the threshold, what it was judged
against, pass or fail and the evidence files. ``GATES`` is the
registry by kind; :func:`evaluate_gates` runs a stage's gates in order.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.release.judge import StageEvidence
from gpt2guard.release.plan import SEVERITIES, GateSpec, Plan, resolve_file

__all__ = ["GATES", "GateResult", "StageEvidence", "decide", "evaluate_gates"]


@dataclass
class GateResult:
    """One gate's evaluation: ``passed`` is ``value op threshold`` (on the CI bound when the
    gate is conservative); ``reference`` names what the value was judged against."""

    name: str
    kind: str
    metric: str
    value: float | None
    ci: list | None
    threshold: float | None
    op: str
    passed: bool
    required: bool
    evidence: list[str] = field(default_factory=list)
    note: str = ""
    reference: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _compare(value: float, op: str, threshold: float) -> bool:
    return value >= threshold if op == ">=" else value <= threshold


def _judge(name: str, spec: GateSpec, metric: str, value, ci, op: str, evidence, note: str = "",
           reference: str = "") -> GateResult:
    """A result comparing ``value`` (or, when conservative, the CI bound on the unsafe side)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return GateResult(name, spec.kind, metric, None, ci, spec.threshold, op, False, spec.required, evidence,
                          note or "not measured", reference)
    judged = value
    if spec.conservative and ci:
        judged = ci[0] if op == ">=" else ci[1]
        note = (note + "; " if note else "") + f"judged on the CI bound {judged:.4g}"
    return GateResult(name, spec.kind, metric, float(value), ci, spec.threshold, op,
                      _compare(judged, op, spec.threshold), spec.required, evidence, note, reference)


def detectability(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """The publishable detector's worst TPR, over this stage's sizes and sampling methods, at
    the calibrated threshold."""
    from gpt2guard.release.data import sampling_key

    wanted = None if spec.sampling is None else {sampling_key(m) for m in spec.sampling}
    cells = [(size, method, m) for size, by in (ev.detection or {}).items() for method, m in by.items()
             if wanted is None or method in wanted]
    metric = "TPR at the calibrated FPR threshold (worst of " + (", ".join(sorted(wanted)) if wanted else
                                                                 "all sampling methods") + ")"
    trained = ", ".join(ev.publishable or sorted(set(ev.released) | set(ev.stage.sizes)))
    reference = f"publishable detector trained on {trained}"
    if not cells:
        return _judge(name, spec, metric, None, None, ">=", [], "no detection evidence", reference)
    size, method, worst = min(cells, key=lambda c: c[2]["tpr"])
    return _judge(name, spec, metric, worst["tpr"], worst.get("tpr_ci"), ">=", [ev.files.get("detection", "")],
                  f"worst: {size} {method}", reference)


def transfer(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """AUROC third parties' detectors lack against the publishable one, on the stage's worst size."""
    metric = "AUROC drop from the publishable detector to third parties' best"
    if ev.transfer is None:
        return _judge(name, spec, metric, None, None, "<=", [], "no transfer evidence")
    t = ev.transfer
    w = t["by_size"][t["size"]]
    note = f"worst: {t['size']}: publishable {w['publishable_auroc']:.3f}, third parties {w['third_party_auroc']:.3f}"
    return _judge(name, spec, metric, t["drop"], t.get("drop_ci"), "<=", [ev.files.get("transfer", "")], note,
                  t["reference"])


def quality_gain(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """Relative perplexity reduction on held-out human text from the most capable model public
    before the stage (the pre-release reference included) to the most capable after it."""
    metric = "relative perplexity reduction of the most capable public model"
    if ev.quality_gain is None:
        return _judge(name, spec, metric, None, None, "<=", [], "no perplexity evidence")
    q = ev.quality_gain
    return _judge(name, spec, metric, q["value"], q.get("ci"), "<=", [ev.files.get("perplexity", "")],
                  f"{q['size']} ppl {q['ppl']:.2f} vs {q['vs']} ppl {q['vs_ppl']:.2f}",
                  f"{q['vs']} ({q['reference']})")


def min_time(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """Days since the plan's previous step (released or held; the plan's start before the first)."""
    metric = "days since the plan's previous step"
    if ev.previous is None:
        return _judge(name, spec, metric, None, None, ">=", [], "no previous date")
    days = (ev.date - ev.previous).days
    return _judge(name, spec, metric, float(days), None, ">=", [],
                  f"{ev.previous.isoformat()} to {ev.date.isoformat()}", ev.previous_name)


def signoff(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """A sign-off file (TOML, YAML or JSON) with ``approved = true``."""
    from gpt2guard.release.plan import read_data

    path = resolve_file(ev.plan, spec.file, ev.stage)
    metric = "approved sign-off on file"
    if not path.is_file():
        return GateResult(name, spec.kind, metric, 0.0, None, 1.0, ">=", False, spec.required, [str(path)],
                          f"no sign-off file {path}", "the release board")
    try:
        data = read_data(path)
    except GuardError as exc:
        return GateResult(name, spec.kind, metric, 0.0, None, 1.0, ">=", False, spec.required, [str(path)], str(exc))
    ok = data.get("approved") is True
    who = data.get("by", "unknown")
    return GateResult(name, spec.kind, metric, 1.0 if ok else 0.0, None, 1.0, ">=", ok, spec.required, [str(path)],
                      f"{'approved' if ok else 'not approved'} by {who}" + (f" on {data['date']}" if "date" in data else ""))


def read_reports(path: Path) -> list[dict]:
    """Misuse reports, one JSON object per line (``date``, ``size``, ``severity``, ``summary``)."""
    from gpt2guard.paths import read_text_utf8

    reports = []
    text = read_text_utf8(path)
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            raise GuardError(f"{path}:{lineno}: not a JSON object") from None
        if not isinstance(r, dict) or r.get("severity") not in SEVERITIES:
            raise GuardError(f"{path}:{lineno}: a report needs a severity ({', '.join(SEVERITIES)})")
        if r.get("date") is not None:
            try:
                dt.date.fromisoformat(str(r["date"]))
            except ValueError:
                raise GuardError(f"{path}:{lineno}: date: expected YYYY-MM-DD, got {r['date']!r}") from None
        reports.append(r)
    return reports


def misuse_reports(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """Reports at or above ``min_severity`` against released sizes, dated up to this stage."""
    path = resolve_file(ev.plan, spec.file, ev.stage)
    metric = f"misuse reports of severity {spec.min_severity} or worse"
    if not path.is_file():
        return GateResult(name, spec.kind, metric, None, None, spec.threshold, "<=", False, spec.required,
                          [str(path)], f"no misuse-report file {path}")
    try:
        reports = read_reports(path)
    except GuardError as exc:
        return GateResult(name, spec.kind, metric, None, None, spec.threshold, "<=", False, spec.required,
                          [str(path)], str(exc))
    floor = SEVERITIES.index(spec.min_severity)

    def counts(r):
        date = r.get("date")
        when = dt.date.fromisoformat(str(date)) if date else None
        return (SEVERITIES.index(r["severity"]) >= floor and (when is None or when <= ev.date)
                and (r.get("size") is None or r.get("size") in ev.released))

    n = sum(counts(r) for r in reports)
    return _judge(name, spec, metric, float(n), None, "<=", [str(path)], f"{len(reports)} reports on file",
                  f"reports against {', '.join(ev.released) or 'no public size'} up to {ev.date.isoformat()}")


def _attacked_cells(spec: GateSpec, by_size: dict) -> tuple[list, list[str], list[str]]:
    """``(size, method, attack, cell)`` of the gate's sampling methods and of clean plus its
    attacks, with the attack keys it asks for and those the evidence lacks."""
    from gpt2guard.release.data import sampling_key
    from gpt2guard.release.plan import CLEAN

    wanted = None if spec.sampling is None else {sampling_key(m) for m in spec.sampling}
    keys = [CLEAN] + spec.attack_keys()
    cells, missing = [], []
    for size, by_method in (by_size or {}).items():
        for method, by_attack in by_method.items():
            if wanted is not None and method not in wanted:
                continue
            for key in keys:
                if key in by_attack:
                    cells.append((size, method, key, by_attack[key]))
                elif key not in missing:
                    missing.append(key)
    return cells, keys, missing


def _methods(spec: GateSpec) -> str:
    return ", ".join(sorted(spec.sampling)) if spec.sampling else "all sampling methods"


def _worst_attack(name: str, spec: GateSpec, ev: StageEvidence, by_size: dict | None, metric: str, reference: str,
                  evidence: list[str]) -> GateResult:
    cells, keys, missing = _attacked_cells(spec, by_size or {})
    if missing:
        return _judge(name, spec, metric, None, None, ">=", [], "not measured under " + ", ".join(missing), reference)
    if not cells:
        return _judge(name, spec, metric, None, None, ">=", [], "no attack evidence", reference)
    size, method, attack, worst = min(cells, key=lambda c: c[3]["tpr"])
    clean = next(c[3]["tpr"] for c in cells if c[:3] == (size, method, keys[0]))
    note = f"worst: {size} {method} under {attack}" + ("" if attack == keys[0] else f" (clean {clean:.4g})")
    return _judge(name, spec, metric, worst["tpr"], worst.get("tpr_ci"), ">=", evidence, note,
                  f"{reference}; worst attack: {attack}")


def robust_detectability(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """The publishable detector's worst TPR over clean and each declared attack applied to the
    stage's machine test texts, at the threshold calibrated on clean human text."""
    metric = (f"TPR at the calibrated FPR threshold after attacks (worst of clean, {', '.join(spec.attack_keys())}; "
              f"{_methods(spec)})")
    trained = ", ".join(ev.publishable or sorted(set(ev.released) | set(ev.stage.sizes)))
    reference = f"publishable detector trained on {trained}, threshold from clean human text"
    rob = ev.robustness or {}
    return _worst_attack(name, spec, ev, rob.get("by_size"), metric, reference,
                         [ev.files.get("robustness", "")] if ev.robustness else [])


def watermark_detectability(name: str, spec: GateSpec, ev: StageEvidence) -> GateResult:
    """The share of the stage's watermarked API texts detected at its z threshold, worst over
    clean and each declared attack; a stage without a watermark fails."""
    wm = ev.watermark
    z = f"z >= {wm['z_threshold']:g}" if wm else "the z threshold"
    metric = (f"watermarked API texts detected at {z} after attacks (worst of clean"
              + "".join(f", {k}" for k in spec.attack_keys()) + f"; {_methods(spec)})")
    if not wm:
        tier = ev.stage.tier
        return GateResult(name, spec.kind, metric, None, None, spec.threshold, ">=", False, spec.required, [],
                          f"stage {ev.stage.name!r} ({tier} tier) has no watermark: its texts carry none to detect",
                          "no watermark key")
    reference = (f"{wm['scheme']} watermark (gamma {wm['gamma']:g}, delta {wm['delta']:g}), "
                 f"key sha256 {str(wm['key_sha256'])[:12]}")
    return _worst_attack(name, spec, ev, wm.get("by_size"), metric, reference, [ev.files.get("watermark", "")])


GATES = {"detectability": detectability, "transfer": transfer, "quality_gain": quality_gain,
         "min_time": min_time, "signoff": signoff, "misuse_reports": misuse_reports,
         "robust_detectability": robust_detectability, "watermark_detectability": watermark_detectability}


def evaluate_gates(plan: Plan, ev: StageEvidence, gates: dict[str, GateSpec] | None = None) -> list[GateResult]:
    """Every gate the stage names, in order."""
    gates = plan.gates if gates is None else gates
    return [GATES[gates[g].kind](g, gates[g], ev) for g in ev.stage.gates]


def decide(results: list[GateResult]) -> tuple[str, str]:
    """``("release" | "hold", reason)``: hold when any required gate failed."""
    failed = [r for r in results if r.required and not r.passed]
    if failed:
        return "hold", "failed: " + ", ".join(f"{r.name} ({_show(r)})" for r in failed)
    return "release", "all required gates passed" if results else "no gates"


def _show(r: GateResult) -> str:
    if r.value is None:
        return r.note
    return f"{r.value:.4g}, needs {r.op} {r.threshold:g}" if r.threshold is not None else r.note
