"""Real API and worker processes on the test's own database, all stopped at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import figures
from tests.support.processes import ProcessGroup


@pytest.fixture
def processes() -> Iterator[ProcessGroup]:
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.stop_all()


def dump_logs(group: ProcessGroup, tail: int = 3000) -> str:
    """The end of every process log, for an assertion message."""
    parts = []
    for process in [*group.processes, *(s.process for s in group.servers if s.process)]:
        parts.append(f"--- {' '.join(process.args)} ({process.log_path.name})\n")
        parts.append(process.log()[-tail:])
    return "".join(parts)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summarize("reliability", terminalreporter)
