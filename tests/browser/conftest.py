"""One real engine for the front-end suites, Debian's chromium driven by playwright, and a
static site on another origin. Screenshots go to ``test-artifacts/browser/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pg
from tests.browser.engine import Engine, free_port, static_site

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SITE = Path(__file__).resolve().parent / "site"
CLIENT = ROOT / "clients" / "js"
CHROMIUM = Path(os.environ.get("BI_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def engine_database(pg_admin_url: str, template_database: str) -> Iterator[str]:
    """A fresh migrated database for the engine the front-end suites share."""
    name = pg.unique_name("bi_front")
    url = pg.create_database(pg_admin_url, name, template=template_database)
    try:
        yield url
    finally:
        pg.drop_database(pg_admin_url, name)


@pytest.fixture(scope="package")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``/site/`` = tests/browser/site, ``/client/`` = clients/js, served as they are."""
    root = tmp_path_factory.mktemp("site")
    (root / "site").symlink_to(SITE, target_is_directory=True)
    (root / "client").symlink_to(CLIENT, target_is_directory=True)
    return root


@pytest.fixture(scope="package")
def other_origin(site_root: Path) -> Iterator[str]:
    """A front end on another origin, listed in the engine's BI_CORS_ORIGINS."""
    with static_site(site_root, free_port()) as url:
        yield url


@pytest.fixture(scope="package")
def foreign_origin(site_root: Path) -> Iterator[str]:
    """The same pages on an origin the engine does NOT allow."""
    with static_site(site_root, free_port()) as url:
        yield url


@pytest.fixture(scope="package")
def engine(
    engine_database: str, other_origin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """``bi-engine serve`` + ``bi-engine worker`` subprocesses, stopped at the end."""
    running = Engine(engine_database, tmp_path_factory.mktemp("engine-logs"), (other_origin,))
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """What the page logged: errors (CSP violations included) fail the test."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def record(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; a screenshot of its last state is always saved."""
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    console = Console()
    tab.on("console", console.record)
    tab.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    tab.console = console
    try:
        yield tab
    finally:
        shoot(tab, f"{request.node.name}-final")
        context.close()


def shoot(tab: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    if not tab.is_closed():
        tab.screenshot(path=str(path), full_page=True)
    return path
