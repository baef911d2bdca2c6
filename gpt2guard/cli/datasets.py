"""``gpt2guard datasets``: build, import, split, match, prompt, deduplicate, inspect and
validate sets in the gpt-2-output-dataset format."""

from __future__ import annotations

import json

import click

from gpt2guard.cli.params import ATTACK_SPECS, POSITIVE, SEED, FiniteFloat, refuse_together

FAMILY = click.option("--family", default="nano", show_default=True,
                      help="Model family whose tokenizer counts token lengths (nano, micro, gpt2 or a model dir).")
SHARD = click.option("--shard-size", type=click.IntRange(min=1), default=None,
                     help="Write <set>.<split>.NNNNN.jsonl shards of this many records (default: one file).")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _show(result: dict, as_json: bool, lines) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        for line in lines(result):
            click.echo(line)


def _counts(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "none"


@click.group()
def datasets():
    """Human corpora and generated sets in OpenAI's gpt-2-output-dataset format.

    A set is <set>.<split>.jsonl (or shards <set>.<split>.NNNNN.jsonl) plus
    <set>.<split>.manifest.json and a <set>.card.md dataset card, in one directory.
    """


@datasets.command("builtin")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--set", "set_name", default="builtin", show_default=True, help="Name of the set to write.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the corpus's source-to-split assignment.")
@click.option("--packages", default=None,
              help="Comma-separated packages whose docstrings join the stdlib's (default: numpy,sklearn,click,tqdm; "
                   "'' for none).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Use only the first N corpus documents.")
@FAMILY
@SHARD
@AS_JSON
def builtin_cmd(out, set_name, seed, packages, limit, family, shard_size, as_json):
    """Write the builtin human corpus as a set.

    Writes <set>.train/valid/test.jsonl in OUT, with manifests and a card. Every source module goes whole to one split. Run again after an interruption to resume.
    """
    from gpt2guard.datasets.importing import build_builtin

    pkgs = None if packages is None else tuple(p for p in packages.split(",") if p.strip())
    result = build_builtin(out, set_name, family=family, seed=seed, packages=pkgs, max_docs=limit,
                           shard_size=shard_size, progress=not as_json)
    _show(result, as_json, lambda r: [f"{r['set']} in {r['dir']}:"] + [
        f"  {s:<6} {v['records']:>6} records ({v['written']} written now)" for s, v in r["splits"].items()])


@datasets.command("import")
@click.argument("src", type=click.Path(exists=True))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--set", "set_name", default=None, help="Name of the set to write (default: --from-set).")
@click.option("--split", default=None, help="Split to write (default: --from-split, else 'all').")
@click.option("--format", "fmt", type=click.Choice(["auto", "jsonl", "openai", "txt"]), default="auto",
              show_default=True, help="auto: a file is JSONL, a directory is .txt files, or OpenAI files with "
                                      "--from-set.")
@click.option("--from-set", default=None, help="Set to read from an OpenAI-layout directory, e.g. small-117M-k40.")
@click.option("--from-split", default=None, help="Split to read from an OpenAI-layout directory (default: --split).")
@click.option("--text-field", default="text", show_default=True, help="JSON key holding the text.")
@click.option("--id-field", default="id", show_default=True,
              help="JSON key holding the id (a line without one gets its 0-based line index).")
@click.option("--source-field", default="source", show_default=True,
              help="JSON key naming the document's source, used for leak-free splits.")
@click.option("--label", type=click.Choice(["human", "machine"]), default=None, help="Label for unlabelled records.")
@click.option("--skip-bad", is_flag=True,
              help="Skip and count bad lines (not UTF-8, not JSON, no text) and duplicate ids instead of stopping.")
@click.option("--keep-lengths", is_flag=True, help="Keep lengths already present instead of counting them again.")
@click.option("--no-flags", is_flag=True, help="Do not flag degenerate text (empty, repetition).")
@FAMILY
@SHARD
@AS_JSON
def import_cmd(src, out, set_name, split, fmt, from_set, from_split, text_field, id_field, source_field, label,
               skip_bad, keep_lengths, no_flags, family, shard_size, as_json):
    """Import a JSONL file, .txt directory or OpenAI files.

    SRC is a JSONL file (plain or gzip), a directory of .txt files, or a directory of
    gpt-2-output-dataset files (with --from-set); the set goes to OUT. Lengths are counted with the --family tokenizer; a bad line stops the import with its
    file and line number unless --skip-bad. Run again after an interruption to resume;
    importing another source into the same set appends to it. Resuming with other
    settings (label, fields, --keep-lengths, --no-flags) is refused.
    """
    from gpt2guard.datasets.importing import import_set
    from gpt2guard.errors import GuardError

    set_name = set_name or from_set
    if not set_name:
        raise GuardError("name the set to write with --set (or --from-set for OpenAI files)")
    split = split or from_split or "all"
    result = import_set(src, out, set_name, split, family=family, fmt=fmt, source_set=from_set,
                        source_split=from_split, text_field=text_field, id_field=id_field,
                        source_field=source_field, label=label, on_error="skip" if skip_bad else "raise",
                        keep_lengths=keep_lengths, flags=not no_flags, shard_size=shard_size, progress=not as_json)

    def lines(r):
        read = r["read"]
        yield (f"{r['set']}.{r['split']} in {r['dir']}: {r['records']} records ({r['written']} written now, "
               f"{r['already_written']} already there)")
        yield f"  read {read['lines']} lines; skipped: {_counts(read['skipped'])}; flagged: {_counts(r['flags'])}"

    _show(result, as_json, lines)


@datasets.command("split")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--split", default="all", show_default=True, help="The split to divide.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output directory (default: DIRECTORY).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the source-group-to-split hash.")
@click.option("--fractions", default="0.8,0.1,0.1", show_default=True, help="Shares of train, valid, test.")
@SHARD
@AS_JSON
def split_cmd(directory, set_name, split, out, seed, fractions, shard_size, as_json):
    """Split a set into train/valid/test by source.

    No source group (a document, its prompt and all its continuations) straddles two
    splits; the same seed gives the same split. The three splits are written together or
    not at all: a refused or failed run leaves existing ones as they were.
    """
    from gpt2guard.datasets.splits import split_set

    result = split_set(directory, set_name, split, out, seed=seed, fractions=fractions.split(","),
                       shard_size=shard_size)
    _show(result, as_json, lambda r: [f"{r['set']} in {r['dir']} (seed {r['seed']}):"] + [
        f"  {s:<6} {r['records'][s]:>6} records, {r['groups'][s]} source groups" for s in r["records"]] + [
        f"  {r['without_source']} records had no source and are each their own group"])


@datasets.command("match")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--human", "human_set", required=True, help="The human set.")
@click.option("--machine", "machine_set", required=True, help="The machine set.")
@click.option("--split", default="test", show_default=True, help="The split of both sets to match.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory (not DIRECTORY).")
@click.option("--method", type=click.Choice(["select", "truncate"]), default="select", show_default=True,
              help="select: keep equal counts per length bin; truncate: pair by rank and cut the longer.")
@click.option("--bin-width", type=POSITIVE, default=16, show_default=True, help="Length bin width in tokens (select).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of which records a bin keeps.")
@FAMILY
@SHARD
@AS_JSON
def match_cmd(directory, human_set, machine_set, split, out, method, bin_width, seed, family, shard_size, as_json):
    """Match the token lengths of a human and a machine set.

    Writes copies of both sets to --out whose token-length distributions match.
    """
    from gpt2guard.datasets.lengths import match_lengths

    if method == "truncate":
        refuse_together(click.get_current_context(), "bin_width", ["method"], "length bins are for --method select")

    result = match_lengths(directory, human_set, machine_set, split, out, family=family, method=method,
                           bin_width=bin_width, seed=seed, shard_size=shard_size)

    def lines(r):
        for name in r["before"]:
            b, a = r["before"][name] or {}, r["after"][name] or {}
            yield (f"{name}: {b.get('n', 0)} -> {a.get('n', 0)} records, mean length {b.get('mean', 0):.0f} -> "
                   f"{a.get('mean', 0):.0f} tokens")
        yield f"KS distance {r['ks_before']:.3f} -> {r['ks_after']:.3f}"

    _show(result, as_json, lines)


@datasets.command("prompts")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--split", default="test", show_default=True, help="Held-out split to take documents from.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output directory (default: DIRECTORY).")
@click.option("--tokens", "n_tokens", default=32, show_default=True, type=click.IntRange(min=1),
              help="Prompt length in tokens.")
@click.option("--min-continuation", default=16, show_default=True, type=click.IntRange(min=1),
              help="Skip documents whose human continuation would be shorter (tokens).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many prompts.")
@click.option("--prompt-set", default=None, help="Name of the prompt set (default <set>-prompts).")
@click.option("--human-set", default=None, help="Name of the human continuation set (default <set>-continuations).")
@FAMILY
@SHARD
@AS_JSON
def prompts_cmd(directory, set_name, split, out, n_tokens, min_continuation, limit, prompt_set, human_set, family,
                shard_size, as_json):
    """Make prompts from held-out human documents.

    Each document is cut after --tokens tokens into a prompt and its paired human
    continuation, written as two sets whose records share the document's id.
    """
    from gpt2guard.datasets.prompts import prompts_set

    result = prompts_set(directory, set_name, split, out, n_tokens=n_tokens, family=family,
                         min_continuation=min_continuation, limit=limit, prompt_set=prompt_set,
                         human_set=human_set, shard_size=shard_size)
    _show(result, as_json, lambda r: [
        f"{r['pairs']} prompts in {r['prompt_set']}.{r['split']}, continuations in {r['human_set']}.{r['split']} "
        f"({r['dir']}); skipped documents: {_counts(r['skipped'])}"])


@datasets.command("dedup")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--split", required=True, help="The split to deduplicate.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory (not DIRECTORY).")
@click.option("--threshold", type=FiniteFloat(0.0, 1.0, low_open=True, what="a Jaccard similarity"), default=0.8,
              show_default=True, help="Shingle Jaccard similarity of near duplicates.")
@click.option("--exact-only", is_flag=True, help="Remove exact duplicates only.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the MinHash functions.")
@SHARD
@AS_JSON
def dedup_cmd(directory, set_name, split, out, threshold, exact_only, seed, shard_size, as_json):
    """Remove exact and near-duplicate texts.

    Copies the set to --out keeping the first occurrence of each text.
    """
    from gpt2guard.datasets.dedup import dedup_set

    refuse_together(click.get_current_context(), "exact_only", ["threshold"], "the threshold is for near duplicates")

    result = dedup_set(directory, set_name, split, out, near=not exact_only, threshold=threshold, seed=seed,
                       shard_size=shard_size)
    _show(result, as_json, lambda r: [
        f"{r['set']}.{r['split']} -> {r['dir']}: kept {r['kept']}, removed {r['exact']} exact and {r['near']} "
        "near duplicates"])


@datasets.command("attack")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--attack", "specs", type=ATTACK_SPECS, required=True,
              help="Attacks as name=rate, comma-separated: homoglyph, zero_width, whitespace, case, "
                   "article_deletion, number_swap, paragraph, spelling, misspelling; rate in [0, 1].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the attacks (one per record, from it).")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output directory (default: DIRECTORY).")
@click.option("--split", "splits", multiple=True, help="Only this split (repeatable; default all).")
@click.option("--family", default=None,
              help="Family whose tokenizer counts the attacked lengths (default: the input's, else nano).")
@SHARD
@AS_JSON
def attack_cmd(directory, set_name, specs, seed, out, splits, family, shard_size, as_json):
    """Write attacked copies of a set, one set per attack.

    --attack homoglyph=1.0,whitespace=0.2 writes <set>-homoglyph-1 and <set>-whitespace-0p2
    (dots become p): every record's text attacked at that rate (the fraction of the
    attack's candidate places changed), its length counted again, and the attack, rate and
    seed in its provenance. Each set appears whole or not at all; run again to resume a
    killed run; a rerun with the same arguments writes nothing.
    """
    from gpt2guard.attacks.sets import attack_set

    result = attack_set(directory, set_name, specs, out, seed=seed, splits=splits or None, family=family,
                        shard_size=shard_size)
    _show(result, as_json, lambda r: [f"{r['input']} attacked with seed {r['seed']} -> {r['dir']}:"] + [
        f"  {s['set']:<32} {s['attack']:<22} " + (s["status"] if s["status"] != "written" else ", ".join(
            f"{sp} {c['records']} records, {c['changed']} of {c['candidates']} places changed"
            for sp, c in s["splits"].items())) for s in r["sets"]])


@datasets.command("stats")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--split", "splits", multiple=True, help="Only this split (repeatable; default all).")
@AS_JSON
@click.pass_context
def stats_cmd(ctx, directory, set_name, splits, as_json):
    """Show statistics of a set.

    Counts, labels, token lengths, flags, per-source counts, skipped lines and split
    leakage. Exits 1 when a text is in more than one of train, valid and test (same text
    once whitespace runs are collapsed).
    """
    from gpt2guard.datasets.overlap import describe
    from gpt2guard.datasets.stats import set_stats

    result = set_stats(directory, set_name, list(splits) or None)

    def lines(r):
        yield f"{r['set']} in {r['dir']}"
        for split, st in r["splits"].items():
            ln = st["length"] or {}
            yield (f"  {split:<8} {st['records']:>7} records  labels: {_counts(st['labels'])}  tokens: mean "
                   f"{ln.get('mean', 0):.0f}, median {ln.get('median', 0):.0f}, max {ln.get('max', 0):.0f}")
            yield (f"           sources {st['sources']['distinct']}  flags: {_counts(st['flags'])}  "
                   f"skipped lines: {_counts(st['skipped'])}" + ("" if st["complete"] else "  (incomplete)"))
        yield f"  source groups in more than one of train, valid, test: {r['leakage']['shared_groups']}"
        yield f"  texts in more than one of train, valid, test: {r['overlap']['shared']}"

    _show(result, as_json, lines)
    if result["overlap"]["shared"]:
        click.echo(f"Error: {set_name} in {directory}: {describe(result['overlap'])}", err=True)
        ctx.exit(1)


@datasets.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--text-field", default="text", show_default=True, help="JSON key holding the text.")
@click.option("--family", default=None, help="Also check every length against this family's tokenizer.")
@AS_JSON
@click.pass_context
def validate_cmd(ctx, path, text_field, family, as_json):
    """Validate a JSONL file or a set's manifest.

    Checks every line against the record schema, and a manifest's shard counts and
    SHA-256 digests; with --family, that every length is the token count of its text.
    A train, valid or test split fails when a text of it is also in another of those
    splits of the same set. Exits 1 when a problem is found.
    """
    from gpt2guard.datasets.validate import validate

    result = validate(path, text_field=text_field, family=family)

    def lines(r):
        yield f"{r['path']}: {r['records']} records, {'ok' if r['ok'] else 'PROBLEMS: ' + _counts(r['errors'])}"
        for ex in r["examples"]:
            yield f"  {ex['where']}: {ex['problem']}: {ex['detail']}"

    _show(result, as_json, lines)
    if not result["ok"]:
        ctx.exit(1)


@datasets.command("card")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("set_name")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON file with the generation config to describe.")
@click.option("--motivation", default=None, help="Replace the Motivation paragraph.")
@click.option("--uses", default=None, help="Replace the Uses paragraph.")
def card_cmd(directory, set_name, config_path, motivation, uses):
    """Write the dataset card of a set.

    (Re)writes the datasheet-style <set>.card.md from the set's manifests and records.
    """
    from gpt2guard.datasets.card import write_card
    from gpt2guard.errors import GuardError

    config = None
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as f:
                config = json.load(f)
        except ValueError as exc:
            raise GuardError(f"{config_path} is not JSON ({exc})") from None
    click.echo(write_card(directory, set_name, config, motivation=motivation, uses=uses))


@datasets.command("list")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@AS_JSON
def list_cmd(directory, as_json):
    """List the sets and splits in DIRECTORY."""
    from gpt2guard.datasets.sets import list_sets

    result = list_sets(directory)
    _show(result, as_json, lambda r: [f"{s}: {', '.join(sp)}" for s, sp in r.items()] or ["no sets"])
