"""``bi-engine serve``: the HTTP API on uvicorn (httptools + uvloop)."""

from __future__ import annotations

import argparse
from typing import Any

from bi_engine.logging import configure_logging
from bi_engine.settings import Settings, load_settings

FACTORY = "bi_engine.cli.serve_cmd:app_from_environment"
HTTP_PROTOCOL = "bi_engine.cli.http_protocol:LingeringHttpProtocol"
WS_PROTOCOL = "bi_engine.cli.ws_protocol:WebSocketProtocol"
"""By import path: the modules import uvicorn, which only ``serve`` needs."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="run the HTTP API (Starlette on uvicorn)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes, each with its own pool (default 1)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.set_defaults(handler=run)


def app_from_environment() -> Any:
    """The app of one worker process when ``--workers`` > 1 (uvicorn imports it by name)."""
    from bi_engine.api.app import create_app

    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)


def _uvicorn_options(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,
        "ws": WS_PROTOCOL,
        "lifespan": "on",
        "access_log": args.access_log,
        "log_config": None,
        "log_level": settings.log_level.lower(),
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from bi_engine.api.app import create_app

    settings = load_settings()
    settings.require_database_url()
    configure_logging(settings)
    options = _uvicorn_options(args, settings)
    if args.workers > 1:
        uvicorn.run(FACTORY, factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0
