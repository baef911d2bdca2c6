"""Offline checks of model cards: completeness and agreement of metadata with body
(:func:`check_card`), and the difference between two cards (:func:`diff_cards`,
:func:`format_diff`).

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


def _table_rows(lines: list[str]) -> list[list[str]]:
    """The cells of every Markdown table row (separator rows skipped), without backticks or bold."""
    rows = []
    for line in lines:
        line = line.strip()
        if not line.startswith("|") or re.fullmatch(r"\|(?:\s*:?-+:?\s*\|)+", line):
            continue
        cells = re.split(r"(?<!\\)\|", line.strip("|"))
        rows.append([c.replace("`", "").replace("**", "").replace("\\|", "|").strip() for c in cells])
    return rows


def _detail_fields(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        m = re.match(r"^\s*[-*]\s+\*\*([^*]+?):\*\*\s*(.*)$", line)
        if m:
            found[m.group(1).strip()] = m.group(2).strip()
    return found


def _shown(metric: dict) -> str | None:
    """How the body shows a model-index metric's value (as the card's tables format it)."""
    from gpt2guard.release.card_format import fmt, is_num
    from gpt2guard.release.card_meta import FLAGGED

    value, kind = metric.get("value"), metric.get("type")
    if not is_num(value):
        return None
    return {"roc_auc": fmt(value, "auroc"), "perplexity": fmt(value, "ppl"), FLAGGED: fmt(value, "pct")}.get(kind)


def _index_vs_body(meta: dict, body_lines: list[str]) -> list[str]:
    """Model-index metrics the body's tables do not show with the same value for the same
    size and sample set."""
    rows = _table_rows(body_lines)
    problems = []
    for entry in [e for e in meta.get("model-index") or [] if isinstance(e, dict)]:
        for res in [r for r in entry.get("results") or [] if isinstance(r, dict)]:
            ds = res.get("dataset") if isinstance(res.get("dataset"), dict) else {}
            args = ds.get("args") if isinstance(ds.get("args"), dict) else {}
            size = args.get("size") or (meta.get("gpt2guard") or {}).get("size")
            task = (res.get("task") or {}).get("type") if isinstance(res.get("task"), dict) else None
            keys = ([str(ds.get("type", "")).split("/", 1)[-1]] if task == "text-classification"
                    else [str(size)] if size else [])  # a sample set's name, else the size's row
            for m in [m for m in res.get("metrics") or [] if isinstance(m, dict)]:
                shown = _shown(m)
                if shown is None or not keys:
                    continue
                if not any(all(k in row for k in keys) and any(c.startswith(shown) for c in row) for row in rows):
                    where = " ".join(keys)
                    problems.append(f"model-index {entry.get('name')} ({where}): {m.get('name') or m.get('type')} "
                                    f"{m.get('value')} is not what the body's tables show")
    return problems


def _model_vs_body(block: dict, title: str | None, body: str, details: dict[str, str]) -> list[str]:
    problems = []
    name, decision, tier = block.get("model"), block.get("decision"), block.get("tier")
    released = block.get("released")
    if name and title is not None and title != f"Model card: {name}":
        problems.append(f"title: {title!r} does not name the card's model {name!r}")
    if block.get("size") and details.get("Size") and details["Size"] != str(block["size"]):
        problems.append(f"Model details: size {details['Size']!r} but front matter says {block['size']!r}")
    if released is not None and released != (decision == "release"):
        problems.append(f"front matter: released is {released} but the decision is {decision!r}")
    shown = details.get("Decision", "")
    if decision == "release" and not shown.startswith("released"):
        problems.append(f"Model details: decision {shown!r} but front matter says release")
    if decision != "release" and shown.startswith("released"):
        problems.append(f"Model details: decision {shown!r} but front matter says {decision!r}")
    banner_released = "> **Released**" in body
    if banner_released != (decision == "release"):
        problems.append(f"banner: {'says released' if banner_released else 'does not say released'} but front "
                        f"matter decision is {decision!r}")
    access = details.get("Access tier", "")
    if decision == "release":
        if not tier:
            problems.append("front matter: a released size without an access tier")
        elif f"**{tier}**" not in access:
            problems.append(f"Model details: access tier {access!r} but front matter says {tier!r}")
    else:
        if tier:
            problems.append(f"front matter: access tier {tier!r} for a size that was not released")
        if access and not access.startswith("none"):
            problems.append(f"Model details: access tier {access!r} for a size that was not released")
        if "Weights sha256" in details:
            problems.append("Model details: a size that was not released shows a weights sha256 as published")
    return problems


def _family_vs_body(block: dict, details_lines: list[str]) -> list[str]:
    problems = []
    rows = _table_rows(details_lines)
    header = rows[0] if rows else []
    col = {h: i for i, h in enumerate(header)}
    if not {"stage", "size", "access tier", "decision"} <= set(col):
        return ["Model details: the table of sizes (stage, size, access tier, decision) is missing"]
    for z in [z for z in block.get("sizes") or [] if isinstance(z, dict)]:
        match = [r for r in rows[1:] if len(r) == len(header) and r[col["size"]] == str(z.get("size"))
                 and r[col["stage"]] == str(z.get("index"))]
        where = f"size {z.get('size')} (stage {z.get('index')})"
        if not match:
            problems.append(f"Model details: no row for {where} listed in the front matter")
            continue
        row, released = match[0], z.get("decision") == "release"
        if released != (row[col["decision"]] == "released"):
            problems.append(f"Model details: {where} decision {row[col['decision']]!r} but front matter says "
                            f"{z.get('decision')!r}")
        if released and row[col["access tier"]] != str(z.get("tier")):
            problems.append(f"Model details: {where} access tier {row[col['access tier']]!r} but front matter says "
                            f"{z.get('tier')!r}")
        if not released and (z.get("tier") or not row[col["access tier"]].startswith("none")):
            problems.append(f"{where}: an access tier for a size that was not released")
    return problems


def consistency_problems(meta: dict, body: str) -> list[str]:
    """Where a card's front matter and its body disagree: model-index values against the
    body's tables, and (size card) model, size, decision, release, access tier and weights
    digest against the title, banner and Model details, or (family card) each size's
    decision and tier against the table of sizes."""
    block = meta.get("gpt2guard") if isinstance(meta.get("gpt2guard"), dict) else {}
    title = next((line[2:].strip() for line in body.splitlines() if line.startswith("# ")), None)
    found = dict(sections(body))
    problems = _index_vs_body(meta, body.splitlines())
    if block.get("card") == "family":
        problems += _family_vs_body(block, found.get("Model details", []))
    elif block:
        problems += _model_vs_body(block, title, body, _detail_fields(found.get("Model details", [])))
    return problems


def check_card(text: str) -> list[str]:
    """The problems that make a card incomplete, one line each naming the section or key.

    Checks: front matter present and valid YAML with the Hugging Face keys and a
    well-formed ``model-index`` and the ``gpt2guard`` block; every section present once and
    not empty (whitespace, ``TODO`` or ``TBD`` only); the required fields of Model details;
    and that metadata and body agree (:func:`consistency_problems`).

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
    if meta is not None and not problem:
        problems += consistency_problems(meta, body)
    return problems


def _metrics(meta: dict | None) -> dict[str, float]:
    """``[<size>: ]<task>[/<sampling>]/<metric name>`` -> value; the size prefix only when the
    card holds several sizes (a family card), so cards of two sizes compare metric by metric."""
    entries = [e for e in (meta or {}).get("model-index") or [] if isinstance(e, dict)]
    results = [(e, r) for e in entries for r in e.get("results") or [] if isinstance(r, dict)]

    def size(e, r):
        ds = r.get("dataset") if isinstance(r.get("dataset"), dict) else {}
        args = ds.get("args") if isinstance(ds.get("args"), dict) else {}
        return str(args.get("size") or ds.get("config") or e.get("name"))

    several = len({size(e, r) for e, r in results}) > 1
    out = {}
    for e, r in results:
        ds = r.get("dataset") if isinstance(r.get("dataset"), dict) else {}
        args = ds.get("args") if isinstance(ds.get("args"), dict) else {}
        task = (r.get("task") or {}).get("type", "?") if isinstance(r.get("task"), dict) else "?"
        key = (f"{size(e, r)}: " if several else "") + task + (f"/{args['sampling']}" if args.get("sampling") else "")
        for m in r.get("metrics") or []:
            if isinstance(m, dict):
                out[f"{key}/{m.get('name') or m.get('type')}"] = m.get("value")
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
