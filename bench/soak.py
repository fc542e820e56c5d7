"""Soak: API and worker memory over a long run of steady traffic, beside an idle API process.

    python bench/soak.py [--seconds 600] [--rate 20] [--followers 4]
    python bench/soak.py --quick          # 90 s

A fresh database; one ``bi-engine serve`` and one ``bi-engine worker`` take ``--rate``
``test`` submissions per second (sleep_s 0.2) for ``--seconds`` while ``--followers``
clients follow jobs over SSE and poll their status. Every 5 s the RSS of each process is
sampled. The same-run baseline is a second API process on the same database that gets no
traffic at all: whatever it grows by is the allocator and the runtime settling, not a leak.

Printed: RSS after warm-up (the first fifth), at the end, the growth and its slope per
hour for each process (least squares over the post-warm-up samples), jobs completed, and
the submission latency. Traffic goes to 127.0.0.1 only and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bi_engine.db import migrate  # noqa: E402
from tests import pg  # noqa: E402  (the same throwaway-database helpers as the tests)
from tests.support import jobs  # noqa: E402
from tests.support.processes import ApiServer, Process, worker  # noqa: E402

SAMPLE_S = 5.0


@dataclass
class Series:
    """RSS samples (seconds since start, MiB) of one process."""

    name: str
    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)

    def sample(self, t: float) -> None:
        try:
            rss = psutil.Process(self.pid).memory_info().rss / 2**20
        except psutil.Error:
            return
        self.samples.append((t, rss))

    def after(self, warmup_s: float) -> list[tuple[float, float]]:
        return [s for s in self.samples if s[0] >= warmup_s] or self.samples[-1:]

    def row(self, warmup_s: float) -> str:
        kept = self.after(warmup_s)
        start, end = kept[0][1], kept[-1][1]
        return (
            f"{self.name:<26}{start:>10.1f}{end:>10.1f}{end - start:>+10.1f}"
            f"{slope_per_hour(kept):>+14.1f}"
        )


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    covariance = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return covariance / var * 3600


@dataclass
class Traffic:
    submitted: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)
    streams: int = 0


async def submitter(
    http: httpx.AsyncClient,
    settings: Any,
    rate: float,
    until: float,
    traffic: Traffic,
    ids: list[str],
) -> None:
    """Open loop: one submission every 1/rate s (each in its own task); ids appended."""
    headers = [jobs.auth(settings, f"soak{u}") for u in range(8)]

    async def one(i: int) -> None:
        started = time.monotonic()
        body = {"type": "test", "data": {"sleep_s": 0.2, "i": i}}
        response = await http.post(f"{jobs.API}/analyze", json=body, headers=headers[i % 8])
        traffic.latencies.append(time.monotonic() - started)
        if response.status_code == 202:
            traffic.submitted += 1
            ids.append(str(response.json()["job_id"]))
        else:
            traffic.refused += 1

    tasks: set[asyncio.Task[None]] = set()
    i = 0
    next_at = time.monotonic()
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        next_at += 1 / rate
    await asyncio.gather(*tasks)


async def follower(
    http: httpx.AsyncClient, settings: Any, ids: list[str], until: float, traffic: Traffic
) -> None:
    """Follow the newest job over SSE to its end, read its status and result, repeat."""
    headers = jobs.auth(settings, "soak0", role="admin")
    while time.monotonic() < until:
        if not ids:
            await asyncio.sleep(0.2)
            continue
        job = ids[-1]
        async with http.stream("GET", f"{jobs.API}/jobs/{job}/events", headers=headers) as r:
            async for _ in r.aiter_lines():
                pass
        traffic.streams += 1
        await http.get(f"{jobs.API}/jobs/{job}", headers=headers)
        await http.get(f"{jobs.API}/jobs/{job}/result", headers=headers)


async def sampler(series: list[Series], started: float, until: float) -> None:
    while time.monotonic() < until:
        for one in series:
            one.sample(time.monotonic() - started)
        await asyncio.sleep(SAMPLE_S)
    for one in series:
        one.sample(time.monotonic() - started)


async def soak(url: str, args: argparse.Namespace, log_dir: Path) -> None:
    settings = jobs.settings_for(url)
    env = {"BI_RATE_LIMITS": "false"}
    api = ApiServer(url, log_dir, env).start()
    idle = ApiServer(url, log_dir, env).start()
    work: Process = worker(url, log_dir / "worker.log").start()
    try:
        await asyncio.sleep(3)  # the worker imports its runners
        assert api.process is not None
        assert idle.process is not None
        series = [
            Series("API under load", api.process.pid),
            Series("worker", work.pid),
            Series("idle API (baseline)", idle.process.pid),
        ]
        started = time.monotonic()
        until = started + args.seconds
        traffic = Traffic()
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=api.url, timeout=60, limits=limits) as http:
            ids: list[str] = []
            submitting = asyncio.create_task(
                submitter(http, settings, args.rate, until, traffic, ids)
            )
            followers = [
                asyncio.create_task(follower(http, settings, ids, until, traffic))
                for _ in range(args.followers)
            ]
            sampling = asyncio.create_task(sampler(series, started, until))
            await asyncio.gather(submitting, *followers, sampling)
        counts = await jobs.await_all_terminal(url, traffic.submitted, timeout=120)
        report(series, traffic, counts, args)
    finally:
        work.stop()
        idle.stop()
        api.stop()


def report(series: list[Series], traffic: Traffic, counts: Any, args: argparse.Namespace) -> None:
    warmup = args.seconds / 5
    print(
        f"soak {args.seconds:.0f} s at {args.rate:g} submissions/s, {args.followers} SSE"
        f" followers; RSS in MiB after a {warmup:.0f} s warm-up; {os.cpu_count()} CPUs,"
        f" load {os.getloadavg()[0]:.2f}"
    )
    print(f"{'process':<26}{'start':>10}{'end':>10}{'growth':>10}{'slope MiB/h':>14}")
    for one in series:
        print(one.row(warmup))
    lat = sorted(traffic.latencies)
    p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
    p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0.0
    print(
        f"jobs submitted {traffic.submitted}, completed {counts['completed']},"
        f" refused {traffic.refused}; streams followed {traffic.streams};"
        f" submit p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--followers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="90 s instead of --seconds")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 90.0
    admin = os.environ.get("BI_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = pg.unique_name("bi_bench_soak")
    url = pg.create_database(admin, name)
    try:
        migrate.upgrade(url, "bi")
        with tempfile.TemporaryDirectory(prefix="bi-soak-") as tmp:
            asyncio.run(soak(url, args, Path(tmp)))
    finally:
        pg.drop_database(admin, name)


if __name__ == "__main__":
    main()
