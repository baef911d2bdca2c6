"""The policy prose of a model card (release banner, intended use, ethical considerations,
caveats and recommendations), templated on one size's evaluation.

The wording is fixed policy; every name and number in it comes from the evaluation.
"""

from __future__ import annotations

from gpt2guard.release.card_attacks import attack_caveats
from gpt2guard.release.card_detect import all_row, by_length, human_fpr, set_rows, worst_row
from gpt2guard.release.card_format import bucket_order, fmt, fmt_ci, fpr_label, get, is_num, sampling_label
from gpt2guard.release.card_meta import detector_name, model_name
from gpt2guard.release.card_quant import detector_fpr, released_before, transfer_summary

TIERS = {
    "closed": "the weights stay inside the releasing organisation",
    "partners": "the weights go only to partner organisations under a sharing agreement",
    "api": "the model is reachable through a hosted API only; the weights are not distributed",
    "download": "anyone may download the weights",
    "open": "anyone may download the weights, samples and detector",
}
"""What each access tier of a release plan (:data:`gpt2guard.release.plan.TIERS`) allows."""


def tier_text(tier) -> str:
    """``partners`` -> ``**partners** (weights go only to partner organisations ...)``."""
    if not tier:
        return "not recorded"
    return f"**{tier}**" + (f" ({TIERS[tier]})" if tier in TIERS else "")


def tier_phrase(tier) -> str:
    """``partners`` -> ``the **partners** tier (weights go only to partner organisations ...)``."""
    if not tier:
        return "an access tier not recorded"
    return f"the **{tier}** tier" + (f" ({TIERS[tier]})" if tier in TIERS else "")


def stage_text(evaluation: dict) -> str:
    """``stage 2 (`medium`, 2019-05-03)``."""
    s = get(evaluation, "stage", default={})
    if s.get("index") is None and not s.get("name"):
        return "a stage not recorded"
    date = f", {s['date']}" if s.get("date") else ""
    return f"stage {s.get('index', '?')} (`{s.get('name', '?')}`{date})"


def failed_gates(evaluation: dict, required_only: bool = True) -> list[dict]:
    """Gates that were evaluated and did not pass."""
    return [g for g in get(evaluation, "gates", default=[]) if isinstance(g, dict) and g.get("passed") is False
            and (g.get("required", True) or not required_only)]


def _gate_short(g: dict) -> str:
    return f"{g.get('name', 'unnamed')} ({fmt(g.get('value'))}, needed {g.get('op', '')} {fmt(g.get('threshold'))})"


def banner(evaluation: dict) -> list[str]:
    """The line under the title: released to which tier, or prominently NOT released and why
    (a held size's banner names no access tier: it never had one)."""
    decision, reason = get(evaluation, "stage", "decision"), get(evaluation, "stage", "reason", default="")
    name, where = model_name(evaluation), stage_text(evaluation)
    if decision == "release":
        return [f"> **Released** at {where} to {tier_phrase(get(evaluation, 'stage', 'tier'))}"
                + (f"; {reason}." if reason else "."), ""]
    if decision == "hold":
        failed = failed_gates(evaluation)
        extra = f" Required gates failed: {'; '.join(map(_gate_short, failed))}." if failed else ""
        return [f"> **NOT RELEASED.** `{name}` was held at {where}: {reason or 'no reason recorded'}.{extra} "
                "Its weights are not published and no access tier applies.", ""]
    return [f"> **Release decision not recorded** for `{name}` at {where}; treat it as not released.", ""]


def _set_phrase(row: dict) -> str:
    where = f" (`{row['set']}`)" if row.get("set") else ""
    return f"{fmt_ci(row['flagged'], row['flagged_ci'], 'pct')} of {sampling_label(row['sampling'])} samples{where}"


def detection_phrases(evaluation: dict) -> list[str]:
    """``63.4% [55%, 71%] of top-k 40 samples (`nano-medium-k40`)`` for every sample set of
    this size: the share flagged at the calibrated threshold, abstentions not flagged (the
    figure the detectability gate judges, and the only flagged rate a card shows)."""
    return [_set_phrase(r) for r in set_rows(evaluation) if r["flagged"] is not None]


def detection_sentence(evaluation: dict) -> str:
    """The headline detection claim, or that it was not measured."""
    fpr = detector_fpr(evaluation)
    phrases = detection_phrases(evaluation)
    size = get(evaluation, "model", "size", default="this size")
    if not phrases:
        return (f"Detection of {size} samples at a {fpr_label(fpr)} false-positive rate: not measured: "
                "absent from the evaluation.")
    return (f"At the threshold calibrated to a {fpr_label(fpr)} false-positive rate the released detector "
            f"({detector_name(evaluation)}) flags " + ", ".join(phrases) + f" written by {size}.")


def worst_sampling(evaluation: dict) -> tuple[str, float] | None:
    """The sampling method whose samples the detector flags least often, with that rate
    (the same figure as the detection table's and the detectability gate's)."""
    row = worst_row(evaluation)
    return (row["sampling"], row["flagged"]) if row else None


def intended_use_lines(evaluation: dict) -> list[str]:
    """Primary uses, who may use it at this access tier, and out-of-scope uses."""
    name = model_name(evaluation)
    decision, tier = get(evaluation, "stage", "decision"), get(evaluation, "stage", "tier")
    n = get(evaluation, "model", "n_params")
    what = (f"a {fmt(n, 'int')}-parameter GPT-2-architecture language model" if is_num(n)
            else "a GPT-2-architecture language model (parameter count not recorded)")
    if decision == "release":
        who = f"It is released to {tier_phrase(tier)} at {stage_text(evaluation)}."
    else:
        who = (f"It is **not released** ({stage_text(evaluation)}): use is limited to the evaluation that held it, "
               "and its weights and unfiltered samples must not be shared.")
    return [f"`{name}` is {what}. {who}", "",
            "Primary intended uses:", "",
            "- research on the behaviour, capabilities and risks of language models of increasing size;",
            "- building and evaluating detectors of machine-written text, together with the released detector;",
            "- writing assistance and creative text where a person reviews every output.", "",
            "Out of scope: presenting its text as written by a person; generating news, product reviews, "
            "political or health content meant to be taken as fact; impersonation, spam and harassment; "
            "any decision about a person that rests on the model's output.", "",
            detection_sentence(evaluation), ""]


def ethical_lines(evaluation: dict) -> list[str]:
    """Risks of the model and of its detector, with the measured rates."""
    size = get(evaluation, "model", "size", default="this size")
    fpr = detector_fpr(evaluation)
    corpus = get(evaluation, "model", "training", "corpus", default="a corpus not recorded in the evaluation")
    lines = [f"- Misuse: text from {size} can pass as human writing and be used for spam, disinformation, "
             "impersonation or academic dishonesty. Staged release exists to measure this risk before wider access.",
             f"- Bias and accuracy: the model reproduces the topics, style and biases of its training text, "
             f"{corpus}. Its statements are not facts."]
    worst = worst_sampling(evaluation)
    if worst:
        lines.append(f"- Missed detections: {sampling_label(worst[0])} samples are the hardest to detect; "
                     f"{fmt(1 - worst[1], 'pct')} of them pass the released detector unflagged.")
    measured = human_fpr(evaluation)
    lines.append(f"- False accusations: the detector is calibrated so that {fpr_label(fpr)} of human documents "
                 f"are wrongly flagged (measured on held-out human text: {fmt(measured, 'pct')}). A flag is "
                 "evidence to review, never proof that a person did not write a text.")
    if get(evaluation, "stage", "decision") != "release":
        reason = get(evaluation, "stage", "reason", default="no reason recorded")
        lines.append(f"- Held: this size was withheld ({reason}); "
                     "sharing its weights would undo the staged-release decision.")
    return lines + [""]


WIDE_CI = 0.2
"""An interval on a rate wider than this (20 points) is called out as a caveat."""


def wide_intervals(evaluation: dict, width: float = WIDE_CI) -> list[str]:
    """Sample sets whose flagged-rate interval is wider than ``width``."""
    return [_set_phrase(r) for r in set_rows(evaluation)
            if r["flagged"] is not None and r["flagged_ci"] and r["flagged_ci"][1] - r["flagged_ci"][0] > width]


def missing_cis(evaluation: dict) -> list[str]:
    """Figures of this size's sample sets that have a value but no interval."""
    out = []
    for r in set_rows(evaluation):
        name = r["set"] or sampling_label(r["sampling"])
        out += [f"{label} of {name}" for label, v, ci in (("AUROC", r["auroc"], r["auroc_ci"]),
                                                          ("flagged rate", r["flagged"], r["flagged_ci"]))
                if is_num(v) and not ci]
    return out


RECOMMENDATIONS = [
    "Recommendations:", "",
    "- Recalibrate the detector's threshold on human text from your own domain before relying on its "
    "false-positive rate; the rates above hold for the evaluation's human set only.",
    "- Report detection rates with their intervals, and re-evaluate when new sampling methods, lengths "
    "or fine-tuned variants appear.",
    "- Do not act against a person on a detector flag alone.", ""]


def caveat_items(evaluation: dict) -> list[str]:
    """Caveats computed from one evaluation, one sentence each (without the bullet)."""
    overall = all_row(evaluation) or {}
    threshold = fmt_ci(get(evaluation, "detector", "threshold"), get(evaluation, "detector", "threshold_ci"))
    items = [f"Sample size: detection of {get(evaluation, 'model', 'size', default='this size')} rests on "
             f"{fmt(overall.get('n_human'), 'int')} human and {fmt(overall.get('n'), 'int')} machine test "
             "documents; the threshold on "
             f"{fmt(get(evaluation, 'detector', 'n_human_calibration'), 'int')} human calibration documents "
             f"(threshold {threshold})."]
    wide = wide_intervals(evaluation)
    if wide:
        items.append(f"Wide intervals (more than {fmt(WIDE_CI * 100, 'int')} points) on the flagged rate: "
                     + ", ".join(wide) + ".")
    missing = missing_cis(evaluation)
    if missing:
        items.append("No confidence interval for: " + ", ".join(missing) + " (too few documents to bootstrap).")
    by_len = by_length(evaluation) or {}
    scored = {k: m["auroc"] for k, m in by_len.items() if isinstance(m, dict) and is_num(m.get("auroc"))}
    if scored:
        low = min(sorted(scored, key=bucket_order), key=scored.get)
        items.append(f"Length: detection is weakest on documents of {low} tokens (AUROC {fmt(scored[low], 'auroc')}).")
    tr = get(evaluation, "transfer")
    summary = transfer_summary(tr) if isinstance(tr, dict) else None
    if summary:
        items.append(f"Transfer: {summary[0].lower()}{summary[1:]} "
                     "A detector may miss text from sizes it was not trained on.")
    if is_num(overall.get("n_abstain")) and overall["n_abstain"] > 0:
        items.append(f"The detector abstained on {fmt(overall['n_abstain'], 'int')} of these test documents (too "
                     "short to judge): each counts as not flagged in every flagged rate, and is left out of AUROC.")
    items += attack_caveats(evaluation)
    if get(evaluation, "detector", "fallback"):
        items.append(f"Detector fallback in use: {get(evaluation, 'detector', 'fallback')}.")
    for g in failed_gates(evaluation, required_only=False):
        items.append(f"Gate {_gate_short(g)}" + ("" if g.get("required", True) else " (advisory)") + ".")
    if not released_before(evaluation):
        items.append("Nothing public before this stage: quality is measured against the pre-release reference, "
                     "and third parties hold no detector yet.")
    return items


def caveat_lines(evaluation: dict) -> list[str]:
    """Caveats computed from the evaluation, then standing recommendations."""
    return [f"- {item}" for item in caveat_items(evaluation)] + [""] + RECOMMENDATIONS
