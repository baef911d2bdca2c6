"""Run the service on a real socket with uvicorn, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import socket
from typing import Callable


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); OSError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def run_server(service, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
               log: Callable[[str], None] = print, **app_options) -> None:
    """Serve ``service`` on ``host:port`` until SIGTERM or SIGINT, then answer the requests in
    flight and return. ``app_options`` go to :func:`~gpt2guard.serve.app.create_app`."""
    import uvicorn

    from gpt2guard.serve.app import create_app

    app = create_app(service, token=token, **app_options)
    sock = bind(host, port)
    where = sock.getsockname()
    url_host = f"[{where[0]}]" if ":" in where[0] else where[0]
    reach = ("only this machine can reach it" if where[0] in ("127.0.0.1", "::1")
             else "other machines can reach it" + ("" if token else ": no --token is set, anyone may call it"))
    log(f"serving on http://{url_host}:{where[1]}/ ({reach}); API docs at /docs; Ctrl-C or SIGTERM stops it")
    timeout = app_options.get("timeout", 60.0)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=int(timeout) + 5,
                            lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    log(f"stopped: {app.state.batcher.batches} engine call(s) made, every request in flight answered")
