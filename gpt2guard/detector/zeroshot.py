"""A zero-shot method as a detector with verdicts: one scorer size, one method, one threshold.

Without a given threshold, :meth:`ZeroShotDetector.calibrate_builtin` sets one for a target
false-positive rate on the builtin human corpus's held-out (``valid``) split, scored under
the same scorer (scores are cached, so this costs one pass per scorer).
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError


class ZeroShotDetector:
    """Score documents with a named zero-shot method under one family size.

    Parameters
    ----------
    method : str
        A name from :func:`~gpt2guard.detector.methods.list_methods`.
    family, size : str
        Scorer model.
    reference_size : str, optional
        Reference model of the same family (Binoculars, ``fast-detectgpt-ref``).
    threshold : float, optional
        Machine when score > threshold (below it with ``direction="lower"``); see
        :meth:`calibrate_builtin`.
    direction : {"higher", "lower", "two-sided"}
        Which scores are machine-like (:mod:`~gpt2guard.detector.direction`): above the
        threshold, below it, or outside ``threshold_low .. threshold``.
    min_tokens : int
        Shorter documents get an ``abstain`` verdict.
    scorer_kwargs : dict, optional
        Passed to :class:`~gpt2guard.detector.scoring.Scorer`; ``engine`` (an
        :class:`~gpt2guard.engine.Engine`) picks where it scores (:func:`~gpt2guard.engine.make_scorer`).
    """

    kind = "zero-shot"

    def __init__(self, method: str, family: str = "nano", size: str | None = None, *,
                 reference_size: str | None = None, threshold: float | None = None,
                 min_tokens: int = DEFAULT_MIN_TOKENS, scorer_kwargs: dict | None = None, device: str | None = None,
                 direction: str = "higher"):
        from gpt2guard.detector.methods import get_method

        self.method = get_method(method)
        self.family, self.size, self.reference_size = family, size, reference_size
        self.threshold, self.min_tokens = threshold, int(min_tokens)
        self.scorer_kwargs, self.device = dict(scorer_kwargs or {}), device
        self.calibration = None
        self.direction, self.threshold_low = direction, None
        self._scorer = None

    @property
    def scorer(self):
        """The :class:`~gpt2guard.detector.scoring.Scorer`, loaded on first use."""
        if self._scorer is None:
            from gpt2guard.engine import make_scorer
            from gpt2guard.family import load_model

            loaded = load_model(self.family, self.size, device=self.device)
            ref = load_model(self.family, self.reference_size, device=self.device) if self.reference_size else None
            if self.method.needs_reference and ref is None:
                raise GuardError(f"method {self.method.name} needs a reference model: give a reference size")
            self.size = loaded.size
            self._scorer = make_scorer(loaded, ref, **self.scorer_kwargs)
        return self._scorer

    def scores_from_stats(self, stats) -> np.ndarray:
        """Method score per record, :class:`~gpt2guard.detector.stats.TokenStats` or
        :class:`~gpt2guard.detector.stats.TokenSums` (NaN where unscorable)."""
        return np.array([self.method(s) if s.scorable else math.nan for s in stats], dtype=np.float64)

    def document_scores(self, texts) -> np.ndarray:
        """Method score per text, NaN where the verdict would abstain (unscorable or too short)."""
        stats = self.scorer.score(list(texts))
        scores = self.scores_from_stats(stats)
        scores[[s.n_tokens < self.min_tokens for s in stats]] = math.nan  # abstentions do not calibrate
        return scores

    def calibrate_scores(self, human_scores, fpr: float, direction: str | None = None, *, seed: int = 0,
                         n_boot: int = 200, basis: str | None = None):
        """Set the direction and threshold(s) for ``fpr`` from human scores
        (:func:`~gpt2guard.detector.direction.calibrate_direction`); returns the Calibration."""
        from gpt2guard.detector.direction import calibrate_direction

        self.calibration = calibrate_direction(human_scores, fpr, direction or self.direction, n_boot=n_boot,
                                               seed=seed, basis=basis)
        self.direction, self.threshold = self.calibration.direction, self.calibration.threshold
        self.threshold_low = self.calibration.threshold_low
        return self.calibration

    def calibrate_builtin(self, fpr: float, *, seed: int = 0, n_boot: int = 200, max_words: int = 300,
                          max_docs: int | None = None, direction: str | None = None):
        """Set :attr:`threshold` for ``fpr`` on the builtin corpus's ``valid`` split (its first
        ``max_docs`` documents if given) under ``direction`` (default :attr:`direction`); returns
        the :class:`~gpt2guard.detector.calibrate.Calibration` (its ``warning`` may be set).
        :func:`~gpt2guard.detector.direction.set_direction` chooses the direction first."""
        from gpt2guard.datasets.builtin import builtin_corpus

        docs = [d.text for d in builtin_corpus(max_words=max_words) if d.split == "valid"][:max_docs]
        return self.calibrate_scores(self.document_scores(docs), fpr, direction, seed=seed, n_boot=n_boot)

    def verdicts(self, texts, names=None, stats=None) -> list[Verdict]:
        """Machine / human / abstain per text: machine exactly when score > threshold
        (``probability`` is None: zero-shot scores are not probabilities).

        Without ``stats`` the texts are scored to per-document sums only
        (:meth:`~gpt2guard.detector.scoring.Scorer.score_sums`), in memory that does not grow
        with a document's length; ``stats`` may be records of either kind.
        """
        texts = list(texts)
        if self.threshold is None:
            raise GuardError("no threshold: give one or calibrate on human text first")
        stats = stats if stats is not None else self.scorer.score_sums(texts)
        scores = self.scores_from_stats(stats)
        scorer = f"{self.family}:{self.size}" + (f"+{self.reference_size}" if self.reference_size else "")
        return [decide(i, (names or [None] * len(texts))[i], float(sc), None, self.threshold, s.n_tokens, s.n_windows,
                       s.flags, self.min_tokens, method=self.method.name, scorer=scorer, repairs=s.repairs,
                       direction=self.direction, threshold_low=self.threshold_low)
                for i, (sc, s) in enumerate(zip(scores, stats))]
