"""What ``POST /analyze`` accepts: the request envelope and the shape of ``data`` per type.

This is shape validation (CONTRACT section 7): lists of objects with the right keys and
JSON types, so a client learns at once, with the location of each problem, what is wrong.
The analytics check the meaning later (timestamps that parse, known status words...).
Unknown keys inside ``data`` are kept; unknown keys of the envelope are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from bi_engine.errors import BIError

AnalysisTypeName = Literal[
    "process_analysis",
    "data_interpretation",
    "trend_analysis",
    "optimization_review",
    "custom_analysis",
    "test",
]
TeamId = Literal[
    "business_analyst_team",
    "process_optimization_team",
    "data_intelligence_team",
    "report_generation_team",
]
Priority = Literal["high", "normal", "low"]
Sensitivity = Literal["normal", "confidential"]

MAX_ROWS: Final = 1_000_000
MAX_REPORTED_ERRORS: Final = 50


def _checker(kind: str, message: str, ok: Callable[[Any], bool]) -> PlainValidator:
    """A JSON scalar check with ONE clear error (unions would report one error per branch)."""

    def check(value: Any) -> Any:
        if not ok(value):
            raise PydanticCustomError(kind, message)
        return value

    return PlainValidator(check)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


_NUMBER: Final = {"type": "number"}
Number = Annotated[
    Any, _checker("number_type", "Input should be a number", _is_number), WithJsonSchema(_NUMBER)
]
Timestamp = Annotated[
    Any,
    _checker(
        "timestamp_type",
        "Input should be an ISO 8601 timestamp or a number of seconds/milliseconds since the epoch",
        lambda v: _is_text(v) or _is_number(v),
    ),
    WithJsonSchema(
        {"oneOf": [{"type": "string"}, _NUMBER], "description": "ISO 8601 or epoch seconds/ms"}
    ),
]
Name = Annotated[
    Any,
    _checker(
        "name_type", "Input should be a non-empty string", lambda v: _is_text(v) or _is_number(v)
    ),
    WithJsonSchema({"oneOf": [{"type": "string", "minLength": 1}, _NUMBER]}),
]
Figure = Annotated[
    Any,
    _checker(
        "figure_type",
        "Input should be a number (or a numeric string)",
        lambda v: isinstance(v, str) or _is_number(v),
    ),
    WithJsonSchema({"oneOf": [_NUMBER, {"type": "string"}]}),
]
Identifier = Annotated[
    Any,
    _checker(
        "id_type",
        "Input should be a string or an integer",
        lambda v: isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)),
    ),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "integer"}]}),
]
Flag = Annotated[
    Any,
    _checker(
        "flag_type",
        "Input should be true/false (or yes/no, 1/0)",
        lambda v: isinstance(v, bool | str | int),
    ),
    WithJsonSchema({"oneOf": [{"type": "boolean"}, {"type": "string"}, {"type": "integer"}]}),
]
NonNegative = Annotated[
    Any,
    _checker("number_type", "Input should be a number >= 0", lambda v: _is_number(v) and v >= 0),
    WithJsonSchema({"type": "number", "minimum": 0}),
]
SleepSeconds = Annotated[
    Any,
    _checker(
        "sleep_range",
        "Input should be a number of seconds from 0 to 600",
        lambda v: _is_number(v) and 0 <= v <= 600,
    ),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 600}),
]


def _needs(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


class InvalidSubmission(BIError):
    """The request is not valid: see details for the location of each problem."""

    status_code = 422
    code = "validation_error"


def problems(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """pydantic errors as ``{loc, msg, type}`` (never the input itself), at most 50."""
    return [_problem(err, prefix) for err in exc.errors(include_url=False)[:MAX_REPORTED_ERRORS]]


def _problem(err: ErrorDetails, prefix: tuple[str | int, ...]) -> dict[str, Any]:
    loc = [part for part in (*prefix, *err["loc"]) if not _is_union_tag(part)]
    msg = "Input should be an object" if err["type"] in _OBJECT_ERRORS else err["msg"]
    return {"loc": loc, "msg": msg, "type": err["type"]}


_OBJECT_ERRORS: Final = frozenset({"model_type", "dict_type", "model_attributes_type"})


def _is_union_tag(part: str | int) -> bool:
    """Drop the tags of tagged unions (``object``/``text``) from locations."""
    return part in _UNION_TAGS


_UNION_TAGS: Final = frozenset({"object", "text"})


class _Part(BaseModel):
    """A part of ``data``: known keys are checked, other keys are kept as they are."""

    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------------ process logs


class Step(_Part):
    name: Name
    started_at: Timestamp
    finished_at: Timestamp | None = None
    status: StrictStr | None = Field(None, description="n8n words: success, error, crashed...")
    manual: Flag | None = None
    cost: Figure | None = None


class Run(_Part):
    run_id: Identifier | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    status: StrictStr | None = None
    steps: list[Step]


class ProcessEvent(_Part):
    case_id: Name
    activity: Name
    start: Timestamp
    end: Timestamp | None = None
    resource: Any = None
    cost: Figure | None = None
    status: StrictStr | None = None


class N8nNodeRun(_Part):
    startTime: Number = Field(description="milliseconds since the epoch")
    executionTime: Number | None = None
    executionStatus: StrictStr | None = None


class N8nResultData(_Part):
    runData: dict[str, list[N8nNodeRun]] | None = None


class N8nRunData(_Part):
    resultData: N8nResultData | None = None


class N8nExecution(_Part):
    """An execution as n8n's REST API returns it with ``includeData=true``."""

    id: Identifier | None = None
    status: StrictStr | None = None
    startedAt: Timestamp | None = None
    stoppedAt: Timestamp | None = None
    data: (
        Annotated[
            Annotated[N8nRunData, Tag("object")] | Annotated[StrictStr, Tag("text")],
            Discriminator(lambda v: "text" if isinstance(v, str) else "object"),
        ]
        | None
    ) = Field(None, description="The execution data (an object, or n8n's JSON text)")


class Costs(_Part):
    hourly_rate: NonNegative | None = None


class _Common(_Part):
    metrics: dict[str, Figure] | None = Field(
        None, description='Plain KPI figures, e.g. {"sales": 10000, "costs": 7000}'
    )
    costs: Costs | None = None


class _ProcessFields(_Common):
    runs: list[Run] | None = Field(None, min_length=1)
    events: list[ProcessEvent] | None = Field(None, min_length=1)
    n8n_executions: list[N8nExecution] | None = Field(None, min_length=1)


class _TableFields(_Common):
    records: list[dict[str, Any]] | None = Field(None, min_length=1)
    csv: Annotated[StrictStr, Field(min_length=1)] | None = None
    time_field: StrictStr | None = None
    value_fields: list[StrictStr] | None = None


class SeriesPoint(_Part):
    t: Timestamp
    v: Number | None


class Series(_Part):
    name: Annotated[StrictStr, Field(min_length=1)]
    points: list[SeriesPoint] = Field(min_length=1)


class _SeriesFields(_Common):
    series: list[Series] | None = Field(None, min_length=1)


def _need(data: _Part, keys: tuple[str, ...], wanted: str) -> None:
    if not any(getattr(data, key, None) is not None for key in (*keys, "metrics")):
        raise _needs("missing_data", f"Data should hold one of: {wanted} (or metrics)")


class ProcessData(_ProcessFields):
    """``process_analysis`` and ``optimization_review``: runs, an event log or n8n executions."""

    @model_validator(mode="after")
    def _one_format(self) -> ProcessData:
        _need(self, ("runs", "events", "n8n_executions"), "runs, events, n8n_executions")
        return self


class TableData(_TableFields):
    """``data_interpretation``: records or CSV text."""

    @model_validator(mode="after")
    def _one_format(self) -> TableData:
        _need(self, ("records", "csv"), "records, csv")
        return self


class TrendData(_SeriesFields, _TableFields):
    """``trend_analysis``: named series of points, or records with a time field."""

    @model_validator(mode="after")
    def _one_format(self) -> TrendData:
        if self.records is not None and self.series is None and not self.time_field:
            raise _needs("missing_time_field", "records need a time_field (and value_fields)")
        _need(self, ("series", "records"), "series, records with time_field")
        return self


class CustomData(_ProcessFields, _SeriesFields, _TableFields):
    """``custom_analysis``: a question (or a saved template) and any of the other formats."""

    question: Annotated[StrictStr, Field(min_length=1, max_length=10_000)] | None = None
    template_id: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _has_question(self) -> CustomData:
        if self.question is None and self.template_id is None:
            raise _needs("missing_question", "Data should hold a question or a template_id")
        return self


class TestData(_Part):
    """``test``: any object; ``sleep_s`` and ``fail_attempts`` shape the smoke-test job."""

    __test__ = False  # not a pytest test class

    sleep_s: SleepSeconds = 0
    fail_attempts: Annotated[StrictInt, Field(ge=0, le=100)] = 0


DATA_MODELS: Final[dict[str, type[_Part]]] = {
    "process_analysis": ProcessData,
    "optimization_review": ProcessData,
    "data_interpretation": TableData,
    "trend_analysis": TrendData,
    "custom_analysis": CustomData,
    "test": TestData,
}
_DATA_ADAPTERS: Final = {name: TypeAdapter(model) for name, model in DATA_MODELS.items()}


# ------------------------------------------------------------------------ the request


class AnalysisRequest(BaseModel):
    """``POST /analyze``. ``type`` may be sent as ``analysis_type`` (n8n)."""

    model_config = ConfigDict(extra="forbid")

    type: AnalysisTypeName | None = None
    analysis_type: AnalysisTypeName | None = Field(None, description="n8n's name for `type`")
    agent_team: TeamId | None = None
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="Shape per type: see ProcessData, TableData, TrendData, CustomData, TestData."
        " A JSON string holding an object is accepted too (n8n expressions).",
    )
    context: Annotated[StrictStr, Field(max_length=10_000)] | None = None
    callback_url: (
        Annotated[StrictStr, Field(max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]
        | None
    ) = None
    priority: Priority = "normal"
    sensitivity: Sensitivity = "normal"
    time_period: Annotated[StrictStr, Field(max_length=100)] | None = None
    metrics_focus: list[Annotated[StrictStr, Field(max_length=200)]] = Field(
        default_factory=list, max_length=100
    )

    @model_validator(mode="before")
    @classmethod
    def _data_from_text(cls, value: Any) -> Any:
        """n8n expressions may send ``data`` as JSON text; accept it when it holds an object."""
        if isinstance(value, dict) and isinstance(value.get("data"), str):
            try:
                parsed = orjson.loads(value["data"])
            except orjson.JSONDecodeError:
                return value
            if isinstance(parsed, dict):
                return {**value, "data": parsed}
        return value

    @model_validator(mode="after")
    def _one_type(self) -> AnalysisRequest:
        if self.type is None and self.analysis_type is None:
            raise _needs("missing", "type (or analysis_type) is required")
        if self.type and self.analysis_type and self.type != self.analysis_type:
            raise _needs("type_mismatch", "type and analysis_type disagree")
        return self

    _data_json: bytes | None = PrivateAttr(default=None)

    def encode_data(self) -> bytes:
        """``data`` as JSON, encoded once (422 when it nests deeper than can be stored)."""
        if self._data_json is None:
            try:
                self._data_json = orjson.dumps(self.data)
            except orjson.JSONEncodeError:
                raise InvalidSubmission(
                    details=[
                        {
                            "loc": ["data"],
                            "msg": "Data may nest at most 250 levels deep",
                            "type": "too_deep",
                        }
                    ]
                ) from None
        return self._data_json

    @property
    def analysis(self) -> str:
        """The analysis type, whichever name carried it."""
        resolved = self.type or self.analysis_type
        assert resolved is not None
        return resolved

    def options(self) -> dict[str, Any]:
        """What the pipeline reads besides the data (``JobContext.options``)."""
        raw = {
            "context": self.context,
            "time_period": self.time_period,
            "metrics_focus": self.metrics_focus or None,
        }
        return {key: value for key, value in raw.items() if value is not None}


def parse(document: Any, *, raw: bytes | None = None) -> AnalysisRequest:
    """Validate a decoded JSON body: the envelope, then the shape of ``data`` for its type.

    Raises :class:`InvalidSubmission` (422) listing each problem as ``{loc, msg, type}``.
    ``raw`` (the body as received) lets the NUL-character check skip bodies that have none.
    """
    if raw is None or b"\\u0000" in raw:
        _check_no_nul(document)
    try:
        request = AnalysisRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidSubmission(details=problems(exc)) from None
    try:
        _DATA_ADAPTERS[request.analysis].validate_python(request.data)
    except ValidationError as exc:
        raise InvalidSubmission(details=problems(exc, ("data",))) from None
    _check_rows(request.data)
    request.encode_data()
    return request


def _nul_locations(document: Any) -> list[list[str | int]]:
    """Where NUL characters are, walking iteratively (JSON may nest 1,024 levels deep)."""
    found: list[list[str | int]] = []
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack and len(found) < MAX_REPORTED_ERRORS:
        value, loc = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(loc)
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                stack.append((item, [*loc, key]))
                if "\x00" in key:
                    stack.append(("\x00", [*loc, key.replace("\x00", "\\u0000")]))
        elif isinstance(value, list):
            stack.extend((item, [*loc, i]) for i, item in reversed(list(enumerate(value))))
    return found


def _check_no_nul(document: Any) -> None:
    """Postgres stores no NUL character (``\\u0000``) in text or JSON: refuse it up front."""
    found = _nul_locations(document)
    if found:
        raise InvalidSubmission(
            details=[
                {"loc": loc, "msg": "Text may not contain the NUL character", "type": "nul_char"}
                for loc in found
            ]
        )


def _check_rows(data: dict[str, Any]) -> None:
    rows = sum(
        len(data[key]) for key in ("events", "n8n_executions", "records") if _is_list(data, key)
    )
    rows += _nested(data, "runs", "steps") + _nested(data, "series", "points")
    if rows > MAX_ROWS:
        raise InvalidSubmission(
            details=[
                {
                    "loc": ["data"],
                    "msg": f"{rows} rows is more than the limit of {MAX_ROWS:,}",
                    "type": "too_many_rows",
                }
            ]
        )


def _is_list(data: dict[str, Any], key: str) -> bool:
    return isinstance(data.get(key), list)


def _nested(data: dict[str, Any], outer: str, inner: str) -> int:
    items = data.get(outer) if _is_list(data, outer) else ()
    return sum(len(item.get(inner) or ()) for item in items or () if isinstance(item, dict))
