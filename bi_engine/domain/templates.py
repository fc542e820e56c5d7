"""Saved custom-analysis templates (CONTRACT section 5): what a template holds and its rules.

A template names a reusable analysis: its question and the options a submission would
otherwise carry (``config``: ``context``, ``time_period``, ``metrics_focus``...). A
``custom_analysis`` whose data names a ``template_id`` runs with the template's question and
settings wherever the submission leaves them out. Templates belong to their owner; admins
see and change everyone's.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from bi_engine import constants
from bi_engine.domain.submission import InvalidSubmission, problems
from bi_engine.errors import BIError

TemplateType = Literal[
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
]
TemplateId = uuid.UUID
MAX_CONFIG_BYTES: Final = 64 * 1024
MAX_TEMPLATES_LISTED: Final = 1000


class TemplateNotFound(BIError):
    """No such template."""

    status_code = 404
    code = "template_not_found"


class TemplateNameTaken(BIError):
    """You already have a template with this name: choose another name."""

    status_code = 409
    code = "template_name_taken"


class TemplateFields(BaseModel):
    """``POST /templates`` and ``PUT /templates/{id}`` (a PUT replaces every field)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=2000)] = ""
    analysis_type: TemplateType = Field(
        "custom_analysis", description="The kind of data the template is written for"
    )
    question: Annotated[StrictStr, Field(min_length=1, max_length=10_000)] | None = None
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Defaults for the submission's options: context, time_period,"
        " metrics_focus (a submission's own values win)",
    )

    @field_validator("name", "description", "question")
    @classmethod
    def _storable_text(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("Text must not contain NUL characters")
        return value

    @field_validator("config")
    @classmethod
    def _storable_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:
            raise ValueError("config nests too deeply") from None
        if len(encoded) > MAX_CONFIG_BYTES:
            raise ValueError(f"config is larger than {MAX_CONFIG_BYTES} bytes")
        if b"\\u0000" in encoded:
            raise ValueError("config must not contain NUL characters")
        return value


class TemplateDocument(BaseModel):
    """A template as the API returns it."""

    success: Literal[True] = True
    id: uuid.UUID
    owner_id: str
    name: str
    description: str
    analysis_type: TemplateType
    question: str | None
    config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class TemplateList(BaseModel):
    success: Literal[True] = True
    templates: list[TemplateDocument]


def parse(document: Any) -> TemplateFields:
    """A decoded JSON body -> the fields, or 422 with the location of each problem."""
    if not isinstance(document, dict):
        raise InvalidSubmission(
            details=[{"loc": [], "msg": "Input should be an object", "type": "model_type"}]
        )
    try:
        return TemplateFields.model_validate(document)
    except ValidationError as exc:
        raise InvalidSubmission(details=problems(exc)) from None


def parse_template_id(raw: str) -> uuid.UUID:
    """A template id from a path; anything that is not a UUID names no template (404)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise TemplateNotFound from None


def document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "success": True,
        "id": row["id"],
        "owner_id": row["owner_id"],
        "name": row["name"],
        "description": row["description"],
        "analysis_type": row["analysis_type"],
        "question": row["question"],
        "config": row["config"] or {},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def url(template_id: uuid.UUID) -> str:
    return f"{constants.API_PREFIX}/templates/{template_id}"


def for_job(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a job carries in ``options["template"]``: plain JSON values only."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "analysis_type": row["analysis_type"],
        "question": row["question"],
        "config": dict(row["config"] or {}),
    }


def template_id_of(analysis_type: str, data: Mapping[str, Any]) -> uuid.UUID | None:
    """The template a ``custom_analysis`` names, or None. A malformed id is a 422."""
    if analysis_type != "custom_analysis":
        return None
    raw = data.get("template_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise unknown_template() from None


def unknown_template() -> InvalidSubmission:
    return InvalidSubmission(
        details=[
            {
                "loc": ["data", "template_id"],
                "msg": "No template with this id exists for you",
                "type": "unknown_template",
            }
        ]
    )
