"""Options shared by several commands."""

from __future__ import annotations

import click

PROGRESS = click.option(
    "--progress/--no-progress", default=True, show_default=True,
    help="Progress bars on stderr while it is a terminal (never in a pipe or a log file); --no-progress: none.")


def engine_options(f):
    """``--engine local|ray`` and the Ray options; the command gets them as ``engine``,
    ``ray_address``, ``ray_workers`` and ``ray_gpus_per_worker`` and builds an
    :class:`~gpt2guard.engine.Engine` with :func:`make_engine`."""
    from gpt2guard.cli.params import COUNT_FLOAT

    options = [
        click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="Where the models run: this process, or Ray Data actors (needs gpt2guard[ray]); "
                          "results are the same."),
        click.option("--ray-address", metavar="ADDR",
                     help="Join the Ray cluster whose head is at ADDR (HOST:PORT, ray://HOST:10001 or auto); "
                          "default: start a local Ray for this job."),
        click.option("--ray-workers", type=click.IntRange(min=1), metavar="N",
                     help="Ray actors, each loading its model once [default: as many as the cluster holds]."),
        click.option("--ray-gpus-per-worker", type=COUNT_FLOAT, default=0.0, show_default=True, metavar="G",
                     help="GPUs per Ray actor (0: CPU actors); a cluster without them is refused before any work."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def make_engine(engine: str, ray_address, ray_workers, ray_gpus_per_worker):
    """The :class:`~gpt2guard.engine.Engine` of the options: a Ray option without ``--engine
    ray`` is a usage error, and ``--engine ray`` without Ray installed one line saying how
    to install it."""
    from gpt2guard.engine import Engine

    if engine != "ray":
        given = [name for name, v in (("--ray-address", ray_address), ("--ray-workers", ray_workers),
                                      ("--ray-gpus-per-worker", ray_gpus_per_worker)) if v]
        if given:
            raise click.UsageError(f"{given[0]} goes with --engine ray")
        return Engine()
    from gpt2guard.engine.ray_session import check_reachable, require_ray

    require_ray()
    if ray_address:
        check_reachable(ray_address)  # before any work: Ray itself retries an unreachable head for minutes
    return Engine("ray", address=ray_address, workers=ray_workers, gpus_per_worker=float(ray_gpus_per_worker or 0))


def engine_session(engine):
    """A context in which the command's heavy work runs on ``engine``: one Ray connection for
    the whole command (:func:`~gpt2guard.engine.ray_session.ray_session`), nothing locally."""
    import contextlib

    if engine.is_ray:
        from gpt2guard.engine.ray_session import ray_session

        return ray_session(engine)
    return contextlib.nullcontext()
