"""Serving a sandbox app with uvicorn on 127.0.0.1, with connections it can drop on purpose.

Uvicorn gives an ASGI app no handle on its connection, and an app that sends nothing gets a 500
written for it. The sandbox needs a true drop (the client sees the connection close with no
answer at all), so its protocol hands each request the connection's transport in a scope
extension (``TRANSPORT_EXTENSION``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from impextech.sandbox.erp import TRANSPORT_EXTENSION

HOST = "127.0.0.1"
# Thousands of slow requests may be waiting at once (the slow-partner benchmark).
BACKLOG = 8192


class DroppableHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[dict-item]


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: any free port); OSError if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        # Listening now means connections wait in the backlog until the server accepts them,
        # so the port can be announced before the event loop runs.
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


def make_server(app: ASGIApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        http=DroppableHttpToolsProtocol,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        backlog=BACKLOG,
        # Held requests (the timeout fault) must not keep a stopping sandbox alive.
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def run(app: ASGIApp, sock: socket.socket) -> None:
    """Serve until SIGINT or SIGTERM."""
    make_server(app).run(sockets=[sock])


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` in the current event loop for the block; yields its base URL."""
    sock = bind(port)
    server = make_server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
        yield f"http://{HOST}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
