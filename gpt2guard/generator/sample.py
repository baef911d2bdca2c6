"""The batched sampling loop: GPT-2's forward pass, its key/value cache, one token a step.

:func:`generate_tokens` is the entry point: it checks its input, groups records into
batches (by sampling method, then by prompt length), runs :func:`sample_batch` on each
and returns one :class:`GenerationResult` per record, in input order.

Reproducibility. A record is a function of its provenance: the model, its prompt ids,
its length limit, its sampling config and its seed, whatever batch it was generated in.
Two things make that so:

- Random numbers. The seed drives a counter-based stream of uniform numbers
  (:mod:`gpt2guard.generator.seeding`), one per step, and each token is drawn from the
  row's own number by inverse-CDF over token ids
  (:func:`~gpt2guard.generator.sampling.sample_inverse_cdf`): no row reads another
  row's random numbers, however many rows there are or when they stop.
- Arithmetic. A row's logits are computed with the same bits in any batch
  (:mod:`gpt2guard.generator.forward`: no left padding, attention over each row's own
  cache columns, and in every matrix product at least the rows from which this CPU's
  kernels give a row the same bits, measured). The tests check a batch of 8 against each
  record alone, bit for bit. Bits are promised on the same CPU model, torch version,
  thread count and linear backend, all recorded in the provenance; elsewhere only the
  tokens usually agree.

Length and positions. Row ``b`` holds its prompt of ``L_b`` tokens in cache columns
``[0, L_b)``; its t-th new token goes to column and position ``L_b + t``. Rows stop at
``<|endoftext|>`` (unless told to continue) or at their own ``max_new_tokens``;
finished rows leave the batch (their cache rows are dropped) while at least
:func:`~gpt2guard.generator.forward.min_rows_for` the backend others remain, so a batch's
cost follows its live rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from gpt2guard.errors import GuardError
from gpt2guard.generator.sampling import SamplingConfig

STOP_REASONS = ("eos", "length")


@dataclass
class GenerationResult:
    """One generated continuation.

    Attributes
    ----------
    token_ids : list of int
        The generated tokens, without the prompt and without a final ``<|endoftext|>``
        that stopped generation; when generation continues past ``<|endoftext|>`` the
        ones in the middle are included.
    text : str
        ``token_ids`` decoded (special tokens kept, no clean-up of spaces).
    stop_reason : str
        ``"eos"``: the model produced ``<|endoftext|>`` and generation stopped there;
        ``"length"``: the row reached its ``max_new_tokens``.
    ended : bool
        Whether ``<|endoftext|>`` was generated: the document came to its own end (the
        meaning of ``ended`` in OpenAI's gpt-2-output-dataset). With ``stop_at_eos``
        this is ``stop_reason == "eos"``.
    logprobs : list of float, optional
        Per token of ``token_ids``: its log-probability under the generating model's
        unfiltered, temperature-1 distribution (``log_softmax`` of the raw logits), i.e.
        what scoring the text with the model gives, whatever sampling method drew it.
    seed : int
        The record's seed.
    top_p : float, optional
        The nucleus p the record sampled with (drawn from the config's range if it has one).
    sampling : SamplingConfig
        The record's sampling method.
    prompt_ids : list of int
        The prompt the continuation follows (``[eos]`` for unconditional generation).
    max_new_tokens : int
        The record's length limit.
    linear : str
        The backend its linear layers ran on (``"aten"`` or ``"onednn"``).
    min_rows : int
        The fewest rows of every matrix product it was computed in (dummy rows filled in).
    kernels : dict
        What its bits depend on besides the above
        (:func:`~gpt2guard.family.linear.kernel_provenance`: backend, torch threads,
        torch version, a digest of the CPU and its kernel libraries, the CPU's name).
    watermark : dict, optional
        The watermark it was generated under
        (:meth:`~gpt2guard.watermark.WatermarkConfig.provenance`: scheme, gamma, delta,
        the key's digest), or None.
    """

    token_ids: list[int]
    text: str
    stop_reason: str
    ended: bool
    logprobs: list[float] | None
    seed: int
    top_p: float | None
    sampling: SamplingConfig
    prompt_ids: list[int] = field(repr=False)
    max_new_tokens: int = 0
    linear: str = "aten"
    min_rows: int = 0
    kernels: dict = field(default_factory=dict, repr=False)
    watermark: dict | None = None

    @property
    def length(self) -> int:
        """Generated tokens (OpenAI's ``length``)."""
        return len(self.token_ids)

    def provenance(self) -> dict[str, Any]:
        """What regenerating this record needs besides the model: JSON-ready."""
        return {"sampling": self.sampling.to_dict(), "seed": self.seed, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "prompt_length": len(self.prompt_ids),
                "stop_reason": self.stop_reason, "min_rows": self.min_rows, **self.kernels,
                "linear": self.linear, **({"watermark": self.watermark} if self.watermark else {})}


def sample_batch(model, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], cfg: SamplingConfig,
                 seeds: Sequence[int], *, eos_id: int, stop_at_eos: bool = True, return_logprobs: bool = False,
                 top_p: Sequence[float] | None = None, min_rows: int | None = None,
                 linear: str = "aten", watermark=None) -> list[dict]:
    """Sample continuations of one batch of prompts with one sampling method.

    Parameters
    ----------
    model : transformers.GPT2LMHeadModel
        In eval mode.
    prompts : sequence of sequence of int
        Non-empty prompts; they may differ in length.
    max_new_tokens : sequence of int
        Per row, >= 1. The caller checks that prompt plus length fits the context.
    cfg : SamplingConfig
        The sampling method of every row.
    seeds : sequence of int
        Per row; picks the row's uniform numbers.
    eos_id : int
        The ``<|endoftext|>`` token.
    stop_at_eos : bool
        Stop a row at ``<|endoftext|>``; else continue to ``max_new_tokens``.
    return_logprobs : bool
        Also return per-token log-probabilities (see :class:`GenerationResult`).
    top_p : sequence of float, optional
        Per-row nucleus p; defaults to ``cfg.top_p``.
    min_rows : int, optional
        Fewest rows in a forward pass (dummy rows fill up); default
        :func:`~gpt2guard.generator.forward.min_rows_for` the backend and model on this
        CPU (measured), which makes results independent of the batch. 1 computes only live
        rows: faster for a single row, but a record may then differ from the same record
        generated in a batch with more rows per pass.
    linear : str
        Backend of the linear layers, ``"aten"`` or ``"onednn"``
        (:mod:`gpt2guard.family.linear`); records differ in their last bits between them.
    watermark : gpt2guard.watermark.bias.WatermarkBias, optional
        Adds ``delta`` to the logits of each row's green tokens (``delta * T`` to the raw
        logits, so ``delta`` after the division by temperature T), before top-k or nucleus
        filtering and the draw (green lists from the row's own last tokens and the key
        only). Log-probabilities stay the unwatermarked model's.

    Returns
    -------
    list of dict
        Per row: ``token_ids``, ``stop_reason``, ``ended``, ``logprobs`` (or None), and
        ``min_rows``, the rows per pass used.
    """
    import numpy as np
    import torch

    from gpt2guard.family.linear import linear_backend
    from gpt2guard.generator.draw import draw_tokens
    from gpt2guard.generator.forward import OutputLayer, check_gpt2, forward_hidden, min_rows_for
    from gpt2guard.generator.kvcache import RowCache
    from gpt2guard.generator.seeding import uniforms

    check_gpt2(model)
    min_rows = min_rows_for(linear, model, len(prompts)) if min_rows is None else max(1, int(min_rows))
    n = len(prompts)
    # Dummy rows (copies of row 0, never reported) bring the batch up to min_rows.
    prompts = list(prompts) + [prompts[0]] * max(0, min_rows - n)
    B = len(prompts)
    device, window = model.device, model.config.n_positions
    lengths = torch.tensor([len(p) for p in prompts], device=device)             # (B,) prompt lengths L_b
    T0, N = int(lengths.max()), max(max_new_tokens)

    # Prompts start at column 0; shorter ones are padded on the right (padding is never read).
    ids = torch.full((B, T0), eos_id, dtype=torch.long)                          # (B, T0)
    for i, p in enumerate(prompts):
        ids[i, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
    ids = ids.to(device)
    positions = torch.arange(T0, device=device).expand(B, T0)                    # (B, T0)

    # Each row's uniform numbers, one per step, from its own seed only (dummies: zeros).
    u = np.zeros((B, N))
    for i, (s, m) in enumerate(zip(seeds, max_new_tokens)):
        u[i, :m] = uniforms(s, int(m))
    u = torch.from_numpy(u).to(device)                                           # (B, N) float64
    p_rows = None
    if cfg.method == "nucleus":
        ps = [cfg.top_p if top_p is None else top_p[i] for i in range(n)]
        p_rows = torch.tensor(ps + [ps[0]] * (B - n), dtype=torch.float64, device=device)  # (B,)

    tokens: list[list[int]] = [[] for _ in range(n)]                              # generated ids per row
    logps: list[list[float]] | None = [[] for _ in range(n)] if return_logprobs else None
    stop = [""] * n
    running = [True] * n + [False] * (B - n)  # by original row: still generating (dummies never are)
    rows = torch.arange(B, device=device)     # original row of each batch position
    blk = model.transformer.h[0].attn
    if watermark is not None:
        hist, count = watermark.start(prompts, device)                            # (B, w), (B,)
    cache = RowCache(len(model.transformer.h), B, blk.num_heads, blk.head_dim, T0 + N,
                     model.transformer.wte.weight.dtype, device)

    with torch.inference_mode(), linear_backend(model, linear):
        lm_head = OutputLayer(model, linear)
        # Prompts: all positions at once; each row's logits come from its last real token.
        hidden = forward_hidden(model, ids, positions, cache, None, lengths.tolist())      # (B, T0, d)
        logits = lm_head(hidden[torch.arange(B, device=device), lengths - 1])          # (B, V)
        for t in range(N):
            if not bool(torch.isfinite(logits.max())):    # max propagates NaN; +inf is overflow
                raise GuardError("the model produced NaN or infinite logits; half precision may overflow, "
                                 "try float32")
            # Every row draws token t from its own uniform number.
            drawn_from = logits if watermark is None else watermark.apply(logits, hist[rows], count[rows],
                                                                          cfg.temperature)
            nxt = draw_tokens(drawn_from, cfg, u[rows, t], None if p_rows is None else p_rows[rows])  # (b,)
            if watermark is not None:
                watermark.advance(hist, count, rows, nxt)
            scores = None
            if logps is not None:
                # scored by the raw model: log-softmax of the unfiltered, temperature-1 logits
                scores = torch.log_softmax(logits, dim=-1).gather(-1, nxt[:, None]).squeeze(-1).tolist()

            # Record the running rows' tokens; they stop at <|endoftext|> (if asked) or at their limit.
            live = []
            for j, (r, tok) in enumerate(zip(rows.tolist(), nxt.tolist())):
                if not running[r]:
                    continue
                if stop_at_eos and tok == eos_id:
                    running[r], stop[r] = False, "eos"                # the stopping eos is not kept
                    continue
                tokens[r].append(tok)
                if scores is not None:
                    logps[r].append(scores[j])
                if len(tokens[r]) >= max_new_tokens[r]:
                    running[r], stop[r] = False, "length"
                else:
                    live.append(j)
            if not live:
                break
            # Finished rows leave the batch, but the batch keeps at least min_rows rows.
            if len(rows) > max(len(live), min_rows):
                idle = [j for j in range(len(rows)) if j not in live]
                keep = torch.tensor(sorted(live + idle[:max(0, min_rows - len(live))]), device=device)
                rows, nxt = rows[keep], nxt[keep]
                cache.select_rows(keep, T0 + t)

            # Feed token t: column and position L_b + t of its row (positions of finished
            # filler rows are clamped to stay inside the position table).
            columns = lengths[rows] + t                                                  # (b,)
            hidden = forward_hidden(model, nxt[:, None], columns.clamp(max=window - 1)[:, None], cache,
                                    columns, (columns + 1).tolist())                     # (b, 1, d)
            logits = lm_head(hidden[:, -1])                                             # (b, V)

    return [{"token_ids": tokens[i], "stop_reason": stop[i],
             "ended": stop[i] == "eos" if stop_at_eos else eos_id in tokens[i],
             "logprobs": logps[i] if logps is not None else None, "min_rows": min_rows} for i in range(n)]


def _as_int(value) -> int | None:
    """``value`` as an int if it is an integer (Python, numpy or torch), else None."""
    import operator

    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _as_list(value, n: int, what: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise GuardError(f"{len(value)} {what} given for {n} prompts")
        return list(value)
    return [value] * n


def plan_batches(prompts: Sequence[Sequence[int]], configs: Sequence[SamplingConfig],
                 batch_size: int) -> list[list[int]]:
    """Group record indices into batches: one sampling method per batch, prompts of
    similar length together (sorted by length, then by index), at most ``batch_size``."""
    order: dict[SamplingConfig, list[int]] = {}
    for i, cfg in enumerate(configs):
        order.setdefault(cfg, []).append(i)
    batches = []
    for members in order.values():
        members.sort(key=lambda i: (len(prompts[i]), i))
        batches.extend(members[j:j + batch_size] for j in range(0, len(members), batch_size))
    return batches


def generate_tokens(loaded, prompts: Sequence[Sequence[int]], max_new_tokens: int | Sequence[int],
                    configs: SamplingConfig | Sequence[SamplingConfig], seeds: Sequence[int], *,
                    stop_at_eos: bool = True, return_logprobs: bool = False, batch_size: int = 8,
                    progress: Callable[[int], None] | None = None,
                    min_rows: int | None = None, linear: str = "auto", watermark=None) -> list[GenerationResult]:
    """Generate one continuation per prompt, batched, each reproducible from its seed.

    Parameters
    ----------
    loaded : gpt2guard.family.LoadedModel
        The model and tokenizer (``tokenizer.eos_token_id`` is ``<|endoftext|>``).
    prompts : sequence of sequence of int
        Prompt token ids per record. An empty prompt means unconditional generation: it
        is replaced by ``[<|endoftext|>]``, as OpenAI's unconditional samples began.
    max_new_tokens : int or sequence of int
        Length limit in tokens, one for all or one per record (to match paired human
        continuations); >= 1, and prompt plus limit must fit the context window.
    configs : SamplingConfig or sequence of SamplingConfig
        One for all records or one per record.
    seeds : sequence of int
        One per record, in [0, 2**63).
    stop_at_eos : bool
        Stop a record at ``<|endoftext|>``; if False, continue to its length limit.
    return_logprobs : bool
        Also return per-token log-probabilities under the model.
    batch_size : int
        Records per forward pass.
    progress : callable, optional
        Called with the number of records finished after each batch.
    min_rows : int, optional
        See :func:`sample_batch`; the default keeps records independent of batching.
    linear : str
        Backend of the linear layers: ``"auto"`` (the faster of the two on this CPU for this
        model at this batch size, measured once and cached; see
        :func:`~gpt2guard.family.linear.backend_for`), ``"onednn"`` or ``"aten"``. Recorded
        in each result.
    watermark : gpt2guard.watermark.WatermarkConfig, optional
        Apply this watermark inside the sampling loop (:mod:`gpt2guard.watermark`); its
        key must be for ``loaded``'s tokenizer. Recorded in each result.

    Returns
    -------
    list of GenerationResult
        In the order of ``prompts``.

    Raises
    ------
    GuardError
        For mismatched list lengths, a limit < 1, a prompt plus limit longer than the
        context window, a token id outside the vocabulary, or a bad seed.
    """
    from gpt2guard.family.linear import backend_for, kernel_provenance
    from gpt2guard.generator.forward import check_gpt2
    from gpt2guard.generator.seeding import check_seed

    model, tokenizer = loaded.model, loaded.tokenizer
    check_gpt2(model)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GuardError(f"batch size must be an integer >= 1, not {batch_size!r}")
    # the backend that runs this work faster here: products of about a batch's rows
    per_pass = max(1, min(batch_size, len(prompts)))
    backend = backend_for(linear, model, rows=per_pass if min_rows == 1 else max(per_pass, 2))
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise GuardError("the tokenizer has no <|endoftext|> token (eos_token_id is None)")
    n = len(prompts)
    if isinstance(seeds, int) or len(seeds) != n:
        raise GuardError(f"one seed per prompt is needed: {n} prompts, "
                         f"{'one seed' if isinstance(seeds, int) else len(seeds)} seed(s)")
    limits = _as_list(max_new_tokens, n, "lengths")
    configs = _as_list(configs, n, "sampling configs")
    seeds = [check_seed(s) for s in seeds]
    vocab = model.config.vocab_size
    window = loaded.n_positions
    rows = []
    for i, (prompt, limit, cfg) in enumerate(zip(prompts, limits, configs)):
        if not isinstance(cfg, SamplingConfig):
            raise GuardError(f"record {i}: sampling config must be a SamplingConfig, not {type(cfg).__name__}")
        limit = _as_int(limit)
        if limit is None or limit < 1:
            raise GuardError(f"record {i}: max_new_tokens must be an integer >= 1, not {limits[i]!r}")
        limits[i] = limit
        prompt = [_as_int(t) for t in prompt] or [eos_id]
        if None in prompt:
            raise GuardError(f"record {i}: prompt token ids must be integers")
        bad = [t for t in prompt if not 0 <= t < vocab]
        if bad:
            raise GuardError(f"record {i}: token id {bad[0]} is outside the vocabulary of {vocab} tokens")
        if len(prompt) + limit > window:
            raise GuardError(f"record {i}: a {len(prompt)}-token prompt plus {limit} new tokens exceeds the "
                             f"context window of {window} tokens")
        rows.append(prompt)
    top_ps = [cfg.draw_top_p(s) for cfg, s in zip(configs, seeds)]
    marker, marked = None, None
    if watermark is not None:
        from gpt2guard.watermark.bias import WatermarkBias

        marker, marked = WatermarkBias(watermark, vocab, tokenizer), watermark.provenance()

    kernels = kernel_provenance(backend) if model.device.type == "cpu" else {"device": str(model.device)}
    results: list[GenerationResult | None] = [None] * n
    for batch in plan_batches(rows, configs, batch_size):
        cfg = configs[batch[0]]
        outs = sample_batch(model, [rows[i] for i in batch], [limits[i] for i in batch], cfg,
                            [seeds[i] for i in batch], eos_id=eos_id, stop_at_eos=stop_at_eos,
                            return_logprobs=return_logprobs, min_rows=min_rows, linear=backend,
                            top_p=[top_ps[i] for i in batch] if cfg.method == "nucleus" else None,
                            watermark=marker)
        for i, o in zip(batch, outs):
            text = tokenizer.decode(o["token_ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            results[i] = GenerationResult(o["token_ids"], text, o["stop_reason"], o["ended"], o["logprobs"],
                                          seeds[i], top_ps[i], cfg, rows[i], limits[i], backend, o["min_rows"],
                                          kernels, marked)
        if progress is not None:
            progress(len(batch))
    return results
