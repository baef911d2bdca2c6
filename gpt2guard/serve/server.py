"""Run the service on a real socket with uvicorn, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import socket
from typing import Callable


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); GuardError naming the
    address when it cannot be had (taken, or a host this machine does not have)."""
    from gpt2guard.errors import GuardError

    if not host.strip():
        raise GuardError("--host is empty: give an address such as 127.0.0.1 (this machine only) or 0.0.0.0")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise GuardError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.listen(2048)
    return sock


def _server_class():
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that a stop signal ends it cleanly: once the requests in
        flight are answered, :func:`run_server` returns (the process exits 0) instead of the
        signal being raised again."""

        stopped_by = None

        def handle_exit(self, sig, frame):
            import signal

            super().handle_exit(sig, frame)
            self.stopped_by = signal.Signals(sig).name
            self._captured_signals.clear()

    return Server


def run_server(service, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
               sock: socket.socket | None = None, log: Callable[[str], None] = print, **app_options) -> None:
    """Serve ``service`` on ``host:port`` (or on ``sock``, already bound by :func:`bind`) until
    SIGTERM or SIGINT, then answer the requests in flight and return. ``app_options`` go to
    :func:`~gpt2guard.serve.app.create_app`."""
    import uvicorn

    from gpt2guard.serve.app import create_app

    app = create_app(service, token=token, **app_options)
    sock = sock if sock is not None else bind(host, port)
    where = sock.getsockname()
    url_host = f"[{where[0]}]" if ":" in where[0] else where[0]
    reach = ("only this machine can reach it" if where[0] in ("127.0.0.1", "::1")
             else "other machines can reach it" + ("" if token else ": no --token is set, anyone may call it"))
    log(f"serving on http://{url_host}:{where[1]}/ ({reach}); API docs at /docs; Ctrl-C or SIGTERM stops it")
    timeout = app_options.get("timeout", 60.0)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=int(timeout) + 5,
                            lifespan="on", access_log=False)
    server = _server_class()(config)
    server.run(sockets=[sock])
    why = f" on {server.stopped_by}" if server.stopped_by else ""
    log(f"stopped{why}: every request in flight answered ({app.state.batcher.batches} engine call(s) made)")
