"""Which way a zero-shot score points: learned, checked, or tested both ways, never assumed silently.

Every zero-shot method is written so that a higher score means "more machine-like". That is
the method's premise when the scorer is the model that wrote the text (or a size of its
family): a model finds its own samples more predictable than human prose. It need not hold
for another scorer. A stronger, newer model can find human prose *more* predictable than an
older model's samples; scored that way, GPT-2's text lands below human text, a one-sided
"machine when score > threshold" test calls it human, and the AUROC falls below 0.5.

Three decision rules, each calibrated on human scores for a false-positive rate ``f``:

``higher``
    machine when ``score > t``, ``t`` the conservative ``(1 - f)`` quantile of human scores
    (:func:`~gpt2guard.detector.calibrate.threshold_for_fpr`);
``lower``
    machine when ``score < t``, ``t`` the conservative ``f`` quantile (the same rule on the
    negated scores);
``two-sided``
    machine when ``score < t_low`` or ``score > t_high``, each tail calibrated for ``f / 2``:
    "atypical for human text in either direction". At most ``floor(f n / 2)`` human scores
    lie beyond each threshold, so the false-positive rate is at most ``f`` whichever way the
    score points; the price is some power when the direction was in fact known (the
    machine-side threshold sits at the ``1 - f/2`` instead of the ``1 - f`` quantile).

How the rule is chosen (``direction="auto"``, the default), as a careful statistician would:

1. **Labelled documents** (human and machine, e.g. the user's own generations): the AUROC of
   the raw score on them, with a seeded bootstrap interval, is the evidence. Interval
   entirely above 0.5: ``higher``; entirely below: ``lower`` (the score is inverted for this
   scorer and this text, and the verdicts say so). An interval that straddles 0.5 establishes
   no direction: ``two-sided``, with a warning. The threshold is calibrated on the labelled
   human documents, the user's own domain.
2. **No labelled documents**: nothing measured tells the direction, so the test is
   ``two-sided``. When the scorer is not of the suspected generator's family (``suspect``,
   default ``gpt2``) a warning names both families and what to do instead (labelled
   documents, or a trained detector on the same statistics, which learns the direction).
   When it is, a note says so without alarm: the method's premise (its own family scores
   the generator's text higher) usually holds for truncated sampling (top-k, nucleus), but
   it is a premise, not a measurement: micro medium's untruncated samples score *lower* than
   human prose under micro small (logp AUROC about 0.1, fast-detectgpt about 0.05). A user
   who knows the direction says so with ``direction="higher"``.

A direction the user gives (``higher``, ``lower``, ``two-sided``) is used as given; the
labelled documents, when there are some, are still measured and a warning says when they
point the other way, and an assumed one-sided direction with a scorer of another family than
the suspect's is warned about. A threshold the user gives keeps its meaning (machine when
score > threshold, or below it with ``lower``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from gpt2guard.errors import GuardError

DIRECTIONS = ("higher", "lower", "two-sided")
CHOICES = ("auto",) + DIRECTIONS
DEFAULT_SUSPECT = "gpt2"
HELP_LINE = ("for a one-sided test give labelled human and machine documents (--labelled), or train a detector "
             "on the same statistics, which learns the direction (docs/detector.md, 'Without the generator's "
             "weights')")


@dataclass
class DirectionEvidence:
    """The AUROC of a raw score (higher = machine) on labelled documents.

    Attributes
    ----------
    auroc, ci_low, ci_high : float
        The AUROC and its seeded bootstrap percentile interval (human and machine documents
        resampled separately).
    n_human, n_machine : int
        Scored, non-abstaining documents of each label.
    confidence : float
    """

    auroc: float
    ci_low: float
    ci_high: float
    n_human: int
    n_machine: int
    confidence: float

    @property
    def direction(self) -> str | None:
        """``higher`` or ``lower`` when the interval excludes 0.5, else None."""
        if self.ci_low > 0.5:
            return "higher"
        if self.ci_high < 0.5:
            return "lower"
        return None

    def describe(self) -> str:
        return (f"AUROC {self.auroc:.3f} ({self.confidence:.0%} CI {self.ci_low:.3f}..{self.ci_high:.3f}) on "
                f"{self.n_human} human and {self.n_machine} machine labelled documents")

    def to_dict(self) -> dict:
        return asdict(self)


def direction_evidence(human_scores, machine_scores, *, n_boot: int = 1000, seed: int = 0,
                       confidence: float = 0.95) -> DirectionEvidence:
    """AUROC of ``machine_scores`` against ``human_scores`` (NaN dropped) with a bootstrap interval.

    Raises GuardError when either label has no scored document.
    """
    from gpt2guard.detector.evaluate import _bootstrap, auroc

    h = np.asarray(human_scores, dtype=np.float64)
    m = np.asarray(machine_scores, dtype=np.float64)
    h, m = h[~np.isnan(h)], m[~np.isnan(m)]
    if not h.size or not m.size:
        raise GuardError("learning a direction needs scored human and machine labelled documents "
                         f"(got {h.size} human, {m.size} machine)")
    y = np.concatenate([np.zeros(h.size, np.int64), np.ones(m.size, np.int64)])
    s = np.concatenate([h, m])
    a = auroc(y, s)
    ci = _bootstrap(y, s, auroc, n_boot, seed, confidence) if n_boot > 0 else None
    lo, hi = ci if ci else (a, a)
    return DirectionEvidence(float(a), float(lo), float(hi), int(h.size), int(m.size), float(confidence))


@dataclass
class DirectionChoice:
    """The rule chosen, why, a warning a user must see and a note worth showing (None when none)."""

    direction: str
    basis: str
    warning: str | None = None
    evidence: DirectionEvidence | None = None
    note: str | None = None


def _family_keys(name: str) -> set[str]:
    """What identifies a family's models: its name, hub ids, local directories."""
    from gpt2guard.family import get_family

    spec = get_family(name)
    keys = {f"name:{spec.name}"} | {f"hub:{s.hub_id}" for s in spec.sizes if s.hub_id}
    keys |= {f"path:{p}" for _, p in spec.paths}
    if spec.kind == "single" and spec.sizes[0].hub_id is None and spec.source:
        keys.add(f"path:{spec.source}")
    return keys


def same_family(scorer_family: str, suspect: str) -> bool:
    """Whether the scorer's family is the suspected generator's: the same name, or a shared
    Hugging Face id or local directory (``openai-community/gpt2`` is of ``gpt2``). A suspect
    that names no known family (``gpt-4``) is another family."""
    if scorer_family == suspect:
        return True
    try:
        return bool(_family_keys(scorer_family) & _family_keys(suspect))
    except GuardError:
        return False


def choose_direction(asked: str = "auto", *, scorer_family: str, suspect: str | None = None,
                     evidence: DirectionEvidence | None = None, method: str = "the method's",
                     fpr: float | None = None) -> DirectionChoice:
    """The decision rule of a zero-shot detector (see the module docstring for the policy).

    Parameters
    ----------
    asked : {"auto", "higher", "lower", "two-sided"}
    scorer_family : str
        The family of the scoring model.
    suspect : str, optional
        The family suspected of writing the text (default ``gpt2``); any label is accepted.
    evidence : DirectionEvidence, optional
        The score's AUROC on labelled documents.
    method : str
        Named in the messages.
    fpr : float, optional
        Named in the two-sided warning (its share per tail).
    """
    if asked not in CHOICES:
        raise GuardError(f"unknown direction {asked!r}: use one of {', '.join(CHOICES)}")
    suspect = suspect or DEFAULT_SUSPECT
    same = same_family(scorer_family, suspect)
    tails = f" ({fpr / 2:g} of human text in each tail)" if fpr else ""
    if asked != "auto":
        basis, warning = "given", None
        if evidence is not None and evidence.direction and asked != "two-sided" and evidence.direction != asked:
            warning = (f"--direction {asked} contradicts the labelled documents: {method} is "
                       f"{evidence.direction}-is-machine there, {evidence.describe()}")
        elif evidence is None and asked != "two-sided" and not same:
            warning = (f"direction {asked} is assumed, not checked: scorer {scorer_family} is not of {suspect}, the "
                       f"suspected generator's family, and {method} can point either way on another model's text; "
                       + HELP_LINE)
        return DirectionChoice(asked, basis, warning, evidence)
    if evidence is not None:
        if evidence.direction == "higher":
            return DirectionChoice("higher", "learned: " + evidence.describe(), None, evidence)
        if evidence.direction == "lower":
            return DirectionChoice("lower", "learned: " + evidence.describe(), (
                f"{method} is inverted for scorer {scorer_family} on the labelled documents ({evidence.describe()}): "
                "lower scores are machine-like, and the verdicts use that direction"), evidence)
        return DirectionChoice("two-sided", "no direction established: " + evidence.describe(), (
            f"the labelled documents do not establish which way {method} points ({evidence.describe()}, the "
            f"interval holds 0.5): the test is two-sided{tails}; more labelled documents can settle it"), evidence)
    if same:
        return DirectionChoice("two-sided", f"no labelled documents; scorer {scorer_family} is of the suspected "
                               f"family {suspect}", note=(
            f"two-sided test{tails}: no labelled documents show which way {method} points; scorer {scorer_family} "
            f"is of the suspected family, whose truncated (top-k, nucleus) samples usually score higher, but "
            "untruncated samples can score lower; --direction higher makes the test one-sided if you know"))
    return DirectionChoice("two-sided", f"no labelled documents; scorer {scorer_family} is not of the suspected "
                           f"family {suspect}", (
        f"scorer {scorer_family} is not the suspected generator ({suspect}): {method} may be higher or lower on "
        f"{suspect}'s text than on human text (a different, stronger model can find human prose more predictable), "
        f"so the test is two-sided: machine = atypical for human text in either direction{tails}; " + HELP_LINE))


def calibrate_direction(human_scores, fpr: float, direction: str = "higher", *, n_boot: int = 1000,
                        seed: int = 0, confidence: float = 0.95, basis: str | None = None):
    """Threshold(s) for ``fpr`` on human scores under ``direction`` (module docstring).

    Returns
    -------
    Calibration
        ``threshold`` is the upper threshold (``higher``, ``two-sided``) or the one below
        which scores are machine-like (``lower``); ``threshold_low`` and ``low_ci`` are set
        for ``two-sided``; ``achieved_fpr`` is the rate on ``human_scores`` under the rule.
    """
    from gpt2guard.detector.calibrate import _clean, threshold_for_fpr

    if direction not in DIRECTIONS:
        raise GuardError(f"unknown direction {direction!r}: use one of {', '.join(DIRECTIONS)}")
    s = _clean(human_scores, fpr)
    kw = dict(n_boot=n_boot, seed=seed, confidence=confidence)
    if direction == "higher":
        cal = threshold_for_fpr(s, fpr, **kw)
    elif direction == "lower":
        cal = threshold_for_fpr(-s, fpr, **kw)
        cal.threshold, cal.ci_low, cal.ci_high = -cal.threshold, -cal.ci_high, -cal.ci_low
    else:
        cal = threshold_for_fpr(s, fpr / 2, **kw)
        low = threshold_for_fpr(-s, fpr / 2, **kw)
        cal.target_fpr = float(fpr)
        cal.threshold_low, cal.low_ci = -low.threshold, [-low.ci_high, -low.ci_low]
        cal.achieved_fpr = float(((s > cal.threshold) | (s < cal.threshold_low)).mean())
        needed = int(math.ceil(10 / (fpr / 2)))
        cal.warning = None if s.size >= needed else (
            f"only {s.size} human documents: a two-sided threshold pair for a {fpr:g} false-positive rate needs at "
            f"least {needed} (about 10 beyond each threshold); the rate is not reliable")
    cal.direction, cal.basis = direction, basis
    return cal


def machine_side(score: float, direction: str, threshold: float, threshold_low: float | None = None) -> bool:
    """Whether ``score`` lies where ``direction``'s rule calls machine (no abstention logic)."""
    if direction == "lower":
        return score < threshold
    if direction == "two-sided":
        return score > threshold or (threshold_low is not None and score < threshold_low)
    return score > threshold


def rule_line(direction: str, threshold: float, threshold_low: float | None = None, fmt=lambda v: f"{v:.4g}") -> str:
    """``machine when score > 1.2`` / ``< -0.4`` / ``outside -0.4..1.2`` for a report line."""
    if direction == "lower":
        return f"machine when score < {fmt(threshold)} (lower is machine-like)"
    if direction == "two-sided":
        return f"machine when score < {fmt(threshold_low)} or > {fmt(threshold)} (atypical for human text either way)"
    return f"machine when score > {fmt(threshold)}"


def describe_calibration(cal, source: str) -> str:
    """One log line: the threshold(s), the rate, the human documents, the interval(s)."""
    ci = f"95% CI {cal.ci_low:.4g}..{cal.ci_high:.4g}"
    if cal.direction == "two-sided":
        ci = f"95% CIs {cal.low_ci[0]:.4g}..{cal.low_ci[1]:.4g} and {cal.ci_low:.4g}..{cal.ci_high:.4g}"
        head = f"thresholds {cal.threshold_low:.4g} and {cal.threshold:.4g}"
    else:
        head = f"threshold {cal.threshold:.4g}"
    return (f"{head} for {cal.target_fpr:g} false positives on {cal.n_human} {source} human documents ({ci}): "
            f"{rule_line(cal.direction, cal.threshold, cal.threshold_low)}")


def set_direction(det, *, fpr: float = 0.05, seed: int = 0, threshold: float | None = None,
                  direction: str | None = "auto", suspect: str | None = None, labelled=None,
                  log: Callable[[str], None] = lambda m: None, n_boot: int = 200):
    """Give a :class:`~gpt2guard.detector.zeroshot.ZeroShotDetector` its decision rule and threshold(s).

    Parameters
    ----------
    det : ZeroShotDetector
    fpr : float
        Target false-positive rate of a calibrated threshold.
    seed : int
        Seeds the bootstrap intervals.
    threshold : float, optional
        A threshold the user set: kept, with ``direction`` ``higher`` (default) or ``lower``;
        ``two-sided`` and ``labelled`` then do not apply.
    direction : {"auto", "higher", "lower", "two-sided"}
    suspect : str, optional
        The family suspected of writing the text (default ``gpt2``).
    labelled : Labelled, optional
        Human and machine documents (:func:`~gpt2guard.detector.labelled.load_labelled`): the
        direction is learned on them and the threshold calibrated on their human documents.
        Without them the threshold is calibrated on the builtin held-out human text.
    log : callable
        Receives the calibration line and warnings.

    Returns
    -------
    Calibration or None
        None when ``threshold`` was given.
    """
    direction = direction or "auto"
    if threshold is not None:
        if direction == "two-sided":
            raise GuardError("a two-sided test has two thresholds, calibrated for --fpr: drop --threshold, or give "
                             "--direction higher or lower with it")
        if labelled is not None:
            raise GuardError("labelled documents calibrate the threshold: give them or a threshold, not both")
        det.threshold, det.threshold_low = float(threshold), None
        det.direction = "higher" if direction == "auto" else direction
        if suspect is not None:
            choice = choose_direction(det.direction, scorer_family=det.family, suspect=suspect,
                                      method=det.method.name)
            if choice.warning:
                log("warning: " + choice.warning)
        return None
    evidence = human = None
    if labelled is not None:
        y = np.asarray(labelled.y)
        scores = det.document_scores(labelled.texts)
        evidence = direction_evidence(scores[y == 0], scores[y == 1], n_boot=n_boot, seed=seed)
        human = scores[y == 0]
    choice = choose_direction(direction, scorer_family=det.family, suspect=suspect, evidence=evidence,
                              method=det.method.name, fpr=fpr)
    if choice.warning:
        log("warning: " + choice.warning)
    if choice.note:
        log(choice.note)
    if human is not None:
        cal = det.calibrate_scores(human, fpr, choice.direction, seed=seed, n_boot=n_boot, basis=choice.basis)
        source = "labelled"
    else:
        cal = det.calibrate_builtin(fpr, seed=seed, n_boot=n_boot, direction=choice.direction)
        cal.basis = choice.basis
        source = "builtin held-out"
    log(describe_calibration(cal, source))
    if cal.warning:
        log("warning: " + cal.warning)
    return cal
