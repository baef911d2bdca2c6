"""``gpt2guard release card``: build, check and compare model cards of a staged release."""

from __future__ import annotations

import click


@click.group()
def card():
    """Model cards (Markdown README.md with Hugging Face metadata, HTML, plots) from stage evaluations."""


@card.command("build")
@click.option("--evaluation", "evaluation_file", type=click.Path(dir_okay=False),
              help="One stage's evaluation.json.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False), help="A finished simulation run directory.")
@click.option("--size", help="The size whose card to build (with --run: required unless --family; with "
                             "--evaluation: one of the stage's sizes [default: every size]).")
@click.option("--family", "family_card", is_flag=True, help="With --run: one card for the family over all stages.")
@click.option("--scenario", help="With --run: the scenario [default: the first in run.json, else the only one].")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory to write README.md, model-card.html and plots/ into (one <size>/ directory each "
                   "when an evaluation's stage has several sizes and no --size is given).")
def build_cmd(evaluation_file, run_dir, size, family_card, scenario, out_dir):
    """Build a model card from an evaluation, or from a run for one size or the whole family.

    A size's card holds only that size's parameters, digests and sample sets, also when its
    stage measured several sizes; a held size's card says NOT RELEASED. Prints the paths
    written.

    Example: gpt2guard release card build --run runs/staged --size medium --out cards/medium
    """
    from gpt2guard.release.card import write_card, write_family_card, write_stage_cards
    from gpt2guard.release.card_io import evaluation_for_size, load_evaluation, stage_evaluations

    if bool(evaluation_file) == bool(run_dir):
        raise click.UsageError("give either --evaluation FILE or --run DIR")
    if evaluation_file and (family_card or scenario):
        raise click.UsageError("--family and --scenario go with --run, not --evaluation")
    if run_dir and bool(size) == family_card:
        raise click.UsageError("with --run, give either --size SIZE or --family")
    if evaluation_file:
        evaluation = load_evaluation(evaluation_file)
        if size:
            written = write_card(evaluation, out_dir, size=size)
        else:
            written = {f"{z}/{k}" if len(cards) > 1 else k: p
                       for cards in [write_stage_cards(evaluation, out_dir)] for z, files in cards.items()
                       for k, p in files.items()}
    elif family_card:
        written = write_family_card(stage_evaluations(run_dir, scenario), out_dir)
    else:
        written = write_card(evaluation_for_size(run_dir, size, scenario), out_dir)
    for path in written.values():
        click.echo(str(path))


def _read_card(path: str) -> str:
    from pathlib import Path

    from gpt2guard.errors import GuardError

    p = Path(path)
    if not p.is_file():
        raise GuardError(f"card not found: {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise GuardError(f"{p}: not UTF-8 text") from None


@card.command("check")
@click.argument("cards", nargs=-1, required=True, type=click.Path(dir_okay=False))
def check_cmd(cards):
    """Check that model cards are complete: front matter, model-index, every section filled.

    Prints each card's problems (or "complete"); exits 1 if any card has a problem.

    Example: gpt2guard release card check cards/*/README.md
    """
    from gpt2guard.release.card_check import check_card

    failed = False
    for path in cards:
        problems = check_card(_read_card(path))
        failed = failed or bool(problems)
        click.echo(f"{path}: " + (f"{len(problems)} problem(s)" if problems else "complete"))
        for problem in problems:
            click.echo(f"  - {problem}")
    if failed:
        click.get_current_context().exit(1)


@card.command("diff")
@click.argument("card_a", type=click.Path(dir_okay=False))
@click.argument("card_b", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def diff_cmd(card_a, card_b, as_json):
    """Show what changed between two model cards: metrics with deltas, metadata, and per-section diffs.

    Example: gpt2guard release card diff cards/small/README.md cards/medium/README.md
    """
    import json

    from gpt2guard.release.card_check import diff_cards, format_diff

    d = diff_cards(_read_card(card_a), _read_card(card_b))
    click.echo(json.dumps(d, indent=2) if as_json else format_diff(d), nl=as_json)
