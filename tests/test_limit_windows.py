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
