"""CPU time of main-job work alone and beside another CPU-bound process, per thread policy.

On a machine whose cores other processes also use, torch's OpenMP threads that wait for
each other spin by default, and a thread spinning on a core another process holds burns
CPU time without doing work: the same job then costs several times the CPU seconds it costs
on a quiet machine. This benchmark measures that, for two thread policies:

``old``  every CPU of the process's affinity as torch threads, the OpenMP runtime's default
         wait policy (spinning): what gpt2guard did before.
``passive`` every CPU as torch threads, ``OMP_WAIT_POLICY=PASSIVE``: the wait policy alone
         (``--policies old,passive,new`` to include it).
``new``  gpt2guard's policy (:mod:`gpt2guard.family.load`): ``OMP_WAIT_POLICY=PASSIVE``
         (and ``KMP_BLOCKTIME=0``) set before torch loads, as the CLI does, torch threads
         from :func:`~gpt2guard.family.load.pick_threads` (the CPUs other processes do not
         keep busy) and one inter-op thread.

The work (``--work``) is a warm slice of the main job, run in a fresh subprocess: a GPT-2
with nano xl's shape (4 layers, width 200, vocabulary 4096; random weights, nothing to
build) is scored by the scoring engine over 48 documents of 64-256 tokens, generates 16
records of 96 tokens in batches of 8 with the sampling loop, and trains for 6 steps on
batches of 4 x 256 tokens (the family build's kind of work). ``micro`` and ``124m`` scale it.

Each policy's work runs ``--repeats`` times alone and as often beside a second CPU-bound
process (a Python busy loop, one thread; ``--busy N`` starts N), interleaved. CPU seconds
are the children's ``resource.getrusage(RUSAGE_CHILDREN)`` user + system time, read around
each run: the whole child, imports included (about 5 CPU seconds of torch and transformers
on the machine measured), as a CLI run costs; the work's own CPU seconds (the child's
``time.process_time`` around it) are shown too. The output is, per policy, the least CPU seconds and wall seconds of each
condition and the ratio beside / alone (target: at most 1.5x for the new policy), with the
CPU model, the threads each run used and the 1-minute load average before each run: the
machine may be shared with other work, which this benchmark cannot see apart from the load.

Usage::

    PYTHONPATH=. python3 bench/bench_contention.py [--repeats 2] [--work nano]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

WORKS = {  # n_layer, n_embd, vocab, positions, scored docs, generated records, new tokens, train steps
    "micro": (1, 32, 512, 128, 24, 8, 48, 4),
    "nano": (4, 200, 4096, 256, 48, 16, 96, 6),
    "124m": (12, 768, 50257, 1024, 8, 8, 32, 1),
}
POLICY_ENV = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "GOMP_SPINCOUNT", "MKL_NUM_THREADS")


def child(policy: str, work: str) -> None:
    """One run of the work under ``policy``, in this fresh process; prints JSON."""
    if policy in ("new", "passive"):
        from gpt2guard.family.load import thread_env_defaults

        thread_env_defaults()
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2guard.detector import score_token_ids, wrap_model
    from gpt2guard.family.load import quiet_transformers, set_threads
    from gpt2guard.generator import parse_sampling, sample_batch

    quiet_transformers()
    if policy == "new":
        threads = set_threads()
    else:
        threads = len(os.sched_getaffinity(0))
        torch.set_num_threads(threads)
    n_layer, width, vocab, positions, n_docs, n_gen, n_new, steps = WORKS[work]
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=width, n_layer=n_layer,
                     n_head=max(1, width // 8) if width < 768 else 12, eos_token_id=vocab - 1, bos_token_id=vocab - 1)
    model = GPT2LMHeadModel(cfg).eval()
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, vocab - 1, size=int(n)) for n in rng.integers(positions // 4, positions, size=n_docs)]
    loaded = wrap_model(model, None, f"contention-{work}")
    t0, c0 = time.perf_counter(), time.process_time()
    score_token_ids(docs, loaded)                                                  # scoring
    sampling = parse_sampling("top-k=40")[0]
    for start in range(0, n_gen, 8):                                               # generation
        seeds = list(range(start, min(start + 8, n_gen)))
        sample_batch(model, [[vocab - 1]] * len(seeds), [n_new] * len(seeds), sampling, seeds,
                     eos_id=vocab - 1, stop_at_eos=False)
    model.train()                                                                  # training steps
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for _ in range(steps):
        ids = torch.from_numpy(rng.integers(0, vocab, size=(4, positions))).long()
        loss = model(ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    print(json.dumps({"threads": threads, "wall": time.perf_counter() - t0, "own_cpu": time.process_time() - c0,
                      "wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))


def busy_loop(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def run_once(policy: str, work: str, busy: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in POLICY_ENV}
    hogs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--busy-child", "600"])
            for _ in range(busy)]
    try:
        if hogs:
            time.sleep(1.0)                      # let the load average and the scheduler see them
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", policy, "--work", work],
                             check=True, capture_output=True, text=True, env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res.update(cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), load=load)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", choices=sorted(WORKS), default="nano", help="size of the work (default nano)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each policy and condition, interleaved")
    ap.add_argument("--busy", type=int, default=1, help="CPU-bound processes beside the work (default 1)")
    ap.add_argument("--policies", default="old,new", help="comma-separated: old, passive, new")
    ap.add_argument("--child", choices=("old", "passive", "new"), help=argparse.SUPPRESS)
    ap.add_argument("--busy-child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.busy_child:
        busy_loop(args.busy_child)
        return
    if args.child:
        child(args.child, args.work)
        return

    from gpt2guard.family.linear import cpu_fingerprint

    fp = cpu_fingerprint()
    ncpu = len(os.sched_getaffinity(0))
    print(f"{fp['vendor']} {fp['model']} ({fp['isa']}), {ncpu} CPUs, torch {fp['torch']}; work {args.work}, "
          f"{args.busy} busy process(es) beside, best of {args.repeats}; load average {os.getloadavg()[0]:.2f}",
          file=sys.stderr, flush=True)
    policies = [p for p in args.policies.split(",") if p]
    runs: dict[tuple[str, int], list[dict]] = {}
    for r in range(args.repeats):
        for busy in (0, args.busy):
            for policy in policies:
                res = run_once(policy, args.work, busy)
                runs.setdefault((policy, busy), []).append(res)
                print(f"  round {r + 1}: {policy:3s} {'beside ' + str(busy) + ' busy' if busy else 'alone':14s} "
                      f"{res['threads']} thread(s), wait {res['wait_policy']}: CPU {res['cpu']:.2f} s, wall "
                      f"{res['wall']:.2f} s (load before {res['load']:.2f})", file=sys.stderr, flush=True)
    print(f"\n{fp['vendor']} {fp['model']}, {ncpu} CPUs, work {args.work}, best of {args.repeats}, "
          f"1-minute load average {os.getloadavg()[0]:.2f} at the end")
    print("| policy | threads alone / beside | CPU s alone | CPU s beside | CPU-time ratio | work CPU s alone / beside "
          "| wall s alone | wall s beside | load before runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for policy in policies:
        alone, beside = runs[(policy, 0)], runs[(policy, args.busy)]
        ca, cb = min(x["cpu"] for x in alone), min(x["cpu"] for x in beside)
        wa, wb = min(x["wall"] for x in alone), min(x["wall"] for x in beside)
        loads = ", ".join(f"{x['load']:.1f}" for x in alone + beside)
        threads = f"{'/'.join(sorted({str(x['threads']) for x in alone}))} / " \
                  f"{'/'.join(sorted({str(x['threads']) for x in beside}))}"
        oa, ob = min(x["own_cpu"] for x in alone), min(x["own_cpu"] for x in beside)
        print(f"| {policy} | {threads} | {ca:.2f} | {cb:.2f} | {cb / ca:.2f}x | {oa:.2f} / {ob:.2f} | {wa:.2f} | "
              f"{wb:.2f} | {loads} |")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
