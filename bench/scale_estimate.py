"""Wall time to generate and score an OpenAI-size output set, from measured per-device throughput.

The work is that of OpenAI's gpt-2-output-dataset, redone with gpt2guard:

* generation: for each of the four GPT-2 sizes (124M, 355M, 774M, 1558M) and each of two
  sampling methods (pure sampling and top-k 40), one set of 250,000 train + 5,000 valid +
  5,000 test documents, eight sets in all, each document up to 1,024 tokens;
* scoring: every document of the eight generated sets and of WebText (250,000 + 5,000 +
  5,000 documents) under each of the four sizes, i.e. nine sets x four scorers.

Assumptions (each a parameter of :class:`Workload` and of the command line):

* every document is 1,024 tokens (``--gen-tokens``, ``--webtext-tokens``): an upper bound,
  since documents that end with ``<|endoftext|>`` are shorter;
* a device's time per token at another model size or context is interpolated linearly in
  forward FLOPs per token (:func:`archs.flops_per_token`: the weights' products plus the
  attention at the mean context) through the sizes measured: with one measured size, time
  per token is proportional to FLOPs; with two or more, the straight line through the
  smallest and the largest measured. Generation runs at a mean context of half the
  document (512 tokens for 1,024), scoring likewise, and measurements are corrected from
  the context they ran at;
* the work is split over N devices by documents, which need no communication; with more
  than one device a parallel efficiency (``--efficiency``, default 0.9) covers model
  loading, stragglers and the last uneven shard. One device runs at its measured speed.

Usage::

    python bench/scale_estimate.py RESULT.json ... [--devices 1,8,64] [--efficiency 0.9]
    python bench/scale_estimate.py --rate generate:124M=5000 --rate score:124M=40000

where each RESULT.json is written by ``bench_scoring.py --json`` or
``bench_generate.py --json`` (the engine's and the sampling loop's tokens per second).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from archs import flops_per_token  # noqa: E402

SIZES = ("124M", "355M", "774M", "1558M")
KINDS = ("generate", "score")


@dataclass
class Workload:
    """OpenAI's output set: see the module notes.

    Parameters
    ----------
    docs_per_set : int
        Documents of one generated set (train + valid + test).
    methods : int
        Sampling methods per size (pure and top-k 40).
    gen_tokens : float
        Mean tokens of a generated document.
    webtext_docs : int
        Documents of WebText (train + valid + test).
    webtext_tokens : float
        Mean tokens of a WebText document.
    sizes : tuple of str
        The model sizes that generate one set per method each, and score every set.
    """

    docs_per_set: int = 260_000
    methods: int = 2
    gen_tokens: float = 1024.0
    webtext_docs: int = 260_000
    webtext_tokens: float = 1024.0
    sizes: tuple = SIZES

    def generate_tokens(self, size: str) -> float:
        """Tokens ``size`` generates: its sets, one per method."""
        return self.methods * self.docs_per_set * self.gen_tokens

    def score_tokens(self, size: str) -> float:
        """Tokens ``size`` scores: every generated set and WebText."""
        return len(self.sizes) * self.generate_tokens(size) + self.webtext_docs * self.webtext_tokens

    def mean_context(self, kind: str) -> float:
        """Mean attention context of a token: half a document."""
        if kind == "generate":
            return self.gen_tokens / 2
        generated = len(self.sizes) * self.methods * self.docs_per_set
        mean_doc = (generated * self.gen_tokens + self.webtext_docs * self.webtext_tokens) / (
            generated + self.webtext_docs)
        return mean_doc / 2


@dataclass
class Rate:
    """A measured throughput: ``tokens_per_s`` of ``kind`` (generate/score) on architecture
    ``arch`` at mean attention context ``context``, on one device."""

    kind: str
    arch: str
    tokens_per_s: float
    context: float = 512.0
    source: str = ""


def seconds_per_token(rates: list[Rate], kind: str, arch: str, context: float) -> float:
    """One device's seconds per token of ``kind`` on ``arch`` at ``context``, interpolated
    linearly in FLOPs per token through the measured rates (see the module notes)."""
    pts = sorted(((flops_per_token(r.arch, r.context), 1.0 / r.tokens_per_s) for r in rates if r.kind == kind
                  and r.tokens_per_s > 0), key=lambda p: p[0])
    if not pts:
        raise ValueError(f"no measured {kind} throughput")
    f = flops_per_token(arch, context)
    if len(pts) == 1 or pts[-1][0] == pts[0][0]:
        f0, t0 = pts[0]
        return t0 * f / f0
    (f0, t0), (f1, t1) = pts[0], pts[-1]
    slope = (t1 - t0) / (f1 - f0)
    t = t0 + slope * (f - f0)
    return t if t > 0 else t0 * f / f0  # a line through noisy points must not give a free token


def estimate(rates: list[Rate], devices=(1, 8, 64), efficiency: float = 0.9,
             work: Workload | None = None) -> dict:
    """Hours of generation and scoring, per size and in total, on each device count.

    Returns
    -------
    dict
        ``per_size``: per size, device-hours of generation and of scoring (one device);
        ``rows``: per device count, wall hours of generation, scoring and both.
    """
    work = work or Workload()
    per_size = {}
    for size in work.sizes:
        per_size[size] = {kind: (work.generate_tokens(size) if kind == "generate" else work.score_tokens(size))
                          * seconds_per_token(rates, kind, size, work.mean_context(kind)) / 3600 for kind in KINDS}
    total = {kind: sum(v[kind] for v in per_size.values()) for kind in KINDS}
    rows = []
    for n in devices:
        eff = 1.0 if n == 1 else efficiency
        rows.append({"devices": n, "efficiency": eff, **{f"{k}_h": total[k] / (n * eff) for k in KINDS},
                     "total_h": sum(total.values()) / (n * eff)})
    return {"per_size": per_size, "rows": rows, "work": work.__dict__, "efficiency": efficiency}


def rates_from_results(results: list[dict], clock: str = "wall") -> list[Rate]:
    """:class:`Rate` s from the JSON of ``bench_scoring.py`` (the engine's tokens/s on its
    random-weight GPT-2 setup) and ``bench_generate.py`` (the sampling loop's best tokens/s
    per random-weight architecture). ``clock="cpu"`` takes tokens per second of process CPU
    time instead of wall time: on a shared CPU, what the work costs without the waits."""
    out = []
    for res in results:
        if res.get("arch") == "tiny":
            continue  # a dry run's two-layer model: its speed says nothing about GPT-2's
        if res.get("bench") == "scoring":
            for s in res.get("setups", []):
                if "GPT-2" in s["setup"] and "engine" in s.get("tokens_per_s", {}):
                    rate = s["tokens_per_s"]["engine"] if clock == "wall" else s["tokens"] / s["best_cpu_s"]["engine"]
                    out.append(Rate("score", res["arch"], rate, s["tokens"] / s["docs"] / 2,
                                    f"{res['device_name']} {res['dtype']}, {clock} clock"))
        elif res.get("bench") == "generate":
            best = {}
            for r in res.get("speed", []):
                if r.get("arch") not in (None, "tiny") and not r.get("variant"):
                    rate = r["ours_tok_s"] if clock == "wall" else r["ours_cpu_tok_s"]
                    if rate > best.get(r["arch"], (0, 0))[0]:
                        best[r["arch"]] = (rate, r["tokens"] / 2)
            out += [Rate("generate", a, v, c, f"{res['device_name']} {res['dtype']}, {clock} clock")
                    for a, (v, c) in best.items()]
    return out


def _hours(h: float) -> str:
    if h >= 48:
        return f"{h / 24:,.1f} days"
    if h >= 1:
        return f"{h:,.1f} h"
    return f"{h * 60:,.1f} min"


def format_estimate(est: dict, rates: list[Rate], title: str = "") -> str:
    """The estimate as Markdown: the rates it rests on, hours per size, wall time per device count."""
    w = est["work"]
    lines = [f"### Scale estimate{': ' + title if title else ''}", "",
             f"Work: {len(w['sizes'])} sizes x {w['methods']} sampling methods x {w['docs_per_set']:,} documents of "
             f"{w['gen_tokens']:,.0f} tokens generated; those {len(w['sizes']) * w['methods']} sets and WebText "
             f"({w['webtext_docs']:,} documents of {w['webtext_tokens']:,.0f} tokens) scored under each size. "
             f"Time per token interpolated in forward FLOPs from the measured rates; efficiency "
             f"{est['efficiency']:.0%} with more than one device.", "",
             "Measured per-device rates:", ""]
    lines += [f"- {r.kind} {r.arch}: {r.tokens_per_s:,.0f} tokens/s at mean context {r.context:,.0f}"
              + (f" ({r.source})" if r.source else "") for r in rates]
    lines += ["", "| size | generation, device-hours | scoring, device-hours |", "|---|---:|---:|"]
    lines += [f"| {s} | {v['generate']:,.1f} | {v['score']:,.1f} |" for s, v in est["per_size"].items()]
    lines += ["", "| devices | generation | scoring | total |", "|---:|---:|---:|---:|"]
    lines += [f"| {r['devices']} | {_hours(r['generate_h'])} | {_hours(r['score_h'])} | {_hours(r['total_h'])} |"
              for r in est["rows"]]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="*", help="JSON written by bench_scoring.py / bench_generate.py --json")
    ap.add_argument("--rate", action="append", default=[], metavar="KIND:ARCH=TOK_S",
                    help="a throughput by hand, e.g. score:124M=40000 (context 512)")
    ap.add_argument("--devices", default="1,8,64")
    ap.add_argument("--efficiency", type=float, default=0.9, help="parallel efficiency with more than one device")
    ap.add_argument("--docs-per-set", type=int, default=Workload.docs_per_set)
    ap.add_argument("--gen-tokens", type=float, default=Workload.gen_tokens)
    ap.add_argument("--webtext-docs", type=int, default=Workload.webtext_docs)
    ap.add_argument("--webtext-tokens", type=float, default=Workload.webtext_tokens)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="rates from wall time (default) or from process CPU time (a shared CPU's work without waits)")
    ap.add_argument("--json", metavar="OUT", help="also write the estimate here")
    args = ap.parse_args(argv)
    results = []
    for path in args.results:
        with open(path) as f:
            results.append(json.load(f))
    rates = rates_from_results(results, args.clock)
    for spec in args.rate:
        try:
            head, value = spec.split("=")
            kind, arch = head.split(":")
            rates.append(Rate(kind, arch, float(value), source="given"))
        except ValueError:
            raise SystemExit(f"--rate {spec!r}: use KIND:ARCH=TOKENS_PER_S, e.g. score:124M=40000") from None
    kinds = {r.kind for r in rates}
    if kinds != set(KINDS):
        raise SystemExit(f"need a generation and a scoring throughput; have {sorted(kinds) or 'none'}")
    work = Workload(args.docs_per_set, 2, args.gen_tokens, args.webtext_docs, args.webtext_tokens)
    est = estimate(rates, tuple(int(n) for n in args.devices.split(",")), args.efficiency, work)
    print(format_estimate(est, rates))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(est, f, indent=2)


if __name__ == "__main__":
    main()
