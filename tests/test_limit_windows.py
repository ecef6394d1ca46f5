"""The limit store's windows, the same in a real Redis and in memory: a request is
admitted only when every window it meets has room, a refused one spends nothing,
and a refusal says when each full window admits again."""

from __future__ import annotations

import time

import pytest

from app.limit_store import LimitStore, Window
from tests.helpers import RedisProcess


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    yield server.url
    server.stop()


@pytest.fixture(params=["memory", "redis", "redis-one-key-per-call"])
def store(request, redis_url):
    store = LimitStore("memory://" if request.param == "memory" else redis_url, timeout_s=2)
    if request.param == "redis-one-key-per-call":
        store.shared.one_key_per_call = True  # as on a Redis Cluster: a call per window
    store.reset()
    yield store
    store.reset()


def test_a_window_admits_its_limit_then_says_when_it_frees(store):
    hourly = Window("w/hourly", 3, 3600, True)
    started = time.time()
    assert [store.gate([hourly]) for _ in range(3)] == [[], [], []]
    [breach] = store.gate([hourly])
    assert breach.index == 0
    # The first of the three hits leaves the window an hour after it was made.
    assert started + 3600 <= breach.reset_at <= time.time() + 3600
    assert store.is_shared is (store.shared is not None)


def test_a_refusal_by_one_window_spends_nothing_in_the_others(store):
    full = Window("w/full", 1, 60, True)
    other = Window("w/other", 2, 60, True)
    assert store.gate([full]) == []
    for _ in range(5):
        [breach] = store.gate([other, full])
        assert breach.index == 1
    # None of the five refusals counted in the other window: both of its hits remain.
    assert store.gate([other]) == []
    assert store.gate([other]) == []
    assert store.gate([other]) != []


def test_every_full_window_is_reported_with_its_own_reset(store):
    minute = Window("w/minute", 1, 60, True)
    day = Window("w/day", 1, 86400, True)
    assert store.gate([minute, day]) == []
    breaches = sorted(store.gate([minute, day]))
    assert [b.index for b in breaches] == [0, 1]
    assert breaches[1].reset_at - breaches[0].reset_at == pytest.approx(86400 - 60, abs=1)


def test_checked_windows_are_spent_only_by_charge(store):
    budget = Window("w/budget", 2, 60, False)
    lookups = Window("w/lookups", 100, 60, True)
    for _ in range(4):
        assert store.gate([lookups, budget]) == []  # checked, not spent
    store.charge([budget])
    store.charge([budget])
    [breach] = store.gate([lookups, budget])
    assert breach.index == 1
    store.charge([budget])  # a full window takes no more hits
    assert store.gate([budget._replace(limit=3)]) == []


def test_a_redis_that_forgot_the_script_loads_it_again_and_counts_on(redis_url):
    """As after a restart or SCRIPT FLUSH: NOSCRIPT costs a reload, not a request."""
    store = LimitStore(redis_url, timeout_s=2)
    store.reset()
    window = Window("w/flushed", 2, 60, True)
    assert store.gate([window]) == []
    store.shared.script.registered_client.script_flush()
    assert store.gate([window]) == []  # loaded again, and counted
    assert store.gate([window]) != []  # both hits are there
    assert store.is_shared
    store.reset()


def test_each_thread_calls_on_its_own_connection(redis_url):
    """Concurrent calls from many threads are each answered with their own reply."""
    from concurrent.futures import ThreadPoolExecutor

    store = LimitStore(redis_url, timeout_s=2)
    store.reset()
    windows = [Window(f"w/thread-{i}", 50, 60, True) for i in range(8)]

    def spend(i: int) -> list:
        return [store.gate([windows[i]]) for _ in range(60)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(spend, range(8)))
    for result in results:
        assert result[:50] == [[]] * 50  # the window's 50 hits admitted
        assert all(r and r[0].index == 0 for r in result[50:])  # then refused
    assert store.is_shared
    store.reset()


def test_a_connection_redis_closed_while_idle_is_replaced_not_failed(tmp_path, monkeypatch):
    """After a restart, each thread's connection is stale: it is noticed before the
    call (as redis-py's pool would), so the call succeeds and no outage is declared."""
    from app import limit_store

    monkeypatch.setattr(limit_store, "IDLE_CHECK_AFTER_S", 0.05)
    server = RedisProcess(tmp_path / "redis")
    try:
        store = LimitStore(server.url, timeout_s=2)
        window = Window("w/restarted", 5, 60, True)
        assert store.gate([window]) == []
        server.stop()
        server.start()  # same port, empty, the script unknown
        time.sleep(0.1)
        assert store.gate([window]) == []
        assert store.is_shared  # no outage: the call went to the new server
        assert server.client().llen(store.shared.storage.prefixed_key("w/restarted")) == 1
    finally:
        server.stop()
