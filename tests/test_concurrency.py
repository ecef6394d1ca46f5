"""Concurrency against a real multi-worker gunicorn server and real concurrent clients.

The in-process test client serialises requests, so it cannot show that the
join and the active-invite cap hold when requests race across processes. Here
gunicorn runs as a subprocess (4 workers x 4 threads) against the test
database, and every client thread opens its own HTTP connection, waits on a
barrier and then fires, so the requests really overlap. Outcomes are checked
both on the wire (status and error code) and in the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa

from app.liveserver import LiveServer, Reply
from tests.helpers import JWT_SECRET, fire_together, make_token, scalar, serving

pytestmark = pytest.mark.slow

WORKERS = 4
MAX_ACTIVE_INVITES = 5
STARTUP_TIMEOUT = 30.0
REQUEST_TIMEOUT = 30.0
ERROR_KEYS = {"error", "message", "details"}


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    """gunicorn serving the app on a free port, against the migrated test database."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "GUNICORN_THREADS": "4",
        "JOIN_RATE_LIMIT": "100000/minute",
        "CREATE_RATE_LIMIT": "100000/minute",
        "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
        "MAX_ACTIVE_INVITES_PER_GROUP": str(MAX_ACTIVE_INVITES),
    }
    with serving(settings, log_path, workers=WORKERS, startup_timeout=STARTUP_TIMEOUT) as srv:
        yield srv


def assert_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply
    assert reply.content_type.startswith("application/json"), reply
    assert isinstance(reply.body, dict), reply
    assert set(reply.body) <= ERROR_KEYS, reply
    assert reply.body["error"] == code, reply
    assert isinstance(reply.body["message"], str), reply
    assert reply.body["message"], reply


def statuses(replies: list[Reply]) -> Counter:
    return Counter(r.status for r in replies)


def new_token(name: str) -> tuple[uuid.UUID, str]:
    user_id = uuid.uuid4()
    return user_id, make_token(str(user_id), name=name, expires_in=600)


def create_group(srv: LiveServer, token: str) -> dict:
    reply = srv.call("POST", "/api/v1/groups", {"name": f"Race {uuid.uuid4().hex[:8]}"}, token)
    assert reply.status == 201, reply
    return reply.body


def create_invite(srv: LiveServer, token: str, group_id: str, **body) -> dict:
    reply = srv.call("POST", f"/api/v1/groups/{group_id}/invites", body, token)
    assert reply.status == 201, reply
    return reply.body


def test_server_answers_with_the_error_envelope(server):
    # A sanity check of the harness itself: the subprocess runs our app and config.
    reply = server.call("POST", "/api/v1/groups/join", {"code": "ABC-234-XYZ"})
    assert_error(reply, 401, "unauthorized")
    _, token = new_token("Someone")
    assert_error(
        server.call("POST", "/api/v1/groups/join", {"code": "ABC-234-XYZ"}, token),
        404,
        "invite_not_found",
    )


def test_exactly_max_uses_distinct_users_get_in(server, engine):
    max_uses, joiners = 7, 40
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)
    invite = create_invite(server, owner, group["id"], max_uses=max_uses)
    users = [new_token(f"Joiner {i}") for i in range(joiners)]

    replies = fire_together(
        server,
        [("POST", "/api/v1/groups/join", {"code": invite["code"]}, token) for _, token in users],
    )

    assert statuses(replies) == {200: max_uses, 410: joiners - max_uses}
    winners = set()
    for (user_id, _), reply in zip(users, replies, strict=True):
        if reply.status == 200:
            assert reply.body["group"]["id"] == group["id"]
            assert reply.body["membership"]["role"] == "member"
            winners.add(user_id)
        else:
            assert_error(reply, 410, "invite_exhausted")

    assert (
        scalar(engine, "SELECT current_uses FROM group_invites WHERE id = :id", id=invite["id"])
        == max_uses
    )
    with engine.connect() as conn:
        members = conn.execute(
            sa.text("SELECT user_id, invited_by FROM group_memberships WHERE invite_id = :id"),
            {"id": invite["id"]},
        ).all()
    assert {m.user_id for m in members} == winners
    assert len(members) == max_uses
    assert {str(m.invited_by) for m in members} == {invite["created_by"]}
    assert (
        scalar(engine, "SELECT count(*) FROM group_memberships WHERE group_id = :g", g=group["id"])
        == max_uses + 1
    )


def test_one_user_racing_the_same_code_joins_once(server, engine):
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)
    invite = create_invite(server, owner, group["id"], max_uses=5)
    user_id, token = new_token("Eager Joiner")

    replies = fire_together(
        server, [("POST", "/api/v1/groups/join", {"code": invite["code"]}, token)] * 10
    )

    assert statuses(replies) == {200: 1, 409: 9}
    for reply in replies:
        if reply.status == 409:
            assert_error(reply, 409, "already_member")
    assert (
        scalar(engine, "SELECT current_uses FROM group_invites WHERE id = :id", id=invite["id"])
        == 1
    )
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM group_memberships WHERE group_id = :g AND user_id = :u",
            g=group["id"],
            u=user_id,
        )
        == 1
    )


def test_one_user_racing_two_codes_of_one_group_joins_once(server, engine):
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)
    first = create_invite(server, owner, group["id"], max_uses=5)
    second = create_invite(server, owner, group["id"], max_uses=5)
    user_id, token = new_token("Double Joiner")
    codes = [first["code"], second["code"]] * 4

    replies = fire_together(
        server, [("POST", "/api/v1/groups/join", {"code": code}, token) for code in codes]
    )

    assert statuses(replies) == {200: 1, 409: len(codes) - 1}
    for reply in replies:
        if reply.status == 409:
            assert_error(reply, 409, "already_member")
    with engine.connect() as conn:
        uses = dict(
            conn.execute(
                sa.text("SELECT id, current_uses FROM group_invites WHERE group_id = :g"),
                {"g": group["id"]},
            ).all()
        )
        memberships = conn.execute(
            sa.text("SELECT invite_id FROM group_memberships WHERE group_id = :g AND user_id = :u"),
            {"g": group["id"], "u": user_id},
        ).all()
    assert sum(uses.values()) == 1
    assert len(memberships) == 1
    # The use was taken from the invite the membership records.
    assert uses[memberships[0].invite_id] == 1


def test_active_invite_cap_holds_under_concurrent_creates(server, engine):
    attempts = 12
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)

    replies = fire_together(
        server,
        [("POST", f"/api/v1/groups/{group['id']}/invites", {}, owner)] * attempts,
    )

    assert statuses(replies) == {201: MAX_ACTIVE_INVITES, 409: attempts - MAX_ACTIVE_INVITES}
    created = [r.body for r in replies if r.status == 201]
    for reply in replies:
        if reply.status == 409:
            assert_error(reply, 409, "invite_limit_reached")
    assert len({invite["code"] for invite in created}) == MAX_ACTIVE_INVITES
    assert (
        scalar(engine, "SELECT count(*) FROM group_invites WHERE group_id = :g", g=group["id"])
        == MAX_ACTIVE_INVITES
    )
    listing = server.call("GET", f"/api/v1/groups/{group['id']}/invites", token=owner)
    assert listing.status == 200
    assert {i["id"] for i in listing.body["data"]} == {i["id"] for i in created}


def test_active_invite_cap_holds_when_different_managers_race(server, engine):
    # Different managers, so the cap's group lock is the only thing that
    # orders these creates (nothing per-user serialises them).
    managers = 12
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)
    admin_invite = create_invite(
        server, owner, group["id"], preset_role="admin", max_uses=managers - 1
    )
    tokens = [owner]
    for i in range(managers - 1):
        _, token = new_token(f"Race Admin {i}")
        reply = server.call("POST", "/api/v1/groups/join", {"code": admin_invite["code"]}, token)
        assert reply.status == 200, reply
        assert reply.body["membership"]["role"] == "admin"
        tokens.append(token)
    # The admin invite is used up, so it no longer counts against the cap.

    replies = fire_together(
        server,
        [("POST", f"/api/v1/groups/{group['id']}/invites", {}, token) for token in tokens],
    )

    assert statuses(replies) == {201: MAX_ACTIVE_INVITES, 409: managers - MAX_ACTIVE_INVITES}
    for reply in replies:
        if reply.status == 409:
            assert_error(reply, 409, "invite_limit_reached")
    assert (
        scalar(
            engine,
            "SELECT count(*) FROM group_invites WHERE group_id = :g AND id <> :admin_invite",
            g=group["id"],
            admin_invite=admin_invite["id"],
        )
        == MAX_ACTIVE_INVITES
    )


def test_joins_racing_a_revoke_stay_consistent(server, engine):
    # Which joins beat the revoke is up to the scheduler; what must hold is that
    # every join either got in (and took a use) or saw a revoked code.
    joiners = 30
    _, owner = new_token("Race Owner")
    group = create_group(server, owner)
    invite = create_invite(server, owner, group["id"], max_uses=100)
    calls = [
        ("POST", "/api/v1/groups/join", {"code": invite["code"]}, new_token(f"Joiner {i}")[1])
        for i in range(joiners)
    ]
    revoke_at = joiners // 2
    calls.insert(
        revoke_at, ("DELETE", f"/api/v1/groups/{group['id']}/invites/{invite['id']}", None, owner)
    )

    replies = fire_together(server, calls)

    assert replies.pop(revoke_at).status == 204
    counts = statuses(replies)
    assert set(counts) <= {200, 404}, counts
    for reply in replies:
        if reply.status == 404:
            assert_error(reply, 404, "invite_not_found")
    row = server.call(
        "GET", f"/api/v1/groups/{group['id']}/invites/{invite['id']}", token=owner
    ).body
    assert row["status"] == "revoked"
    assert row["current_uses"] == counts[200]
    assert (
        scalar(
            engine, "SELECT count(*) FROM group_memberships WHERE invite_id = :id", id=invite["id"]
        )
        == counts[200]
    )
    # Once revoked, the code is gone for everyone.
    _, late = new_token("Late Joiner")
    assert_error(
        server.call("POST", "/api/v1/groups/join", {"code": invite["code"]}, late),
        404,
        "invite_not_found",
    )


def test_invites_created_while_their_creator_is_demoted_do_not_survive(server, engine):
    # A demotion revokes the creator's invites (a trigger); an invite created
    # concurrently must either be refused (403) or be revoked along with the rest,
    # never left live with revoked_at unset. Several rounds vary the interleaving.
    for round_ in range(6):
        _, owner = new_token("Owner")
        group = create_group(server, owner)
        admin_invite = create_invite(server, owner, group["id"], preset_role="admin")
        admin_id, admin = new_token("Admin")
        joined = server.call("POST", "/api/v1/groups/join", {"code": admin_invite["code"]}, admin)
        assert joined.status == 200, joined

        def demote(group_id=group["id"], user_id=admin_id, delay=round_ * 0.004):
            time.sleep(delay)
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE group_memberships SET role = 'member'"
                        " WHERE group_id = :g AND user_id = :u"
                    ),
                    {"g": group_id, "u": user_id},
                )

        demoter = threading.Thread(target=demote)
        demoter.start()
        replies = fire_together(
            server,
            [("POST", f"/api/v1/groups/{group['id']}/invites", {}, admin)] * MAX_ACTIVE_INVITES,
        )
        demoter.join(timeout=30)
        assert set(statuses(replies)) <= {201, 403}, replies
        survivors = scalar(
            engine,
            "SELECT count(*) FROM group_invites"
            " WHERE group_id = :g AND created_by = :u AND revoked_at IS NULL",
            g=group["id"],
            u=admin_id,
        )
        assert survivors == 0, f"round {round_}: {survivors} invites outlived the demotion"


def test_deleting_a_group_under_load_gives_clean_answers(server, engine):
    # Groups are deleted elsewhere (cascading to invites and memberships). Joins
    # and creates racing the delete must end in a success or a clean 404, never
    # in a deadlock surfacing as a 5xx.
    allowed = {200, 201, 404}
    for round_ in range(4):
        _, owner = new_token("Owner")
        group = create_group(server, owner)
        invite = create_invite(server, owner, group["id"], max_uses=50)
        calls = [("POST", f"/api/v1/groups/{group['id']}/invites", {}, owner)] * 4
        calls += [
            ("POST", "/api/v1/groups/join", {"code": invite["code"]}, new_token(f"J{i}")[1])
            for i in range(12)
        ]

        def delete(group_id=group["id"], delay=round_ * 0.003):
            time.sleep(delay)
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM groups WHERE id = :g"), {"g": group_id})

        deleter = threading.Thread(target=delete)
        deleter.start()
        replies = fire_together(server, calls)
        deleter.join(timeout=30)
        assert set(statuses(replies)) <= allowed, [r for r in replies if r.status not in allowed]
        assert scalar(engine, "SELECT count(*) FROM groups WHERE id = :g", g=group["id"]) == 0
