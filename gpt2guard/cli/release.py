"""``gpt2guard release``: plans, staged-release simulations, model cards and verification."""

from __future__ import annotations

import click

from gpt2guard.cli.release_card import card


@click.group()
def release():
    """Staged, size-by-size release: plans, gate-backed simulations, model cards, manifests."""


@release.group("plan")
def plan_group():
    """Write and check release plans (TOML or YAML)."""


@plan_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False), default="release-plan.toml")
@click.option("--family", default="nano", show_default=True, help="nano, gpt2, micro, a model directory or hub id.")
@click.option("--force", is_flag=True, help="Overwrite an existing plan and its evidence files.")
def init_cmd(path, family, force):
    """Write the default plan, modelled on GPT-2's 2019 staged release, to PATH.

    Smallest size first, then each larger size after GPT-2's own intervals, behind
    detectability, transfer, quality-gain, waiting-period, sign-off and misuse gates, with
    three scenarios to compare (all at once, rushed, strict). Also writes the sign-off and
    misuse-report files the gates read into evidence/ next to PATH (marked simulated).

    Example: gpt2guard release plan init release-plan.toml --family nano
    """
    from gpt2guard.release.defaults import init_plan

    for p in init_plan(path, family, force):
        click.echo(str(p))


@plan_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check_cmd(path):
    """Validate a plan and show its stages, dates, gates and scenarios.

    Checks everything `release simulate` checks before it starts (keys, types, ranges, safe
    names, dates in order, sizes, sampling, the context window, the tier rule in every
    scenario) and notes evidence files a gate will not find or cannot read.

    Example: gpt2guard release plan check release-plan.toml
    """
    from gpt2guard.release.plan import load_plan, scenarios, stage_dates

    from gpt2guard.release.plan import evidence_notes, reference_label

    plan = load_plan(path)
    click.echo(f"plan {plan.name!r}: family {plan.family}, seed {plan.seed}, on hold: {plan.on_hold}")
    click.echo(f"before stage 1: quality reference {reference_label(plan)}; third parties' detection "
               f"AUROC {plan.prerelease.detector_auroc:g}")
    click.echo("gates:")
    for name, g in plan.gates.items():
        threshold = "" if g.threshold is None else f" threshold {g.threshold:g}"
        click.echo(f"  {name:<20} {g.kind}{threshold}{'' if g.required else ' (advisory)'}")
    for name, variant in scenarios(plan):
        changed = {g: v.threshold for g, v in variant.gates.items() if v.threshold != plan.gates[g].threshold}
        click.echo(f"scenario {name}" + (f" (thresholds {changed})" if changed else "") + ":")
        for st, date in zip(variant.stages, stage_dates(variant)):
            click.echo(f"  {date}  {st.name:<8} {'+'.join(st.sizes):<22} {st.tier:<9} gates: {', '.join(st.gates) or '-'}")
    for note in evidence_notes(plan):
        click.echo(f"note: {note}")
    click.echo("valid")


@release.command("simulate")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory (resumed if it exists).")
@click.option("--scenario", "only", multiple=True, help="Run only this scenario (repeatable; default all).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision rows as JSON.")
def simulate_cmd(plan, out, only, as_json):
    """Simulate the staged release PLAN: per stage generate samples, measure what is public
    after the stage against what was public before it (the detector publishable with the
    stage, the detectors third parties already hold, the quality step over the most capable
    public model), evaluate the gates, decide release or hold, and write the stage's
    evidence, report, model card and published files with a manifest.

    Every decision goes to a hash-chained decisions.jsonl. Run the same command again to
    resume a killed simulation from its last finished stage. Ends with the decision table
    of every scenario and where the summary, cards and reports are.

    Example: gpt2guard release simulate release-plan.toml --out runs/nano
    """
    import json
    from pathlib import Path

    from gpt2guard.release.simulate import simulate
    from gpt2guard.release.summary import format_table, scenario_table

    result = simulate(plan, out, only=list(only) or None, progress=True, log=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.rows, indent=2))
        return
    click.echo(format_table(result.rows))
    click.echo("")
    click.echo(scenario_table(result.rows))
    root = Path(out)
    click.echo(f"\nsummary:  {result.summary['md']} and {result.summary['png']}")
    for name, sdir in result.scenario_dirs.items():
        click.echo(f"{name}: stage reports and model cards in {sdir}/stages/*/ (report.md, card/README.md, "
                   f"card/model-card.html); family card {sdir}/family-card/README.md; log {sdir}/decisions.jsonl")
    click.echo(f"verify:   gpt2guard release verify {root}")


@release.command("verify")
@click.argument("directory", type=click.Path(file_okay=False))
def verify_cmd(directory):
    """Check DIRECTORY against its manifests: report missing, altered and unlisted files, and
    broken decision-log chains; exit 1 on any finding.

    DIRECTORY is a published stage directory or a whole simulation run (every MANIFEST.json
    and decisions.jsonl under it is checked).

    Example: gpt2guard release verify runs/nano
    """
    from gpt2guard.release.manifest import verify_tree

    results = verify_tree(directory)
    bad = [line for r in results for line in r.lines()]
    for line in bad:
        click.echo(line)
    n_files = sum(r.checked for r in results)
    n_manifests = sum(1 for r in results if r.checked or r.missing or r.altered or r.unlisted)
    if bad:
        click.echo(f"FAILED: {len(bad)} finding(s) in {directory}", err=True)
        raise SystemExit(1)
    click.echo(f"ok: {n_files} files in {n_manifests} manifests match; decision logs intact")


release.add_command(card)
