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
from gpt2guard.release.card_format import fpr_label, get, is_num
from gpt2guard.release.card_quant import detector_fpr

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


FLAGGED = "flagged_at_calibrated_threshold"
"""The model-index metric type of a flagged rate (see :mod:`gpt2guard.release.card_detect`)."""


def _metric(kind: str, name: str, value) -> dict:
    return {"type": kind, "value": round(float(value), 6), "name": name, "verified": False}


def flagged_name(evaluation: dict) -> str:
    """``Flagged at the calibrated 1% FPR threshold``."""
    return f"Flagged at the calibrated {fpr_label(detector_fpr(evaluation))} FPR threshold"


def _perplexity_result(evaluation: dict) -> dict | None:
    size = get(evaluation, "model", "size")
    ppl = get(evaluation, "perplexity", size, "ppl")
    if not is_num(ppl):
        return None
    human = get(evaluation, "data", "human", default={})
    name = human.get("set") or "human"
    dataset = {"type": f"gpt2guard/{name}", "name": f"{name} human text (test split)",
               "config": model_name(evaluation), "split": str(get(evaluation, "perplexity", size, "split") or "test")}
    if human.get("sha256"):
        dataset["revision"] = str(human["sha256"])
    dataset["args"] = {"size": str(size)}
    return {"task": {"type": "text-generation", "name": f"Text generation: {model_name(evaluation)}"},
            "dataset": dataset, "metrics": [_metric("perplexity", "Perplexity", ppl)]}


def _detection_results(evaluation: dict) -> list[dict]:
    from gpt2guard.release.card_detect import set_rows

    human = get(evaluation, "data", "human", "set", default="human")
    out = []
    for row in set_rows(evaluation):
        metrics = []
        if is_num(row["auroc"]):
            metrics.append(_metric("roc_auc", "AUROC", row["auroc"]))
        if is_num(row["flagged"]):
            metrics.append(_metric(FLAGGED, flagged_name(evaluation), row["flagged"]))
        if not metrics or not row["set"]:
            continue
        dataset = {"type": f"gpt2guard/{row['set']}",
                   "name": f"{row['set']} ({row['split']} split) against {human} human text (test split)",
                   "config": model_name(evaluation), "split": str(row["split"])}
        if row["sha256"]:
            dataset["revision"] = str(row["sha256"])
        dataset["args"] = {"size": str(get(evaluation, "model", "size")), "sampling": row["sampling"]}
        out.append({"task": {"type": "text-classification",
                             "name": f"Machine-text detection: {detector_name(evaluation)}"},
                    "dataset": dataset, "metrics": metrics})
    return out


def model_results(evaluation: dict) -> list[dict]:
    """The ``model-index`` results of one size: perplexity on the human test text
    (text-generation), and per sample set AUROC and the flagged rate (text-classification).

    Each result's dataset names its set (``type``), split and digest (``revision``), and the
    model it belongs to (``config``, ``args.size``), so results stay attached to their size
    when several sizes share one model-index entry.
    """
    return [r for r in [_perplexity_result(evaluation)] + _detection_results(evaluation) if r]


def model_index_entry(evaluation: dict) -> dict:
    """One ``model-index`` entry: the size's name and its :func:`model_results`."""
    return {"name": model_name(evaluation), "results": model_results(evaluation)}


def released(evaluation: dict) -> bool:
    """Whether the evaluation's stage released its sizes."""
    return get(evaluation, "stage", "decision") == "release"


def access_tier(evaluation: dict):
    """The access tier a size was released to; None for a size that was not released."""
    return get(evaluation, "stage", "tier") if released(evaluation) else None


def _stage_block(evaluation: dict) -> dict:
    return {"index": get(evaluation, "stage", "index"), "name": get(evaluation, "stage", "name"),
            "date": get(evaluation, "stage", "date"), "decision": get(evaluation, "stage", "decision"),
            "released": released(evaluation), "tier": access_tier(evaluation),
            "evaluation_sha256": evaluation_sha256(evaluation)}


def _run_block(evaluation: dict) -> dict:
    return {k: get(evaluation, "run", k) for k in ("plan", "scenario", "plan_sha256", "seed")}


def _hf_fields(license: str) -> dict:
    return {"license": license, "language": "en", "library_name": "transformers", "tags": list(TAGS),
            "pipeline_tag": "text-generation"}


def card_metadata(evaluation: dict, license: str | None = None) -> dict:
    """The front matter of one size's card, as a dict.

    ``gpt2guard.released`` and ``gpt2guard.tier`` say whether and to whom the size was
    released; a held size has ``released: false`` and no tier.
    """
    from gpt2guard.release.card_detect import stage_sizes

    stage = _stage_block(evaluation)
    block = {"card": "model", "schema": evaluation.get("schema"), "run": _run_block(evaluation),
             "stage": {k: stage[k] for k in ("index", "name", "date")}, "stage_sizes": stage_sizes(evaluation),
             "model": model_name(evaluation), "size": get(evaluation, "model", "size"),
             "decision": stage["decision"], "released": stage["released"], "tier": stage["tier"],
             "evaluation_sha256": stage["evaluation_sha256"]}
    return {**_hf_fields(license or get(evaluation, "model", "license", default=DEFAULT_LICENSE)),
            "model-index": [model_index_entry(evaluation)], "gpt2guard": block}


def family_model_name(views: list[dict]) -> str:
    """``<family>-family``: the one model-index entry of a family card."""
    return f"{get(views[0] if views else {}, 'model', 'family', default='unknown')}-family"


def family_metadata(views: list[dict], license: str | None = None) -> dict:
    """The front matter of a family card over size views (one per size of each stage).

    ``model-index`` holds one entry, as ``huggingface_hub.ModelCard`` keeps only one: every
    size's results, each naming its size in ``dataset.config`` (and ``dataset.args.size``).
    ``gpt2guard.sizes`` lists each size's stage, decision, release and tier.
    """
    first = views[0] if views else {}
    block = {"card": "family", "schema": first.get("schema"), "run": _run_block(first),
             "family": get(first, "model", "family"),
             "sizes": [{**_stage_block(v), "model": model_name(v), "size": get(v, "model", "size")} for v in views]}
    counts = {}
    for v in views:
        counts[model_name(v)] = counts.get(model_name(v), 0) + 1
    results = []
    for v in views:
        for r in model_results(v):
            if counts[model_name(v)] > 1:  # a size measured at two stages: keep both results apart
                stage = get(v, "stage", "index")
                r["dataset"]["config"] = f"{model_name(v)}-stage{stage}"
                r["dataset"]["args"]["stage"] = stage
            results.append(r)
    return {**_hf_fields(license or get(first, "model", "license", default=DEFAULT_LICENSE)),
            "model-index": [{"name": family_model_name(views), "results": results}], "gpt2guard": block}


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
