"""Every detector side by side on one labelled train/test split: the zero-shot methods of the
registry, the TF-IDF baseline, the trained feature detector and the fine-tuned classifier.

:func:`compare_detectors` scores every document once per scorer size (each with its
reference size, so one pass gives the plain and the cross statistics), computes every
zero-shot method of :mod:`~gpt2guard.detector.methods` from the ``scorer`` size's statistics
(higher = machine, as the registry defines; no training), fits
:class:`~gpt2guard.detector.tfidf.TfidfDetector`, a
:class:`~gpt2guard.detector.trained.TrainedDetector` and a
:class:`~gpt2guard.detector.finetune.FinetunedDetector` on the training documents, and returns
AUROC and TPR at fixed false-positive rates, with bootstrap intervals, for each column
(:func:`~gpt2guard.detector.evaluate.metrics`).

Reference models. Binoculars and ``fast-detectgpt-ref`` need a second model of the family.
:func:`reference_size` takes the *neighbouring* size: the next larger one, or the next
smaller one for the largest size. Both methods assume two closely related models that
predict alike (Binoculars pairs a base model with its instruction-tuned twin,
Fast-DetectGPT a sampling model with a similar scoring model); adjacent sizes of one family,
trained on the same text with the same tokenizer, are the closest pair a family offers.

:func:`length_matched` builds the labelled documents: human and machine texts of equal
token-length distributions, by rank-paired truncation
(:func:`~gpt2guard.datasets.lengths.plan_truncate`), so no column can win by measuring length.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.errors import GuardError

TFIDF, TRAINED, FINETUNE = "tfidf", "trained", "finetune"


def reference_size(family: str, size: str) -> str:
    """The reference size paired with ``size``: the next larger size of ``family``, or the
    next smaller one for the largest size (see the module docstring).

    Raises
    ------
    GuardError
        When the family has a single size (no reference exists).
    """
    from gpt2guard.family import get_family

    names = get_family(family).size_names
    if len(names) < 2:
        raise GuardError(f"family {family!r} has one size: reference methods need a second one")
    i = names.index(get_family(family).size(size).name)
    return names[i + 1] if i + 1 < len(names) else names[i - 1]


def columns() -> list[str]:
    """Column names of a comparison, in order: every registered method, ``tfidf``, ``trained``,
    ``finetune``."""
    from gpt2guard.detector.methods import list_methods

    return list_methods() + [TFIDF, TRAINED, FINETUNE]


def length_matched(human, machine, tokenizer, *, seed: int = 0, min_tokens: int = 16,
                   n: int | None = None) -> tuple[list[str], list[str]]:
    """Labelled documents whose human and machine token-length distributions coincide.

    Documents with fewer than ``min_tokens`` tokens are dropped first (they would be
    abstentions); then the two kinds are paired rank by rank after sorting by length (the
    more numerous kind subsampled, seeded) and the longer of each pair is cut at a token
    boundary to the shorter's length (:func:`~gpt2guard.datasets.lengths.plan_truncate`).

    Parameters
    ----------
    human, machine : sequence of str
        Texts of each kind.
    tokenizer
        The family tokenizer lengths are counted with.
    seed : int
        Seeds the subsampling.
    min_tokens : int
        Shortest document kept.
    n : int, optional
        At most this many documents of each kind (a seeded subsample before pairing).

    Returns
    -------
    (list of str, list of str)
        Texts and their labels (``"human"``/``"machine"``): the human documents first.
    """
    from gpt2guard.datasets.lengths import plan_truncate
    from gpt2guard.datasets.tokens import count_tokens, cut_at_tokens

    rng = np.random.default_rng(seed)
    sides = []
    for texts in (list(human), list(machine)):
        lengths = count_tokens(texts, tokenizer)
        keep = [i for i, k in enumerate(lengths) if k >= min_tokens]
        if n is not None and len(keep) > n:
            keep = sorted(rng.choice(keep, size=n, replace=False).tolist())
        sides.append(({i: lengths[i] for i in keep}, texts))
    if not sides[0][0] or not sides[1][0]:
        raise GuardError(f"length matching needs human and machine documents of at least {min_tokens} tokens")
    plans = plan_truncate(sides[0][0], sides[1][0], seed=seed)
    out, labels = [], []
    for (_, texts), targets, label in zip(sides, plans, ("human", "machine")):
        ids = list(targets)
        heads = cut_at_tokens([texts[i] for i in ids], [targets[i] for i in ids], tokenizer)
        out += [head for head, _ in heads]
        labels += [label] * len(ids)
    return out, labels


def compare_detectors(train, test, family: str = "nano", scorer: str = "small", *, reference: str | None = None,
                      sizes=None, estimator=None, tfidf=None, fprs=(0.01,), n_boot: int = 200, seed: int = 0,
                      scorer_kwargs: dict | None = None, device: str | None = None, scorers: dict | None = None,
                      lexical: bool = True, finetune=None) -> dict:
    """AUROC and TPR at fixed FPR of every zero-shot method, TF-IDF, the trained detector and
    the fine-tuned classifier.

    Parameters
    ----------
    train, test : (sequence of str, sequence of labels)
        Texts and labels (``"human"``/``"machine"`` or 0/1) for fitting the trained columns
        and for measuring every column. Zero-shot methods ignore ``train``.
    family : str
        Scorer family.
    scorer : str
        Size whose statistics the zero-shot methods use.
    reference : str, optional
        Reference size for the reference methods; default :func:`reference_size`.
    sizes : sequence of str, optional
        Scorer sizes of the trained detector's features, each with its
        :func:`reference_size` as reference (``scorer`` with ``reference``; ``scorer`` is
        added when missing). Default every size of the family. Either way the trained
        detector sees every statistic each zero-shot column uses (every method score is one
        of its features), plus the other sizes' and the cross-size features.
    estimator : FeatureDetector, optional
        The trained detector's estimator; default ``FeatureDetector("logistic", cv=5)``
        (regularisation chosen by cross-validation on the training documents).
    tfidf : TfidfDetector, optional
        The baseline; default ``TfidfDetector()``.
    lexical : bool
        Give the trained detector the TF-IDF log-odds as one more feature (cross-fitted; see
        :class:`~gpt2guard.detector.trained.TrainedDetector`).
    finetune : FinetunedDetector, optional
        The fine-tuned column (unfitted; it is fitted here on ``train``, with a seeded 10%
        hold-out of it for early stopping). Default
        ``FinetunedDetector("<family>:<smallest size>", random_state=seed)``.
    fprs : tuple of float
        False-positive rates for the TPR columns.
    n_boot, seed : int
        Bootstrap resamples and seed of the intervals (and the estimator's seed).
    scorer_kwargs : dict, optional
        Passed to :class:`~gpt2guard.detector.scoring.Scorer` (``cache``, ``batch_tokens``...).
    device : str, optional
        Device the scorers load on.
    scorers : dict, optional
        ``{size: Scorer}`` already loaded (each with the reference described above); filled
        in with any that are missing, so a caller comparing several conditions loads each
        model once.

    Returns
    -------
    dict
        ``columns`` (in order), ``metrics`` (column -> :func:`~gpt2guard.detector.evaluate.metrics`
        result), ``family``, ``scorer``, ``reference``, ``sizes``, ``references``, ``n_train``,
        ``n_test``, for the trained column ``estimator`` (its parameters and the chosen ``C``)
        and for the fine-tuned one ``finetune`` (base, parameters, loss history, training
        seconds and seconds per 1,000 training documents).
    """
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.evaluate import metrics
    from gpt2guard.detector.methods import get_method, list_methods
    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import TrainedDetector, label_array
    from gpt2guard.family import get_family

    train_texts, train_y = list(train[0]), label_array(train[1])
    test_texts, test_y = list(test[0]), label_array(test[1])
    if len(set(train_y.tolist())) < 2 or len(set(test_y.tolist())) < 2:
        raise GuardError("the train and the test documents each need human and machine documents")
    spec = get_family(family)
    scorer = spec.size(scorer).name
    reference = spec.size(reference).name if reference else reference_size(family, scorer)
    sizes = [s.name for s in spec.select(sizes)] if sizes is not None else spec.size_names
    if scorer not in sizes:
        sizes = [scorer] + sizes
    references = {s: (reference if s == scorer else reference_size(family, s)) for s in sizes}
    scorers = scorers if scorers is not None else {}
    _load_scorers(scorers, family, references, scorer_kwargs or {}, device)

    texts = train_texts + test_texts
    stats = {s: scorers[s].score(texts) for s in sizes}  # one pass per scorer: cached on later calls
    train_stats = {s: v[: len(train_texts)] for s, v in stats.items()}
    test_stats = {s: v[len(train_texts):] for s, v in stats.items()}

    scores = {}
    for name in list_methods():
        method = get_method(name)
        scores[name] = np.array([method(st) if st.scorable else math.nan for st in test_stats[scorer]])
    base = tfidf if tfidf is not None else TfidfDetector()
    base.fit(train_texts, train_y)
    scores[TFIDF] = base.decision_texts(test_texts)
    est = estimator if estimator is not None else FeatureDetector("logistic", cv=5, random_state=seed)
    det = TrainedDetector(est, family, sizes, references=references, lexical=lexical)
    det.fit(train_texts, train_y, stats_by_size=train_stats)
    scores[TRAINED] = det.logit_from_stats(test_stats, test_texts)
    if finetune is None:
        from gpt2guard.detector.finetune import FinetunedDetector

        finetune = FinetunedDetector(f"{family}:{spec.size_names[0]}", random_state=seed, device=device)
    finetune.fit(train_texts, train_y)
    scores[FINETUNE] = finetune.decision_texts(test_texts)

    cols = columns()
    return {"columns": cols,
            "metrics": {c: metrics(test_y, scores[c], n_boot=n_boot, seed=seed, fprs=fprs) for c in cols},
            "family": family, "scorer": scorer, "reference": reference, "sizes": sizes, "references": references,
            "n_train": len(train_texts), "n_test": len(test_texts),
            "estimator": {**est.get_params(), "C_": getattr(det.estimator_, "C_", None)},
            "finetune": {"base": finetune.base_info_["name"], "params": finetune.get_params(),
                         "history": finetune.history_,
                         "seconds_per_1000_docs": finetune.meta["seconds_per_1000_docs"]}}


def _load_scorers(scorers: dict, family: str, references: dict, scorer_kwargs: dict, device) -> None:
    """Fill ``scorers`` with a Scorer per size (with its reference) not already there."""
    from gpt2guard.detector.scoring import Scorer
    from gpt2guard.family import load_model

    models = {}

    def model(size):
        if size not in models:
            models[size] = load_model(family, size, device=device)
        return models[size]

    for size, ref in references.items():
        have = scorers.get(size)
        if have is not None and have.reference is not None and have.reference.size == ref:
            continue
        scorers[size] = Scorer(model(size), model(ref), **scorer_kwargs)
