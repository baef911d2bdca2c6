"""Ray for one job: import it (or say how to install it), join or start a cluster, check it
has what the job asks for, and keep Ray's own logs and bars out of the user's terminal.

:func:`ray_session` is re-entrant: the outermost use connects (and shuts down a Ray it
started); a use inside it, or in a process where Ray is already initialised (a notebook, a
test fixture), runs on the connection it finds.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from urllib.parse import urlsplit

from gpt2guard.errors import GuardError

#: The line a user without Ray gets.
INSTALL_LINE = "--engine ray needs Ray: pip install 'gpt2guard[ray]'"
#: Seconds to wait for a cluster's head to answer before giving up.
CONNECT_TIMEOUT_S = 5.0
#: Environment variables every actor gets from the driver: where models and caches live,
#: the thread policy, the hub's offline switch.
FORWARDED_ENV = ("GPT2GUARD_CACHE", "GPT2GUARD_WEIGHTS", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                 "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "XDG_CACHE_HOME")

_depth = 0


def require_ray():
    """The ``ray`` module with Ray Data, or GuardError with :data:`INSTALL_LINE`."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data comes with the [data] extra
    except ImportError:
        raise GuardError(INSTALL_LINE) from None
    return ray


def _quiet_ray() -> None:
    """Ray's Python loggers to errors only, its C++ core to fatal, Ray Data's bars off."""
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    for name in ("ray", "ray.data", "ray.serve", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _route_raylet_messages() -> None:
    """Ray's driver prints the errors its raylet reports (a task retried, an actor that could
    not start) to standard output, where they would mix with a command's output; they go to
    the ``ray`` logger instead (debug level). What failed for good still reaches the user as
    the one line of :func:`ray_failure`."""
    try:
        from ray._private import worker
    except ImportError:
        return
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "gpt2guard_quiet", False):
        return

    def routed(data, ignore_prefix):
        if data.get("pid") == "raylet":
            logging.getLogger("ray").debug("%s", "\n".join(str(x) for x in data.get("lines", [])))
            return
        original(data, ignore_prefix)

    routed.gpt2guard_quiet = True
    worker.print_to_stdstream = routed


def _quiet_data() -> None:
    import ray.data

    _route_raylet_messages()
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.execution_options.preserve_order = True  # results come back in plan order
    ctx.execution_options.verbose_progress = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def _stderr_silenced():
    """File descriptor 2 to /dev/null while Ray's core starts (it prints from C++)."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """GuardError unless ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) accepts a TCP
    connection within ``timeout`` seconds: Ray itself retries an unreachable head for minutes."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise GuardError(f"--ray-address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise GuardError(f"cannot reach a Ray cluster at {address}: {reason} (start one with `ray start --head` "
                         "or leave out --ray-address to run a local Ray)") from None


def _runtime_env(local: bool) -> dict:
    """The job's runtime environment: the forwarded variables (and, for a Ray started here,
    this checkout on the workers' path)."""
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    if local:
        # a Ray started here runs this checkout of gpt2guard, however the driver found it
        import gpt2guard

        root = os.path.dirname(os.path.dirname(os.path.abspath(gpt2guard.__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": env}


def _connect(ray, engine) -> bool:
    """Initialise Ray for ``engine``; True when this call started it (so it shuts it down)."""
    _quiet_ray()
    if ray.is_initialized():
        return False
    local = not engine.address
    if not local:
        check_reachable(engine.address)
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                  runtime_env=_runtime_env(local))
    if local:
        # one logical CPU per actor and one for Ray Data's own tasks: actors are never left
        # waiting for CPUs that torch threads, not Ray, share out
        cpus = os.cpu_count() or 1
        kwargs["num_cpus"] = max(cpus, (engine.workers or _cpu_workers(cpus, engine)) + 1)
    try:
        with _stderr_silenced():
            ray.init(address=engine.address or None, **kwargs)
    except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {engine.address}" if engine.address else "a local Ray"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GuardError(f"cannot start or join {where}: {first}") from None
    return True


def cluster_workers(engine) -> int:
    """How many actors the job runs: ``engine.workers``, else as many as the cluster holds.

    Raises GuardError when the cluster lacks the GPUs asked for (before any work).
    """
    import ray

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    if engine.gpus_per_worker > 0:
        fit = int(math.floor(gpus / engine.gpus_per_worker + 1e-9))
        want = engine.workers or max(fit, 1)
        if fit < want:
            have = f"{gpus:g} GPU(s)" if gpus else "no GPUs"
            raise GuardError(f"the Ray cluster has {have}; {want} worker(s) x {engine.gpus_per_worker:g} GPU(s) "
                             f"need {want * engine.gpus_per_worker:g} (lower --ray-workers or "
                             "--ray-gpus-per-worker, or 0 GPUs for CPU workers)")
        return want
    if engine.workers:
        return engine.workers
    cpus = float(resources.get("CPU", 1)) if engine.address else (os.cpu_count() or 1)  # a local Ray's CPUs are padded
    return _cpu_workers(cpus, engine)


def _cpu_workers(cpus: float, engine) -> int:
    """CPU actors that fill ``cpus`` CPUs at ``engine.threads`` torch threads each."""
    return max(1, int(cpus // actor_threads(engine)))


def actor_threads(engine) -> int:
    """Torch threads of each CPU actor: ``engine.threads``, else this process's count."""
    if engine.threads:
        return engine.threads
    import torch

    return torch.get_num_threads()


@contextlib.contextmanager
def ray_session(engine):
    """Ray connected for ``engine`` (a Ray :class:`~gpt2guard.engine.Engine`) inside the block.

    Raises
    ------
    GuardError
        Ray missing (:data:`INSTALL_LINE`), an unreachable or invalid ``--ray-address``, or
        a cluster without the GPUs asked for.
    """
    global _depth
    ray = require_ray()
    started = _connect(ray, engine) if _depth == 0 else False
    _depth += 1
    try:
        _quiet_data()
        cluster_workers(engine)  # refuse a cluster without the GPUs before any work
        yield ray
    finally:
        _depth -= 1
        if started:
            with _stderr_silenced():
                ray.shutdown()


def ray_failure(exc: BaseException, written: str = "") -> GuardError:
    """One line for an exception out of a Ray pipeline: a GuardError raised in an actor
    keeps its message; anything else (a worker that died, an actor that could not start)
    says what failed and that a rerun resumes."""
    cause = getattr(exc, "cause", None)
    for e in (exc, cause):
        if isinstance(e, GuardError):
            return GuardError(str(e))
    text = str(cause or exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    guard = [ln for ln in lines if ln.startswith(("gpt2guard.errors.GuardError:", "GuardError:"))]
    if guard:
        return GuardError(guard[-1].split(":", 1)[1].strip())
    what = type(cause or exc).__name__
    last = lines[-1] if lines else what
    if len(last) > 200:
        last = last[:197] + "..."
    return GuardError(f"a Ray worker failed ({what}: {last}){written}; run the same command again to resume")
