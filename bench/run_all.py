"""Every benchmark of the project in one run, each in its own process, then ONE table.

    python bench/run_all.py              # quick modes: well under 20 minutes on 2 cores
    python bench/run_all.py --full       # each benchmark's own defaults (much longer)
    python bench/run_all.py --only submit,soak
    python bench/run_all.py --from-logs DIR   # re-read the outputs of an earlier run

Each benchmark prints its own figures beside a baseline measured in the same run; this
runner keeps each one's full output (``--logs``, default a fresh temporary folder) and
lifts the headline figures into one table: figure, engine, baseline, ratio. The machine
(CPUs, memory, Python, PostgreSQL, load average) is printed above it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@dataclass(frozen=True)
class Bench:
    name: str
    quick: tuple[str, ...]
    parse: Callable[[str], list[Row]]
    timeout_s: float = 600.0


@dataclass(frozen=True)
class Row:
    figure: str
    engine: str
    baseline: str
    ratio: str = ""


def _num(pattern: str, text: str, group: int = 1) -> str | None:
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(group) if found else None


def _ratio(a: str | None, b: str | None) -> str:
    try:
        return f"{float(str(a).replace(',', '')) / float(str(b).replace(',', '')):.2f}"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


def parse_submit(text: str) -> list[Row]:
    """The table after the blank line: baselines first, then POST /analyze levels."""
    table = text.split("jobs/tx", 2)[-1] if text.count("jobs/tx") >= 2 else text
    cells = {
        ln[:38].strip(): ln[38:].split()
        for ln in table.splitlines()
        if len(ln) > 38 and re.match(r"^\S", ln) and ln[38:].split()[:1] != []
    }
    raw = cells.get("procrastinate defer_async loop")
    ceiling = cells.get("INSERT+NOTIFY tx, 8 conns (DB)")
    levels = {k: v for k, v in cells.items() if k.startswith("POST /analyze,")}
    rows = []
    if levels and raw:
        label, best = max(levels.items(), key=lambda kv: float(kv[1][1]))
        rows.append(
            Row(
                f"submissions/s, best ({label[15:].strip()})",
                best[1],
                raw[1],
                _ratio(best[1], raw[1]),
            )
        )
        rows.append(Row("  baseline: procrastinate defer_async loop", "", raw[1]))
    if ceiling:
        rows.append(Row("  ceiling: INSERT+NOTIFY transactions/s (DB)", "", ceiling[1]))
    for label, values in cells.items():
        if "open loop" in label:
            rows.append(
                Row(
                    f"submit p50 / p99 ms {label[13:].strip()}",
                    f"{values[2]} / {values[3]}",
                    f"{raw[2]} / {raw[3]}" if raw else "",
                )
            )
    return rows


def parse_throughput(text: str) -> list[Row]:
    rows = []
    for label in ("submit (one transaction each)", "worker: queued -> done", "end to end"):
        found = re.search(re.escape(label) + r".*?([\d.]+) j/s\s+([\d.]+) j/s\s+([\d.]+)", text)
        if found:
            raw, engine, ratio = found.groups()
            rows.append(Row(f"jobs/s, {label}", engine, raw, ratio))
    median = _num(r"worker ratio, median of rounds\s+([\d.]+)", text)
    if median:
        rows.append(Row("worker ratio engine/raw, median of rounds", "", "", median))
    cpu = re.search(r"worker CPU per job\s+([\d.]+) ms\s+([\d.]+) ms", text)
    if cpu:
        rows.append(
            Row(
                "worker CPU ms per job",
                cpu.group(2),
                cpu.group(1),
                _ratio(cpu.group(2), cpu.group(1)),
            )
        )
    return rows


def parse_events(text: str) -> list[Row]:
    rows = []
    for found in re.finditer(
        r"(\d+) clients\s+SSE p50\s+([-\d.]+) ms\s+p99\s+([-\d.]+) ms.*?raw LISTEN/NOTIFY"
        r" p50\s+([-\d.]+) ms\s+p99\s+([-\d.]+) ms",
        text,
    ):
        clients, p50, p99, raw50, raw99 = found.groups()
        rows.append(
            Row(
                f"SSE commit->client ms, {clients} clients: p50 / p99",
                f"{p50} / {p99}",
                f"{raw50} / {raw99}",
                _ratio(p99, raw99),
            )
        )
    capacity = re.findall(r"(\d+) streams\s+RSS\s+([\d.]+) MiB\s+([\d.]+) KiB per connection", text)
    if capacity:
        streams, rss, per = capacity[-1]
        base = _num(r"server RSS with no stream: ([\d.]+) MiB", text)
        rows.append(
            Row(
                f"API RSS MiB, {streams} SSE streams (KiB per stream)", f"{rss} ({per})", base or ""
            )
        )
    return rows


def parse_analytics(text: str) -> list[Row]:
    rows = []
    for found in re.finditer(
        r"^(\S.*?)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)$", text, re.MULTILINE
    ):
        label, ours, peak, base, base_peak, ratio = found.groups()
        rows.append(
            Row(
                f"analytics s, {label} (peak MB)",
                f"{ours} ({peak})",
                f"{base} ({base_peak})",
                ratio,
            )
        )
    return rows


def parse_crew(text: str) -> list[Row]:
    rows = []
    for found in re.finditer(
        r"^([a-z_]+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+(\d+)$", text, re.MULTILINE
    ):
        kind, analytics, full, _overhead, calls = found.groups()
        rows.append(
            Row(f"AI Team ms, {kind} ({calls} LLM calls)", full, analytics, _ratio(full, analytics))
        )
    together = re.search(
        r"all (\d+) types at once: ([\d.]+) ms \(one after another: ([\d.]+) ms\)", text
    )
    if together:
        rows.append(
            Row(
                f"AI Teams ms, {together.group(1)} types at once vs one after another",
                together.group(2),
                together.group(3),
                _ratio(together.group(2), together.group(3)),
            )
        )
    return rows


def parse_soak(text: str) -> list[Row]:
    rows = []
    found = {
        m.group(1).strip(): m.groups()[1:]
        for m in re.finditer(
            r"^(API under load|worker|idle API \(baseline\))"
            r"\s+([\d.]+)\s+([\d.]+)\s+([+-][\d.]+)\s+([+-][\d.]+)$",
            text,
            re.MULTILINE,
        )
    }
    idle = found.get("idle API (baseline)")
    for name in ("API under load", "worker"):
        if name in found:
            start, end, _growth, slope = found[name]
            rows.append(
                Row(
                    f"soak RSS MiB {name}: start->end (MiB/h)",
                    f"{start} -> {end} ({slope})",
                    f"{idle[0]} -> {idle[1]} ({idle[3]})" if idle else "",
                )
            )
    jobs = re.search(
        r"jobs submitted (\d+), completed (\d+).*?p50 ([\d.]+) ms, p99 ([\d.]+) ms", text
    )
    if jobs:
        rows.append(
            Row(
                "soak jobs submitted / completed; submit p50 / p99",
                f"{jobs.group(1)} / {jobs.group(2)}; {jobs.group(3)} / {jobs.group(4)}",
                "",
            )
        )
    return rows


BENCHES = (
    Bench("submit", ("--levels", "1,8,32", "--seconds", "3", "--rate", "200"), parse_submit),
    Bench(
        "throughput",
        ("--jobs", "2000", "--rounds", "4", "--log-level", "WARNING"),
        parse_throughput,
    ),
    Bench("events", ("--clients", "100", "--events", "100", "--max-clients", "1000"), parse_events),
    Bench("analytics", ("--quick",), parse_analytics),
    Bench("crew", ("--rounds", "3"), parse_crew),
    Bench("soak", ("--quick",), parse_soak, timeout_s=400),
)


def machine() -> str:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    pg = "unknown"
    try:
        import psycopg

        url = os.environ.get("BI_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            pg = str(row[0]) if row else pg
    except Exception as exc:  # the table is still worth printing
        pg = f"unreachable ({type(exc).__name__})"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc {os.cpu_count()}, memory {mem_kib / 2**20:.1f} GiB, Python"
        f" {platform.python_version()}, PostgreSQL {pg}, load average {load}"
    )


def run(bench: Bench, full: bool, logs: Path) -> tuple[str, float, int]:
    command = [sys.executable, str(BENCH / f"{bench.name}.py"), *(() if full else bench.quick)]
    started = time.monotonic()
    log = logs / f"{bench.name}.log"
    with log.open("w") as out:
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=bench.timeout_s * (6 if full else 1),
            )
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
    return log.read_text(errors="replace"), time.monotonic() - started, code


def table(results: list[tuple[Bench, str, float, int]]) -> str:
    widths = (62, 26, 24, 7)
    head = ("figure", "engine", "same-run baseline", "ratio")
    lines = ["".join(f"{h:<{w}}" for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.append("-" * sum(widths))
    for bench, text, seconds, code in results:
        status = "" if code == 0 else f"  (exit {code})"
        lines.append(f"[{bench.name}] {seconds:.0f} s{status}")
        rows = bench.parse(text) or [Row("no figures found: see its log", "", "")]
        for row in rows:
            cells = (f"  {row.figure}", row.engine, row.baseline, row.ratio)
            lines.append("".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each benchmark's own defaults")
    parser.add_argument(
        "--only", help="comma-separated names: " + ",".join(b.name for b in BENCHES)
    )
    parser.add_argument("--logs", type=Path, help="folder for each benchmark's full output")
    parser.add_argument("--from-logs", type=Path, help="parse the logs of an earlier run")
    args = parser.parse_args()
    chosen = [b for b in BENCHES if not args.only or b.name in args.only.split(",")]
    print(machine(), flush=True)
    results = []
    if args.from_logs:
        for bench in chosen:
            log = args.from_logs / f"{bench.name}.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            results.append((bench, text, 0.0, 0 if text else -2))
    else:
        logs = args.logs or Path(tempfile.mkdtemp(prefix="bi-bench-"))
        logs.mkdir(parents=True, exist_ok=True)
        print(f"full outputs in {logs}", flush=True)
        for bench in chosen:
            print(f"running {bench.name}...", flush=True)
            results.append((bench, *run(bench, args.full, logs)))
    total = sum(r[2] for r in results)
    print(f"\n{len(results)} benchmarks in {total / 60:.1f} min; {machine()}\n")
    print(table(results))


if __name__ == "__main__":
    main()
