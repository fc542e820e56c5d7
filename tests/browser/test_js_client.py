"""The JavaScript client and its Pinia store, under node's test runner, against the engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from tests.browser.conftest import CLIENT
from tests.browser.engine import Engine

pytestmark = pytest.mark.acceptance

NODE = shutil.which("node")


def run_node_tests(engine: Engine, *files: str) -> str:
    if NODE is None:
        pytest.skip("node is absent: install Debian's nodejs package")
    user = f"node-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "BI_ENGINE_URL": engine.url,
        "BI_ENGINE_TOKEN": engine.token(user),
        "BI_ENGINE_OTHER_TOKEN": engine.token(f"{user}-other"),
    }
    done = subprocess.run(
        [NODE, "--test", "--test-reporter=spec", *files],
        cwd=CLIENT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "ℹ fail 0" in output, output
    assert "ℹ skipped 0" in output, output
    return output


def test_the_client_module_against_a_running_engine(engine: Engine) -> None:
    output = run_node_tests(engine, "test/client.test.mjs")
    assert "ℹ pass 12" in output, output


def test_the_pinia_store_against_a_running_engine(engine: Engine) -> None:
    if not (CLIENT / "node_modules" / "pinia").is_dir():
        pytest.skip("pinia is not installed: run `npm ci --prefix clients/js`")
    output = run_node_tests(engine, "test/store.test.mjs")
    assert "ℹ pass 3" in output, output
