"""Dataset cards: a datasheet-style Markdown file written next to every set.

The card follows the questions of "Datasheets for Datasets" (Gebru et al.): motivation,
composition, collection process (with the generation config of a machine set),
preprocessing, uses, and the splits with their counts and digests. Everything in it is
read from the set itself (manifests and records), so writing it again gives the same card.
"""

from __future__ import annotations

import json
from pathlib import Path

from gpt2guard.datasets.names import card_file
from gpt2guard.datasets.sets import read_manifest
from gpt2guard.datasets.stats import set_stats
from gpt2guard.paths import atomic_write_text

DEFAULT_USES = (
    "Training and evaluating detectors of machine-generated text, and measuring how text from the model "
    "sizes of a family differs from human text. Compare human and machine sets only after matching their "
    "token-length distributions: length alone moves detection accuracy by about 15 points on OpenAI's data.")
MACHINE_CAVEAT = (
    " Machine text here was sampled without any content filter and may be wrong, biased or offensive; it must "
    "not be presented as human writing or as fact.")


def _fmt_len(s: dict | None) -> str:
    return "-" if not s else f"{s['mean']:.0f} / {s['median']:.0f} / {s['p90']:.0f}"


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


def _json_block(obj) -> list[str]:
    return ["```json", json.dumps(obj, indent=2, sort_keys=True, default=str), "```"]


def render_card(stats: dict, manifests: dict, config: dict | None = None, motivation: str | None = None,
                uses: str | None = None) -> str:
    """The Markdown of a card from :func:`~gpt2guard.datasets.stats.set_stats` output and
    the manifests (``split -> manifest or None``)."""
    name, splits = stats["set"], stats["splits"]
    metas = {s: (m or {}).get("meta") or {} for s, m in manifests.items()}
    config = config if config is not None else next((m["config"] for m in metas.values() if m.get("config")), None)
    motivation = motivation or next((m["motivation"] for m in metas.values() if m.get("motivation")), None)
    lines = [f"# Dataset card: {name}", ""]
    lines += ["## Motivation", "", motivation or (
        f"`{name}` is a set of documents in the format of OpenAI's gpt-2-output-dataset (one JSON object per "
        "line with `id`, `ended`, `length` in tokens and `text`), made with gpt2guard to study text from a "
        "GPT-2 family against human text."), ""]

    lines += ["## Composition", "",
              "| split | records | labels | tokens mean / median / p90 | sources | flagged | ended |",
              "|---|---:|---|---|---:|---|---|"]
    for split, st in splits.items():
        lines.append(f"| {split} | {st['records']} | {_counts(st['labels'])} | {_fmt_len(st['length'])} | "
                     f"{st['sources']['distinct']} | {_counts(st['flags'])} | {_counts(st['ended'])} |")
    lines += ["", "Each record has `id`, `ended` (the text reached its natural end), `length` (tokens) and `text`; "
              "gpt2guard adds `label` (human or machine), `source` (where a human document came from), "
              "`provenance` (how a machine document was made), and `flags` (`empty`, `repetition`: flagged "
              "records are kept, never hidden).", ""]
    missing = {s: st["missing_length"] for s, st in splits.items() if st["missing_length"]}
    if missing:
        lines += [f"Records without a token length: {_counts(missing)}.", ""]

    lines += ["## Collection process", ""]
    facts: dict[str, list[str]] = {}  # one line per fact, naming every split it holds for
    for split, meta in metas.items():
        tok = meta.get("tokenizer")
        if tok:
            kept = " where the source had none (other lengths kept from the source)" \
                if tok.get("kept_source_lengths") else ""
            facts.setdefault(f"lengths counted with the `{tok.get('family')}` tokenizer (vocabulary "
                             f"{tok.get('vocab_size')}, sha256 `{tok.get('sha256', '')[:16]}`){kept}.",
                             []).append(split)
        if meta.get("source"):
            facts.setdefault(f"source `{json.dumps(meta['source'], sort_keys=True)}`.", []).append(split)
        for imp in meta.get("imports") or []:
            src = imp["source"]
            facts.setdefault(f"imported from `{src.get('path')}` ({imp['format']}, {src.get('bytes')} bytes): "
                             f"{imp['written']} records written, {imp['read']['lines']} lines read.",
                             []).append(split)
    for fact, where in facts.items():
        lines.append(f"- {', '.join(f'`{s}`' for s in where)}: {fact}")
    if not any(metas.values()):
        lines.append("- Files without a gpt2guard manifest (for instance OpenAI's own); nothing is known of "
                     "how they were collected beyond their contents.")
    if config:
        lines += ["", "Generation config:", ""] + _json_block(config)
    lines.append("")

    lines += ["## Preprocessing", ""]
    for split, st in splits.items():
        skipped = st.get("skipped") or {}
        lines.append(f"- `{split}`: skipped input lines: {_counts(skipped)}" +
                     (f" ({sum(skipped.values())} in all)." if skipped else "."))
    steps = {json.dumps(st, sort_keys=True): st for meta in metas.values() for st in meta.get("steps") or []}
    for step in steps.values():
        lines.append(f"- step `{step.get('op')}`: `{json.dumps({k: v for k, v in step.items() if k != 'op'}, sort_keys=True)}`")
    lines += ["- Degenerate texts are flagged, not removed; token lengths are counted in batches with the "
              "tokenizer named above.", ""]

    has_machine = any(st["labels"].get("machine") for st in splits.values())
    lines += ["## Uses", "", uses or DEFAULT_USES + (MACHINE_CAVEAT if has_machine else ""), ""]

    lines += ["## Splits", "", "| split | records | files | sha256 |", "|---|---:|---|---|"]
    for split, st in splits.items():
        m = manifests.get(split)
        files = ", ".join(f"`{s['file']}`" for s in m["shards"]) if m else "(no manifest)"
        digests = ", ".join(s["sha256"][:16] for s in m["shards"]) if m else "-"
        state = "" if st["complete"] else " (incomplete)"
        lines.append(f"| {split}{state} | {st['records']} | {files} | {digests} |")
    leak = stats["leakage"]
    lines += ["", ("No source group appears in more than one of train, valid and test." if not leak["shared_groups"]
                   else f"**{leak['shared_groups']} source groups appear in more than one of train, valid and test** "
                   "(leakage), e.g. "
                   + ", ".join(f"`{e['group']}` in {'/'.join(e['splits'])}" for e in leak["examples"][:3]) + "."),
              ""]
    return "\n".join(lines)


def write_card(out_dir, set_name: str, config: dict | None = None, *, motivation: str | None = None,
               uses: str | None = None, splits: list[str] | None = None) -> Path:
    """Write ``<out_dir>/<set>.card.md`` for a set, atomically.

    Parameters
    ----------
    out_dir, set_name
        The set; every split found is described (or ``splits``).
    config : dict, optional
        The generation config of a machine set (model, sizes, sampling parameters, seed,
        prompts...). Defaults to ``meta["config"]`` of the set's manifests.
    motivation, uses : str, optional
        Replace the default Motivation and Uses paragraphs; the motivation defaults to
        ``meta["motivation"]`` of the manifests.

    Returns
    -------
    pathlib.Path
        The card's path.
    """
    stats = set_stats(out_dir, set_name, splits)
    manifests = {s: read_manifest(out_dir, set_name, s) for s in stats["splits"]}
    path = Path(out_dir) / card_file(set_name)
    atomic_write_text(path, render_card(stats, manifests, config, motivation, uses))
    return path
