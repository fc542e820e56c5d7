"""Shape validation of POST /analyze (CONTRACT section 7): every format, precise locations."""

from __future__ import annotations

from typing import Any

import pytest

from bi_engine.domain import submission

pytestmark = pytest.mark.unit

RUNS = {
    "runs": [
        {
            "run_id": "r1",
            "started_at": "2026-10-01T08:00:00Z",
            "finished_at": "2026-10-01T09:00:00Z",
            "status": "success",
            "steps": [
                {
                    "name": "Manager approval",
                    "started_at": "2026-10-01T08:00:00Z",
                    "finished_at": 1790000000,
                    "status": "success",
                    "manual": True,
                    "cost": 12.5,
                }
            ],
        }
    ],
    "costs": {"hourly_rate": 45},
}
EVENTS = {"events": [{"case_id": 1, "activity": "Check", "start": 1790000000000, "end": None}]}
N8N = {
    "n8n_executions": [
        {
            "id": "77",
            "status": "success",
            "startedAt": "2026-10-01T08:00:00.000Z",
            "data": {
                "resultData": {
                    "runData": {
                        "Webhook": [
                            {
                                "startTime": 1790000000000,
                                "executionTime": 12,
                                "executionStatus": "success",
                            }
                        ]
                    }
                }
            },
        },
        {"id": 78, "data": '{"resultData": {}}'},
    ]
}
VALID = [
    ("process_analysis", RUNS),
    ("process_analysis", EVENTS),
    ("optimization_review", N8N),
    ("process_analysis", {"metrics": {"sales": 10000, "costs": "7,000"}}),
    ("data_interpretation", {"records": [{"a": 1, "b": "x"}]}),
    ("data_interpretation", {"csv": "a,b\n1,2\n"}),
    ("trend_analysis", {"series": [{"name": "revenue", "points": [{"t": "2026-01-01", "v": 10}]}]}),
    (
        "trend_analysis",
        {
            "records": [{"date": "2026-01-01", "sales": 1}],
            "time_field": "date",
            "value_fields": ["sales"],
        },
    ),
    ("custom_analysis", {"question": "Why are costs up?", **EVENTS}),
    ("custom_analysis", {"template_id": "t-1"}),
    ("test", {}),
    ("test", {"sleep_s": 2.5, "fail_attempts": 1, "anything": [1, 2]}),
]


def problems(document: Any) -> list[dict[str, Any]]:
    with pytest.raises(submission.InvalidSubmission) as caught:
        submission.parse(document)
    assert caught.value.status_code == 422
    details: list[dict[str, Any]] = caught.value.details
    assert all(set(problem) == {"loc", "msg", "type"} for problem in details)
    return details


def locations(document: Any) -> list[list[Any]]:
    return [problem["loc"] for problem in problems(document)]


@pytest.mark.parametrize(("kind", "data"), VALID)
def test_every_documented_format_is_accepted(kind: str, data: dict[str, Any]) -> None:
    parsed = submission.parse({"type": kind, "data": data})
    assert parsed.analysis == kind
    assert parsed.data == data  # kept exactly as sent


def test_n8n_names_and_json_text_data() -> None:
    parsed = submission.parse(
        {
            "analysis_type": "test",
            "agent_team": "process_optimization_team",
            "data": '{"sleep_s": 1}',
            "context": "Monthly process review",
            "priority": "high",
        }
    )
    assert parsed.analysis == "test"
    assert parsed.data == {"sleep_s": 1}
    assert parsed.options() == {"context": "Monthly process review"}


def test_defaults_and_options() -> None:
    parsed = submission.parse(
        {"type": "test", "time_period": "2026-10", "metrics_focus": ["cycle_time"]}
    )
    assert (parsed.priority, parsed.sensitivity, parsed.callback_url) == ("normal", "normal", None)
    assert parsed.options() == {"time_period": "2026-10", "metrics_focus": ["cycle_time"]}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, [[]]),
        ([], [[]]),
        ("text", [[]]),
        ({"type": "test", "analysis_type": "trend_analysis"}, [[]]),
        ({"type": "process_optimization"}, [["type"]]),
        ({"type": "test", "priority": "urgent"}, [["priority"]]),
        ({"type": "test", "sensitivity": "secret"}, [["sensitivity"]]),
        ({"type": "test", "agent_team": "a_team"}, [["agent_team"]]),
        ({"type": "test", "callback_url": "ftp://x"}, [["callback_url"]]),
        ({"type": "test", "callback_url": "javascript:alert(1)"}, [["callback_url"]]),
        ({"type": "test", "priorty": "high"}, [["priorty"]]),
        ({"type": "test", "data": [1]}, [["data"]]),
        ({"type": "test", "data": "not json"}, [["data"]]),
        ({"type": "test", "metrics_focus": "cycle_time"}, [["metrics_focus"]]),
        ({"type": "test", "context": 5}, [["context"]]),
    ],
)
def test_envelope_problems_are_located(document: Any, expected: list[list[Any]]) -> None:
    assert locations(document) == expected


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("process_analysis", {}, [["data"]]),
        ("process_analysis", {"runs": []}, [["data", "runs"]]),
        ("process_analysis", {"runs": [5]}, [["data", "runs", 0]]),
        ("process_analysis", {"runs": [{"steps": "x"}]}, [["data", "runs", 0, "steps"]]),
        (
            "process_analysis",
            {
                "runs": [
                    {"steps": [{"name": "a", "started_at": "t"}, {"name": "", "started_at": True}]}
                ]
            },
            [
                ["data", "runs", 0, "steps", 1, "name"],
                ["data", "runs", 0, "steps", 1, "started_at"],
            ],
        ),
        (
            "process_analysis",
            {"events": [{"case_id": "c", "activity": "a"}]},
            [["data", "events", 0, "start"]],
        ),
        (
            "process_analysis",
            {**EVENTS, "costs": {"hourly_rate": -1}},
            [["data", "costs", "hourly_rate"]],
        ),
        (
            "process_analysis",
            {**EVENTS, "metrics": {"sales": None}},
            [["data", "metrics", "sales"]],
        ),
        ("process_analysis", {**EVENTS, "metrics": [1]}, [["data", "metrics"]]),
        (
            "optimization_review",
            {
                "n8n_executions": [
                    {"data": {"resultData": {"runData": {"A": [{"startTime": "x"}]}}}}
                ]
            },
            [["data", "n8n_executions", 0, "data", "resultData", "runData", "A", 0, "startTime"]],
        ),
        (
            "optimization_review",
            {"n8n_executions": [{"data": 5}]},
            [["data", "n8n_executions", 0, "data"]],
        ),
        ("data_interpretation", {"records": [1]}, [["data", "records", 0]]),
        ("data_interpretation", {"csv": ""}, [["data", "csv"]]),
        ("data_interpretation", {"series": []}, [["data"]]),
        ("trend_analysis", {"records": [{"a": 1}]}, [["data"]]),
        (
            "trend_analysis",
            {"series": [{"name": "r", "points": [{"t": "2026-01-01", "v": "1"}]}]},
            [["data", "series", 0, "points", 0, "v"]],
        ),
        (
            "trend_analysis",
            {"series": [{"name": "r", "points": []}]},
            [["data", "series", 0, "points"]],
        ),
        ("custom_analysis", {"records": [{"a": 1}]}, [["data"]]),
        ("test", {"sleep_s": 601}, [["data", "sleep_s"]]),
        ("test", {"sleep_s": True}, [["data", "sleep_s"]]),
        ("test", {"fail_attempts": -1}, [["data", "fail_attempts"]]),
    ],
)
def test_data_problems_are_located(kind: str, data: Any, expected: list[list[Any]]) -> None:
    assert locations({"type": kind, "data": data}) == expected


def test_messages_are_readable_and_never_echo_the_input() -> None:
    secret = "do-not-echo-" * 10
    (problem,) = problems({"type": "process_analysis", "data": {"runs": [secret]}})
    assert problem["msg"] == "Input should be an object"
    assert secret not in str(problem)


def test_at_most_fifty_problems_are_reported() -> None:
    events = [{"case_id": "c"} for _ in range(100)]
    assert len(problems({"type": "process_analysis", "data": {"events": events}})) == 50


def test_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submission, "MAX_ROWS", 3)
    runs = [{"steps": [{"name": "a", "started_at": 1}] * 2}] * 2
    (problem,) = problems({"type": "process_analysis", "data": {"runs": runs}})
    assert (problem["loc"], problem["type"]) == (["data"], "too_many_rows")
    submission.parse({"type": "process_analysis", "data": {"runs": runs[:1]}})


def test_nul_characters_are_refused_where_they_are() -> None:
    document = {"type": "test", "context": "a\x00b", "data": {"k\x00": 1, "rows": [{"v": "\x00"}]}}
    assert locations(document) == [["context"], ["data", "k\\u0000"], ["data", "rows", 0, "v"]]
    assert problems(document)[0]["type"] == "nul_char"


def test_the_raw_body_lets_the_nul_check_be_skipped_only_when_it_cannot_apply() -> None:
    document = {"type": "test", "data": {"x": "a\x00"}}
    with pytest.raises(submission.InvalidSubmission):
        submission.parse(document, raw=b'{"type": "test", "data": {"x": "a\\u0000"}}')
    literal = {"type": "test", "data": {"x": "\\u0000"}}  # a backslash, not a NUL
    assert submission.parse(literal, raw=b'{"type":"test","data":{"x":"\\\\u0000"}}')


def test_deeply_nested_data_with_a_nul_is_a_clean_422() -> None:
    deep: Any = "\x00"
    for _ in range(1100):
        deep = [deep]
    (problem,) = problems({"type": "test", "data": {"deep": deep}})
    assert problem["loc"][:2] == ["data", "deep"]
    assert len(problem["loc"]) == 1102


def test_data_nested_deeper_than_can_be_stored_is_422() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    (problem,) = problems({"type": "test", "data": {"deep": deep}})
    assert (problem["loc"], problem["type"]) == (["data"], "too_deep")
