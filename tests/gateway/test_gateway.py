"""The service as it runs in production: 3 replicas behind nginx, one PostgreSQL,
one Redis (``make cluster``), with real clients and real faults.

Each test is bounded in time. The replicas allow 5 previews a minute per
address and 3 joins a minute per user, across all of them.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections import Counter

import pytest

from app.liveserver import HOST
from app.liveserver import send as send_on
from tests.gateway.conftest import _pids_under
from tests.helpers import fire_together, make_token, scalar

pytestmark = pytest.mark.gateway

JOINERS = 64
MAX_USES = 25
SLOW_CONNECTIONS = 200
# How long a client's request may take while 200 slow clients hold connections.
SLOWLORIS_BOUND_S = 0.5


def _owner_group_invite(server, max_uses: int) -> tuple[str, dict, dict]:
    owner = make_token(str(uuid.uuid4()), name="Owner")
    group = server.call("POST", "/api/v1/groups", {"name": "Gateway"}, owner)
    assert group.status == 201, group
    invite = server.call(
        "POST", f"/api/v1/groups/{group.body['id']}/invites", {"max_uses": max_uses}, owner
    )
    assert invite.status == 201, invite
    return owner, group.body, invite.body


def _requests_per_replica(log: str, since: int = 0) -> Counter:
    return Counter(re.findall(r"^(replica-\d) +\| .* app\.request: ", log[since:], re.MULTILINE))


def test_limits_are_global_and_forged_forwarding_does_not_help(cluster):
    calls = [
        ("GET", "/api/v1/invites/ZZZ-ZZZ-ZZZ", None, None, {"X-Forwarded-For": f"10.0.0.{i}"})
        for i in range(16)
    ]
    previews = Counter(reply.status for reply in fire_together(cluster.gateway, calls))
    assert previews == Counter({404: 5, 429: 11})

    user = make_token(str(uuid.uuid4()))
    calls = [("POST", "/api/v1/groups/join", {"code": "ZZZ-ZZZ-ZZZ"}, user)] * 8
    joins = Counter(reply.status for reply in fire_together(cluster.gateway, calls))
    assert joins == Counter({404: 3, 429: 5})


def test_concurrent_joiners_over_the_replicas_take_exactly_max_uses(cluster, engine):
    _owner, _group, invite = _owner_group_invite(cluster.gateway, MAX_USES)
    before = len(cluster.log())
    calls = [
        ("POST", "/api/v1/groups/join", {"code": invite["code"]}, make_token(str(uuid.uuid4())))
        for _ in range(JOINERS)
    ]
    replies = fire_together(cluster.gateway, calls)
    outcomes = Counter((r.status, (r.body or {}).get("error")) for r in replies)
    assert outcomes == Counter(
        {(200, None): MAX_USES, (410, "invite_exhausted"): JOINERS - MAX_USES}
    )
    uses = "SELECT current_uses FROM group_invites WHERE id = :i"
    members = "SELECT count(*) FROM group_memberships WHERE invite_id = :i"
    assert scalar(engine, uses, i=invite["id"]) == MAX_USES
    assert scalar(engine, members, i=invite["id"]) == MAX_USES
    spread = _requests_per_replica(cluster.log(), before)
    assert len(spread) == 3, spread  # every replica took part


def test_one_users_joins_on_every_replica_at_once_make_one_membership(cluster, engine):
    _owner, group, invite = _owner_group_invite(cluster.gateway, 10)
    user = uuid.uuid4()
    token = make_token(str(user))
    body = {"code": invite["code"]}
    replies = []
    for replica in cluster.replicas:  # one request straight to each replica, all at once
        replies.append((replica, ("POST", "/api/v1/groups/join", body, token)))
    results = []
    threads = [
        threading.Thread(target=lambda r=r, c=c: results.append(r.call(*c))) for r, c in replies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    outcomes = Counter((r.status, (r.body or {}).get("error")) for r in results)
    assert outcomes == Counter({(200, None): 1, (409, "already_member"): 2})
    member = "SELECT count(*) FROM group_memberships WHERE group_id = :g AND user_id = :u"
    assert scalar(engine, member, g=group["id"], u=user) == 1
    assert (
        scalar(engine, "SELECT current_uses FROM group_invites WHERE id = :i", i=invite["id"]) == 1
    )


def test_one_idempotency_key_sent_to_every_replica_at_once_does_the_work_once(cluster, engine):
    owner, group, _invite = _owner_group_invite(cluster.gateway, 1)
    path = f"/api/v1/groups/{group['id']}/invites"
    headers = {"Idempotency-Key": f"everywhere-{uuid.uuid4()}"}
    targets = [*cluster.replicas * 4, *[cluster.gateway] * 4]
    barrier = threading.Barrier(len(targets))
    replies = []

    def send(server):
        conn = server.connection()
        conn.connect()
        barrier.wait(timeout=30)
        replies.append(send_on(conn, "POST", path, {"max_uses": 7}, owner, headers))
        conn.close()

    threads = [threading.Thread(target=send, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replies) == len(targets)
    assert {r.status for r in replies} <= {201, 409}, [r.status for r in replies]
    worked = [r for r in replies if r.status == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(worked) == 1
    count = "SELECT count(*) FROM group_invites WHERE group_id = :g AND max_uses = 7"
    assert scalar(engine, count, g=group["id"]) == 1


class Load:
    """Clients creating groups and joining one big invite through the gateway."""

    def __init__(self, server, invite_code: str):
        self.server, self.code = server, invite_code
        self.created: list[str] = []
        self.joined: list[uuid.UUID] = []
        self.other: Counter = Counter()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(6)]

    def _run(self) -> None:
        while not self.stop.is_set():
            user = uuid.uuid4()
            token = make_token(str(user))
            group = self.server.call("POST", "/api/v1/groups", {"name": "Load"}, token)
            if group.status == 201:
                self.created.append(group.body["id"])
            else:
                self.other[(group.status, (group.body or {}).get("error"))] += 1
            joined = self.server.call("POST", "/api/v1/groups/join", {"code": self.code}, token)
            if joined.status == 200:
                self.joined.append(user)
            else:
                self.other[(joined.status, (joined.body or {}).get("error"))] += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_a_killed_replica_is_routed_around_and_rejoins(cluster, engine):
    _owner, _group, invite = _owner_group_invite(cluster.gateway, 100)
    victim = cluster.state()["replicas"][1]
    with Load(cluster.gateway, invite["code"]) as load:
        time.sleep(1.5)
        for pid in _pids_under(victim["pid"]):  # the master and its workers, at once
            os.kill(pid, signal.SIGKILL)
        killed_at = len(cluster.log())
        time.sleep(2.0)
        deadline = time.monotonic() + 30
        while not _ready(cluster.replicas[1]):
            assert time.monotonic() < deadline, "the killed replica never came back"
            time.sleep(0.2)
        back_at = len(cluster.log())
        # nginx tries a failed server again only after fail_timeout (5 s) has passed
        # since its last failure, so the way back into rotation is waited for, not timed.
        deadline = time.monotonic() + 20
        while not _requests_per_replica(cluster.log(), back_at)[victim["name"]]:
            assert time.monotonic() < deadline, "the restarted replica got no traffic"
            time.sleep(0.25)
        time.sleep(1.0)
    log = cluster.log()
    assert f"{victim['name']} exited" in log[killed_at - 2000 :]

    # Every 2xx the clients saw is in the database, and nothing is half done.
    assert len(load.created) > 20
    assert load.joined
    found = scalar(
        engine, "SELECT count(*) FROM groups WHERE id = ANY(CAST(:ids AS uuid[]))", ids=load.created
    )
    assert found == len(load.created)
    members = scalar(
        engine,
        "SELECT count(*) FROM group_memberships"
        " WHERE invite_id = :i AND user_id = ANY(CAST(:u AS uuid[]))",
        i=invite["id"],
        u=[str(u) for u in load.joined],
    )
    assert members == len(load.joined)
    uses = scalar(engine, "SELECT current_uses FROM group_invites WHERE id = :i", i=invite["id"])
    redeemed = scalar(
        engine, "SELECT count(*) FROM group_memberships WHERE invite_id = :i", i=invite["id"]
    )
    assert uses == redeemed
    # Whatever was not a 2xx is the gateway's or the service's envelope, never a 500.
    assert all(status in {503, 410} for status, _ in load.other), load.other
    # Back in rotation: the restarted replica serves the gateway's traffic again.
    assert _requests_per_replica(log, back_at)[victim["name"]] > 0
    print(
        f"\nkilled {victim['name']}: {len(load.created)} groups, {len(load.joined)} joins, "
        f"other answers {dict(load.other)}"
    )


def _ready(server) -> bool:
    try:
        return server.call("GET", "/readyz").status == 200
    except (OSError, http.client.HTTPException):
        return False


def test_slow_clients_do_not_delay_anyone_else(cluster):
    def timed_health() -> float:
        started = time.monotonic()
        assert cluster.gateway.call("GET", "/healthz").status == 200
        return time.monotonic() - started

    baseline = max(timed_health() for _ in range(20))
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            sock = socket.create_connection((HOST, cluster.gateway.port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            slow.append(sock)
        during = []
        for _ in range(3):
            for sock in slow:
                sock.sendall(b"X-Slow: 1\r\n")  # a trickle, well inside the header timeout
            during.extend(timed_health() for _ in range(10))
            time.sleep(1)
    finally:
        for sock in slow:
            sock.close()
    print(
        f"\nhealth, slowest: {baseline * 1000:.0f} ms alone, {max(during) * 1000:.0f} ms "
        f"beside {SLOW_CONNECTIONS} slow clients"
    )
    assert max(during) < SLOWLORIS_BOUND_S
