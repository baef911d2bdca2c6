"""Offline checks of model cards: completeness (:func:`check_card`) and the difference
between the cards of two stages (:func:`diff_cards`, :func:`format_diff`).

Both read only the card's text: the YAML front matter and the ``## `` sections.
"""

from __future__ import annotations

import difflib
import json
import re

from gpt2guard.release.card_format import SECTIONS
from gpt2guard.release.card_html import split_yaml

HF_KEYS = ("license", "language", "library_name", "tags", "pipeline_tag")
MODEL_DETAILS = ("Family", "Size", "Parameters", "Architecture", "Release stage", "Decision", "Access tier")
FAMILY_DETAILS = ("Family", "Sizes", "Stages", "Parameters", "Architecture")
PLACEHOLDERS = {"", "todo", "tbd", "todo.", "tbd."}


def parse_front_matter(text: str) -> tuple[dict | None, str, str | None]:
    """``(metadata, body, problem)``: the parsed YAML front matter (None when missing or
    invalid), the text after it, and a one-line problem or None."""
    import yaml

    raw, body = split_yaml(text)
    if raw is None:
        return None, text, "front matter: missing (a card starts with a '---' fenced YAML block)"
    try:
        meta = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        return None, body, f"front matter: invalid YAML: {first[:160]}"
    if not isinstance(meta, dict):
        return None, body, "front matter: not a YAML mapping"
    return meta, body, None


def sections(body: str) -> list[tuple[str, list[str]]]:
    """``(heading, lines)`` of every ``## `` section, in order (headings in code fences ignored)."""
    out: list[tuple[str, list[str]]] = []
    fenced = False
    for line in body.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"^##\s+\S", line) and not line.startswith("###"):
            out.append((line[2:].strip(), []))
        elif out:
            out[-1][1].append(line)
    return out


def is_empty(lines: list[str]) -> bool:
    """A section with nothing but whitespace, sub-headings and TODO/TBD placeholders."""
    for line in lines:
        text = re.sub(r"^\s*(?:[-*>]\s*)*", "", line).strip()
        if text.startswith("#"):
            continue
        if text.lower() not in PLACEHOLDERS:
            return False
    return True


def _model_index_problems(meta: dict) -> list[str]:
    mi = meta.get("model-index")
    if mi is None:
        return ["front matter: model-index missing"]
    if not isinstance(mi, list) or not mi:
        return ["model-index: not a non-empty list of models"]
    problems = []
    for k, entry in enumerate(mi):
        if not isinstance(entry, dict) or not entry.get("name"):
            problems.append(f"model-index[{k}]: name missing")
            continue
        if not entry.get("results"):
            problems.append(f"model-index {entry['name']}: no results (nothing measured)")
        for r, res in enumerate(entry.get("results") or []):
            where = f"model-index {entry['name']} results[{r}]"
            if not isinstance(res, dict) or not isinstance(res.get("task"), dict) or not res["task"].get("type"):
                problems.append(f"{where}: task.type missing")
            elif not isinstance(res.get("dataset"), dict) or not res["dataset"].get("type") \
                    or not res["dataset"].get("name"):
                problems.append(f"{where}: dataset type or name missing")
            elif not res.get("metrics") or not all(isinstance(m, dict) and m.get("type") and "value" in m
                                                   for m in res["metrics"]):
                problems.append(f"{where}: metrics missing or without type/value")
    return problems


def _details_problems(lines: list[str], required) -> list[str]:
    found = {}
    for line in lines:
        m = re.match(r"^\s*[-*]\s+\*\*([^*]+?):\*\*\s*(.*)$", line)
        if m:
            found[m.group(1).strip()] = m.group(2).strip()
    return [f"Model details: '{field}' " + ("empty" if field in found else "missing")
            for field in required if not found.get(field)]


def check_card(text: str) -> list[str]:
    """The problems that make a card incomplete, one line each naming the section or key.

    Checks: front matter present and valid YAML with the Hugging Face keys and a
    well-formed ``model-index`` and the ``gpt2guard`` block; every section present once and
    not empty (whitespace, ``TODO`` or ``TBD`` only); the required fields of Model details.

    Returns
    -------
    list of str
        Empty when the card is complete.
    """
    meta, body, problem = parse_front_matter(text)
    problems = [problem] if problem else []
    if meta is not None:
        problems += [f"front matter: '{k}' missing" for k in HF_KEYS if not meta.get(k)]
        problems += _model_index_problems(meta)
        if not isinstance(meta.get("gpt2guard"), dict):
            problems.append("front matter: 'gpt2guard' block missing (run, stage, decision, evaluation sha256)")
    found = sections(body)
    names = [h for h, _ in found]
    for section in SECTIONS:
        count = names.count(section)
        if count == 0:
            problems.append(f"section '{section}': missing")
            continue
        if count > 1:
            problems.append(f"section '{section}': appears {count} times")
        lines = next(lines for h, lines in found if h == section)
        if is_empty(lines):
            problems.append(f"section '{section}': empty")
        elif section == "Model details":
            family = isinstance(meta, dict) and (meta.get("gpt2guard") or {}).get("card") == "family"
            problems += _details_problems(lines, FAMILY_DETAILS if family else MODEL_DETAILS)
    return problems


def _metrics(meta: dict | None) -> dict[str, float]:
    entries = [e for e in (meta or {}).get("model-index") or [] if isinstance(e, dict)]
    out = {}
    for e in entries:
        prefix = f"{e.get('name')}: " if len(entries) > 1 else ""
        for res in e.get("results") or []:
            task = (res.get("task") or {}).get("type", "?") if isinstance(res, dict) else "?"
            for m in (res.get("metrics") or []) if isinstance(res, dict) else []:
                if isinstance(m, dict):
                    out[f"{prefix}{task}/{m.get('name') or m.get('type')}"] = m.get("value")
    return out


def _flatten(obj, prefix: str = "") -> dict[str, str]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: json.dumps(obj, sort_keys=True) if isinstance(obj, list) else obj}


def _metadata(meta: dict | None) -> dict:
    return _flatten({k: v for k, v in (meta or {}).items() if k != "model-index"})


def _delta(a, b):
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
    return round(b - a, 10) if ok else None


def diff_cards(a: str, b: str) -> dict:
    """What changed from card ``a`` to card ``b`` (e.g. two stages of a release).

    Returns
    -------
    dict
        ``metrics``: model-index metrics that differ, ``[{name, a, b, delta}]`` (a metric
        missing on one side is None there); ``metadata``: other front-matter keys that differ,
        ``[{key, a, b}]``; ``sections_added`` / ``sections_removed``: headings; ``sections``:
        heading -> unified diff lines of each section present in both that changed.
    """
    meta_a, body_a, _ = parse_front_matter(a)
    meta_b, body_b, _ = parse_front_matter(b)
    ma, mb = _metrics(meta_a), _metrics(meta_b)
    metrics = [{"name": k, "a": ma.get(k), "b": mb.get(k), "delta": _delta(ma.get(k), mb.get(k))}
               for k in list(ma) + [k for k in mb if k not in ma] if ma.get(k) != mb.get(k)]
    da, db = _metadata(meta_a), _metadata(meta_b)
    metadata = [{"key": k, "a": da.get(k), "b": db.get(k)} for k in list(da) + [k for k in db if k not in da]
                if da.get(k) != db.get(k)]
    sa, sb = dict(sections(body_a)), dict(sections(body_b))
    changed = {}
    for h in [h for h in sa if h in sb]:
        lines = list(difflib.unified_diff(sa[h], sb[h], f"a: {h}", f"b: {h}", lineterm="", n=1))
        if lines:
            changed[h] = lines
    return {"metrics": metrics, "metadata": metadata, "sections_added": [h for h in sb if h not in sa],
            "sections_removed": [h for h in sa if h not in sb], "sections": changed}


def _value(v) -> str:
    return "absent" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


def format_diff(d: dict) -> str:
    """Plain text of :func:`diff_cards` output."""
    lines = ["metrics:" if d["metrics"] else "metrics: unchanged"]
    for m in d["metrics"]:
        delta = f" ({m['delta']:+g})" if m["delta"] is not None else ""
        lines.append(f"  {m['name']}: {_value(m['a'])} -> {_value(m['b'])}{delta}")
    lines.append("metadata:" if d["metadata"] else "metadata: unchanged")
    lines += [f"  {m['key']}: {_value(m['a'])} -> {_value(m['b'])}" for m in d["metadata"]]
    for key, label in (("sections_added", "sections added"), ("sections_removed", "sections removed")):
        if d[key]:
            lines.append(f"{label}: " + ", ".join(d[key]))
    if not d["sections"]:
        lines.append("sections: unchanged")
    for diff in d["sections"].values():
        lines += [""] + diff
    return "\n".join(lines) + "\n"
