"""``gpt2guard family``: list, inspect, build and register model families."""

from __future__ import annotations

import json

import click

from gpt2guard.cli.params import SEED
from gpt2guard.cli.options import PROGRESS


@click.group()
def family():
    """Model families: the real GPT-2 sizes, the builtin nano family, your own families
    (a family file, see `gpt2guard family add`), or a single model."""


def _cell(v, fmt: str = "") -> str:
    return "-" if v is None else format(v, fmt)


@family.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json):
    """List families (builtin, then those registered with `family add` or named by
    GPT2GUARD_FAMILIES), their sizes, parameter counts and whether each size is available
    locally (a registered family whose file no longer checks out is listed with why)."""
    from gpt2guard.family.info import family_rows

    rows = family_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    wf = max([7] + [len(r["family"]) for r in rows])
    ws = max([7] + [len(r["size"] or "") for r in rows])
    click.echo(f"{'family':<{wf}} {'size':<{ws}} {'layers':>6} {'width':>6} {'params':>14}  available")
    for r in rows:
        if r.get("error"):
            click.echo(f"{r['family']:<{wf}} {'-':<{ws}} {'-':>6} {'-':>6} {'-':>14}  error: {r['error']}")
            continue
        click.echo(f"{r['family']:<{wf}} {r['size']:<{ws}} {_cell(r['n_layer']):>6} {_cell(r['n_embd']):>6} "
                   f"{_cell(r['params'], ','):>14}  {r['available']}")


@family.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace a registered family of the same name.")
def add_cmd(file, force):
    """Check family file FILE and register it under its name, for every command's --family.

    FILE (TOML, YAML or JSON) names the family and its sizes, smallest first, each a
    Hugging Face id (hub = "owner/name") or a local directory (path = "dir", relative to
    FILE). Every size on this machine must have the same tokenizer (vocabulary and merges);
    a local size not on disk, or sizes that tokenize differently, are refused. Any command
    also takes FILE itself as --family, unregistered. See docs/detector.md and README.

    Example: gpt2guard family add pythia.toml; gpt2guard family info pythia
    """
    from gpt2guard.family.userfile import add_family, describe_identity

    spec, target, checked = add_family(file, force=force)
    click.echo(f"{spec.name}: {len(spec.sizes)} size(s) ({', '.join(spec.size_names)}); "
               f"{describe_identity(checked)}; registered in {target}")


@family.command("remove")
@click.argument("name")
def remove_cmd(name):
    """Unregister user family NAME (its models and the original file are left alone)."""
    from gpt2guard.family.userfile import remove_family

    click.echo(f"removed {remove_family(name)}")


@family.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_cmd(name, as_json):
    """Show what is known of family NAME: sizes, where each is found, and for a builtin
    family its build manifest (losses, tokens, corpus hash, seed, versions)."""
    from gpt2guard.family.info import family_info

    info = family_info(name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['name']} ({info['kind']}): {info['description']}")
    for s in info["sizes"]:
        loss = f"  val loss {s['val_loss']:.3f}" if s.get("val_loss") is not None else ""
        click.echo(f"  {s['size']:<7} {_cell(s['params'], ','):>14} params  {s['available']}{loss}")
    build = info.get("build")
    if build:
        c = build["corpus"]
        click.echo(f"corpus: {c['documents']} documents, {c['train_tokens']:,} train / {c['valid_tokens']:,} valid "
                   f"tokens, sha256 {c['hash'][:16]}")
        click.echo(f"seed {build['seed']}, built with torch {build['versions']['torch']}, "
                   f"transformers {build['versions']['transformers']}"
                   + (f", {build['build_seconds']}s" if build.get("build_seconds") else ", incomplete"))


@family.command("build")
@click.argument("name", default="nano")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seeds the corpus split, initialisation and batches.")
@click.option("--force", is_flag=True, help="Discard an existing build and start over.")
@PROGRESS
def build_cmd(name, seed, force, progress):
    """Train builtin family NAME (nano, or the micro test preset) and cache it.

    A finished build is reused; an interrupted one resumes at its first unfinished size.
    """
    from gpt2guard.family.build import build_family, read_manifest

    root = build_family(name, seed=seed, force=force, progress=progress, log=lambda m: click.echo(m, err=True))
    manifest = read_manifest(name)
    click.echo(f"{name}: {root}")
    for size, s in manifest["sizes"].items():
        click.echo(f"  {size:<7} {s['params']:>10,} params  val loss {s['val_loss']:.3f}  "
                   f"train loss {s['train_loss']:.3f}  {s['train_tokens']:,} tokens  {s['seconds']:.0f}s")


@family.command("path")
@click.argument("name")
@click.argument("size", required=False)
def path_cmd(name, size):
    """Print the local directory of SIZE (default: the smallest) of family NAME.

    Looks in --weights-dir, then the Hugging Face cache, then the hub unless HF_HUB_OFFLINE
    is set; exits non-zero with the ways to provide a size that cannot be found.
    """
    from gpt2guard.family import get_family, resolve_size

    spec = get_family(name)
    click.echo(resolve_size(spec, size or spec.sizes[0].name))
