"""schemathesis against ``/openapi.json`` of a real server, with valid tokens, every endpoint.

Every operation the document describes is called with generated inputs — valid ones and,
with ``GenerationMode.NEGATIVE``, invalid ones — as a regular user and as an admin. The
checks: no 5xx, a status code the document lists, a Content-Type it lists, and a body
that matches the documented schema. The streams (``text/event-stream``) are left to the
live and security suites: a generated request would follow them forever.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bi_engine.auth import tokens
from bi_engine.settings import Settings
from tests.support import figures
from tests.support.processes import ApiServer

pytestmark = [pytest.mark.slow, pytest.mark.acceptance, pytest.mark.timeout(600)]

EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
_CALLS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ApiServer) -> Any:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    schema.config.update(base_url=fuzz_server.url)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


def _token(role: str) -> str:
    return tokens.mint_user_token(Settings(), user_id=f"fuzz-{role}", role=role)


def _bounded_wait(headers: dict[str, Any]) -> None:
    """``Prefer: wait=N`` may hold a request for a minute: keep generated waits short."""
    for name in list(headers):
        if name.lower() == "prefer":
            found = re.search(r"wait\s*=\s*(\d+)", str(headers[name]))
            if found and int(found.group(1)) > 1:
                headers[name] = "wait=1"


STREAMS = r"(/events$|/ws/)"


@schema.exclude(path_regex=STREAMS).parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_within_its_schema(case: Any) -> None:
    headers = dict(case.headers or {})
    _bounded_wait(headers)
    case.headers = headers
    for role in ("user", "admin"):
        response = case.call(headers={"Authorization": f"Bearer {_token(role)}"}, timeout=30)
        _CALLS[f"{response.status_code // 100}xx"] += 1
        case.validate_response(response, checks=CHECKS)


def test_the_fuzzer_ran_everywhere(api_schema: Any) -> None:
    operations = [
        op.ok() for op in api_schema.get_all_operations() if not re.search(STREAMS, op.ok().path)
    ]
    assert len(operations) >= 18
    figures.record(
        "fuzz",
        f"schemathesis {schemathesis.__version__}: {len(operations)} operations x 2 roles,"
        f" up to {EXAMPLES} examples each (positive and negative); answers by class:"
        f" {dict(sorted(_CALLS.items()))}",
    )
    assert _CALLS.get("5xx", 0) == 0
