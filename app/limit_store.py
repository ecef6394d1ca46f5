"""The rate-limit store: shared counters in Redis, per-process counters while it is away.

Flask-Limiter builds its store from a URI; ``failopen://`` names this one, and
its options name the real store (``backend``) and how long Redis may take
(``socket_timeout``). Every call goes to Redis while it answers. When a call
fails (refused, reset, or no answer within the timeout) the store logs one
warning and counts in this process's memory instead, so a request never fails
or waits on the limit store; once a second it lets one call try Redis again,
and the first that succeeds logs one line and shared counting resumes.

Fail-open, not fail-closed: refusing every request while Redis is away would
turn a cache outage into a full outage of joins and previews. Per-process
counting keeps a limit in force (at most the number of workers times looser)
until Redis returns.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

from limits.storage import MemoryStorage, MovingWindowSupport, Storage, storage_from_string

from app.logs import OutageLog

SCHEME = "failopen"


def describe(uri: str) -> str:
    """Where the store is, for a log line: ``redis 10.0.0.5:6379`` or its socket path."""
    parts = urlsplit(uri)
    if parts.scheme.endswith("+unix") or parts.scheme == "unix":
        return f"{parts.scheme.split('+')[0]} {parts.path}"
    return f"{parts.scheme} {parts.hostname}:{parts.port or 6379}"


class FailOpenStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        *,
        backend: str,
        probe_interval: float = 1.0,
        wrap_exceptions: bool = False,
        **options,
    ):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.backend = backend
        self.shared = storage_from_string(backend, **options)
        self.local = MemoryStorage()
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._next_probe = 0.0
        self._back_at = 0.0
        self.outage = OutageLog(
            "rate-limit store",
            describe(backend),
            meanwhile="counting per process until it returns",
            after="counting is shared again",
            logger=logging.getLogger("app.limits"),
        )
        self._failures = (*_as_tuple(self.shared.base_exceptions), OSError)

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # nothing escapes: a failure of the shared store is handled here

    @property
    def is_shared(self) -> bool:
        """Whether counting is shared right now (False while Redis is away)."""
        return not self.outage.is_down

    def _try_shared(self) -> bool:
        if not self.outage.is_down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_probe:
                return False
            self._next_probe = now + self.probe_interval
            return True

    def _call(self, name: str, *args, **kwargs):
        if self._try_shared():
            started = time.monotonic()
            try:
                result = getattr(self.shared, name)(*args, **kwargs)
            except self._failures as exc:
                self._went_away(exc, started)
            else:
                self._came_back()
                return result
        return getattr(self.local, name)(*args, **kwargs)

    def _went_away(self, exc: BaseException, started: float) -> None:
        with self._lock:
            # A call sent before Redis was seen answering again (one that sat in
            # a frozen server's queue) says nothing new: count it here, but do
            # not declare a second outage.
            if started < self._back_at:
                return
            self._next_probe = time.monotonic() + self.probe_interval
        self.outage.began(exc)

    def _came_back(self) -> None:
        if self.outage.is_down:
            with self._lock:
                self._back_at = time.monotonic()
            self.outage.ended()

    # limits' Storage and MovingWindowSupport, each to whichever store is in use.

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._call("incr", key, expiry, amount=amount)

    def get(self, key: str) -> int:
        return self._call("get", key)

    def get_expiry(self, key: str) -> float:
        return self._call("get_expiry", key)

    def check(self) -> bool:
        return self.shared.check()  # answers False rather than raising: no state to change

    def reset(self) -> int | None:
        return self._call("reset")

    def clear(self, key: str) -> None:
        return self._call("clear", key)

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self._call("acquire_entry", key, limit, expiry, amount=amount)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self._call("get_moving_window", key, limit, expiry)


def _as_tuple(exceptions) -> tuple[type[Exception], ...]:
    return exceptions if isinstance(exceptions, tuple) else (exceptions,)
