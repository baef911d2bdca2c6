"""The YAML front matter of a model card: Hugging Face metadata plus a ``gpt2guard`` block.

Hugging Face reads ``license``, ``language``, ``library_name``, ``tags``, ``pipeline_tag``
and ``model-index`` (evaluation results: one entry per model, each with ``results`` made of a
``task`` {type, name}, a ``dataset`` {type, name, split} and ``metrics`` [{type, value, name,
verified}]). The ``gpt2guard`` block records the run, stage, decision and the evaluation's
sha256, so a card can be traced back to the evaluation it was made from.
"""

from __future__ import annotations

import yaml

from gpt2guard.paths import sha256_json
from gpt2guard.release.card_format import fpr_label, get, is_num, tpr_key

TAGS = ["gpt2", "text-generation", "gpt2guard", "staged-release"]
DEFAULT_LICENSE = "mit"


def model_name(evaluation: dict) -> str:
    """``<family>-<size>`` of an evaluation."""
    family = get(evaluation, "model", "family", default="unknown")
    return f"{family}-{get(evaluation, 'model', 'size', default='unknown')}"


def evaluation_sha256(evaluation: dict) -> str:
    """The recorded ``evaluation_sha256``, or the canonical hash of the dict without that key."""
    return evaluation.get("evaluation_sha256") or sha256_json(
        {k: v for k, v in evaluation.items() if k != "evaluation_sha256"})


def detector_name(evaluation: dict) -> str:
    """A readable name of the released detector, e.g. ``gpt2guard logistic detector trained on small``."""
    kind = get(evaluation, "detector", "kind", default="unknown")
    trained = get(evaluation, "detector", "trained_on", default=[])
    return f"gpt2guard {kind} detector" + (f" trained on {', '.join(map(str, trained))}" if trained else "")


def _metric(kind: str, name: str, value) -> dict:
    return {"type": kind, "value": round(float(value), 6), "name": name, "verified": False}


def _perplexity_result(evaluation: dict) -> dict | None:
    size = get(evaluation, "model", "size")
    ppl = get(evaluation, "perplexity", size, "ppl")
    if not is_num(ppl):
        return None
    human = get(evaluation, "data", "human", "set", default="human")
    dataset = {"type": f"gpt2guard/{human}", "name": f"{human} human text"}
    split = get(evaluation, "perplexity", size, "split")
    if split:
        dataset["split"] = str(split)
    return {"task": {"type": "text-generation", "name": "Text generation"}, "dataset": dataset,
            "metrics": [_metric("perplexity", "Perplexity", ppl)]}


def _detection_result(evaluation: dict) -> dict | None:
    overall = get(evaluation, "detection", "overall", default={})
    key = tpr_key(get(evaluation, "detector", "fpr", default=0.01))
    metrics = []
    if is_num(overall.get("auroc")):
        metrics.append(_metric("roc_auc", "AUROC", overall["auroc"]))
    if is_num(overall.get(key)):
        metrics.append(_metric(f"tpr_at_{key.split('@')[1]}_fpr", f"TPR@{fpr_label(key)}FPR", overall[key]))
    if not metrics:
        return None
    size, family = get(evaluation, "model", "size"), get(evaluation, "model", "family")
    human = get(evaluation, "data", "human", "set", default="human")
    dataset = {"type": f"gpt2guard/{family}-{size}-samples",
               "name": f"{family} {size} samples and {human} human text"}
    splits = {s.get("split") for s in get(evaluation, "data", "samples", default=[]) if isinstance(s, dict)}
    if len(splits) == 1 and None not in splits:
        dataset["split"] = str(splits.pop())
    return {"task": {"type": "text-classification", "name": f"Machine-text detection: {detector_name(evaluation)}"},
            "dataset": dataset, "metrics": metrics}


def model_index_entry(evaluation: dict) -> dict:
    """One ``model-index`` entry: perplexity (text-generation) and detection (text-classification)."""
    results = [r for r in (_perplexity_result(evaluation), _detection_result(evaluation)) if r]
    return {"name": model_name(evaluation), "results": results}


def _stage_block(evaluation: dict) -> dict:
    return {"index": get(evaluation, "stage", "index"), "name": get(evaluation, "stage", "name"),
            "date": get(evaluation, "stage", "date"), "decision": get(evaluation, "stage", "decision"),
            "tier": get(evaluation, "stage", "tier"), "evaluation_sha256": evaluation_sha256(evaluation)}


def _run_block(evaluation: dict) -> dict:
    return {k: get(evaluation, "run", k) for k in ("plan", "scenario", "plan_sha256", "seed")}


def _hf_fields(license: str) -> dict:
    return {"license": license, "language": "en", "library_name": "transformers", "tags": list(TAGS),
            "pipeline_tag": "text-generation"}


def card_metadata(evaluation: dict, license: str | None = None) -> dict:
    """The front matter of one size's card, as a dict."""
    stage = _stage_block(evaluation)
    block = {"card": "model", "schema": evaluation.get("schema"), "run": _run_block(evaluation),
             "stage": {k: stage[k] for k in ("index", "name", "date")}, "model": model_name(evaluation),
             "decision": stage["decision"], "tier": stage["tier"], "evaluation_sha256": stage["evaluation_sha256"]}
    return {**_hf_fields(license or get(evaluation, "model", "license", default=DEFAULT_LICENSE)),
            "model-index": [model_index_entry(evaluation)], "gpt2guard": block}


def family_metadata(evaluations: list[dict], license: str | None = None) -> dict:
    """The front matter of a family card: one ``model-index`` entry per stage's size."""
    first = evaluations[0] if evaluations else {}
    block = {"card": "family", "schema": first.get("schema"), "run": _run_block(first),
             "family": get(first, "model", "family"),
             "stages": [{**_stage_block(e), "model": model_name(e)} for e in evaluations]}
    return {**_hf_fields(license or get(first, "model", "license", default=DEFAULT_LICENSE)),
            "model-index": [model_index_entry(e) for e in evaluations], "gpt2guard": block}


def front_matter(meta: dict) -> str:
    """``---`` fenced YAML, keys in the given order."""
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def assemble(metadata: dict, title: str, banner: list[str], body) -> str:
    """A card's Markdown: front matter, title, banner, then each of Mitchell et al.'s sections
    in order, ``body(section)`` giving its lines."""
    from gpt2guard.release.card_format import SECTIONS

    lines = [front_matter(metadata), f"# {title}", ""] + list(banner)
    for section in SECTIONS:
        lines += [f"## {section}", ""] + list(body(section))
    return "\n".join(lines).rstrip("\n") + "\n"
