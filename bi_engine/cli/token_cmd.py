"""``bi-engine token``: mint a development JWT signed with JWT_SECRET."""

from __future__ import annotations

import argparse
from typing import Any

from bi_engine.auth import tokens
from bi_engine.settings import load_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("token", help="mint a development JWT (like the backend's)")
    parser.add_argument("--user-id", default="dev-user")
    parser.add_argument("--email", default="dev@pilotpros.local")
    parser.add_argument("--role", default="admin", help="admin sees every job (default)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(
        tokens.mint_user_token(
            settings, user_id=args.user_id, email=args.email, role=args.role, ttl_s=args.ttl
        )
    )
    return 0
