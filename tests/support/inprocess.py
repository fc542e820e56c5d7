"""The API app on a real uvicorn server inside the test's event loop.

For tests that must change a setting the command line does not expose (e.g. shorter body
timeouts): same app factory, same uvicorn options as ``bi-engine serve``, real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from bi_engine.cli import serve_cmd
from tests.support.processes import free_port


def set_middleware_options(app: Starlette, middleware: type, **options: Any) -> None:
    """Change the keyword arguments one middleware of ``app`` is built with (before start)."""
    for entry in app.user_middleware:
        if entry.cls is middleware:
            entry.kwargs.update(options)
            return
    raise LookupError(f"{middleware.__name__} is not in the app's middleware")


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yield its base URL; shut down after."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",
        http=serve_cmd.HTTP_PROTOCOL,
        ws=serve_cmd.WS_PROTOCOL,
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
