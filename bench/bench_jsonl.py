"""Benchmark: gpt2guard's set reader and writer against a plain ``json.loads`` loop.

Generates a JSONL file in gpt-2-output-dataset form (``id``, ``ended``, ``length``, ``text``;
about 200 MB by default, in /tmp), then times, each in its own process so that peak memory
(``ru_maxrss``) belongs to one variant only:

``plain read``        ``for line in file: json.loads(line)``
``gpt2guard read``    :func:`gpt2guard.datasets.sets.open_set` (records with validation)
``plain copy``        the plain read plus ``f.write(json.dumps(obj) + "\\n")``
``gpt2guard copy``    ``open_set`` into a :class:`~gpt2guard.datasets.writer.SetWriter`
                      (unique-id check, SHA-256, flush per record, manifest)

and prints records per second, MB per second, the time of each gpt2guard variant relative to
its plain counterpart, peak resident memory of the process, and the peak of Python
allocations during the loop (``tracemalloc``, measured in a second, untimed run). Usage::

    python bench/bench_jsonl.py                 # ~200 MB
    python bench/bench_jsonl.py --size-mb 20    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(path: Path, size_mb: float, seed: int = 0) -> int:
    """Write OpenAI-style records until the file holds ``size_mb`` megabytes; return the count."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(rng.choice(letters, size=int(n))) for n in rng.integers(1, 11, 3000)]
    vocab += ["café", "naïve", "–", "“quoted”", "Zürich", "déjà", "…"]
    vocab = np.array(vocab)
    target, n, written = size_mb * 1e6, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            words = vocab[rng.integers(0, len(vocab), int(rng.lognormal(6.0, 0.6)) + 1)]
            text = " ".join(words) + "."
            line = json.dumps({"id": 255000 + n, "ended": bool(rng.random() < 0.7), "length": int(len(words) * 1.3),
                               "text": text}) + "\n"
            f.write(line)
            written += len(line.encode("utf-8"))
            n += 1
    return n


def child(variant: str, src: Path, out: Path, trace: bool) -> dict:
    """Run one variant in this process; return its counts, time and peak memory."""
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    from gpt2guard.datasets.sets import open_set
    from gpt2guard.datasets.writer import SetWriter

    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    n = 0
    if variant == "plain read":
        with open(src, "rb") as f:
            for line in f:
                json.loads(line)
                n += 1
    elif variant == "gpt2guard read":
        for _ in open_set(src.parent, "bench", "train"):
            n += 1
    elif variant == "plain copy":
        with open(src, "rb") as f, open(out / "plain.jsonl", "w", encoding="utf-8") as g:
            for line in f:
                g.write(json.dumps(json.loads(line)) + "\n")
                n += 1
    elif variant == "gpt2guard copy":
        with SetWriter(out, "copy", "train", resume=False, overwrite=True) as w:
            for rec in open_set(src.parent, "bench", "train"):
                w.write(rec)
                n += 1
    elif variant != "baseline":
        raise SystemExit(f"unknown variant {variant}")
    seconds = time.perf_counter() - t0
    return {"variant": variant, "records": n, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_traced_mb": tracemalloc.get_traced_memory()[1] / 1e6 if trace else None}


def run_variant(variant: str, src: Path, out: Path, trace: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, str(src), str(out)] + (["--trace"] if trace else [])
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=200.0, help="size of the generated JSONL (default 200)")
    ap.add_argument("--dir", default="/tmp/gpt2guard-bench-jsonl", help="working directory (deleted afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "SRC", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.trace)))
        return

    work = Path(args.dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    src = work / "bench.train.jsonl"
    t0 = time.perf_counter()
    n = generate(src, args.size_mb)
    mb = src.stat().st_size / 1e6
    print(f"generated {src}: {n:,} records, {mb:.1f} MB in {time.perf_counter() - t0:.1f}s "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    base = run_variant("baseline", src, work / "out")
    print(f"interpreter + imports alone: {base['peak_rss_mb']:.1f} MB peak RSS\n")
    print(f"{'variant':<16} {'seconds':>8} {'records/s':>11} {'MB/s':>7} {'time vs plain':>14} {'peak RSS MB':>12} "
          f"{'peak Python heap MB':>20}")
    results = {}
    for variant in ("plain read", "gpt2guard read", "plain copy", "gpt2guard copy"):
        r = results[variant] = run_variant(variant, src, work / "out")
        r["peak_traced_mb"] = run_variant(variant, src, work / "out", trace=True)["peak_traced_mb"]
        assert r["records"] == n, r
        plain = results.get(variant.replace("gpt2guard", "plain"))
        ratio = f"{r['seconds'] / plain['seconds']:.2f}x" if plain is not r else ""
        print(f"{variant:<16} {r['seconds']:>8.2f} {n / r['seconds']:>11,.0f} {mb / r['seconds']:>7.1f} {ratio:>14} "
              f"{r['peak_rss_mb']:>12.1f} {r['peak_traced_mb']:>20.2f}")
    manifest = json.loads((work / "out" / "copy.train.manifest.json").read_text())
    assert manifest["records"] == n and manifest["complete"]
    print(f"\ncopy verified: {manifest['records']:,} records, sha256 {manifest['shards'][0]['sha256'][:16]}")
    if not args.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
