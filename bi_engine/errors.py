"""The engine's error root. One handler turns it into the contract's error envelope."""

from __future__ import annotations

from typing import Any, ClassVar


class BIError(Exception):
    """Something went wrong."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)


class ConfigurationError(BIError):
    """The engine is not configured correctly."""

    code = "configuration_error"
