"""Merge the JSON results of ``bench/gpu_check.sh`` into one Markdown table, and the scale
estimate from their throughputs.

Rows: per benchmark (scoring, generation), architecture and dtype, our tokens per second
against the baseline measured in the same run (scoring: the per-document approach of the
reference tools; generation: transformers' ``generate()``) and their ratio. Then, per
device and dtype, :mod:`scale_estimate`'s wall time for an OpenAI-size output set on 1, 8
and 64 such devices.

Usage::

    python bench/gpu_table.py RESULTS_DIR [--efficiency 0.9]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from scale_estimate import KINDS, estimate, format_estimate, rates_from_results  # noqa: E402

ARCH_ORDER = ("tiny", "124M", "355M", "774M", "1558M")


def load_results(directory: str) -> list[dict]:
    """Every bench JSON (``"bench"`` scoring or generate) in ``directory``, sorted by bench,
    architecture and dtype; unreadable files are reported on stderr and left out."""
    out = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        try:
            with open(path) as f:
                res = json.load(f)
        except (OSError, ValueError) as exc:
            print(f"skipping {path}: {exc}", file=sys.stderr)
            continue
        if isinstance(res, dict) and res.get("bench") in ("scoring", "generate"):
            res["_file"] = os.path.basename(path)
            out.append(res)
    return sorted(out, key=lambda r: (r["bench"] != "scoring", _arch_key(_arch(r)), r.get("dtype") != "float32"))


def _arch(res: dict) -> str:
    if res["bench"] == "scoring":
        return res.get("arch", "?")
    rows = res.get("speed") or [{}]
    return rows[0].get("arch") or rows[0].get("model", "?")


def _arch_key(arch: str) -> int:
    return ARCH_ORDER.index(arch) if arch in ARCH_ORDER else len(ARCH_ORDER)


def table_rows(results: list[dict]) -> list[dict]:
    """One row per measured (bench, architecture, dtype[, batch])."""
    rows = []
    for res in results:
        if res["bench"] == "scoring":
            for s in res.get("setups", []):
                tps = s["tokens_per_s"]
                notes = [f"{s['docs']} docs, {s['tokens']:,} tokens", f"bare forward {tps['bare']:,.0f} tok/s",
                         f"statistics overhead {s['overhead_wall']:+.0%}",
                         f"log p within {s['max_abs_dlogp']:.1e} of per-document"]
                if "engine bf16" in tps:
                    notes.append(f"engine under bf16 autocast {tps['engine bf16']:,.0f} tok/s")
                rows.append({"bench": "scoring", "arch": res["arch"], "dtype": res["dtype"], "ours": tps["engine"],
                             "baseline": "per-document", "base": tps["per-doc"], "ratio": tps["engine"] / tps["per-doc"],
                             "notes": "; ".join(notes)})
        else:
            for r in res.get("speed", []):
                if r.get("variant"):
                    continue
                rows.append({"bench": "generation", "arch": r.get("arch") or r["model"], "dtype": r["dtype"],
                             "ours": r["ours_tok_s"], "baseline": "generate()", "base": r["generate_tok_s"],
                             "ratio": r["ratio"], "notes": f"batch {r['batch_size']}, {r['tokens']} new tokens, "
                                                           f"{res['sampling']}"})
    return rows


def format_table(results: list[dict]) -> str:
    """The Markdown table of every result, headed by the device and versions."""
    if not results:
        return "no results"
    heads = sorted({f"{r.get('device_name', '?')} ({r.get('device', '?')}), torch {r.get('torch', '?')}, "
                    f"CUDA {r.get('cuda') or '-'}" for r in results})
    lines = ["Device: " + "; ".join(heads), "",
             "| bench | arch | dtype | ours tok/s | baseline | baseline tok/s | ours / baseline | notes |",
             "|---|---|---|---:|---|---:|---:|---|"]
    for r in table_rows(results):
        lines.append(f"| {r['bench']} | {r['arch']} | {r['dtype']} | {r['ours']:,.0f} | {r['baseline']} | "
                     f"{r['base']:,.0f} | {r['ratio']:.2f}x | {r['notes']} |")
    return "\n".join(lines)


def estimates(results: list[dict], efficiency: float = 0.9) -> list[str]:
    """A scale estimate per (device, dtype) that measured both generation and scoring."""
    groups = {}
    for res in results:
        groups.setdefault((res.get("device_name", "?"), res.get("dtype", "?")), []).append(res)
    out = []
    for (name, dtype), group in sorted(groups.items()):
        rates = rates_from_results(group)
        if {r.kind for r in rates} != set(KINDS):
            out.append(f"(no estimate for {name} {dtype}: it needs a GPT-2 size measured for both scoring and "
                       "generation; the tiny dry-run model does not count)")
            continue
        out.append(format_estimate(estimate(rates, efficiency=efficiency), rates, f"{name}, {dtype}"))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", help="where gpu_check.sh wrote its JSON results")
    ap.add_argument("--efficiency", type=float, default=0.9, help="parallel efficiency with more than one device")
    args = ap.parse_args(argv)
    results = load_results(args.directory)
    if not results:
        print(f"no benchmark results in {args.directory}")
        return 1
    print(format_table(results))
    for block in estimates(results, args.efficiency):
        print()
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
