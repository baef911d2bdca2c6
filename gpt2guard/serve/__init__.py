"""The detection service: ``gpt2guard serve``'s HTTP API and page over a loaded detector.

From Python::

    from gpt2guard.serve import load_service, create_app
    service = load_service(method="fast-detectgpt", family="nano")
    service.judge(["Some text to judge."], details=[True])   # no HTTP at all
    app = create_app(service)                                  # an ASGI app for any server

See docs/serve.md for the API, the page and the limits.
"""

from __future__ import annotations

from typing import Callable


def require_extra() -> None:
    """GuardError naming the install command when the ``serve`` extra is missing."""
    import importlib.util

    from gpt2guard.errors import GuardError

    missing = [m for m in ("fastapi", "uvicorn", "swagger_ui_bundle") if importlib.util.find_spec(m) is None]
    if missing:
        raise GuardError(f"gpt2guard serve needs {', '.join(missing)}: pip install 'gpt2guard[serve]'")


def load_service(*, detector: str | None = None, method: str = "fast-detectgpt", family: str = "nano",
                 size: str | None = None, reference_size: str | None = None, threshold: float | None = None,
                 fpr: float = 0.05, min_tokens: int | None = None, seed: int = 0, max_tokens: int = 200_000,
                 max_docs: int = 256, detail_tokens: int = 2000, log: Callable[[str], None] = lambda m: None,
                 direction: str | None = "auto", suspect: str | None = None, labelled=None):
    """Load a detector as ``gpt2guard score`` would (see
    :func:`~gpt2guard.detector.build.build_detector`) and wrap it in a
    :class:`~gpt2guard.serve.service.Service`; its scorers keep no disk cache of served texts."""
    from gpt2guard.detector.build import build_detector, view_scorer
    from gpt2guard.serve.service import Limits, Service

    det = build_detector(detector, method, family, size, reference_size, threshold=threshold, fpr=fpr,
                         min_tokens=min_tokens, seed=seed, log=log, direction=direction, suspect=suspect,
                         labelled=labelled)
    # the builtin calibration text may come from the cache; the texts served never go to it
    if det.kind == "zero-shot":
        det.scorer.cache = None
    elif det.kind == "features":
        det.scorer_kwargs = {**(det.scorer_kwargs or {}), "cache": False}
    view = view_scorer(det, family, size, cache=False)
    return Service(det, view, Limits(max_tokens=max_tokens, max_docs=max_docs, detail_tokens=detail_tokens))


def create_app(service, **options):
    """The ASGI application (see :func:`gpt2guard.serve.app.create_app`)."""
    from gpt2guard.serve.app import create_app as _create

    return _create(service, **options)


def run_server(service, **options) -> None:
    """Serve until SIGTERM or Ctrl-C (see :func:`gpt2guard.serve.server.run_server`)."""
    from gpt2guard.serve.server import run_server as _run

    _run(service, **options)


__all__ = ["load_service", "create_app", "run_server", "require_extra"]
