"""Idempotency-Key under real concurrency and a real lost response: gunicorn with 4
workers, clients on their own connections, outcomes read in the database."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections import Counter

import pytest

from app.liveserver import HOST
from tests.helpers import JWT_SECRET, fire_together, make_token, scalar, serving

pytestmark = pytest.mark.slow

WORKERS = 4
SAME_KEY_REQUESTS = 20


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "GUNICORN_THREADS": "4",
        "JOIN_RATE_LIMIT": "100000/minute",
        "CREATE_RATE_LIMIT": "100000/minute",
        "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
    }
    log_path = tmp_path_factory.mktemp("idempotency") / "server.log"
    with serving(settings, log_path, workers=WORKERS) as srv:
        yield srv


def _owner_with_group(server) -> tuple[str, dict]:
    token = make_token(str(uuid.uuid4()), name="Owner")
    reply = server.call("POST", "/api/v1/groups", {"name": "Racing keys"}, token)
    assert reply.status == 201, reply
    return token, reply.body


def test_simultaneous_requests_with_one_key_do_the_work_once(server, engine):
    token, group = _owner_with_group(server)
    path = f"/api/v1/groups/{group['id']}/invites"
    headers = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    calls = [("POST", path, {"max_uses": 3}, token, headers)] * SAME_KEY_REQUESTS
    replies = fire_together(server, calls)

    statuses = Counter(reply.status for reply in replies)
    assert set(statuses) <= {201, 409}, statuses
    worked = [r for r in replies if r.status == 201 and "Idempotent-Replayed" not in r.headers]
    replayed = [r for r in replies if r.status == 201 and "Idempotent-Replayed" in r.headers]
    in_use = [r for r in replies if r.status == 409]
    print(f"\n{len(worked)} worked, {len(replayed)} replayed, {len(in_use)} in use")  # -s
    assert len(worked) == 1, statuses
    assert all(r.body == worked[0].body for r in replayed)
    assert all(r.body["error"] == "idempotency_key_in_use" for r in in_use)
    assert all(r.headers["Retry-After"] == "1" for r in in_use)
    count = "SELECT count(*) FROM group_invites WHERE group_id = :g"
    assert scalar(engine, count, g=group["id"]) == 1
    # Once the first has committed, every retry is its replay.
    retry = server.call("POST", path, {"max_uses": 3}, token, headers)
    assert (retry.status, retry.headers["Idempotent-Replayed"]) == (201, "true")
    assert retry.body == worked[0].body


def _send_and_hang_up(port: int, path: str, body: dict, headers: dict) -> None:
    """Send a request and close the connection without reading a byte of the answer,
    as a client whose timeout fired before the response came."""
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode() + payload)


def test_a_join_whose_answer_was_lost_is_replayed_when_retried(server, engine):
    owner_token, group = _owner_with_group(server)
    invite = server.call(
        "POST", f"/api/v1/groups/{group['id']}/invites", {"max_uses": 5}, owner_token
    ).body
    joiner = uuid.uuid4()
    token = make_token(str(joiner), name="Joiner")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "join-once"}

    _send_and_hang_up(server.port, "/api/v1/groups/join", {"code": invite["code"]}, headers)
    member = "SELECT count(*) FROM group_memberships WHERE group_id = :g AND user_id = :u"
    deadline = time.monotonic() + 10
    while scalar(engine, member, g=group["id"], u=joiner) == 0:
        assert time.monotonic() < deadline, "the join never committed"
        time.sleep(0.05)

    retried = server.call(
        "POST",
        "/api/v1/groups/join",
        {"code": invite["code"]},
        token,
        {"Idempotency-Key": "join-once"},
    )
    assert retried.status == 200, retried
    assert retried.headers["Idempotent-Replayed"] == "true"
    membership_id = scalar(
        engine,
        "SELECT id FROM group_memberships WHERE group_id = :g AND user_id = :u",
        g=group["id"],
        u=joiner,
    )
    assert retried.body["membership"]["id"] == str(membership_id)
    uses = "SELECT current_uses FROM group_invites WHERE id = :i"
    assert scalar(engine, uses, i=invite["id"]) == 1
