"""A model card's attack table and watermark figures, and which attacks defeat which detector.

Read from an evaluation's ``robustness`` (the publishable detector on attacked test texts, at
the threshold calibrated on clean human text) and ``watermark`` (the stage's API watermark:
its parameters, its key's digest and the share of its watermarked texts detected, clean and
attacked). Both are absent from stages that measured neither, and so are these sections.

An attack *defeats* a detector on a size when, for some sampling method, the rate it leaves
is below :data:`DEFEAT` times the clean rate (the detector loses more than half of what it
caught). Every such verdict is computed from the evaluation, never written by hand.
"""

from __future__ import annotations

from gpt2guard.release.card_format import fmt, fmt_ci, get, is_num, not_measured, sampling_label, sha, table

CLEAN = "clean"
DEFEAT = 0.5
"""An attack defeats a detector when it leaves less than this share of the clean rate."""

DETECTORS = {"robustness": "the post-hoc detector", "watermark": "the watermark"}


def _size(evaluation: dict) -> str | None:
    size = get(evaluation, "model", "size")
    return None if size is None else str(size)


def attack_table_data(evaluation: dict, kind: str) -> dict | None:
    """``{sampling method: {attack: cell}}`` of this card's size under ``kind`` (``robustness``
    or ``watermark``), or None when the stage did not measure it."""
    block = get(evaluation, kind)
    by_size = block.get("by_size") if isinstance(block, dict) else None
    if not isinstance(by_size, dict) or not by_size:
        return None
    size = _size(evaluation)
    if size in by_size and isinstance(by_size[size], dict):
        return by_size[size]
    return None


def _attacks(block: dict, by_method: dict) -> list[str]:
    listed = [str(a) for a in block.get("attacks") or []]
    seen = list(dict.fromkeys(a for by in by_method.values() if isinstance(by, dict) for a in by))
    return list(dict.fromkeys([a for a in listed if a in seen] + seen))


def _rate_table(block: dict, by_method: dict, rate: str, extra: str | None = None) -> list[str]:
    methods = list(by_method)
    attacks = _attacks(block, by_method)
    header = ["attack", "documents changed"] + [f"{rate}, {sampling_label(m)} [CI]" for m in methods]
    if extra:
        header += [f"median z, {sampling_label(m)}" for m in methods]
    rows = []
    for a in attacks:
        cells = [by_method[m].get(a) if isinstance(by_method[m], dict) else None for m in methods]
        changed = [f"{fmt(c.get('n_changed'), 'int')} of {fmt(c.get('n'), 'int')}" for c in cells if isinstance(c, dict)]
        row = [a if a == CLEAN else f"`{a}`", " / ".join(dict.fromkeys(changed)) or not_measured()]
        row += [fmt_ci(c.get("tpr"), c.get("tpr_ci"), "pct") if isinstance(c, dict) else not_measured()
                for c in cells]
        if extra:
            row += [fmt(c.get("z_median")) if isinstance(c, dict) else not_measured() for c in cells]
        rows.append(row)
    return table(header, rows, right=set(range(2, len(header))))


def robustness_lines(evaluation: dict) -> list[str]:
    """The attack table of the post-hoc detector for this card's size (empty when not measured)."""
    by_method = attack_table_data(evaluation, "robustness")
    if by_method is None:
        return []
    block = get(evaluation, "robustness")
    threshold = get(evaluation, "detector", "threshold")
    return ["### Robustness to attacks", "",
            f"Each row rewrites this size's test samples with one attack (name=rate; the seed of each document "
            f"derives from the plan's seed) before the released detector scores them. *Flagged* is the share above "
            f"the threshold {fmt(threshold)} calibrated on clean human text, abstentions counted as not flagged: "
            "what the robust-detectability gate judges.", ""] + _rate_table(block, by_method, "flagged") + [""]


def watermark_lines(evaluation: dict) -> list[str]:
    """The watermark's parameters, key digest, false positives on human text and its attack
    table for this card's size (empty for a stage without a watermark)."""
    wm = get(evaluation, "watermark")
    if not isinstance(wm, dict):
        return []
    human = wm.get("human") if isinstance(wm.get("human"), dict) else {}
    fp = (f"{fmt(human.get('fpr'), 'pct')} ({fmt(human.get('n_detected'), 'int')} of {fmt(human.get('n'), 'int')} "
          "human test documents)") if is_num(human.get("fpr")) else not_measured()
    lines = ["### Watermark", "",
             f"Every text this stage's API returns is watermarked: scheme `{wm.get('scheme', 'not recorded')}`, "
             f"green share gamma {fmt(wm.get('gamma'))}, logit boost delta {fmt(wm.get('delta'))}; a text counts as "
             f"watermarked when its z-score reaches {fmt(wm.get('z_threshold'))}. Key sha256 "
             f"{sha(wm.get('key_sha256'))} (the key itself is not published). Human text wrongly detected at "
             f"this threshold (measured false-positive rate): {fp}.", ""]
    by_method = attack_table_data(evaluation, "watermark")
    if by_method is None:
        return lines + [f"Detection of this size's API texts: {not_measured()}.", ""]
    lines += ["*Detected* is the share of this size's watermarked API texts at or above the z threshold, after each "
              "attack: what the watermark-detectability gate judges.", ""]
    return lines + _rate_table(wm, by_method, "detected", extra="z") + [""]


def attack_lines(evaluation: dict) -> list[str]:
    """Both sections, as the quantitative analyses show them."""
    return robustness_lines(evaluation) + watermark_lines(evaluation)


def verdicts(evaluation: dict, kind: str) -> dict[str, tuple[bool, str, float, float]] | None:
    """Attack -> ``(defeated, sampling method, rate under attack, clean rate)`` on the method
    where the attack costs ``kind``'s detector most (relative to clean); None when not measured."""
    by_method = attack_table_data(evaluation, kind)
    if by_method is None:
        return None
    out: dict = {}
    for method, by in by_method.items():
        if not isinstance(by, dict) or not is_num((by.get(CLEAN) or {}).get("tpr")):
            continue
        clean = by[CLEAN]["tpr"]
        for attack, cell in by.items():
            if attack == CLEAN or not isinstance(cell, dict) or not is_num(cell.get("tpr")):
                continue
            ratio = cell["tpr"] / clean if clean > 0 else 1.0
            defeated = clean > 0 and cell["tpr"] < DEFEAT * clean
            if attack not in out or ratio < out[attack][4]:
                out[attack] = (defeated, method, cell["tpr"], clean, ratio)
    return {a: v[:4] for a, v in out.items()}


def _phrase(attack: str, v: tuple, rate: str) -> str:
    return f"`{attack}` ({rate} {fmt(v[2], 'pct')} vs {fmt(v[3], 'pct')} clean, {sampling_label(v[1])})"


def attack_caveats(evaluation: dict) -> list[str]:
    """One caveat per measured detector naming the attacks that defeat it and those it
    withstands, then the attacks that defeat one detector and not the other."""
    items, found = [], {}
    for kind, rate in (("robustness", "flagged"), ("watermark", "detected")):
        v = verdicts(evaluation, kind)
        if not v:
            continue
        found[kind] = v
        beaten = [a for a in v if v[a][0]]
        held = [a for a in v if not v[a][0]]
        text = (f"Attacks on {DETECTORS[kind]} (one defeats it when it leaves under {fmt(DEFEAT * 100, 'int')}% of "
                f"the clean {rate} rate): ")
        text += ("defeated by " + ", ".join(_phrase(a, v[a], rate) for a in beaten) if beaten
                 else "no declared attack defeats it")
        if held:
            text += ("; it withstands " if beaten else "; it withstands all of ") + ", ".join(f"`{a}`" for a in held)
        items.append(text + ".")
    if len(found) == 2:
        rob, wm = found["robustness"], found["watermark"]
        both = [a for a in rob if a in wm]
        only_post = [a for a in both if rob[a][0] and not wm[a][0]]
        only_wm = [a for a in both if wm[a][0] and not rob[a][0]]
        all_ = [a for a in both if rob[a][0] and wm[a][0]]
        if only_post:
            items.append("Defeat the post-hoc detector but not the watermark: " + ", ".join(f"`{a}`" for a in only_post)
                         + ".")
        if only_wm:
            items.append("Defeat the watermark but not the post-hoc detector: " + ", ".join(f"`{a}`" for a in only_wm)
                         + ".")
        if all_:
            items.append("Defeat both detectors: " + ", ".join(f"`{a}`" for a in all_) + ".")
    return items
