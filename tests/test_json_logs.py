"""LOG_FORMAT=json on a real gunicorn: every line is one JSON object, the request
lines carry their fields, and no code or token is written."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.helpers import JWT_SECRET, make_token, serving

pytestmark = pytest.mark.slow

UTC_MILLIS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_every_line_is_json_and_request_lines_carry_their_fields(database_url, engine, tmp_path):
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "LOG_FORMAT": "json",
        "TRUSTED_PROXY_COUNT": "1",
    }
    owner_id, joiner_id = uuid.uuid4(), uuid.uuid4()
    owner, joiner = make_token(str(owner_id), name="Owner"), make_token(str(joiner_id))
    relayed = {"X-Forwarded-For": "203.0.113.7", "X-Request-ID": "gateway-1"}
    with serving(settings, tmp_path / "server.log", workers=2) as server:
        group = server.call("POST", "/api/v1/groups", {"name": "Logs"}, owner, relayed).body
        invite = server.call(
            "POST", f"/api/v1/groups/{group['id']}/invites", {"max_uses": 1}, owner, relayed
        ).body
        code = invite["code"]
        assert server.call("GET", f"/api/v1/invites/{code}", headers=relayed).status == 200
        assert server.call("POST", "/api/v1/groups/join", {"code": code}, joiner).status == 200
        assert server.call("POST", "/api/v1/groups/join", {"code": code}, joiner).status == 409
        log = server.log()

    lines = [json.loads(line) for line in log.splitlines()]  # every line, or this raises
    for line in lines:
        assert UTC_MILLIS.match(line["time"]), line
        assert {"level", "logger", "message", "pid"} <= set(line), line
    requests = [line for line in lines if line["logger"] == "app.request"]
    by_route = {(r["method"], r["route"], r["status"]): r for r in requests}
    preview = by_route[("GET", "/api/v1/invites/{code}", 200)]
    assert preview["client"] == "203.0.113.7"  # as trusted through the one proxy
    assert preview["request_id"] == "gateway-1"
    assert preview["user_id"] is None
    assert preview["error"] is None
    assert isinstance(preview["duration_ms"], float)
    created = by_route[("POST", "/api/v1/groups/{group_id}/invites", 201)]
    assert created["user_id"] == str(owner_id)
    refused = by_route[("POST", "/api/v1/groups/join", 409)]
    assert refused["user_id"] == str(joiner_id)
    assert refused["error"] == "already_member"
    assert refused["client"] == "127.0.0.1"
    for secret in (code, code.replace("-", ""), owner, joiner, owner.split(".")[2]):
        assert secret not in log
