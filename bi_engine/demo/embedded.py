"""An embedded PostgreSQL (``pgserver``) in a local data folder, for the demo."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from bi_engine.errors import ConfigurationError


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) a private PostgreSQL in ``data_dir``; yield its URL; stop it after.

    The data stays in ``data_dir``, so a second demo run finds the previous analyses.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded PostgreSQL needs the 'embedded' extra: pip install -e '.[embedded]' "
            "(or set DATABASE_URL to a PostgreSQL server)"
        ) from exc
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
