"""One model card for a whole family over the stages of one staged-release simulation.

It has the same sections as a size's card; each section sets the sizes side by side, stage
after stage (a stage of several sizes gives a row per size: decisions, tiers, detection
and perplexity, gates by stage) and the latest stage's transfer matrix. Every number comes
from the stages' evaluations, through the same size views and detection rows as a size's
card (:mod:`~gpt2guard.release.card_size`, :mod:`~gpt2guard.release.card_detect`), so the
two cards cannot disagree.
"""

from __future__ import annotations

import math

from gpt2guard.errors import GuardError
from gpt2guard.release.card_detect import all_row, by_length, pooled_reason, set_rows, stage_sizes, worst_row
from gpt2guard.release.card_format import (
    bucket_order, bullets, fmt, fmt_ci, fpr_label, get, image, is_num, one_line, recorded, sampling_label, sha,
    table,
)
from gpt2guard.release.card_meta import assemble, detector_name, family_metadata
from gpt2guard.release.card_meta import released as is_released
from gpt2guard.release.card_prose import (
    RECOMMENDATIONS, caveat_items, detection_sentence, worst_sampling,
)
from gpt2guard.release.card_size import expand
from gpt2guard.release.card_quant import detector_fpr, gate_row, quality_gain_value, transfer_lines
from gpt2guard.release.card_sections import architecture_text, metric_definitions, threshold_text


def order_stages(evaluations: list[dict]) -> list[dict]:
    """Evaluations in stage order (by ``stage.index``; unindexed ones last, in the order given)."""
    def key(pair):
        idx = get(pair[1], "stage", "index")
        return (idx if is_num(idx) else math.inf, pair[0])
    return [e for _, e in sorted(enumerate(evaluations), key=key)]


def check_family(evaluations: list[dict]) -> None:
    """Refuse an empty list, or stages of more than one family."""
    if not evaluations:
        raise GuardError("a family card needs at least one stage evaluation")
    families = sorted({str(get(e, "model", "family", default="?")) for e in evaluations})
    if len(families) > 1:
        raise GuardError(f"the evaluations are of several families ({', '.join(families)}); a family card covers one")


def family_of(evaluations: list[dict]) -> str:
    """The family name (of the first stage)."""
    return str(get(evaluations[0] if evaluations else {}, "model", "family", default="unknown"))


def family_title(evaluations: list[dict]) -> str:
    """``Model card: nano family``."""
    return f"Model card: {family_of(evaluations)} family"


def _size(e: dict) -> str:
    return str(get(e, "model", "size", default="?"))


def _stage(e: dict) -> str:
    return f"{get(e, 'stage', 'index', default='?')}"


def _decision(e: dict) -> str:
    d = get(e, "stage", "decision")
    return "released" if d == "release" else "**NOT RELEASED**" if d == "hold" else "not recorded"


def family_banner(evaluations: list[dict]) -> list[str]:
    """Which sizes were released to which tier, and which were held (prominently)."""
    released = [f"`{_size(e)}` ({get(e, 'stage', 'tier', default='tier not recorded')})" for e in evaluations
                if get(e, "stage", "decision") == "release"]
    held = [f"`{_size(e)}` (held at stage {_stage(e)}: {get(e, 'stage', 'reason', default='no reason recorded')})"
            for e in evaluations if get(e, "stage", "decision") != "release"]
    run = get(evaluations[0] if evaluations else {}, "run", default={})
    text = f"> Staged release of plan `{run.get('plan', '?')}`, scenario `{run.get('scenario', '?')}`. " \
           f"**Released:** {', '.join(released) or 'none'}."
    return [text + (f" **NOT RELEASED:** {', '.join(held)}." if held else ""), ""]


def details_lines(evaluations: list[dict]) -> list[str]:
    """Family, sizes, stages and per-stage architecture and access."""
    first = evaluations[0] if evaluations else {}
    toks = {get(e, "model", "tokenizer_sha256") for e in evaluations}
    versions = get(first, "run", "versions", default={})
    items = {
        "Family": family_of(evaluations),
        "Sizes": ", ".join(_size(e) for e in evaluations) or "none",
        "Stages": f"{len({_stage(e) for e in evaluations})} of plan "
                  f"`{get(first, 'run', 'plan', default='not recorded')}`, scenario "
                  f"`{get(first, 'run', 'scenario', default='not recorded')}`, "
                  f"seed {get(first, 'run', 'seed', default='not recorded')}",
        "Parameters": "; ".join(f"{_size(e)} {recorded(get(e, 'model', 'n_params'))}"
                                for e in evaluations) or "not recorded",
        "Architecture": "GPT-2 decoder-only transformers (`GPT2LMHeadModel`)"
                        + ("; one tokenizer shared by every size" if len(toks) == 1 and None not in toks else ""),
        "Software": ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded",
    }
    rows = [[_stage(e), get(e, "stage", "date", default="-"), _size(e),
             recorded(get(e, "model", "n_params")),
             architecture_text(get(e, "model", default={})).split(": ", 1)[1],
             str(get(e, "stage", "tier", default="not recorded")) if is_released(e) else "none (not released)",
             _decision(e)] for e in evaluations]
    return bullets(items) + [""] + table(["stage", "date", "size", "parameters", "architecture", "access tier",
                                          "decision"], rows, right={3}) + [""]


def intended_use_lines(evaluations: list[dict]) -> list[str]:
    """Who may use which size, and the headline detection rate of each stage."""
    lines = [f"The {family_of(evaluations)} family is released size by size; each size goes to the access tier its "
             "stage allows, after its release gates are checked. Held sizes are for the evaluation that held them "
             "only, and their weights must not be shared.", "",
             "Primary intended uses: research on how capabilities and risks grow with model size; building and "
             "evaluating detectors of machine-written text; reviewed writing assistance. Out of scope: presenting "
             "the models' text as human writing, impersonation, spam, disinformation, and decisions about people "
             "based on model output.", "",
             "Detection at each stage:", ""]
    lines += [f"- `{_size(e)}` (stage {_stage(e)}, {_decision(e)}): {detection_sentence(e)}" for e in evaluations]
    return lines + [""]


def factors_lines(evaluations: list[dict]) -> list[str]:
    """The sizes, sampling methods and lengths the stages evaluate."""
    sampling, lengths = [], []
    for e in evaluations:
        sampling += [r["sampling"] for r in set_rows(e) if r["sampling"] not in sampling]
        lengths += [k for k in by_length(e) or {} if k not in lengths]
    items = {
        "Generator sizes": ", ".join(_size(e) for e in evaluations) or fmt(None),
        "Sampling methods evaluated": ", ".join(map(sampling_label, sampling)) or fmt(None),
        "Length buckets evaluated (tokens)": ", ".join(sorted(lengths, key=bucket_order)) or fmt(None),
        "Detectors": "; ".join(dict.fromkeys(f"stage {_stage(e)}: {detector_name(e)}" for e in evaluations))
                     or "not recorded",
    }
    return ["Detectability depends on the generating size, the sampling method, the length and the domain of a "
            "text. Across the stages this run varies:", ""] + bullets(items) + [""]


def metrics_lines(evaluations: list[dict]) -> list[str]:
    """Metric definitions, then each stage's detector threshold."""
    lines = metric_definitions(evaluations[-1] if evaluations else {}) + [""]
    return lines + table(["stage", "size", "detector threshold [CI]"],
                         [[_stage(e), _size(e), threshold_text(e)] for e in evaluations]) + [""]


def evaluation_data_lines(evaluations: list[dict]) -> list[str]:
    """Human and machine test documents per size, and each size's sample sets."""
    rows = []
    for e in evaluations:
        total = all_row(e) or {}
        sets = ", ".join(f"`{s.get('set', '?')}` ({s.get('split', '?')}, {fmt(s.get('n'), 'int')})" for s in
                         get(e, "data", "samples", default=[]) if isinstance(s, dict)) or fmt(None)
        rows.append([_stage(e), _size(e), f"`{get(e, 'data', 'human', 'set', default='not recorded')}`",
                     fmt(total.get("n_human"), "int"), fmt(total.get("n"), "int"), sets])
    return table(["stage", "size", "human set", "human test docs", "machine test docs", "machine sample sets"],
                 rows, right={3, 4}) + [""]


def training_data_lines(evaluations: list[dict]) -> list[str]:
    """Each size's training corpus, tokens and validation loss."""
    rows = [[_size(e), get(e, "model", "training", "corpus", default="not recorded"),
             fmt(get(e, "model", "training", "train_tokens"), "int"), fmt(get(e, "model", "training", "val_loss"))]
            for e in evaluations]
    return table(["size", "corpus", "training tokens", "validation loss"], rows, right={2, 3}) + [""]


def _stage_row(e: dict) -> list[str]:
    total = all_row(e) or {}
    worst = worst_row(e)
    gates = [g for g in get(e, "gates", default=[]) if isinstance(g, dict)]
    ppl = get(e, "perplexity", _size(e), default={})
    return [_stage(e), _size(e), _decision(e),
            fmt_ci(total.get("auroc"), total.get("auroc_ci"), "auroc", pooled_reason(e)),
            fmt_ci(total.get("flagged"), total.get("flagged_ci"), "pct"),
            f"{fmt(worst['flagged'], 'pct')} ({sampling_label(worst['sampling'])})" if worst else fmt(None),
            fmt_ci(ppl.get("ppl"), ppl.get("ci"), "ppl"), quality_gain_value(e),
            f"{sum(g.get('passed') is True for g in gates)} of {len(gates)}"]


def quantitative_lines(evaluations: list[dict], plots: dict | None = None) -> list[str]:
    """Detection and perplexity by size, detection by sample set, gates by stage, and the
    latest transfer matrix."""
    fprs = sorted({fpr_label(detector_fpr(e)) for e in evaluations})
    lines = ["### By size", ""]
    lines += table(["stage", "size", "decision", "AUROC, all samples [CI]",
                    f"flagged at the {'/'.join(fprs)} FPR threshold, all samples [CI]",
                    "flagged, worst sampling", "perplexity [CI]", "quality gain [CI]", "gates passed"],
                   [_stage_row(e) for e in evaluations]) + [""]
    lines += ["Flagged rates count the documents the detector abstains on as not flagged, as the detectability gate "
              "does; each is the same figure as in the size's own card.", ""]
    lines += image(plots, "family_detectability", "Detectability by size")
    lines += image(plots, "family_perplexity", "Perplexity by size")
    lines += ["### Detection by sample set", ""]
    rows = [[_stage(e), _size(e), f"`{r['set']}`" if r["set"] else sampling_label(r["sampling"]),
             sha(r["sha256"]), fmt(r["n"], "int"), fmt(r["n_abstain"], "int"),
             fmt_ci(r["auroc"], r["auroc_ci"], "auroc"), fmt_ci(r["flagged"], r["flagged_ci"], "pct")]
            for e in evaluations for r in set_rows(e)]
    lines += (table(["stage", "size", "sample set", "sha256", "documents", "abstained", "AUROC [CI]",
                     "flagged at threshold [CI]"], rows, right={4, 5})
              if rows else [f"Detection by sample set: {fmt(None)}."]) + [""]
    lines += ["### Gates by stage", ""]
    seen, rows = set(), []
    for e in evaluations:
        if _stage(e) in seen:
            continue
        seen.add(_stage(e))
        rows += [[_stage(e), ", ".join(stage_sizes(e))] + gate_row(g)[:6]
                 for g in get(e, "gates", default=[]) if isinstance(g, dict)]
    lines += (table(["stage", "sizes", "gate", "metric", "value [CI]", "threshold", "required", "result"], rows)
              if rows else [f"Gates: {fmt(None, reason='no gates recorded')}."]) + [""]
    with_transfer = [e for e in evaluations if isinstance(get(e, "transfer"), dict) and get(e, "transfer", "sizes")]
    source = with_transfer[-1] if with_transfer else (evaluations[-1] if evaluations else {})
    tr_lines = transfer_lines(source, plots)
    if with_transfer:
        tr_lines[2:2] = [f"From stage {_stage(source)}, the latest with a transfer matrix.", ""]
    return lines + tr_lines


def ethical_lines(evaluations: list[dict]) -> list[str]:
    """Risk as size grows, missed detections and false accusations, held sizes."""
    lines = ["- Misuse: larger sizes write more fluent text that is easier to pass off as human; staged release "
             "measures detectability before widening access."]
    for e in evaluations:
        worst = worst_sampling(e)
        ppl = get(e, "perplexity", _size(e), "ppl")
        lines.append(f"- `{_size(e)}`: perplexity {fmt(ppl, 'ppl')}; "
                     + (f"{fmt(1 - worst[1], 'pct')} of its {sampling_label(worst[0])} samples pass the detector "
                        f"unflagged at the {fpr_label(detector_fpr(e))} FPR threshold" if worst
                        else "detection by sampling method not measured") + ".")
    lines.append("- False accusations: every detector is calibrated to flag a fixed share of human documents; a "
                 "flag is evidence to review, never proof that a person did not write a text.")
    held = [e for e in evaluations if get(e, "stage", "decision") != "release"]
    if held:
        lines.append("- Held sizes (" + ", ".join(f"`{_size(e)}`" for e in held) + ") were withheld after their "
                     "gates; sharing them would undo the staged-release decision.")
    return lines + [""]


def caveat_lines(evaluations: list[dict]) -> list[str]:
    """Each stage's caveats, then the standing recommendations."""
    lines = ["- Each stage is measured with its own detector and samples, so rates compare detectors as well as sizes."]
    for e in evaluations:
        lines += [f"- `{_size(e)}` (stage {_stage(e)}): {item}" for item in caveat_items(e)]
    return lines + [""] + RECOMMENDATIONS


BODIES = {
    "Model details": details_lines, "Intended use": intended_use_lines, "Factors": factors_lines,
    "Metrics": metrics_lines, "Evaluation data": evaluation_data_lines, "Training data": training_data_lines,
    "Ethical considerations": ethical_lines, "Caveats and recommendations": caveat_lines,
}


def family_card_markdown(evaluations: list[dict], plots: dict[str, str] | None = None, *,
                         license: str | None = None) -> str:
    """The model card of a whole family over the stages of one simulation run.

    Parameters
    ----------
    evaluations : list of dict
        The stages' evaluations (any order; sorted by ``stage.index``); a stage of several
        sizes gives one row per size.
    plots : dict of str to str, optional
        Plot name -> relative path (``family_detectability``, ``family_perplexity``,
        ``transfer``).
    license : str, optional
        The ``license`` metadata (default ``mit``).

    Returns
    -------
    str
        Markdown with YAML front matter: one ``model-index`` entry for the family whose
        results name their size (see :func:`~gpt2guard.release.card_meta.family_metadata`).
    """
    evaluations = order_stages([one_line(e) for e in evaluations])
    check_family(evaluations)
    views = expand(evaluations)
    return assemble(family_metadata(views, license), family_title(views), family_banner(views),
                    lambda section: (quantitative_lines(views, plots) if section == "Quantitative analyses"
                                     else BODIES[section](views)))
