"""The green-list watermark on a family (default nano): detection power, its cost, its
robustness, beside the trained post-hoc detector on the same texts.

For each generator size (default small, medium, large: each has a next larger size to
serve as the perplexity oracle) and sampling method (default ``pure`` and ``top-k=40``):

1. machine text (:func:`gpt2guard.generator.run.run_generation` into ``--work``, reused
   by a rerun): ``--n`` watermarked test documents, the same ``--n`` records without the
   watermark (same seeds: the paired unwatermarked text), and ``--n-train`` watermarked
   training documents of another job seed, all unconditional and ``max(--lengths)``
   tokens long (``--continue-past-eos``). Shorter lengths are the first T tokens (the
   sampling loop is causal: a document's first T tokens are what a T-token job writes).
2. human text: the builtin corpus, documents of at least T tokens cut to their first T;
   its ``train`` split trains the post-hoc detector, its ``valid`` and ``test`` splits are
   the held-out human text on which both detectors' false-positive rates are measured.
3. per length T: the watermark's TPR at z = 4 (and the empirical FPR there), its TPR at a
   1% empirical FPR (the z threshold that 1% of held-out human documents reach); the
   trained post-hoc detector (:class:`~gpt2guard.detector.trained.TrainedDetector`,
   logistic regression on the token statistics of the generator's own size, trained on
   the training documents and builtin human training text) at its own 1% empirical FPR,
   AUROC too; and at the longest length, under every attack (``--attacks``,
   :mod:`gpt2guard.attacks`, on the watermarked test texts, input hygiene on as in
   ``score``), both detectors' TPR at the thresholds set on clean human text.
4. the watermark's perplexity cost: perplexity of the watermarked and the unwatermarked
   test texts under the next larger size (the oracle), and their ratio.
5. generation speed with and without the watermark, the same records timed back to back
   in this run (``tokens/s`` and the ratio).

Prints the tables, writes everything to ``--json`` (default ``<work>/watermark.json``).

Usage::

    PYTHONPATH=. python3 bench/bench_watermark.py [--n 100] [--n-train 100] [--lengths 50,100,200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FPR = 0.01
Z = 4.0
DEFAULT_ATTACKS = ("homoglyph=1,zero_width=1,whitespace=0.2,case=0.2,article_deletion=1,number_swap=1,paragraph=1,"
                   "spelling=1,misspelling=0.1")


def generate(args, size: str, sampling: str, split: str, seed: int, n: int, watermark) -> list[str]:
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.generator.run import GenerationJob, plan_job, run_generation

    tag = f"wm-{args.scheme}-g{args.gamma:g}-d{args.delta:g}" if watermark else "plain"
    out = os.path.join(args.work, f"{tag}-{args.family}-L{max(args.lengths)}")
    job = GenerationJob(out=out, family=args.family, sizes=size, sampling=sampling, n=n, length=max(args.lengths),
                        split=split, seed=seed, stop_at_eos=False, batch_size=8, watermark=watermark)
    run_generation(job, progress=False)
    [(_, _, name)] = plan_job(job)["sets"]
    recs = sorted((r for r in open_set(out, name, split) if isinstance(r.id, int) and r.id < n), key=lambda r: r.id)
    return [r.text for r in recs]


def first_tokens(texts: list[str], tok, T: int, keep_short: bool = True) -> list[str]:
    """Each text cut to its first ``T`` tokens (texts shorter than T dropped unless ``keep_short``)."""
    out = []
    for t in texts:
        ids = tok.encode(t)
        if len(ids) >= T or keep_short:
            out.append(tok.decode(ids[:T]))
    return out


def threshold_at(human_scores, fpr: float) -> float:
    """A threshold with at most ``fpr`` of the human scores strictly above it (a score is
    flagged when it is above the returned value)."""
    import numpy as np

    s = np.sort(np.nan_to_num(np.asarray(human_scores, dtype=float), nan=-np.inf))  # abstentions: never flagged
    k = int(np.floor(fpr * len(s)))  # at most k human documents may lie above
    return float(s[len(s) - k - 1])


def rate_above(scores, thr: float) -> float:
    import numpy as np

    s = np.asarray(scores, dtype=float)
    return float(np.mean(np.nan_to_num(s, nan=-np.inf) > thr)) if len(s) else float("nan")


def zs(texts, key, tok, args) -> list[float]:
    from gpt2guard.watermark import detect_texts

    return [s.z if s.n_scored else float("nan")
            for s in detect_texts(texts, key, tok, gamma=args.gamma, scheme=args.scheme, z_threshold=Z)]


def perplexity(texts: list[str], loaded) -> float:
    """exp(mean token NLL) of ``texts`` under ``loaded`` (each after <|endoftext|>)."""
    import math

    import torch

    model, tok = loaded.model, loaded.tokenizer
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(texts), 16):
            rows = [[tok.eos_token_id] + tok.encode(t)[: loaded.n_positions - 1] for t in texts[i:i + 16]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), tok.eos_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, :len(r)], mask[j, :len(r)] = torch.tensor(r), 1
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
            keep = mask[:, 1:].bool()
            total += float(nll[keep].sum())
            count += int(keep.sum())
    return math.exp(total / count)


def speed(args, loaded, sampling: str, watermark) -> dict:
    """Tokens per second generating the same 16 records without and with the watermark,
    interleaved three times (best of three each)."""
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.generator.sampling import parse_sampling

    cfg = parse_sampling(sampling)[0]
    L = max(args.lengths)
    best = {"plain": float("inf"), "watermarked": float("inf")}
    for _ in range(3):
        for name, wm in (("plain", None), ("watermarked", watermark)):
            t0 = time.perf_counter()
            generate_tokens(loaded, [[]] * 16, L, cfg, list(range(16)), stop_at_eos=False, batch_size=8,
                            watermark=wm)
            best[name] = min(best[name], time.perf_counter() - t0)
    tps = {k: 16 * L / v for k, v in best.items()}
    return {"plain_tok_s": round(tps["plain"]), "watermarked_tok_s": round(tps["watermarked"]),
            "ratio": round(tps["watermarked"] / tps["plain"], 3)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", default="nano")
    p.add_argument("--sizes", default="small,medium,large", help="generator sizes (each needs a next larger size)")
    p.add_argument("--sampling", default="pure,top-k=40")
    p.add_argument("--lengths", default="50,100,200")
    p.add_argument("--n", type=int, default=100, help="watermarked (and paired plain) test documents per cell")
    p.add_argument("--n-train", type=int, default=100, help="watermarked training documents of the post-hoc detector")
    p.add_argument("--gamma", type=float, default=0.25)
    p.add_argument("--delta", type=float, default=2.0)
    p.add_argument("--scheme", default="lefthash", choices=("lefthash", "selfhash"))
    p.add_argument("--attacks", default=DEFAULT_ATTACKS, help="attack specs, name=rate,...")
    p.add_argument("--seed", type=int, default=0, help="job seed of the test documents (training: seed + 1; "
                                                       "the key and the attacks: seed)")
    p.add_argument("--work", default=os.path.join("/tmp", "gpt2guard-bench-watermark"))
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--no-posthoc", action="store_true", help="skip the trained post-hoc detector")
    p.add_argument("--json", help="write the results here (default <work>/watermark.json)")
    args = p.parse_args(argv)
    args.lengths = sorted(int(x) for x in args.lengths.split(","))
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch

    from gpt2guard.attacks import attack, parse_attacks
    from gpt2guard.family import get_family, load_model, load_tokenizer
    from gpt2guard.watermark import WatermarkConfig, keygen
    from gpt2guard.watermark.detect import builtin_human

    torch.set_num_threads(args.threads)
    spec = get_family(args.family)
    try:
        load_model(args.family, spec.size_names[0], device="cpu", build_missing=False)
    except Exception as exc:  # never build a family from a bench
        raise SystemExit(f"{args.family} is not built ({exc}): run `gpt2guard family build {args.family}` first")
    specs = parse_attacks(args.attacks)
    os.makedirs(args.work, exist_ok=True)
    key_path = os.path.join(args.work, f"{args.family}.key")
    key = keygen(key_path, seed=args.seed, family=args.family, force=True)  # seeded: the bench is repeatable
    marker = WatermarkConfig(key_path, args.gamma, args.delta, args.scheme)
    tok = load_tokenizer(args.family)
    start = time.perf_counter()

    human = {"train": builtin_human("train"), "held": builtin_human("valid") + builtin_human("test")}
    human_T = {T: {s: first_tokens(h, tok, T, keep_short=False) for s, h in human.items()} for T in args.lengths}
    human_z = {T: zs(human_T[T]["held"], key, tok, args) for T in args.lengths}
    wm_thr = {T: threshold_at(human_z[T], FPR) for T in args.lengths}

    sizes = args.sizes.split(",")
    names = spec.size_names
    rows, speeds, ppl = [], [], []
    for size in sizes:
        oracle = names[names.index(size) + 1]
        for sampling in args.sampling.split(","):
            t0 = time.perf_counter()
            marked = generate(args, size, sampling, "test", args.seed, args.n, marker)
            plain = generate(args, size, sampling, "test", args.seed, args.n, None)
            train = generate(args, size, sampling, "train", args.seed + 1, args.n_train, marker)
            gen_s = time.perf_counter() - t0
            loaded = load_model(args.family, size, device="cpu")
            speeds.append({"size": size, "sampling": sampling, **speed(args, loaded, sampling, marker)})
            ol = load_model(args.family, oracle, device="cpu")
            pw, pp = perplexity(marked, ol), perplexity(plain, ol)
            ppl.append({"size": size, "sampling": sampling, "oracle": oracle, "ppl_plain": round(pp, 2),
                        "ppl_watermarked": round(pw, 2), "ratio": round(pw / pp, 3)})
            for T in args.lengths:
                mt = first_tokens(marked, tok, T)
                pt = first_tokens(plain, tok, T)
                mz, pz = zs(mt, key, tok, args), zs(pt, key, tok, args)
                row = {"size": size, "sampling": sampling, "T": T, "n": len(mt), "n_human": len(human_T[T]["held"]),
                       "tpr_z4": rate_above(mz, Z - 1e-12), "fpr_z4": rate_above(human_z[T], Z - 1e-12),
                       "fpr_z4_plain_machine": rate_above(pz, Z - 1e-12), "z_at_1pct": wm_thr[T],
                       "tpr_1pct": rate_above(mz, wm_thr[T]), "median_z": float(np.nanmedian(mz)), "attacks": {}}
                attacked = {s.label: [attack(t, s.name, s.rate, args.seed + i).text for i, t in enumerate(mt)]
                            for s in specs} if T == max(args.lengths) else {}
                for label, texts in attacked.items():
                    row["attacks"][label] = {"watermark_tpr_z4": rate_above(zs(texts, key, tok, args), Z - 1e-12)}
                if not args.no_posthoc:
                    posthoc(args, row, size, mt, first_tokens(train, tok, T), human_T[T], attacked)
                rows.append(row)
                print(f"{size} {sampling} T={T}: watermark TPR@z4 {row['tpr_z4']:.3f} TPR@1%FPR {row['tpr_1pct']:.3f}"
                      + (f"; post-hoc TPR@1%FPR {row['posthoc_tpr_1pct']:.3f} AUROC {row['posthoc_auroc']:.3f}"
                         if not args.no_posthoc else ""), flush=True)
            print(f"{size} {sampling}: generation {gen_s:.0f}s, cell {time.perf_counter() - t0:.0f}s", flush=True)

    print_tables(rows, ppl, speeds, specs, args)
    total = time.perf_counter() - start
    print(f"total {total:.0f}s on {cpu_name()} with {args.threads} torch thread(s)")
    path = args.json or os.path.join(args.work, "watermark.json")
    with open(path, "w") as f:
        json.dump({"args": vars(args), "key_digest": key.digest, "rows": rows, "perplexity": ppl, "speed": speeds,
                   "seconds": round(total, 1), "cpu": cpu_name()}, f, indent=2, default=float)
    print(f"wrote {path}")


def posthoc(args, row, size, machine_test, machine_train, human, attacked) -> None:
    """The trained feature detector at its own 1% empirical FPR, on the same test texts."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector

    det = TrainedDetector(FeatureDetector("logistic"), args.family, [size], min_tokens=1)
    n_h = min(len(human["train"]), 3 * len(machine_train))
    det.fit(machine_train + human["train"][:n_h], ["machine"] * len(machine_train) + ["human"] * n_h)
    h = np.asarray(det.decision_function(human["held"]), dtype=float)
    m = np.asarray(det.decision_function(machine_test), dtype=float)
    thr = threshold_at(h, FPR)
    row["posthoc_tpr_1pct"] = rate_above(m, thr)
    row["posthoc_fpr_1pct"] = rate_above(h, thr)
    both = np.concatenate([h, m])
    both = np.nan_to_num(both, nan=np.nanmin(both) - 1.0)  # an abstention (empty or binary text) ranks lowest
    row["posthoc_auroc"] = float(roc_auc_score([0] * len(h) + [1] * len(m), both))
    row["posthoc_abstained"] = int(np.isnan(h).sum() + np.isnan(m).sum())
    for label, texts in attacked.items():
        row["attacks"][label]["posthoc_tpr_1pct"] = rate_above(det.decision_function(texts), thr)


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def print_tables(rows, ppl, speeds, specs, args) -> None:
    ph = not args.no_posthoc
    print(f"\nwatermark ({args.scheme}, gamma {args.gamma:g}, delta {args.delta:g}) vs trained post-hoc detector; "
          f"FPR on held-out builtin human text cut to T tokens")
    print(f"{'generator':<16} {'T':>4} {'TPR@z4':>7} {'FPR@z4':>7} {'z@1%':>6} {'TPR@1%':>7}"
          + (f" {'posthoc TPR@1%':>14} {'posthoc AUROC':>13}" if ph else ""))
    for r in rows:
        print(f"{r['size'] + ' ' + r['sampling']:<16} {r['T']:>4} {r['tpr_z4']:>7.3f} {r['fpr_z4']:>7.3f} "
              f"{r['z_at_1pct']:>6.2f} {r['tpr_1pct']:>7.3f}"
              + (f" {r['posthoc_tpr_1pct']:>14.3f} {r['posthoc_auroc']:>13.3f}" if ph else ""))
    T = max(args.lengths)
    labels = [s.label for s in specs]
    print(f"\nTPR under attack at T={T}: watermark at z >= 4" + (" / post-hoc at its clean 1% FPR threshold" if ph
                                                                 else ""))
    print(f"{'generator':<16} " + " ".join(f"{lab:>17}" for lab in labels))
    for r in (r for r in rows if r["T"] == T):
        cells = [f"{r['attacks'][lab]['watermark_tpr_z4']:.2f}"
                 + (f"/{r['attacks'][lab]['posthoc_tpr_1pct']:.2f}" if ph else "") for lab in labels]
        print(f"{r['size'] + ' ' + r['sampling']:<16} " + " ".join(f"{c:>17}" for c in cells))
    print("\nperplexity under the next larger size (oracle)")
    for x in ppl:
        print(f"{x['size'] + ' ' + x['sampling']:<16} oracle {x['oracle']:<6} plain {x['ppl_plain']:>8.2f} "
              f"watermarked {x['ppl_watermarked']:>8.2f} ratio {x['ratio']:.3f}")
    print("\ngeneration speed, same 16 records, best of 3 (tokens/s)")
    for x in speeds:
        print(f"{x['size'] + ' ' + x['sampling']:<16} plain {x['plain_tok_s']:>7} watermarked "
              f"{x['watermarked_tok_s']:>7} ratio {x['ratio']:.3f}")


if __name__ == "__main__":
    main()
