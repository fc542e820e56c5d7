"""A real ``bi-engine serve`` (rate limits off) on its own database for the fuzzer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pg
from tests.support import figures
from tests.support.processes import ApiServer


@pytest.fixture(scope="module")
def fuzz_server(
    pg_admin_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    name = pg.unique_name("bi_fuzz")
    url = pg.create_database(pg_admin_url, name, template=template_database)
    api = ApiServer(url, tmp_path_factory.mktemp("fuzz"), {"BI_RATE_LIMITS": "false"}).start()
    try:
        yield api
    finally:
        api.stop()
        pg.drop_database(pg_admin_url, name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures.summarize("fuzz", terminalreporter)
