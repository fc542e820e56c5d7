"""Load the AI Team package first: it prepares crewai's environment before crewai loads."""

import workers.crew  # noqa: F401
