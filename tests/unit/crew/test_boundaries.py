"""Where crewai may and may not be: never in the API process or the CLI, only under
``workers.crew``; the worker's registry gets the AI Team runner for every analysis type."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.crew.support import ANALYSIS_TYPES
from workers.crew import environment
from workers.crew.runner import CrewRunner

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_the_api_app_and_cli_never_import_crewai() -> None:
    code = (
        "from bi_engine.api.app import create_app\n"
        "from bi_engine.settings import Settings\n"
        "create_app(Settings(database_url='postgresql://x@127.0.0.1/none'))\n"
        "import bi_engine.cli"
    )
    loaded = loaded_after(code)
    assert "bi_engine" in loaded
    assert not loaded & {"crewai", "litellm", "workers", "numpy", "pandas"}


def test_narration_never_imports_crewai() -> None:
    loaded = loaded_after(
        "import workers.narration.chain, workers.narration.narrative, workers.narration.budget"
    )
    assert "litellm" in loaded
    assert "crewai" not in loaded


async def test_worker_registry_runs_every_analysis_type_with_the_ai_team() -> None:
    from workers.runners import default_registry

    registry = default_registry()
    first = await registry.resolve("process_analysis")  # loads the extension in a thread
    assert isinstance(first, CrewRunner)
    for analysis_type in ANALYSIS_TYPES:
        assert registry.get(analysis_type) is first


def test_environment_is_made_writable_and_quiet(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {"HOME": str(blocker / "home"), "CREWAI_DISABLE_TELEMETRY": "false"}
    changed = environment.prepare(env)
    assert env["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert env["CREWAI_TRACING_ENABLED"] == "false"
    assert env["HOME"] != str(blocker / "home")
    assert Path(env["HOME"]).is_dir()
    assert env["XDG_DATA_HOME"].startswith(env["HOME"])
    assert env["CREWAI_STORAGE_DIR"] == f"{environment.STORAGE_NAME}/{os.getpid()}"
    assert {"HOME", "XDG_DATA_HOME", "CREWAI_STORAGE_DIR"} <= set(changed)
    mine = {"HOME": str(tmp_path), "CREWAI_STORAGE_DIR": "x"}
    environment.prepare(mine)
    assert mine["HOME"] == str(tmp_path)
    assert mine["CREWAI_STORAGE_DIR"] == "x"


def test_crewai_locks_are_in_process() -> None:
    from crewai_core import lock_store

    assert isinstance(lock_store._backend, environment.LocalLocks)
    with lock_store.lock("sqlite:/tmp/x"), pytest.raises(TimeoutError):  # noqa: SIM117
        with lock_store.lock("sqlite:/tmp/x", timeout=0.05):
            pass  # the same lock, held: busy
