"""``bi-engine``: the command line of CONTRACT section 2.

Each command lives in its own module with a ``register(subparsers)`` function. Commands
that need the worker stack (``worker``) come from the ``bi_engine.commands`` entry-point
group, so this package never imports the workers package.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from bi_engine import __version__
from bi_engine.cli import (
    callbacks_cmd,
    demo_cmd,
    jobs_cmd,
    migrate_cmd,
    serve_cmd,
    submit_cmd,
    token_cmd,
)
from bi_engine.errors import BIError

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
BUILTIN: tuple[Registrar, ...] = (
    migrate_cmd.register,
    token_cmd.register,
    callbacks_cmd.register,
    serve_cmd.register,
    jobs_cmd.register,
    submit_cmd.register,
    demo_cmd.register,
)


def _plugins() -> list[Registrar]:
    found = []
    for entry in metadata.entry_points(group="bi_engine.commands"):
        try:
            found.append(entry.load())
        except ImportError:
            continue  # the worker extra is not installed: its commands are simply absent
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bi-engine", description="PilotProOS Business Intelligence engine"
    )
    parser.add_argument("--version", action="version", version=f"bi-engine {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in (*BUILTIN, *_plugins()):
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except BIError as exc:
        print(f"bi-engine: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)
