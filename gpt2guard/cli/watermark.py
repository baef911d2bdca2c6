"""``gpt2guard watermark``: key files for the green-list watermark, and the options that use them.

``generate --watermark KEY`` marks what it samples; ``score --watermark KEY`` tests for the
mark (docs/watermark.md).
"""

from __future__ import annotations

import json

import click

from gpt2guard.cli.params import FiniteFloat, THRESHOLD, given

GAMMA = FiniteFloat(0.0, 1.0, low_open=True, high_open=True, what="the green share of the vocabulary")
DELTA = FiniteFloat(0.0, None, what="the bias added to green logits")
SCHEME = click.Choice(["lefthash", "selfhash"])


def generate_options(f):
    """``--watermark`` and its parameters, for ``gpt2guard generate``."""
    for option in reversed([
        click.option("--watermark", "watermark", type=click.Path(dir_okay=False),
                     help="Watermark what is sampled with this key file (from `gpt2guard watermark keygen`); "
                          "records name the scheme, its parameters and the key's digest, never the key."),
        click.option("--watermark-gamma", type=GAMMA, default=0.25, show_default=True,
                     help="Green share of the vocabulary after each context."),
        click.option("--watermark-delta", type=DELTA, default=2.0, show_default=True,
                     help="Bias added to green tokens' logits (before temperature, top-k or nucleus)."),
        click.option("--watermark-scheme", type=SCHEME, default="lefthash", show_default=True,
                     help="lefthash: green list seeded by the previous token; selfhash: min-hash over 4 tokens "
                          "including the candidate (more robust to edits, slower)."),
    ]):
        f = option(f)
    return f


def score_options(f):
    """``--watermark`` and its test's parameters, for ``gpt2guard score``."""
    for option in reversed([
        click.option("--watermark", "watermark", type=click.Path(dir_okay=False),
                     help="Test each document for the watermark of this key file: scored tokens, green "
                          "fraction, z-score, p-value and a decision. Alone, no detector runs."),
        click.option("--watermark-gamma", type=GAMMA, default=0.25, show_default=True,
                     help="The generation's green share."),
        click.option("--watermark-scheme", type=SCHEME, default="lefthash", show_default=True,
                     help="The generation's scheme."),
        click.option("--watermark-z", type=THRESHOLD, default=4.0, show_default=True,
                     help="Watermarked when z >= this (4: a theoretical false-positive rate of 3.2e-5)."),
    ]):
        f = option(f)
    return f


def refuse_stray(ctx: click.Context, names) -> None:
    """A usage error for watermark parameters given without ``--watermark``."""
    from gpt2guard.cli.params import flag

    if ctx.params.get("watermark"):
        return
    stray = [n for n in names if given(ctx, n)]
    if stray:
        raise click.UsageError(f"{flag(ctx, stray[0])} goes with --watermark KEYFILE", ctx)


@click.group("watermark")
def watermark():
    """Key files for Kirchenbauer et al.'s green-list watermark.

    Generate watermarked text with `gpt2guard generate --watermark KEY`, test text for it
    with `gpt2guard score FILES --watermark KEY` (docs/watermark.md).
    """


@watermark.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Key file to write (mode 0600).")
@click.option("--family", default="nano", show_default=True,
              help="The family whose tokenizer the key is for (text of another tokenizer is refused).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Derive the key from this seed: reproducible, hence NOT secret (tests and examples only). "
                   "Default: the operating system's randomness.")
@click.option("--force", is_flag=True, help="Replace an existing key file (text marked with the old key can then "
                                            "no longer be detected with it).")
@click.option("--json", "as_json", is_flag=True, help="Print the key's public description as JSON.")
def keygen(out, family, seed, force, as_json):
    """Write a new secret watermark key to --out.

    The file holds 256 random bits, the family and its tokenizer's identity; keep it
    secret: whoever holds it can detect the watermark, and forge it. Records and reports
    name the key only by its digest. An existing file is never replaced without --force.

    Example: gpt2guard watermark keygen --out keys/nano.key --family nano
    """
    from gpt2guard.watermark import keygen as make_key

    key = make_key(out, seed=seed, force=force, family=family)
    info = {"path": out, "family": key.family, "tokenizer": key.tokenizer, "vocab_size": key.vocab_size,
            "digest": key.digest, "seeded": seed is not None}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"key {key.digest[:12]} for the {key.family} tokenizer ({key.vocab_size} tokens) written to {out}"
               + (" (seeded: not secret)" if seed is not None else ""))


@watermark.command("info")
@click.argument("keyfile", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def info(keyfile, as_json):
    """Describe a key file without revealing the key: digest, family, tokenizer."""
    from gpt2guard.watermark import load_key

    key = load_key(keyfile)
    doc = {"path": keyfile, "digest": key.digest, "family": key.family, "tokenizer": key.tokenizer,
           "vocab_size": key.vocab_size}
    click.echo(json.dumps(doc, indent=2) if as_json else "\n".join(f"{k:<11} {v}" for k, v in doc.items()))


#: Watermark fields as CSV columns (``watermark_<field>``) beside a detector's verdicts.
CSV_FIELDS = ("n_tokens", "n_scored", "n_green", "green_fraction", "z", "p_value", "detected")


class WatermarkTest:
    """``score --watermark``: the key, its tokenizer and the test's settings, checked once."""

    def __init__(self, ctx: click.Context, keyfile, gamma, scheme, z, family, max_tokens, log):
        from gpt2guard.family import load_tokenizer
        from gpt2guard.watermark import load_key

        self.key = load_key(keyfile)
        self.family = family if given(ctx, "family") else self.key.family
        self.tokenizer = load_tokenizer(self.family)
        self.key.check_tokenizer(self.tokenizer)
        self.gamma, self.scheme, self.z, self.max_tokens, self.log = gamma, scheme, z, max_tokens, log
        self.fpr = None

    def score(self, docs) -> list[dict]:
        from gpt2guard.watermark import detect_texts

        scores = detect_texts(docs, self.key, self.tokenizer, gamma=self.gamma, scheme=self.scheme,
                              z_threshold=self.z, max_tokens=self.max_tokens)
        return [s.to_dict() for s in scores]

    def calibrate(self) -> dict:
        """The empirical false-positive rate on the builtin held-out human text, beside the
        theoretical one (logged; also in every row)."""
        from gpt2guard.watermark import empirical_fpr

        self.fpr = empirical_fpr(self.key, self.tokenizer, gamma=self.gamma, scheme=self.scheme,
                                 z_threshold=self.z)
        self.log(self.fpr_line())
        return self.fpr

    def describe(self) -> str:
        return (f"watermark {self.scheme}, gamma {self.gamma:g}, key {self.key.digest[:12]} ({self.family} "
                f"tokenizer); watermarked when z >= {self.z:g}")

    def fpr_line(self) -> str:
        f = self.fpr
        return (f"watermark false-positive rate at z >= {self.z:g}: theoretical {f['theoretical_fpr']:.2g}; "
                f"empirical {f['n_detected']}/{f['n_docs']} = {f['empirical_fpr']:.3g} on builtin held-out human "
                "documents")

    def annotate(self, row: dict) -> dict:
        return {**row, "theoretical_fpr": self.fpr["theoretical_fpr"], "empirical_fpr": self.fpr["empirical_fpr"],
                "empirical_n_human": self.fpr["n_docs"]}


def decision(row: dict) -> str:
    if not row["n_scored"]:
        return "abstain"
    return "watermarked" if row["detected"] else "unmarked"


def format_watermark(names, rows, fmt: str, test: WatermarkTest) -> str:
    """Watermark results per document as a table, a JSON list or CSV."""
    import csv
    import io

    from gpt2guard.cli.score import _csv_cell, _fmt

    out = [{"name": n, "decision": decision(r), **test.annotate(r)} for n, r in zip(names, rows)]
    if fmt == "json":
        return json.dumps(out, indent=2)
    if fmt == "csv":
        cols = ("name", "decision") + tuple(k for k in out[0] if k not in ("name", "decision")) if out else ("name",)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in out:
            w.writerow([_csv_cell(r.get(c)) for c in cols])
        return buf.getvalue().rstrip("\n")
    lines = [f"{'name':<32} {'watermark':<11} {'z':>7} {'p-value':>9} {'green':>6} {'scored':>6} {'tokens':>6}"]
    for r in out:
        name = r["name"] if len(r["name"]) <= 32 else "..." + r["name"][-29:]
        lines.append(f"{name:<32} {r['decision']:<11} {_fmt(r['z']):>7} {_fmt(r['p_value']):>9} "
                     f"{_fmt(r['green_fraction']):>6} {r['n_scored']:>6} {r['n_tokens']:>6}"
                     + (f" [{_fmt(r['flags'])}]" if r["flags"] else ""))
    lines += [test.describe(), test.fpr_line()]
    return "\n".join(lines)


#: ``score`` options that only set up a detector: refused with ``--watermark`` alone.
DETECTOR_ONLY = ("size", "reference_size", "threshold", "fpr", "min_tokens", "html_out", "direction", "suspect",
                 "labelled_dirs", "labelled_human", "labelled_machine", "labelled_split",
                 "engine", "ray_address", "ray_workers", "ray_gpus_per_worker")


def watermark_only(ctx: click.Context, test: WatermarkTest, files, fmt: str, skip_bad: bool, log) -> bool:
    """``score --watermark`` without ``--detector`` or ``--method``: test the documents for
    the watermark alone, print the results and return True; else return False (both run)."""
    from gpt2guard.cli.params import flag
    from gpt2guard.detector.inputs import batched, iter_documents

    if given(ctx, "detector") or given(ctx, "method"):
        return False
    stray = [n for n in DETECTOR_ONLY if given(ctx, n)]  # they would be silently unused
    if stray:
        raise click.UsageError(f"{flag(ctx, stray[0])} sets up a detector: with --watermark alone none runs "
                               "(add --method or --detector to run both)", ctx)
    test.calibrate()
    names_all, rows = [], []
    for names, docs in batched(iter_documents(files, skip_bad=skip_bad, log=log)):
        names_all += names
        rows += test.score(docs)
        del docs
    click.echo(format_watermark(names_all, rows, fmt, test))
    return True
