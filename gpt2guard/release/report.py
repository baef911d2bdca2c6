"""A stage's evaluation record (``evaluation.json``, what model cards are built from) and its
short human-readable report (``report.md``)."""

from __future__ import annotations

import math

from gpt2guard.paths import sha256_json

SCHEMA = "gpt2guard.release.evaluation/1"


def clean(obj):
    """JSON-safe copy: NaN and infinities become None, tuples lists, numpy scalars floats."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def model_details(plan, size: str) -> dict:
    """Architecture, parameter count, digests and training facts of one size."""
    from gpt2guard.family import get_family, load_model
    from gpt2guard.family.build import read_manifest

    loaded = load_model(plan.family, size)
    cfg = loaded.model.config
    spec = get_family(plan.family)
    training = None
    if spec.kind == "builtin":
        build = read_manifest(spec.name) or {}
        row = (build.get("sizes") or {}).get(size, {})
        corpus = build.get("corpus", {})
        training = {"corpus": "builtin prose: documentation and docstrings of Python's standard library and of "
                              + ", ".join(corpus.get("packages") or []),
                    "corpus_sha256": corpus.get("hash"), "train_tokens": row.get("train_tokens"),
                    "val_loss": row.get("val_loss"), "recipe": build.get("recipe")}
    elif spec.kind == "hub":
        training = {"corpus": "WebText (OpenAI, 2019): outbound Reddit links with at least 3 karma; not redistributed"}
    hub_id = spec.size(size).hub_id
    # named, not located: a local path would tie the record to this machine (and leak its layout)
    return {"family": plan.family, "size": size, "source": f"hub:{hub_id}" if hub_id else f"{plan.family}/{size}",
            "hub_id": hub_id,
            "n_params": loaded.n_params, "n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
            "n_positions": loaded.n_positions, "vocab_size": cfg.vocab_size, "weights_sha256": loaded.model_hash,
            "tokenizer_sha256": loaded.tokenizer_hash, "training": training}


def build_evaluation(*, run: dict, stage: dict, model: dict, released: list[str], measured: dict,
                     gates: list[dict], models: dict | None = None) -> dict:
    """The evaluation record of one stage (schema ``gpt2guard.release.evaluation/1``).

    ``model`` is the stage's most capable size; ``models`` (size -> details) every size of
    the stage, which the per-size cards read. ``detection.by_size_sampling`` is the one
    source of every flagged rate (at the calibrated threshold, abstentions not flagged).
    ``robustness`` (the publishable detector on attacked test texts) and ``watermark`` (the
    stage's API watermark, its key's digest and detection) appear when the stage measured them.
    """
    detection = dict(measured.get("detection_summary") or {})
    detection["by_size_sampling"] = measured.get("detection")
    extra = {"models": models} if models else {}
    record = clean({"schema": SCHEMA, "run": run, "stage": stage, "model": model, **extra, "released_before": released,
                    "detector": measured.get("detector"), "detection": detection,
                    "transfer": measured.get("transfer_matrix"), "transfer_gate": measured.get("transfer"),
                    "perplexity": measured.get("perplexity"), "quality_gain": measured.get("quality_gain"),
                    **{k: measured[k] for k in ("robustness", "watermark") if measured.get(k) is not None},
                    "gates": gates, "data": measured.get("data")})
    record["evaluation_sha256"] = sha256_json(record)
    return record


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ci(ci) -> str:
    return f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""


def gate_table(gates: list[dict]) -> list[str]:
    """Markdown table of gate results."""
    lines = ["| gate | metric | value | threshold | result | judged against | note |", "|---|---|---|---|---|---|---|"]
    for g in gates:
        value = "n/a" if g["value"] is None else f"{g['value']:.4g}{_ci(g['ci'])}"
        threshold = "" if g["threshold"] is None else f"{g['op']} {g['threshold']:g}"
        result = ("pass" if g["passed"] else "FAIL") + ("" if g["required"] else " (advisory)")
        lines.append(f"| {g['name']} | {g['metric']} | {value} | {threshold} | {result} | {g.get('reference') or ''} "
                     f"| {g['note']} |")
    return lines


def _worst(block: dict | None, attack: str) -> tuple | None:
    """The lowest rate under ``attack`` over every size and sampling method of ``block``."""
    cells = [(c["tpr"], size, method) for size, by in ((block or {}).get("by_size") or {}).items()
             for method, cs in by.items() for a, c in cs.items() if a == attack and c.get("tpr") is not None]
    return min(cells) if cells else None


def attack_report(evaluation: dict) -> list[str]:
    """The attack table of a stage's report: per attack, the worst flagged rate of the
    publishable detector and, for a watermarked stage, the worst detected rate of the watermark."""
    rob, wm = evaluation.get("robustness"), evaluation.get("watermark")
    if not rob and not wm:
        return []
    attacks = list(dict.fromkeys((rob or {}).get("attacks", []) + (wm or {}).get("attacks", [])))
    lines = ["", "## Attacks", "",
             "Worst rate over sizes and sampling methods: flagged by the publishable detector at its threshold from "
             "clean human text" + (f"; detected by the {wm['scheme']} watermark at z >= {wm['z_threshold']:g} (key "
                                   f"sha256 {wm['key_sha256'][:16]}; human test text detected: "
                                   f"{wm['human']['n_detected']} of {wm['human']['n']})" if wm else "") + ".", "",
             "| attack | post-hoc detector flagged | watermark detected |", "|---|---|---|"]
    for a in attacks:
        cells = []
        for block in (rob, wm):
            w = _worst(block, a) if block else None
            cells.append("n/a" if w is None else f"{w[0]:.3f} ({w[1]} {w[2]})")
        lines.append(f"| {a} | {cells[0]} | {cells[1]} |")
    return lines


def stage_report(evaluation: dict) -> str:
    """The Markdown report of one stage: decision, gates, detection and perplexity."""
    st, det = evaluation["stage"], evaluation["detector"]
    lines = [f"# Stage {st['index']}: {st['name']} ({', '.join(st['sizes'])})", "",
             f"- Scenario: {evaluation['run']['scenario']}; date {st['date']}; tier {st['tier']}",
             f"- **Decision: {st['decision']}** ({st['reason']})",
             f"- Released before: {', '.join(evaluation['released_before']) or 'nothing'}",
             f"- Detector: {det['kind']} on features of {', '.join(det['scorers'])}, trained on "
             f"{', '.join(det['trained_on'])}; threshold {det['threshold']:.4g} for FPR {det['fpr']:g} on "
             f"{det['n_human_calibration']} human documents" + (f" ({det['fallback']})" if det.get("fallback") else ""),
             "", "## Gates", ""] + gate_table(evaluation["gates"])
    lines += ["", "## Detection at the calibrated threshold", "",
              "Flagged: share of the sample set's test documents scored above the threshold, documents the detector "
              "abstains on counted as not flagged (what the detectability gate judges). AUROC leaves abstentions out.",
              "", "| size | sampling | sample set | documents | flagged | AUROC | abstained |",
              "|---|---|---|---|---|---|---|"]
    samples = (evaluation.get("data") or {}).get("samples") or []
    sets = {(s.get("size"), s.get("sampling")): s.get("set") for s in samples
            if isinstance(s, dict) and s.get("split") == "test"}
    for size, by in (evaluation["detection"].get("by_size_sampling") or {}).items():
        for method, m in by.items():
            n = (m.get("n_machine") or 0) + (m.get("n_abstain") or 0)
            lines.append(f"| {size} | {method} | {sets.get((size, method), '-')} | {n} | "
                         f"{_num(m.get('tpr'))}{_ci(m.get('tpr_ci'))} | {_num(m.get('auroc'))}{_ci(m.get('auroc_ci'))} "
                         f"| {m.get('n_abstain', 0)} |")
    lines += attack_report(evaluation)
    lines += ["", "## Perplexity on held-out human text", "", "| size | perplexity | documents |", "|---|---|---|"]
    for size, p in evaluation["perplexity"].items():
        ci = p.get("ci")
        lines.append(f"| {size} | {p['ppl']:.1f}" + (f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "") + f" | {p['n_docs']} |")
    if det.get("warning"):
        lines += ["", f"Note: {det['warning']}."]
    return "\n".join(lines) + "\n"
