"""Mint an access token for trying the API locally: ``make token`` or
``python -m app.token --name Alice``.

Signs with JWT_SECRET_KEY (HS256), or with the development secret that
``make run`` keeps in .data/ when JWT_SECRET_KEY is unset. Refuses otherwise:
in production tokens come from the identity service, not from here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import uuid

import jwt


def mint(
    key: str,
    *,
    subject: uuid.UUID | str,
    name: str | None = None,
    lifetime: dt.timedelta | None = dt.timedelta(hours=12),
    audience: str | None = None,
    issuer: str | None = None,
    algorithm: str = "HS256",
    **claims: object,
) -> str:
    """A signed access token for ``subject``; ``lifetime=None`` leaves out ``exp``,
    and ``claims`` are added last (so they can replace any of the standard ones)."""
    now = dt.datetime.now(dt.UTC)
    payload: dict = {
        "sub": str(subject),
        "iat": now,
        "nbf": now,
        "type": "access",
        "jti": uuid.uuid4().hex,
    }
    if lifetime is not None:
        payload["exp"] = now + lifetime
    if name:
        payload["name"] = name
    if audience:
        payload["aud"] = audience
    if issuer:
        payload["iss"] = issuer
    payload.update(claims)
    return jwt.encode(payload, key, algorithm=algorithm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.token", description=__doc__)
    parser.add_argument("--sub", type=uuid.UUID, default=None, help="user UUID (default: new)")
    parser.add_argument("--name", default=None, help="display name claim")
    parser.add_argument("--hours", type=int, default=12, choices=range(1, 721), metavar="1..720")
    args = parser.parse_args(argv)

    from app.local import dev_jwt_secret

    if os.environ.get("JWT_ALGORITHM", "HS256") != "HS256":
        print("token: only HS256 tokens can be minted here", file=sys.stderr)
        return 2
    secret = os.environ.get("JWT_SECRET_KEY") or dev_jwt_secret(create=False)
    if not secret:
        print(
            "token: refusing without a secret: set JWT_SECRET_KEY "
            "(the same value the server uses), or start `make run` once "
            "to create the development secret",
            file=sys.stderr,
        )
        return 2
    print(
        mint(
            secret,
            subject=args.sub or uuid.uuid4(),
            name=args.name,
            lifetime=dt.timedelta(hours=args.hours),
            audience=os.environ.get("JWT_DECODE_AUDIENCE") or None,
            issuer=os.environ.get("JWT_DECODE_ISSUER") or None,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
