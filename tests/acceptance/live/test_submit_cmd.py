"""``bi-engine submit``: the real command against a real server and worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bi_engine.cli import main
from bi_engine.settings import Settings
from tests.acceptance.live.conftest import API, auth, bearer
from tests.support.processes import ApiServer, Process

pytestmark = [pytest.mark.acceptance]


def _submit(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "bi_engine", "submit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_follow_shows_progress_and_prints_the_report(
    server: ApiServer, worker: Process, live_settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"sleep_s": 1}))
    token = bearer(live_settings, "alice")
    done = _submit("test", str(data), "--follow", "--url", server.url, "--token", token)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# ")  # the report, in Markdown, on stdout
    assert "Completed" in done.stderr
    assert "100%" in done.stderr


def test_a_whole_submit_body_with_a_priority_prints_the_202_document(
    server: ApiServer, live_settings: Settings, tmp_path: Path
) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"type": "test", "data": {"sleep_s": 0}, "context": "cli"}))
    token = bearer(live_settings, "alice")
    done = _submit("test", str(body), "--priority", "high", "--url", server.url, "--token", token)
    assert done.returncode == 0, done.stderr
    accepted = json.loads(done.stdout)
    assert accepted["status"] == "queued"
    status = httpx.get(
        f"{server.url}{API}/jobs/{accepted['job_id']}", headers=auth(live_settings, "alice")
    ).json()
    assert status["priority"] == "high"


def test_bad_input_and_refusals_exit_2_with_a_message(
    server: ApiServer, live_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = bearer(live_settings, "alice")
    mismatch = tmp_path / "mismatch.json"
    mismatch.write_text(json.dumps({"type": "trend_analysis", "data": {}}))
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    for args in (
        ("test", str(mismatch), "--url", server.url, "--token", token),
        ("test", str(not_json), "--url", server.url, "--token", token),
        ("test", str(tmp_path / "missing.json"), "--url", server.url, "--token", token),
        ("test", str(empty), "--url", "http://127.0.0.1:9", "--token", token),
    ):
        assert main(["submit", *args]) == 2, args
        assert capsys.readouterr().err.startswith("bi-engine: ")
    assert main(["submit", "test", str(empty), "--url", server.url, "--token", "nope"]) == 2
    assert "401" in capsys.readouterr().err


async def test_a_cancelled_job_ends_the_follow_with_exit_1(
    server: ApiServer, worker: Process, live_settings: Settings, tmp_path: Path
) -> None:
    data = tmp_path / "long.json"
    data.write_text(json.dumps({"sleep_s": 30}))
    token = bearer(live_settings, "alice")
    command = [sys.executable, "-m", "bi_engine", "submit", "test", str(data), "--follow"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--url",
        server.url,
        "--token",
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 20)
        job_id = line.decode().split()[1]  # "Job <id> accepted (test)"
        async with httpx.AsyncClient(base_url=server.url) as http:
            await asyncio.sleep(1.0)
            cancel = await http.post(
                f"{API}/jobs/{job_id}/cancel", headers=auth(live_settings, "alice")
            )
            assert cancel.status_code in (200, 202), cancel.text
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 1
        assert "cancelled" in err.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
