"""The gates ask the same question in every scenario: properties over constructed worlds.

A constructed world (:class:`ToyWorld`) answers the measurement questions a simulation would:
perplexity falls with size; a detector trained on a set of sizes detects a size it was trained
on at that size's own rate, and a size it was not trained on no better than that, and no better
when trained on fewer sizes. On such worlds, with arbitrary thresholds, a less cautious
scenario (everything at once, a held size skipped, a shorter wait) never passes a gate set
that the cautious one fails on the same sizes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from gpt2guard.release.gates import evaluate_gates
from gpt2guard.release.judge import NO_DETECTOR, PublicState, judge_plan, stage_evidence
from gpt2guard.release.plan import (
    GateSpec,
    Plan,
    Prerelease,
    Scenario,
    Stage,
    apply_scenario,
)

SIZES = ["small", "medium", "large", "xl"]  # the nano family's sizes, smallest first
START = dt.date(2019, 2, 14)
MEASURED = ("det", "transfer", "quality", "wait")


@dataclass
class ToyWorld:
    """``ppl[z]`` falls with size; ``tpr[z]``/``own_auroc[z]``: a detector trained on ``z`` (and
    maybe others); ``near[t][z]`` in [0, 1]: how much of ``z``'s AUROC above chance a detector
    trained on ``t`` keeps (a detector trained on a set keeps the best of its sizes)."""

    ppl: dict
    tpr: dict
    own_auroc: dict
    near: dict

    def detection(self, trained_on, size):
        assert size in trained_on, "the publishable detector is always trained on the stage's sizes"
        return {"top-k=40": {"tpr": self.tpr[size], "tpr_ci": None}}

    def auroc(self, trained_on, size):
        if size in trained_on:
            return self.own_auroc[size]
        return 0.5 + (self.own_auroc[size] - 0.5) * max(self.near[t][size] for t in trained_on)

    def drop_ci(self, publishable, third_party, size, floor):
        return None

    def perplexity(self, size):
        return self.ppl[size]

    def gain_ci(self, after, before, before_ppl):
        return None


@st.composite
def worlds(draw):
    ppl = sorted(draw(st.lists(st.floats(5, 500), min_size=4, max_size=4, unique=True)), reverse=True)
    unit = st.floats(0, 1)
    return ToyWorld(ppl=dict(zip(SIZES, ppl)), tpr={z: draw(unit) for z in SIZES},
                    own_auroc={z: draw(st.floats(0.5, 1)) for z in SIZES},
                    near={t: {z: draw(unit) for z in SIZES} for t in SIZES})


@st.composite
def gate_sets(draw):
    """Arbitrary thresholds for the four measured gates, some of them conservative or absent."""
    gates = {"det": GateSpec(kind="detectability", threshold=draw(st.floats(0, 1))),
             "transfer": GateSpec(kind="transfer", threshold=draw(st.floats(0, 1))),
             "quality": GateSpec(kind="quality_gain", threshold=draw(st.floats(0, 0.99))),
             "wait": GateSpec(kind="min_time", threshold=float(draw(st.integers(0, 200))))}
    used = draw(st.lists(st.sampled_from(MEASURED), min_size=1, max_size=4, unique=True))
    return {k: v for k, v in gates.items() if k in used}


def staged_plan(gates, gaps, on_hold="continue", prerelease=None) -> Plan:
    stages = [Stage(name=z, sizes=[z], after_days=gap, gates=list(gates)) for z, gap in zip(SIZES, gaps)]
    return Plan(name="toy", family="nano", stages=stages, gates=gates, start=START, on_hold=on_hold,
                prerelease=prerelease or Prerelease())


def held(rows) -> set[str]:
    return {z for r in rows if r["decision"] == "hold" for z in r["sizes"]}


gaps_st = st.lists(st.integers(0, 150), min_size=4, max_size=4)


@settings(max_examples=300, deadline=None)
@given(worlds(), gate_sets(), gaps_st, st.sampled_from(["stop", "continue"]))
def test_all_at_once_never_passes_what_staged_fails(world, gates, gaps, on_hold):
    plan = staged_plan(gates, gaps, on_hold)
    staged = judge_plan(plan, world, SIZES)
    together = judge_plan(apply_scenario(plan, Scenario(name="all", mode="all-at-once")), world, SIZES)
    assert len(together) == 1 and together[0]["sizes"] == SIZES
    if held(staged):
        assert together[0]["decision"] == "hold", (staged, together)
    # gate by gate: a gate the staged plan fails anywhere, releasing everything at once fails too
    failed = {g.name for r in staged for g in r["gates"] if not g.passed}
    assert failed <= {g.name for g in together[0]["gates"] if not g.passed}


@settings(max_examples=300, deadline=None)
@given(worlds(), gate_sets(), gaps_st, st.integers(0, 2))
def test_skipping_a_held_size_never_makes_the_next_one_pass(world, gates, gaps, which):
    """The same plan, except that one stage is held by an extra gate (a board that said no):
    every later stage it holds on the measured gates when the size was released, it holds
    when the size was skipped too."""
    plan = staged_plan(gates, gaps)
    blocked = replace(plan, gates={**gates, "no": GateSpec(kind="min_time", threshold=36525)},
                      stages=[replace(s, gates=s.gates + ["no"]) if i == which else s
                              for i, s in enumerate(plan.stages)])
    cautious, skipping = judge_plan(plan, world, SIZES), judge_plan(blocked, world, SIZES)
    assert skipping[which]["decision"] == "hold"
    for a, b in list(zip(cautious, skipping))[which + 1:]:
        if a["decision"] == "hold":
            assert b["decision"] == "hold", (a, b)
        failed = {g.name for g in a["gates"] if not g.passed}
        assert failed <= {g.name for g in b["gates"] if not g.passed}


@settings(max_examples=300, deadline=None)
@given(worlds(), gate_sets(), gaps_st, st.integers(0, 150))
def test_a_shorter_wait_never_passes_what_a_longer_one_fails(world, gates, gaps, shorter):
    plan = staged_plan(gates, gaps)
    shorter = min([shorter] + gaps[1:])
    rushed = apply_scenario(plan, Scenario(name="rushed", after_days=shorter))
    slow, fast = judge_plan(plan, world, SIZES), judge_plan(rushed, world, SIZES)
    for a, b in zip(slow, fast):
        if a["decision"] == "hold":
            assert b["decision"] == "hold", (a, b)


@settings(max_examples=200, deadline=None)
@given(worlds(), st.data())
def test_fewer_public_sizes_never_make_a_stage_look_safer(world, data):
    """The pure function itself: the same stage judged with a subset of the public sizes (and
    of third parties' detectors) has a quality step at least as large, a transfer drop at
    least as large and the same detectability."""
    size = data.draw(st.sampled_from(SIZES[1:]))
    smaller = [z for z in SIZES if SIZES.index(z) < SIZES.index(size)]
    public = data.draw(st.lists(st.sampled_from(smaller), unique=True, max_size=len(smaller)))
    fewer = data.draw(st.lists(st.sampled_from(public), unique=True, max_size=len(public))) if public else []
    order = lambda zs: sorted(zs, key=SIZES.index)  # noqa: E731
    more_state = PublicState(sizes=order(public), detectors=[tuple(order(public[:i + 1])) for i in range(len(public))],
                             previous=START)
    fewer_state = PublicState(sizes=order(fewer), detectors=[tuple(order(fewer[:i + 1])) for i in range(len(fewer))],
                              previous=START)
    stage = Stage(name=size, sizes=[size])
    plan = staged_plan({}, [0, 0, 0, 0])
    a = stage_evidence(plan, stage, START, more_state, world, SIZES)
    b = stage_evidence(plan, stage, START, fewer_state, world, SIZES)
    assert b.quality_gain["value"] >= a.quality_gain["value"] - 1e-12
    assert b.transfer["drop"] >= a.transfer["drop"] - 1e-12
    assert b.detection == a.detection
    if not fewer:
        assert not b.transfer["applicable"] and NO_DETECTOR in b.transfer["reference"]


def toy():
    return ToyWorld(ppl={"small": 60.0, "medium": 45.0, "large": 38.0, "xl": 33.0},
                    tpr={"small": 0.95, "medium": 0.8, "large": 0.7, "xl": 0.6},
                    own_auroc={"small": 0.99, "medium": 0.95, "large": 0.9, "xl": 0.88},
                    near={t: {z: 0.9 for z in SIZES} for t in SIZES})


def test_nothing_public_is_judged_against_the_declared_reference_not_passed():
    world = toy()
    gates = {"transfer": GateSpec(kind="transfer", threshold=0.1),
             "quality": GateSpec(kind="quality_gain", threshold=0.3),
             "wait": GateSpec(kind="min_time", threshold=60)}
    plan = staged_plan(gates, [0, 78, 109, 77])
    first = stage_evidence(plan, Stage(name="medium", sizes=["medium"], gates=list(gates)), START,
                           PublicState.start(plan), world, SIZES)
    results = {r.name: r for r in evaluate_gates(plan, first)}
    # medium with nothing public: third parties are at chance, the step is measured from small
    assert results["transfer"].value == 0.95 - 0.5 and not results["transfer"].passed
    assert "not applicable" in results["transfer"].reference and "chance" in results["transfer"].reference
    assert results["quality"].value == 1 - 45 / 60 and "small (pre-release reference)" == results["quality"].reference
    assert results["wait"].value == 0 and not results["wait"].passed and "start" in results["wait"].reference
    # a declared perplexity instead of a size
    declared = replace(plan, prerelease=Prerelease(perplexity=90.0))
    ev = stage_evidence(declared, Stage(name="small", sizes=["small"]), START, PublicState.start(plan), world, SIZES)
    assert ev.quality_gain["value"] == 1 - 60 / 90 and ev.quality_gain["vs"] == "declared perplexity 90"


def test_several_sizes_at_once_are_judged_by_the_most_capable_and_after_a_hold_by_what_is_out():
    world = toy()
    plan = staged_plan({}, [0, 0, 0, 0])
    state = PublicState.start(plan)
    ev = stage_evidence(plan, Stage(name="all", sizes=SIZES), START, state, world, SIZES)
    assert ev.quality_gain["size"] == "xl" and ev.quality_gain["value"] == 1 - 33 / 60
    assert ev.publishable == SIZES
    # small released, medium held: large is judged against small, and third parties hold small's detector
    state = state.after(Stage(name="small", sizes=["small"]), START, "release", SIZES)
    state = state.after(Stage(name="medium", sizes=["medium"]), START + dt.timedelta(days=78), "hold", SIZES)
    ev = stage_evidence(plan, Stage(name="large", sizes=["large"]), START + dt.timedelta(days=187), state, world,
                        SIZES)
    assert ev.quality_gain["vs"] == "small" and ev.quality_gain["reference"] == "public"
    assert ev.transfer["by_size"]["large"]["third_party_trained_on"] == ["small"]
    assert ev.publishable == ["small", "large"]
    assert ev.previous == START + dt.timedelta(days=78) and "medium" in ev.previous_name
