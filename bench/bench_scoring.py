"""Benchmark the scoring engine against the per-document approach of the reference tools.

Three ways to get per-token statistics (log p, rank, entropy, Fast-DetectGPT mean and
variance) for the same documents under the same model, timed in the same run:

``per-doc``  the reference tools' per-document approach (GLTR; the baselines of DetectGPT
             and Fast-DetectGPT): one forward pass per document, the full (T, V) logits, a
             full log-softmax and softmax, and the rank by sorting each row of logits
             (``argsort``) and finding the observed token. Generous to the tools: their
             baseline scripts repeat the forward pass for every criterion (see ``--released``)
``engine``   :func:`gpt2guard.detector.score_token_ids`: length-sorted batches under a token
             budget, hidden states projected onto the vocabulary in chunks and reduced at once
``bare``     the engine's batches through ``model(...).logits`` and nothing else: the cost of
             the forward pass alone, to measure what the statistics add

Optional rows: ``engine bf16`` (the engine under bfloat16, on by default where the hardware
has native bf16) and ``as released`` (``--released``: Fast-DetectGPT's released baselines
script runs a forward pass per document *per criterion*; timed once).

Timings alternate between the three ways (``--repeats`` rounds) and report the fastest
round of each, as wall time and as process CPU time (all threads): the machine this runs on
may be shared, and CPU time is less sensitive to other processes than wall time.

Peak memory is measured in child processes, one per approach, on 16 documents of 1024
tokens (GPT-2 architecture): after the model and documents exist the child resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``), runs the approach once, and reads
``VmHWM`` from ``/proc/self/status``; the peak minus the RSS before the run is what the
approach added. torch's CPU tensors live in ordinary process memory, so RSS sees them
(tracemalloc does not). Besides the three ways above, ``full-logits`` runs all 16 documents
as one batch through ``model(...).logits`` and a log-softmax, i.e. batching without
chunking, holding B x T x V logits; their analytic size, B x T x V x 4 bytes, is printed
beside the measurements.

Devices and dtypes: ``--device cpu|cuda|auto`` (default cpu) runs every approach on that
device, timings bracketed by ``torch.cuda.synchronize()`` on CUDA; ``--dtype bfloat16`` casts
the model's weights to bfloat16 (``model.to``) for every approach, each of which still takes
its log-softmax and statistics in float32. ``--arch`` picks the random-weight GPT-2 of the
``gpt2`` setup: 124M (default), 355M, 774M, 1558M, or ``tiny`` (two layers, for dry runs),
see ``bench/archs.py``. The peak-memory children read process RSS: CPU only.

Usage::

    GPT2GUARD_CACHE=/tmp/gg-detector PYTHONPATH=. python3 bench/bench_scoring.py [--quick]
    PYTHONPATH=. python3 bench/bench_scoring.py --setups gpt2 --arch 1558M --device cuda --dtype bfloat16 \\
        --docs 64 --no-memory --json scoring.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from archs import ARCHS, DTYPES, device_name, loaded_random_gpt2, resolve_device, sync  # noqa: E402


# --- setups: a model and documents ------------------------------------------------------

def gpt2_setup(n_docs: int, max_len: int, seed: int = 0, lengths=None, arch: str = "124M", device: str = "cpu",
               dtype: str = "float32"):
    """A GPT-2 architecture (default 124M) with random weights on ``device`` in ``dtype``, and
    random token documents of mixed length."""
    loaded = loaded_random_gpt2(arch, device, dtype, seed)  # vocab 50257, context 1024
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = rng.integers(max(8, max_len // 16), max_len + 1, size=n_docs)
    docs = [rng.integers(0, 50256, size=int(n)) for n in lengths]
    return f"GPT-2 {arch} arch (random weights, {dtype}, {device})", loaded, docs


def family_setup(n_docs: int, size: str, seed: int = 0, device: str = "cpu", dtype: str = "float32"):
    """A built nano size (micro if nano is not built) and documents of the builtin corpus's test split."""
    from gpt2guard.datasets.builtin import builtin_corpus
    from gpt2guard.errors import GuardError
    from gpt2guard.family import load_model

    try:
        loaded = load_model("nano", size, device=device, dtype=dtype, build_missing=False)
    except GuardError:
        print("nano is not built: using micro (build nano with gpt2guard.family.build.build_family('nano'))")
        loaded = load_model("micro", "medium", device=device, dtype=dtype)
    corpus = [d.text for d in builtin_corpus() if d.split == "test"]
    rng = np.random.default_rng(seed)
    rng.shuffle(corpus)
    docs = []
    for ids in loaded.tokenizer(corpus[: 4 * n_docs], add_special_tokens=False)["input_ids"]:
        if len(ids) >= 16:
            docs.append(np.asarray(ids[: loaded.n_positions]))
        if len(docs) == n_docs:
            break
    name = f"{loaded.family} {loaded.size} ({loaded.n_params / 1e6:.1f}M params, vocab {loaded.tokenizer.vocab_size})"
    return name, loaded, docs


# --- the three approaches ---------------------------------------------------------------

def per_document(loaded, docs):
    """The reference tools' way: per document, full logits, log-softmax, softmax, argsort rank."""
    import torch

    from gpt2guard.detector.models import eos_id

    eos, out, dev = eos_id(loaded), [], loaded.model.device
    with torch.inference_mode():
        for doc in docs:
            ids = torch.tensor(np.concatenate([[eos], doc]), device=dev)
            logits = loaded.model(ids[None, :-1]).logits[0].float()  # (T, V), float32 whatever the model's dtype
            targets = ids[1:]  # (T,)
            logprobs = torch.log_softmax(logits, -1)  # (T, V)
            probs = torch.softmax(logits, -1)  # (T, V)
            logp = logprobs.gather(1, targets[:, None])[:, 0]
            order = torch.argsort(logits, -1, descending=True)  # (T, V)
            rank = (order == targets[:, None]).nonzero()[:, 1]  # (T,)
            mean = (probs * logprobs).sum(-1)
            var = (probs * logprobs.square()).sum(-1) - mean.square()
            out.append({"logp": logp.cpu().numpy(), "rank": rank.cpu().numpy(), "entropy": (-mean).cpu().numpy(),
                        "mean_ref": mean.cpu().numpy(), "var_ref": var.cpu().numpy()})
    return out


def as_released(loaded, docs):
    """Fast-DetectGPT's released baselines script, restated: every criterion (likelihood, rank,
    log-rank, entropy) and the analytic Fast-DetectGPT criterion loops over the documents and
    runs its own forward pass per document; rank and log-rank each sort the logits."""
    import torch

    from gpt2guard.detector.models import eos_id

    eos, dev = eos_id(loaded), loaded.model.device
    with torch.inference_mode():
        for criterion in ("likelihood", "rank", "logrank", "entropy", "fast-detectgpt"):
            for doc in docs:
                ids = torch.tensor(np.concatenate([[eos], doc]), device=dev)
                logits = loaded.model(ids[None, :-1]).logits[0].float()  # (T, V)
                targets = ids[1:]
                if criterion == "likelihood":
                    torch.log_softmax(logits, -1).gather(1, targets[:, None]).mean()
                elif criterion in ("rank", "logrank"):
                    (torch.argsort(logits, -1, descending=True) == targets[:, None]).nonzero()
                elif criterion == "entropy":
                    (torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1).mean()
                else:
                    logprobs, probs = torch.log_softmax(logits, -1), torch.softmax(logits, -1)
                    mean = (probs * logprobs).sum(-1)
                    ((probs * logprobs.square()).sum(-1) - mean.square()).sum()


def engine(loaded, docs, batch_tokens, chunk_elements, bf16=False, linear="auto"):
    from gpt2guard.detector import score_token_ids

    return score_token_ids(docs, loaded, batch_tokens=batch_tokens, chunk_elements=chunk_elements, bf16=bf16,
                           linear=linear)


def bare(loaded, docs, batch_tokens, linear="auto"):
    """The engine's batches through ``model(...).logits`` only, its linear layers on the
    engine's backend."""
    import torch

    from gpt2guard.detector.scoring import _batches, engine_backend
    from gpt2guard.detector.windows import plan_windows
    from gpt2guard.family.linear import linear_backend

    segments = [(i, w) for i, d in enumerate(docs) for w in plan_windows(len(d), loaded.n_positions)]
    padded = [np.concatenate([[0], d]) for d in docs]  # a leading token, as the engine's <|endoftext|>
    dev = loaded.model.device
    with torch.inference_mode(), linear_backend(loaded.model, engine_backend(loaded, linear)):
        for batch in _batches(segments, batch_tokens):
            B, L = len(batch), batch[0][1].length
            ids = torch.zeros(B, L, dtype=torch.long)
            mask = torch.zeros(B, L, dtype=torch.long)
            for b, (i, w) in enumerate(batch):
                ids[b, : w.length] = torch.from_numpy(padded[i][w.start: w.stop])
                mask[b, : w.length] = 1
            ids, mask = ids.to(dev), mask.to(dev)
            positions = torch.arange(L, device=dev).expand(B, L)
            mask = None if bool(mask.all()) else mask  # as the engine does
            loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).logits


def timed(fn, device="cpu"):
    """(wall s, process CPU s, result) of ``fn()``; on CUDA the queued work is waited for
    before the clock starts and before it stops."""
    sync(device)
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    sync(device)
    return time.perf_counter() - w, time.process_time() - c, result


def run_setup(name, loaded, docs, args):
    from gpt2guard.detector.scoring import engine_backend
    from gpt2guard.family.linear import cpu_fingerprint, onednn_available

    import torch

    n_tok = sum(len(d) for d in docs)
    fp, picked = cpu_fingerprint(), engine_backend(loaded)
    dev = loaded.model.device
    param = next(loaded.model.parameters())
    on = f"{device_name(dev)} ({dev.type})" if dev.type != "cpu" else f"{fp['vendor']} {fp['model']}, {fp['isa']}"
    print(f"\n## {name}: {len(docs)} documents, {n_tok} tokens (lengths {min(map(len, docs))}-{max(map(len, docs))}), "
          f"{torch.get_num_threads()} threads, engine linear backend {picked} (auto, on {on}), "
          f"load average {os.getloadavg()[0]:.2f}")
    ways = {"per-doc": lambda: per_document(loaded, docs),
            "engine": lambda: engine(loaded, docs, args.batch_tokens, args.chunk_elements),
            "bare": lambda: bare(loaded, docs, args.batch_tokens)}
    other = "aten" if picked != "aten" else (
        "onednn" if onednn_available() and dev.type == "cpu" and param.dtype == torch.float32 else None)
    if other:  # the same batches on the backend auto did not pick: what the choice gains
        ways[f"engine {other}"] = lambda: engine(loaded, docs, args.batch_tokens, args.chunk_elements, linear=other)
        ways[f"bare {other}"] = lambda: bare(loaded, docs, args.batch_tokens, linear=other)
    if args.bf16 and param.dtype == torch.float32:  # autocast over float32 weights
        ways["engine bf16"] = lambda: engine(loaded, docs, args.batch_tokens, args.chunk_elements, bf16=True)
    # warm-up of each way on two documents: kernels, caches, a GPU's libraries
    engine(loaded, docs[:2], args.batch_tokens, args.chunk_elements)
    per_document(loaded, docs[:2])
    bare(loaded, docs[:2], args.batch_tokens)
    best = {k: [float("inf"), float("inf")] for k in ways}
    results = {}
    for r in range(args.repeats):
        order = list(ways) if r % 2 == 0 else list(ways)[::-1]
        for k in order:
            wall, cpu, res = timed(ways[k], dev)
            best[k] = [min(best[k][0], wall), min(best[k][1], cpu)]
            results[k] = res
    if args.released:  # slow: timed once
        wall, cpu, _ = timed(lambda: as_released(loaded, docs), dev)
        best["as released"] = [wall, cpu]
    # the engine and the reference approach must agree
    ref, got = results["per-doc"], results["engine"]
    dlogp = max(float(np.abs(a["logp"] - b["logp"]).max()) for a, b in zip(ref, got))
    dvar = max(float(np.abs(a["var_ref"] - b["var_ref"]).max()) for a, b in zip(ref, got))
    drank = np.concatenate([np.abs(a["rank"].astype(int) - b["rank"]) for a, b in zip(ref, got)])
    print(f"agreement engine vs per-doc: max |d logp| {dlogp:.1e}, max |d var| {dvar:.1e}, ranks equal "
          f"{np.mean(drank == 0):.3%} (max |d rank| {drank.max()}: ties and near-ties of the logits, which "
          f"argsort orders arbitrarily; bfloat16 logits tie often)")
    if "engine bf16" in results:
        dbf = max(float(np.abs(a["logp"] - b["logp"]).max()) for a, b in zip(got, results["engine bf16"]))
        print(f"bf16 engine vs float32 engine: max |d logp| {dbf:.1e}")
    print("| approach | wall s | tokens/s (wall) | CPU s | tokens/s (CPU) | speed-up vs per-doc (wall / CPU) |")
    print("|---|---|---|---|---|---|")
    for k, (wall, cpu) in best.items():
        print(f"| {k} | {wall:.2f} | {n_tok / wall:,.0f} | {cpu:.2f} | {n_tok / cpu:,.0f} | "
              f"{best['per-doc'][0] / wall:.2f}x / {best['per-doc'][1] / cpu:.2f}x |")
    speed_wall = best["per-doc"][0] / best["engine"][0]
    speed_cpu = best["per-doc"][1] / best["engine"][1]
    over_wall = best["engine"][0] / best["bare"][0] - 1
    over_cpu = best["engine"][1] / best["bare"][1] - 1
    print(f"engine ({str(param.dtype).split('.')[-1]} weights) speed-up over per-doc: {speed_wall:.2f}x wall, "
          f"{speed_cpu:.2f}x CPU (target >= 3x)")
    print(f"statistics overhead over bare forward: {over_wall:+.1%} wall, {over_cpu:+.1%} CPU (target <= 15%)")
    return {"setup": name, "device": dev.type, "device_name": device_name(dev), "dtype": str(param.dtype).split(".")[-1],
            "params": sum(p.numel() for p in loaded.model.parameters()),
            "tokens_per_s": {k: n_tok / v[0] for k, v in best.items()},
            "docs": len(docs), "tokens": n_tok, "best_wall_s": {k: v[0] for k, v in best.items()},
            "best_cpu_s": {k: v[1] for k, v in best.items()}, "speedup_wall": speed_wall, "speedup_cpu": speed_cpu,
            "overhead_wall": over_wall, "overhead_cpu": over_cpu, "max_abs_dlogp": dlogp, "rank_equal": float(np.mean(drank == 0))}


# --- peak memory in child processes -----------------------------------------------------

def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(mode: str, n_docs: int, doc_len: int, args) -> None:
    """Run one approach once on n_docs x doc_len tokens and print the RSS it added, as JSON."""
    import gc

    import torch

    _, loaded, docs = gpt2_setup(n_docs, doc_len, lengths=[doc_len] * n_docs)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    if mode == "engine":
        engine(loaded, docs, args.batch_tokens, args.chunk_elements)
    elif mode == "bare":
        bare(loaded, docs, args.batch_tokens)
    elif mode == "full-logits":  # one batch, holding (B, T, V) logits and their log-softmax
        with torch.inference_mode():
            ids = torch.from_numpy(np.stack(docs))  # (B, T)
            logits = loaded.model(ids).logits  # (B, T, V)
            logprobs = torch.log_softmax(logits, -1)  # (B, T, V)
            logprobs[:, :-1].gather(2, ids[:, 1:, None])
    elif mode == "per-doc":
        per_document(loaded, docs)
    peak = _rss_kib("VmHWM")
    print(json.dumps({"mode": mode, "added_mib": (peak - before) / 1024, "rss_before_mib": before / 1024}))


def run_memory(args, n_docs: int, doc_len: int):
    from gpt2guard.detector.reduce import chunk_rows

    V = 50257
    rows = chunk_rows(V, args.chunk_elements)
    print(f"\n## Peak memory added, GPT-2 124M arch, {n_docs} documents x {doc_len} tokens (child processes)")
    print(f"analytic: full logits B x T x V x 4 bytes = {n_docs * doc_len * V * 4 / 2**20:,.0f} MiB; "
          f"engine chunk buffers ~ 2 x {rows} rows x {V} x 4 bytes = {2 * rows * V * 4 / 2**20:,.0f} MiB "
          f"+ activations of one batch of {args.batch_tokens} tokens")
    print("| approach | peak added MiB |")
    print("|---|---|")
    out = {}
    for mode in ("engine", "bare", "per-doc", "full-logits"):
        cmd = [sys.executable, os.path.abspath(__file__), "--memory-child", mode, "--mem-docs", str(n_docs),
               "--mem-len", str(doc_len), "--batch-tokens", str(args.batch_tokens)]
        if args.chunk_elements:
            cmd += ["--chunk-elements", str(args.chunk_elements)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"| {mode} | failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode} |")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        out[mode] = res["added_mib"]
        print(f"| {mode} | {res['added_mib']:,.0f} |")
    if "engine" in out and "full-logits" in out:
        print(f"engine peak / full-logits peak: {out['engine'] / out['full-logits']:.3f}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small run: 8 short documents, two rounds, small memory test")
    p.add_argument("--setups", default="gpt2,nano", help="comma-separated: gpt2, nano")
    p.add_argument("--nano-size", default="xl")
    p.add_argument("--docs", type=int, default=32)
    p.add_argument("--max-len", type=int, default=1024, help="longest GPT-2 document")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-tokens", type=int, default=None)
    p.add_argument("--chunk-elements", type=int, default=None)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: CPU time then measures work, not threads spinning on a busy machine)")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--bf16", action="store_true", default=None,
                   help="also time the engine under bfloat16 (default: when the CPU/GPU has native bf16)")
    p.add_argument("--released", action="store_true",
                   help="also time (once) Fast-DetectGPT's released baselines loop: a forward pass per criterion")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (cuda when present)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="the model's weights (model.to(dtype))")
    p.add_argument("--arch", choices=sorted(ARCHS), default="124M", help="the random-weight GPT-2 of the gpt2 setup")
    p.add_argument("--seed", type=int, default=0, help="random weights and documents")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    p.add_argument("--mem-docs", type=int, default=16, help=argparse.SUPPRESS)
    p.add_argument("--mem-len", type=int, default=1024, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:  # before torch loads, and load_model() keeps it
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from gpt2guard.detector.reduce import DEFAULT_CHUNK_ELEMENTS
    from gpt2guard.detector.scoring import DEFAULT_BATCH_TOKENS

    args.batch_tokens = args.batch_tokens or DEFAULT_BATCH_TOKENS
    args.chunk_elements = args.chunk_elements or DEFAULT_CHUNK_ELEMENTS
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args.memory_child, args.mem_docs, args.mem_len, args)
    args.device = resolve_device(args.device)
    if args.bf16 is None:
        from gpt2guard.detector.models import bf16_supported

        args.bf16 = bf16_supported(args.device)
    if args.quick:
        args.docs, args.max_len, args.repeats = 8, 256, 2
    results = {"bench": "scoring", "args": vars(args), "device": args.device, "device_name": device_name(args.device),
               "dtype": args.dtype, "arch": args.arch, "torch": torch.__version__,
               "cuda": torch.version.cuda, "setups": []}
    for setup in args.setups.split(","):
        if setup == "gpt2":
            results["setups"].append(run_setup(*gpt2_setup(args.docs, args.max_len, args.seed, arch=args.arch,
                                                           device=args.device, dtype=args.dtype), args))
        elif setup == "nano":
            results["setups"].append(run_setup(*family_setup(args.docs, args.nano_size, args.seed, args.device,
                                                             args.dtype), args))
        else:
            raise SystemExit(f"unknown setup {setup!r}")
    if not args.no_memory and args.device != "cpu":
        print("\n(peak memory is measured as process RSS: CPU only, skipped on", args.device + ")")
    elif not args.no_memory:
        results["memory"] = run_memory(args, *((4, 512) if args.quick else (16, 1024)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=float)


if __name__ == "__main__":
    main()
