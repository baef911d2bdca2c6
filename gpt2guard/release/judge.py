"""What every gate compares: the public state after a stage against the public state before it.

A stage is judged by one pure function, :func:`stage_evidence`, of the stage, the
:class:`PublicState` before it and a :class:`World` that answers measurement questions. The
same questions are asked in every scenario and at every stage:

* **publishable detector** (``detectability``): the detector the lab can publish with the
  stage, trained on its own samples of every size public *after* the stage; its worst TPR,
  at the calibrated FPR, over the stage's sizes.
* **third-party detectors** (``transfer``): the detectors already out there, one trained on
  the public sizes after each earlier release; the best of them on each of the stage's sizes,
  never below the plan's declared floor (chance, AUROC 0.5). The gate's value is how much
  AUROC third parties lack against the publishable detector, on the stage's worst size.
  When nothing is public before the stage, third parties hold no detector: the evidence says
  so and the gate is judged at the floor, not skipped.
* **quality step** (``quality_gain``): ``1 - ppl(most capable public after) / ppl(most
  capable public before)``, "most capable" by perplexity on the same held-out human text.
  The plan's pre-release reference (``[prerelease]``: a size or a declared perplexity) is
  public from the start and stays public, so several sizes at once are judged by the most
  capable of them against it, and a size after a held one against what is actually out.
* **waiting period** (``min_time``): days since the plan's previous step, released or held
  (the plan's ``start`` before the first), so holding a size never shortens or lengthens the
  next wait, and releasing everything at once waits zero days.

* **attacks** (``robust_detectability``, ``watermark_detectability``): the publishable
  detector on the stage's attacked test texts at its threshold from clean human text, and
  the stage's API watermark on its watermarked texts, each worst over clean and the declared
  attacks (:mod:`gpt2guard.release.robustness`); a stage without a watermark has none to
  detect, in every scenario.

These make every measured gate monotone in caution: with fewer sizes public before a stage
the quality step can only grow and third parties' detection can only fall (in a world
where a detector trained on more sizes is no worse on a size it has not seen), and a
shorter schedule can only shorten the wait. :func:`judge_plan` walks a plan through a world
without writing anything; :func:`~gpt2guard.release.simulate.simulate` does the same with
measured evidence and records every step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Protocol

from gpt2guard.release.plan import Plan, Stage, prerelease_size, stage_dates

NO_DETECTOR = "no size public before this stage: third parties hold no detector"


class World(Protocol):
    """The measurements a stage's gates ask for; :class:`~gpt2guard.release.evidence.MeasuredWorld`
    measures them and tests construct them.

    ``trained_on`` is a tuple of sizes: the machine text a detector was trained on (with human
    text). Perplexities are on one held-out human text shared by every question.
    """

    def detection(self, trained_on: tuple, size: str) -> dict:
        """``{sampling method: {"tpr", "tpr_ci", ...}}`` on ``size``'s test samples at the
        detector's calibrated threshold."""

    def auroc(self, trained_on: tuple, size: str) -> float:
        """AUROC of the detector on human test text against ``size``'s test samples."""

    def drop_ci(self, publishable: tuple, third_party: tuple | None, size: str, floor: float) -> list | None:
        """Interval of ``auroc(publishable) - max(floor, auroc(third_party))`` on ``size``."""

    def perplexity(self, size: str) -> float:
        """Perplexity of ``size`` on the held-out human text."""

    def gain_ci(self, after: str, before: str | None, before_ppl: float) -> list | None:
        """Interval of ``1 - ppl(after) / ppl(before)`` (``before_ppl`` when ``before`` is None)."""

    # asked only of stages with a robust_detectability gate or a watermark:
    def robustness(self, trained_on: tuple, size: str, attacks: list[str]) -> dict:
        """``{sampling method: {"clean" | attack: cell}}``: TPR of the detector on ``size``'s
        attacked test samples at its threshold from clean human text."""

    def watermark(self, plan: Plan, stage: Stage, attacks: list[str]) -> dict:
        """The stage's watermark and the detection of its watermarked API texts, clean and
        under each attack (see :class:`StageEvidence`)."""


@dataclass
class PublicState:
    """What is public before a stage: sizes, the detectors third parties hold (each a tuple of
    training sizes) and the date of the plan's previous step."""

    sizes: list[str] = field(default_factory=list)
    detectors: list[tuple] = field(default_factory=list)
    previous: dt.date | None = None
    previous_name: str = "the plan's start"

    @classmethod
    def start(cls, plan: Plan) -> "PublicState":
        return cls(previous=plan.start)

    def after(self, stage: Stage, date: dt.date, decision: str, order: list[str]) -> "PublicState":
        """The state after ``stage`` was decided on ``date`` (a skipped stage changes nothing)."""
        if decision == "skip":
            return self
        step = replace(self, previous=date, previous_name=f"stage {stage.name!r}")
        if decision != "release":
            return step
        sizes = self.sizes + [z for z in stage.sizes if z not in self.sizes]
        return replace(step, sizes=sizes, detectors=self.detectors + [publishable_set(sizes, [], order)])


def publishable_set(before: list[str], sizes: list[str], order: list[str]) -> tuple:
    """The training sizes of the detector published with a stage: every size public after it."""
    return tuple(sorted(set(before) | set(sizes), key=order.index))


def _names(sizes) -> str:
    return ", ".join(sizes)


def transfer_evidence(plan: Plan, stage: Stage, state: PublicState, world: World, order: list[str]) -> dict:
    """The third-party question on each of the stage's sizes; the gate looks at the worst."""
    floor = plan.prerelease.detector_auroc
    pub = publishable_set(state.sizes, stage.sizes, order)
    by_size = {}
    for z in stage.sizes:
        pub_au = float(world.auroc(pub, z))
        held = [(t, float(world.auroc(t, z))) for t in state.detectors]
        best_t, best = max(held, key=lambda x: x[1]) if held else (None, None)
        third = best if best is not None and best >= floor else floor
        if best_t is None:
            ref = f"chance (AUROC {floor:g}): not applicable, {NO_DETECTOR}"
        elif best < floor:
            ref = (f"the declared floor AUROC {floor:g} (third parties' best, trained on {_names(best_t)}, "
                   f"reaches {best:.3f})")
        else:
            ref = f"third parties' detector trained on {_names(best_t)}"
        by_size[z] = {"publishable_auroc": pub_au, "third_party_auroc": third, "third_party_trained_on":
                      None if best_t is None else list(best_t), "drop": pub_au - third, "reference": ref}
    worst = max(by_size, key=lambda z: by_size[z]["drop"])
    w = by_size[worst]
    best_t = None if w["third_party_trained_on"] is None else tuple(w["third_party_trained_on"])
    return {"question": "AUROC the publishable detector has and third parties' detectors lack, on this stage's sizes",
            "publishable_trained_on": list(pub), "third_party_detectors": [list(t) for t in state.detectors],
            "applicable": bool(state.detectors), "floor": floor, "size": worst, "drop": w["drop"],
            "drop_ci": world.drop_ci(pub, best_t, worst, floor), "reference": w["reference"],
            "released": list(state.sizes), "by_size": by_size}


def quality_evidence(plan: Plan, stage: Stage, state: PublicState, world: World) -> dict:
    """The quality step from the most capable public before to the most capable public after."""
    ref_size = prerelease_size(plan)
    before = [(z, float(world.perplexity(z))) for z in state.sizes]
    if ref_size is None:
        ref = (None, float(plan.prerelease.perplexity))
    else:
        ref = (ref_size, float(world.perplexity(ref_size)))
    vs, vs_ppl = min(before + [ref], key=lambda x: x[1])
    is_ref = vs not in state.sizes
    new, new_ppl = min(((z, float(world.perplexity(z))) for z in stage.sizes), key=lambda x: x[1])
    if new_ppl < vs_ppl:
        value, ci = 1.0 - new_ppl / vs_ppl, world.gain_ci(new, vs, vs_ppl)
    else:  # nothing in the stage beats what is public: the public state does not move
        value, ci = 0.0, [0.0, 0.0]
    label = vs if vs is not None else f"declared perplexity {vs_ppl:g}"
    return {"vs": label, "vs_ppl": vs_ppl, "reference": "pre-release reference" if is_ref else "public",
            "size": new, "ppl": new_ppl, "value": value, "ci": ci,
            "public_before": list(state.sizes), "prerelease": ref_size or label}


@dataclass
class StageEvidence:
    """Everything a stage's gates look at (built by :func:`stage_evidence` or by hand).

    ``released``: sizes public before the stage. ``previous``: the date of the plan's previous
    step (``previous_name`` says which). ``detection``: size -> sampling method -> cell of the
    publishable detector (trained on ``publishable``). ``transfer`` and ``quality_gain``: the
    dicts of :func:`transfer_evidence` and :func:`quality_evidence`. ``robustness``:
    ``{"attacks": [...], "by_size": size -> sampling method -> attack -> cell}`` of the
    publishable detector on attacked machine test texts (``clean`` included), or None when
    no gate of the stage asks. ``watermark``: the stage's watermark (``scheme``, ``gamma``,
    ``delta``, ``z_threshold``, ``key_sha256``, ``human``: false positives on human text,
    ``by_size`` as robustness, detection of its API texts), or None for a stage without one.
    ``files``: evidence kind -> path (relative to the scenario directory) the numbers were
    written to.
    """

    stage: Stage
    date: dt.date
    released: list[str]
    previous: dt.date | None = None
    previous_name: str = "the plan's start"
    publishable: list[str] = field(default_factory=list)
    detection: dict | None = None
    transfer: dict | None = None
    quality_gain: dict | None = None
    robustness: dict | None = None
    watermark: dict | None = None
    files: dict = field(default_factory=dict)
    plan: Plan | None = None


def stage_evidence(plan: Plan, stage: Stage, date: dt.date, state: PublicState, world: World,
                   order: list[str]) -> StageEvidence:
    """The evidence of one stage: a pure function of the stage, the public state before it and
    the world's measurements."""
    from gpt2guard.release.plan import CLEAN, plan_attacks

    pub = publishable_set(state.sizes, stage.sizes, order)
    attacks = plan_attacks(plan)
    robust = stage.watermark is not None or any(
        plan.gates[g].kind == "robust_detectability" for g in stage.gates if g in plan.gates)
    robustness = None
    if robust and attacks:
        robustness = {"attacks": [CLEAN] + attacks, "trained_on": list(pub),
                      "by_size": {z: world.robustness(pub, z, attacks) for z in stage.sizes}}
    return StageEvidence(stage=stage, date=date, released=list(state.sizes), previous=state.previous,
                         previous_name=state.previous_name, publishable=list(pub),
                         detection={z: world.detection(pub, z) for z in stage.sizes},
                         transfer=transfer_evidence(plan, stage, state, world, order),
                         quality_gain=quality_evidence(plan, stage, state, world), robustness=robustness,
                         watermark=None if stage.watermark is None else world.watermark(plan, stage, attacks),
                         plan=plan)


def judge_plan(plan: Plan, world: World, order: list[str] | None = None) -> list[dict]:
    """Walk a plan's stages through ``world`` as a simulation does, writing nothing.

    Returns one ``{"stage", "sizes", "date", "decision", "reason", "gates"}`` per stage
    (``gates``: the :class:`~gpt2guard.release.gates.GateResult` list).
    """
    from gpt2guard.release.gates import decide, evaluate_gates

    order = order or _family_order(plan)
    state, stopped, out = PublicState.start(plan), False, []
    for stage, date in zip(plan.stages, stage_dates(plan)):
        if stopped:
            out.append({"stage": stage.name, "sizes": stage.sizes, "date": date, "decision": "skip",
                        "reason": "not reached", "gates": []})
            continue
        results = evaluate_gates(plan, stage_evidence(plan, stage, date, state, world, order))
        decision, reason = decide(results)
        out.append({"stage": stage.name, "sizes": stage.sizes, "date": date, "decision": decision, "reason": reason,
                    "gates": results})
        state = state.after(stage, date, decision, order)
        stopped = decision == "hold" and plan.on_hold == "stop"
    return out


def _family_order(plan: Plan) -> list[str]:
    from gpt2guard.family import get_family

    return [s.name for s in get_family(plan.family).sizes]
