from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

from app.repository.groups import LOCK_GROUP, MEMBER_COUNT
from app.repository.prepared import Batch, Prepared
from app.repository.users import RENAME_USER

# An invite is honoured only while its creator could still hand it out: an
# owner, or an admin for anything below admin. Otherwise it counts as revoked.
# A trigger (020_group_invites.sql) revokes such invites for good when the
# creator's role changes; this predicate keeps the rule even for changes made
# with triggers disabled.
CREATOR_HAS_AUTHORITY = """
    EXISTS (SELECT 1
              FROM group_memberships creator
             WHERE creator.group_id = i.group_id
               AND creator.user_id = i.created_by
               AND (creator.role = 'owner'
                    OR (creator.role = 'admin' AND i.preset_role <> 'admin')))
"""

# Precedence when several apply: revoked, then used up (it ran out before it
# ran out of time), then expired.
STATUS = f"""
    CASE WHEN i.revoked_at IS NOT NULL OR NOT {CREATOR_HAS_AUTHORITY} THEN 'revoked'
         WHEN i.current_uses >= i.max_uses THEN 'exhausted'
         WHEN i.expires_at <= now() THEN 'expired'
         ELSE 'active'
    END
"""

IS_LIVE = f"""
    i.revoked_at IS NULL
    AND i.current_uses < i.max_uses
    AND i.expires_at > now()
    AND {CREATOR_HAS_AUTHORITY}
"""

# No column holds a usable code: code_digest finds an invite, code_sealed and
# code_key give the code back to the service (app/code_keys.py).
INVITE_COLUMNS = """
    i.id, i.group_id, i.code_key, i.code_sealed, i.preset_role, i.max_uses, i.current_uses,
    i.expires_at, i.created_by, i.created_at
"""

# The whole decision to mint, in one statement, run right after the group's
# lock is taken (_LOCK_AND_MINT), so its snapshot holds every invite committed
# before: the caller's role, held steady (FOR SHARE) so a concurrent demotion
# waits and then revokes what this adds; the count of live invites against the
# cap; and the insert, made only if the role is one of :may_mint (the service's
# rule) and the count is under the cap. With an invite made, the caller's
# display name is refreshed if the token brought a new one (a member's user row
# always exists: the membership refers to it).
# The row always comes back, with the role and the count, so the caller can
# say why nothing was inserted; no inserted row with both allowing it means
# the code is taken. The unique digest index catches a code taken under the
# current key; while keys rotate, NOT EXISTS also sees one taken under an
# older key.
_MINT = Prepared(
    "invite_mint",
    f"""
    WITH me AS (
        SELECT role
          FROM group_memberships
         WHERE group_id = :group_id AND user_id = :created_by
           FOR SHARE
    ),
    live AS (
        SELECT count(*) AS n FROM group_invites i WHERE i.group_id = :group_id AND {IS_LIVE}
    ),
    minted AS (
        INSERT INTO group_invites AS i
               (group_id, code_digest, code_sealed, code_key, preset_role, max_uses,
                expires_at, created_by)
        SELECT CAST(:group_id AS uuid), CAST(:code_digest AS bytea),
               CAST(:code_sealed AS bytea), CAST(:code_key AS text),
               CAST(:preset_role AS group_role), CAST(:max_uses AS integer),
               -- Whole seconds: the API shows times without a fraction (app/api/fields.py).
               date_trunc('second', now())
                   + make_interval(hours => CAST(:expires_in_hours AS integer)),
               CAST(:created_by AS uuid)
         WHERE EXISTS (SELECT 1 FROM me
                        WHERE CAST(me.role AS text) = ANY(CAST(:may_mint AS text[])))
           AND (SELECT n FROM live) < CAST(:max_active AS integer)
           AND NOT EXISTS (SELECT 1 FROM group_invites WHERE code_digest = ANY(:digests))
        ON CONFLICT (code_digest) DO NOTHING
        RETURNING {INVITE_COLUMNS}
    ),
    renamed AS (
        {RENAME_USER.format(user_id=":created_by", when="EXISTS (SELECT 1 FROM minted)")}
    )
    SELECT (SELECT role FROM me) AS caller_role, (SELECT n FROM live) AS live_count, minted.*
      FROM (VALUES (1)) AS one
      LEFT JOIN minted ON true
    """,
)

# The group's lock, then the mint: one round trip, one transaction.
_LOCK_AND_MINT = Batch(LOCK_GROUP, _MINT)

# The group's live invites, newest first, if the caller's role is one of
# :roles; none otherwise (the caller says why: no such group, not allowed, or
# nothing live).
_LIST_LIVE = Prepared(
    "invite_list_live",
    f"""
    SELECT {INVITE_COLUMNS}, u.display_name AS created_by_display_name
      FROM group_invites i
      JOIN users u ON u.id = i.created_by
     WHERE i.group_id = :group_id AND {IS_LIVE}
       AND EXISTS (SELECT 1 FROM group_memberships me
                    WHERE me.group_id = :group_id AND me.user_id = :user_id
                      AND CAST(me.role AS text) = ANY(CAST(:roles AS text[])))
     ORDER BY i.created_at DESC, i.id DESC
    """,
)

_GET = sa.text(
    f"""
    SELECT {INVITE_COLUMNS}, {STATUS} AS status
      FROM group_invites i
     WHERE i.id = :invite_id AND i.group_id = :group_id
    """
)

_REVOKE = sa.text(
    """
    UPDATE group_invites
       SET revoked_at = now(), revoked_by = :revoked_by, revoked_reason = 'revoked'
     WHERE id = :invite_id AND group_id = :group_id AND revoked_at IS NULL
    RETURNING id
    """
)

_EXISTS_IN_GROUP = sa.text(
    "SELECT EXISTS (SELECT 1 FROM group_invites WHERE id = :invite_id AND group_id = :group_id)"
)

_REDEMPTIONS = sa.text(
    """
    SELECT m.user_id, u.display_name, m.role, m.joined_at
      FROM group_memberships m
      JOIN users u ON u.id = m.user_id
     WHERE m.invite_id = :invite_id
     ORDER BY m.joined_at, m.id
    """
)

_PREVIEW = Prepared(
    "invite_preview",
    f"""
    SELECT g.name AS group_name, g.icon_emoji AS group_icon_emoji,
           {MEMBER_COUNT} AS member_count,
           i.preset_role, i.expires_at, {STATUS} AS status
      FROM group_invites i
      JOIN groups g ON g.id = i.group_id
     WHERE i.code_digest = ANY(:digests)
    """,
)

# The whole redemption in one statement: take a use, add the member, and
# read back the group. The row lock taken by the UPDATE serialises joiners of
# one invite, and PostgreSQL re-checks the predicate against the latest row
# version before incrementing, so current_uses can never pass max_uses
# however many requests race.
# The group row is KEY SHARE-locked first (the lock the membership's foreign
# key takes anyway), so a concurrent group delete, which locks the group and
# then cascades to its invites, waits for us instead of deadlocking with us.
# The user's row is made (or their display name refreshed) in the same
# statement, and only when a use was taken: a refused join changes nothing.
# No row: no use was taken (see _DIAGNOSE). A concurrent join by the same user
# that committed after this statement's snapshot makes the membership insert
# fail (unique violation on group_memberships_one_per_user): the statement,
# use and all, is undone, and the caller answers already-member.
# The member count is read in the statement's snapshot, which does not hold
# the membership it adds: hence the + joined.
# Nor does it hold what other joiners committed while this statement waited
# for the invite's row lock: uses_taken (the uses taken since the snapshot,
# this one included) says whether that happened; above 1, the count is stale
# and the caller reads it again (groups.group_summary).
_REDEEM = Prepared(
    "invite_redeem",
    f"""
    WITH target AS (
        SELECT t.id, t.current_uses AS uses_seen
          FROM group_invites t
          JOIN groups g ON g.id = t.group_id
         WHERE t.code_digest = ANY(:digests)
           FOR KEY SHARE OF g
    ),
    used AS (
        UPDATE group_invites AS i
           SET current_uses = i.current_uses + 1
          FROM target
         WHERE i.id = target.id
           AND {IS_LIVE}
           AND NOT EXISTS (SELECT 1 FROM group_memberships m
                            WHERE m.group_id = i.group_id AND m.user_id = :user_id)
        RETURNING i.id, i.group_id, i.preset_role, i.created_by, i.current_uses
    ),
    new_user AS (
        INSERT INTO users (id, display_name)
        SELECT CAST(:user_id AS uuid), CAST(:display_name AS text) FROM used
        ON CONFLICT (id) DO NOTHING
        RETURNING id
    ),
    renamed AS (
        {
        RENAME_USER.format(
            user_id=":user_id",
            when="EXISTS (SELECT 1 FROM used) AND NOT EXISTS (SELECT 1 FROM new_user)",
        )
    }
    ),
    joined AS (
        INSERT INTO group_memberships (group_id, user_id, role, invited_by, invite_id)
        SELECT used.group_id, CAST(:user_id AS uuid), used.preset_role, used.created_by, used.id
          FROM used
        RETURNING id, role, joined_at
    )
    SELECT used.group_id, g.name AS group_name,
           {MEMBER_COUNT} + (SELECT count(*) FROM joined) AS member_count,
           used.current_uses - target.uses_seen AS uses_taken,
           joined.id AS membership_id, joined.role, joined.joined_at
      FROM used
      JOIN target ON target.id = used.id
      JOIN groups g ON g.id = used.group_id
      LEFT JOIN joined ON true
    """,
)

_DIAGNOSE = sa.text(
    f"""
    SELECT {STATUS} AS status,
           EXISTS (SELECT 1 FROM group_memberships m
                    WHERE m.group_id = i.group_id AND m.user_id = :user_id) AS is_member
      FROM group_invites i
     WHERE i.code_digest = ANY(:digests)
    """
)


class AlreadyJoined(Exception):
    """A concurrent join by the same user won the race (redeem)."""


def _dict(row: sa.Row | None) -> dict | None:
    return dict(row._mapping) if row is not None else None


def mint(
    conn: sa.Connection,
    *,
    group_id: UUID,
    code_digest: bytes,
    code_sealed: bytes,
    code_key: str,
    digests: list[bytes],
    preset_role: str,
    max_uses: int,
    expires_in_hours: int,
    created_by: UUID,
    display_name: str | None,
    may_mint: list[str],
    max_active: int,
) -> tuple[str | None, int, dict | None]:
    """Lock the group and insert an invite if ``created_by``'s role is one of
    ``may_mint`` and the group is under ``max_active`` live invites (see _MINT):
    their role (None: not a member, or no such group), the live count before, and
    the new invite, None if it was not inserted (by the rules, or its code is
    taken)."""
    invite = _LOCK_AND_MINT.one(
        conn,
        {
            "group_id": group_id,
            "code_digest": code_digest,
            "code_sealed": code_sealed,
            "code_key": code_key,
            "digests": digests,
            "preset_role": preset_role,
            "max_uses": max_uses,
            "expires_in_hours": expires_in_hours,
            "created_by": created_by,
            "display_name": display_name,
            "may_mint": may_mint,
            "max_active": max_active,
        },
    )
    role, live = invite.pop("caller_role"), invite.pop("live_count")
    return role, live, (invite if invite["id"] is not None else None)


def list_live(conn: sa.Connection, group_id: UUID, user_id: UUID, roles: list[str]) -> list[dict]:
    """The group's live invites, if ``user_id``'s role in it is one of ``roles``."""
    return _LIST_LIVE.rows(conn, {"group_id": group_id, "user_id": user_id, "roles": roles})


def get_invite(conn: sa.Connection, group_id: UUID, invite_id: UUID) -> dict | None:
    return _dict(conn.execute(_GET, {"group_id": group_id, "invite_id": invite_id}).one_or_none())


def revoke(conn: sa.Connection, group_id: UUID, invite_id: UUID, revoked_by: UUID) -> bool:
    """Revoke a live invite; False if it was already revoked or is not in the group."""
    row = conn.execute(
        _REVOKE, {"group_id": group_id, "invite_id": invite_id, "revoked_by": revoked_by}
    ).one_or_none()
    return row is not None


def exists_in_group(conn: sa.Connection, group_id: UUID, invite_id: UUID) -> bool:
    return conn.execute(
        _EXISTS_IN_GROUP, {"group_id": group_id, "invite_id": invite_id}
    ).scalar_one()


def redemptions(conn: sa.Connection, invite_id: UUID) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(_REDEMPTIONS, {"invite_id": invite_id})]


# ``digests``: the code's digest under every configured key (CodeKeyring.digests).


def preview(conn: sa.Connection, digests: list[bytes]) -> dict | None:
    return _PREVIEW.one_or_none(conn, {"digests": digests})


def redeem(
    conn: sa.Connection, digests: list[bytes], user_id: UUID, display_name: str | None
) -> dict | None:
    """Take one use of a live invite and add the user to its group (_REDEEM): the
    group and the membership, or None if no use could be taken. Raises
    ``AlreadyJoined`` if a concurrent join by the same user added them first
    (nothing is kept: roll back the transaction, if the caller has one)."""
    params = {"digests": digests, "user_id": user_id, "display_name": display_name}
    try:
        return _REDEEM.one_or_none(conn, params)
    except sa.exc.IntegrityError as exc:
        if getattr(exc.orig.diag, "constraint_name", None) == "group_memberships_one_per_user":
            raise AlreadyJoined from exc
        raise


def diagnose(conn: sa.Connection, digests: list[bytes], user_id: UUID) -> dict | None:
    """Why a code could not be used: its status and whether the user is a member."""
    return _dict(conn.execute(_DIAGNOSE, {"digests": digests, "user_id": user_id}).one_or_none())
