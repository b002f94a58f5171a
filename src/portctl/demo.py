"""The embedded demo app: what ``portctl start`` runs when no command is given.

``GET /health`` answers 200; ``GET /`` a short page naming the port and pid. Every request is
logged (uvicorn's access log, at info level).
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Awaitable, Callable

from .base import defaults

Receive = Callable[[], Awaitable[dict]]  # type: ignore[type-arg]
Send = Callable[[dict], Awaitable[None]]  # type: ignore[type-arg]


async def app(scope: dict, receive: Receive, send: Send) -> None:  # type: ignore[type-arg]
    """A plain ASGI app, so the demo needs nothing beyond uvicorn."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope.get("path", "/")
    if path == "/health":
        status, body, kind = 200, b'{"status": "ok"}', b"application/json"
    elif path == "/":
        port = scope.get("server", ("", os.environ.get("PORT", "?")))[1]
        status, kind = 200, b"text/html; charset=utf-8"
        body = (f"<h1>portctl demo</h1><p>port {port}, pid {os.getpid()}</p>"
                "<p>GET /health answers 200.</p>").encode()
    else:
        status, body, kind = 404, b"not found", b"text/plain"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(prog="portctl-demo")
    parser.add_argument("--host", default=defaults.HOST)
    parser.add_argument("--port", type=int, default=defaults.PORT)
    args = parser.parse_args(argv)
    import logging

    import uvicorn

    # Each request at info level (uvicorn's access log); uvicorn's own start-up and shut-down
    # lines only from warning up: portctl already says when it is ready and when it stops.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="info")
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
