"""The batched sampling loop: a model's forward pass, its key/value cache, one token a step.

:func:`generate_tokens` is the entry point: it checks its input, groups records into
batches (by sampling method, then by prompt length so that little padding is needed),
runs :func:`sample_batch` on each and returns one :class:`GenerationResult` per record,
in input order.

Reproducibility. A record is a function of its provenance: the model, its prompt ids, its
length limit, its sampling config and its seed. The seed drives a counter-based stream
of uniform numbers (:mod:`gpt2guard.generator.seeding`), one per step, and each token is
drawn by inverse-CDF over token ids (:func:`~gpt2guard.generator.sampling.sample_inverse_cdf`),
so a row never reads another row's random numbers and batch composition cannot shift
them. What batch composition can change is the float arithmetic: on CPU in float32 the
logits of a row differ by about 1e-6 between batch sizes and paddings (matrix-multiply
blocking depends on the batch shape). A token then changes only if the row's uniform
falls within that distance of a boundary of its CDF (or a top-k / nucleus cut falls
between two logits closer than that), roughly a 1e-6 chance per token: a 1000-token
record regenerated in another batch matches token for token with probability about
0.999, and from the first differing token on it is a different (equally valid) sample.
The tests assert token identity between a batch of 8 and each record alone.

Length and positions. Prompts are left-padded to the longest in the batch, so every
row's next token sits in the same column; the attention mask hides the padding and
position ids count from each row's first real token, so a padded row computes what it
would alone. Rows stop at ``<|endoftext|>`` (unless told to continue) or at their own
``max_new_tokens``; finished rows leave the batch (their cache rows are dropped), so a
batch's cost follows its live rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from gpt2guard.errors import GuardError
from gpt2guard.generator.sampling import SamplingConfig

STOP_REASONS = ("eos", "length")


def last_logits_fn(model):
    """A function computing the next-token logits of every row: ``(input_ids,
    attention_mask, position_ids, cache) -> (b, V)`` float32, last position only.

    For GPT-2 it runs the model's transformer body, then the (tied) output embedding as
    ``W @ h.T``: the same product as ``model.lm_head(h)``, in the layout CPU BLAS runs
    fastest for a few rows against 50257 (about 20% faster than ``h @ W.T`` at batch 8 on
    the 124M model, the largest single matrix of a step). Other models go through their
    own forward with ``logits_to_keep=1``.
    """
    import torch

    head = model.get_output_embeddings()
    body = getattr(model, model.base_model_prefix, None)
    if (model.config.model_type == "gpt2" and isinstance(head, torch.nn.Linear) and head.bias is None
            and body is not None):
        weight = head.weight                                                    # (V, d)

        def gpt2_logits(input_ids, attention_mask, position_ids, cache):
            h = body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                     past_key_values=cache, use_cache=True).last_hidden_state[:, -1]  # (b, d)
            return torch.mm(weight, h.T).T.float().contiguous()                 # (b, V)

        return gpt2_logits

    def generic_logits(input_ids, attention_mask, position_ids, cache):
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1].float()                                        # (b, V)

    return generic_logits


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

    @property
    def length(self) -> int:
        """Generated tokens (OpenAI's ``length``)."""
        return len(self.token_ids)

    def provenance(self) -> dict[str, Any]:
        """What regenerating this record needs besides the model: JSON-ready."""
        return {"sampling": self.sampling.to_dict(), "seed": self.seed, "top_p": self.top_p,
                "max_new_tokens": self.max_new_tokens, "prompt_length": len(self.prompt_ids),
                "stop_reason": self.stop_reason}


def sample_batch(model, prompts: Sequence[Sequence[int]], max_new_tokens: Sequence[int], cfg: SamplingConfig,
                 seeds: Sequence[int], *, eos_id: int, stop_at_eos: bool = True, return_logprobs: bool = False,
                 top_p: Sequence[float] | None = None, cache: str = "preallocated") -> list[dict]:
    """Sample continuations of one batch of prompts with one sampling method.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM taking ``input_ids, attention_mask, position_ids, past_key_values``.
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
    cache : str
        ``"preallocated"`` (:mod:`~gpt2guard.generator.kvcache`) or ``"dynamic"``
        (transformers' ``DynamicCache``, kept to measure against).

    Returns
    -------
    list of dict
        Per row: ``token_ids``, ``stop_reason``, ``ended``, ``logprobs`` (or None).
    """
    import numpy as np
    import torch

    from gpt2guard.generator.draw import draw_tokens
    from gpt2guard.generator.kvcache import preallocated_cache, select_rows
    from gpt2guard.generator.seeding import uniforms

    B = len(prompts)
    device = model.device
    lengths = torch.tensor([len(p) for p in prompts], device=device)             # (B,) prompt lengths
    limits = torch.tensor(list(max_new_tokens), device=device)                   # (B,) new tokens allowed
    T0, N = int(lengths.max()), int(limits.max())
    pad = T0 - lengths                                                           # (B,) left padding per row

    # Left-pad the prompts: every row's last prompt token sits in column T0 - 1.
    ids = torch.full((B, T0), eos_id, dtype=torch.long)                          # (B, T0)
    for i, p in enumerate(prompts):
        ids[i, T0 - len(p):] = torch.as_tensor(list(p), dtype=torch.long)
    ids = ids.to(device)
    # One mask for the whole run, sliced each step: False on padding, True on every real
    # and every future token. None when no row is padded (attention needs no mask then).
    mask = torch.arange(T0 + N, device=device)[None, :] >= pad[:, None]         # (B, T0 + N)
    padded = bool((pad > 0).any())
    # Positions count from each row's first real token; padding gets 0 (it is masked).
    positions = (torch.arange(T0, device=device)[None, :] - pad[:, None]).clamp(min=0)  # (B, T0)

    # Each row's uniform numbers, one per step, from its own seed only.
    u = torch.from_numpy(np.stack([np.pad(uniforms(s, int(n)), (0, N - int(n)))
                                   for s, n in zip(seeds, max_new_tokens)])).to(device)  # (B, N) float64
    p_rows = None
    if cfg.method == "nucleus":
        p_rows = torch.tensor([cfg.top_p if top_p is None else top_p[i] for i in range(B)],
                              dtype=torch.float64, device=device)                # (B,)

    tokens = torch.full((B, N), -1, dtype=torch.long, device=device)             # (B, N) generated ids
    logps = torch.zeros((B, N), dtype=torch.float32, device=device) if return_logprobs else None
    n_kept = [0] * B                                                             # tokens each row keeps
    stop = [""] * B
    rows = torch.arange(B, device=device)     # original index of each live row, in batch order
    if cache == "preallocated":
        kv = preallocated_cache(model.config.num_hidden_layers, T0 + N)
    elif cache == "dynamic":
        from transformers import DynamicCache

        kv = DynamicCache()
    else:
        raise ValueError(f"unknown cache {cache!r}")

    next_logits = last_logits_fn(model)

    with torch.inference_mode():
        # Prefill: the whole prompt at once; only the last position's logits are needed.
        logits = next_logits(ids, mask[:, :T0] if padded else None, positions, kv)  # (b, V)
        for t in range(N):
            # Draw each live row's token t from its own uniform number.
            nxt = draw_tokens(logits, cfg, u[rows, t], None if p_rows is None else p_rows[rows])  # (b,)
            if bool((nxt >= logits.shape[-1]).any()):
                # only NaN logits make the inverse CDF run off the vocabulary
                raise GuardError("the model produced NaN logits; half precision may overflow, try float32")
            tokens[rows, t] = nxt
            if logps is not None:
                # Scored under the raw model: temperature 1, no truncation.
                logps[rows, t] = torch.log_softmax(logits, dim=-1).gather(-1, nxt[:, None]).squeeze(-1)

            # Rows stop at <|endoftext|> (if asked) or at their own length limit.
            at_eos = nxt == eos_id                                               # (b,)
            done = t + 1 >= limits[rows]
            if stop_at_eos:
                done = done | at_eos
            if bool(done.any()):
                for r, e in zip(rows[done].tolist(), at_eos[done].tolist()):
                    eos_stop = stop_at_eos and e
                    stop[r] = "eos" if eos_stop else "length"
                    n_kept[r] = t if eos_stop else t + 1
                live = (~done).nonzero().squeeze(-1)                             # (b',) batch positions kept
                if live.numel() == 0:
                    break
                # Finished rows leave the batch: fewer rows through every later step.
                rows, nxt = rows[live], nxt[live]
                if cache == "preallocated":
                    select_rows(kv, live)
                else:
                    kv.batch_select_indices(live)
                padded = bool((pad[rows] > 0).any())

            # Feed token t: it sits in column T0 + t, at position (prompt length + t) of its row.
            logits = next_logits(nxt[:, None], mask[rows, :T0 + t + 1] if padded else None,
                                 (lengths[rows] + t)[:, None], kv)               # (b, V)

    tokens = tokens.cpu()
    results = []
    for i in range(B):
        row = tokens[i, :n_kept[i]].tolist()
        ended = stop[i] == "eos" if stop_at_eos else bool((tokens[i, :n_kept[i]] == eos_id).any())
        results.append({"token_ids": row, "stop_reason": stop[i], "ended": ended,
                        "logprobs": logps[i, :n_kept[i]].tolist() if logps is not None else None})
    return results


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
                    progress: Callable[[int], None] | None = None) -> list[GenerationResult]:
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
    from gpt2guard.generator.seeding import check_seed

    model, tokenizer = loaded.model, loaded.tokenizer
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise GuardError("the tokenizer has no <|endoftext|> token (eos_token_id is None)")
    n = len(prompts)
    if isinstance(seeds, int) or len(seeds) != n:
        raise GuardError(f"one seed per prompt is needed: {n} prompts, "
                         f"{'one seed' if isinstance(seeds, int) else len(seeds)} seed(s)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise GuardError(f"batch size must be an integer >= 1, not {batch_size!r}")
    limits = _as_list(max_new_tokens, n, "lengths")
    configs = _as_list(configs, n, "sampling configs")
    seeds = [check_seed(s) for s in seeds]
    vocab = model.config.vocab_size
    window = loaded.n_positions
    rows = []
    for i, (prompt, limit, cfg) in enumerate(zip(prompts, limits, configs)):
        if not isinstance(cfg, SamplingConfig):
            raise GuardError(f"record {i}: sampling config must be a SamplingConfig, not {type(cfg).__name__}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise GuardError(f"record {i}: max_new_tokens must be an integer >= 1, not {limit!r}")
        prompt = [int(t) for t in prompt] or [eos_id]
        bad = [t for t in prompt if not 0 <= t < vocab]
        if bad:
            raise GuardError(f"record {i}: token id {bad[0]} is outside the vocabulary of {vocab} tokens")
        if len(prompt) + limit > window:
            raise GuardError(f"record {i}: a {len(prompt)}-token prompt plus {limit} new tokens exceeds the "
                             f"context window of {window} tokens")
        rows.append(prompt)
    top_ps = [cfg.draw_top_p(s) for cfg, s in zip(configs, seeds)]

    results: list[GenerationResult | None] = [None] * n
    for batch in plan_batches(rows, configs, batch_size):
        cfg = configs[batch[0]]
        outs = sample_batch(model, [rows[i] for i in batch], [limits[i] for i in batch], cfg,
                            [seeds[i] for i in batch], eos_id=eos_id, stop_at_eos=stop_at_eos,
                            return_logprobs=return_logprobs,
                            top_p=[top_ps[i] for i in batch] if cfg.method == "nucleus" else None)
        for i, o in zip(batch, outs):
            text = tokenizer.decode(o["token_ids"], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            results[i] = GenerationResult(o["token_ids"], text, o["stop_reason"], o["ended"], o["logprobs"],
                                          seeds[i], top_ps[i], cfg, rows[i], limits[i])
        if progress is not None:
            progress(len(batch))
    return results
