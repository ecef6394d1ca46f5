"""Conveniences for running on a laptop: the embedded PostgreSQL and a dev secret.

Nothing here is used when DATABASE_URL and the JWT keys come from the
environment, and none of it is allowed with APP_ENV=production.
"""

from __future__ import annotations

import logging
import os
import secrets
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("APP_DATA_DIR") or PROJECT_ROOT / ".data")
DEV_SECRET_FILE = DATA_DIR / "dev-jwt-secret"


def start_embedded_postgres(pgdata: Path, *, cleanup_mode: str | None = "stop"):
    """Start (or reuse) a private PostgreSQL in ``pgdata`` and return its handle."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "DATABASE_URL is unset and pgserver is not installed: "
            "`pip install -e '.[embedded]'` or set DATABASE_URL"
        ) from exc
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    # pgserver runs postgres as an unprivileged user when we are root; it must
    # be able to reach the data directory.
    if os.geteuid() == 0:
        for parent in pgdata.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                log.warning("letting the embedded PostgreSQL traverse %s (o+x)", parent)
                parent.chmod(mode | 0o001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)


def ensure_database_url() -> tuple[str, object | None]:
    """Return DATABASE_URL, starting the embedded server under .data/ if unset."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url, None
    if os.environ.get("APP_ENV") == "production":
        raise RuntimeError("DATABASE_URL is required when APP_ENV=production")
    server = start_embedded_postgres(DATA_DIR / "pg")
    url = server.get_uri()
    log.warning("DATABASE_URL is unset: using the embedded PostgreSQL in %s", DATA_DIR / "pg")
    return url, server


def dev_jwt_secret(*, create: bool) -> str | None:
    """The local development signing secret kept in .data/, made on first use."""
    if os.environ.get("APP_ENV") == "production":
        return None
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip() or None
    if not create:
        return None
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(DEV_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return DEV_SECRET_FILE.read_text().strip()
