"""Errors of the AI Teams."""

from __future__ import annotations


class Aborted(BaseException):
    """The job was cancelled or ran out of time while Your AI Team was working.

    A ``BaseException`` (like ``asyncio.CancelledError``), so crewai's ``except Exception``
    handlers and retries cannot swallow it on its way out of the crew.
    """

    def __init__(self, reason: str = "cancelled") -> None:
        super().__init__(reason)
        self.reason = reason
