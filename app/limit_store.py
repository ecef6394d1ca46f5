"""The rate-limit store: moving windows shared in Redis, per process while it is away.

A window is a list of the times of its last ``limit`` hits. A request is
admitted when, for every window it is counted in, the ``limit``-th newest hit
is older than the window's length; admitting it records a hit in each window
it spends. ``gate`` does that for all of a request's windows at once: with
Redis, one script, so one round trip and one atomic step however many limits
apply (a request can never be counted in one window and refused by another).

Every call goes to Redis while it answers. When a call fails (refused, reset,
or no answer within RATELIMIT_STORAGE_TIMEOUT_MS) the store logs one warning
and counts in this process's memory instead, so a request never fails or
waits on the limit store; once a second it lets one call try Redis again, and
the first that succeeds logs one line and shared counting resumes.

Fail-open, not fail-closed: refusing every request while Redis is away would
turn a cache outage into a full outage of joins and previews. Per-process
counting keeps a limit in force (at most the number of workers times looser)
until Redis returns.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import NamedTuple
from urllib.parse import urlsplit

from limits.storage import MemoryStorage, storage_from_string
from limits.storage.redis_cluster import RedisClusterStorage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.logs import OutageLog

# A thread's Redis connection unused for this long is checked before a call.
IDLE_CHECK_AFTER_S = 1.0


class Window(NamedTuple):
    key: str
    limit: int
    seconds: int
    spend: bool  # record a hit when admitted (False: only checked)


class Breach(NamedTuple):
    index: int  # of the window in the request's list
    reset_at: float  # when it admits one more (epoch seconds)


# ARGV: now, mode, then limit, seconds, spend for each key. "gate": if any
# window is full, nothing changes and the full ones are returned as
# {index, time of the hit that fills it, ...}; else a hit is recorded in each
# window to spend. "charge": a hit in each window that is not full.
_SCRIPT = """
local now = tonumber(ARGV[1])
local gate = ARGV[2] == 'gate'
local full = {}
local open = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i * 3])
  local seconds = tonumber(ARGV[i * 3 + 1])
  local oldest = redis.call('lindex', key, limit - 1)
  if oldest and tonumber(oldest) >= now - seconds then
    full[#full + 1] = i
    full[#full + 1] = oldest
  elseif not gate or ARGV[i * 3 + 2] == '1' then
    open[#open + 1] = i
  end
end
if gate and #full > 0 then
  return full
end
for _, i in ipairs(open) do
  local key = KEYS[i]
  redis.call('lpush', key, ARGV[1])
  redis.call('ltrim', key, 0, tonumber(ARGV[i * 3]) - 1)
  redis.call('expire', key, tonumber(ARGV[i * 3 + 1]))
end
return full
"""


def describe(uri: str) -> str:
    """Where the store is, for a log line: ``redis 10.0.0.5:6379`` or its socket path."""
    parts = urlsplit(uri)
    if parts.scheme.endswith("+unix") or parts.scheme == "unix":
        return f"{parts.scheme.split('+')[0]} {parts.path}"
    return f"{parts.scheme} {parts.hostname}:{parts.port or 6379}"


class RedisWindows:
    """Windows in Redis (or Sentinel, or Cluster), through the ``limits`` library's
    connection handling for the URI; one script call per request."""

    def __init__(self, uri: str, **options):
        self.storage = storage_from_string(uri, **options)
        self.script = self.storage.get_connection().register_script(_SCRIPT)
        # A cluster runs a script on one slot's node: there, one call per window.
        self.one_key_per_call = isinstance(self.storage, RedisClusterStorage)
        from redis.exceptions import RedisClusterException  # not a RedisError

        self.failures = (
            *_as_tuple(self.storage.base_exceptions),
            OSError,
            RedisClusterException,
        )
        self._own = threading.local()

    def _run(self, mode: str, windows: list[Window], now: float) -> list[Breach]:
        args: list = [repr(now), mode]
        for w in windows:
            args += [w.limit, w.seconds, "1" if w.spend else "0"]
        keys = [self.storage.prefixed_key(w.key) for w in windows]
        # A cluster routes the script by its key's slot: redis-py's cluster client does.
        reply = (
            self.script(keys=keys, args=args) if self.one_key_per_call else self._eval(keys, args)
        )
        return [
            Breach(int(reply[i]) - 1, float(reply[i + 1]) + windows[int(reply[i]) - 1].seconds)
            for i in range(0, len(reply), 2)
        ]

    def _eval(self, keys: list[str], args: list):
        """The script on this thread's own connection to Redis (or to the master
        Sentinel names). redis-py's command path and its pool's checkout, which
        polls the socket each time, cost more CPU than the call itself (about 60
        of 100 µs). The connection is made from the client's pool, with its
        timeouts; after a failure it is closed, so no reply is left half read.

        Like the pool, a connection idle for a while is checked first: one that
        Redis closed meanwhile (a restart) reads as readable, and is replaced
        before the call rather than failing it."""
        own = self._own
        conn = getattr(own, "connection", None)
        if conn is None:
            conn = own.connection = self.script.registered_client.connection_pool.make_connection()
            own.used_at = 0.0
        now = time.monotonic()
        try:
            if now - own.used_at > IDLE_CHECK_AFTER_S:
                self._check_idle(conn)
            own.used_at = now
            conn.send_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
            try:
                return conn.read_response()
            except NoScriptError:  # a restarted or flushed Redis: load it again
                conn.send_command("SCRIPT", "LOAD", _SCRIPT)
                conn.read_response()
                conn.send_command("EVALSHA", self.script.sha, len(keys), *keys, *args)
                return conn.read_response()
        except BaseException:
            conn.disconnect()
            raise

    @staticmethod
    def _check_idle(conn) -> None:
        """As redis-py's pool checks a connection it hands out: connected first (a
        failure to connect is the call's, after one attempt); then one that reads
        as readable, or fails to, was closed by the server (or holds stray data)
        and is replaced."""
        conn.connect()  # nothing to do when connected
        try:
            stale = conn.can_read()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            stale = True
        if stale:
            conn.disconnect()
            conn.connect()

    def gate(self, windows: list[Window], now: float) -> list[Breach]:
        if not self.one_key_per_call:
            return self._run("gate", windows, now)
        # Every window checked first, spending nothing, so a refusal spends
        # nothing and names every full window; then each window to spend. Only
        # a window that fills between the two steps (a race across calls) can
        # leave the ones spent before it spent.
        checked = [w._replace(spend=False) for w in windows]
        breaches = [
            Breach(i, b.reset_at)
            for i, w in enumerate(checked)
            for b in self._run("gate", [w], now)
        ]
        if breaches:
            return breaches
        for i, w in enumerate(windows):
            if w.spend:
                for b in self._run("gate", [w], now):
                    return [Breach(i, b.reset_at)]
        return []

    def charge(self, windows: list[Window], now: float) -> None:
        for part in [[w] for w in windows] if self.one_key_per_call else [windows]:
            self._run("charge", part, now)

    def check(self) -> bool:
        return self.storage.check()  # answers False rather than raising

    def reset(self) -> None:
        self.storage.reset()


class MemoryWindows:
    """The same windows in this process's memory (``limits``' MemoryStorage)."""

    failures: tuple[type[Exception], ...] = ()

    def __init__(self):
        self.storage = MemoryStorage()
        self._lock = threading.Lock()

    def _full(self, w: Window) -> float | None:
        oldest, count = self.storage.get_moving_window(w.key, w.limit, w.seconds)
        return oldest + w.seconds if count >= w.limit else None

    def gate(self, windows: list[Window], now: float) -> list[Breach]:
        with self._lock:
            breaches = [
                Breach(i, reset_at)
                for i, w in enumerate(windows)
                if (reset_at := self._full(w)) is not None
            ]
            if not breaches:
                for w in windows:
                    if w.spend:
                        self.storage.acquire_entry(w.key, w.limit, w.seconds)
            return breaches

    def charge(self, windows: list[Window], now: float) -> None:
        with self._lock:
            for w in windows:
                self.storage.acquire_entry(w.key, w.limit, w.seconds)

    def check(self) -> bool:
        return True

    def reset(self) -> None:
        self.storage.reset()


class LimitStore:
    """RATELIMIT_STORAGE_URI's windows: ``memory://`` (one process), or Redis with
    this process's memory standing in while Redis is away."""

    def __init__(self, uri: str, *, timeout_s: float = 0.05, probe_interval: float = 1.0):
        self.local = MemoryWindows()
        self.shared: RedisWindows | None = None
        if not uri.startswith("memory://"):
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # A Redis that stops answering costs one request this long, once a
            # second, not redis-py's default of retries with backoff.
            self.shared = RedisWindows(
                uri,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
        self.probe_interval = probe_interval
        self._lock = threading.Lock()
        self._next_probe = 0.0
        self._back_at = 0.0
        self.outage = OutageLog(
            "rate-limit store",
            describe(uri),
            meanwhile="counting per process until it returns",
            after="counting is shared again",
            logger=logging.getLogger("app.limits"),
        )

    @property
    def is_shared(self) -> bool:
        """Whether counting is shared right now (False while Redis is away)."""
        return self.shared is not None and not self.outage.is_down

    def check(self) -> bool:
        """Whether the shared store answers (always True for memory://)."""
        return self.shared.check() if self.shared is not None else True

    def gate(self, windows: list[Window]) -> list[Breach]:
        """Admit a request counted in ``windows``, or say which of them are full."""
        return self._call("gate", windows)

    def charge(self, windows: list[Window]) -> None:
        """Record a hit in each of ``windows`` that is not full."""
        self._call("charge", windows)

    def reset(self) -> None:
        """Forget every hit (tests): in memory, and in Redis if it answers."""
        self.local.reset()
        if self.shared is not None:
            with contextlib.suppress(*self.shared.failures):
                self.shared.reset()

    def _call(self, name: str, windows: list[Window]):
        now = time.time()
        if self.shared is not None and self._try_shared():
            started = time.monotonic()
            try:
                result = getattr(self.shared, name)(windows, now)
            except self.shared.failures as exc:
                self._went_away(exc, started)
            else:
                self._came_back()
                return result
        return getattr(self.local, name)(windows, now)

    def _try_shared(self) -> bool:
        if not self.outage.is_down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_probe:
                return False
            self._next_probe = now + self.probe_interval
            return True

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


def _as_tuple(exceptions) -> tuple[type[Exception], ...]:
    return exceptions if isinstance(exceptions, tuple) else (exceptions,)
