"""``bi-engine demo`` end to end on the embedded PostgreSQL, exactly as a newcomer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]


def test_demo_on_embedded_postgres(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bi_engine",
            "demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--samples",
            "sales_series",
            "process_log",
            "--port",
            "18765",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "starting an embedded PostgreSQL" in output
    assert output.count("100%") >= 2
    assert "Manager approval" in output, "the process report names its bottleneck"
    assert "revenue" in output, "the sales report names its series"
    assert "What to open next" in output
    assert "/dashboard/" in output
    assert (tmp_path / "demo" / "pgdata" / "PG_VERSION").exists(), "data kept for next time"
    assert (tmp_path / "demo" / "logs" / "api.log").exists()
