"""The process environment crewai needs, set before crewai is first imported.

crewai writes a key file under the data directory at import (an unwritable HOME crashes the
import), phones home for telemetry, tracing and version checks (seconds of delay with no
network) and litellm fetches a price list. This module makes all of that local and quiet.
It runs when ``workers.crew`` is imported, which every module that imports crewai does first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

FORCED: Final = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}
STORAGE_NAME: Final = "bi-engine-crews"
"""crewai's data folder for this engine; each process gets its own sub-folder."""


def prepare(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Quiet, local, writable: returns the variables it set."""
    env = os.environ if environ is None else environ
    changed: dict[str, str] = {}
    for key, value in FORCED.items():
        if env.get(key) != value:
            env[key] = changed[key] = value
    home = env.get("HOME") or ""
    if not _writable(home):
        env["HOME"] = changed["HOME"] = _scratch("home")
    data = env.get("XDG_DATA_HOME") or str(Path(env["HOME"]) / ".local" / "share")
    if not _writable(data):
        data = _scratch("data")
    if env.get("XDG_DATA_HOME") != data:
        env["XDG_DATA_HOME"] = changed["XDG_DATA_HOME"] = data
    if not env.get("CREWAI_STORAGE_DIR"):
        own = f"{STORAGE_NAME}/{os.getpid()}"
        env["CREWAI_STORAGE_DIR"] = changed["CREWAI_STORAGE_DIR"] = own
        if environ is None:
            atexit.register(_remove, Path(data) / STORAGE_NAME / str(os.getpid()))
    return changed


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _writable(path: str) -> bool:
    """Can crewai create its folders here (the folder or its nearest existing parent)?"""
    if not path:
        return False
    candidate = Path(path)
    while not candidate.exists():
        if candidate.parent == candidate:
            return False
        candidate = candidate.parent
    return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)


def _scratch(kind: str) -> str:
    folder = Path(tempfile.gettempdir()) / f"bi-engine-{os.getuid()}" / kind
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


class _SilentField:
    """Reads a pydantic field like pydantic's deprecated-field descriptor, without warning."""

    def __init__(self, name: str) -> None:
        self.field_name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            raise AttributeError(self.field_name)
        return obj.__dict__[self.field_name]

    def __set__(self, obj: Any, value: Any) -> None:  # pydantic's __setattr__ comes first
        raise AttributeError(self.field_name)


def silence_deprecated_fields(*classes: type) -> list[str]:
    """crewai reads its own deprecated fields (``function_calling_llm``) on every Agent and
    Crew it builds and runs, so each job would warn a dozen times (and fail in processes that
    turn warnings into errors). The engine never sets those fields: read them silently."""
    from pydantic._internal._model_construction import _DeprecatedFieldDescriptor

    silenced = []
    for cls in classes:
        for name, attr in list(vars(cls).items()):
            if isinstance(attr, _DeprecatedFieldDescriptor) and attr.wrapped_property is None:
                setattr(cls, name, _SilentField(name))
                silenced.append(f"{cls.__name__}.{name}")
    return silenced


class LocalLocks:
    """crewai's named locks as in-process locks.

    crewai guards its (per-process, see :func:`prepare`) SQLite task log with a file lock
    in the temp folder that waiters poll every quarter second, or with Redis when
    ``REDIS_URL`` is set; concurrent crews of one worker then queue behind each other.
    Threading locks hand over at once and never touch Redis.
    """

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def __call__(self, name: str, *, timeout: float = 120.0) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"crewai lock {name!r} was busy for {timeout:g} s")
        try:
            yield
        finally:
            lock.release()
