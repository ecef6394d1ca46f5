"""Managing invites: create, list, get one, revoke, redemptions."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from tests.helpers import User, make_token

CODE = re.compile(r"^[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}-[A-HJ-NP-Z2-9]{3}$")
INVITE_FIELDS = {
    "id",
    "group_id",
    "code",
    "preset_role",
    "max_uses",
    "current_uses",
    "expires_at",
    "created_by",
    "created_at",
    "invite_url",
}


def _parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _invites_url(group_id) -> str:
    return f"/api/v1/groups/{group_id}/invites"


# --- create -----------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}], ids=["no-body", "empty-object"])
def test_create_invite_defaults(api, owner, group, body):
    kwargs = {} if body is None else {"json": body}
    response = api.client.post(_invites_url(group["id"]), headers=owner.headers, **kwargs)
    assert response.status_code == 201
    invite = response.get_json()
    assert set(invite) == INVITE_FIELDS
    assert CODE.match(invite["code"])
    assert invite["group_id"] == group["id"]
    assert invite["preset_role"] == "member"
    assert invite["max_uses"] == 1
    assert invite["current_uses"] == 0
    assert invite["created_by"] == str(owner.id)
    lifetime = _parse(invite["expires_at"]) - _parse(invite["created_at"])
    assert lifetime == dt.timedelta(hours=24)
    assert invite["invite_url"] == f"https://invites.example/join/{invite['code']}"
    assert response.headers["Location"] == (f"/api/v1/groups/{group['id']}/invites/{invite['id']}")


def test_create_invite_with_every_field(api, owner, group):
    invite = api.create_invite(
        owner, group["id"], preset_role="viewer", max_uses=100, expires_in_hours=168
    )
    assert (invite["preset_role"], invite["max_uses"]) == ("viewer", 100)
    assert _parse(invite["expires_at"]) - _parse(invite["created_at"]) == dt.timedelta(days=7)


def test_codes_are_distinct(api, owner, group):
    codes = {api.create_invite(owner, group["id"])["code"] for _ in range(20)}
    assert len(codes) == 20


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"preset_role": "owner"}, "preset_role"),
        ({"preset_role": "ADMIN"}, "preset_role"),
        ({"preset_role": None}, "preset_role"),
        ({"max_uses": 0}, "max_uses"),
        ({"max_uses": 101}, "max_uses"),
        ({"max_uses": -1}, "max_uses"),
        ({"max_uses": "5"}, "max_uses"),
        ({"max_uses": 5.5}, "max_uses"),
        ({"max_uses": 5.0}, "max_uses"),
        ({"max_uses": True}, "max_uses"),
        ({"max_uses": None}, "max_uses"),
        ({"max_uses": 10**30}, "max_uses"),
        ({"expires_in_hours": 0}, "expires_in_hours"),
        ({"expires_in_hours": 169}, "expires_in_hours"),
        ({"expires_in_hours": "24"}, "expires_in_hours"),
        ({"expires_in_hours": False}, "expires_in_hours"),
        ({"code": "AAA-BBB-CCC"}, "code"),
        ({"current_uses": 0}, "current_uses"),
    ],
)
def test_create_invite_validation(api, owner, group, body, field):
    before = api.snapshot(group["id"])
    response = api.client.post(_invites_url(group["id"]), json=body, headers=owner.headers)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["error"] == "validation_error"
    assert [d["field"] for d in payload["details"]] == [field]
    assert api.snapshot(group["id"]) == before


def test_range_message_matches_the_contract(api, owner, group):
    response = api.client.post(
        _invites_url(group["id"]), json={"max_uses": 500}, headers=owner.headers
    )
    assert response.get_json() == {
        "error": "validation_error",
        "message": "max_uses: must be between 1 and 100",
        "details": [{"field": "max_uses", "message": "Must be between 1 and 100."}],
    }


@pytest.mark.parametrize(
    ("data", "content_type", "status", "error"),
    [
        ("{not json", "application/json", 400, "validation_error"),
        ("[1, 2]", "application/json", 400, "validation_error"),
        ('"text"', "application/json", 400, "validation_error"),
        ("null", "application/json", 400, "validation_error"),
        ("max_uses=5", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"max_uses": 5}', "text/plain", 415, "unsupported_media_type"),
        ("[" * 5000 + "]" * 5000, "application/json", 400, "validation_error"),
        (b'{"max_uses": 1}\xff', "application/json", 400, "validation_error"),
        ('{"max_uses": 2}', "application/merge-patch+json", 415, "unsupported_media_type"),
        ('{"max_uses": 2}', "text/json", 415, "unsupported_media_type"),
        ('\ufeff{"max_uses": 2}', "application/json", 400, "validation_error"),
        ('{"max_uses": 2}'.encode("utf-16"), "application/json", 400, "validation_error"),
        ("\x0b", "application/json", 400, "validation_error"),
        (" \x0c\n", "application/json", 400, "validation_error"),
        (" \t\n\r", "application/json", 400, "validation_error"),
    ],
    ids=[
        "broken",
        "array",
        "string",
        "null",
        "form",
        "text-plain",
        "deep",
        "bad-utf8",
        "plus-json",
        "text-json",
        "bom",
        "utf-16",
        "vertical-tab",
        "form-feed",
        "json-whitespace",
    ],
)
def test_bodies_that_are_not_json_objects(api, owner, group, data, content_type, status, error):
    before = api.snapshot(group["id"])
    response = api.client.post(
        _invites_url(group["id"]), data=data, content_type=content_type, headers=owner.headers
    )
    assert response.status_code == status
    assert response.get_json()["error"] == error
    assert api.snapshot(group["id"]) == before


@pytest.mark.parametrize("depth", [33, 400, 900])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_bodies_are_a_400_not_a_crash(api, owner, group, depth, shape):
    # Deep enough to parse, yet deeper than any check may recurse.
    inner = "[" * depth + "]" * depth
    body = inner if shape == "array" else '{"preset_role": ' + inner + "}"
    before = api.snapshot(group["id"])
    response = api.client.post(
        _invites_url(group["id"]), data=body, content_type="application/json", headers=owner.headers
    )
    assert response.status_code == 400
    assert response.get_json()["details"] == [{"field": "body", "message": "Nested too deeply."}]
    assert api.snapshot(group["id"]) == before


def test_nesting_up_to_the_limit_is_judged_by_the_schema(api, owner, group):
    body = '{"preset_role": ' + "[" * 31 + "]" * 31 + "}"
    response = api.client.post(
        _invites_url(group["id"]), data=body, content_type="application/json", headers=owner.headers
    )
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "preset_role"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"max_uses": 200, "max_uses": 2}', "max_uses"),
        ('{"max_uses": 2, "max_uses": 200}', "max_uses"),
        ('{"preset_role": "admin", "max_uses": 2, "preset_role": "member"}', "preset_role"),
    ],
)
def test_a_key_given_twice_is_refused_whichever_comes_last(api, owner, group, body, key):
    # Parsers disagree on which duplicate wins; a gateway and this service
    # must not read one body two ways.
    before = api.snapshot(group["id"])
    response = api.client.post(
        _invites_url(group["id"]), data=body, content_type="application/json", headers=owner.headers
    )
    assert response.status_code == 400
    assert response.get_json()["details"] == [
        {"field": "body", "message": f"The key '{key}' appears more than once."}
    ]
    assert api.snapshot(group["id"]) == before


def test_oversized_body(api, owner, group):
    before = api.snapshot(group["id"])
    body = '{"preset_role": "' + "m" * 20000 + '"}'
    response = api.client.post(
        _invites_url(group["id"]), data=body, content_type="application/json", headers=owner.headers
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"
    assert api.snapshot(group["id"]) == before


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_manage(api, group, role):
    user = api.member(group["id"], role)
    before = api.snapshot(group["id"])
    for method, path in [
        ("POST", _invites_url(group["id"])),
        ("GET", _invites_url(group["id"])),
        ("GET", f"{_invites_url(group['id'])}/{uuid.uuid4()}"),
        ("DELETE", f"{_invites_url(group['id'])}/{uuid.uuid4()}"),
        ("GET", f"{_invites_url(group['id'])}/{uuid.uuid4()}/redemptions"),
    ]:
        response = api.client.open(path, method=method, headers=user.headers)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"] == "forbidden"
    assert api.snapshot(group["id"]) == before


def test_strangers_get_404_for_everything(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    stranger = api.user("Stranger")
    base = _invites_url(group["id"])
    for method, path in [
        ("POST", base),
        ("GET", base),
        ("GET", f"{base}/{invite['id']}"),
        ("DELETE", f"{base}/{invite['id']}"),
        ("GET", f"{base}/{invite['id']}/redemptions"),
        ("POST", _invites_url(uuid.uuid4())),
    ]:
        response = api.client.open(path, method=method, headers=stranger.headers)
        assert response.status_code == 404, (method, path)
        assert response.get_json()["error"] == "group_not_found"
    assert api.invite_row(invite["id"])["revoked_at"] is None


def test_admin_can_create_member_and_viewer_invites(api, group):
    admin = api.member(group["id"], "admin")
    for role in ("member", "viewer"):
        assert api.create_invite(admin, group["id"], preset_role=role)["preset_role"] == role


def test_only_the_owner_mints_admin_invites(api, owner, group):
    admin = api.member(group["id"], "admin")
    before = api.snapshot(group["id"])
    response = api.client.post(
        _invites_url(group["id"]), json={"preset_role": "admin"}, headers=admin.headers
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "preset_role_not_allowed"
    assert api.snapshot(group["id"]) == before
    assert api.create_invite(owner, group["id"], preset_role="admin")["preset_role"] == "admin"


def test_active_invite_cap(app, api, owner, group, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_ACTIVE_INVITES_PER_GROUP", 3)
    invites = [api.create_invite(owner, group["id"]) for _ in range(3)]
    response = api.client.post(_invites_url(group["id"]), headers=owner.headers)
    assert response.status_code == 409
    assert response.get_json()["error"] == "invite_limit_reached"
    assert len(api.snapshot(group["id"])["invites"]) == 3
    # Inactive invites do not count: revoking, expiring or using one frees a slot.
    api.client.delete(f"{_invites_url(group['id'])}/{invites[0]['id']}", headers=owner.headers)
    fourth = api.create_invite(owner, group["id"])
    api.expire(invites[1]["id"])
    api.create_invite(owner, group["id"])
    assert api.join(api.user("Joiner"), fourth["code"]).status_code == 200
    api.create_invite(owner, group["id"])
    assert api.client.post(_invites_url(group["id"]), headers=owner.headers).status_code == 409


# --- list -------------------------------------------------------------------


def test_list_shows_only_active_invites_newest_first(api, owner, group):
    admin = api.member(group["id"], "admin", name="Adam Admin")
    oldest = api.create_invite(owner, group["id"], max_uses=3)
    by_admin = api.create_invite(admin, group["id"], preset_role="viewer")
    expired = api.create_invite(owner, group["id"])
    used_up = api.create_invite(owner, group["id"])
    revoked = api.create_invite(owner, group["id"])
    newest = api.create_invite(owner, group["id"], preset_role="admin")
    api.expire(expired["id"])
    assert api.join(api.user("U"), used_up["code"]).status_code == 200
    assert api.join(api.user("V"), oldest["code"]).status_code == 200
    api.client.delete(f"{_invites_url(group['id'])}/{revoked['id']}", headers=owner.headers)

    response = api.client.get(_invites_url(group["id"]), headers=admin.headers)
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert [i["id"] for i in data] == [newest["id"], by_admin["id"], oldest["id"]]
    first = data[2]
    assert set(first) == {
        "id",
        "code",
        "preset_role",
        "max_uses",
        "current_uses",
        "expires_at",
        "created_at",
        "created_by",
    }
    assert first["code"] == oldest["code"]
    assert (first["max_uses"], first["current_uses"]) == (3, 1)
    assert first["created_by"] == {"id": str(owner.id), "display_name": "Olivia Owner"}
    assert data[1]["created_by"] == {"id": str(admin.id), "display_name": "Adam Admin"}


def test_list_of_a_group_without_invites(api, owner, group):
    response = api.client.get(_invites_url(group["id"]), headers=owner.headers)
    assert response.get_json() == {"data": []}


# --- creator authority ------------------------------------------------------


def test_invites_of_a_demoted_admin_stop_working(api, owner, group):
    admin = api.member(group["id"], "admin")
    invite = api.create_invite(admin, group["id"], max_uses=5)
    api.set_role(group["id"], admin, "member")

    listed = api.client.get(_invites_url(group["id"]), headers=owner.headers).get_json()["data"]
    assert invite["id"] not in [i["id"] for i in listed]
    assert api.client.get(f"/api/v1/invites/{invite['code']}").status_code == 404
    joined = api.join(api.user("Late"), invite["code"])
    assert joined.status_code == 404
    assert joined.get_json()["error"] == "invite_not_found"
    detail = api.client.get(
        f"{_invites_url(group['id'])}/{invite['id']}", headers=owner.headers
    ).get_json()
    assert detail["status"] == "revoked"
    assert api.invite_row(invite["id"])["current_uses"] == 0

    row = api.invite_row(invite["id"])
    assert row["revoked_reason"] == "creator_lost_authority"
    assert row["revoked_by"] is None
    # Restoring the role does not bring a possibly leaked code back.
    api.set_role(group["id"], admin, "admin")
    assert api.join(api.user("Later"), invite["code"]).status_code == 404
    assert api.client.get(f"/api/v1/invites/{invite['code']}").status_code == 404


def test_lost_authority_frees_the_cap_for_good(app, api, owner, group, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_ACTIVE_INVITES_PER_GROUP", 2)
    admin = api.member(group["id"], "admin")
    api.create_invite(admin, group["id"])
    api.create_invite(admin, group["id"])
    api.set_role(group["id"], admin, "member")
    api.create_invite(owner, group["id"])
    api.create_invite(owner, group["id"])
    api.set_role(group["id"], admin, "admin")
    listed = api.client.get(_invites_url(group["id"]), headers=owner.headers).get_json()["data"]
    assert len(listed) == 2
    assert {i["created_by"]["id"] for i in listed} == {str(owner.id)}


def test_demoting_someone_else_leaves_their_invites_alone(api, owner, group):
    admin = api.member(group["id"], "admin")
    other_admin = api.member(group["id"], "admin")
    invite = api.create_invite(admin, group["id"])
    api.set_role(group["id"], other_admin, "viewer")
    assert api.invite_row(invite["id"])["revoked_at"] is None
    assert api.join(api.user("Ok"), invite["code"]).status_code == 200


def test_admin_invite_needs_its_creator_to_still_be_owner(api, owner, group, engine):
    import sqlalchemy as sa

    invite = api.create_invite(owner, group["id"], preset_role="admin")
    earlier_member_invite = api.create_invite(owner, group["id"], preset_role="viewer")
    successor = api.member(group["id"], "admin")
    with engine.begin() as conn:  # ownership moves to someone else
        conn.execute(
            sa.text(
                "UPDATE group_memberships SET role = 'admin' WHERE group_id = :g AND user_id = :u"
            ),
            {"g": group["id"], "u": owner.id},
        )
        conn.execute(
            sa.text(
                "UPDATE group_memberships SET role = 'owner' WHERE group_id = :g AND user_id = :u"
            ),
            {"g": group["id"], "u": successor.id},
        )
    assert api.client.get(f"/api/v1/invites/{invite['code']}").status_code == 404
    assert api.join(api.user("Hopeful"), invite["code"]).status_code == 404
    assert api.invite_row(invite["id"])["revoked_reason"] == "creator_lost_authority"
    # ...while the former owner's invites within an admin's authority survive the
    # transfer, those made before it included.
    assert api.invite_row(earlier_member_invite["id"])["revoked_at"] is None
    assert api.join(api.user("Viewer"), earlier_member_invite["code"]).status_code == 200
    member_invite = api.create_invite(owner, group["id"])
    assert api.join(api.user("Fine"), member_invite["code"]).status_code == 200


def test_invites_of_a_creator_who_left_stop_working(api, owner, group, engine):
    import sqlalchemy as sa

    admin = api.member(group["id"], "admin")
    invite = api.create_invite(admin, group["id"])
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM group_memberships WHERE group_id = :g AND user_id = :u"),
            {"g": group["id"], "u": admin.id},
        )
    assert api.client.get(f"/api/v1/invites/{invite['code']}").status_code == 404
    row = api.invite_row(invite["id"])
    assert (row["revoked_reason"], row["revoked_by"]) == ("creator_lost_authority", None)
    # Coming back as an admin does not revive the code.
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO group_memberships (group_id, user_id, role) VALUES (:g, :u, 'admin')"
            ),
            {"g": group["id"], "u": admin.id},
        )
    assert api.join(api.user("Hopeful"), invite["code"]).status_code == 404


# --- get one ----------------------------------------------------------------


def test_get_invite_reports_each_status(api, owner, group):
    base = _invites_url(group["id"])
    active = api.create_invite(owner, group["id"])
    expired = api.create_invite(owner, group["id"])
    exhausted = api.create_invite(owner, group["id"])
    revoked = api.create_invite(owner, group["id"])
    api.expire(expired["id"])
    api.join(api.user("J"), exhausted["code"])
    api.client.delete(f"{base}/{revoked['id']}", headers=owner.headers)

    for invite, status in [
        (active, "active"),
        (expired, "expired"),
        (exhausted, "exhausted"),
        (revoked, "revoked"),
    ]:
        response = api.client.get(f"{base}/{invite['id']}", headers=owner.headers)
        assert response.status_code == 200
        body = response.get_json()
        assert body["status"] == status
        assert set(body) == INVITE_FIELDS | {"status"}
        assert body["code"] == invite["code"]
    exhausted_body = api.client.get(f"{base}/{exhausted['id']}", headers=owner.headers)
    assert exhausted_body.get_json()["current_uses"] == 1


def test_get_invite_of_another_group_is_not_found(api, owner, group):
    other_group = api.create_group(owner, name="Other")
    foreign = api.create_invite(owner, other_group["id"])
    for invite_id in (foreign["id"], str(uuid.uuid4())):
        response = api.client.get(f"{_invites_url(group['id'])}/{invite_id}", headers=owner.headers)
        assert response.status_code == 404
        assert response.get_json()["error"] == "invite_not_found"


def test_malformed_invite_id(api, owner, group):
    response = api.client.get(f"{_invites_url(group['id'])}/1234", headers=owner.headers)
    assert response.status_code == 400
    assert response.get_json()["details"] == [
        {"field": "invite_id", "message": "Not a valid UUID."}
    ]


# --- revoke -----------------------------------------------------------------


def test_revoke_is_recorded_idempotent_and_final(api, owner, group):
    admin = api.member(group["id"], "admin")
    invite = api.create_invite(owner, group["id"], max_uses=5)
    path = f"{_invites_url(group['id'])}/{invite['id']}"

    first = api.client.delete(path, headers=admin.headers)
    assert first.status_code == 204
    assert first.data == b""
    row = api.invite_row(invite["id"])
    assert row["revoked_by"] == admin.id
    assert row["revoked_at"] is not None

    again = api.client.delete(path, headers=owner.headers)
    assert again.status_code == 204
    # The first revocation is what is remembered.
    assert api.invite_row(invite["id"])["revoked_reason"] == "revoked"
    assert api.invite_row(invite["id"])["revoked_by"] == admin.id
    assert api.invite_row(invite["id"])["revoked_at"] == row["revoked_at"]

    assert api.client.get(f"/api/v1/invites/{invite['code']}").status_code == 404
    assert api.join(api.user("X"), invite["code"]).status_code == 404
    listed = api.client.get(_invites_url(group["id"]), headers=owner.headers).get_json()
    assert listed == {"data": []}


def test_revoke_unknown_or_foreign_invite(api, owner, group):
    other_group = api.create_group(owner, name="Other")
    foreign = api.create_invite(owner, other_group["id"])
    for invite_id in (foreign["id"], str(uuid.uuid4())):
        response = api.client.delete(
            f"{_invites_url(group['id'])}/{invite_id}", headers=owner.headers
        )
        assert response.status_code == 404
        assert response.get_json()["error"] == "invite_not_found"
    assert api.invite_row(foreign["id"])["revoked_at"] is None


# --- redemptions ------------------------------------------------------------


def test_redemptions_oldest_first(api, owner, group):
    invite = api.create_invite(owner, group["id"], max_uses=3, preset_role="viewer")
    path = f"{_invites_url(group['id'])}/{invite['id']}/redemptions"
    assert api.client.get(path, headers=owner.headers).get_json() == {"data": []}

    first, second = api.user("First"), api.user("Second")
    assert api.join(first, invite["code"]).status_code == 200
    assert api.join(second, invite["code"]).status_code == 200
    data = api.client.get(path, headers=owner.headers).get_json()["data"]
    assert [(r["user_id"], r["display_name"], r["role"]) for r in data] == [
        (str(first.id), "First", "viewer"),
        (str(second.id), "Second", "viewer"),
    ]
    assert _parse(data[0]["joined_at"]) <= _parse(data[1]["joined_at"])


def test_redemptions_of_unknown_invite(api, owner, group):
    response = api.client.get(
        f"{_invites_url(group['id'])}/{uuid.uuid4()}/redemptions", headers=owner.headers
    )
    assert response.status_code == 404
    assert response.get_json()["error"] == "invite_not_found"


@pytest.mark.parametrize(
    "raw",
    [
        '{"max_uses": ' + "9" * 5000 + "}",
        '{"preset_role": "\\ud800"}',
        '{"\\udfff": 1}',
    ],
    ids=["huge-integer", "lone-surrogate-value", "lone-surrogate-key"],
)
def test_hostile_json_is_a_400(api, owner, group, raw):
    before = api.snapshot(group["id"])
    response = api.client.post(
        _invites_url(group["id"]), data=raw, content_type="application/json", headers=owner.headers
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"
    assert api.snapshot(group["id"]) == before


# --- the creator's display name ---------------------------------------------


def test_a_create_refreshes_the_creators_name_and_a_refused_one_does_not(
    app, api, owner, group, sql, monkeypatch
):
    def renamed(name):
        return User(owner.id, name, make_token(str(owner.id), name=name))

    api.create_invite(renamed("Olivia O."), group["id"])
    assert sql("SELECT display_name FROM users WHERE id = :u", u=owner.id) == [
        {"display_name": "Olivia O."}
    ]
    monkeypatch.setitem(app.config, "MAX_ACTIVE_INVITES_PER_GROUP", 1)
    before = api.snapshot(group["id"])
    response = api.client.post(_invites_url(group["id"]), headers=renamed("Olive").headers)
    assert response.status_code == 409
    assert api.snapshot(group["id"]) == before  # users included: the name is unchanged
