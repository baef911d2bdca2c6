"""The Ray Data engine against the local engine, same run, same machine: throughput and the
fixed start-up cost, at 1 and 2 Ray workers, on the builtin nano family.

Jobs (the issue's sizes; ``--quick`` shrinks them):

* generation: ``--gen-n`` documents (default 2,000) of nano ``--size`` with top-k 40, up to
  ``--length`` new tokens each (default 200, ``gpt2guard generate``'s), sharded 500 to a file, into a fresh directory
  per run, through :func:`~gpt2guard.generator.run.run_generation`;
* scoring: ``--score-n`` distinct documents (default 5,000: the builtin human corpus's
  documents of at most 100 words, each given its own numbered first line) to per-document
  sums under nano ``--size`` (:meth:`Scorer.score_sums <gpt2guard.detector.scoring.Scorer.score_sums>`,
  what ``gpt2guard score`` runs for a zero-shot method), without the stats cache.

Engines: ``local`` (this process, ``--threads`` torch threads, default 1); ``ray-1``: one
actor with as many; ``ray-2``: two such actors (twice the cores: the scale-out). One thread
each by default: on a shared 2-core machine a two-thread process waits at every parallel
region for both its threads to get a core, and runs many times slower than one thread.

Each Ray engine starts its own local Ray: the *start-up* column is ``ray.init`` (no work).
The generation job runs first on the fresh Ray, as one command's would (its workers start
cold), then the scoring job, then a tiny job (8 documents): the *fixed cost* of one more
pipeline on a started Ray (actors starting and loading the model, the driver's planning and
writing). Throughput is the full jobs'; the *overhead* is (Ray job + Ray start-up) / local
job - 1, what a user pays for ``--engine ray`` on a job of this size, start-up counted for
each job as one command would pay it (target at 1 worker: at most 15%).

The rounds alternate engines (``--rounds``, default 1) and each engine's fastest round is
kept: on a shared machine every engine sees the same spells of load. The set each Ray run
writes is checked against the local one, record for record.
Prints the CPU and the load average.

Run: ``PYTHONPATH=. python3 bench/bench_ray.py`` (``--quick`` for 400 / 1,000 documents).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def score_texts(n: int) -> list[str]:
    from gpt2guard.datasets.builtin import builtin_corpus

    docs = [d.text for d in builtin_corpus(max_words=100)]
    return [f"Document {i}.\n{docs[i % len(docs)]}" for i in range(n)]


def gen_job(out: Path, args, n: int):
    from gpt2guard.generator.run import GenerationJob

    return GenerationJob(out=str(out), family="nano", sizes=args.size, sampling="top-k=40", n=n, length=args.length,
                         seed=0, batch_size=8, shard_size=500)


def run_engine(name: str, engine, args, texts: list[str], work: Path) -> dict:
    """One engine's round: start-up, fixed cost, full generation and scoring jobs."""
    from gpt2guard.engine import make_scorer
    from gpt2guard.family import load_model
    from gpt2guard.generator.run import run_generation

    row = {"engine": name}
    session = None
    if engine.is_ray:
        from gpt2guard.engine.ray_session import ray_session

        t = time.perf_counter()
        session = ray_session(engine)
        session.__enter__()
        row["startup"] = time.perf_counter() - t
    else:
        row["startup"] = 0.0
    try:
        out = work / f"{name}-gen-{time.time_ns()}"
        t = time.perf_counter()  # the first pipeline on a fresh Ray: what one command pays
        summary = run_generation(gen_job(out, args, args.gen_n), progress=False, engine=engine)
        row["gen_s"] = time.perf_counter() - t
        row["gen_tokens"] = sum(s["tokens"] for s in summary)
        row["gen_dir"] = out
        scorer = make_scorer(load_model("nano", args.size), cache=False, engine=engine)
        t = time.perf_counter()
        sums = scorer.score_sums(texts)
        row["score_s"] = time.perf_counter() - t
        row["score_tokens"] = sum(s.n_tokens for s in sums)
        row["sums"] = [s.sums["logp"] for s in sums]
        out = work / f"{name}-tiny-{time.time_ns()}"
        t = time.perf_counter()  # one more pipeline on the started Ray: its fixed cost
        run_generation(gen_job(out, args, 8), progress=False, engine=engine)
        row["fixed"] = time.perf_counter() - t
    finally:
        if session is not None:
            session.__exit__(None, None, None)
    return row


def same_records(a: Path, b: Path) -> bool:
    files = sorted(p.name for p in a.glob("*.jsonl"))
    return files == sorted(p.name for p in b.glob("*.jsonl")) and all(
        (a / f).read_bytes() == (b / f).read_bytes() for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="nano size (default small, the smallest)")
    ap.add_argument("--gen-n", type=int, default=2000)
    ap.add_argument("--score-n", type=int, default=5000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the local engine and of each Ray actor")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="400 generated and 1,000 scored documents")
    args = ap.parse_args()
    if args.quick:
        args.gen_n, args.score_n = 400, 1000
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # load_model keeps the count given here
    import numpy as np
    import torch

    from gpt2guard.engine import Engine
    from gpt2guard.family import load_model

    torch.set_num_threads(args.threads)
    load_model("nano", args.size)  # built (once, minutes) before anything is timed
    texts = score_texts(args.score_n)
    engines = {"local": Engine(), "ray-1": Engine("ray", workers=1, threads=args.threads),
               "ray-2": Engine("ray", workers=2, threads=args.threads)}
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    best: dict[str, dict] = {}
    try:
        for r in range(args.rounds):
            for name, engine in engines.items():
                row = run_engine(name, engine, args, texts, work)
                print(f"round {r + 1} {name}: start-up {row['startup']:.1f}s, fixed {row['fixed']:.1f}s, "
                      f"generate {row['gen_s']:.1f}s, score {row['score_s']:.1f}s", flush=True)
                keep = best.get(name)
                if keep is None or row["gen_s"] + row["score_s"] < keep["gen_s"] + keep["score_s"]:
                    best[name] = row
        local = best["local"]
        print(f"\nCPU: {cpu_name()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} "
              f"(1 min) at the end; nano {args.size}; torch threads {args.threads}")
        print(f"generation: {args.gen_n} documents, top-k 40, up to {args.length} new tokens; "
              f"scoring: {args.score_n} documents to sums\n")
        print("| engine | Ray start-up s | fixed cost s (8 more docs) | generate s | gen tok/s | gen overhead | "
              "score s | score tok/s | score overhead |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, row in best.items():
            def over(key):
                if name == "local":
                    return "-"
                return f"{(row[key] + row['startup']) / local[key] - 1:+.1%}"

            print(f"| {name} | {row['startup']:.1f} | {row['fixed']:.1f} | {row['gen_s']:.1f} | "
                  f"{row['gen_tokens'] / row['gen_s']:.0f} | {over('gen_s')} | {row['score_s']:.1f} | "
                  f"{row['score_tokens'] / row['score_s']:.0f} | {over('score_s')} |")
        for name, row in best.items():
            if name == "local":
                continue
            same = same_records(local["gen_dir"], row["gen_dir"])
            diff = float(np.max(np.abs(np.array(row["sums"]) - np.array(local["sums"]))))
            print(f"{name}: set {'identical to' if same else 'differs from'} the local one record for record; "
                  f"largest |sum of log p| difference {diff:.2e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
