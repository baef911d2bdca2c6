"""``gpt2guard detector``: train, calibrate and evaluate saved detectors."""

from __future__ import annotations

import json

import click

from gpt2guard.cli.params import ATTACK_SPECS, BOOT, COUNT, RATE, SEED as SEED_TYPE, given, refuse_together
from gpt2guard.cli.options import PROGRESS, engine_options, engine_session, make_engine

DATA = click.option("--data", "data", multiple=True, required=True, type=click.Path(file_okay=False, exists=True),
                    help="Directory of sets (repeatable): the human set and the machine sets.")
HUMAN = click.option("--human", default="builtin", show_default=True, help="Name of the human set.")
MACHINE = click.option("--machine", multiple=True,
                       help="Machine set name (repeatable; default: every other set with the split).")
SEED = click.option("--seed", type=SEED_TYPE, default=0, show_default=True, help="Seed of the estimator and the bootstraps.")
LIMIT = click.option("--limit", type=click.IntRange(min=1), help="At most N documents per set.")


@click.group()
def detector():
    """Trained detectors: train on human and machine sets, calibrate a threshold, evaluate."""


def _log(msg):
    click.echo(msg, err=True)


def _use_engine(engine, ray_address, ray_workers, ray_gpus_per_worker) -> dict:
    """The scorer settings of a command's engine, connected for the rest of the command."""
    engine = make_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    if not engine.is_ray:
        return {}
    click.get_current_context().with_resource(engine_session(engine))
    return {"engine": engine}


def _verdict_scores(det, data):
    """Scores with abstentions as NaN, and token counts, of labelled documents."""
    import numpy as np

    verdicts = det.verdicts(data.texts)
    scores = np.array([np.nan if v.decision == "abstain" else v.score for v in verdicts], dtype=np.float64)
    return scores, [v.n_tokens for v in verdicts]


def _calibrate(det, directory, data, fpr, seed, n_boot):
    from gpt2guard.detector.trained import update_meta

    human = data.select([lab == "human" for lab in data.labels])
    cal = det.calibrate(human.texts, fpr, n_boot=n_boot, seed=seed).calibration_
    update_meta(directory, threshold=cal.threshold, calibration=cal.to_dict())
    _log(f"threshold {cal.threshold:.4g} for FPR {fpr:g} on {cal.n_human} human documents "
         f"(95% CI {cal.ci_low:.4g}..{cal.ci_high:.4g}, achieved {cal.achieved_fpr:.4f})")
    if cal.warning:
        _log("warning: " + cal.warning)
    return cal


@detector.command("train")
@DATA
@HUMAN
@MACHINE
@click.option("--kind", type=click.Choice(["logistic", "boosting", "tfidf", "finetune"]), default="logistic",
              show_default=True,
              help="logistic / boosting on token-statistic features, OpenAI's TF-IDF baseline, or finetune: a "
                   "language model with a classification head trained end to end (see --base).")
@click.option("--base", default="nano", show_default=True,
              help="finetune: the base model, FAMILY:SIZE (nano:small), a family (its smallest size), a Hugging Face "
                   "model directory or an owner/name hub id (causal LM or encoder, safetensors weights).")
@click.option("--epochs", type=click.IntRange(min=1, max=1000), default=4, show_default=True,
              help="finetune: most passes over the training documents (early stopping on the valid split).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True, max=1), default=1e-3, show_default=True,
              help="finetune: peak AdamW learning rate (after 10% linear warm-up, then linear decay); about 2e-5 "
                   "for a pretrained encoder such as RoBERTa.")
@click.option("--batch-size", type=click.IntRange(min=1, max=4096), default=16, show_default=True,
              help="finetune: documents per step.")
@click.option("--family", default="nano", show_default=True, help="Scorer family for feature detectors.")
@click.option("--sizes", default="small", show_default=True, help="Comma-separated scorer sizes (features concatenated).")
@click.option("--references", is_flag=True,
              help="Score each size with its neighbouring size as reference: adds the cross terms, Binoculars and "
                   "fast-detectgpt-ref to the features (one more model per size).")
@click.option("--lexical", is_flag=True,
              help="Also read the words: stack a cross-fitted TF-IDF word 1-2-gram score onto the token-statistic "
                   "features (logistic / boosting).")
@click.option("--cv", default=5, show_default=True, type=click.IntRange(min=0),
              help="logistic: choose the regularisation C by this many folds of cross-validation on the training "
                   "split (0: C=1).")
@click.option("--split", default="train", show_default=True, help="Split to train on.")
@click.option("--valid-split", default="valid", show_default=True,
              help="Split for metrics and the threshold, when the sets have it (else metrics on the training split).")
@click.option("--fpr", type=RATE, default=0.01, show_default=True,
              help="False-positive rate of the calibrated threshold.")
@click.option("--min-tokens", type=COUNT, default=16, show_default=True, help="Abstain below this many tokens.")
@SEED
@LIMIT
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Detector directory to write.")
@engine_options
@PROGRESS
def train_cmd(data, human, machine, kind, base, epochs, lr, batch_size, family, sizes, references, lexical, cv, split,
              valid_split, fpr, min_tokens, seed, limit, out, engine, ray_address, ray_workers, ray_gpus_per_worker,
              progress):
    """Train a detector on human and machine sets and save it (no pickles) to OUT.

    Example: gpt2guard detector train --data data/human --data data/gen --family nano --sizes small,medium
    --kind logistic --out det/

    With --engine ray (logistic, boosting) the scorer features are computed on Ray Data actors.

    --kind finetune reads the first tokens of each document up to the base's context, stops
    early on the valid split's loss and saves the weights as safetensors:
    gpt2guard detector train --data data/human --data data/gen --kind finetune --base nano:small --out det-ft/
    """
    from gpt2guard.detector.evaluate import metrics
    from gpt2guard.detector.labelled import load_labelled
    from gpt2guard.detector.trained import update_meta

    if lexical and kind == "tfidf":
        raise click.UsageError("--lexical adds the TF-IDF score to a logistic or boosting detector; "
                               "--kind tfidf is that score alone")
    ctx = click.get_current_context()
    if kind == "tfidf":
        refuse_together(ctx, "kind", ["references"], "--kind tfidf reads words, not a model")
    if kind == "finetune":
        refuse_together(ctx, "kind", ["references", "lexical", "family", "sizes"],
                        "--kind finetune trains --base itself, with no scorer features")
    else:
        clash = [o for o in ("base", "epochs", "lr", "batch_size") if given(ctx, o)]
        if clash:
            raise click.UsageError(f"--{clash[0].replace('_', '-')} is for --kind finetune")
    if kind != "logistic" and given(ctx, "cv"):
        raise click.UsageError(f"--cv chooses the logistic regularisation; --kind {kind} has none")
    if kind in ("tfidf", "finetune") and engine == "ray":
        raise click.UsageError(f"--engine ray scores the token-statistic features of logistic and boosting "
                               f"detectors; --kind {kind} runs here")
    on_engine = _use_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    train = load_labelled(data, human, list(machine), split, limit=limit)
    _log(f"training on {train.labels.count('human')} human and {train.labels.count('machine')} machine documents")
    held = load_labelled(data, human, list(machine), valid_split, limit=limit, require=False)
    has_valid = "human" in held.labels and "machine" in held.labels
    if kind == "finetune":
        from gpt2guard.detector.finetune import FinetunedDetector

        det = FinetunedDetector(base, epochs=epochs, lr=lr, batch_size=batch_size, min_tokens=min_tokens,
                                random_state=seed, progress=progress)
        det.fit(train.texts, train.labels, validation=(held.texts, held.labels) if has_valid else None)
        h = det.history_
        stop = f"best epoch {h['best_epoch']} of {h['epochs_run']} by {valid_split if has_valid else 'held-out'} loss" \
            if h["best_epoch"] else f"{h['epochs_run']} epochs"
        _log(f"fine-tuned {det.base_info_['name']}: {stop}; {h['seconds']:.1f}s, "
             f"{det.meta['seconds_per_1000_docs']:.1f}s per 1,000 training documents")
    elif kind == "tfidf":
        from gpt2guard.detector.tfidf import TfidfDetector

        det = TfidfDetector(min_tokens=min_tokens).fit(train.texts, train.labels)
    else:
        from gpt2guard.detector.compare import reference_size
        from gpt2guard.detector.estimators import FeatureDetector
        from gpt2guard.detector.trained import TrainedDetector

        names = [s.strip() for s in sizes.split(",") if s.strip()]
        refs = {s: reference_size(family, s) for s in names} if references else None
        est = FeatureDetector(kind, random_state=seed, cv=(cv or None) if kind == "logistic" else None)
        det = TrainedDetector(est, family, names, references=refs, min_tokens=min_tokens, lexical=lexical,
                              scorer_kwargs={"progress": progress, **on_engine})
        det.fit(train.texts, train.labels)
    det.save(out)
    on = valid_split if has_valid else split
    if on == valid_split:
        _calibrate(det, out, held, fpr, seed, 200)
    else:
        held = train
        _log(f"no {valid_split} split with both classes: metrics on the training split, threshold 0 (log-odds)")
    scores, _ = _verdict_scores(det, held)
    m = metrics(held.y, scores, threshold=det.threshold if det.threshold is not None else 0.0, n_boot=0, seed=seed)
    update_meta(out, metrics={"split": on, **m})
    click.echo(f"saved {det.kind} detector to {out}; on {on}: AUROC {m['auroc']:.3f}, TPR@1%FPR {m['tpr@0.01']:.3f}, "
               f"accuracy {m['accuracy']:.3f}")


@detector.command("calibrate")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@DATA
@HUMAN
@click.option("--split", default="valid", show_default=True, help="Split of human text to calibrate on.")
@click.option("--fpr", type=RATE, default=0.01, show_default=True, help="Target false-positive rate.")
@click.option("--n-boot", type=BOOT, default=1000, show_default=True, help="Bootstrap resamples for the interval.")
@click.option("--probability", type=click.Choice(["platt", "isotonic"]),
              help="Also fit calibrated machine probabilities on the split's human and machine documents.")
@MACHINE
@SEED
@LIMIT
@PROGRESS
def calibrate_cmd(directory, data, human, split, fpr, n_boot, probability, machine, seed, limit, progress):
    """Set DIRECTORY's threshold for a false-positive rate on human text (written to detector.json).

    With --probability, the probabilities that `gpt2guard score` reports are mapped through
    Platt scaling or isotonic regression fitted on the split (decisions still use the threshold).

    Example: gpt2guard detector calibrate det/ --data data/human --human builtin --split valid --fpr 0.01
    """
    from gpt2guard.detector.labelled import load_labelled
    from gpt2guard.detector.trained import load_detector

    if not probability and given(click.get_current_context(), "machine"):
        raise click.UsageError("--machine is for --probability (the threshold is set on human text alone)")
    det = load_detector(directory, scorer_kwargs={"progress": progress})
    if probability:
        from gpt2guard.detector.calibrate import ProbabilityCalibrator
        from gpt2guard.detector.trained import update_meta

        both = load_labelled(data, human, list(machine), split, limit=limit)
        raw = det.decision_texts(both.texts)
        pc = ProbabilityCalibrator(probability).fit(raw, both.y)
        update_meta(directory, probability_calibration=pc.to_dict())
        _log(f"{probability} probability calibration fitted on {len(both.texts)} {split} documents")
    held = load_labelled(data, human, None, split, limit=limit, require=False, human_only=True)
    if "human" not in held.labels:
        from gpt2guard.errors import GuardError

        raise GuardError(f"no {split!r} split of the human set {human!r}")
    cal = _calibrate(det, directory, held, fpr, seed, n_boot)
    click.echo(json.dumps(cal.to_dict(), indent=2))


@detector.command("eval")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@DATA
@HUMAN
@MACHINE
@click.option("--split", default="test", show_default=True, help="Split to evaluate on.")
@click.option("--n-boot", type=BOOT, default=200, show_default=True, help="Bootstrap resamples for the intervals.")
@click.option("--transfer", is_flag=True,
              help="Also the size-transfer matrix: retrain on each generator size's --train-split, test on each.")
@click.option("--train-split", default="train", show_default=True,
              help="With --transfer: the split the size-transfer detectors train on.")
@click.option("--attacks", "attacks", type=ATTACK_SPECS, default=None,
              help="Also a robustness table under these attacks (name=rate,...): TPR on attacked machine text and "
                   "FPR on attacked human text at a threshold calibrated on clean human text, hygiene on and off.")
@click.option("--attack-seed", type=SEED_TYPE, default=0, show_default=True, help="With --attacks: seed of the attacks.")
@click.option("--attack-fpr", type=RATE, default=0.05, show_default=True,
              help="With --attacks: the FPR the clean-human threshold is calibrated for (RAID's protocol: 0.05).")
@SEED
@LIMIT
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Writes eval.json, eval.txt, roc.png.")
@engine_options
@PROGRESS
def eval_cmd(directory, data, human, machine, split, n_boot, transfer, train_split, attacks, attack_seed, attack_fpr,
             seed, limit, out, engine, ray_address, ray_workers, ray_gpus_per_worker, progress):
    """Evaluate DIRECTORY on a split: AUROC, TPR at 5/1/0.1% FPR with bootstrap intervals, accuracy at
    the threshold, by generator size, sampling method and length; JSON, a table and a ROC plot.

    With --attacks homoglyph=1.0,whitespace=0.2 also a table per attack: TPR on the split's
    attacked machine documents and FPR on its attacked human documents, at the threshold
    calibrated for --attack-fpr on the clean human documents, each with input hygiene and
    without (what hygiene buys).

    With --engine ray the scorer features are computed on Ray Data actors.

    Example: gpt2guard detector eval det/ --data data/human --data data/gen --split test --out eval/
    """
    from pathlib import Path

    from gpt2guard.detector.evaluate import breakdown, format_table, length_bucket, metrics, roc_plot
    from gpt2guard.detector.labelled import load_labelled
    from gpt2guard.detector.trained import load_detector
    from gpt2guard.paths import atomic_write_text, write_json

    if not transfer and given(click.get_current_context(), "train_split"):
        raise click.UsageError("--train-split is for --transfer")
    for name in ("attack_seed", "attack_fpr"):
        if attacks is None and given(click.get_current_context(), name):
            raise click.UsageError(f"--{name.replace('_', '-')} is for --attacks")
    on_engine = _use_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    det = load_detector(directory, scorer_kwargs={"progress": progress, **on_engine})
    test = load_labelled(data, human, list(machine), split, limit=limit)
    scores, n_tokens = _verdict_scores(det, test)
    y = test.y
    kw = dict(threshold=det.threshold if det.threshold is not None else 0.0, n_boot=n_boot, seed=seed)
    result = {"detector": str(directory), "split": split, "overall": metrics(y, scores, **kw),
              "by_size": breakdown(y, scores, test.sizes, machine_only=True, **kw),
              "by_sampling": breakdown(y, scores, test.samplings, machine_only=True, **kw),
              "by_length": breakdown(y, scores, [length_bucket(n) for n in n_tokens], machine_only=False, **kw)}
    if transfer:
        result["transfer"] = _transfer(det, data, human, list(machine), train_split, test, limit)
    if attacks:
        from gpt2guard.detector.robustness import attack_table

        result["attacks"] = attack_table(det, [t for t, lab in zip(test.texts, test.labels) if lab == "human"],
                                         [t for t, lab in zip(test.texts, test.labels) if lab == "machine"], attacks,
                                         fpr=attack_fpr, seed=attack_seed)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    write_json(outdir / "eval.json", result)
    table = format_table(result)
    if attacks:
        from gpt2guard.detector.robustness import format_attack_table

        table += "\n\n" + format_attack_table(result["attacks"])
    atomic_write_text(outdir / "eval.txt", table + "\n")
    roc_plot({f"{det.kind} ({split})": (y, scores)}, outdir / "roc.png", title=f"ROC: {directory}")
    click.echo(table)
    click.echo(f"eval.json, eval.txt and roc.png in {out}")


def _transfer(det, data, human, machine, train_split, test, limit):
    import numpy as np

    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.evaluate import transfer_matrix
    from gpt2guard.detector.labelled import load_labelled
    from gpt2guard.errors import GuardError

    if det.kind != "features":
        raise GuardError("--transfer needs a feature detector (logistic or boosting)")
    if det.lexical:
        raise GuardError("--transfer compares token-statistic features: use a detector trained without --lexical")
    train = load_labelled(data, human, machine, train_split, limit=limit)

    def by_size(d):
        stats = det.token_stats(d.texts)
        X = det.feature_matrix(stats)
        ok = np.array([s.n_tokens >= det.min_tokens for s in stats[det.sizes[0]]], dtype=bool)  # abstentions out
        human_x = X[(d.y == 0) & ok]
        machine = {s: X[np.array([z == s for z in d.sizes]) & ok] for s in sorted({z for z in d.sizes if z})}
        return human_x, machine

    h_tr, m_tr = by_size(train)
    h_te, m_te = by_size(test)
    params = det.estimator.get_params()
    return transfer_matrix(m_tr, m_te, h_tr, h_te, lambda: FeatureDetector(**params))
