from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa

# Held until the transaction ends: the one request working under a key.
_TRY_LOCK = sa.text("SELECT pg_try_advisory_xact_lock(:lock_id)")

_FIND = sa.text(
    """
    SELECT fingerprint, status, body_key, body_sealed, location
      FROM idempotency_keys
     WHERE user_id = :user_id AND key = :key
       AND created_at > now() - make_interval(hours => :ttl_hours)
    """
)

# An expired row under the same key is replaced; a live one never is (the
# caller holds the key's lock and found none).
_SAVE = sa.text(
    """
    INSERT INTO idempotency_keys AS k
           (user_id, key, fingerprint, status, body_key, body_sealed, location)
    VALUES (:user_id, :key, :fingerprint, :status, :body_key, :body_sealed, :location)
    ON CONFLICT ON CONSTRAINT idempotency_keys_pkey DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status,
           body_key = EXCLUDED.body_key, body_sealed = EXCLUDED.body_sealed,
           location = EXCLUDED.location, created_at = now()
     WHERE k.created_at <= now() - make_interval(hours => :ttl_hours)
    """
)

_PURGE = sa.text(
    """
    DELETE FROM idempotency_keys
     WHERE (user_id, key) IN (
           SELECT user_id, key
             FROM idempotency_keys
            WHERE created_at <= now() - make_interval(hours => :ttl_hours)
            ORDER BY created_at
            LIMIT :batch
              FOR UPDATE SKIP LOCKED)
    """
)


def try_lock(conn: sa.Connection, lock_id: int) -> bool:
    return conn.execute(_TRY_LOCK, {"lock_id": lock_id}).scalar_one()


def find(conn: sa.Connection, user_id: UUID, key: str, ttl_hours: int) -> dict | None:
    row = conn.execute(
        _FIND, {"user_id": user_id, "key": key, "ttl_hours": ttl_hours}
    ).one_or_none()
    return dict(row._mapping) if row else None


def save(
    conn: sa.Connection,
    *,
    user_id: UUID,
    key: str,
    fingerprint: bytes,
    status: int,
    body_key: str,
    body_sealed: bytes,
    location: str | None,
    ttl_hours: int,
) -> None:
    conn.execute(
        _SAVE,
        {
            "user_id": user_id,
            "key": key,
            "fingerprint": fingerprint,
            "status": status,
            "body_key": body_key,
            "body_sealed": body_sealed,
            "location": location,
            "ttl_hours": ttl_hours,
        },
    )


def purge(conn: sa.Connection, ttl_hours: int, batch: int) -> int:
    """Delete up to ``batch`` expired keys, oldest first; how many went."""
    return conn.execute(_PURGE, {"ttl_hours": ttl_hours, "batch": batch}).rowcount
