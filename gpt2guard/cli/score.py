"""``gpt2guard score``: judge documents with a saved detector or a zero-shot method."""

from __future__ import annotations

import csv
import io
import json
import math

import click

from gpt2guard.cli.direction import direction_option_group
from gpt2guard.cli.params import COUNT, METHOD, RATE, SEED, THRESHOLD, refuse_together
from gpt2guard.cli.options import PROGRESS, engine_options, engine_session, make_engine
from gpt2guard.cli.watermark import score_options as watermark_options

# Tokens of each document the HTML report shows by default (a page of a few MB).
DEFAULT_HTML_TOKENS = 20_000

COLUMNS = ("name", "decision", "probability", "probability_threshold", "score", "threshold", "n_tokens",
           "n_windows", "method", "scorer", "flags", "repairs", "reason")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(v) or "-"
    if isinstance(v, dict):
        return ",".join(f"{k}={n}" for k, n in sorted(v.items())) or "-"
    return str(v)


def _csv_cell(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, list):
        return ";".join(v)
    if isinstance(v, dict):
        return ";".join(f"{k}={n}" for k, n in sorted(v.items()))
    return v


def threshold_line(row: dict) -> str:
    """The decision rule of a row's detector: the score threshold, and the same threshold on
    the probability scale where the detector gives probabilities."""
    from gpt2guard.detector.direction import rule_line
    from gpt2guard.detector.verdict import format_probability

    if row.get("probability_threshold") is not None:
        return (f"machine when score > {_fmt(row['threshold'])}, i.e. machine probability above "
                f"{format_probability(row['probability_threshold'], None)}")
    rule = rule_line(row.get("direction") or "higher", row["threshold"], row.get("threshold_low"), _fmt)
    return f"{rule} (zero-shot scores are not probabilities)"


def format_verdicts(rows: list[dict], fmt: str) -> str:
    """Render verdict dicts (:meth:`~gpt2guard.detector.verdict.Verdict.to_dict`) as ``table``,
    ``json`` or ``csv``. An abstention has no probability in any of them (``null``, an empty
    cell, ``-``)."""
    from gpt2guard.detector.verdict import format_probability

    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        from gpt2guard.cli.watermark import CSV_FIELDS

        columns = COLUMNS + ("direction", "threshold_low")
        marked = bool(rows) and "watermark" in rows[0]  # score --watermark beside a detector
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns + (tuple(f"watermark_{k}" for k in CSV_FIELDS) if marked else ()))
        for r in rows:
            w.writerow([_csv_cell(r.get(c)) for c in columns]
                       + ([_csv_cell(r["watermark"].get(k)) for k in CSV_FIELDS] if marked else []))
        return buf.getvalue().rstrip("\n")
    lines = [f"{'name':<32} {'decision':<8} {'prob':>6} {'score':>9} {'tokens':>6} {'win':>3}  reason"]
    for r in rows:
        name = r["name"] if len(r["name"]) <= 32 else "..." + r["name"][-29:]
        prob = format_probability(r["probability"], r.get("probability_threshold"))
        lines.append(f"{name:<32} {r['decision']:<8} {prob:>6} {_fmt(r['score']):>9} "
                     f"{r['n_tokens']:>6} {r['n_windows']:>3}  {r['reason']}"
                     + (f" [{_fmt(r['flags'])}]" if r["flags"] else ""))
    if rows:
        lines.append(f"method {rows[0]['method']}, scorer {rows[0]['scorer']}; {threshold_line(rows[0])}")
    return "\n".join(lines)


def build_detector(detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, log,
                   progress=False, max_tokens=None, engine=None):
    """A saved detector (``--detector``) or a zero-shot one, threshold and direction set
    (:func:`~gpt2guard.detector.build.build_detector`, shared with ``serve``); ``max_tokens``
    cuts each document's scoring at that many tokens. The direction options come from the
    running command (:mod:`gpt2guard.cli.direction`); ``engine`` is where it scores."""
    from gpt2guard.cli.direction import direction_options, refuse_with_detector
    from gpt2guard.detector.build import build_detector as build

    ctx = click.get_current_context(silent=True)
    options = {}
    if ctx is not None and "gpt2guard.direction" in ctx.meta:
        refuse_with_detector(ctx)
        options = direction_options(ctx)
    return build(detector, method, family, size, reference_size, threshold=threshold, fpr=fpr,
                 min_tokens=min_tokens, seed=seed, log=log,
                 scorer_kwargs={"progress": progress, **({"engine": engine} if engine is not None else {})},
                 max_tokens=max_tokens, **options)


def html_scorer(det, family, size, max_tokens: int):
    """The detector's per-token view scorer (:func:`~gpt2guard.detector.build.view_scorer`)
    scoring at most ``max_tokens`` tokens of each document (the statistics of a document's
    first tokens do not depend on what follows them)."""
    from gpt2guard.detector.build import view_scorer
    from gpt2guard.detector.scoring import Scorer

    s = view_scorer(det, family, size)
    cap = min(max_tokens, s.max_tokens or max_tokens)
    return Scorer(s.scorer, s.reference, batch_tokens=s.batch_tokens, chunk_elements=s.chunk_elements, bf16=s.bf16,
                  cache=s.cache or False, max_tokens=cap, progress=s.progress, linear=s.backend)


@click.command("score")
@click.argument("files", nargs=-1, required=True)
@click.option("--detector", "detector", type=click.Path(file_okay=False, exists=True),
              help="A saved detector directory (from `gpt2guard detector train`).")
@click.option("--method", type=METHOD, default="fast-detectgpt", show_default=True,
              help="Zero-shot method when no --detector is given (docs/detector.md describes each).")
@click.option("--family", default="nano", show_default=True, help="Scorer family for --method (and --html with a "
                                                                  "TF-IDF detector).")
@click.option("--size", help="Scorer size (default: the family's smallest).")
@click.option("--reference-size", help="Reference size for methods that need one (binoculars, fast-detectgpt-ref).")
@click.option("--threshold", type=THRESHOLD, help="Machine when score > THRESHOLD (overrides the calibrated one).")
@click.option("--fpr", type=RATE, default=0.05, show_default=True,
              help="For --method without --threshold: false-positive rate to calibrate on builtin held-out human text.")
@direction_option_group
@click.option("--min-tokens", type=COUNT, help="Abstain on documents with fewer tokens (default: the detector's, 16).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed of the calibration interval.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Verdicts as an aligned table, a JSON list or CSV with a header row.")
@click.option("--skip-bad", is_flag=True, help="Skip (and count) bad JSONL lines instead of stopping.")
@click.option("--max-tokens", type=click.IntRange(min=1),
              help="Score at most this many tokens of each document (a safety valve for huge inputs; a cut "
                   "document is flagged 'truncated'). Default: every token, in bounded memory.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Also write a GLTR-style HTML report here.")
@click.option("--html-max-tokens", type=click.IntRange(min=1), default=DEFAULT_HTML_TOKENS, show_default=True,
              help="The HTML report shows at most this many tokens of each document (and says so); verdicts "
                   "judge every token.")
@watermark_options
@engine_options
@PROGRESS
def score(files, detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, fmt, skip_bad,
          max_tokens, html_out, html_max_tokens, watermark, watermark_gamma, watermark_scheme, watermark_z, engine,
          ray_address, ray_workers, ray_gpus_per_worker, progress):
    """Judge each document in FILES (text files, JSONL sets, or - for stdin): machine, human or abstain.

    Prints per document the decision with its reason, the machine probability (trained and
    TF-IDF detectors: machine exactly when it is above the threshold's probability, which is
    printed too; zero-shot methods give none and decide by score > threshold), the score,
    token and window counts, the method, the scorer and the hygiene flags (invisible
    characters removed, look-alike letters mapped...). Empty, binary or too-short documents
    are abstentions, with no probability, never machine verdicts.

    A zero-shot method's direction is never assumed silently: without --threshold it is
    learned from --labelled documents, else the test is two-sided (atypical for human text
    either way), with a warning when the scorer is not of the --suspect family (default
    gpt2). Without GPT-2's weights: give labelled documents or train a detector
    (docs/detector.md, "Without the generator's weights").

    With --watermark KEYFILE each document is also tested for the green-list watermark of
    that key (docs/watermark.md): scored tokens, green fraction, z-score, one-sided p-value
    and a decision at --watermark-z, with the false-positive rate on the builtin held-out
    human text beside the theoretical one. --watermark alone runs no detector (the
    tokenizer is the key's family's, or --family's); with --detector or --method both run.

    With --engine ray the documents are scored on Ray Data actors (a local Ray, or the
    cluster at --ray-address), with statistics equal to a local run's to float rounding.

    Examples: gpt2guard score essay.txt --method fast-detectgpt --family nano;
    gpt2guard score data/test.jsonl --detector det/ --format json --html report.html;
    gpt2guard score data/gen/nano-small.test.jsonl --watermark keys/nano.key
    """
    from gpt2guard.detector.inputs import check_paths

    ctx = click.get_current_context()
    refuse_together(ctx, "detector", ["method", "reference_size", "fpr"], "a saved detector has its own scorer and "
                    "threshold (set it with --threshold or `gpt2guard detector calibrate`)")
    refuse_together(ctx, "threshold", ["fpr"], "--fpr calibrates a threshold; --threshold sets one")

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    check_paths(files)
    from gpt2guard.cli.watermark import WatermarkTest, refuse_stray, watermark_only

    refuse_stray(ctx, ["watermark_gamma", "watermark_scheme", "watermark_z"])
    test = None
    if watermark:
        test = WatermarkTest(ctx, watermark, watermark_gamma, watermark_scheme, watermark_z, family, max_tokens, log)
        if watermark_only(ctx, test, files, fmt, skip_bad, log):
            return
        test.calibrate()
    engine = make_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    with engine_session(engine):
        _score(files, detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, fmt,
               skip_bad, max_tokens, html_out, html_max_tokens, progress, engine, log, test)


def _score(files, detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, fmt, skip_bad,
           max_tokens, html_out, html_max_tokens, progress, engine, log, test):
    from dataclasses import replace

    from gpt2guard.cli.watermark import format_watermark
    from gpt2guard.detector.inputs import BATCH_CHARS, batched, iter_documents

    det = build_detector(detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, log,
                         progress, max_tokens, engine if engine.is_ray else None)
    report = html_scorer(det, family, size, html_max_tokens) if html_out else None
    verdicts, sections, shown, marks = [], [], 0, []
    # documents are read and scored a group at a time: only the group being scored is held
    # on Ray, larger groups: each group is one pipeline, whose actors start and load models once
    group = {"max_docs": 1 << 16, "max_chars": 8 * BATCH_CHARS} if engine.is_ray else {}
    for names, docs in batched(iter_documents(files, skip_bad=skip_bad, log=log), **group):
        offset = len(verdicts)
        verdicts += [replace(v, index=v.index + offset) for v in det.verdicts(docs, names)]
        if test is not None:
            marks += test.score(docs)
        if report is not None:
            from gpt2guard.detector.report_html import html_sections

            stats = report.score(docs)
            shown += sum(s.n_tokens < v.n_tokens for s, v in zip(stats, verdicts[offset:]))
            sections += html_sections(verdicts[offset:], stats, report.scorer, context=report.context,
                                      linear=report.backend)
            del stats
        del docs
    cut = sum("truncated" in v.flags for v in verdicts)
    if cut:
        log(f"{cut} document(s) cut at --max-tokens {max_tokens}: their verdicts judge the first {max_tokens} tokens")
    rows = [v.to_dict() for v in verdicts]
    if test is not None:
        rows = [{**r, "watermark": test.annotate(m)} for r, m in zip(rows, marks)]
    click.echo(format_verdicts(rows, fmt))
    if test is not None and fmt == "table":
        click.echo("\n" + format_watermark([r["name"] for r in rows], marks, fmt, test))
    if html_out:
        from gpt2guard.detector.report_html import render_page
        from gpt2guard.paths import atomic_write_text

        atomic_write_text(html_out, render_page(sections))
        log(f"HTML report in {html_out}" + (f"; {shown} document(s) longer than --html-max-tokens {html_max_tokens} "
                                            f"show their first {html_max_tokens} tokens" if shown else ""))
