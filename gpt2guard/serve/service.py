"""The detection service without HTTP: a loaded detector that judges batches of texts.

:class:`Service` holds one detector (a saved one, or a zero-shot method with its threshold
calibrated once at start-up, exactly as ``gpt2guard score`` does it) and the scorer whose
token statistics the per-token view shows. :meth:`Service.judge` scores a batch of documents
in one call of the scoring engine (length-sorted forward passes) and returns, per document,
what ``gpt2guard score --format json`` prints, and on request the per-token view, the most
machine-like spans and per-sentence scores.

The service never writes scored texts to disk: its scorers run without the statistics cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from gpt2guard.errors import GuardError

DEFAULT_DETAIL_TOKENS = 2000
TOP_K = 5
# A sentence ends after a token ending in one of these, when the next token starts with a space.
SENTENCE_END = (".", "!", "?", "\u2026", "\u3002")


class TooLarge(GuardError):
    """A document longer than the service's token limit (HTTP 413)."""


@dataclass
class Limits:
    """What one request may ask of the service.

    Attributes
    ----------
    max_tokens : int
        Tokens of one document (after hygiene); longer ones are refused, not cut.
    max_docs : int
        Documents in one request.
    detail_tokens : int
        Tokens of each document shown in the per-token view (the rest is counted, not shown).
    """

    max_tokens: int = 200_000
    max_docs: int = 256
    detail_tokens: int = DEFAULT_DETAIL_TOKENS


def slice_stats(stats, start: int, stop: int):
    """The :class:`~gpt2guard.detector.stats.TokenStats` of tokens ``start:stop`` of a record."""
    n = stats.n_tokens
    cut = {f.name: getattr(stats, f.name)[start:stop] for f in fields(stats)
           if isinstance(getattr(stats, f.name), np.ndarray) and getattr(stats, f.name).shape[:1] == (n,)}
    return replace(stats, **cut)


def sentence_spans(texts: list[str]) -> list[tuple[int, int]]:
    """``(start, stop)`` token ranges of the sentences of a document given as token texts.

    A sentence ends after a token whose text, without trailing space, ends in ``.``, ``!``,
    ``?`` or an ellipsis, when the next token starts with white space; or after a token that
    holds a line break.
    """
    spans, start = [], 0
    for i, t in enumerate(texts):
        nxt = texts[i + 1] if i + 1 < len(texts) else " "
        ends = (t.rstrip().endswith(SENTENCE_END) and nxt[:1].isspace()) or "\n" in t
        if ends and t.strip() or (i == len(texts) - 1):
            spans.append((start, i + 1))
            start = i + 1
    return [(a, b) for a, b in spans if "".join(texts[a:b]).strip()]


class Service:
    """A detector ready to judge texts (see the module docstring).

    Parameters
    ----------
    detector : ZeroShotDetector, TrainedDetector, TfidfDetector or FinetunedDetector
        With its threshold set (:func:`~gpt2guard.detector.build.build_detector`).
    view : Scorer
        The scorer whose statistics the per-token view shows
        (:func:`~gpt2guard.detector.build.view_scorer`).
    limits : Limits, optional
    calibration : dict, optional
        How the threshold was set (``target_fpr``, ``threshold``, ``ci_low``, ``ci_high``,
        ``n_human``...), reported with every answer.
    """

    def __init__(self, detector, view, limits: Limits | None = None, calibration: dict | None = None):
        self.detector = detector
        self.view = view
        self.limits = limits or Limits()
        self.calibration = calibration if calibration is not None else describe_calibration(detector)

    # --- what the service is ------------------------------------------------------------

    def info(self) -> dict:
        """Detector kind, method, family, sizes, weights hashes, calibration, limits, version."""
        from gpt2guard import __version__

        det = self.detector
        if det.kind == "zero-shot":
            scorer = det.scorer
            detector = {"kind": det.kind, "method": det.method.name, "family": det.family, "sizes": [det.size],
                        "reference_size": det.reference_size,
                        "weights": {det.size: scorer.scorer.model_hash,
                                    **({det.reference_size: scorer.reference.model_hash} if scorer.reference else {})}}
        elif det.kind == "features":
            detector = {"kind": det.kind, "method": f"trained-{det._estimator_kind()}", "family": det.family_name,
                        "sizes": det.size_list, "references": det.reference_map, "weights": dict(det.model_hashes)}
        elif det.kind == "finetune":
            base = det.base_info_
            detector = {"kind": det.kind, "method": "finetune", "family": base["family"],
                        "sizes": [base["size"]] if base.get("size") else [], "base": base["name"],
                        "weights": {"base": base.get("weights"), "finetuned": getattr(det, "model_hash_", None)}}
        else:
            detector = {"kind": det.kind, "method": "tfidf", "family": None, "sizes": [], "weights": {}}
        detector.update({"threshold": det.threshold, "min_tokens": int(det.min_tokens),
                         "view_scorer": f"{self.view.scorer.family}:{self.view.scorer.size}"})
        return {"version": __version__, "detector": detector, "calibration": self.calibration,
                "limits": {"max_tokens": self.limits.max_tokens, "max_docs": self.limits.max_docs,
                           "detail_tokens": self.limits.detail_tokens}}

    # --- judging ------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens the engine would score of ``text`` (after hygiene), counted in bounded memory."""
        from gpt2guard.detector.encode import count_tokens_streaming
        from gpt2guard.detector.hygiene import clean_text

        return count_tokens_streaming(self.view.scorer.tokenizer, clean_text(text).text)

    def check_size(self, texts: list[str]) -> None:
        """Raise :class:`TooLarge` naming the first document over ``limits.max_tokens``."""
        limit = self.limits.max_tokens
        for i, t in enumerate(texts):
            # byte-level BPE: a token covers at least one byte, so a short text needs no count
            if len(t) * 4 > limit and len(t.encode("utf-8", "surrogatepass")) > limit:
                n = self.count_tokens(t)
                if n > limit:
                    raise TooLarge(f"document {i} has {n} tokens, over this server's limit of {limit} "
                                   "(--max-tokens)")

    def judge(self, texts: list[str], details=None, names=None) -> list[dict]:
        """Judge documents in one pass of the engine.

        Parameters
        ----------
        texts : list of str
        details : list of bool, optional
            Per document, whether to add the per-token view, spans and sentences.
        names : list of str, optional

        Returns
        -------
        list of dict
            Per document the fields of ``gpt2guard score --format json``, and ``details``
            where asked.
        """
        det = self.detector
        details = list(details) if details is not None else [False] * len(texts)
        if det.kind == "zero-shot":
            # per-token records where the view is asked for, per-document sums (memory that does
            # not grow with a document's length) elsewhere: the same scores either way
            want = [i for i, d in enumerate(details) if d]
            rest = [i for i, d in enumerate(details) if not d]
            records = [None] * len(texts)
            for positions, score in ((want, det.scorer.score), (rest, det.scorer.score_sums)):
                for i, r in zip(positions, score([texts[i] for i in positions]) if positions else []):
                    records[i] = r
            stats = {det.size: records}
            verdicts = det.verdicts(texts, names, stats=records)
            view_stats = records
        elif det.kind == "features":
            stats = det.token_stats(texts)
            verdicts = det.verdicts(texts, names, stats=stats)
            view_stats = stats[det.size_list[0]]
        else:
            stats = None
            verdicts = det.verdicts(texts, names)
            want = [i for i, d in enumerate(details) if d]
            scored = self.view.score([texts[i] for i in want]) if want else []
            view_stats = [None] * len(texts)
            for i, s in zip(want, scored):
                view_stats[i] = s
        out = []
        for i, v in enumerate(verdicts):
            row = v.to_dict()
            if details[i]:
                row["details"] = self.details(i, view_stats[i], stats, texts[i])
            out.append(row)
        return out

    def details(self, index: int, stats, stats_by_size, text: str) -> dict:
        """Per-token view, most machine-like spans and sentence scores of one document."""
        from gpt2guard.detector.report_html import (
            hot_mask,
            rank_class,
            top_alternatives,
        )
        from gpt2guard.serve.tokens import single_token_texts, token_texts

        if stats is None or not stats.scorable:
            return {"tokens": [], "spans": [], "sentences": [], "shown_tokens": 0, "total_tokens": 0}
        tok = self.view.scorer.tokenizer
        n = min(stats.n_tokens, self.limits.detail_tokens)
        ids, rank, logp = stats.token_ids[:n], stats.rank[:n], stats.logp[:n]
        alt_ids, alt_p = top_alternatives(self.view.scorer, ids, TOP_K, context=self.view.context,
                                          linear=self.view.backend)
        alt_texts = single_token_texts(tok, alt_ids.reshape(-1))
        texts = token_texts(tok, ids)
        tokens = [{"text": t, "rank": int(r), "bucket": rank_class(int(r)), "p": float(math.exp(float(lp))),
                   "top": [[alt_texts[j * TOP_K + k], float(alt_p[j, k])] for k in range(TOP_K)]}
                  for j, (t, r, lp) in enumerate(zip(texts, rank, logp))]
        hot = hot_mask(rank)
        spans, j = [], 0
        while j < n:
            if hot[j]:
                k = j
                while k < n and hot[k]:
                    k += 1
                spans.append({"start": j, "stop": k, "text": "".join(texts[j:k]),
                              "mean_log_rank": float(np.log1p(rank[j:k].astype(np.float64)).mean())})
                j = k
            else:
                j += 1
        sentences = self._sentences(index, sentence_spans(texts), texts, stats, stats_by_size)
        return {"tokens": tokens, "spans": spans, "sentences": sentences, "shown_tokens": n,
                "total_tokens": stats.n_tokens}

    def _sentences(self, index: int, spans: list[tuple[int, int]], texts: list[str], stats, stats_by_size) -> list:
        """Each sentence's score on the detector's scale, from its tokens' in-context
        statistics (a text detector reads the sentences' texts), in one call of the detector."""
        from gpt2guard.detector.calibrate import apply_probability_calibration
        from gpt2guard.detector.direction import machine_side

        det = self.detector
        sentences = ["".join(texts[a:b]) for a, b in spans]
        probs = [None] * len(spans)
        if det.kind == "zero-shot":
            scores = [det.method(slice_stats(stats, a, b)) for a, b in spans]
        else:
            if det.kind == "features":
                sliced = {size: [slice_stats(records[index], a, b) for a, b in spans]
                          for size, records in stats_by_size.items()}
                scores = det.logit_from_stats(sliced, sentences) if spans else []
            else:
                scores = det.decision_texts(sentences) if spans else []
            probs = apply_probability_calibration(det.meta, scores).tolist() if spans else []
        threshold = 0.0 if det.threshold is None else det.threshold
        out = []
        for (a, b), text, score, prob in zip(spans, sentences, scores, probs):
            score = None if score is None or math.isnan(score) else float(score)
            prob = None if prob is None or math.isnan(prob) else float(prob)
            # on the machine side of the threshold(s), by the detector's direction (higher for trained ones)
            side = None if score is None else machine_side(score, getattr(det, "direction", "higher"), threshold,
                                                           getattr(det, "threshold_low", None))
            out.append({"start": a, "stop": b, "text": text, "n_tokens": b - a, "score": score, "probability": prob,
                        "above_threshold": side})
        return out


def describe_calibration(det) -> dict:
    """How the detector's threshold was set, as JSON-ready fields."""
    cal = getattr(det, "calibration", None) or getattr(det, "calibration_", None)
    if cal is not None and hasattr(cal, "to_dict"):
        out = {**cal.to_dict(), "source": "builtin held-out human text (valid split)"}
        return out if out.get("threshold") == det.threshold else {"threshold": det.threshold, "source": "given"}
    meta = getattr(det, "meta", None) or {}
    saved = meta.get("calibration")
    if saved and saved.get("threshold") == det.threshold:
        return {**saved, "source": "the saved detector's calibration"}
    return {"threshold": det.threshold, "source": "given" if det.threshold is not None else "detector default"}
