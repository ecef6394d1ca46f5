"""A configured limit is the limit: across every gunicorn worker, on a real store.

gunicorn runs 4 workers; 16 client threads, each on a fresh connection,
fire at once, again and again. Whichever workers take them, exactly N per
window get through: with the embedded Redis the master starts when
RATELIMIT_STORAGE_URI is unset, and with a Redis named by redis://.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from app.liveserver import LiveServer
from tests.helpers import JWT_SECRET, RedisProcess, fire_together, make_token, serving

pytestmark = pytest.mark.slow

WORKERS = 4
THREADS = 16
ROUNDS = 3


@pytest.fixture(scope="module", params=["embedded Redis", "redis://"])
def limited(request, database_url, engine, tmp_path_factory) -> LiveServer:
    """4 workers with a preview limit of 5/minute and a join limit of 3/minute."""
    workdir = tmp_path_factory.mktemp("limits")
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "GUNICORN_THREADS": "4",
        "INVITE_LOOKUP_RATE_LIMIT": "5/minute",
        "JOIN_RATE_LIMIT": "3/minute",
        "CREATE_RATE_LIMIT": "4/minute",
    }
    store = None
    if request.param == "redis://":
        store = RedisProcess(workdir / "redis")
        settings["RATELIMIT_STORAGE_URI"] = store.url
    try:
        with serving(settings, workdir / "server.log", workers=WORKERS) as server:
            yield server
    finally:
        if store is not None:
            store.stop()


def _fire_rounds(server: LiveServer, calls: list[tuple]) -> Counter:
    seen: Counter = Counter()
    for _ in range(ROUNDS):
        for reply in fire_together(server, calls):
            seen[reply.status] += 1
            if reply.status == 429:
                assert reply.body["error"] == "rate_limited"
                assert 1 <= int(reply.headers["Retry-After"]) <= 60
    return seen


def test_previews_from_one_address_get_exactly_the_limit(limited):
    code = "ZZZ-ZZZ-ZZZ"  # unknown: every answer that gets through is a 404
    calls = [("GET", f"/api/v1/invites/{code}", None, None)] * THREADS
    seen = _fire_rounds(limited, calls)
    assert seen == Counter({404: 5, 429: THREADS * ROUNDS - 5})


def test_joins_by_one_user_get_exactly_the_limit_and_users_count_apart(limited):
    alice, bob = make_token(str(uuid.uuid4())), make_token(str(uuid.uuid4()))
    body = {"code": "ZZZ-ZZZ-ZZZ"}
    calls = [("POST", "/api/v1/groups/join", body, alice)] * (THREADS // 2) + [
        ("POST", "/api/v1/groups/join", body, bob)
    ] * (THREADS // 2)
    seen = _fire_rounds(limited, calls)
    assert seen == Counter({404: 3 + 3, 429: THREADS * ROUNDS - 6})


def test_creates_by_one_user_share_exactly_one_budget(limited):
    owner = make_token(str(uuid.uuid4()))
    calls = [("POST", "/api/v1/groups", {"name": "Budget"}, owner)] * THREADS
    replies = fire_together(limited, calls)
    assert Counter(reply.status for reply in replies) == Counter({201: 4, 429: THREADS - 4})
    # Invites draw on the same budget, which the groups spent.
    group_id = next(reply.body["id"] for reply in replies if reply.status == 201)
    invite = limited.call("POST", f"/api/v1/groups/{group_id}/invites", {}, owner)
    assert (invite.status, invite.body["error"]) == (429, "rate_limited")
    other = make_token(str(uuid.uuid4()))
    assert limited.call("POST", "/api/v1/groups", {"name": "Mine"}, other).status == 201
