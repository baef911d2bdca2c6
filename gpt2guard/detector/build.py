"""One detector from the options a user gives: a saved directory, or a zero-shot method.

``gpt2guard score`` and ``gpt2guard serve`` build their detector here, so a service judges
exactly as the command line does: the same saved detector, or the same zero-shot method with
its threshold calibrated the same way on the builtin held-out human text.
"""

from __future__ import annotations

from typing import Callable


def build_detector(detector: str | None = None, method: str = "fast-detectgpt", family: str = "nano",
                   size: str | None = None, reference_size: str | None = None, *, threshold: float | None = None,
                   fpr: float = 0.05, min_tokens: int | None = None, seed: int = 0,
                   log: Callable[[str], None] = lambda m: None, scorer_kwargs: dict | None = None,
                   max_tokens: int | None = None, direction: str | None = "auto", suspect: str | None = None,
                   labelled=None):
    """A saved detector (``detector``, a directory) or a :class:`ZeroShotDetector` with its threshold set.

    Parameters
    ----------
    detector : path, optional
        A directory written by ``gpt2guard detector train``; ``method``, ``family``, ``size``
        and ``reference_size`` then do not apply (the detector names its scorers).
    method, family, size, reference_size : str
        The zero-shot method and its scorer (and reference) sizes.
    threshold : float, optional
        Machine when score > threshold; overrides a saved one. Without it a zero-shot method
        is calibrated for ``fpr`` on the builtin held-out human text (or ``labelled``'s human
        documents), with a bootstrap interval seeded by ``seed``.
    min_tokens : int, optional
        Abstain below this many tokens (default: the detector's).
    log : callable
        Receives one line per step a user should see (the calibrated threshold, warnings).
    scorer_kwargs : dict, optional
        Passed to every :class:`~gpt2guard.detector.scoring.Scorer` (``progress``, ``cache``...).
    max_tokens : int, optional
        Score at most this many tokens of each document (cut documents are flagged).
    direction, suspect, labelled
        A zero-shot method's decision rule: ``auto`` (learned from ``labelled`` documents,
        one-sided when the scorer is of the ``suspect`` family, else two-sided), ``higher``,
        ``lower`` or ``two-sided``; see :func:`~gpt2guard.detector.direction.set_direction`.

    Returns
    -------
    ZeroShotDetector, TrainedDetector or TfidfDetector
    """
    kwargs = dict(scorer_kwargs or {})
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if detector:
        from gpt2guard.detector.trained import load_detector

        if direction not in (None, "auto") or suspect is not None or labelled is not None:
            from gpt2guard.errors import GuardError

            raise GuardError("a saved detector learned its direction in training: --direction, --suspect and "
                             "--labelled are for zero-shot methods")
        det = load_detector(detector, scorer_kwargs=kwargs)
        if threshold is not None:
            det.threshold = threshold
    else:
        from gpt2guard.detector.direction import set_direction
        from gpt2guard.detector.zeroshot import ZeroShotDetector

        det = ZeroShotDetector(method, family, size, reference_size=reference_size, threshold=threshold,
                               scorer_kwargs=kwargs)
        if min_tokens is not None:
            det.min_tokens = min_tokens  # before calibration: the same documents abstain there
        set_direction(det, fpr=fpr, seed=seed, threshold=threshold, direction=direction, suspect=suspect,
                      labelled=labelled, log=log)
    if min_tokens is not None:
        det.min_tokens = min_tokens
    return det


def view_scorer(det, family: str = "nano", size: str | None = None, **scorer_kwargs):
    """The :class:`~gpt2guard.detector.scoring.Scorer` whose token statistics a per-token view
    shows: the detector's own (its first size for a trained detector), or for a TF-IDF
    detector, which has none, ``family``/``size``'s."""
    if det.kind == "zero-shot":
        return det.scorer
    if det.kind == "features":
        return det.scorer(det.size_list[0])
    from gpt2guard.detector.scoring import Scorer
    from gpt2guard.family import load_model

    return Scorer(load_model(family, size), **scorer_kwargs)
