"""Shapes every platform's default parser reads, on every response of the flow:
timestamps in whole seconds with ``Z``, and optional text ``null``, never ``""``."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import sqlalchemy as sa
from flask import url_for

from app.api.schemas import (
    InviteListSchema,
    InvitePreviewSchema,
    InviteSchema,
    JoinResultSchema,
)
from app.services.invites import preview_invite
from app.unit_of_work import read

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
LOOKS_LIKE_A_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def _walk(value, path="$"):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def _check(body) -> int:
    """Assert the shapes; return how many timestamps were seen."""
    times = 0
    for path, value in _walk(body):
        assert value != "", path
        if path.endswith("_at") and value is not None:
            assert isinstance(value, str), (path, value)
            assert TIMESTAMP.match(value), (path, value)
            times += 1
        elif isinstance(value, str) and LOOKS_LIKE_A_TIME.match(value):
            raise AssertionError(f"{path}: a time under a name without _at: {value}")
    return times


def test_every_response_of_the_flow_has_whole_second_times_and_no_empty_text(client, api, sql):
    owner, joiner = api.user("Owner"), api.user("   ")  # a blank name claim is no name
    replies = []

    def call(method: str, path: str, user=None, **kwargs):
        response = client.open(path, method=method, headers=user.headers if user else {}, **kwargs)
        replies.append((f"{method} {path}", response.status_code, response.get_json()))
        return response.get_json()

    group = call(
        "POST",
        "/api/v1/groups",
        owner,
        json={"name": "Smiths", "description": "  ", "icon_emoji": ""},
    )
    assert (group["description"], group["icon_emoji"]) == (None, None)
    gid = group["id"]
    call("GET", f"/api/v1/groups/{gid}", owner)
    invite = call("POST", f"/api/v1/groups/{gid}/invites", owner, json={"max_uses": 1})
    call("GET", f"/api/v1/groups/{gid}/invites", owner)
    call("GET", f"/api/v1/groups/{gid}/invites/{invite['id']}", owner)
    call("GET", f"/api/v1/invites/{invite['code']}")
    call("POST", "/api/v1/groups/join", joiner, json={"code": invite["code"]})
    call("GET", f"/api/v1/groups/{gid}/invites/{invite['id']}/redemptions", owner)
    call("GET", f"/api/v1/invites/{invite['code']}")  # exhausted
    call("POST", "/api/v1/groups/join", joiner, json={"code": invite["code"]})  # 409
    call("DELETE", f"/api/v1/groups/{gid}/invites/{invite['id']}", owner)
    call("POST", "/api/v1/groups", owner, json={"name": ""})  # 400 with details

    assert [status for _, status, _ in replies] == [
        201,
        200,
        201,
        200,
        200,
        200,
        200,
        200,
        200,
        409,
        204,
        400,
    ]
    times = sum(_check(body) for _, _, body in replies if body is not None)
    assert times >= 10
    # Stored as null too, not only shown so.
    row = sql("SELECT description, icon_emoji FROM groups WHERE id = :g", g=gid)[0]
    assert (row["description"], row["icon_emoji"]) == (None, None)
    name = sql("SELECT display_name FROM users WHERE id = :u", u=joiner.id)[0]
    assert name["display_name"] is None


def test_an_expiry_is_whole_seconds_in_the_database_too(api, owner, group, sql):
    invite = api.create_invite(owner, group["id"], expires_in_hours=1)
    stored = sql("SELECT expires_at FROM group_invites WHERE id = :i", i=invite["id"])[0][
        "expires_at"
    ]
    assert stored.microsecond == 0
    assert invite["expires_at"] == stored.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("column", ["description", "icon_emoji"])
def test_the_database_refuses_empty_optional_text(engine, owner, group, column):
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE groups SET {column} = '' WHERE id = :g"), {"g": group["id"]})


_BERLIN = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("icon", "expires_at", "status"),
    [
        ("🏡", dt.datetime(2026, 11, 24, 10, 30, tzinfo=dt.UTC), "active"),
        (None, dt.datetime(2026, 11, 24, 11, 30, 0, 999_999, tzinfo=_BERLIN), "expired"),
        ("\u00e9\u0301", dt.datetime(2030, 1, 1, 0, 0, 59, 1, tzinfo=dt.UTC), "exhausted"),
    ],
)
def test_the_preview_written_without_marshmallow_is_what_its_schema_dumps(icon, expires_at, status):
    preview = {
        "group": {"name": 'Smith "Family"', "icon_emoji": icon, "member_count": 4},
        "preset_role": "admin",
        "expires_at": expires_at,
        "is_valid": status == "active",
        "status": status,
    }
    assert InvitePreviewSchema.wire(preview) == InvitePreviewSchema().dump(preview)


def test_the_preview_body_is_what_jsonify_writes_of_the_schema_dump(app, client, api, owner):
    """Byte for byte what flask-smorest's dump and jsonify would answer."""
    group = api.create_group(owner, name='The "Smiths"', icon_emoji="🏡")
    code = api.create_invite(owner, group["id"])["code"]
    response = client.get(f"/api/v1/invites/{code.lower()}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    with app.app_context():
        engine, keys = app.extensions["db_engine"], app.extensions["code_keys"]
        expected = app.json.response(
            InvitePreviewSchema().dump(read(engine, preview_invite, code, keys=keys))
        ).get_data()
    assert response.get_data() == expected
    assert b'"\\ud83c\\udfe1"' in expected  # the emoji escaped the same way


def test_the_new_invite_written_without_marshmallow_is_what_its_schema_dumps():
    invite = {
        "id": uuid.uuid4(),
        "group_id": uuid.uuid4(),
        "code": "ABC-234-XYZ",
        "preset_role": "viewer",
        "max_uses": 7,
        "current_uses": 0,
        "expires_at": dt.datetime(2026, 11, 24, 11, 30, 0, 999_999, tzinfo=_BERLIN),
        "created_by": uuid.uuid4(),
        "created_at": dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC),
        "invite_url": "https://invites.example/join/ABC-234-XYZ",
    }
    assert InviteSchema.wire(invite) == InviteSchema().dump(invite)


def test_the_join_written_without_marshmallow_is_what_its_schema_dumps():
    joined = {
        "group": {"id": uuid.uuid4(), "name": 'Smith "Family" 🏡', "member_count": 3},
        "membership": {
            "id": uuid.uuid4(),
            "role": "member",
            "joined_at": dt.datetime(2030, 1, 1, 0, 0, 59, 1, tzinfo=_BERLIN),
        },
    }
    assert JoinResultSchema.wire(joined) == JoinResultSchema().dump(joined)


@pytest.mark.parametrize("script_root", ["", "/invites-service"])
def test_the_create_and_join_answers_are_what_the_schemas_and_url_for_make(
    app, api, owner, script_root
):
    """Byte for byte what flask-smorest's dump and jsonify would answer, and the
    Location url_for builds, also under a path prefix (SCRIPT_NAME)."""
    client = app.test_client()
    group = api.create_group(owner, name='The "Smiths"', icon_emoji="🏡")
    base_url = f"http://localhost{script_root}"  # SCRIPT_NAME is script_root
    created = client.post(
        f"/api/v1/groups/{group['id']}/invites",
        json={"max_uses": 2},
        headers=owner.headers,
        base_url=base_url,
    )
    assert created.status_code == 201
    invite = created.get_json()
    joined = client.post(
        "/api/v1/groups/join",
        json={"code": invite["code"]},
        headers=api.user("Jo").headers,
        base_url=base_url,
    )
    assert joined.status_code == 200
    with app.test_request_context(base_url=base_url):
        location = url_for("invites.group_invite", group_id=group["id"], invite_id=invite["id"])
        assert created.headers["Location"] == location
        assert location.startswith(f"{script_root}/api/v1/groups/")
        for response, schema in ((created, InviteSchema), (joined, JoinResultSchema)):
            assert response.mimetype == "application/json"
            expected = app.json.response(schema().dump(schema().load(response.get_json())))
            assert response.get_data() == expected.get_data()


def test_the_listing_written_without_marshmallow_is_what_its_schema_dumps(app, api, owner):
    group = api.create_group(owner)
    admin = api.member(group["id"], "admin", name='Adam "A"')
    api.create_invite(owner, group["id"], max_uses=3)
    api.create_invite(admin, group["id"], preset_role="viewer")
    response = app.test_client().get(f"/api/v1/groups/{group['id']}/invites", headers=owner.headers)
    assert response.status_code == 200
    listed = response.get_json()["data"]
    names = [invite["created_by"]["display_name"] for invite in listed]
    assert names == ['Adam "A"', "Olivia Owner"]
    loaded = InviteListSchema().load({"data": listed})["data"]
    assert InviteListSchema.wire(loaded) == InviteListSchema().dump({"data": loaded})
    with app.app_context():
        expected = app.json.response(InviteListSchema().dump({"data": loaded})).get_data()
    assert response.get_data() == expected
