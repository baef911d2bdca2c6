"""Detection quality on a family (default nano): every zero-shot method, the TF-IDF baseline,
the trained detector and the fine-tuned classifier side by side, per generator size and
sampling method.

For each size x sampling method (default ``pure`` and ``top-k=40``):

1. machine text: ``--n`` unconditional samples of at most ``--length`` tokens for a
   ``train`` and a ``test`` split (:func:`gpt2guard.generator.run.run_generation` into
   ``--work``; the two splits use different job seeds, ``--seed`` and ``--test-seed``,
   since a record's seed depends on the job seed, the set name and its index, not on the
   split). Generated once: a rerun reuses the sets (a larger ``--n`` adds records).
2. human text: the builtin corpus, its ``train`` split for training and its ``test`` split
   (modules nothing else saw) for testing, cut so the human and machine token-length
   distributions coincide (:func:`gpt2guard.detector.compare.length_matched`: rank-paired
   truncation; documents under 16 tokens dropped first). A detector cannot win by length.
3. :func:`gpt2guard.detector.compare.compare_detectors`: the zero-shot methods under
   ``--scorer`` (a size, or ``same``: the generator's own size, the white-box setting),
   with the neighbouring size as reference for Binoculars and ``fast-detectgpt-ref``; the
   TF-IDF baseline and the trained detector (logistic regression, ``C`` chosen by 5-fold
   cross-validation on the training split, on the features of every family size with its
   reference, the cross-size features and the cross-fitted TF-IDF score) fitted on the
   training split; the fine-tuned classifier (the family's smallest size with a
   classification head, trained end to end on the training split, early stopping on a 10%
   hold-out of it; :class:`gpt2guard.detector.finetune.FinetunedDetector`); AUROC and TPR at
   1% FPR on the test split. (``--human-train-split valid`` trains on human text the
   scorers never saw; nano's sizes were trained on the ``train`` split.)

Prints one row per size x sampling with ``AUROC/TPR@1%FPR`` for each column, then whether
the trained detector beats every other column in every row (by AUROC; TPR@1%FPR reported
too), and writes everything, bootstrap intervals included, to ``--json``
(default ``<work>/quality.json``). Token statistics are cached by the scoring engine, so a
rerun only refits the detectors.

Usage::

    PYTHONPATH=. python3 bench/bench_quality.py [--n 200] [--length 128] [--seed 0] [--scorer same]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FPR = 0.01


def generate(args, split: str, seed: int) -> dict:
    """Machine texts ``{(size, sampling spec): [text, ...]}`` of one split, generated once into ``--work``."""
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.generator.run import GenerationJob, plan_job, run_generation

    out = os.path.join(args.work, f"gen-{args.family}-L{args.length}")
    job = GenerationJob(out=out, family=args.family, sizes=args.sizes, sampling=args.sampling, n=args.n,
                        length=args.length, split=split, seed=seed, batch_size=8)
    start = time.perf_counter()
    summary = run_generation(job, progress=False)
    made = sum(s["written"] for s in summary)
    print(f"{split}: {made} documents generated now (job seed {seed}) in {time.perf_counter() - start:.1f}s; "
          f"{sum(s['records'] for s in summary) - made} reused from {out}")
    texts = {}
    for size, cfg, name in plan_job(job)["sets"]:
        recs = [r for r in open_set(out, name, split) if isinstance(r.id, int) and r.id < args.n]
        texts[(size, cfg.spec or "pure")] = [r.text for r in recs]
    return texts


def human() -> dict:
    """Texts of the builtin human corpus by split (read once: reading it parses many modules)."""
    from gpt2guard.datasets.builtin import builtin_corpus

    out: dict = {}
    for doc in builtin_corpus():
        out.setdefault(doc.split, []).append(doc.text)
    return out


def fmt_cell(m: dict) -> str:
    return f"{m['auroc']:.3f}/{m[f'tpr@{FPR:g}']:.2f}"


def print_table(rows: list[dict], columns: list[str]) -> None:
    width = max(11, *(len(c) for c in columns))
    print(f"\nAUROC/TPR@{FPR:.0%}FPR on the test split (human: builtin test split, length-matched)")
    print(f"{'generator':<18} {'scorer':<12} " + " ".join(f"{c:>{width}}" for c in columns))
    for r in rows:
        scorer = f"{r['scorer']}+{r['reference']}"
        print(f"{r['size'] + ' ' + r['sampling']:<18} {scorer:<12} "
              + " ".join(f"{fmt_cell(r['metrics'][c]):>{width}}" for c in columns))


def verdict(rows: list[dict]) -> dict:
    """Whether the trained column beats every other column in every row, by AUROC and by TPR@FPR.

    It beats a column when its value is higher, or when both are 1.0 (both separate the
    classes perfectly: no detector can score higher, so a tie at the ceiling is not a loss).
    ``lost`` lists every (row, column) where the other column is higher or equal below 1.0.
    """
    from gpt2guard.detector.compare import TRAINED

    out = {}
    for key in ("auroc", f"tpr@{FPR:g}"):
        lost, ceiling = [], 0
        for r in rows:
            mine = r["metrics"][TRAINED][key]
            others = [(c, m[key]) for c, m in r["metrics"].items() if c != TRAINED]
            lost += [{"row": f"{r['size']} {r['sampling']}", "column": c, "trained": mine, "other": v}
                     for c, v in others if not (v < mine or v == mine == 1.0)]
            ceiling += any(v == mine == 1.0 for _, v in others)
        out[key] = {"beats_all": not lost, "lost": lost, "rows_tied_at_1": ceiling}
    return out


def say_verdict(v: dict, n_rows: int) -> None:
    for key, name in (("auroc", "AUROC"), (f"tpr@{FPR:g}", f"TPR@{FPR:.0%}FPR")):
        res = v[key]
        tied = (f"; in {res['rows_tied_at_1']} of {n_rows} rows other columns also reach 1.000 (perfect separation)"
                if res["rows_tied_at_1"] else "")
        if res["beats_all"]:
            print(f"by {name}: the trained detector beats every other column at every size and sampling: yes{tied}")
        else:
            print(f"by {name}: the trained detector beats every other column at every size and sampling: no, not "
                  + "; ".join(f"{x['row']} {x['column']} {x['other']:.3f} >= trained {x['trained']:.3f}"
                              for x in res["lost"]) + tied)


def finetune_summary(rows: list[dict]) -> dict:
    """The fine-tuned column against the trained one row by row (AUROC and TPR@FPR), and its
    training cost: seconds per 1,000 training documents (all epochs and validation passes)."""
    from gpt2guard.detector.compare import FINETUNE, TRAINED

    key = f"tpr@{FPR:g}"
    per_row = [{"row": f"{r['size']} {r['sampling']}", "auroc": r["metrics"][FINETUNE]["auroc"],
                "trained_auroc": r["metrics"][TRAINED]["auroc"], "tpr": r["metrics"][FINETUNE][key],
                "trained_tpr": r["metrics"][TRAINED][key], "epochs": r["finetune"]["history"]["epochs_run"],
                "best_epoch": r["finetune"]["history"]["best_epoch"],
                "seconds": r["finetune"]["history"]["seconds"],
                "seconds_per_1000_docs": r["finetune"]["seconds_per_1000_docs"]} for r in rows]
    costs = [x["seconds_per_1000_docs"] for x in per_row]
    return {"rows": per_row, "base": rows[0]["finetune"]["base"] if rows else None,
            "wins_auroc": sum(x["auroc"] > x["trained_auroc"] for x in per_row),
            "loses_auroc": sum(x["auroc"] < x["trained_auroc"] for x in per_row),
            "seconds_total": sum(x["seconds"] for x in per_row),
            "seconds_per_1000_docs_median": sorted(costs)[len(costs) // 2] if costs else None}


def say_finetune(ft: dict) -> None:
    print(f"fine-tuned ({ft['base']}) vs trained by AUROC: higher in {ft['wins_auroc']} rows, lower in "
          f"{ft['loses_auroc']} of {len(ft['rows'])}; training {ft['seconds_total']:.0f}s in all, median "
          f"{ft['seconds_per_1000_docs_median']:.1f}s per 1,000 training documents (all epochs)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200, help="documents per set (each split, size and sampling method)")
    p.add_argument("--length", type=int, default=128, help="maximum new tokens per machine document")
    p.add_argument("--seed", type=int, default=0, help="job seed of the training split (and of the bootstraps)")
    p.add_argument("--test-seed", type=int, default=None, help="job seed of the test split (default --seed + 1)")
    p.add_argument("--work", default=os.path.join("/tmp", "gpt2guard-bench-quality"),
                   help="directory of the generated sets and the JSON result")
    p.add_argument("--scorer", default="same",
                   help="scorer size of the zero-shot methods, or 'same' (each generator's own size)")
    p.add_argument("--human-train-split", default="train", choices=("train", "valid"),
                   help="builtin corpus split of the human training documents")
    p.add_argument("--family", default="nano")
    p.add_argument("--sizes", default="all", help="generator sizes")
    p.add_argument("--sampling", default="pure,top-k=40", help="sampling methods (generator specs)")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples of the intervals")
    p.add_argument("--finetune-base", help="base model of the fine-tuned column (default: the family's smallest "
                                           "size, e.g. nano:small)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--json", help="write the results here (default <work>/quality.json)")
    args = p.parse_args(argv)
    if args.test_seed is None:
        args.test_seed = args.seed + 1
    if args.test_seed == args.seed:
        raise SystemExit("--test-seed must differ from --seed: the two splits would hold the same documents")
    if args.threads:  # before torch loads
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    import torch

    from gpt2guard.detector.compare import compare_detectors, length_matched
    from gpt2guard.detector.finetune import FinetunedDetector
    from gpt2guard.family import get_family, load_tokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_family(args.family)
    if spec.kind == "builtin":
        from gpt2guard.family.load import load_model

        from gpt2guard.errors import GuardError

        try:  # never build a family from a bench: say how instead
            load_model(args.family, spec.size_names[0], device="cpu", build_missing=False)
        except GuardError as exc:
            raise SystemExit(f"{args.family} is not built ({exc}): run `gpt2guard family build {args.family}` first")
    os.makedirs(args.work, exist_ok=True)
    start = time.perf_counter()
    machine = {"train": generate(args, "train", args.seed), "test": generate(args, "test", args.test_seed)}
    corpus = human()
    pools = {"train": corpus[args.human_train_split], "test": corpus["test"]}
    tok = load_tokenizer(args.family)
    scorers: dict = {}
    rows = []
    for (size, sampling) in machine["train"]:
        t0 = time.perf_counter()
        docs = {split: length_matched(pools[split], machine[split][(size, sampling)], tok, seed=args.seed, n=args.n)
                for split in ("train", "test")}
        scorer = size if args.scorer == "same" else args.scorer
        ft = FinetunedDetector(args.finetune_base, random_state=args.seed) if args.finetune_base else None
        res = compare_detectors(docs["train"], docs["test"], args.family, scorer, fprs=(FPR,), n_boot=args.n_boot,
                                seed=args.seed, scorers=scorers, finetune=ft)
        rows.append({"size": size, "sampling": sampling, **{k: v for k, v in res.items() if k != "columns"}})
        columns = res["columns"]
        best = max((c for c in columns if c != "trained"), key=lambda c: res["metrics"][c]["auroc"])
        print(f"{size} {sampling}: {res['n_train']} train / {res['n_test']} test documents; trained "
              f"{res['metrics']['trained']['auroc']:.3f} (C={res['estimator']['C_']:g}) vs best other {best} "
              f"{res['metrics'][best]['auroc']:.3f}; finetune {res['metrics']['finetune']['auroc']:.3f} "
              f"({res['finetune']['history']['epochs_run']} epochs, {res['finetune']['history']['seconds']:.1f}s); "
              f"{time.perf_counter() - t0:.1f}s", flush=True)
    print_table(rows, columns)
    v = verdict(rows)
    say_verdict(v, len(rows))
    ft = finetune_summary(rows)
    say_finetune(ft)
    print(f"total {time.perf_counter() - start:.0f}s")
    path = args.json or os.path.join(args.work, "quality.json")
    with open(path, "w") as f:
        json.dump({"args": vars(args), "columns": columns, "rows": rows, "verdict": v, "finetune": ft}, f, indent=2,
                  default=float)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
