"""Benchmark: ``gpt2guard datasets import`` and ``gpt2guard score`` on one huge document.

Generates, deterministically, documents of 1, 10 and 50 MB of human prose (the builtin corpus's
documents shuffled with a seed and repeated until the size is reached; written as a ``.txt``
file for ``score`` and a one-record ``.jsonl`` for ``import``), then runs each command on each
document in its own process and reports wall time and peak resident memory (``ru_maxrss`` of
that process, via ``ru_maxrss``). Also, as baselines measured in the same run, on the 10 MB
document only: the peak memory and time of what ``import`` and ``score`` did before they
streamed, tokenising the whole document in one tokenizer call (the step that took 7.3 GB on
50 MB; on 50 MB it takes the machine's memory); and the per-token path of ``score`` (the
document scored to full per-token records, :meth:`Scorer.score`, then the method), which
``score`` took before it scored zero-shot methods to per-document sums.

Printed: a table (command, MB, tokens, seconds, seconds per MB, peak RSS) and the linearity
ratio of each command, ``time(largest) / (size ratio x time(smallest))`` (1.0 = linear). The
token statistics ``score`` caches for each document are deleted after it, so every run scores
(a document's statistics cached by an earlier, interrupted run would make it a cache hit:
clear ``<cache>/detector/stats`` then). Usage::

    python bench/bench_large_docs.py                    # 1, 10, 50 MB (minutes; run once)
    python bench/bench_large_docs.py --quick            # 0.5 and 2 MB
    python bench/bench_large_docs.py --sizes 1,10 --family micro
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def generate(path: Path, size_mb: float, seed: int = 0) -> int:
    """Write ``size_mb`` megabytes of builtin human prose (shuffled, repeated) to ``path``."""
    import numpy as np

    from gpt2guard.datasets.builtin import builtin_corpus

    docs = [d.text for d in builtin_corpus()]
    rng = np.random.default_rng(seed)
    target, written = int(size_mb * 1e6), 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            for i in rng.permutation(len(docs)):
                piece = docs[i] + "\n\n"
                f.write(piece)
                written += len(piece.encode("utf-8"))
                if written >= target:
                    break
    return written


# Runs a script or the CLI in a child process and reports its own peak RSS at exit.
WRAPPER = """
import atexit, resource, runpy, sys
def report():
    u = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write("\\nMAXRSS_KB %d\\nCPU_S %.3f\\n" % (u.ru_maxrss, u.ru_utime + u.ru_stime))
atexit.register(report)
if sys.argv[1] == "cli":
    sys.argv = ["gpt2guard"] + sys.argv[2:]
    from gpt2guard.cli import main
    main()
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


CPU = {"last": 0.0}  # CPU seconds of the last child


def measured(argv: list[str], env: dict) -> tuple[float, float, str]:
    """Run ``argv`` (``["cli", ...]`` for a gpt2guard command, else a script and its
    arguments) in a child process; return (wall seconds, peak RSS in MB, its stdout). Its
    CPU seconds (user + system) go to ``CPU["last"]``: on a shared machine they, not the
    wall time, show whether the time is linear."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER] + argv, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])}... failed:\n{proc.stderr[-2000:]}")
    kb = [line for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB")]
    cpu = [line for line in proc.stderr.splitlines() if line.startswith("CPU_S")]
    CPU["last"] = float(cpu[-1].split()[1])
    return seconds, int(kb[-1].split()[1]) / 1024, proc.stdout


BASELINE = """
import sys, time
from gpt2guard.family import load_tokenizer
tok = load_tokenizer(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8").read()
t0 = time.perf_counter()
n = len(tok(text, add_special_tokens=False)["input_ids"])
print(n, time.perf_counter() - t0)
"""


BASELINE_SCORE = """
import sys, time
from gpt2guard.detector import Scorer, get_method
from gpt2guard.family import load_model
scorer = Scorer(load_model(sys.argv[1]), cache=False)
text = open(sys.argv[2], "rb").read()
t0 = time.perf_counter()
(stats,) = scorer.score([text])
print(stats.n_tokens, get_method(sys.argv[3])(stats), time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,10,50", help="document sizes in MB, comma-separated")
    ap.add_argument("--quick", action="store_true", help="0.5 and 2 MB only")
    ap.add_argument("--family", default="nano",
                    help="scorer and tokenizer family (nano, micro) or a model directory (e.g. one built nano size)")
    ap.add_argument("--method", default="logrank", help="zero-shot method for score")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the baselines (whole-text tokenisation; score's per-token path)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of each child (OMP_NUM_THREADS; 1 keeps a shared machine's numbers steady)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sizes = [0.5, 2.0] if args.quick else [float(s) for s in args.sizes.split(",")]

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS=str(args.threads))
    sys.path.insert(0, str(ROOT))
    from gpt2guard.family import load_model
    from gpt2guard.paths import cache_dir

    load_model(args.family)  # built before timing, if it has to be
    rows, scores = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        tmp = Path(tmp)
        for mb in sizes:
            txt = tmp / f"doc{mb:g}.txt"
            generate(txt, mb, args.seed)
            jsonl = tmp / f"doc{mb:g}.jsonl"
            jsonl.write_text(json.dumps({"id": "big", "text": txt.read_text(encoding="utf-8")}) + "\n",
                             encoding="utf-8")
            secs, rss, _ = measured(["cli", "datasets", "import", str(jsonl), str(tmp / "sets"),
                                     "--set", f"big{mb:g}".replace(".", "_"), "--split", "test", "--family", args.family,
                                     "--label", "human"], env)
            from gpt2guard.datasets.sets import open_set

            (rec,) = list(open_set(tmp / "sets", f"big{mb:g}".replace(".", "_"), "test"))
            rows.append(("import", mb, rec.length, secs, rss, CPU["last"]))
            stats_dir = cache_dir() / "detector" / "stats"
            before = set(stats_dir.rglob("*.npz"))
            secs, rss, out = measured(["cli", "score", str(txt), "--family", args.family, "--method",
                                       args.method, "--threshold", "0", "--format", "json"], env)
            for path in set(stats_dir.rglob("*.npz")) - before:  # so that a later run scores again
                path.unlink()
            (verdict,) = json.loads(out)
            scores[mb] = verdict["score"]
            rows.append(("score", mb, verdict["n_tokens"], secs, rss, CPU["last"]))
            for row in rows[-2:]:
                print(f"  {row[0]} {mb:g} MB: {row[2]} tokens, {row[3]:.1f} s ({row[5]:.1f} CPU s), "
                      f"peak RSS {row[4]:.0f} MB",
                      file=sys.stderr, flush=True)
        base = base_score = None
        if not args.no_baseline:
            mb = 10.0 if 10.0 in sizes else sizes[-1]
            script = tmp / "baseline.py"
            script.write_text(BASELINE, encoding="utf-8")
            wall, rss, out = measured([str(script), args.family, str(tmp / f"doc{mb:g}.txt")], env)
            n, secs = out.split()
            base = (mb, int(n), float(secs), rss)
            script = tmp / "baseline_score.py"
            script.write_text(BASELINE_SCORE, encoding="utf-8")
            wall, rss, out = measured([str(script), args.family, str(tmp / f"doc{mb:g}.txt"), args.method], env)
            n, value, secs = out.split()
            base_score = (mb, int(n), float(value), wall, rss)

    print(f"\n{'command':<8} {'MB':>5} {'tokens':>10} {'seconds':>8} {'s/MB':>6} {'CPU s':>8} {'peak RSS MB':>12}")
    for cmd, mb, n, secs, rss, cpu in rows:
        print(f"{cmd:<8} {mb:>5g} {n:>10} {secs:>8.1f} {secs / mb:>6.2f} {cpu:>8.1f} {rss:>12.0f}")
    for cmd in ("import", "score"):
        mine = [r for r in rows if r[0] == cmd]
        if len(mine) > 1:
            small, large = mine[0], mine[-1]
            ratio = large[3] / (large[1] / small[1] * small[3])
            cpu_ratio = large[5] / (large[1] / small[1] * small[5])
            print(f"{cmd} linearity: time({large[1]:g} MB) / ({large[1] / small[1]:g} x time({small[1]:g} MB)) "
                  f"= {ratio:.2f} wall, {cpu_ratio:.2f} CPU  (1.00 = linear; the fixed start-up cost pushes it "
                  "below 1)")
    if base:
        mb, n, secs, rss = base
        stream = next(r for r in rows if r[0] == "import" and r[1] == mb)
        print(f"baseline: whole-text tokenisation of the {mb:g} MB document in one call (what import and score "
              f"did before): peak RSS {rss:.0f} MB in {secs:.1f} s; streaming import of it: {stream[4]:.0f} MB "
              f"({rss / stream[4]:.1f}x less)")
        mb, n, value, wall, rss = base_score
        bounded = next(r for r in rows if r[0] == "score" and r[1] == mb)
        print(f"baseline: the {mb:g} MB document scored to per-token records, then {args.method} (what score did "
              f"before): peak RSS {rss:.0f} MB in {wall:.1f} s; score's bounded path: {bounded[4]:.0f} MB "
              f"({rss / bounded[4]:.2f}x less); {args.method} {float(value):.10g} per-token, "
              f"{scores[mb]:.10g} bounded")


if __name__ == "__main__":
    main()
