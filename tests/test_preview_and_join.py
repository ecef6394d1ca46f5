"""The public preview (GET /invites/{code}) and joining (POST /groups/join)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.helpers import User, make_token


def _preview(client, code: str):
    return client.get(f"/api/v1/invites/{code}")


# --- preview ----------------------------------------------------------------


def test_preview_shows_only_what_the_contract_allows(api, owner, group):
    api.member(group["id"], "member")
    invite = api.create_invite(owner, group["id"], preset_role="viewer", max_uses=5)
    response = _preview(api.client, invite["code"])
    assert response.status_code == 200
    assert response.get_json() == {
        "group": {"name": group["name"], "icon_emoji": None, "member_count": 2},
        "preset_role": "viewer",
        "expires_at": invite["expires_at"],
        "is_valid": True,
        "status": "active",
    }


def test_preview_needs_no_token_and_ignores_a_bad_one(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    response = api.client.get(
        f"/api/v1/invites/{invite['code']}", headers={"Authorization": "Bearer junk"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "variant",
    [
        lambda c: c.lower(),
        lambda c: c.replace("-", ""),
        lambda c: " " + c.replace("-", " ").lower() + " ",
        lambda c: c[:3] + c[4:].lower(),
        lambda c: "\n" + c.replace("-", "\n") + "\t",
    ],
    ids=["lower", "no-dashes", "spaces", "mixed", "line-breaks"],
)
def test_preview_normalises_the_code(api, owner, group, variant):
    invite = api.create_invite(owner, group["id"])
    typed = variant(invite["code"])
    response = _preview(
        api.client, typed.replace(" ", "%20").replace("\n", "%0A").replace("\t", "%09")
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "active"


def test_preview_of_expired_and_used_up_invites(api, owner, group):
    expired = api.create_invite(owner, group["id"])
    used_up = api.create_invite(owner, group["id"])
    api.expire(expired["id"])
    assert api.join(api.user("J"), used_up["code"]).status_code == 200
    for invite, status in [(expired, "expired"), (used_up, "exhausted")]:
        response = _preview(api.client, invite["code"])
        assert response.status_code == 200
        body = response.get_json()
        assert (body["is_valid"], body["status"]) == (False, status)


def test_used_up_takes_precedence_over_expired(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    api.join(api.user("J"), invite["code"])
    api.expire(invite["id"])
    assert _preview(api.client, invite["code"]).get_json()["status"] == "exhausted"


@pytest.mark.parametrize("code", ["ABC-234-XYZ", "ZZZ-ZZZ-ZZZ", "abc234xyz"])
def test_preview_unknown_code(client, code):
    response = _preview(client, code)
    assert response.status_code == 404
    assert response.get_json() == {"error": "invite_not_found", "message": "No such invite."}


@pytest.mark.parametrize(
    "code",
    [
        "ABC",
        "ABC-234-XY",
        "ABC-234-XYZA",
        "ABC_234_XYZ",
        "ABC-234-XY%21",
        "%C3%80BC234XYZ",
        "ABC-123-XYZ",  # 1 is a look-alike and never appears in a code
        "OOO-III-000",
        "ABC%2F234%2FXYZ",  # slashes, escaped: not a routing 404
        "ABC/234/XYZ",
        "ABC-234-XYZ/",
    ],
)
def test_preview_malformed_code(client, code):
    response = _preview(client, code)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_code"


def test_preview_of_revoked_code(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    api.client.delete(f"/api/v1/groups/{group['id']}/invites/{invite['id']}", headers=owner.headers)
    assert _preview(api.client, invite["code"]).status_code == 404


def test_preview_is_rate_limited_per_client_address(make_app, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    client = make_app(INVITE_LOOKUP_RATE_LIMIT="3/minute").test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for _ in range(3):
        assert client.get(f"/api/v1/invites/{invite['code']}", environ_base=here).status_code == 200
    # Failed lookups count too: that is what stops guessing.
    limited = client.get("/api/v1/invites/ZZZ-ZZZ-ZZZ", environ_base=here)
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    # Another address has its own budget, and a spoofed X-Forwarded-For changes nothing.
    there = {"REMOTE_ADDR": "203.0.113.8"}
    assert client.get(f"/api/v1/invites/{invite['code']}", environ_base=there).status_code == 200
    spoofed = client.get(
        f"/api/v1/invites/{invite['code']}",
        environ_base=here,
        headers={"X-Forwarded-For": "198.51.100.1"},
    )
    assert spoofed.status_code == 429


def test_trusted_proxy_supplies_the_client_address(make_app, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    client = make_app(INVITE_LOOKUP_RATE_LIMIT="2/minute", TRUSTED_PROXY_COUNT=1).test_client()
    gateway = {"REMOTE_ADDR": "10.0.0.1"}
    path = f"/api/v1/invites/{invite['code']}"
    for _ in range(2):
        ok = client.get(path, environ_base=gateway, headers={"X-Forwarded-For": "198.51.100.1"})
        assert ok.status_code == 200
    blocked = client.get(path, environ_base=gateway, headers={"X-Forwarded-For": "198.51.100.1"})
    assert blocked.status_code == 429
    # A different client behind the same gateway is counted separately.
    other = client.get(path, environ_base=gateway, headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.status_code == 200


# --- join -------------------------------------------------------------------


def test_join_adds_the_member_and_records_where_they_came_from(api, owner, group, sql):
    admin = api.member(group["id"], "admin")
    invite = api.create_invite(admin, group["id"], preset_role="viewer", max_uses=2)
    bob = api.user("Bob")
    response = api.join(bob, f"  {invite['code'].lower().replace('-', ' ')}  ")
    assert response.status_code == 200
    body = response.get_json()
    assert body["group"] == {"id": group["id"], "name": group["name"], "member_count": 3}
    assert set(body["membership"]) == {"id", "role", "joined_at"}
    assert body["membership"]["role"] == "viewer"
    rows = sql(
        "SELECT id, role::text AS role, invited_by, invite_id FROM group_memberships"
        " WHERE group_id = :g AND user_id = :u",
        g=group["id"],
        u=bob.id,
    )
    assert [(str(r["id"]), r["role"], r["invited_by"], str(r["invite_id"])) for r in rows] == [
        (body["membership"]["id"], "viewer", admin.id, invite["id"])
    ]
    assert api.invite_row(invite["id"])["current_uses"] == 1
    assert sql("SELECT display_name FROM users WHERE id = :u", u=bob.id) == [
        {"display_name": "Bob"}
    ]
    seen = api.client.get(f"/api/v1/groups/{group['id']}", headers=bob.headers).get_json()
    assert seen["your_role"] == "viewer"


def test_admin_invite_makes_an_admin(api, owner, group):
    invite = api.create_invite(owner, group["id"], preset_role="admin")
    carol = api.user("Carol")
    assert api.join(carol, invite["code"]).get_json()["membership"]["role"] == "admin"
    assert api.create_invite(carol, group["id"])["preset_role"] == "member"


def test_already_member_uses_nothing(api, owner, group):
    invite = api.create_invite(owner, group["id"], max_uses=3)
    member = api.member(group["id"], "member")
    for who in (member, owner):
        before = api.snapshot(group["id"])
        response = api.join(who, invite["code"])
        assert response.status_code == 409
        assert response.get_json()["error"] == "already_member"
        assert api.snapshot(group["id"]) == before
    assert api.invite_row(invite["id"])["current_uses"] == 0


def test_join_twice_with_the_same_code(api, owner, group):
    invite = api.create_invite(owner, group["id"], max_uses=5)
    dave = api.user("Dave")
    assert api.join(dave, invite["code"]).status_code == 200
    assert api.join(dave, invite["code"]).status_code == 409
    assert api.invite_row(invite["id"])["current_uses"] == 1


def test_join_expired(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    api.expire(invite["id"])
    before = api.snapshot(group["id"])
    response = api.join(api.user("Late"), invite["code"])
    assert response.status_code == 410
    assert response.get_json()["error"] == "invite_expired"
    assert api.snapshot(group["id"]) == before


def test_join_exhausted(api, owner, group):
    invite = api.create_invite(owner, group["id"], max_uses=2)
    assert api.join(api.user("A"), invite["code"]).status_code == 200
    assert api.join(api.user("B"), invite["code"]).status_code == 200
    before = api.snapshot(group["id"])
    response = api.join(api.user("C"), invite["code"])
    assert response.status_code == 410
    assert response.get_json()["error"] == "invite_exhausted"
    assert api.snapshot(group["id"]) == before
    assert api.invite_row(invite["id"])["current_uses"] == 2


def test_join_revoked_or_unknown(api, owner, group):
    invite = api.create_invite(owner, group["id"])
    api.client.delete(f"/api/v1/groups/{group['id']}/invites/{invite['id']}", headers=owner.headers)
    for code in (invite["code"], "ZZZ-ZZZ-ZZZ"):
        response = api.join(api.user("Eve"), code)
        assert response.status_code == 404
        assert response.get_json()["error"] == "invite_not_found"


@pytest.mark.parametrize(
    "code", ["", "   ", "ABC-234", "ABC-234-XYZ-2", "ABC!234!XYZ", "ABC-1O0-XYZ", "x" * 500]
)
def test_join_malformed_code(api, code):
    response = api.join(api.user("Frank"), code)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_code"


@pytest.mark.parametrize(
    "body", [{}, {"code": None}, {"code": 123}, {"code": ["ABC-234-XYZ"]}, {"code": "A", "x": 1}]
)
def test_join_body_validation(api, body):
    response = api.client.post("/api/v1/groups/join", json=body, headers=api.user("G").headers)
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


def test_join_requires_a_token(client):
    response = client.post("/api/v1/groups/join", json={"code": "ABC-234-XYZ"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_join_is_rate_limited_per_user(make_app, api, owner, group):
    client = make_app(JOIN_RATE_LIMIT="2/minute").test_client()
    greedy, patient = api.user("Greedy"), api.user("Patient")
    for _ in range(2):
        response = client.post(
            "/api/v1/groups/join", json={"code": "ZZZ-ZZZ-ZZZ"}, headers=greedy.headers
        )
        assert response.status_code == 404
    limited = client.post(
        "/api/v1/groups/join", json={"code": "ZZZ-ZZZ-ZZZ"}, headers=greedy.headers
    )
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Limits are per user, not per address: another user on the same address is fine.
    invite = api.create_invite(owner, group["id"])
    ok = client.post("/api/v1/groups/join", json={"code": invite["code"]}, headers=patient.headers)
    assert ok.status_code == 200
    # Unauthenticated attempts are refused before they can spend anyone's budget.
    anonymous = client.post("/api/v1/groups/join", json={"code": "ZZZ-ZZZ-ZZZ"})
    assert anonymous.status_code == 401


def test_creating_groups_is_not_limited_by_the_join_limit(make_app, api):
    client = make_app(JOIN_RATE_LIMIT="1/minute").test_client()
    user = api.user("Busy")
    for _ in range(3):
        response = client.post("/api/v1/groups", json={"name": "G"}, headers=user.headers)
        assert response.status_code == 201


def test_membership_insert_failure_rolls_back_the_use(api, owner, group, engine):
    """If the membership cannot be written, the use taken in the same transaction is undone."""
    invite = api.create_invite(owner, group["id"], max_uses=3)
    victim = api.user("Victim")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES (:u)"), {"u": victim.id})
        # A trigger that refuses this one user's membership row.
        conn.execute(
            sa.text(
                f"""
                CREATE FUNCTION refuse_{victim.id.hex}() RETURNS trigger AS $$
                BEGIN
                  IF NEW.user_id = '{victim.id}' THEN RAISE EXCEPTION 'refused'; END IF;
                  RETURN NEW;
                END $$ LANGUAGE plpgsql
                """
            )
        )
        conn.execute(
            sa.text(
                f"CREATE TRIGGER refuse_{victim.id.hex} BEFORE INSERT ON group_memberships"
                f" FOR EACH ROW EXECUTE FUNCTION refuse_{victim.id.hex}()"
            )
        )
    try:
        response = api.join(victim, invite["code"])
        assert response.status_code == 500
        assert response.get_json() == {
            "error": "internal_error",
            "message": "An unexpected error occurred.",
        }
        assert api.invite_row(invite["id"])["current_uses"] == 0
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TRIGGER refuse_{victim.id.hex} ON group_memberships"))
            conn.execute(sa.text(f"DROP FUNCTION refuse_{victim.id.hex}()"))


def test_a_join_refreshes_a_known_users_name_and_a_refused_one_does_not(api, owner, group, sql):
    first, second = (api.create_invite(owner, group["id"]) for _ in range(2))
    other_group = api.create_group(owner, name="Other family")
    elsewhere = api.create_invite(owner, other_group["id"])
    bob = api.user("Bob")
    assert api.join(bob, elsewhere["code"]).status_code == 200

    def as_bob(name):
        return User(bob.id, name, make_token(str(bob.id), name=name))

    assert api.join(as_bob("Robert"), first["code"]).status_code == 200
    assert sql("SELECT display_name FROM users WHERE id = :u", u=bob.id) == [
        {"display_name": "Robert"}
    ]
    before = api.snapshot(group["id"])
    response = api.join(as_bob("Bobby"), second["code"])  # already a member
    assert response.status_code == 409
    assert api.snapshot(group["id"]) == before  # users included: the name is unchanged
