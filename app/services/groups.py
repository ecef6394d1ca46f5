from __future__ import annotations

from uuid import UUID

from app import errors
from app.repository import groups as group_repo
from app.repository import users as user_repo
from app.services import Actor
from app.unit_of_work import UnitOfWork


def create_group(
    uow: UnitOfWork,
    actor: Actor,
    *,
    name: str,
    description: str | None = None,
    icon_emoji: str | None = None,
) -> dict:
    """Create a group with the caller as its owner."""
    conn = uow.conn
    user_repo.upsert_user(conn, actor.id, actor.display_name)
    group = group_repo.insert_group(
        conn, name=name, description=description, icon_emoji=icon_emoji, created_by=actor.id
    )
    group_repo.insert_membership(conn, group_id=group["id"], user_id=actor.id, role="owner")
    return {**group, "member_count": 1, "your_role": "owner"}


def get_group(uow: UnitOfWork, actor: Actor, group_id: UUID) -> dict:
    """A group as one of its members sees it."""
    group = group_repo.group_for_member(uow.conn, group_id, actor.id)
    if group is None:
        raise errors.GroupNotFound()
    return group
