"""``gpt2guard serve``: the detection service (HTTP API and page) on one machine."""

from __future__ import annotations

import click

from gpt2guard.cli.direction import direction_option_group, direction_options, refuse_with_detector
from gpt2guard.cli.params import COUNT, METHOD, RATE, SEED, THRESHOLD, refuse_together


@click.command("serve")
@click.option("--detector", "detector", type=click.Path(file_okay=False, exists=True),
              help="A saved detector directory (from `gpt2guard detector train`).")
@click.option("--method", type=METHOD, default="fast-detectgpt", show_default=True,
              help="Zero-shot method when no --detector is given.")
@click.option("--family", default="nano", show_default=True,
              help="Scorer family for --method (and the per-token view of a TF-IDF detector).")
@click.option("--size", help="Scorer size (default: the family's smallest).")
@click.option("--reference-size", help="Reference size for methods that need one (binoculars, fast-detectgpt-ref).")
@click.option("--threshold", type=THRESHOLD, help="Machine when score > THRESHOLD (overrides the calibrated one).")
@click.option("--fpr", type=RATE, default=0.05, show_default=True,
              help="For --method without --threshold: false-positive rate calibrated once at start-up on builtin "
                   "held-out human text, as `gpt2guard score` does.")
@direction_option_group
@click.option("--min-tokens", type=COUNT, help="Abstain on documents with fewer tokens (default: the detector's, 16).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Bootstrap seed of the calibration interval.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (0.0.0.0 serves every network this machine is on: set a --token).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0: any free port, printed at start).")
@click.option("--token", envvar="GPT2GUARD_TOKEN", show_envvar=True,
              help="Require 'Authorization: Bearer TOKEN' on every route but /healthz (the page asks for it "
                   "as a password).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=200_000, show_default=True,
              help="Largest document in tokens (longer ones get 413 naming the limit); long documents within it "
                   "are scored in sliding windows.")
@click.option("--max-docs", type=click.IntRange(min=1), default=256, show_default=True,
              help="Most documents in one request (more: 413).")
@click.option("--max-body-mb", type=click.FloatRange(min=0.001), default=64.0, show_default=True,
              help="Largest request body in megabytes (more: 413).")
@click.option("--queue-size", type=click.IntRange(min=1), default=1024, show_default=True,
              help="Documents that may wait to be scored (more: 503 with Retry-After).")
@click.option("--timeout", type=click.FloatRange(min=0.001), default=60.0, show_default=True,
              help="Seconds a request may wait for its answer (more: 504).")
@click.option("--max-wait-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="When requests arrive together, wait this long for more to batch with them.")
@click.option("--batch-tokens", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Estimated tokens coalesced into one call of the scoring engine (default: one forward pass "
                   "of the engine, so no answer waits on a pass that is not its own).")
@click.option("--no-batching", is_flag=True, help="Score one request at a time (the benchmark's baseline).")
@click.option("--detail-tokens", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Tokens of each document shown in the per-token view (details=true).")
def serve(detector, method, family, size, reference_size, threshold, fpr, min_tokens, seed, host, port, token,
          max_tokens, max_docs, max_body_mb, queue_size, timeout, max_wait_ms, batch_tokens, no_batching,
          detail_tokens):
    """Serve detection over HTTP: a JSON API under /v1, a page at /, API docs at /docs.

    Loads the models and sets the threshold once (a zero-shot method is calibrated on builtin
    held-out human text exactly as `gpt2guard score` does), then serves until SIGTERM or
    Ctrl-C, answering the requests in flight before it exits. Concurrent requests are batched
    into the scoring engine's length-sorted forward passes. Scored texts are never written
    to disk. Binds to 127.0.0.1 unless told otherwise.

    Examples: gpt2guard serve --method fast-detectgpt --family nano --size small;
    gpt2guard serve --detector det/ --port 8080 --token "$(openssl rand -hex 16)";
    curl -s localhost:8000/v1/score -H 'Content-Type: application/json' -d '{"texts": ["Some text."]}'
    """
    ctx = click.get_current_context()
    refuse_together(ctx, "detector", ["method", "reference_size", "fpr"], "a saved detector has its own scorer and "
                    "threshold (set it with --threshold or `gpt2guard detector calibrate`)")
    refuse_together(ctx, "threshold", ["fpr"], "--fpr calibrates a threshold; --threshold sets one")
    refuse_with_detector(ctx)
    if token is not None and not token.strip():
        raise click.BadParameter("the token is empty", param_hint="--token")
    log = lambda m: click.echo(m, err=True)  # noqa: E731

    from gpt2guard.serve import load_service, require_extra, run_server
    from gpt2guard.serve.server import bind

    require_extra()
    sock = bind(host, port)  # a taken port fails now, not after the models load
    try:
        service = load_service(detector=detector, method=method, family=family, size=size,
                               reference_size=reference_size, threshold=threshold, fpr=fpr, min_tokens=min_tokens,
                               seed=seed, max_tokens=max_tokens, max_docs=max_docs, detail_tokens=detail_tokens,
                               log=log, **direction_options(ctx))
    except BaseException:
        sock.close()
        raise
    run_server(service, sock=sock, token=token or None, batching=not no_batching, max_wait=max_wait_ms / 1000.0,
               max_batch_tokens=batch_tokens, queue_docs=queue_size, timeout=timeout,
               max_body_bytes=int(max_body_mb * (1 << 20)), log=log)
