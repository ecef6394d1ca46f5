"""Idempotency-Key: the first response to a keyed request, kept for replay.

The caller (``app.api.idempotency``) claims the key in the unit of work
that will do the work, does the work, and saves the response in that same
unit of work: both commit together or neither does. The claim is an
advisory lock held until the transaction ends, so of several requests
racing with one key exactly one works; the others are told the key is in
use, or, once it committed, get its response.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from uuid import UUID

from app import errors
from app.code_keys import CodeKeyring, idempotency_context
from app.repository import idempotency as key_repo
from app.unit_of_work import UnitOfWork

TTL_HOURS = 24
PURGE_BATCH = 500


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    location: str | None = None


def canonical_body(raw: bytes) -> str:
    """The body as the fingerprint sees it: JSON re-serialised with sorted keys and no
    spacing, so formatting and key order do not make two requests different."""
    if not raw.strip():
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return "raw:" + raw.hex()  # refused later by the parser; never saved
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(method: str, route: str, path_params: dict[str, str], body: str) -> bytes:
    """SHA-256 of what makes two requests the same request."""
    material = json.dumps(
        [method.upper(), route, sorted(path_params.items()), body], ensure_ascii=False
    )
    return hashlib.sha256(material.encode()).digest()


def _lock_id(user_id: UUID, key: str) -> int:
    digest = hashlib.sha256(user_id.bytes + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def claim(
    uow: UnitOfWork, user_id: UUID, key: str, digest: bytes, *, keys: CodeKeyring
) -> StoredResponse | None:
    """Take ``key`` for this request until ``uow`` ends.

    None: go ahead, then ``save`` the response in the same unit of work. A
    stored response: replay it. Raises ``IdempotencyKeyInUse`` while another
    request holds the key, ``IdempotencyKeyReused`` if it answered another request.
    """
    if not key_repo.try_lock(uow.conn, _lock_id(user_id, key)):
        raise errors.IdempotencyKeyInUse()
    found = key_repo.find(uow.conn, user_id, key, TTL_HOURS)
    if found is None:
        return None
    if bytes(found["fingerprint"]) != digest:
        raise errors.IdempotencyKeyReused()
    body = keys.open_text(
        found["body_key"], found["body_sealed"], idempotency_context(user_id, key)
    )
    return StoredResponse(found["status"], body, found["location"])


def save(
    uow: UnitOfWork,
    user_id: UUID,
    key: str,
    digest: bytes,
    response: StoredResponse,
    *,
    keys: CodeKeyring,
) -> None:
    """Keep ``response`` under the key; its body sealed, since a created invite's holds its code."""
    body_key, sealed = keys.seal_text(response.body, idempotency_context(user_id, key))
    key_repo.save(
        uow.conn,
        user_id=user_id,
        key=key,
        fingerprint=digest,
        status=response.status,
        body_key=body_key,
        body_sealed=sealed,
        location=response.location,
        ttl_hours=TTL_HOURS,
    )


def purge_expired(uow: UnitOfWork, batch: int = PURGE_BATCH) -> int:
    """Delete up to ``batch`` keys older than the replay window; how many went."""
    return key_repo.purge(uow.conn, TTL_HOURS, batch)
