"""POST /groups and GET /groups/{id}."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.helpers import scalar

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


def test_create_group_makes_the_caller_owner(api, sql):
    alice = api.user("Alice")
    response = api.client.post(
        "/api/v1/groups",
        json={"name": "  Smith Family ", "description": "Us", "icon_emoji": "🏡"},
        headers=alice.headers,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {
        "id",
        "name",
        "description",
        "icon_emoji",
        "member_count",
        "your_role",
        "created_at",
    }
    assert body["name"] == "Smith Family"
    assert body["description"] == "Us"
    assert body["icon_emoji"] == "🏡"
    assert body["member_count"] == 1
    assert body["your_role"] == "owner"
    assert RFC3339_UTC.match(body["created_at"])
    assert response.headers["Location"] == f"/api/v1/groups/{body['id']}"
    rows = sql(
        "SELECT user_id, role::text AS role, invited_by FROM group_memberships WHERE group_id = :g",
        g=body["id"],
    )
    assert rows == [{"user_id": alice.id, "role": "owner", "invited_by": None}]


def test_get_group_for_members(api, owner, group):
    response = api.client.get(f"/api/v1/groups/{group['id']}", headers=owner.headers)
    assert response.status_code == 200
    assert response.get_json() == group

    viewer = api.member(group["id"], "viewer")
    seen = api.client.get(f"/api/v1/groups/{group['id']}", headers=viewer.headers).get_json()
    assert seen["your_role"] == "viewer"
    assert seen["member_count"] == 2


def test_non_member_and_missing_group_are_indistinguishable(api, group):
    stranger = api.user("Stranger")
    for group_id in (group["id"], str(uuid.uuid4())):
        response = api.client.get(f"/api/v1/groups/{group_id}", headers=stranger.headers)
        assert response.status_code == 404
        assert response.get_json() == {"error": "group_not_found", "message": "No such group."}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": "bad\x00name"}, "name"),
        ({"name": "ok", "description": "d" * 501}, "description"),
        ({"name": "ok", "icon_emoji": "🏡" * 11}, "icon_emoji"),
        ({"name": "ok", "owner_id": str(uuid.uuid4())}, "owner_id"),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "too-long",
        "number",
        "null",
        "nul-byte",
        "long-description",
        "long-emoji",
        "unknown-field",
    ],
)
def test_create_group_validation(api, sql, body, field):
    alice = api.user("Alice")
    response = api.client.post("/api/v1/groups", json=body, headers=alice.headers)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["error"] == "validation_error"
    assert [d["field"] for d in payload["details"]] == [field]
    assert payload["message"].startswith(f"{field}: ")
    # Nothing was written, not even the user.
    assert sql("SELECT count(*) AS n FROM users WHERE id = :id", id=alice.id) == [{"n": 0}]


def test_boundary_lengths_are_accepted(api):
    alice = api.user("Alice")
    body = {"name": "x" * 100, "description": "d" * 500, "icon_emoji": "👨‍👩‍👧"}
    response = api.client.post("/api/v1/groups", json=body, headers=alice.headers)
    assert response.status_code == 201
    assert response.get_json()["name"] == "x" * 100


def test_malformed_group_id(api, owner):
    response = api.client.get("/api/v1/groups/not-a-uuid", headers=owner.headers)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "validation_error",
        "message": "group_id: not a valid UUID",
        "details": [{"field": "group_id", "message": "Not a valid UUID."}],
    }


def test_lone_surrogates_in_names_are_refused(api, sql):
    alice = api.user("Alice")
    response = api.client.post(
        "/api/v1/groups",
        data='{"name": "Smith \\ud800"}',
        content_type="application/json",
        headers=alice.headers,
    )
    assert response.status_code == 400
    assert sql("SELECT count(*) AS n FROM users WHERE id = :id", id=alice.id) == [{"n": 0}]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/groups/{hex}",
        "/api/v1/groups/{{{uuid}}}",
        "/api/v1/groups/urn:uuid:{uuid}",
    ],
)
def test_path_ids_must_be_canonical(api, owner, group, path):
    gid = uuid.UUID(group["id"])
    response = api.client.get(path.format(hex=gid.hex, uuid=str(gid)), headers=owner.headers)
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "group_id"


def test_double_slashes_are_not_redirected(api, owner, group):
    response = api.client.get(f"/api/v1//groups/{group['id']}", headers=owner.headers)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Smith\u202eylimaF"}, 400),
        ({"name": "two\nlines"}, 400),
        ({"name": "tab\there"}, 400),
        ({"name": "ok", "description": "line one\nline two"}, 201),
        ({"name": "ok", "icon_emoji": "👨‍👩‍👧"}, 201),
        ({"name": "Zoë & Ünal"}, 201),
    ],
    ids=[
        "bidi-override",
        "newline-in-name",
        "tab-in-name",
        "multiline-description",
        "zwj",
        "accents",
    ],
)
def test_text_rules(api, body, status):
    response = api.client.post("/api/v1/groups", json=body, headers=api.user("A").headers)
    assert response.status_code == status, response.get_json()


@pytest.mark.parametrize(
    "name",
    ["\u200b", "soft\u00adhyphen", "a\u2028b", "a\u2029b", "zero\u200bwidth"],
    ids=["zwsp-only", "soft-hyphen", "line-separator", "paragraph-separator", "zwsp"],
)
def test_invisible_characters_are_refused(api, name):
    response = api.client.post("/api/v1/groups", json={"name": name}, headers=api.user("A").headers)
    assert response.status_code == 400
    assert response.get_json()["details"][0]["field"] == "name"


def test_emoji_sequences_are_allowed(api):
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    response = api.client.post(
        "/api/v1/groups",
        json={"name": "Family 👨‍👩‍👧", "icon_emoji": flag},
        headers=api.user("A").headers,
    )
    assert response.status_code == 201, response.get_json()


def test_creating_is_limited_per_user_for_groups_and_invites_together(make_app, api, engine):
    client = make_app(CREATE_RATE_LIMIT="3/minute").test_client()
    busy, other = api.user("Busy"), api.user("Other")
    group = client.post("/api/v1/groups", json={"name": "G1"}, headers=busy.headers)
    assert group.status_code == 201
    path = f"/api/v1/groups/{group.get_json()['id']}/invites"
    assert client.post(path, json={}, headers=busy.headers).status_code == 201
    assert (
        client.post("/api/v1/groups", json={"name": "G2"}, headers=busy.headers).status_code == 201
    )
    groups_before = scalar(engine, "SELECT count(*) FROM groups WHERE created_by = :u", u=busy.id)
    for refused in (
        client.post("/api/v1/groups", json={"name": "G3"}, headers=busy.headers),
        client.post(path, json={}, headers=busy.headers),
    ):
        assert refused.status_code == 429
        assert refused.get_json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["X-RateLimit-Limit"] == "3"
    assert scalar(engine, "SELECT count(*) FROM groups WHERE created_by = :u", u=busy.id) == (
        groups_before
    )
    # Per user: someone else on the same address still creates.
    assert (
        client.post("/api/v1/groups", json={"name": "G"}, headers=other.headers).status_code == 201
    )
