"""A Python client generated from the served document, driven against a real server.

openapi-python-client generates the client from /openapi.json into a temporary
directory, exactly as a caller would (see the README). The test imports it and
runs the whole flow against gunicorn on real PostgreSQL, then checks that each
error status reaches the caller as the documented, typed `ApiError`, never as an
unexpected status or a parse failure: every client raises on an undocumented
status.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.codes import CODE_PATTERN
from tests.helpers import JWT_SECRET, ApiDriver, make_token, serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "group_invites_client"
LOOKUP_LIMIT = 12  # previews per minute per address
JOIN_LIMIT = 5  # joins per minute per user
MAX_ACTIVE = 3


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-sdk") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "APP_BASE_URL": "https://invites.example",
        "INVITE_LOOKUP_RATE_LIMIT": f"{LOOKUP_LIMIT}/minute",
        "JOIN_RATE_LIMIT": f"{JOIN_LIMIT}/minute",
        "CREATE_RATE_LIMIT": "100000/minute",
        "MAX_ACTIVE_INVITES_PER_GROUP": str(MAX_ACTIVE),
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    with serving(settings, log_path, workers=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def sdk(server, tmp_path_factory):
    """Generate the client from the served document and import it."""
    workdir = tmp_path_factory.mktemp("sdk")
    reply = server.call("GET", "/openapi.json")
    assert reply.status == 200
    spec = workdir / "openapi.json"
    spec.write_text(json.dumps(reply.body), encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(workdir / PACKAGE),
            "--config",
            str(ROOT / "sdk-config.yaml"),
        ],
        cwd=workdir,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A document the generator has to guess about is one it half-understood.
    assert "Warning" not in output, output
    sys.path.insert(0, str(workdir))
    try:
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
        modules = {
            name: importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")
            for tag, names in {
                "groups": ("create_group", "get_group", "join_group"),
                "invites": (
                    "create_invite",
                    "list_invites",
                    "get_invite",
                    "revoke_invite",
                    "list_invite_redemptions",
                    "get_invite_preview",
                ),
                "ops": ("get_health", "get_readiness"),
            }.items()
            for name in names
        }
        package = importlib.import_module(PACKAGE)
        models = importlib.import_module(f"{PACKAGE}.models")
        yield SimpleNamespace(
            package=package, models=models, url=f"http://127.0.0.1:{server.port}", **modules
        )
    finally:
        sys.path.remove(str(workdir))


class Callers:
    """Clients of the generated SDK, raising on any undocumented status; closed after the test."""

    def __init__(self, sdk):
        self.sdk = sdk
        self.opened = []

    def _open(self, client):
        self.opened.append(client)
        return client

    def person(self, name: str | None) -> SimpleNamespace:
        user_id = uuid.uuid4()
        token = make_token(str(user_id), **({"name": name} if name else {}))
        return SimpleNamespace(id=user_id, client=self.with_token(token))

    def with_token(self, token: str):
        return self._open(
            self.sdk.package.AuthenticatedClient(
                base_url=self.sdk.url, token=token, raise_on_unexpected_status=True
            )
        )

    def anonymous(self):
        return self._open(
            self.sdk.package.Client(base_url=self.sdk.url, raise_on_unexpected_status=True)
        )

    def close(self):
        for client in self.opened:
            client.get_httpx_client().close()


@pytest.fixture
def callers(sdk):
    callers = Callers(sdk)
    yield callers
    callers.close()


def error_of(sdk, response, status: int, code: str):
    """The response is the documented error: a typed ApiError with the expected code."""
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, sdk.models.ApiError), response.parsed
    assert response.parsed.error == code
    assert response.parsed.message
    return response.parsed


def test_the_whole_flow_through_the_generated_client(sdk, callers):
    m = sdk.models
    owner, joiner = callers.person("Olivia Owner"), callers.person("Jules Joiner")

    created = sdk.create_group.sync_detailed(
        client=owner.client, body=m.GroupCreate(name="SDK Family", icon_emoji="🏡")
    )
    assert created.status_code == 201
    group = created.parsed
    assert isinstance(group, m.Group)
    assert (group.name, group.your_role, group.member_count) == ("SDK Family", m.Role.OWNER, 1)
    assert created.headers["Location"] == f"/api/v1/groups/{group.id}"

    fetched = sdk.get_group.sync(group.id, client=owner.client)
    assert isinstance(fetched, m.Group)
    assert fetched.id == group.id
    assert fetched.created_at == group.created_at
    assert fetched.created_at.tzinfo is not None

    response = sdk.create_invite.sync_detailed(
        group.id, client=owner.client, body=m.InviteCreate(max_uses=2, expires_in_hours=48)
    )
    assert response.status_code == 201
    invite = response.parsed
    assert isinstance(invite, m.Invite)
    assert re.fullmatch(CODE_PATTERN, invite.code)
    assert invite.preset_role == m.PresetRole.MEMBER  # the default
    assert (invite.max_uses, invite.current_uses, invite.created_by) == (2, 0, owner.id)
    assert invite.invite_url == f"https://invites.example/join/{invite.code}"
    assert response.headers["Location"] == f"/api/v1/groups/{group.id}/invites/{invite.id}"

    # The preview needs no token, and takes the code as a person types it.
    preview = sdk.get_invite_preview.sync(
        invite.code.lower().replace("-", " "), client=callers.anonymous()
    )
    assert isinstance(preview, m.InvitePreview)
    assert (preview.group.name, preview.group.member_count) == ("SDK Family", 1)
    assert (preview.is_valid, preview.status) == (True, m.PreviewStatus.ACTIVE)
    assert preview.expires_at == invite.expires_at

    joined = sdk.join_group.sync(client=joiner.client, body=m.Join(code=invite.code))
    assert isinstance(joined, m.JoinResult)
    assert (joined.group.id, joined.group.member_count) == (group.id, 2)
    assert joined.membership.role == m.Role.MEMBER

    listed = sdk.list_invites.sync(group.id, client=owner.client)
    assert isinstance(listed, m.InviteList)
    assert [(i.id, i.current_uses) for i in listed.data] == [(invite.id, 1)]
    assert (listed.data[0].created_by.id, listed.data[0].created_by.display_name) == (
        owner.id,
        "Olivia Owner",
    )

    redemptions = sdk.list_invite_redemptions.sync(group.id, invite.id, client=owner.client)
    assert isinstance(redemptions, m.RedemptionList)
    assert [(r.user_id, r.display_name, r.role) for r in redemptions.data] == [
        (joiner.id, "Jules Joiner", m.Role.MEMBER)
    ]

    detail = sdk.get_invite.sync(group.id, invite.id, client=owner.client)
    assert isinstance(detail, m.InviteDetail)
    assert (detail.status, detail.current_uses) == (m.InviteStatus.ACTIVE, 1)

    revoked = sdk.revoke_invite.sync_detailed(group.id, invite.id, client=owner.client)
    assert (revoked.status_code, revoked.parsed, revoked.content) == (204, None, b"")
    detail = sdk.get_invite.sync(group.id, invite.id, client=owner.client)
    assert detail.status == m.InviteStatus.REVOKED
    assert sdk.list_invites.sync(group.id, client=owner.client).data == []

    assert sdk.get_health.sync(client=callers.anonymous()).status == m.HealthStatus.OK
    assert sdk.get_readiness.sync(client=callers.anonymous()).status == m.HealthStatus.OK


def test_errors_reach_the_caller_as_the_documented_typed_error(sdk, callers, engine):
    m = sdk.models
    owner, member = callers.person("Owner"), callers.person("Member")
    outsider = callers.person(None)
    group = sdk.create_group.sync(client=owner.client, body=m.GroupCreate(name="Errors"))
    invite = sdk.create_invite.sync(group.id, client=owner.client, body=m.InviteCreate())
    assert isinstance(
        sdk.join_group.sync(client=member.client, body=m.Join(invite.code)), m.JoinResult
    )

    # 401: a token signed with another key; the challenge header comes too.
    forged = callers.with_token(make_token(str(owner.id), secret="another-secret-" + "y" * 40))
    response = sdk.get_group.sync_detailed(group.id, client=forged)
    error_of(sdk, response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"

    # 403: members do not manage invites.
    response = sdk.create_invite.sync_detailed(
        group.id, client=member.client, body=m.InviteCreate()
    )
    error_of(sdk, response, 403, "forbidden")

    # 404: a stranger cannot tell the group exists; an unknown code is unknown.
    error_of(
        sdk, sdk.get_group.sync_detailed(group.id, client=outsider.client), 404, "group_not_found"
    )
    response = sdk.get_invite_preview.sync_detailed("ZZZ-ZZZ-ZZZ", client=callers.anonymous())
    error_of(sdk, response, 404, "invite_not_found")

    # 400: a code that can never exist, with the envelope's message.
    response = sdk.get_invite_preview.sync_detailed("ABO-234-XYZ", client=callers.anonymous())
    error_of(sdk, response, 400, "invalid_code")

    # 409: joining twice takes nothing; the cap on active invites holds (the
    # first invite, used up, no longer counts).
    response = sdk.join_group.sync_detailed(client=member.client, body=m.Join(invite.code))
    error_of(sdk, response, 409, "already_member")
    for _ in range(MAX_ACTIVE):
        assert (
            sdk.create_invite.sync_detailed(
                group.id, client=owner.client, body=m.InviteCreate()
            ).status_code
            == 201
        )
    response = sdk.create_invite.sync_detailed(group.id, client=owner.client, body=m.InviteCreate())
    error_of(sdk, response, 409, "invite_limit_reached")

    # 410: used up, and expired.
    response = sdk.join_group.sync_detailed(client=outsider.client, body=m.Join(invite.code))
    error_of(sdk, response, 410, "invite_exhausted")
    listed = sdk.list_invites.sync(group.id, client=owner.client).data
    ApiDriver(None, engine).expire(listed[0].id)
    response = sdk.join_group.sync_detailed(client=outsider.client, body=m.Join(listed[0].code))
    error_of(sdk, response, 410, "invite_expired")


def test_rate_limits_reach_the_caller_as_typed_errors_with_retry_after(sdk, callers):
    m = sdk.models
    joiner = callers.person(None)
    statuses = [
        sdk.join_group.sync_detailed(client=joiner.client, body=m.Join("ZZZ-ZZZ-ZZZ")).status_code
        for _ in range(JOIN_LIMIT)
    ]
    assert statuses == [404] * JOIN_LIMIT
    response = sdk.join_group.sync_detailed(client=joiner.client, body=m.Join("ZZZ-ZZZ-ZZZ"))
    error_of(sdk, response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(JOIN_LIMIT)

    # Previews are limited per address: the earlier tests used some of the budget.
    client = callers.anonymous()
    for _ in range(LOOKUP_LIMIT + 1):
        response = sdk.get_invite_preview.sync_detailed("ZZZ-ZZZ-ZZZ", client=client)
        if response.status_code != 404:
            break
    error_of(sdk, response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_a_retry_with_an_idempotency_key_is_replayed_through_the_client(sdk, callers):
    m = sdk.models
    owner = callers.person("Keyed Owner")
    key = f"sdk-{uuid.uuid4()}"
    body = m.GroupCreate(name="Keyed Family")
    first = sdk.create_group.sync_detailed(client=owner.client, body=body, idempotency_key=key)
    again = sdk.create_group.sync_detailed(client=owner.client, body=body, idempotency_key=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.parsed.id == first.parsed.id
    assert again.headers["Location"] == first.headers["Location"]

    other = sdk.create_group.sync_detailed(
        client=owner.client, body=m.GroupCreate(name="Another"), idempotency_key=key
    )
    error_of(sdk, other, 422, "idempotency_key_reused")

    invite = sdk.create_invite.sync(
        first.parsed.id, client=owner.client, body=m.InviteCreate(), idempotency_key=f"i-{key}"
    )
    joiner = callers.person("Keyed Joiner")
    joins = [
        sdk.join_group.sync_detailed(
            client=joiner.client, body=m.Join(invite.code), idempotency_key=f"j-{key}"
        )
        for _ in range(2)
    ]
    assert [j.status_code for j in joins] == [200, 200]
    assert joins[1].headers["Idempotent-Replayed"] == "true"
    assert joins[1].parsed.membership.id == joins[0].parsed.membership.id
