"""Idempotency-Key on the three POSTs, through the app, on real PostgreSQL.

Each rule of the contract's "Retries": a repeat is replayed without doing the
work again, another request under the key is a 422, a key in use is a 409,
keys belong to their caller, a failed request leaves no key, and expired keys
neither replay nor pile up.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
import sqlalchemy as sa

from app.code_keys import CodeKeyring, idempotency_context
from app.services import idempotency as keys
from app.unit_of_work import UnitOfWork
from tests.helpers import CODE_KEYS, scalar

KEY = "Idempotency-Key"


def _post(api, user, path: str, body=None, key: str | None = None, **kwargs):
    headers = {**user.headers, **({KEY: key} if key is not None else {})}
    if body is None and "data" not in kwargs:
        return api.client.post(path, headers=headers, **kwargs)
    if "data" in kwargs:
        return api.client.post(path, headers=headers, content_type="application/json", **kwargs)
    return api.client.post(path, json=body, headers=headers)


def _key() -> str:
    return f"key-{uuid.uuid4()}"


def _groups_named(engine, name: str) -> int:
    return scalar(engine, "SELECT count(*) FROM groups WHERE name = :n", n=name)


def _keys_of(engine, user) -> int:
    return scalar(engine, "SELECT count(*) FROM idempotency_keys WHERE user_id = :u", u=user.id)


def test_a_repeat_is_replayed_without_doing_the_work_again(api, owner, engine):
    key, name = _key(), f"Once {uuid.uuid4().hex[:6]}"
    first = _post(api, owner, "/api/v1/groups", {"name": name}, key)
    again = _post(api, owner, "/api/v1/groups", {"name": name}, key)
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Content-Type"] == "application/json"
    assert _groups_named(engine, name) == 1
    assert _keys_of(engine, owner) == 1


def test_formatting_and_key_order_do_not_make_another_request(api, owner, group, engine):
    key, path = _key(), f"/api/v1/groups/{group['id']}/invites"
    first = _post(api, owner, path, key=key, data='{"max_uses": 2, "preset_role": "viewer"}')
    again = _post(api, owner, path, key=key, data='{ "preset_role":"viewer","max_uses":2 }')
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    count = "SELECT count(*) FROM group_invites WHERE group_id = :g"
    assert scalar(engine, count, g=group["id"]) == 1


@pytest.mark.parametrize(
    ("second_path", "second_body"),
    [
        ("/api/v1/groups", {"name": "Another name"}),
        ("/api/v1/groups", {"name": "Same name", "description": "but more"}),
        ("/api/v1/groups/join", {"code": "ABC-234-XYZ"}),
    ],
)
def test_the_same_key_for_another_request_is_a_422(api, owner, engine, second_path, second_body):
    key = _key()
    assert _post(api, owner, "/api/v1/groups", {"name": "Same name"}, key).status_code == 201
    groups_before = scalar(engine, "SELECT count(*) FROM groups")
    response = _post(api, owner, second_path, second_body, key)
    assert response.status_code == 422
    assert response.get_json() == {
        "error": "idempotency_key_reused",
        "message": "This Idempotency-Key was already used for a different request.",
    }
    assert scalar(engine, "SELECT count(*) FROM groups") == groups_before


def test_another_group_in_the_path_is_another_request(api, owner, engine):
    key = _key()
    group_a, group_b = api.create_group(owner, name="A"), api.create_group(owner, name="B")
    first = _post(api, owner, f"/api/v1/groups/{group_a['id']}/invites", {}, key)
    other = _post(api, owner, f"/api/v1/groups/{group_b['id']}/invites", {}, key)
    assert (first.status_code, other.status_code) == (201, 422)
    count = "SELECT count(*) FROM group_invites WHERE group_id = :g"
    assert scalar(engine, count, g=group_b["id"]) == 0


def test_keys_belong_to_their_caller(api, engine):
    alice, bob = api.user("Alice"), api.user("Bob")
    key, name = _key(), f"Shared key {uuid.uuid4().hex[:6]}"
    for_alice = _post(api, alice, "/api/v1/groups", {"name": name}, key)
    for_bob = _post(api, bob, "/api/v1/groups", {"name": name}, key)
    assert (for_alice.status_code, for_bob.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in for_bob.headers
    assert for_bob.get_json()["id"] != for_alice.get_json()["id"]
    assert _groups_named(engine, name) == 2
    # Bob's other request under the same key is his business, not Alice's.
    assert _post(api, bob, "/api/v1/groups", {"name": "else"}, key).status_code == 422
    assert _post(api, alice, "/api/v1/groups", {"name": name}, key).status_code == 201


def test_the_quoted_form_is_the_same_key(api, owner, engine):
    name = f"Quoted {uuid.uuid4().hex[:6]}"
    first = _post(api, owner, "/api/v1/groups", {"name": name}, 'a "quoted" \\ key')
    again = _post(api, owner, "/api/v1/groups", {"name": name}, '"a \\"quoted\\" \\\\ key"')
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _groups_named(engine, name) == 1


@pytest.mark.parametrize(
    "key",
    ["", " ", "x" * 256, "é", "tab\there", '"', '"unterminated', '"a"b"', '"bad \\x escape"'],
)
def test_a_malformed_key_is_a_400_and_changes_nothing(api, owner, engine, key):
    groups_before = scalar(engine, "SELECT count(*) FROM groups")
    response = _post(api, owner, "/api/v1/groups", {"name": "Keyed"}, key)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert body["details"][0]["field"] == "Idempotency-Key"
    assert scalar(engine, "SELECT count(*) FROM groups") == groups_before
    assert _keys_of(engine, owner) == 0


def test_the_longest_keys_are_accepted(api, owner):
    for key in ("~" * 255, '"' + '\\"' * 255 + '"'):
        assert _post(api, owner, "/api/v1/groups", {"name": "Long key"}, key).status_code == 201


def test_a_refused_request_leaves_no_key_and_can_be_retried(api, owner, engine):
    key, name = _key(), f"Retried {uuid.uuid4().hex[:6]}"
    refused = _post(api, owner, "/api/v1/groups", {"name": ""}, key)
    assert refused.status_code == 400
    assert _keys_of(engine, owner) == 0
    fixed = _post(api, owner, "/api/v1/groups", {"name": name}, key)
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed.headers
    assert _groups_named(engine, name) == 1


def test_a_forbidden_request_leaves_no_key(api, owner, group, engine):
    member = api.member(group["id"], "member")
    path, key = f"/api/v1/groups/{group['id']}/invites", _key()
    assert _post(api, member, path, {}, key).status_code == 403
    api.set_role(group["id"], member, "admin")
    promoted = _post(api, member, path, {}, key)
    assert promoted.status_code == 201
    assert "Idempotent-Replayed" not in promoted.headers


def test_a_join_is_replayed_with_its_membership(api, owner, group, engine):
    invite = api.create_invite(owner, group["id"], max_uses=5)
    joiner, key = api.user("Jo"), _key()
    first = _post(api, joiner, "/api/v1/groups/join", {"code": invite["code"]}, key)
    again = _post(api, joiner, "/api/v1/groups/join", {"code": invite["code"]}, key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["membership"] == first.get_json()["membership"]
    assert api.invite_row(invite["id"])["current_uses"] == 1
    # Without the key, the same join is what it is: the caller is a member now.
    plain = api.join(joiner, invite["code"])
    assert (plain.status_code, plain.get_json()["error"]) == (409, "already_member")


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ("exhausted", 410, "invite_exhausted"),
        ("expired", 410, "invite_expired"),
        ("revoked", 404, "invite_not_found"),
        ("member", 409, "already_member"),
    ],
)
def test_outcomes_the_join_decided_are_replayed(api, owner, group, setup, status, code):
    invite = api.create_invite(owner, group["id"], max_uses=1)
    joiner = api.user("Late")
    if setup == "exhausted":
        assert api.join(api.user("First"), invite["code"]).status_code == 200
    elif setup == "expired":
        api.expire(invite["id"])
    elif setup == "revoked":
        api.client.delete(
            f"/api/v1/groups/{group['id']}/invites/{invite['id']}", headers=owner.headers
        )
    else:
        joiner = api.member(group["id"], "viewer")
    key = _key()
    first = _post(api, joiner, "/api/v1/groups/join", {"code": invite["code"]}, key)
    again = _post(api, joiner, "/api/v1/groups/join", {"code": invite["code"]}, key)
    assert (first.status_code, first.get_json()["error"]) == (status, code)
    assert (again.status_code, again.get_json()) == (status, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_replayed_limit_outcome_stays_put_after_a_revoke(make_app, api, owner, group, engine):
    app = make_app(MAX_ACTIVE_INVITES_PER_GROUP=1)
    client = app.test_client()
    path = f"/api/v1/groups/{group['id']}/invites"
    made = client.post(path, json={}, headers=owner.headers).get_json()
    key = _key()
    headers = {**owner.headers, KEY: key}
    full = client.post(path, json={}, headers=headers)
    assert (full.status_code, full.get_json()["error"]) == (409, "invite_limit_reached")
    client.delete(f"{path}/{made['id']}", headers=owner.headers)
    again = client.post(path, json={}, headers=headers)
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (409, "true")
    count = "SELECT count(*) FROM group_invites WHERE group_id = :g AND revoked_at IS NULL"
    assert scalar(engine, count, g=group["id"]) == 0


def _lock_id(user_id: uuid.UUID, key: str) -> int:
    digest = hashlib.sha256(user_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def test_a_key_in_use_is_a_409_with_retry_after(api, owner, engine):
    key, name = _key(), f"Busy {uuid.uuid4().hex[:6]}"
    with engine.connect() as other:  # another request holding the key
        other.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(owner.id, key)})
        busy = _post(api, owner, "/api/v1/groups", {"name": name}, key)
        other.rollback()
    assert busy.status_code == 409
    assert busy.get_json()["error"] == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == "1"
    assert _groups_named(engine, name) == 0
    after = _post(api, owner, "/api/v1/groups", {"name": name}, key)
    assert after.status_code == 201
    assert "Idempotent-Replayed" not in after.headers


def test_an_expired_key_neither_replays_nor_refuses(api, owner, engine):
    key = _key()
    assert _post(api, owner, "/api/v1/groups", {"name": "Old"}, key).status_code == 201
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 second'"
                " WHERE user_id = :u"
            ),
            {"u": owner.id},
        )
    fresh = _post(api, owner, "/api/v1/groups", {"name": "New"}, key)
    assert fresh.status_code == 201
    assert "Idempotent-Replayed" not in fresh.headers
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT body_key, body_sealed FROM idempotency_keys WHERE user_id = :u"),
            {"u": owner.id},
        ).one()
    context = idempotency_context(owner.id, key)
    stored = json.loads(CodeKeyring.parse(CODE_KEYS).open_text(*row, context))
    assert stored["name"] == "New"


def test_expired_keys_are_purged_in_bounded_batches(engine):
    user = uuid.uuid4()
    with engine.begin() as conn:
        for index, age in enumerate(["25 hours"] * 5 + ["1 hour"] * 2):
            conn.execute(
                sa.text(
                    "INSERT INTO idempotency_keys"
                    " (user_id, key, fingerprint, status, body_key, body_sealed, created_at)"
                    " VALUES (:u, :k, :f, 201, 'test', '', now() - CAST(:age AS interval))"
                ),
                {"u": user, "k": f"k{index}", "f": b"\0" * 32, "age": age},
            )

    def purge(batch: int) -> int:
        with UnitOfWork(engine) as uow:
            removed = keys.purge_expired(uow, batch=batch)
            uow.commit()
        return removed

    purged = [purge(3) for _ in range(3)]
    # Other tests' expired keys may be purged too; ours go, oldest first, 3 at most a time.
    assert all(n <= 3 for n in purged)
    left = scalar(engine, "SELECT count(*) FROM idempotency_keys WHERE user_id = :u", u=user)
    assert left == 2
