"""The summary a person reads first: decisions, detectability and quality by stage, per scenario.

:func:`stage_rows` flattens a scenario's decision log and evaluations into rows;
:func:`format_table` prints them; :func:`write_summary` writes ``summary.md``,
``summary.json`` and ``summary.png`` (detectability and perplexity by stage, one line per
scenario, held stages marked).
"""

from __future__ import annotations

import json
from pathlib import Path

from gpt2guard.paths import atomic_write_text, write_json


def _worst(by_size_sampling: dict, method: str):
    cells = [by[method] for by in by_size_sampling.values() if method in by]
    if not cells:
        return None, None
    c = min(cells, key=lambda m: m["tpr"])
    return c["tpr"], c.get("tpr_ci")


def stage_rows(scenario: str, entries: list[dict], evaluations: dict[str, dict]) -> list[dict]:
    """One row per stage decision of a scenario (stage name -> its evaluation record)."""
    rows = []
    for e in entries:
        if e.get("type") != "decision":
            continue
        ev = evaluations.get(e["stage"])
        row = {"scenario": scenario, "stage": e["index"], "name": e["stage"], "sizes": e["sizes"], "date": e["date"],
               "tier": e["tier"], "decision": e["decision"], "reason": e["reason"], "tpr": {}, "auroc": None,
               "transfer_drop": None, "transfer_vs": None, "ppl": None, "quality_gain": None, "quality_vs": None}
        if ev:
            for method in ev["detection"]["by_sampling"]:
                row["tpr"][method] = _worst(ev["detection"]["by_size_sampling"], method)
            row["auroc"] = ev["detection"]["overall"]["auroc"]
            row["transfer_drop"] = (ev.get("transfer_gate") or {}).get("drop")
            best = (ev.get("quality_gain") or {}).get("size") or ev["stage"]["sizes"][-1]
            row["ppl"] = ev["perplexity"].get(best, {}).get("ppl")
            row["quality_gain"] = (ev.get("quality_gain") or {}).get("value")
            row["transfer_vs"] = _versus(ev.get("transfer_gate"))
            row["quality_vs"] = (ev.get("quality_gain") or {}).get("vs")
        rows.append(row)
    return rows


def _versus(transfer: dict | None) -> str | None:
    """Whom the transfer gate compared with, in a few words: chance or a third party's detector."""
    if not transfer:
        return None
    trained = (transfer.get("by_size", {}).get(transfer.get("size"), {}) or {}).get("third_party_trained_on")
    return f"det({'+'.join(trained)})" if trained else "chance"


def _f(v, fmt="{:.3f}") -> str:
    return "-" if v is None else fmt.format(v)


def _vs(v, ref, fmt="{:.3f}") -> str:
    return _f(v, fmt) + (f" vs {ref}" if v is not None and ref else "")


def format_table(rows: list[dict], markdown: bool = False) -> str:
    """The decision table: one line per stage of each scenario."""
    methods = list(dict.fromkeys(m for r in rows for m in r["tpr"]))
    head = ["scenario", "stage", "sizes", "date", "tier"] + [f"TPR@FPR {m}" for m in methods] + \
        ["AUROC", "transfer drop (vs third parties)", "ppl", "quality gain (vs public before)", "decision"]
    body = []
    for r in rows:
        tprs = []
        for m in methods:
            v, ci = r["tpr"].get(m, (None, None))
            tprs.append("-" if v is None else f"{v:.2f}" + (f" [{ci[0]:.2f},{ci[1]:.2f}]" if ci else ""))
        body.append([r["scenario"], f"{r['stage']} {r['name']}", "+".join(r["sizes"]), r["date"], r["tier"]] + tprs +
                    [_f(r["auroc"]), _vs(r["transfer_drop"], r.get("transfer_vs")), _f(r["ppl"], "{:.1f}"),
                     _vs(r["quality_gain"], r.get("quality_vs")), r["decision"]])
    return _table(head, body, markdown)


def scenario_table(rows: list[dict], markdown: bool = False) -> str:
    """Scenarios side by side: what each released and held, by when, and the least
    detectable released stage per sampling method."""
    methods = list(dict.fromkeys(m for r in rows for m in r["tpr"]))
    head = ["scenario", "released", "held or skipped", "last release"] + [f"worst released TPR {m}" for m in methods]
    body = []
    for sc in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == sc]
        out = [r for r in rs if r["decision"] == "release"]
        worst = []
        for m in methods:
            vals = [r["tpr"][m][0] for r in out if r["tpr"].get(m, (None,))[0] is not None]
            worst.append(f"{min(vals):.2f}" if vals else "-")
        body.append([sc, "+".join(z for r in out for z in r["sizes"]) or "-",
                     "+".join(z for r in rs if r["decision"] != "release" for z in r["sizes"]) or "-",
                     max((r["date"] for r in out), default="-")] + worst)
    return _table(head, body, markdown)


def _table(head: list, body: list, markdown: bool) -> str:
    if markdown:
        return "\n".join("| " + " | ".join(map(str, x)) + " |" for x in [head, ["---"] * len(head)] + body)
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head] + body)


def plot_summary(rows: list[dict], path: Path) -> None:
    """One panel per sampling method (worst TPR at the calibrated FPR, with its interval) and
    one of perplexity, by stage; a line per scenario, held stages drawn as crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    methods = list(dict.fromkeys(m for r in rows for m in r["tpr"]))
    fig, axes = plt.subplots(1, len(methods) + 1, figsize=(4.2 * (len(methods) + 1), 3.8), squeeze=False)
    axes = axes[0]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for si, sc in enumerate(scenarios):
        rs = [r for r in rows if r["scenario"] == sc and r["ppl"] is not None]
        colour, shift = colours[si % len(colours)], 0.06 * (si - (len(scenarios) - 1) / 2)
        for ax, m in zip(axes, methods):
            pts = [(r["stage"] + shift, *r["tpr"][m], r["decision"]) for r in rs if r["tpr"].get(m, (None,))[0] is not None]
            if not pts:
                continue
            x, y = [p[0] for p in pts], [p[1] for p in pts]
            err = [[p[1] - p[2][0] if p[2] else 0 for p in pts], [p[2][1] - p[1] if p[2] else 0 for p in pts]]
            ax.errorbar(x, y, yerr=err, color=colour, marker="o", capsize=3, label=sc)
            held = [(p[0], p[1]) for p in pts if p[3] != "release"]
            ax.scatter([h[0] for h in held], [h[1] for h in held], marker="x", s=80, color="black", zorder=5)
        axes[-1].plot([r["stage"] + shift for r in rs], [r["ppl"] for r in rs], color=colour, marker="o", label=sc)
        held = [r for r in rs if r["decision"] != "release"]
        axes[-1].scatter([r["stage"] + shift for r in held], [r["ppl"] for r in held], marker="x", s=80,
                         color="black", zorder=5)
    for ax, m in zip(axes, methods):
        ax.set(title=f"Detectability, {m}", ylabel="TPR at the calibrated FPR (worst size)", ylim=(0, 1.05))
    axes[-1].set(title="Perplexity, held-out human text", ylabel="perplexity")
    stages = sorted({r["stage"] for r in rows})
    for ax in axes:
        ax.set_xticks(stages)
        ax.set_xlabel("stage")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    fig.suptitle("Release simulation by stage (x: held)")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def write_summary(out: Path, rows: list[dict], title: str) -> dict[str, Path]:
    """``summary.md``, ``summary.json`` and ``summary.png`` in ``out``."""
    paths = {"md": out / "summary.md", "json": out / "summary.json", "png": out / "summary.png"}
    text = [f"# {title}", "", "## Scenarios side by side", "", scenario_table(rows, markdown=True), "",
            "## Every stage", "", format_table(rows, markdown=True), "",
            "![detectability and perplexity](summary.png)", ""]
    for r in rows:
        if r["decision"] != "release":
            text.append(f"- {r['scenario']} stage {r['stage']} ({r['name']}): {r['decision']}: {r['reason']}")
    atomic_write_text(paths["md"], "\n".join(text) + "\n")
    write_json(paths["json"], json.loads(json.dumps(rows)))
    plot_summary(rows, paths["png"])
    return paths
