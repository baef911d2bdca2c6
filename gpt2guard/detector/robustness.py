"""How well a detector resists model-free evasion, with and without input hygiene.

RAID's protocol (Dugan et al., 2024): the threshold is calibrated for a false-positive rate
(5% by default) on *clean* human text; then the machine texts are attacked and the true
positive rate at that threshold is measured. An attack must not make human text look
machine-written either, so the human texts are attacked too and the false-positive rate
at the same threshold is reported.

Each measurement is made twice: with the project's input hygiene (the detector as
deployed) and without it (:func:`~gpt2guard.detector.hygiene.hygiene_off`; the threshold
calibrated again on the clean human text scored the same way), so the table shows what
hygiene buys against each attack. A document the detector abstains on counts as not
flagged: an attack that makes a machine text unscorable has evaded the detector.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.errors import GuardError

MODES = ("on", "off")


def _oriented_scores(detector, texts: list[str]) -> np.ndarray:
    """Scores oriented so that higher is more machine-like; NaN where the detector abstains."""
    direction = getattr(detector, "direction", "higher")
    if direction not in ("higher", "lower"):
        raise GuardError(f"an attack table needs a one-sided detector; this one is {direction}")
    verdicts = detector.verdicts(texts)
    s = np.array([math.nan if v.decision == "abstain" or v.score is None else float(v.score) for v in verdicts],
                 dtype=np.float64)
    return -s if direction == "lower" else s


def _scores(detector, texts: list[str], hygiene: bool) -> np.ndarray:
    if hygiene:
        return _oriented_scores(detector, texts)
    from gpt2guard.detector.hygiene import hygiene_off

    with hygiene_off():
        return _oriented_scores(detector, texts)


def _rate(scores: np.ndarray, threshold: float) -> float:
    """Share of documents flagged machine (abstentions count as not flagged)."""
    if scores.size == 0:
        return math.nan
    return float(np.sum(np.nan_to_num(scores, nan=-np.inf) > threshold) / scores.size)


def _attacked(texts: list[str], spec, seed: int, side: str) -> tuple[list[str], int, int]:
    from gpt2guard.attacks import attack
    from gpt2guard.attacks.sets import record_seed

    out, changed, candidates = [], 0, 0
    for i, text in enumerate(texts):
        a = attack(text, spec.name, spec.rate, record_seed(seed, f"{side}:{i}"))
        out.append(a.text)
        changed += a.n_changed
        candidates += a.n_candidates
    return out, changed, candidates


def attack_table(detector, human_texts, machine_texts, specs, *, fpr: float = 0.05, seed: int = 0,
                 hygiene=MODES) -> dict:
    """TPR and FPR of a detector under each attack, at a threshold calibrated on clean human text.

    Parameters
    ----------
    detector
        Anything with ``verdicts(texts)`` returning verdicts with ``decision`` and ``score``
        (every detector :func:`~gpt2guard.detector.trained.load_detector` loads, and
        :class:`~gpt2guard.detector.zeroshot.ZeroShotDetector`); its own threshold is not used.
    human_texts, machine_texts : list of str
        Clean documents of each class.
    specs : str or list of AttackSpec
        ``"homoglyph=1.0,whitespace=0.2"`` or parsed specs.
    fpr : float
        The false-positive rate the threshold is calibrated for, in (0, 1).
    seed : int
        Seed of the attacks; document ``i`` of each side gets its own seed from it.
    hygiene : sequence of {"on", "off"}
        The measurements to make: with input hygiene, without, or both (the default).

    Returns
    -------
    dict
        ``fpr``, ``seed``, ``n_human``, ``n_machine``; ``clean``: per mode the threshold and
        the TPR and FPR on the clean texts; ``rows``: per spec its ``attack``, ``name``,
        ``rate``, the share of candidate places changed on each side, and per mode ``tpr``
        (attacked machine texts) and ``fpr`` (attacked human texts).
    """
    from gpt2guard.attacks.core import as_specs, check_seed
    from gpt2guard.detector.calibrate import fpr_threshold

    specs = as_specs(specs)
    seed = check_seed(seed)
    if not (isinstance(fpr, (int, float)) and 0.0 < fpr < 1.0):
        raise GuardError(f"the false-positive rate must be between 0 and 1 (exclusive), not {fpr}")
    modes = [m for m in MODES if m in set(hygiene)]
    if not modes or set(hygiene) - set(MODES):
        raise GuardError(f"hygiene must name 'on', 'off' or both, not {list(hygiene)!r}")
    human, machine = list(human_texts), list(machine_texts)
    if not human or not machine:
        raise GuardError("an attack table needs human and machine texts")
    result = {"fpr": float(fpr), "seed": seed, "n_human": len(human), "n_machine": len(machine), "clean": {},
              "rows": []}
    thresholds = {}
    for mode in modes:
        h = _scores(detector, human, mode == "on")
        m = _scores(detector, machine, mode == "on")
        t = fpr_threshold(h, fpr)
        thresholds[mode] = t
        result["clean"][mode] = {"threshold": t, "tpr": _rate(m, t), "fpr": _rate(h, t)}
    for spec in specs:
        h_text, h_changed, h_cand = _attacked(human, spec, seed, "human")
        m_text, m_changed, m_cand = _attacked(machine, spec, seed, "machine")
        row = {"attack": str(spec), "name": spec.name, "rate": spec.rate,
               "changed": {"human": h_changed / h_cand if h_cand else 0.0,
                           "machine": m_changed / m_cand if m_cand else 0.0}}
        for mode in modes:
            row[mode] = {"tpr": _rate(_scores(detector, m_text, mode == "on"), thresholds[mode]),
                         "fpr": _rate(_scores(detector, h_text, mode == "on"), thresholds[mode])}
        result["rows"].append(row)
    return result


def format_attack_table(table: dict) -> str:
    """The table as text: one line per attack, TPR and FPR with hygiene on and off."""
    modes = [m for m in MODES if m in table["clean"]]
    head = f"{'attack':<24}" + "".join(f"{'TPR ' + m:>9}" for m in modes) + "".join(f"{'FPR ' + m:>9}" for m in modes)

    def line(name, cells):
        return f"{name:<24}" + "".join(f"{cells[m]['tpr']:>9.3f}" for m in modes) + \
            "".join(f"{cells[m]['fpr']:>9.3f}" for m in modes)

    thresholds = ", ".join(f"hygiene {m} {table['clean'][m]['threshold']:.4g}" for m in modes)
    lines = [f"attacks (seed {table['seed']}): threshold at {table['fpr']:g} FPR on {table['n_human']} clean human "
             f"documents ({thresholds}); TPR on {table['n_machine']} attacked machine documents, FPR on the "
             "attacked human ones", head, line("clean", table["clean"])]
    lines += [line(row["attack"], row) for row in table["rows"]]
    return "\n".join(lines)
