"""Helpers shared by the reliability, security and fuzz suites: real processes, SSE, jobs."""
