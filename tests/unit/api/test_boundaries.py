"""The API process never loads the worker stack (import time, memory, CONTRACT section 1)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

FORBIDDEN = ("workers", "crewai", "litellm", "numpy", "pandas", "scipy", "statsmodels")


def test_importing_the_api_loads_no_worker_code() -> None:
    code = (
        "import sys; import bi_engine.api.app, bi_engine.cli;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    assert found == ""
