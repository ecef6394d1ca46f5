"""Invite codes at rest: looked up by a keyed digest, kept only sealed.

A code is a bearer credential, so no form of it that can be used is stored
or sent to PostgreSQL (whose logs may print every statement):

- ``code_digest``: HMAC-SHA256 of the code under a lookup key. The preview
  and the join find an invite by it; without the key, a stolen table or
  backup cannot be searched for codes, not even by trying all 2**45.
- ``code_sealed``: the code under AES-256-GCM with a sealing key, bound to
  its group (associated data), for the listing and the invite's own page.
- ``code_key``: which key made both, so keys can be rotated.

Both keys are derived (HKDF-SHA256) from one 32-byte secret per key id,
given as ``CODE_KEYS=id:base64url,...`` with the current key first. Every
configured key is tried on lookup and accepted on opening, so rotation
needs no downtime: see ``python -m app.code_keys --help`` and the README.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
REKEY_BATCH = 500


class CodeKeyError(ValueError):
    """CODE_KEYS does not describe usable keys, or a sealed value does not open."""


@dataclass(frozen=True)
class CodeKey:
    id: str
    lookup: bytes
    seal: AESGCM

    @classmethod
    def derive(cls, key_id: str, secret: bytes) -> CodeKey:
        def hkdf(purpose: bytes) -> bytes:
            return HKDF(
                algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose
            ).derive(secret)

        return cls(
            key_id, hkdf(b"group-invites code lookup v1"), AESGCM(hkdf(b"group-invites seal v1"))
        )


class CodeKeyring:
    """The configured keys; the first one makes every new digest and seal."""

    def __init__(self, keys: Iterable[CodeKey]):
        self.keys = list(keys)
        if not self.keys:
            raise CodeKeyError("CODE_KEYS names no key")
        self.by_id = {key.id: key for key in self.keys}
        if len(self.by_id) != len(self.keys):
            raise CodeKeyError("CODE_KEYS names a key id twice")

    @property
    def current(self) -> CodeKey:
        return self.keys[0]

    @classmethod
    def parse(cls, value: str) -> CodeKeyring:
        """``id:base64url-of-32-bytes[,id:...]``, current first."""
        keys = []
        for item in (part.strip() for part in value.split(",")):
            key_id, _, encoded = item.partition(":")
            if not _KEY_ID.match(key_id):
                raise CodeKeyError("CODE_KEYS entries are id:key, the id 1-32 of A-Z a-z 0-9 . _ -")
            try:
                secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                secret = b""
            if len(secret) != KEY_BYTES:
                raise CodeKeyError(
                    f"CODE_KEYS key {key_id!r} is not {KEY_BYTES} bytes of base64url"
                )
            keys.append(CodeKey.derive(key_id, secret))
        return cls(keys)

    # -- codes ---------------------------------------------------------------

    def digest(self, code: str, key: CodeKey | None = None) -> bytes:
        return hmac.new((key or self.current).lookup, code.encode(), hashlib.sha256).digest()

    def digests(self, code: str) -> list[bytes]:
        """The code's digest under every configured key (an invite made under any is found)."""
        return [self.digest(code, key) for key in self.keys]

    def seal_code(self, code: str, group_id: UUID) -> tuple[str, bytes]:
        return self._seal(code.encode(), b"code" + group_id.bytes)

    def open_code(self, key_id: str, sealed: bytes, group_id: UUID) -> str:
        return self._open(key_id, sealed, b"code" + group_id.bytes).decode()

    # -- anything else that may hold a code (stored responses) ------------------

    def seal_text(self, text: str, context: bytes) -> tuple[str, bytes]:
        return self._seal(text.encode(), b"text" + context)

    def open_text(self, key_id: str, sealed: bytes, context: bytes) -> str:
        return self._open(key_id, sealed, b"text" + context).decode()

    def _seal(self, plain: bytes, associated: bytes) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self.current.id, nonce + self.current.seal.encrypt(nonce, plain, associated)

    def _open(self, key_id: str, sealed: bytes, associated: bytes) -> bytes:
        key = self.by_id.get(key_id)
        if key is None:
            raise CodeKeyError(f"sealed under key {key_id!r}, which CODE_KEYS no longer names")
        sealed = bytes(sealed)
        try:
            return key.seal.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except InvalidTag:
            raise CodeKeyError(f"a value sealed under {key_id!r} does not open with it") from None


def new_key_spec(key_id: str) -> str:
    """A fresh ``id:secret`` entry for CODE_KEYS."""
    if not _KEY_ID.match(key_id):
        raise CodeKeyError("a key id is 1-32 of A-Z a-z 0-9 . _ -")
    secret = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return f"{key_id}:{secret}"


# -- moving stored codes to the current key ------------------------------------

_PLAIN = sa.text(
    "SELECT id, group_id, code FROM group_invites"
    " WHERE code_digest IS NULL ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED"
)
_STALE = sa.text(
    "SELECT id, group_id, code_key, code_sealed FROM group_invites"
    " WHERE code_key <> :current ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED"
)
_SET = sa.text(
    "UPDATE group_invites SET code_digest = :digest, code_sealed = :sealed, code_key = :key"
    " WHERE id = :id"
)
# Before migration 041 drops the column: the plain code goes as it is sealed.
_SET_FROM_PLAIN = sa.text(
    "UPDATE group_invites SET code = NULL, code_digest = :digest, code_sealed = :sealed,"
    " code_key = :key WHERE id = :id"
)
_STALE_BODIES = sa.text(
    "SELECT user_id, key, body_key, body_sealed FROM idempotency_keys"
    " WHERE body_key <> :current LIMIT :batch FOR UPDATE SKIP LOCKED"
)
_SET_BODY = sa.text(
    "UPDATE idempotency_keys SET body_key = :body_key, body_sealed = :sealed"
    " WHERE user_id = :user_id AND key = :key"
)


def idempotency_context(user_id: UUID, key: str) -> bytes:
    return user_id.bytes + key.encode()


def seal_plain_codes(conn: sa.Connection, keys: CodeKeyring) -> int:
    """Seal the codes stored in the clear before migration 040, a batch per
    transaction on ``conn``; how many."""
    done = 0
    while True:
        with conn.begin():
            rows = conn.execute(_PLAIN, {"batch": REKEY_BATCH}).all()
            for row in rows:
                _store(conn, keys, row.id, row.group_id, row.code, _SET_FROM_PLAIN)
        done += len(rows)
        if len(rows) < REKEY_BATCH:
            return done


def rekey(engine: sa.Engine, keys: CodeKeyring) -> tuple[int, int]:
    """Reseal every code and stored response under the current key, in batches.

    Safe while the service runs: each batch is its own short transaction, and
    rows another transaction holds are skipped and taken by a later batch.
    Returns (invites, stored responses) moved.
    """
    invites = responses = 0
    current = keys.current.id
    while True:
        with engine.begin() as conn:
            rows = conn.execute(_STALE, {"current": current, "batch": REKEY_BATCH}).all()
            for row in rows:
                code = keys.open_code(row.code_key, row.code_sealed, row.group_id)
                _store(conn, keys, row.id, row.group_id, code)
        invites += len(rows)
        if len(rows) < REKEY_BATCH:
            break
    while True:
        with engine.begin() as conn:
            rows = conn.execute(_STALE_BODIES, {"current": current, "batch": REKEY_BATCH}).all()
            for row in rows:
                context = idempotency_context(row.user_id, row.key)
                body = keys.open_text(row.body_key, row.body_sealed, context)
                body_key, sealed = keys.seal_text(body, context)
                conn.execute(
                    _SET_BODY,
                    {
                        "body_key": body_key,
                        "sealed": sealed,
                        "user_id": row.user_id,
                        "key": row.key,
                    },
                )
        responses += len(rows)
        if len(rows) < REKEY_BATCH:
            return invites, responses


def _store(conn, keys: CodeKeyring, invite_id, group_id, code: str, statement=_SET) -> None:
    key_id, sealed = keys.seal_code(code, group_id)
    conn.execute(
        statement, {"id": invite_id, "digest": keys.digest(code), "sealed": sealed, "key": key_id}
    )


def from_environment() -> CodeKeyring:
    """CODE_KEYS, or the development keys `make run` keeps in .data/."""
    from app.local import DATA_DIR, dev_code_keys

    value = os.environ.get("CODE_KEYS", "").strip() or dev_code_keys(create=False)
    if not value:
        raise SystemExit(
            f"CODE_KEYS is unset (and there are no development keys in {DATA_DIR}): set it to "
            "the keys the service runs with"
        )
    return CodeKeyring.parse(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.code_keys",
        description="Invite-code keys: make one, or move every stored code to the current key.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="print a fresh id:secret entry for CODE_KEYS")
    new.add_argument("key_id", help="a name for it, e.g. 2026-12")
    sub.add_parser("rekey", help="reseal every stored code under the first key of CODE_KEYS")
    sub.add_parser("status", help="how many invites each key holds")
    args = parser.parse_args(argv)
    if args.command == "new":
        print(new_key_spec(args.key_id))
        return 0
    from app.db import create_engine

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        print("code_keys: DATABASE_URL is not set", file=sys.stderr)
        return 2
    keys = from_environment()
    engine = create_engine(url, pool_size=1)
    try:
        if args.command == "rekey":
            invites, responses = rekey(engine, keys)
            print(
                f"resealed {invites} invites and {responses} stored responses"
                f" under {keys.current.id!r}"
            )
        else:
            with engine.connect() as conn:
                counts = conn.execute(
                    sa.text("SELECT code_key, count(*) FROM group_invites GROUP BY 1 ORDER BY 1")
                ).all()
            for key_id, count in counts:
                print(f"{key_id}: {count} invites")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
