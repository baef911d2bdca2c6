"""The descriptive sections of one size's model card: model details, factors, metrics,
evaluation data and training data, each as Markdown lines from an evaluation dict."""

from __future__ import annotations

import json
import re

from gpt2guard.release.card_detect import all_row, by_length, set_rows, stage_sizes
from gpt2guard.release.card_format import (
    bucket_order, bullets, fmt, fmt_ci, fpr_label, get, is_num, recorded, sampling_label, sha, table,
)
from gpt2guard.release.card_meta import detector_name, evaluation_sha256
from gpt2guard.release.card_prose import (
    caveat_lines, ethical_lines, intended_use_lines, stage_text, tier_text,
)
from gpt2guard.release.card_quant import detector_fpr, released_before, transfer_reason


def _count(v, unit: str, before: bool = False, suffix: str = "") -> str:
    if not is_num(v):
        return f"{unit} not recorded"
    return (f"{unit} {fmt(v, 'int')}" if before else f"{fmt(v, 'int')} {unit}") + suffix


def architecture_text(model: dict) -> str:
    """``GPT-2 decoder-only transformer (GPT2LMHeadModel): 2 layers, 4 heads, ...``."""
    parts = [_count(model.get("n_layer"), "layers"), _count(model.get("n_head"), "heads"),
             _count(model.get("n_embd"), "width", True), _count(model.get("n_positions"), "context", True, " tokens"),
             _count(model.get("vocab_size"), "vocabulary", True, " tokens")]
    return "GPT-2 decoder-only transformer (`GPT2LMHeadModel`): " + ", ".join(parts)


def _versions(evaluation: dict) -> str:
    versions = get(evaluation, "run", "versions", default={})
    return ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"


def source_text(model: dict) -> str:
    """Where the weights come from, named without a local path: a Hub id, else ``family/size``."""
    if model.get("hub_id"):
        return f"Hugging Face Hub `{model['hub_id']}`"
    source = str(model.get("source") or "")
    if source and not source.startswith(("/", "~")) and not re.match(r"^[A-Za-z]:[\\/]", source):
        return f"`{source}`"
    if model.get("family") and model.get("size"):
        return f"`{model['family']}/{model['size']}` (gpt2guard family)"
    return "not recorded"


def details_lines(evaluation: dict) -> list[str]:
    """Who made the model, what it is, and where this stage put it (a held size: no tier,
    no published artifacts, no weights digest)."""
    model = get(evaluation, "model", default={})
    stage = get(evaluation, "stage", default={})
    decision = stage.get("decision") or "not recorded"
    reason = f": {stage['reason']}" if stage.get("reason") else ""
    plan = f" of plan `{get(evaluation, 'run', 'plan', default='not recorded')}`, scenario " \
           f"`{get(evaluation, 'run', 'scenario', default='not recorded')}`"
    is_released = decision == "release"
    others = [z for z in stage_sizes(evaluation) if z != model.get("size")]
    items = {
        "Family": model.get("family") or "not recorded",
        "Size": model.get("size") or "not recorded",
        "Parameters": recorded(model.get("n_params")),
        "Architecture": architecture_text(model),
        "Release stage": stage_text(evaluation) + plan
                         + (f"; the stage also measured {', '.join(others)} (each has its own card)" if others else ""),
        "Decision": ("released" if is_released else "**NOT RELEASED** (held)" if decision == "hold"
                     else decision) + reason,
        "Access tier": tier_text(stage.get("tier")) if is_released else "none (not released)",
        "Published artifacts": ", ".join(map(str, stage.get("artifacts") or [])) or "none recorded"
                               if is_released else "none (not released)",
        "Released before this stage": ", ".join(released_before(evaluation)) or "none (first stage)",
        "Source": source_text(model),
    }
    if is_released:
        items["Weights sha256"] = sha(model.get("weights_sha256"), 64)
    else:
        items["Weights"] = "withheld: not published"
    items.update({
        "Tokenizer sha256": sha(model.get("tokenizer_sha256"), 64),
        "Software": _versions(evaluation),
        "Seed": str(get(evaluation, "run", "seed", default="not recorded")),
        "Evaluation": f"`{evaluation.get('schema', 'schema not recorded')}`, sha256 "
                      f"`{evaluation_sha256(evaluation)}`",
    })
    return bullets(items) + [""]


def factors_lines(evaluation: dict) -> list[str]:
    """Which properties of a text change how detectable it is, and which were evaluated."""
    sampling = [sampling_label(r["sampling"]) for r in set_rows(evaluation)]
    lengths = sorted(by_length(evaluation) or {}, key=bucket_order)
    transfer = get(evaluation, "transfer", "sizes", default=[])
    items = {
        "Sampling methods evaluated": ", ".join(sampling) or fmt(None),
        "Length buckets evaluated (tokens)": ", ".join(lengths) or fmt(None),
        "Generator sizes in the transfer matrix": ", ".join(map(str, transfer))
                                                  or fmt(None, reason=transfer_reason(evaluation)),
        "Detector trained on samples of": ", ".join(map(str, get(evaluation, "detector", "trained_on", default=[])))
                                          or "not recorded",
        "Detector scorer models": ", ".join(map(str, get(evaluation, "detector", "scorers", default=[])))
                                  or "not recorded",
        "Human text domain": f"the `{get(evaluation, 'data', 'human', 'set', default='unknown')}` human set",
    }
    return ["How easily a text is recognised as machine-written depends on the size of the model that wrote it, "
            "the sampling method, the length of the text and its domain. This evaluation varies:", ""] \
        + bullets(items) + [""]


def metric_definitions(evaluation: dict) -> list[str]:
    """What each reported number means, with the rate and interval kind of this evaluation."""
    rate = fpr_label(detector_fpr(evaluation))
    conf = get(evaluation, "detection", "confidence")
    ci = f"{fmt(conf, 'pct')} bootstrap" if conf else "bootstrap"
    return [
        "- **AUROC**: the chance that a random machine document scores above a random human one (0.5 is chance, "
        "1 is perfect separation); documents the detector abstains on are left out.",
        f"- **Flagged** (at the threshold calibrated to {rate} FPR): the share of a sample set's documents the "
        "released detector flags as machine-written, documents it abstains on (too short to judge) counted as not "
        "flagged. It is the one detection rate in this card, the one the detectability gate judges; every row and "
        "sentence that gives a flagged rate for a set of samples takes it from the same computation.",
        "- **Perplexity**: the exponentiated mean negative log-likelihood per token on held-out human text "
        "(lower is better); **quality gain**: its relative reduction against the previous released size.",
        "- **Gates**: each compares one metric with a threshold; the stage's decision follows its required gates.",
        f"- Intervals in brackets are the {ci} confidence intervals recorded in the evaluation; "
        "`not measured` marks a number the evaluation does not hold."]


def threshold_text(evaluation: dict) -> str:
    """``0.42 [0.3, 0.55], calibrated to 1% FPR on 200 human documents``."""
    return (f"{fmt_ci(get(evaluation, 'detector', 'threshold'), get(evaluation, 'detector', 'threshold_ci'))}, "
            f"calibrated to {fpr_label(detector_fpr(evaluation))} FPR on "
            f"{fmt(get(evaluation, 'detector', 'n_human_calibration'), 'int')} human documents")


def metrics_lines(evaluation: dict) -> list[str]:
    """The metric definitions and the released detector's threshold."""
    return metric_definitions(evaluation) + [f"- **Detector threshold**: {threshold_text(evaluation)}.", ""]


def evaluation_data_lines(evaluation: dict) -> list[str]:
    """The human set and the machine sample sets the numbers were measured on."""
    human = get(evaluation, "data", "human", default={})
    splits = ", ".join(f"{k} {fmt(v, 'int')}" for k, v in (human.get("splits") or {}).items()) or "not recorded"
    overall = all_row(evaluation) or {}
    size = get(evaluation, "model", "size")
    ppl = get(evaluation, "perplexity", size, default={})
    lines = bullets({
        "Human text": f"`{human.get('set', 'not recorded')}` (documents per split: {splits}; sha256 "
                      f"{sha(human.get('sha256'))})",
        "Detection": f"{fmt(overall.get('n_human'), 'int')} human test documents and "
                     f"{fmt(overall.get('n'), 'int')} test documents written by {size}",
        "Perplexity": f"{fmt(ppl.get('n_docs'), 'int')} human documents, {fmt(ppl.get('n_tokens'), 'int')} tokens",
    }) + [""]
    samples = [s for s in get(evaluation, "data", "samples", default=[]) if isinstance(s, dict)]
    if samples:
        lines += table(["machine sample set", "split", "documents", "sha256"],
                       [[f"`{s.get('set', '?')}`", s.get("split", "?"), fmt(s.get("n"), "int"), sha(s.get("sha256"))]
                        for s in samples], right={2}) + [""]
    else:
        lines += [f"Machine sample sets: {fmt(None)}.", ""]
    return lines


def training_data_lines(evaluation: dict) -> list[str]:
    """What the model and the detector were trained on."""
    training = get(evaluation, "model", "training", default={})
    recipe = training.get("recipe")
    items = {
        "Corpus": training.get("corpus") or "not recorded",
        "Training tokens": fmt(training.get("train_tokens"), "int"),
        "Validation loss": fmt(training.get("val_loss")),
        "Recipe": f"`{json.dumps(recipe, sort_keys=True)}`" if recipe else "not recorded",
        "Detector": f"{detector_name(evaluation)}, on human text and samples of "
                    + (", ".join(map(str, get(evaluation, "detector", "trained_on", default=[])))
                       or "sizes not recorded"),
    }
    return bullets(items) + [""]


SECTION_BODIES = {
    "Model details": details_lines, "Intended use": intended_use_lines, "Factors": factors_lines,
    "Metrics": metrics_lines, "Evaluation data": evaluation_data_lines, "Training data": training_data_lines,
    "Ethical considerations": ethical_lines, "Caveats and recommendations": caveat_lines,
}
