"""Where heavy work runs: in this process (``local``, today's loops) or on Ray Data actors.

An :class:`Engine` (configuration as data) names the engine and, for Ray, the cluster to
join, the number of actors and the GPUs of each. The work itself is never written twice:

- generation: :func:`~gpt2guard.generator.run.run_generation` plans a set's remaining
  records and their seeds in the driver, and either makes them here or streams them
  through :mod:`gpt2guard.engine.ray_generate`'s actors, which call the same record
  function; the driver writes them in record order through the same
  :class:`~gpt2guard.datasets.writer.SetWriter`, so output and resume are the local ones;
- scoring (``score``, the features of ``detector train|eval``, ``release simulate``):
  :func:`make_scorer` gives a :class:`~gpt2guard.detector.scoring.Scorer`, or a
  :class:`~gpt2guard.engine.ray_scoring.RayScorer` whose actors each hold a ``Scorer``.

Ray is an optional extra (``pip install 'gpt2guard[ray]'``) and is imported only when a
Ray engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt2guard.errors import GuardError

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class Engine:
    """Where heavy work runs.

    Parameters
    ----------
    kind : {"local", "ray"}
        ``local``: this process, on this machine's device. ``ray``: Ray Data actors.
    address : str, optional
        A running Ray cluster to join (``HOST:PORT`` of its head, ``ray://HOST:10001`` or
        ``auto``); None starts a private Ray on this machine for the job.
    workers : int, optional
        Actors, each loading its model once. Default: as many as the cluster holds (its GPUs
        divided by ``gpus_per_worker``; on CPUs, its CPUs divided by ``threads``).
    gpus_per_worker : float
        GPUs per actor (0: CPU actors). A cluster with fewer GPUs than the workers need
        is refused before any work.
    threads : int, optional
        Torch threads of each CPU actor. Default: this process's torch thread count, so a
        record made on an actor is the record the local engine makes here (the count is
        part of a CPU record's provenance).
    """

    kind: str = "local"
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    threads: int | None = None

    def __post_init__(self):
        if self.kind not in ENGINES:
            raise GuardError(f"unknown engine {self.kind!r}: use local or ray")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int)
                                         or self.workers < 1):
            raise GuardError(f"--ray-workers must be an integer >= 1, not {self.workers!r}")
        if isinstance(self.gpus_per_worker, bool) or not isinstance(self.gpus_per_worker, (int, float)) \
                or not 0 <= self.gpus_per_worker < float("inf"):
            raise GuardError(f"--ray-gpus-per-worker must be a number >= 0, not {self.gpus_per_worker!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise GuardError(f"engine threads must be an integer >= 1, not {self.threads!r}")
        if self.kind == "local" and (self.address or self.workers or self.gpus_per_worker):
            raise GuardError("--ray-address, --ray-workers and --ray-gpus-per-worker go with --engine ray")

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"


#: Today's engine: this process.
LOCAL = Engine()


def as_engine(engine) -> Engine:
    """``engine`` as an :class:`Engine` (None: :data:`LOCAL`; a string: that kind)."""
    if engine is None:
        return LOCAL
    if isinstance(engine, str):
        return Engine(engine)
    if not isinstance(engine, Engine):
        raise GuardError(f"engine must be an Engine, 'local' or 'ray', not {type(engine).__name__}")
    return engine


def make_scorer(scorer, reference=None, *, engine=None, **kwargs):
    """A :class:`~gpt2guard.detector.scoring.Scorer` of ``scorer`` (and ``reference``),
    running on ``engine``: the Scorer itself locally, a
    :class:`~gpt2guard.engine.ray_scoring.RayScorer` on Ray. ``kwargs`` are the Scorer's."""
    engine = as_engine(engine)
    if engine.is_ray:
        from gpt2guard.engine.ray_scoring import RayScorer

        return RayScorer(scorer, reference, engine=engine, **kwargs)
    from gpt2guard.detector.scoring import Scorer

    return Scorer(scorer, reference, **kwargs)
