"""The scoring engine: documents -> :class:`TokenStats` under a scorer (and optional reference)
model, in batched forward passes with bounded memory.

Pipeline
--------
1. :func:`~gpt2guard.detector.hygiene.prepare_text` cleans each document and flags it; an
   empty or binary document gets an empty, flagged record (its scores are NaN), never a
   verdict.
2. Records already in the cache (keyed by model hashes, settings and text hash) are reused.
3. The rest are tokenised, ``<|endoftext|>`` is prepended so the first token is scored,
   and each document is cut into windows of at most the context size
   (:mod:`~gpt2guard.detector.windows`).
4. Windows are sorted by length and grouped into batches of at most ``batch_tokens`` padded
   tokens, no row padded by more than a quarter of the batch length. Padding is on the
   right, with an attention mask and explicit positions ``0..L-1``, so a window's
   statistics do not depend on its batch.
5. The model body gives final hidden states (B, L, d); only the scored positions are kept
   and projected onto the vocabulary a chunk of rows at a time
   (:func:`~gpt2guard.detector.reduce.project_and_reduce`), so the logits of a batch never
   exist at once.

:meth:`Scorer.score_sums` runs the same windows but keeps per-document sums only
(:class:`~gpt2guard.detector.stats.TokenSums`, all any zero-shot method reads): no per-token
array is allocated, and a long document's ids are tokenised piece by piece and its windows
scored as they arrive (:func:`sum_token_pieces`), so memory does not grow with its length.

With a reference model (same tokenizer) both models see the same batches and the
reference's distribution ``q`` gives the cross terms (Binoculars, Fast-DetectGPT with a
separate sampling model).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Iterable, Iterator, Sequence

import numpy as np

from gpt2guard.detector.cache import StatsCache
from gpt2guard.detector.encode import encode_texts
from gpt2guard.detector.hygiene import clean_text, is_scorable
from gpt2guard.detector.models import check_pair, eos_id, lm_parts
from gpt2guard.detector.reduce import DEFAULT_CHUNK_ELEMENTS, REFERENCE_STAT_NAMES, STAT_NAMES, project_and_reduce
from gpt2guard.detector.stats import TokenStats, TokenSums, chunk_sums
from gpt2guard.detector.windows import Window, iter_window_ids, plan_windows
from gpt2guard.errors import GuardError
from gpt2guard.family.load import LoadedModel
from gpt2guard.paths import sha256_text

# Bump when a change to the engine changes the numbers it produces: it invalidates the cache.
ENGINE_VERSION = 2
DEFAULT_BATCH_TOKENS = 4096
# A window joins a batch only if it is padded by at most this fraction of the batch length.
MAX_PADDING = 0.25


def _batches(segments: list[tuple[int, Window]], batch_tokens: int,
             max_padding: float = MAX_PADDING) -> list[list[tuple[int, Window]]]:
    """Group (document, window) pairs, longest first, into batches of at most ``batch_tokens``
    padded tokens in which no row is padded by more than ``max_padding`` of the batch length.

    Padding is computation thrown away; grouping similar lengths keeps it small while short
    windows still share a batch.
    """
    order = sorted(segments, key=lambda s: s[1].length, reverse=True)
    batches, current = [], []
    for seg in order:
        if current:
            longest = current[0][1].length
            if (len(current) + 1) * longest > batch_tokens or seg[1].length < (1 - max_padding) * longest:
                batches.append(current)
                current = []
        current.append(seg)
    if current:
        batches.append(current)
    return batches


def _hidden(body, input_ids, attention_mask):
    """Final hidden states (B, L, d) of right-padded input, positions 0..L-1 on every row.

    A batch without padding goes without a mask, which lets attention take its causal fast path.
    """
    import torch

    B, L = input_ids.shape
    position_ids = torch.arange(L, device=input_ids.device).expand(B, L)  # (B, L)
    if bool(attention_mask.all()):
        attention_mask = None
    out = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    return out.last_hidden_state  # (B, L, d)


def engine_backend(scorer: LoadedModel, linear: str = "auto", bf16: bool = False,
                   reference: LoadedModel | None = None) -> str:
    """The linear backend the engine runs ``scorer`` (and ``reference``) on: ``linear``
    resolved for every model (:func:`~gpt2guard.family.linear.backend_for`); bfloat16
    autocast keeps torch's own path."""
    from gpt2guard.family.linear import backend_for

    if bf16:
        return "aten"
    return backend_for(linear, *(m.model for m in [scorer] + ([reference] if reference is not None else [])))


class _Engine:
    """The models, linear backend and work buffers of one scoring run: scores batches of
    windows (their fed ids and scored tokens) into per-token statistics."""

    def __init__(self, scorer: LoadedModel, reference: LoadedModel | None, *, chunk_elements: int | None,
                 bf16: bool, linear: str):
        import torch

        if reference is not None:
            check_pair(scorer, reference)
        self.backend = engine_backend(scorer, linear, bf16, reference)
        self.models = [scorer] + ([reference] if reference is not None else [])
        self.has_reference = reference is not None
        self.names = STAT_NAMES + (REFERENCE_STAT_NAMES if reference is not None else ())
        self.eos = eos_id(scorer)
        self.vocab = min(lm_parts(m.model)[1].shape[0] for m in self.models)
        self.device = scorer.model.device
        self.chunk_elements, self.bf16 = chunk_elements, bf16
        self.parts = []
        for m in self.models:  # (body, weight, bias); under bf16 the output product runs in bfloat16 too
            body, weight, bias = lm_parts(m.model)
            if bf16:
                weight, bias = weight.to(torch.bfloat16), None if bias is None else bias.to(torch.bfloat16)
            self.parts.append((body, weight, bias))
        self.workspace = {}  # chunk buffers, reused by every batch

    def check_ids(self, ids: np.ndarray, what: str) -> None:
        """GuardError if ``ids`` holds an id outside the models' vocabulary."""
        if len(ids) and (ids.min() < 0 or ids.max() >= self.vocab):
            raise GuardError(f"{what} has token ids outside the model's vocabulary of {self.vocab}")

    @contextlib.contextmanager
    def running(self):
        """Inference mode and the linear backend, around the batches of one run."""
        import torch

        from gpt2guard.family.linear import linear_backend

        with torch.inference_mode(), contextlib.ExitStack() as stack:
            for m in self.models:
                stack.enter_context(linear_backend(m.model, self.backend))
            yield self

    def run(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Statistics of one batch; call inside :meth:`running`.

        Parameters
        ----------
        rows : list of (fed, targets)
            Per window, the ids fed to the model (at most the context) and the tokens scored
            at its last ``len(targets)`` positions.

        Returns
        -------
        dict of str to ndarray
            The statistics of every scored token, rows one after another.
        """
        import torch

        B, L = len(rows), max(len(fed) for fed, _ in rows)
        ids = np.full((B, L), self.eos, dtype=np.int64)
        mask = np.zeros((B, L), dtype=np.int64)
        positions = []
        for b, (fed, targets) in enumerate(rows):
            ids[b, : len(fed)] = fed
            mask[b, : len(fed)] = 1
            positions.append(b * L + np.arange(len(fed) - len(targets), len(fed)))
        input_ids = torch.from_numpy(ids).to(self.device)  # (B, L)
        attention_mask = torch.from_numpy(mask).to(self.device)  # (B, L)
        rows_t = torch.from_numpy(np.concatenate(positions)).to(self.device)  # (M,)
        targets_t = torch.from_numpy(np.concatenate([t for _, t in rows]).astype(np.int64)).to(self.device)  # (M,)
        hidden = []
        for body, weight, _ in self.parts:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                h = _hidden(body, input_ids, attention_mask)  # (B, L, d)
            hidden.append(h.flatten(0, 1).index_select(0, rows_t).to(weight.dtype))  # (M, d)
        ref = {}
        if self.has_reference:
            ref = {"ref_hidden": hidden[1], "ref_weight": self.parts[1][1], "ref_bias": self.parts[1][2]}
        stats = project_and_reduce(hidden[0], self.parts[0][1], targets_t, bias=self.parts[0][2],
                                   chunk_elements=self.chunk_elements, workspace=self.workspace,
                                   backend=self.backend, **ref)
        return {name: value.cpu().numpy() for name, value in stats.items()}

    def add_sums(self, acc: TokenSums, stats: dict[str, np.ndarray], lo: int, hi: int) -> None:
        """Accumulate rows ``lo:hi`` of a batch's statistics into ``acc``."""
        acc.add(hi - lo, chunk_sums(**{name: stats[name][lo:hi] for name in self.names}))


def score_token_ids(docs: Sequence[np.ndarray], scorer: LoadedModel, *, reference: LoadedModel | None = None,
                    batch_tokens: int = DEFAULT_BATCH_TOKENS, chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS,
                    bf16: bool = False, context: int | None = None, progress: bool = False,
                    linear: str = "auto", sums: bool = False) -> list[dict] | list[TokenSums]:
    """Per-token statistics of tokenised documents: the engine without hygiene or cache.

    Parameters
    ----------
    docs : sequence of int arrays
        Token ids of each document, without a leading ``<|endoftext|>`` (it is added here).
    scorer, reference : LoadedModel
        The scoring model and an optional reference model sharing its tokenizer.
    batch_tokens : int
        Padded tokens per forward pass (a single window longer than this still runs alone).
    chunk_elements : int, optional
        Logit elements (rows x vocabulary) materialised at once; default
        :func:`~gpt2guard.detector.reduce.chunk_rows`'s policy (128 rows of GPT-2's vocabulary
        on CPU, 1335 on a CUDA GPU).
    bf16 : bool
        Run the models under bfloat16 autocast and the output projection in bfloat16
        (statistics stay float32). Worth it only on hardware with fast bfloat16.
    context : int, optional
        Window size; default the smaller ``n_positions`` of the models.
    progress : bool
        Show a tqdm bar over tokens.
    linear : str
        Backend of the float32 linear layers (:mod:`gpt2guard.family.linear`): ``"auto"``
        (oneDNN on CPU where available), ``"onednn"`` or ``"aten"``. Ignored under ``bf16``.
    sums : bool
        Return per-document sums (:class:`~gpt2guard.detector.stats.TokenSums`, all any
        zero-shot method needs) instead of per-token arrays: no array of a document's
        length is allocated.

    Returns
    -------
    list of dict, or list of TokenSums with ``sums``
        Per document: ``token_ids`` and the arrays of :data:`~gpt2guard.detector.reduce.STAT_NAMES`
        (plus the reference terms with a reference), each shape (n,), and ``n_windows``.
    """
    engine = _Engine(scorer, reference, chunk_elements=chunk_elements, bf16=bf16, linear=linear)
    if context is None:
        context = min(m.n_positions for m in engine.models)
    docs = [np.asarray(d).reshape(-1) for d in docs]
    docs = [d if d.dtype in (np.int32, np.int64) else d.astype(np.int64) for d in docs]  # int32 stays compact
    for i, d in enumerate(docs):
        engine.check_ids(d, f"document {i}")
    if sums:
        out = [TokenSums.zeros(reference is not None) for _ in docs]
    else:
        out = [{name: np.empty(len(d), np.int32 if name == "rank" else np.float32) for name in engine.names}
               for d in docs]
    segments = []
    for i, d in enumerate(docs):
        windows = plan_windows(len(d), context)
        if sums:
            out[i].n_windows = len(windows)
        else:
            out[i]["token_ids"] = d.astype(np.int32, copy=False)
            out[i]["n_windows"] = len(windows)
        segments.extend((i, w) for w in windows)
    bar = None
    if progress:
        from gpt2guard.progress import progress_bar  # drawn only on a terminal or in a notebook

        bar = progress_bar(total=sum(len(d) for d in docs), unit="tok", desc="scoring", progress=progress)
    with engine.running():
        for batch in _batches(segments, batch_tokens):
            rows = []
            for i, w in batch:
                # ids of document i are [eos] + docs[i] (never built: a window feeds ids[start:stop])
                if w.start == 0:
                    fed = np.concatenate([np.array([engine.eos], docs[i].dtype), docs[i][: w.stop - 1]])
                else:
                    fed = docs[i][w.start - 1: w.stop - 1]
                rows.append((fed, docs[i][w.start + w.first: w.stop]))
            stats = engine.run(rows)
            lo = 0
            for i, w in batch:
                hi = lo + w.n_scored
                if sums:
                    engine.add_sums(out[i], stats, lo, hi)
                else:
                    for name in engine.names:
                        out[i][name][w.start + w.first: w.stop] = stats[name][lo:hi]
                lo = hi
            if bar is not None:
                bar.update(sum(w.n_scored for _, w in batch))
    if bar is not None:
        bar.close()
    return out


def sum_token_pieces(pieces: Iterable[np.ndarray], scorer: LoadedModel, *, reference: LoadedModel | None = None,
                     batch_tokens: int = DEFAULT_BATCH_TOKENS, chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS,
                     bf16: bool = False, context: int | None = None, progress: bool = False,
                     linear: str = "auto") -> TokenSums:
    """The :class:`~gpt2guard.detector.stats.TokenSums` of one document given as a stream of
    token-id pieces: memory bounded by a piece and a batch, whatever the document's length.

    The windows are :func:`~gpt2guard.detector.windows.plan_windows`'s, cut from the stream as
    its ids arrive (:func:`~gpt2guard.detector.windows.iter_window_ids`), and are batched in
    order, ``batch_tokens // context`` windows at a time (at least one); each window is
    scored exactly as :func:`score_token_ids` scores it. Parameters as :func:`score_token_ids`.
    """
    engine = _Engine(scorer, reference, chunk_elements=chunk_elements, bf16=bf16, linear=linear)
    if context is None:
        context = min(m.n_positions for m in engine.models)
    per_batch = max(1, batch_tokens // context)
    acc = TokenSums.zeros(reference is not None)
    bar = None
    if progress:
        from gpt2guard.progress import progress_bar

        bar = progress_bar(unit="tok", desc="scoring", progress=progress)

    def checked(stream):
        for n, piece in enumerate(stream):
            engine.check_ids(np.asarray(piece), f"piece {n} of the document")
            yield piece

    def flush(rows):
        stats = engine.run(rows)
        engine.add_sums(acc, stats, 0, len(stats["logp"]))
        if bar is not None:
            bar.update(len(stats["logp"]))

    with engine.running():
        rows = []
        for _, fed, targets in iter_window_ids(checked(pieces), context, engine.eos):
            acc.n_windows += 1
            # windows of one length share a batch (only the last one may be shorter)
            if rows and (len(rows) == per_batch or len(fed) != len(rows[0][0])):
                flush(rows)
                rows = []
            rows.append((fed, targets))
        if rows:
            flush(rows)
    if bar is not None:
        bar.close()
    return acc


def _merge_flags(flags, truncated: bool) -> tuple[str, ...]:
    return tuple(sorted(set(flags) | ({"truncated"} if truncated else set())))


class Scorer:
    """Scores documents under one model (and an optional reference model), with a cache.

    Parameters
    ----------
    scorer : LoadedModel
        From :func:`gpt2guard.family.load_model` (or :func:`~gpt2guard.detector.models.wrap_model`).
    reference : LoadedModel, optional
        A second model of the same family. Its next-token distribution ``q`` weights the
        cross terms: it is Binoculars' *performer* (the scorer is the *observer*, whose
        log-perplexity is the numerator) and Fast-DetectGPT's *sampling* model (the scorer
        is the *scoring* model). Refused (GuardError) if its tokenizer differs.
    batch_tokens, chunk_elements, bf16, linear : see :func:`score_token_ids`
    cache : bool or StatsCache
        True for the default cache under gpt2guard's cache directory, False for none.
    max_tokens : int, optional
        Score at most this many tokens per document; a longer one is cut and flagged
        ``truncated``. Default: every token.
    progress : bool
        Show progress bars.
    """

    def __init__(self, scorer: LoadedModel, reference: LoadedModel | None = None, *,
                 batch_tokens: int = DEFAULT_BATCH_TOKENS, chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS,
                 bf16: bool = False, cache: bool | StatsCache = True, max_tokens: int | None = None,
                 progress: bool = False, linear: str = "auto"):
        if reference is not None:
            check_pair(scorer, reference)
        self.backend = engine_backend(scorer, linear, bf16, reference)
        if scorer.tokenizer is None:
            raise GuardError("the scorer has no tokenizer: score token ids with score_token_ids instead")
        if batch_tokens < 1 or (chunk_elements is not None and chunk_elements < 1) or (
                max_tokens is not None and max_tokens < 1):
            raise GuardError("batch_tokens, chunk_elements and max_tokens must be positive")
        self.scorer, self.reference = scorer, reference
        self.batch_tokens, self.chunk_elements, self.bf16 = batch_tokens, chunk_elements, bf16
        self.max_tokens, self.progress = max_tokens, progress
        self.cache = StatsCache() if cache is True else (cache or None)
        self.context = min(m.n_positions for m in [scorer] + ([reference] if reference else []))

    @property
    def settings(self) -> dict:
        """Everything besides the text that the numbers depend on (part of the cache key)."""
        param = next(self.scorer.model.parameters())
        return {"engine": ENGINE_VERSION, "model": self.scorer.model_hash,
                "reference": self.reference.model_hash if self.reference else None,
                "tokenizer": self.scorer.tokenizer_hash, "context": self.context, "dtype": str(param.dtype),
                "bf16": self.bf16, "linear": self.backend, "max_tokens": self.max_tokens}

    def score(self, texts: Iterable[str | bytes]) -> list[TokenStats]:
        """Score documents; one :class:`TokenStats` per input, in input order.

        Unscorable documents (empty, whitespace-only, binary) get an empty record whose
        ``flags`` say why; every record carries its hygiene flags.
        """
        prepared = [clean_text(t) for t in texts]
        settings = self.settings
        ref_hash = self.reference.model_hash if self.reference else None
        results: list[TokenStats | None] = [None] * len(prepared)
        todo: dict[str, list[int]] = {}  # text hash -> positions, so duplicates score once
        for pos, c in enumerate(prepared):
            th = sha256_text(c.text)
            if not is_scorable(c.flags):
                results[pos] = replace(TokenStats.empty(self.scorer.model_hash, c.flags, th, ref_hash),
                                       repairs=c.counts)
                continue
            cached = self.cache.get(th, settings) if self.cache else None
            if cached is not None:
                results[pos] = replace(cached, flags=_merge_flags(c.flags, "truncated" in cached.flags),
                                       repairs=c.counts)
            else:
                todo.setdefault(th, []).append(pos)
        if todo:
            first = [positions[0] for positions in todo.values()]
            ids = encode_texts(self.scorer.tokenizer, [prepared[p].text for p in first], max_tokens=self.max_tokens)
            prepared = [replace(c, text="") for c in prepared]  # the cleaned texts are not needed any more
            cut = [self.max_tokens is not None and len(x) > self.max_tokens for x in ids]
            ids = [x[: self.max_tokens] if c else x for x, c in zip(ids, cut)]
            arrays = score_token_ids(ids, self.scorer, reference=self.reference, batch_tokens=self.batch_tokens,
                                     chunk_elements=self.chunk_elements, bf16=self.bf16, context=self.context,
                                     progress=self.progress, linear=self.backend)
            for (th, positions), arr, was_cut in zip(todo.items(), arrays, cut):
                n_windows = arr.pop("n_windows")
                stats = TokenStats(**arr, n_windows=n_windows, model_hash=self.scorer.model_hash,
                                   reference_hash=ref_hash, flags=_merge_flags((), was_cut), text_hash=th)
                if self.cache:
                    self.cache.put(th, settings, stats)
                for pos in positions:
                    results[pos] = replace(stats, flags=_merge_flags(prepared[pos].flags, was_cut),
                                           repairs=prepared[pos].counts)
        return results

    @property
    def sums_settings(self) -> dict:
        """:attr:`settings` of the sums-only records of :meth:`score_sums` (their cache key)."""
        return {**self.settings, "view": "sums"}

    def score_sums(self, texts: Iterable[str | bytes]) -> list[TokenSums]:
        """Per-document sums (:class:`~gpt2guard.detector.stats.TokenSums`): what every
        zero-shot method needs, in memory that does not grow with a document's length.

        One record per input, in input order, with the flags, text hash and repairs of
        :meth:`score`, and the same method scores (to float64 rounding). Documents up to
        :data:`~gpt2guard.detector.encode.DEFAULT_CHUNK_CHARS` characters are tokenised and
        batched together as :meth:`score` does, without per-token arrays; a longer one is
        cleaned, then tokenised piece by piece while its windows are scored as the ids
        arrive (:func:`sum_token_pieces`), and its text is dropped before the next document
        is read (pass a generator to avoid holding the inputs). Cached under
        :attr:`sums_settings`; a full record that :meth:`score` cached is reused when small.
        """
        from gpt2guard.detector.encode import DEFAULT_CHUNK_CHARS, iter_token_pieces

        settings, full_settings = self.sums_settings, self.settings
        ref_hash = self.reference.model_hash if self.reference else None
        results: list[TokenSums | None] = []
        meta = []  # (flags, repairs) per position
        todo: dict[str, list[int]] = {}  # text hash -> positions, so duplicates score once
        computed: dict[str, tuple[TokenSums, bool]] = {}
        short: dict[str, str] = {}
        kw = dict(reference=self.reference, batch_tokens=self.batch_tokens, chunk_elements=self.chunk_elements,
                  bf16=self.bf16, context=self.context, progress=self.progress, linear=self.backend)
        for pos, raw in enumerate(texts):
            c = clean_text(raw)
            del raw
            th = sha256_text(c.text)
            meta.append((c.flags, c.counts))
            results.append(None)
            if not is_scorable(c.flags):
                results[pos] = TokenSums.zeros(ref_hash is not None, self.scorer.model_hash, reference_hash=ref_hash,
                                               flags=c.flags, text_hash=th, repairs=c.counts)
                continue
            cached = self.cache.get_sums(th, settings, full_settings) if self.cache else None
            if cached is not None:
                results[pos] = replace(cached, flags=_merge_flags(c.flags, "truncated" in cached.flags),
                                       repairs=c.counts)
                continue
            todo.setdefault(th, []).append(pos)
            if len(todo[th]) > 1:
                continue
            if len(c.text) <= DEFAULT_CHUNK_CHARS:
                short[th] = c.text
            else:  # streamed now, so that one long text is held at a time
                cut = [False]
                pieces = iter_token_pieces(self.scorer.tokenizer, c.text, DEFAULT_CHUNK_CHARS)
                acc = sum_token_pieces(_capped(pieces, self.max_tokens, cut), self.scorer, **kw)
                computed[th] = (acc, cut[0])
                pieces = None  # a generator cut short at max_tokens still holds the text
            del c
        if short:
            keys = list(short)
            ids = encode_texts(self.scorer.tokenizer, list(short.values()), max_tokens=self.max_tokens)
            short.clear()
            cut = [self.max_tokens is not None and len(x) > self.max_tokens for x in ids]
            ids = [x[: self.max_tokens] if c else x for x, c in zip(ids, cut)]
            sums = score_token_ids(ids, self.scorer, sums=True, **kw)
            for th, acc, was_cut in zip(keys, sums, cut):
                computed[th] = (acc, was_cut)
        for th, positions in todo.items():
            acc, was_cut = computed[th]
            acc = replace(acc, model_hash=self.scorer.model_hash, reference_hash=ref_hash,
                          flags=_merge_flags((), was_cut), text_hash=th)
            if self.cache:
                self.cache.put(th, settings, acc)
            for pos in positions:
                results[pos] = replace(acc, sums=dict(acc.sums), flags=_merge_flags(meta[pos][0], was_cut),
                                       repairs=meta[pos][1])
        return results

    def score_one(self, text: str | bytes) -> TokenStats:
        """Score a single document."""
        return self.score([text])[0]


def _capped(pieces: Iterable[np.ndarray], max_tokens: int | None, cut: list) -> Iterator[np.ndarray]:
    """The first ``max_tokens`` ids of a stream of pieces (all without a limit); sets
    ``cut[0]`` when ids were left out."""
    n = 0
    for piece in pieces:
        if max_tokens is not None and n + len(piece) > max_tokens:
            cut[0] = True
            if max_tokens > n:
                yield piece[: max_tokens - n]
            return
        n += len(piece)
        yield piece


def score_texts(texts: Iterable[str | bytes], scorer: LoadedModel, *, reference: LoadedModel | None = None,
                batch_tokens: int = DEFAULT_BATCH_TOKENS, cache: bool | StatsCache = True, bf16: bool = False,
                max_tokens: int | None = None, progress: bool = False, linear: str = "auto") -> list[TokenStats]:
    """Score documents under ``scorer`` (and ``reference``): one :class:`TokenStats` each, in order.

    A convenience over :class:`Scorer`; see it for the parameters.
    """
    return Scorer(scorer, reference, batch_tokens=batch_tokens, cache=cache, bf16=bf16, max_tokens=max_tokens,
                  progress=progress, linear=linear).score(texts)
