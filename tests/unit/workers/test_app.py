"""The worker's composition root: task names, schedules, environment, CLI."""

from __future__ import annotations

import logging

import croniter
import pytest

from bi_engine.cli import build_parser
from bi_engine.settings import Settings
from workers import app, cli, progress

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [(0.5, "* * * * * */1"), (15, "* * * * * */15"), (60, "*/1 * * * *"), (900, "*/15 * * * *")],
)
def test_periods_become_cron_expressions(seconds: float, cron: str) -> None:
    assert app.every(seconds) == cron
    ticks = croniter.croniter(cron, 0)
    first, second = ticks.get_next(float), ticks.get_next(float)
    assert second - first == max(1, round(seconds))


def test_every_task_has_its_stable_name_and_maintenance_runs_periodically() -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    built = app.build_app(settings)
    assert {
        "bi.run_analysis",
        "bi.deliver_callback",
        "bi.maintenance.recover_stalled",
        "bi.maintenance.promote_starved",
        "bi.maintenance.prune",
    } <= set(built.tasks)
    assert built.tasks["bi.run_analysis"].queue == "analyses"
    assert built.tasks["bi.deliver_callback"].queue == "callbacks"
    periodic = {
        task.task.name: task.cron for task in built.periodic_registry.periodic_tasks.values()
    }
    assert periodic == {
        "bi.maintenance.recover_stalled": "* * * * * */15",  # stalled after 60 s
        "bi.maintenance.promote_starved": "* * * * * */5",
        "bi.maintenance.prune": "17 * * * *",
    }


def test_the_environment_is_made_safe_for_crewai(tmp_path: object) -> None:
    env = {"HOME": "/proc/definitely-not-writable", "CREWAI_DISABLE_TELEMETRY": "false"}
    app.prepare_environment(env)
    assert env["CREWAI_TRACING_ENABLED"] == "false"
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert env["CREWAI_DISABLE_TELEMETRY"] == "false"  # an operator's choice is kept
    assert env["HOME"] != "/proc/definitely-not-writable"
    assert env["XDG_DATA_HOME"].startswith(env["HOME"])


def test_procrastinate_per_job_lines_are_dropped_and_others_kept() -> None:
    app.quiet_procrastinate()
    app.quiet_procrastinate()
    target = logging.getLogger("procrastinate.worker")
    assert len([f for f in target.filters if isinstance(f, app._JobOutcomeFilter)]) == 1

    def record(action: str) -> logging.LogRecord:
        made = logging.LogRecord("procrastinate.worker", logging.ERROR, "", 0, "x", None, None)
        made.action = action
        return made

    assert not target.filter(record("job_error"))
    assert target.filter(record("side_task_failed"))


def test_the_worker_command_and_its_options() -> None:
    args = build_parser().parse_args(
        ["worker", "--concurrency", "3", "--queues", "analyses,callbacks", "--shutdown-grace", "2"]
    )
    assert args.handler is cli.run
    assert (args.concurrency, args.shutdown_grace) == (3, 2.0)
    assert cli._split(args.queues) == ("analyses", "callbacks")
    defaults = build_parser().parse_args(["worker"])
    assert (defaults.concurrency, defaults.queues) == (None, None)


def test_state_change_events_have_the_contract_shapes() -> None:
    assert progress.failed("timeout", "too slow").event == {
        "kind": "failed",
        "data": {"status": "failed", "error": {"code": "timeout", "message": "too slow"}},
    }
    retrying = progress.retrying(2, 4.1, "flaky")
    assert (retrying.terminal, retrying.event["kind"]) == (False, "status")
    assert retrying.event["data"] == {
        "status": "retrying",
        "attempt": 2,
        "retry_in_s": 4.1,
        "reason": "flaky",
    }
    assert progress.cancelled().event["data"]["status"] == "cancelled"
