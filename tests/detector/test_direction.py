"""A zero-shot score's direction: the three decision rules, the choice policy, and a
constructed inverted case on the micro family, through the library and ``gpt2guard score``.

The inverted case: "machine" text that micro samples at temperature 3 is far *less*
predictable to micro than human prose, so ``logp`` (higher = machine, the method's premise)
points the wrong way on it, as a stronger scorer's does on GPT-2's text.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.detector.direction import (DirectionEvidence, calibrate_direction, choose_direction,
                                          direction_evidence, same_family, set_direction)
from gpt2guard.detector.labelled import Labelled
from gpt2guard.detector.verdict import decide
from gpt2guard.errors import GuardError

FPR = 0.1


def near(rate: float, target: float, n: int) -> bool:
    """Within three binomial standard errors of ``target``."""
    return abs(rate - target) <= 3 * math.sqrt(target * (1 - target) / n)


# --- the rules on constructed scores ---------------------------------------------------


def test_calibrate_direction_rules_hold_the_rate():
    s = np.random.default_rng(0).normal(size=2000)
    hi = calibrate_direction(s, FPR, "higher", n_boot=50)
    assert hi.direction == "higher" and 0.09 <= (s > hi.threshold).mean() <= FPR
    lo = calibrate_direction(s, FPR, "lower", n_boot=50)
    assert lo.direction == "lower" and 0.09 <= (s < lo.threshold).mean() <= FPR
    assert lo.threshold < 0 < hi.threshold and lo.ci_low <= lo.threshold <= lo.ci_high
    two = calibrate_direction(s, FPR, "two-sided", n_boot=50)
    up, down = (s > two.threshold).mean(), (s < two.threshold_low).mean()
    assert up <= FPR / 2 and down <= FPR / 2 and two.achieved_fpr == pytest.approx(up + down) and up + down > 0.09
    assert two.low_ci[0] <= two.threshold_low <= two.low_ci[1] and two.threshold > hi.threshold
    assert two.target_fpr == FPR and two.warning is None
    # a two-sided pair rests on half as many human scores beyond each threshold
    small = np.random.default_rng(1).normal(size=150)
    assert calibrate_direction(small, FPR, "higher", n_boot=0).warning is None
    assert "200" in calibrate_direction(small, FPR, "two-sided", n_boot=0).warning
    with pytest.raises(GuardError, match="unknown direction"):
        calibrate_direction(s, FPR, "sideways")


def test_decide_lower_and_two_sided():
    common = dict(n_tokens=50, n_windows=1, flags=(), min_tokens=16, method="logp", scorer="micro:small")
    v = decide(0, "a", -7.0, None, -6.0, direction="lower", **common)
    assert v.decision == "machine" and "lower is machine-like" in v.reason and v.direction == "lower"
    assert decide(0, "a", -5.0, None, -6.0, direction="lower", **common).decision == "human"
    two = dict(direction="two-sided", threshold_low=-6.0, **common)
    low = decide(0, "a", -7.0, None, -4.0, **two)
    assert low.decision == "machine" and "atypically low" in low.reason
    high = decide(0, "a", -3.0, None, -4.0, **two)
    assert high.decision == "machine" and "atypically high" in high.reason
    mid = decide(0, "a", -5.0, None, -4.0, **two)
    assert mid.decision == "human" and "within the human range" in mid.reason
    assert mid.to_dict()["direction"] == "two-sided" and mid.to_dict()["threshold_low"] == -6.0
    short = decide(0, "a", -9.0, None, -4.0, **{**two, "n_tokens": 3})
    assert short.decision == "abstain"  # an abstention is never a machine verdict, whatever the rule
    with pytest.raises(GuardError, match="lower threshold"):
        decide(0, "a", -5.0, None, -4.0, direction="two-sided", **common)


def test_direction_evidence_and_policy(micro_family):
    rng = np.random.default_rng(0)
    human, machine = rng.normal(size=200), rng.normal(-1.0, size=100)
    ev = direction_evidence(human, machine, n_boot=200, seed=3)
    assert ev.auroc < 0.5 and ev.ci_high < 0.5 and ev.direction == "lower"
    assert direction_evidence(human, machine, n_boot=200, seed=3) == ev  # seeded
    assert direction_evidence(human, -machine, n_boot=200).direction == "higher"
    with pytest.raises(GuardError, match="human and machine"):
        direction_evidence(human, [math.nan])

    flat = DirectionEvidence(0.52, 0.45, 0.6, 50, 50, 0.95)
    choice = choose_direction(scorer_family="micro", evidence=ev, method="logp")
    assert choice.direction == "lower" and choice.basis.startswith("learned") and "inverted" in choice.warning
    choice = choose_direction(scorer_family="micro", evidence=flat, method="logp", fpr=0.1)
    assert choice.direction == "two-sided" and "0.05 of human text in each tail" in choice.warning
    clear = DirectionEvidence(0.8, 0.7, 0.9, 9, 9, 0.95)
    assert choose_direction(scorer_family="micro", evidence=clear).warning is None
    # no labelled documents: two-sided, with a warning when the scorer is of another family
    own = choose_direction(scorer_family="micro", suspect="micro", method="logp")
    assert own.direction == "two-sided" and own.warning is None and "--direction higher" in own.note
    other = choose_direction(scorer_family="micro", method="logp")  # suspect: gpt2 by default
    assert other.direction == "two-sided" and "not the suspected generator (gpt2)" in other.warning
    assert "--labelled" in other.warning and "train a detector" in other.warning
    # what the user asks is used, with a warning where nothing backs it
    assert "assumed, not checked" in choose_direction("higher", scorer_family="micro").warning
    assert "contradicts" in choose_direction("higher", scorer_family="micro", evidence=ev).warning
    assert choose_direction("lower", scorer_family="micro", evidence=ev).warning is None
    assert choose_direction("two-sided", scorer_family="micro").warning is None
    with pytest.raises(GuardError, match="unknown direction"):
        choose_direction("up", scorer_family="micro")
    assert same_family("openai-community/gpt2-medium", "gpt2") and same_family("gpt2", "gpt2")
    assert not same_family("micro", "gpt2") and not same_family("micro", "gpt-4")


# --- the constructed inverted case on micro ------------------------------------------


@pytest.fixture(scope="module")
def hot(micro_family, tmp_path_factory):
    """Micro's samples at temperature 3: 60 labelled, 60 held out."""
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.generator.run import GenerationJob, run_generation

    out = tmp_path_factory.mktemp("hot")
    run_generation(GenerationJob(out=str(out), family="micro", sizes="small", sampling="temperature=3", n=120,
                                 length=60, seed=0, split="valid"), progress=False)
    texts = [r.text for r in open_set(out, "micro-small-t3", "valid")]
    return out, texts[:60], texts[60:]


@pytest.fixture(scope="module")
def human():
    """Builtin human documents (60 words): ``valid`` (labelled) and ``test`` (held out)."""
    from gpt2guard.datasets.builtin import builtin_corpus

    out = {"valid": [], "test": []}
    for doc in builtin_corpus():
        if doc.split in out:
            out[doc.split].append(" ".join(doc.text.split()[:60]))
    return out


def flagged(det, texts) -> tuple[float, int, list]:
    verdicts = [v for v in det.verdicts(texts) if v.decision != "abstain"]
    return float(np.mean([v.decision == "machine" for v in verdicts])), len(verdicts), verdicts


def detector():
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    return ZeroShotDetector("logp", "micro", "small")


def test_one_sided_default_misses_the_inverted_text(hot, human):
    det = detector()
    det.calibrate_scores(det.document_scores(human["valid"]), FPR, "higher", n_boot=50)
    assert det.direction == "higher"
    rate, n, _ = flagged(det, hot[2])
    assert n >= 50 and rate <= 0.05  # the method's premise calls nearly all of it human


def test_learned_direction_flips_and_catches(hot, human):
    det, lines = detector(), []
    labelled = Labelled(texts=human["valid"] + hot[1], labels=["human"] * len(human["valid"]) + ["machine"] * 60)
    cal = set_direction(det, fpr=FPR, seed=1, labelled=labelled, log=lines.append)
    assert det.direction == cal.direction == "lower" and cal.basis.startswith("learned: AUROC")
    assert any("inverted" in m for m in lines) and any("labelled human documents" in m for m in lines)
    rate, n, verdicts = flagged(det, hot[2])
    assert rate >= 0.9 and all("lower is machine-like" in v.reason for v in verdicts)
    fp, n_h, _ = flagged(det, human["test"])
    assert n_h > 200 and near(fp, FPR, n_h)


def test_two_sided_without_labels_flags_it_at_the_asked_rate(hot, human):
    det, lines = detector(), []
    cal = set_direction(det, fpr=FPR, seed=1, log=lines.append)  # scorer micro, suspect gpt2 by default
    assert det.direction == "two-sided" and cal.threshold_low < cal.threshold
    assert lines[0].startswith("warning: scorer micro is not the suspected generator (gpt2)")
    assert "builtin held-out human documents" in lines[1]
    rate, _, verdicts = flagged(det, hot[2])
    assert rate >= 0.9 and any("atypically low" in v.reason for v in verdicts)
    # held-out human text cut as the calibration's was (up to 300 words): the rate holds
    from gpt2guard.datasets.builtin import builtin_corpus

    fp, n_h, verdicts = flagged(det, [d.text for d in builtin_corpus(max_words=300) if d.split == "test"])
    assert n_h > 200 and near(fp, FPR, n_h)
    for side in ("atypically low", "atypically high"):  # each tail about half the rate
        share = float(np.mean([side in v.reason for v in verdicts]))
        assert near(share, FPR / 2, n_h), (side, share)


def test_the_suspected_family_is_no_evidence_of_direction(hot, human):
    """Micro's own untruncated samples score lower than human prose under micro: the
    method's premise fails inside the family too, so only a measurement or the user's word
    makes the test one-sided."""
    det = detector()
    ev = direction_evidence(det.document_scores(human["valid"]), det.document_scores(hot[1]), n_boot=100)
    assert ev.direction == "lower"
    det, lines = detector(), []
    cal = set_direction(det, fpr=FPR, suspect="micro", log=lines.append)
    assert det.direction == cal.direction == "two-sided" and not any(m.startswith("warning:") for m in lines)
    assert lines[0].startswith("two-sided test") and "--direction higher" in lines[0]
    det, lines = detector(), []
    cal = set_direction(det, fpr=FPR, suspect="micro", direction="higher", log=lines.append)
    assert det.direction == cal.direction == "higher" and cal.threshold_low is None and cal.basis == "given"
    assert not any(m.startswith("warning:") for m in lines)
    # a threshold the user sets keeps its meaning; a two-sided test cannot take one
    det = detector()
    assert set_direction(det, threshold=-5.0) is None and det.direction == "higher" and det.threshold == -5.0
    with pytest.raises(GuardError, match="two thresholds"):
        set_direction(detector(), threshold=-5.0, direction="two-sided")


# --- through the command line --------------------------------------------------------


@pytest.fixture(scope="module")
def sets(hot, human, tmp_path_factory):
    """A labelled ``valid`` split on disk (human ``builtin``, machine ``hot``) and a held-out file."""
    from gpt2guard.datasets.records import Record
    from gpt2guard.datasets.writer import SetWriter

    d = tmp_path_factory.mktemp("labelled")
    with SetWriter(d, "builtin", "valid") as w:
        for i, text in enumerate(human["valid"]):
            w.write(Record(id=f"h{i}", text=text, label="human"))
    with SetWriter(d, "hot", "valid") as w:
        for i, text in enumerate(hot[1]):
            w.write(Record(id=f"m{i}", text=text, label="machine"))
    held = d / "held-out.jsonl"
    held.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(hot[2][:20])),
                    encoding="utf-8")
    return d, held


def score(*args):
    return CliRunner().invoke(main, ["score", *map(str, args), "--family", "micro", "--method", "logp",
                                     "--fpr", str(FPR), "--no-progress"])


def test_cli_learns_the_direction_from_labelled_sets(sets):
    d, held = sets
    res = score(held, "--labelled", d, "--machine", "hot", "--format", "json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {r["direction"] for r in rows} == {"lower"}
    assert sum(r["decision"] == "machine" for r in rows) >= 18
    assert "inverted" in res.stderr and "labelled human documents" in res.stderr


def test_cli_warns_and_tests_both_ways_without_labels(sets):
    d, held = sets
    res = score(held)
    assert res.exit_code == 0, res.output
    assert "warning: scorer micro is not the suspected generator (gpt2)" in res.stderr
    lines = res.stdout.strip().splitlines()
    assert "atypical for human text either way" in lines[-1]
    assert sum(" machine " in ln for ln in lines[1:-1]) >= 18
    res = score(held, "--suspect", "micro")
    assert res.exit_code == 0 and "warning:" not in res.stderr and "two-sided test" in res.stderr
    res = score(held, "--suspect", "micro", "--direction", "higher")
    assert res.exit_code == 0 and "warning:" not in res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("method logp, scorer micro:small; machine when score >")


def test_cli_direction_errors_are_one_line(sets, tmp_path):
    d, held = sets
    for args, why in ((["--threshold", "-5", "--direction", "two-sided"], "two thresholds"),
                      (["--human", "builtin"], "--labelled"),
                      (["--threshold", "-5", "--labelled", str(d)], "--labelled"),
                      (["--labelled", str(d), "--machine", "nope"], "nope")):
        res = CliRunner().invoke(main, ["score", str(held), "--family", "micro", "--method", "logp", *args])
        assert res.exit_code == 2, (args, res.output)
        assert why in res.output and "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    det = tmp_path / "det"
    det.mkdir()
    res = CliRunner().invoke(main, ["score", str(held), "--detector", str(det), "--direction", "lower"])
    assert res.exit_code == 2 and "learned its direction" in res.output


def test_service_uses_the_same_direction(hot, human):
    """``serve``'s detector is built the same way: the learned direction, in every answer."""
    from gpt2guard.serve import load_service

    labelled = Labelled(texts=human["valid"] + hot[1], labels=["human"] * len(human["valid"]) + ["machine"] * 60)
    service = load_service(method="logp", family="micro", fpr=FPR, labelled=labelled)
    assert service.calibration["direction"] == "lower" and service.calibration["basis"].startswith("learned")
    rows = service.judge(hot[2][:5] + human["test"][:5], details=[True] + [False] * 9)
    assert {r["direction"] for r in rows} == {"lower"} and sum(r["decision"] == "machine" for r in rows[:5]) == 5
    for s in rows[0]["details"]["sentences"]:  # a sentence's pointer follows the same rule
        assert s["score"] is None or s["above_threshold"] == (s["score"] < rows[0]["threshold"])
