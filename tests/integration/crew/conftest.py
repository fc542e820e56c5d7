"""Load the AI Team package first (crewai's environment), and share the worker fixtures."""

import workers.crew  # noqa: F401
from tests.integration.workers.conftest import app, conn, deps, pool  # noqa: F401
