from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from app import errors
from app.code_keys import CodeKeyring
from app.codes import could_be_issued, generate_code, normalise_code
from app.repository import groups as group_repo
from app.repository import invites as invite_repo
from app.services import MANAGER_ROLES, Actor
from app.unit_of_work import RetryTransaction, UnitOfWork

# 32**9 codes: a collision is already rare; several in a row means something
# other than bad luck is wrong.
CODE_ATTEMPTS = 8
# How many times the caller runs a join (``unit_of_work.run_retrying`` or
# ``run_statements_retrying``) when it loses a race or PostgreSQL breaks a
# deadlock, before answering 503.
JOIN_ATTEMPTS = 3


def _require_manager(conn: sa.Connection, group_id: UUID, actor: Actor) -> str:
    role = group_repo.role_of(conn, group_id, actor.id)
    if role is None:
        raise errors.GroupNotFound()
    if role not in MANAGER_ROLES:
        raise errors.Forbidden()
    return role


def _parse_code(raw: object) -> str:
    """The canonical code, or InvalidCode for input that can never be one.

    Codes never contain the look-alikes 0, O, 1 and I, so input with them is
    a typo the app can point out rather than an unknown code.
    """
    code = normalise_code(raw)
    if code is None or not could_be_issued(code):
        raise errors.InvalidCode()
    return code


def _with_code(row: dict, keys: CodeKeyring) -> dict:
    """The invite with its code opened, and nothing of how it is stored."""
    sealed, key_id = row.pop("code_sealed"), row.pop("code_key")
    return {**row, "code": keys.open_code(key_id, sealed, row["group_id"])}


def create_invite(
    uow: UnitOfWork,
    actor: Actor,
    group_id: UUID,
    *,
    keys: CodeKeyring,
    preset_role: str = "member",
    max_uses: int = 1,
    expires_in_hours: int = 24,
    max_active: int = 100,
) -> dict:
    """Mint an invite code for a group the caller manages.

    Each attempt is one batch (invite_repo.mint), a whole decision by itself, so
    the caller may run this without a transaction around it (autocommit).
    """
    conn = uow.conn
    # invite_repo.mint locks the group first, then the membership: the same
    # order as a cascading group delete, so the two cannot deadlock. The group
    # lock also serialises creates in the group, so the cap holds.
    # Managers mint; only the owner mints admins.
    may_mint = ["owner"] if preset_role == "admin" else sorted(MANAGER_ROLES)
    for _ in range(CODE_ATTEMPTS):
        code = generate_code()
        key_id, sealed = keys.seal_code(code, group_id)
        digests = keys.digests(code)
        role, live, invite = invite_repo.mint(
            conn,
            group_id=group_id,
            code_digest=digests[0],
            code_sealed=sealed,
            code_key=key_id,
            digests=digests,
            preset_role=preset_role,
            max_uses=max_uses,
            expires_in_hours=expires_in_hours,
            created_by=actor.id,
            display_name=actor.display_name,
            may_mint=may_mint,
            max_active=max_active,
        )
        if invite is not None:
            del invite["code_sealed"], invite["code_key"]
            return {**invite, "code": code}
        if role is None:
            raise errors.GroupNotFound()
        if role not in MANAGER_ROLES:
            raise errors.Forbidden()
        if preset_role == "admin" and role != "owner":
            raise errors.PresetRoleNotAllowed()
        if live >= max_active:
            raise errors.InviteLimitReached(
                f"This group already has {max_active} active invites; revoke one first."
            )
        # Allowed, but the code is taken: another.
    raise RuntimeError(f"no free invite code after {CODE_ATTEMPTS} attempts")


def list_invites(uow: UnitOfWork, actor: Actor, group_id: UUID, *, keys: CodeKeyring) -> list:
    """The group's active invites, newest first."""
    found = invite_repo.list_live(uow.conn, group_id, actor.id, sorted(MANAGER_ROLES))
    if not found:
        # No such group, not a manager, or nothing live: which one, asked apart
        # (one statement more, only for an empty answer).
        _require_manager(uow.conn, group_id, actor)
    rows = [_with_code(row, keys) for row in found]
    for row in rows:
        row["created_by"] = {
            "id": row["created_by"],
            "display_name": row.pop("created_by_display_name"),
        }
    return rows


def get_invite(
    uow: UnitOfWork, actor: Actor, group_id: UUID, invite_id: UUID, *, keys: CodeKeyring
) -> dict:
    """One invite of the group, whatever its state."""
    _require_manager(uow.conn, group_id, actor)
    invite = invite_repo.get_invite(uow.conn, group_id, invite_id)
    if invite is None:
        raise errors.InviteNotFound()
    return _with_code(invite, keys)


def revoke_invite(uow: UnitOfWork, actor: Actor, group_id: UUID, invite_id: UUID) -> None:
    """Revoke an invite; revoking a revoked invite again is a no-op."""
    _require_manager(uow.conn, group_id, actor)
    if invite_repo.revoke(uow.conn, group_id, invite_id, actor.id):
        return
    if not invite_repo.exists_in_group(uow.conn, group_id, invite_id):
        raise errors.InviteNotFound()


def list_redemptions(uow: UnitOfWork, actor: Actor, group_id: UUID, invite_id: UUID) -> list:
    """Who joined with an invite, oldest first."""
    _require_manager(uow.conn, group_id, actor)
    if not invite_repo.exists_in_group(uow.conn, group_id, invite_id):
        raise errors.InviteNotFound()
    return invite_repo.redemptions(uow.conn, invite_id)


def preview_invite(uow: UnitOfWork, raw_code: object, *, keys: CodeKeyring) -> dict:
    """What anyone holding a code may learn before signing in."""
    code = _parse_code(raw_code)
    found = invite_repo.preview(uow.conn, keys.digests(code))
    if found is None or found["status"] == "revoked":
        raise errors.InviteNotFound()
    return {
        "group": {
            "name": found["group_name"],
            "icon_emoji": found["group_icon_emoji"],
            "member_count": found["member_count"],
        },
        "preset_role": found["preset_role"],
        "expires_at": found["expires_at"],
        "is_valid": found["status"] == "active",
        "status": found["status"],
    }


def join_group(uow: UnitOfWork, actor: Actor, raw_code: object, *, keys: CodeKeyring) -> dict:
    """Redeem a code: take one use and add the caller to the group, atomically.

    The join is one statement (invite_repo.redeem); what follows only reads, so
    the caller may run this without a transaction around it (autocommit).
    Raises ``RetryTransaction`` when the invite became usable between the join
    and the diagnosis of its refusal; the caller runs it again
    (``JOIN_ATTEMPTS``).
    """
    digests = keys.digests(_parse_code(raw_code))
    conn = uow.conn
    try:
        joined = invite_repo.redeem(conn, digests, actor.id, actor.display_name)
    except invite_repo.AlreadyJoined:
        # A concurrent join by the same user won; the statement, and the use it
        # took, were undone.
        raise errors.AlreadyMember() from None
    if joined is None:
        _explain_refusal(invite_repo.diagnose(conn, digests, actor.id))
        # It became usable between the two statements: try again.
        raise RetryTransaction
    group = {
        "id": joined["group_id"],
        "name": joined["group_name"],
        "member_count": joined["member_count"],
    }
    if joined["uses_taken"] != 1:
        # Others joined with this invite while it waited for them: the count
        # it read predates their memberships.
        group = _fresh_summary(uow, joined["group_id"]) or group
    return {
        "group": group,
        "membership": {
            "id": joined["membership_id"],
            "role": joined["role"],
            "joined_at": joined["joined_at"],
        },
    }


def _fresh_summary(uow: UnitOfWork, group_id: UUID) -> dict | None:
    """The group read again after a join. In autocommit the join has committed by
    now: if the group was deleted since, or the read fails, the join still
    happened and is answered with what its own statement saw (None)."""
    if not uow.autocommit:
        return group_repo.group_summary(uow.conn, group_id)
    try:
        return group_repo.group_summary(uow.conn, group_id)
    except sa.exc.SQLAlchemyError:
        return None


def _explain_refusal(found: dict | None) -> None:
    if found is None or found["status"] == "revoked":
        raise errors.InviteNotFound()
    if found["is_member"]:
        raise errors.AlreadyMember()
    if found["status"] == "exhausted":
        raise errors.InviteExhausted()
    if found["status"] == "expired":
        raise errors.InviteExpired()
