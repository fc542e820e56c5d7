"""Throughput: engine ``test`` jobs beside raw procrastinate no-op jobs, same run.

Both sides run in this process with the same worker (procrastinate's Worker), the same
concurrency and the same connection pool settings, on a throwaway database:

- raw: N no-op jobs deferred one transaction each, then drained;
- engine: N ``test`` jobs submitted through ``bi_engine.submit.create_job`` (the API's use
  case: row, input, queue job, ``queued`` event, audit), then drained by the engine's job
  lane: load, run, progress, result, ``completed`` and their events and NOTIFYs.

The jobs of each side are split into rounds that alternate raw and engine (the order flips
every round), so a machine that gets busier or quieter meanwhile weighs on both sides alike.
Rates are total jobs over total time per side; the ratio is engine/raw.

    python bench/throughput.py [--jobs 5000] [--concurrency 8] [--rounds 10] [--loop uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import procrastinate
import psycopg
from psycopg import sql

from bi_engine import constants, submit
from bi_engine.auth.principal import Principal
from bi_engine.db import connection, migrate
from bi_engine.domain.submission import AnalysisRequest
from bi_engine.logging import configure_logging
from bi_engine.settings import Settings
from workers import app as worker_app
from workers import runners

SCHEMA = "bi"
RAW_TASK = "bench.noop"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Phase:
    submit_s: float
    drain_s: float
    jobs: int
    drain_cpu_s: float = 0.0
    """CPU time of this process (the worker) while draining."""

    @property
    def submit_rate(self) -> float:
        return self.jobs / self.submit_s

    @property
    def drain_rate(self) -> float:
        return self.jobs / self.drain_s

    @property
    def end_to_end_rate(self) -> float:
        return self.jobs / (self.submit_s + self.drain_s)


@contextlib.contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    name = f"bi_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    try:
        migrate.upgrade(url, SCHEMA)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.asynccontextmanager
async def opened(settings: Settings, options: worker_app.WorkerOptions) -> AsyncIterator[Any]:
    async with worker_app.make_pool(settings, worker_app.pool_size(options)) as pool:
        app = worker_app.build_app(settings)
        app.task(name=RAW_TASK, queue="raw")(_noop)
        async with app.open_async(pool=pool):
            yield app, pool


async def _noop() -> None:
    return None


async def _drain(workers: list[Any]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(w.run() for w in workers))
    return time.perf_counter() - started, time.process_time() - cpu


async def bench_raw(settings: Settings, options: worker_app.WorkerOptions, jobs: int) -> Phase:
    async with opened(settings, options) as (app, _pool):
        conn = await connection.connect(settings.require_database_url(), SCHEMA)
        started = time.perf_counter()
        for _ in range(jobs):
            async with conn.transaction():
                await app.configure_task(RAW_TASK, connection=conn, queue="raw").defer_async()
        submitted = time.perf_counter() - started
        await conn.close()
        lane = procrastinate.worker.Worker(
            app,
            queues=["raw"],
            concurrency=options.concurrency,
            wait=False,
            install_signal_handlers=False,
            listen_notify=True,
        )
        drained, cpu = await _drain([lane])
        return Phase(submitted, drained, jobs, cpu)


async def bench_engine(
    settings: Settings, options: worker_app.WorkerOptions, jobs: int
) -> tuple[Phase, dict[str, int]]:
    async with opened(settings, options) as (app, pool):
        conn = await connection.connect(settings.require_database_url(), SCHEMA)
        request = AnalysisRequest.model_validate({"type": "test", "data": {"bench": True}})
        caller = submit.Caller(principal=Principal(user_id="bench"))
        started = time.perf_counter()
        for _ in range(jobs):
            await submit.create_job(conn, app, settings, caller, request)
        submitted = time.perf_counter() - started
        listener = await psycopg.AsyncConnection.connect(
            settings.require_database_url(), autocommit=True
        )
        await listener.execute(
            sql.SQL("LISTEN {}").format(sql.Identifier(constants.events_channel(SCHEMA)))
        )
        notifies = asyncio.ensure_future(_count_notifies(listener))
        engine = worker_app.make_engine(
            app, settings, pool, options, registry=runners.default_registry(extensions=())
        )
        lanes = worker_app.make_lanes(app, settings, _job_lane_only(options), engine, wait=False)
        drained, cpu = await _drain(lanes)
        await asyncio.sleep(0.5)
        notifies.cancel()
        counts = await _check(conn, jobs)
        counts["notifies"] = await _notify_total(notifies)
        await listener.close()
        await conn.close()
        return Phase(submitted, drained, jobs, cpu), counts


def _job_lane_only(options: worker_app.WorkerOptions) -> worker_app.WorkerOptions:
    return worker_app.WorkerOptions(
        concurrency=options.concurrency, queues=(constants.QUEUE_ANALYSES,), maintenance_lane=False
    )


_NOTIFIED: list[int] = []


async def _count_notifies(listener: psycopg.AsyncConnection[Any]) -> None:
    _NOTIFIED.append(0)
    async for _ in listener.notifies():
        _NOTIFIED[-1] += 1


async def _notify_total(task: asyncio.Future[None]) -> int:
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return _NOTIFIED[-1]


async def _check(conn: psycopg.AsyncConnection[Any], jobs: int) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'completed') AS completed,"
        " (SELECT count(*) FROM analysis_events) AS events FROM analyses"
    )
    found = await cursor.fetchone()
    assert found is not None
    await conn.execute("TRUNCATE analyses CASCADE")
    if found["completed"] != jobs:
        raise SystemExit(f"only {found['completed']} of {jobs} engine jobs completed")
    return {"completed": int(found["completed"]), "events": int(found["events"])}


async def run(args: argparse.Namespace) -> None:
    admin_url = args.admin_url or os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL
    options = worker_app.WorkerOptions(concurrency=args.concurrency)
    per_round = max(1, args.jobs // args.rounds)
    with throwaway_database(admin_url) as url:
        settings = Settings(
            database_url=url, db_schema=SCHEMA, log_level=args.log_level, log_format="json"
        )
        configure_logging(settings, stream=open(os.devnull, "w"))  # noqa: SIM115
        raws: list[Phase] = []
        engines: list[Phase] = []
        checks: list[dict[str, int]] = []
        for index in range(args.rounds):
            if index % 2:
                phase, counts = await bench_engine(settings, options, per_round)
                raws.append(await bench_raw(settings, options, per_round))
            else:
                raws.append(await bench_raw(settings, options, per_round))
                phase, counts = await bench_engine(settings, options, per_round)
            engines.append(phase)
            checks.append(counts)
    report(args, raws, engines, checks)


def _total(phases: list[Phase]) -> Phase:
    return Phase(
        submit_s=sum(p.submit_s for p in phases),
        drain_s=sum(p.drain_s for p in phases),
        jobs=sum(p.jobs for p in phases),
        drain_cpu_s=sum(p.drain_cpu_s for p in phases),
    )


def report(
    args: argparse.Namespace,
    raws: list[Phase],
    engines: list[Phase],
    checks: list[dict[str, int]],
) -> None:
    raw, engine = _total(raws), _total(engines)
    print(
        f"{engine.jobs} jobs per side in {args.rounds} alternating rounds, worker concurrency "
        f"{args.concurrency}, {args.loop} loop, worker log level {args.log_level}"
    )
    print(f"{'':34}{'raw procrastinate':>20}{'engine test jobs':>20}{'ratio':>8}")
    for label, attr in (
        ("submit (one transaction each)", "submit_rate"),
        ("worker: queued -> done", "drain_rate"),
        ("end to end (submit, then drain)", "end_to_end_rate"),
    ):
        a, b = getattr(raw, attr), getattr(engine, attr)
        print(f"{label:34}{a:>15.0f} j/s{b:>15.0f} j/s{b / a:>8.2f}")
    ratios = sorted(e.drain_rate / r.drain_rate for r, e in zip(raws, engines, strict=True))
    median = (
        ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1 :][:2]) / 2
    )
    print(f"{'worker ratio per round (sorted)':34}{' '.join(f'{x:.2f}' for x in ratios)}")
    print(f"{'worker ratio, median of rounds':34}{median:>48.2f}")
    raw_cpu, engine_cpu = (p.drain_cpu_s / p.jobs * 1000 for p in (raw, engine))
    print(f"{'worker CPU per job':34}{raw_cpu:>16.2f} ms{engine_cpu:>16.2f} ms")
    print(
        f"engine check: {sum(c['completed'] for c in checks)} completed, "
        f"{sum(c['events'] for c in checks)} events, "
        f"{sum(c['notifies'] for c in checks)} NOTIFYs from the worker"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per side")
    parser.add_argument("--admin-url", help="a maintenance database URL (default: DATABASE_URL)")
    parser.add_argument("--log-level", default="INFO", help="the worker's log level")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="uvloop",
        help="event loop of both sides (the worker command uses uvloop)",
    )
    args = parser.parse_args()
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run(args))


if __name__ == "__main__":
    main()
