"""``gpt2guard generate``: synthetic text at every model size, written as dataset sets."""

from __future__ import annotations

import json

import click

from gpt2guard.cli.params import DEVICE, POSITIVE, SEED
from gpt2guard.cli.options import PROGRESS, engine_options, make_engine
from gpt2guard.cli.watermark import generate_options as watermark_options


@click.command("generate")
@click.option("--family", default="nano", show_default=True, help="nano, gpt2, micro, a model directory or hub id.")
@click.option("--sizes", default="all", show_default=True, help="'all' or comma-separated sizes (small,medium,...).")
@click.option("--sampling", default="pure,top-k=40", show_default=True,
              help="Comma-separated methods: pure, top-k=K, nucleus=P, nucleus=LO-HI (p drawn per record, "
                   "OpenAI drew 0.8-1.0), nucleus-openai=P (the original GPT-2 sampler's rule); "
                   "append :temperature=T to any.")
@click.option("--n", "n", type=POSITIVE, default=100, show_default=True, help="Documents per size and sampling method.")
@click.option("--length", type=POSITIVE, default=200, show_default=True, help="Maximum new tokens per document.")
@click.option("--prompts", type=click.Path(dir_okay=False),
              help="Prompts set file from `gpt2guard datasets prompts` (conditional generation); continuation "
                   "lengths follow the paired human continuations.")
@click.option("--no-match-length", is_flag=True, help="With --prompts, use --length instead of the human lengths.")
@click.option("--split", default="train", show_default=True, help="Split name of the written sets.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Job seed; each record's own seed derives from it, the set, the split and the record's index.")
@click.option("--continue-past-eos", is_flag=True, help="Do not stop at <|endoftext|>; fill --length.")
@click.option("--logprobs", is_flag=True, help="Store each generated token's log-probability under the model.")
@click.option("--batch-size", type=POSITIVE, default=8, show_default=True, help="Documents per forward pass.")
@click.option("--shard-size", type=POSITIVE, help="Records per shard (default: one file per split).")
@click.option("--device", type=DEVICE, help="cpu, cuda, cuda:N or mps (default: cuda when present).")
@click.option("--linear", type=click.Choice(["auto", "onednn", "aten"]), default="auto", show_default=True,
              help="Linear-layer kernels: oneDNN's float32 (CPU, about 2x faster) or torch's default; recorded "
                   "per record, and a resumed set keeps its own.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@watermark_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@engine_options
@PROGRESS
def generate(family, sizes, sampling, n, length, prompts, no_match_length, split, seed, continue_past_eos, logprobs,
             batch_size, shard_size, device, linear, out, watermark, watermark_gamma, watermark_delta,
             watermark_scheme, as_json, engine, ray_address, ray_workers, ray_gpus_per_worker, progress):
    """Generate N documents per size and sampling method into dataset sets.

    Writes <family>-<size>[-<method>].<split>.jsonl (for the real GPT-2 family, OpenAI's
    names: small-117M, small-117M-k40, ...) with a manifest and a dataset card. Every
    record carries its provenance and regenerates from it. Run the same command again to
    resume a killed run: finished records are kept, none is written twice; a run with
    other settings (seed, length, sampling, flags, watermark) on the same --out is refused.

    With --watermark KEYFILE, Kirchenbauer et al.'s green-list watermark is applied inside
    the sampling loop (docs/watermark.md); `gpt2guard score --watermark KEYFILE` detects it.

    With --engine ray the records are made on Ray Data actors (a local Ray, or the cluster
    at --ray-address) and written here in record order: the same records as a local run on
    the same kind of device, resumed the same way.

    Example: gpt2guard generate --family nano --sizes all --sampling pure,top-k=40,nucleus=0.8-1.0
    --n 1000 --length 200 --seed 0 --out data/gen
    """
    from gpt2guard.cli.watermark import refuse_stray
    from gpt2guard.generator.run import GenerationJob, run_generation

    if no_match_length and not prompts:
        raise click.UsageError("--no-match-length goes with --prompts (without prompts --length is always used)")
    refuse_stray(click.get_current_context(), ["watermark_gamma", "watermark_delta", "watermark_scheme"])
    marker = None
    if watermark:
        from gpt2guard.watermark import WatermarkConfig

        marker = WatermarkConfig(watermark, watermark_gamma, watermark_delta, watermark_scheme)

    job = GenerationJob(out=out, family=family, sizes=sizes, sampling=sampling, n=n, length=length, prompts=prompts,
                        match_length=not no_match_length, split=split, seed=seed,
                        stop_at_eos=not continue_past_eos, logprobs=logprobs, batch_size=batch_size,
                        shard_size=shard_size, device=device, linear=linear, watermark=marker)
    engine = make_engine(engine, ray_address, ray_workers, ray_gpus_per_worker)
    summary = run_generation(job, progress=progress, log=lambda m: click.echo(m, err=True), engine=engine)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{'set':<28} {'records':>7} {'new':>5} {'tokens':>8} {'tok/s':>8} {'flagged':>7}")
    for s in summary:
        click.echo(f"{s['set']:<28} {s['records']:>7} {s['written']:>5} {s['tokens']:>8} {s['tokens_per_s']:>8} "
                   f"{s['flagged']:>7}")
    click.echo(f"sets and cards in {out}")
