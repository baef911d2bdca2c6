"""``gpt2guard release``: plans, staged-release simulations, model cards and verification."""

from __future__ import annotations

import click

from gpt2guard.cli.options import PROGRESS, engine_options, make_engine
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
    three scenarios to compare (all at once, rushed, strict). The largest size is served
    through a watermarked API (no weights), gated on the watermark surviving simple attacks;
    every stage tracks (advisory) how the published detector survives them. Also writes the
    sign-off and misuse-report files the gates read into evidence/ next to PATH (marked
    simulated). The watermark's secret key goes to keys/ next to PATH when the first
    simulation runs (the plan says create = true; an existing key is always kept).

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
    scenario, declared attacks, watermark parameters and that every watermark key file the
    plan names is a key) and notes evidence files a gate will not find or cannot read.

    Example: gpt2guard release plan check release-plan.toml
    """
    from gpt2guard.release.plan import load_plan, scenarios, stage_dates

    from gpt2guard.release.plan import check_keys, evidence_notes, key_name, reference_label

    plan = load_plan(path)
    missing = []
    keys = check_keys(plan, missing)
    click.echo(f"plan {plan.name!r}: family {plan.family}, seed {plan.seed}, on hold: {plan.on_hold}")
    click.echo(f"before stage 1: quality reference {reference_label(plan)}; third parties' detection "
               f"AUROC {plan.prerelease.detector_auroc:g}")
    click.echo("gates:")
    for name, g in plan.gates.items():
        threshold = "" if g.threshold is None else f" threshold {g.threshold:g}"
        attacks = f" attacks {', '.join(g.attack_keys())}" if g.attacks else ""
        click.echo(f"  {name:<20} {g.kind}{threshold}{attacks}{'' if g.required else ' (advisory)'}")
    for name, variant in scenarios(plan):
        changed = {g: v.threshold for g, v in variant.gates.items() if v.threshold != plan.gates[g].threshold}
        click.echo(f"scenario {name}" + (f" (thresholds {changed})" if changed else "") + ":")
        for st, date in zip(variant.stages, stage_dates(variant)):
            click.echo(f"  {date}  {st.name:<8} {'+'.join(st.sizes):<22} {st.tier:<9} gates: {', '.join(st.gates) or '-'}")
            if st.watermark is not None:
                w = st.watermark
                click.echo(f"  {'':<10}  watermark {w.scheme} gamma {w.gamma:g} delta {w.delta:g} "
                           f"z >= {w.z_threshold:g}, key {w.key}")
    for f, digest in keys.items():
        click.echo(f"watermark key {f}: sha256 {digest[:16]}")
    for path in missing:
        click.echo(f"watermark key {key_name(plan, path)}: not made yet; the first `release simulate` makes it "
                   "(create = true)")
    for note in evidence_notes(plan):
        click.echo(f"note: {note}")
    click.echo("valid")


@release.command("simulate")
@click.argument("plan", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory (resumed if it exists).")
@click.option("--scenario", "only", multiple=True, help="Run only this scenario (repeatable; default all).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision rows as JSON.")
@engine_options
@PROGRESS
def simulate_cmd(plan, out, only, as_json, engine, ray_address, ray_workers, ray_gpus_per_worker, progress):
    """Simulate the staged release PLAN: per stage generate samples, measure what is public
    after the stage against what was public before it (the detector publishable with the
    stage, the detectors third parties already hold, the quality step over the most capable
    public model), evaluate the gates, decide release or hold, and write the stage's
    evidence, report, model card and published files with a manifest.

    Every decision goes to a hash-chained decisions.jsonl. Run the same command again to
    resume a killed simulation from its last finished stage. Ends with the decision table
    of every scenario and where the summary, cards and reports are.

    With --engine ray each stage's generation and scoring run on Ray Data actors (a local
    Ray, or the cluster at --ray-address), with the same samples and statistics.

    Example: gpt2guard release simulate release-plan.toml --out runs/nano
    """
    import json
    from pathlib import Path

    from gpt2guard.release.simulate import simulate
    from gpt2guard.release.summary import format_table, scenario_table

    engine = make_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    result = simulate(plan, out, only=list(only) or None, progress=progress, log=lambda m: click.echo(m, err=True),
                      engine=engine)
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
@click.option("--key", "public_key", type=click.Path(dir_okay=False),
              help="Public key (PEM): also check DIRECTORY's signature; a missing signature is a finding.")
@click.option("--signature", type=click.Path(dir_okay=False),
              help="The signature bundle [default: DIRECTORY/model.sig].")
def verify_cmd(directory, public_key, signature):
    """Check DIRECTORY against what it must contain; print one line per finding, exit 1 on any.

    DIRECTORY is a published stage directory or a whole simulation run. Verification never
    passes on absence: the root MANIFEST.json must exist and list every file (dotfiles,
    *.tmp and nested manifests included), every nested manifest must match, and a run must
    have run.json, its summary and per scenario an intact decision log with one decision per
    stage whose recorded digests match the files. An unfinished run is a finding. Prints
    each decision log's chain head, to compare with a published value.

    With --key, the signature made by `release sign` must also verify with the public key.

    Example: gpt2guard release verify runs/nano --key keys/public.pem
    """
    from pathlib import Path

    from gpt2guard.release.manifest import SIGNATURE, chain_heads, verify_tree

    results = verify_tree(directory)
    bad = [line for r in results for line in r.lines()]
    if public_key:
        from gpt2guard.release.sign import verify_signature

        bad += verify_signature(directory, public_key, signature=signature)
    for line in bad:
        click.echo(line)
    if not public_key and (Path(directory) / SIGNATURE).is_file():
        click.echo(f"note: {Path(directory) / SIGNATURE} not checked; pass --key PUBLIC.pem")
    heads = [f"chain head {name}: {head} ({n} entries)" for name, (head, n) in chain_heads(directory).items()]
    if bad:
        for line in heads:
            click.echo(line)
        click.echo(f"FAILED: {len(bad)} finding(s) in {directory}", err=True)
        raise SystemExit(1)
    n_files = sum(r.checked for r in results)
    n_manifests = sum(1 for r in results if r.checked)
    signed = f"; signature verifies with {public_key}" if public_key else ""
    click.echo(f"ok: {n_files} files in {n_manifests} manifests match; decision logs intact and complete{signed}")
    for line in heads:
        click.echo(line)


@release.command("keygen")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for private.pem and public.pem.")
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
def keygen_cmd(out, force):
    """Write a new signing key pair: OUT/private.pem (mode 0600, keep it secret) and
    OUT/public.pem (hand it to whoever checks what you publish).

    Example: gpt2guard release keygen --out keys
    """
    from gpt2guard.release.sign import generate_keys

    for p in generate_keys(out, force=force):
        click.echo(str(p))


@release.command("sign")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--key", "private_key", required=True, type=click.Path(dir_okay=False),
              help="Private key (PEM), from `release keygen`.")
@click.option("--signature", type=click.Path(dir_okay=False),
              help="Where to write the bundle [default: DIRECTORY/model.sig].")
def sign_cmd(directory, private_key, signature):
    """Sign every file under DIRECTORY (a published stage directory or a whole run) with
    OpenSSF model signing: a Sigstore bundle over the files' SHA-256 digests, made offline
    with the local key. DIRECTORY must verify first.

    Needs the sign extra: pip install 'gpt2guard[sign]'.

    Example: gpt2guard release sign runs/nano/scenarios/staged/stages/01-small/release --key keys/private.pem
    """
    from gpt2guard.release.sign import sign_dir

    path = sign_dir(directory, private_key, signature=signature)
    click.echo(f"signed: {path}")
    click.echo(f"check:  gpt2guard release verify {directory} --key PUBLIC.pem")


release.add_command(card)
