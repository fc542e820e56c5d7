"""/openapi.json is a valid OpenAPI 3.1 description generated from the pydantic models."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette

from bi_engine.api import openapi
from bi_engine.api.app import create_app
from bi_engine.settings import Settings

pytestmark = pytest.mark.unit


def served() -> tuple[dict[str, Any], Starlette]:
    """The description exactly as /openapi.json serves it (extra paths of the live layer too)."""
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/none"))
    return openapi.document(app.state.openapi_extra_paths), app


def test_the_description_is_valid_openapi_3_1() -> None:
    document, _ = served()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_described() -> None:
    document, app = served()
    described = document["paths"]
    for route in app.routes:
        path = getattr(route, "path", None)
        assert path in described, path
        for method in getattr(route, "methods", set()) - {"HEAD"}:
            assert method.lower() in described[path], (method, path)


def test_request_schema_comes_from_the_models() -> None:
    schemas = openapi.document()["components"]["schemas"]
    request = schemas["AnalysisRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) >= {"type", "analysis_type", "data", "priority"}
    refs = [option.get("$ref") for option in request["properties"]["data"]["anyOf"]]
    assert "#/components/schemas/ProcessData" in refs
    assert {"Step", "Run", "ProcessEvent", "N8nExecution", "JobAccepted", "ErrorEnvelope"} <= set(
        schemas
    )


def test_extra_paths_are_merged_without_touching_the_base() -> None:
    extra = {
        "/api/business-intelligence/events": {"get": {"responses": {"200": {"description": "SSE"}}}}
    }
    merged = openapi.document(extra)
    assert "/api/business-intelligence/events" in merged["paths"]
    assert "/api/business-intelligence/events" not in openapi.document()["paths"]
    validate(merged)
