"""Speed of gpt2guard's sampling loop against transformers' ``generate()``, same run, same work.

For each model and batch size both generate ``--tokens`` new tokens per row from
``<|endoftext|>`` with the same sampling method (``top-k=40`` by default; ``pure`` is run
by ``generate()`` with an explicit ``top_k=0``, since its default truncates to 50),
without stopping at ``<|endoftext|>``. The two are timed alternately, ``--repeats`` times
each, and the best time of each is kept (the least disturbed by other processes on the
machine). Output: generated tokens per second and the ratio ours / generate(). Both run
in float32 with the same torch threads; ``generate()`` gets only its top-k (or top-p)
warper, and a plain length limit. ``--generate-cache static`` gives ``generate()``
transformers' preallocated ``StaticCache`` instead of its default ``DynamicCache`` (on
CPU it was not faster: 79 against 77 ms a step at batch 8, 256 tokens, alternating in
one process). ``--tokens 1023`` times the full context this way.

Our loop runs its linear layers on the backend ``"auto"`` picks for the batch on this CPU
(:mod:`gpt2guard.family.linear`: both timed on the model's layer shapes, cached); a line
``b (aten linear)`` or ``b (onednn linear)`` times it on the other one. For batches smaller
than the rows from which this CPU's kernels give a row the same bits in any product
(measured, 2 on the CPUs measured so far) our loop computes dummy rows so that a record
comes out the same in any batch (:mod:`gpt2guard.generator.forward`); a line
``b (live rows only)`` times it with ``min_rows=1``, which skips them: what a
``--batch-size 1`` job runs (its records record one-row passes and regenerate that way).
Each row of the table names the backend, the rows per pass, the ratio of wall times and
of process CPU times (on a shared machine the CPU-time ratio is the steadier one) and the
1-minute load average; the header names the CPU.

Models: ``gpt2-124m`` is the GPT-2 small architecture (``GPT2Config()`` defaults: 12
layers, width 768, vocabulary 50257, context 1024) with random weights, so nothing is
downloaded; ``nano`` and ``micro`` are the builtin families' smallest sizes (built on
first use, cached under ``$GPT2GUARD_CACHE``).

``--memory`` adds one batch of 8 rows of 1023 new tokens (the full 1024-token context) on
``gpt2-124m``, each method in a fresh subprocess, one after the other: its time and peak
memory. That time is one cold run, a fresh process's first long generation: for
``generate()`` it includes the allocator growing its heap for the cache it concatenates
(a first run of batch 8 x 256 tokens took 100-107 ms a step, later ones 77), so compare
speeds with the speed table. The process's peak resident set size (``VmHWM`` of ``/proc/self/status``) is
reset just before generation by writing ``5`` to ``/proc/self/clear_refs``, so the peak
counts generation only; the table shows it minus the resident size just before (model
weights and libraries are resident then). Where the reset is not permitted the lifetime
peak ``ru_maxrss`` is used and said so.

``--repro N`` generates N records of ``--tokens`` tokens on the first model in batches of
8 and each alone, with the default ``min_rows`` and with ``min_rows=1``, and counts the
records that differ.

Devices and dtypes: ``--device cpu|cuda|auto`` (default cpu) runs both loops there, each
timing bracketed by ``torch.cuda.synchronize()`` on CUDA; ``--dtype bfloat16`` casts the
weights (``model.to``) for both. ``gpt2-<arch>`` names any architecture of
``bench/archs.py`` (``gpt2-1558m``: 48 layers, width 1600, 25 heads; ``gpt2-tiny`` for dry
runs). ``--json OUT`` writes the rows and the run's device, dtype and versions. The memory
run reads process RSS: CPU only.

``PYTHONPATH=. python3 bench/bench_generate.py --quick`` is a short check (32 tokens, one
repeat). On a machine shared with other work, ``--threads 1`` gives steadier numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from archs import ARCHS, DTYPES, EOS, device_name, random_gpt2, resolve_device, sync  # noqa: E402

EOS_124M = EOS


def arch_of(name: str) -> str | None:
    """The architecture a ``gpt2-<arch>`` model name asks for (case-insensitive), else None."""
    if not name.lower().startswith("gpt2-"):
        return None
    wanted = name[5:].lower()
    for arch in ARCHS:
        if arch.lower() == wanted:
            return arch
    raise SystemExit(f"unknown architecture in {name!r}: use gpt2-" + ", gpt2-".join(a.lower() for a in ARCHS))


def build_model(name: str, threads: int | None = None, device: str = "cpu", dtype: str = "float32"):
    """(model, eos id) for a benchmark model name; ``threads`` is re-applied after loading
    (``load_model`` sets torch to use every CPU)."""
    import torch

    try:
        arch = arch_of(name)
        if arch is not None:
            return random_gpt2(arch, device, dtype, seed=0), EOS_124M
        from gpt2guard.family import load_model

        loaded = load_model(name, device=device, dtype=dtype)
        return loaded.model, loaded.tokenizer.eos_token_id
    finally:
        if threads:
            torch.set_num_threads(threads)


def ours_backend(model, batch: int, min_rows: int | None, linear: str = "auto") -> str:
    """The backend generate_tokens resolves ``linear`` to for this batch (measured, cached)."""
    from gpt2guard.family.linear import backend_for

    return backend_for(linear, model, rows=batch if min_rows == 1 else max(batch, 2))


def run_ours(model, eos: int, batch: int, tokens: int, spec: str, min_rows: int | None = None,
             linear: str = "auto") -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one batch of our loop."""
    from gpt2guard.generator import parse_sampling, sample_batch

    cfg = parse_sampling(spec)[0]
    backend = ours_backend(model, batch, min_rows, linear)
    sync(model.device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = sample_batch(model, [[eos]] * batch, [tokens] * batch, cfg, list(range(batch)), eos_id=eos,
                       stop_at_eos=False, min_rows=min_rows, linear=backend)
    sync(model.device)  # the records are host lists already; nothing should be left queued
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert all(len(o["token_ids"]) == tokens for o in out)
    return elapsed, cpu


def run_generate(model, eos: int, batch: int, tokens: int, spec: str, min_rows=None,
                 cache: str = "dynamic") -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one ``generate()`` call."""
    import torch
    from transformers import GenerationConfig

    from gpt2guard.generator import parse_sampling

    cfg = parse_sampling(spec)[0]
    if cfg.method == "nucleus" and cfg.top_p is None:
        raise SystemExit("generate() has no per-row p: benchmark nucleus with a fixed p")
    # top_k=0 spelled out: generate() would otherwise truncate pure sampling to 50 tokens
    # cache "dynamic": transformers' default DynamicCache; "static": its preallocated StaticCache
    gen = GenerationConfig(do_sample=True, max_new_tokens=tokens, temperature=cfg.temperature,
                           top_k=cfg.top_k, top_p=cfg.top_p if cfg.method == "nucleus" else None,
                           eos_token_id=None, pad_token_id=eos,
                           cache_implementation=None if cache == "dynamic" else cache)
    ids = torch.full((batch, 1), eos, dtype=torch.long, device=model.device)
    # eos_token_id=None above only means "not given": the model's own generation config
    # would still stop rows at <|endoftext|>, so take it out for the run
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None
    try:
        sync(model.device)
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gen)
        sync(model.device)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        model.generation_config.eos_token_id = saved
    assert out.shape == (batch, 1 + tokens), out.shape
    return elapsed, cpu


def speed_table(models, batches, tokens, repeats, spec, threads, cache="dynamic", device="cpu",
                dtype="float32") -> list[dict]:
    from gpt2guard.generator.forward import min_rows_for

    rows = []
    for name in models:
        model, eos = build_model(name, threads, device, dtype)
        n = min(tokens, model.config.n_positions - 1)
        for b in batches:
            backend = ours_backend(model, b, None)
            variants = [("", None, "auto")]
            if b < min_rows_for(backend, model, b):
                variants.append((" (live rows only)", 1, "auto"))
            for other in ("aten", "onednn"):  # the loop on the backend "auto" did not pick: what the choice gains
                if other != backend and (b > 1 or other == "aten"):
                    try:
                        ours_backend(model, b, None, other)
                    except Exception:  # noqa: BLE001 - a backend that cannot run here is left out
                        continue
                    variants.append((f" ({other} linear)", None, other))
            for label, min_rows, linear in variants:
                picked = ours_backend(model, b, min_rows, linear)
                rows_per_pass = min_rows if min_rows else max(b, min_rows_for(picked, model, b))
                run_ours(model, eos, b, 4, spec, min_rows, linear)      # warm up both paths
                run_generate(model, eos, b, 4, spec, cache=cache)
                ours, gen = [], []
                for _ in range(repeats):                        # alternate: both see the same machine load
                    ours.append(run_ours(model, eos, b, n, spec, min_rows, linear))
                    gen.append(run_generate(model, eos, b, n, spec, cache=cache))
                wall_o, wall_g = min(t for t, _ in ours), min(t for t, _ in gen)
                cpu_o, cpu_g = min(c for _, c in ours), min(c for _, c in gen)
                rows.append({"model": name, "arch": arch_of(name), "params": sum(p.numel() for p in model.parameters()),
                             "device": device, "dtype": dtype, "batch_size": b, "variant": label.strip(" ()"),
                             "batch": f"{b}{label}", "tokens": n, "backend": picked,
                             "rows": rows_per_pass, "ours_tok_s": b * n / wall_o, "generate_tok_s": b * n / wall_g,
                             "ratio": wall_g / wall_o, "cpu_ratio": cpu_g / cpu_o,
                             "ours_cpu_tok_s": b * n / cpu_o, "generate_cpu_tok_s": b * n / cpu_g,
                             "load": os.getloadavg()[0]})
                r = rows[-1]
                print(f"  {name} batch {r['batch']} [{picked}, {rows_per_pass}-row passes]: ours "
                      f"{r['ours_tok_s']:.1f} tok/s, generate() {r['generate_tok_s']:.1f} tok/s, ratio "
                      f"{r['ratio']:.2f}x (CPU time {r['cpu_ratio']:.2f}x), load {r['load']:.1f}",
                      file=sys.stderr, flush=True)
    return rows


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def memory_child(method: str, tokens: int, batch: int, spec: str, threads: int | None, cache="dynamic") -> None:
    """Runs in a subprocess: one generation; prints its time and peak memory as JSON."""
    import functools
    import resource

    model, eos = build_model("gpt2-124m", threads)
    run = run_ours if method == "ours" else functools.partial(run_generate, cache=cache)
    run(model, eos, 1, 2, spec)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        how = "VmHWM, reset before generation"
    except OSError:
        how = "ru_maxrss, lifetime peak (reset not permitted)"
    before = _status_kib("VmRSS")
    elapsed = run(model, eos, batch, tokens, spec)[0]
    peak = _status_kib("VmHWM") if how.startswith("VmHWM") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"method": method, "rss_before_mib": before / 1024, "peak_mib": peak / 1024,
                      "extra_mib": (peak - before) / 1024, "seconds": elapsed,
                      "tok_s": batch * tokens / elapsed, "how": how}))


def memory_table(tokens: int, batch: int, spec: str, threads: int | None, cache="dynamic") -> list[dict]:
    rows = []
    for method in ("ours", "generate"):
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", method, "--tokens", str(tokens),
               "--sampling", spec, "--generate-cache", cache]
        if threads:
            cmd += ["--threads", str(threads)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {method}: {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def repro_check(name: str, records: int, tokens: int, spec: str, threads: int | None, device: str = "cpu",
                dtype: str = "float32") -> list[dict]:
    """Records generated in batches of 8 vs alone: how many differ, with and without dummy rows."""
    from gpt2guard.generator import parse_sampling, sample_batch

    from gpt2guard.generator.forward import min_rows_for

    model, eos = build_model(name, threads, device, dtype)
    cfg = parse_sampling(spec)[0]
    n = min(tokens, model.config.n_positions - 1)
    backend = ours_backend(model, 8, None)
    out = []
    for min_rows in (None, 1):
        kw = dict(eos_id=eos, stop_at_eos=False, min_rows=min_rows, linear=backend)
        batched = []
        for start in range(0, records, 8):
            seeds = list(range(start, min(start + 8, records)))
            batched += sample_batch(model, [[eos]] * len(seeds), [n] * len(seeds), cfg, seeds, **kw)
        differ = sum(sample_batch(model, [[eos]], [n], cfg, [s], **kw)[0]["token_ids"] != batched[s]["token_ids"]
                     for s in range(records))
        out.append({"min_rows": f"default ({min_rows_for(backend, model, 8)}, {backend})" if min_rows is None else "1", "differ": differ, "records": records,
                    "tokens": n})
        print(f"  repro min_rows={out[-1]['min_rows']}: {differ}/{records} differ", file=sys.stderr, flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="gpt2-124m,nano,micro", help="comma-separated: gpt2-124m, nano, micro")
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    ap.add_argument("--tokens", type=int, default=256, help="new tokens per row")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each method, alternating")
    ap.add_argument("--sampling", default="top-k=40", help="one sampling spec, e.g. top-k=40 or pure")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--generate-cache", choices=("dynamic", "static"), default="dynamic",
                    help="generate()'s key/value cache: DynamicCache (its default) or StaticCache (preallocated)")
    ap.add_argument("--memory", action="store_true", help="also time and measure a 1024-token batch of 8")
    ap.add_argument("--repro", type=int, default=0, metavar="N", help="also count records that differ alone")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed table")
    ap.add_argument("--quick", action="store_true", help="32 tokens, one repeat, no memory run")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (cuda when present)")
    ap.add_argument("--dtype", choices=DTYPES, default="float32", help="the models' weights (model.to(dtype))")
    ap.add_argument("--json", metavar="OUT", help="also write the results here (JSON)")
    ap.add_argument("--memory-child", choices=("ours", "generate"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    from gpt2guard.family.load import quiet_transformers

    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args.memory_child, args.tokens, 8, args.sampling, args.threads, args.generate_cache)
        return
    if args.quick:
        args.tokens, args.repeats, args.memory = 32, 1, False
    args.device = resolve_device(args.device)
    if args.memory and args.device != "cpu":
        print(f"(--memory reads process RSS: CPU only, skipped on {args.device})", file=sys.stderr)
        args.memory = False
    results = {"bench": "generate", "device": args.device, "device_name": device_name(args.device),
               "dtype": args.dtype, "sampling": args.sampling, "torch": torch.__version__, "cuda": torch.version.cuda,
               "repeats": args.repeats}
    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",") if b]
    from gpt2guard.family.linear import cpu_fingerprint

    fp = cpu_fingerprint()
    cpu = f"{fp['vendor']} {fp['model']} ({fp['isa']}, {len(os.sched_getaffinity(0))} CPUs)"
    if args.device != "cpu":
        cpu = f"{device_name(args.device)} ({args.device}, {args.dtype}; host {cpu})"
    elif args.dtype != "float32":
        cpu += f", {args.dtype}"
    print(f"{cpu}; sampling {args.sampling}, {args.tokens} new tokens per row, best of {args.repeats}, "
          f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, generate() cache "
          f"{args.generate_cache}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    if not args.no_speed:
        rows = speed_table(models, batches, args.tokens, args.repeats, args.sampling, args.threads,
                           args.generate_cache, args.device, args.dtype)
        results["speed"] = rows
        print(f"\n{cpu}, torch {torch.__version__}, sampling {args.sampling}, best of {args.repeats}, "
              f"{torch.get_num_threads()} thread(s), generate() cache {args.generate_cache}, 1-minute load "
              f"average {os.getloadavg()[0]:.2f} at the end")
        print("| model | batch | linear | rows per pass | new tokens | ours tok/s | generate() tok/s "
              "| ours / generate() | CPU time ratio | load |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['batch']} | {r['backend']} | {r['rows']} | {r['tokens']} | "
                  f"{r['ours_tok_s']:.1f} | {r['generate_tok_s']:.1f} | {r['ratio']:.2f}x | {r['cpu_ratio']:.2f}x | "
                  f"{r['load']:.1f} |")
    if args.memory:
        mem = memory_table(1023, 8, args.sampling, args.threads, args.generate_cache)
        results["memory"] = mem
        print(f"\ngpt2-124m, batch 8, 1023 new tokens, one run each ({mem[0]['how']}):")
        print("| method | tok/s | resident before MiB | peak MiB | peak - before MiB |")
        print("|---|---:|---:|---:|---:|")
        for m in mem:
            print(f"| {m['method']} | {m['tok_s']:.1f} | {m['rss_before_mib']:.0f} | {m['peak_mib']:.0f} | "
                  f"{m['extra_mib']:.0f} |")
        print(f"ours / generate(), one cold run each: {mem[1]['seconds'] / mem[0]['seconds']:.2f}x")
    if args.repro:
        rep = repro_check(models[0], args.repro, args.tokens, args.sampling, args.threads, args.device, args.dtype)
        results["repro"] = rep
        print(f"\n{models[0]}: records that differ between a batch of 8 and alone ({args.sampling}):")
        print("| min_rows | records differing | tokens per record |")
        print("|---|---:|---:|")
        for r in rep:
            print(f"| {r['min_rows']} | {r['differ']} / {r['records']} | {r['tokens']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
