"""Prompts for conditional generation, each paired with the human continuation it cut off.

A prompt is the first ``n_tokens`` tokens of a held-out human document; the rest of the
document is kept as the paired human sample, so a machine continuation of the prompt can
be compared with what the human wrote next. Both records take the document's id (their
link), its source (so a split by source keeps document, prompt and continuations
together), and ``prompt + continuation == document``. The continuation names its prompt in
``provenance["prompt_id"]`` and ``provenance["prompt_source"]``, as machine continuations do.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import derived_meta, open_set, set_files
from gpt2guard.datasets.tokens import batched, count_tokens, cut_at_tokens, resolve_tokenizer, tokenizer_info
from gpt2guard.datasets.staging import StagedSets
from gpt2guard.errors import GuardError


def _pair(doc: Record, head: str, tail: str, n_head: int, n_tail: int, n_tokens: int) -> tuple[Record, Record]:
    source = doc.source if doc.source is not None else str(doc.id)
    prompt = Record(id=doc.id, text=head, length=n_head, ended=False, label="human", source=source,
                    provenance={"doc_id": doc.id, "prompt_tokens": n_tokens, "role": "prompt"})
    continuation = Record(id=doc.id, text=tail, length=n_tail, ended=doc.ended, label="human", source=source,
                          provenance={"doc_id": doc.id, "prompt_id": doc.id, "prompt_source": source,
                                      "prompt_tokens": n_tokens, "role": "human_continuation"})
    return prompt, continuation


def make_prompt(doc: Record, n_tokens: int, tokenizer) -> tuple[Record, Record]:
    """Cut one document into ``(prompt, human continuation)`` after ``n_tokens`` tokens.

    Raises GuardError when the document has no more than ``n_tokens`` tokens.
    """
    pairs = list(make_prompts([doc], n_tokens, tokenizer, min_continuation=1))
    if not pairs:
        raise GuardError(f"document {doc.id!r} is too short for a {n_tokens}-token prompt")
    return pairs[0]


def _cut_docs(docs: Iterable[Record], n_tokens: int, tokenizer, min_continuation: int,
              batch_size: int) -> Iterator[tuple[Record, tuple[Record, Record] | None, str | None]]:
    """``(doc, pair, None)`` or ``(doc, None, reason)`` for every document, in order."""
    for chunk in batched(docs, batch_size):
        totals = count_tokens([d.text for d in chunk], tokenizer)
        keep = [d for d, n in zip(chunk, totals) if not d.flags and n >= n_tokens + min_continuation]
        cuts = cut_at_tokens([d.text for d in keep], [n_tokens] * len(keep), tokenizer)
        counts = count_tokens([c for cut in cuts for c in cut], tokenizer)
        pairs = {id(d): _pair(d, head, tail, counts[2 * i], counts[2 * i + 1], n_tokens)
                 for i, (d, (head, tail)) in enumerate(zip(keep, cuts))}
        for doc in chunk:
            pair = pairs.get(id(doc))
            yield doc, pair, None if pair else ("flagged" if doc.flags else "too_short")


def make_prompts(docs: Iterable[Record], n_tokens: int, tokenizer, min_continuation: int = 16,
                 skipped: Counter | None = None, batch_size: int = 256) -> Iterator[tuple[Record, Record]]:
    """Stream ``(prompt, continuation)`` pairs from documents, tokenised in batches.

    Parameters
    ----------
    docs : iterable of Record
        Human documents, ideally of a held-out split.
    n_tokens : int
        Prompt length in tokens (a prompt ends at a character boundary, so it may hold a
        token more when a character spans two byte tokens; its ``length`` is exact).
    min_continuation : int
        Documents whose continuation would be shorter than this many tokens are skipped.
    skipped : Counter, optional
        Counts skipped documents by reason: ``too_short``, ``flagged`` (empty or looping).
    """
    if n_tokens < 1:
        raise GuardError("a prompt needs at least one token")
    skipped = skipped if skipped is not None else Counter()
    for _, pair, reason in _cut_docs(docs, n_tokens, tokenizer, min_continuation, batch_size):
        if pair:
            yield pair
        else:
            skipped[reason] += 1


def prompts_set(directory, set_name: str, split: str = "test", out_dir=None, *, n_tokens: int, tokenizer=None,
                family: str = "nano", min_continuation: int = 16, limit: int | None = None,
                prompt_set: str | None = None, human_set: str | None = None, shard_size: int | None = None,
                card: bool = True) -> dict:
    """Write a prompt set and its paired human-continuation set from a human set.

    Parameters
    ----------
    directory, set_name, split
        The human documents (default split ``test``: held out from model training).
    out_dir : path, optional
        Where the two sets go; defaults to ``directory``.
    n_tokens, min_continuation
        As for :func:`make_prompts`.
    tokenizer, family
        Tokens are counted with ``tokenizer``, by default model family ``family``'s.
    limit : int, optional
        Stop after this many prompts (the first documents in file order).
    prompt_set, human_set : str, optional
        Output set names; default ``<set>-prompts`` and ``<set>-continuations``.

    Returns
    -------
    dict
        The two sets, records written, and documents skipped by reason.
    """
    out_dir = Path(out_dir or directory)
    prompt_set = prompt_set or f"{set_name}-prompts"
    human_set = human_set or f"{set_name}-continuations"
    if len({set_name, prompt_set, human_set}) < 3 and out_dir.resolve() == Path(directory).resolve():
        raise GuardError("the prompt set, the continuation set and the input set need three different names")
    if n_tokens < 1:
        raise GuardError("a prompt needs at least one token")
    set_files(directory, set_name, split)  # the input exists, before a family is loaded (or built)
    tokenizer = resolve_tokenizer(tokenizer, family)
    step = {"op": "prompts", "input": f"{set_name}.{split}", "prompt_tokens": n_tokens,
            "min_continuation": min_continuation, "limit": limit}
    meta = derived_meta(directory, set_name, split, step)
    meta["tokenizer"] = tokenizer_info(tokenizer, family)
    skipped, n = Counter(), 0
    with StagedSets(out_dir, {(prompt_set, split): meta, (human_set, split): meta}, shard_size) as staged:
        pw, hw = staged.writers[(prompt_set, split)], staged.writers[(human_set, split)]
        for _, pair, reason in _cut_docs(open_set(directory, set_name, split), n_tokens, tokenizer,
                                         min_continuation, 256):
            if limit is not None and n >= limit:
                break
            if pair is None:
                skipped[reason] += 1
                continue
            n += 1
            prompt, cont = pair
            if prompt.id not in pw.existing_ids:
                pw.write(prompt)
            if cont.id not in hw.existing_ids:
                hw.write(cont)
        for w in (pw, hw):
            w.meta["steps"][-1]["result"] = {"pairs": n, "skipped": dict(skipped)}
    if card:
        from gpt2guard.datasets.card import write_card

        write_card(out_dir, prompt_set)
        write_card(out_dir, human_set)
    return {"dir": str(out_dir), "prompt_set": prompt_set, "human_set": human_set, "split": split, "pairs": n,
            "skipped": dict(skipped)}
