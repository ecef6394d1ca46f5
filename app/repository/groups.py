from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from app.repository.prepared import Prepared

# The size of group ``g``, for a query that has it in scope.
MEMBER_COUNT = "(SELECT count(*) FROM group_memberships m WHERE m.group_id = g.id)"

_INSERT_GROUP = sa.text(
    """
    INSERT INTO groups (name, description, icon_emoji, created_by)
    VALUES (:name, :description, :icon_emoji, :created_by)
    RETURNING id, name, description, icon_emoji, created_at
    """
)

_INSERT_MEMBERSHIP = sa.text(
    """
    INSERT INTO group_memberships (group_id, user_id, role, invited_by, invite_id)
    VALUES (:group_id, :user_id, :role, :invited_by, :invite_id)
    ON CONFLICT ON CONSTRAINT group_memberships_one_per_user DO NOTHING
    RETURNING id, role, joined_at
    """
)

_GROUP_FOR_MEMBER = sa.text(
    f"""
    SELECT g.id, g.name, g.description, g.icon_emoji, g.created_at,
           me.role AS your_role,
           {MEMBER_COUNT} AS member_count
      FROM groups g
      JOIN group_memberships me ON me.group_id = g.id AND me.user_id = :user_id
     WHERE g.id = :group_id
    """
)

_GROUP_SUMMARY = sa.text(
    f"""
    SELECT g.id, g.name,
           {MEMBER_COUNT} AS member_count
      FROM groups g
     WHERE g.id = :group_id
    """
)

_ROLE = Prepared(
    "member_role",
    "SELECT role FROM group_memberships WHERE group_id = :group_id AND user_id = :user_id",
)

# Serialises invite creation per group so the active-invite cap holds under
# concurrency (invites._LOCK_AND_MINT). NO KEY UPDATE does not block
# foreign-key checks (joins).
LOCK_GROUP = Prepared("group_lock", "SELECT id FROM groups WHERE id = :group_id FOR NO KEY UPDATE")


def insert_group(
    conn: sa.Connection,
    *,
    name: str,
    description: str | None,
    icon_emoji: str | None,
    created_by: UUID,
) -> dict:
    row = conn.execute(
        _INSERT_GROUP,
        {
            "name": name,
            "description": description,
            "icon_emoji": icon_emoji,
            "created_by": created_by,
        },
    ).one()
    return dict(row._mapping)


def insert_membership(
    conn: sa.Connection,
    *,
    group_id: UUID,
    user_id: UUID,
    role: str,
    invited_by: UUID | None = None,
    invite_id: UUID | None = None,
) -> dict | None:
    """The new membership, or None if the user already belongs to the group."""
    row = conn.execute(
        _INSERT_MEMBERSHIP,
        {
            "group_id": group_id,
            "user_id": user_id,
            "role": role,
            "invited_by": invited_by,
            "invite_id": invite_id,
        },
    ).one_or_none()
    return dict(row._mapping) if row else None


def group_for_member(conn: sa.Connection, group_id: UUID, user_id: UUID) -> dict | None:
    row = conn.execute(_GROUP_FOR_MEMBER, {"group_id": group_id, "user_id": user_id}).one_or_none()
    return dict(row._mapping) if row else None


def group_summary(conn: sa.Connection, group_id: UUID) -> dict | None:
    row = conn.execute(_GROUP_SUMMARY, {"group_id": group_id}).one_or_none()
    return dict(row._mapping) if row else None


def role_of(conn: sa.Connection, group_id: UUID, user_id: UUID) -> str | None:
    """The user's role in the group, or None for a non-member (or no such group)."""
    row = _ROLE.one_or_none(conn, {"group_id": group_id, "user_id": user_id})
    return row["role"] if row is not None else None
