"""Floors for `make bench`: bare Flask routes doing each scenario's database work
and nothing else: no authentication (the user id is read from the token
without checking it), no validation, no rate limits, no logging, no status
rules, no idempotency. Served by gunicorn's sync workers. The service should
come close to these on the same database in the same run (bench/run.py).

The preview floor is the preview's one query with SQLAlchemy ``text()`` and
``jsonify``; invite codes are stored as digests (docs/security.md), so it
looks a code up by its digest, as any route reading this schema must.
"""

import base64
import datetime as dt
import json
import os
import uuid

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text

from app.code_keys import CodeKeyring
from app.codes import generate_code

app = Flask(__name__)
engine = create_engine(
    os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1), pool_size=5
)
keys = CodeKeyring.parse(os.environ["CODE_KEYS"])

PREVIEW = text(
    """
    SELECT i.preset_role, i.expires_at, i.max_uses, i.current_uses, g.name, g.icon_emoji,
           (SELECT count(*) FROM group_memberships m WHERE m.group_id = g.id) AS member_count
      FROM group_invites i JOIN groups g ON g.id = i.group_id
     WHERE i.code_digest = :digest
    """
)
USER = text("INSERT INTO users (id) VALUES (:user_id) ON CONFLICT (id) DO NOTHING")
CONSUME = text(
    """
    UPDATE group_invites SET current_uses = current_uses + 1
     WHERE code_digest = :digest AND revoked_at IS NULL
       AND current_uses < max_uses AND expires_at > now()
    RETURNING id, group_id, preset_role, created_by
    """
)
MEMBERSHIP = text(
    """
    INSERT INTO group_memberships (group_id, user_id, role, invited_by, invite_id)
    VALUES (:group_id, :user_id, :role, :invited_by, :invite_id)
    RETURNING id, role, joined_at
    """
)
INSERT = text(
    """
    INSERT INTO group_invites (group_id, code_digest, code_sealed, code_key, preset_role,
                               max_uses, expires_at, created_by)
    VALUES (:group_id, :digest, :sealed, :key, 'member', :max_uses,
            now() + make_interval(hours => 24), :created_by)
    RETURNING id, preset_role, max_uses, current_uses, expires_at, created_at
    """
)
LIST = text(
    """
    SELECT id, code_key, code_sealed, preset_role, max_uses, current_uses, expires_at,
           created_at
      FROM group_invites
     WHERE group_id = :group_id AND revoked_at IS NULL
       AND current_uses < max_uses AND expires_at > now()
     ORDER BY created_at DESC
    """
)


def caller() -> str:
    """The token's subject, unverified: the floors skip authentication."""
    payload = request.headers["Authorization"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def iso(value: dt.datetime) -> str:
    return value.isoformat()


@app.get("/api/v1/invites/<code>")
def preview(code):
    with engine.connect() as conn:
        r = conn.execute(PREVIEW, {"digest": keys.digest(code.upper())}).first()
    if r is None:
        return jsonify(error="invite_not_found", message="not found"), 404
    return jsonify(
        group={"name": r.name, "icon_emoji": r.icon_emoji, "member_count": r.member_count},
        preset_role=r.preset_role,
        expires_at=iso(r.expires_at),
        is_valid=r.current_uses < r.max_uses,
    )


@app.post("/api/v1/groups/join")
def join():
    user_id = caller()
    digest = keys.digest(request.get_json()["code"].upper())
    with engine.begin() as conn:
        conn.execute(USER, {"user_id": user_id})
        invite = conn.execute(CONSUME, {"digest": digest}).first()
        if invite is None:
            return jsonify(error="invite_not_found", message="not found"), 404
        m = conn.execute(
            MEMBERSHIP,
            {
                "group_id": invite.group_id,
                "user_id": user_id,
                "role": invite.preset_role,
                "invited_by": invite.created_by,
                "invite_id": invite.id,
            },
        ).first()
    return jsonify(
        group={"id": str(invite.group_id)},
        membership={"id": str(m.id), "role": m.role, "joined_at": iso(m.joined_at)},
    )


@app.post("/api/v1/groups/<group_id>/invites")
def create(group_id):
    user_id = caller()
    body = request.get_json()
    code = generate_code()
    key, sealed = keys.seal_code(code, uuid.UUID(group_id))
    with engine.begin() as conn:
        r = conn.execute(
            INSERT,
            {
                "group_id": group_id,
                "digest": keys.digest(code),
                "sealed": sealed,
                "key": key,
                "max_uses": body.get("max_uses", 1),
                "created_by": user_id,
            },
        ).first()
    return jsonify(
        id=str(r.id),
        code=code,
        preset_role=r.preset_role,
        max_uses=r.max_uses,
        current_uses=r.current_uses,
        expires_at=iso(r.expires_at),
        created_at=iso(r.created_at),
    ), 201


@app.get("/api/v1/groups/<group_id>/invites")
def listing(group_id):
    caller()
    gid = uuid.UUID(group_id)
    with engine.connect() as conn:
        rows = conn.execute(LIST, {"group_id": group_id}).all()
    return jsonify(
        invites=[
            {
                "id": str(r.id),
                "code": keys.open_code(r.code_key, r.code_sealed, gid),
                "preset_role": r.preset_role,
                "max_uses": r.max_uses,
                "current_uses": r.current_uses,
                "expires_at": iso(r.expires_at),
                "created_at": iso(r.created_at),
            }
            for r in rows
        ]
    )
