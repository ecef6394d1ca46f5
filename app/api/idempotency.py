"""Idempotency-Key on the POSTs that create: the view runs in one unit of work.

``@idempotent`` runs the whole view in one unit of work (``g.uow``, which
``app.api.database.run`` joins), committed when the view returns. With an
``Idempotency-Key`` header the key is claimed first in that same unit of work
and the response saved in it before the commit, so the work and its record
commit together or not at all. Outcomes the work itself decided (``OUTCOMES``)
are saved and replayed too, with the work they undid rolled back to a savepoint.
Without a key, a view declared ``autocommit`` runs in a unit of work that makes
each statement its own transaction (``unit_of_work.run_statements_retrying``): its use
case must be written so that each statement, or batch, is a whole decision.
"""

from __future__ import annotations

import functools
import re
import secrets

from flask import Response, current_app, g, request
from sqlalchemy.exc import SQLAlchemyError

from app import errors, unit_of_work
from app.api.auth import current_actor
from app.api.database import code_keys, get_engine
from app.api.errors import error_response
from app.api.parsing import read_body
from app.services import idempotency as key_service
from app.unit_of_work import UnitOfWork

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

# 1 to 255 printable ASCII characters, as sent, or the same as a structured-field
# string ("...", with \" and \\ escapes) as the IETF httpapi draft writes it.
_RAW = r"[!#-~](?:[ -~]{0,253}[!-~])?"
_QUOTED = r'"(?:[ !#-\[\]-~]|\\["\\]){1,255}"'
KEY_PATTERN = f"^(?:{_RAW}|{_QUOTED})$"
_KEY = re.compile(KEY_PATTERN)
_ESCAPE = re.compile(r'\\(["\\])')
KEY_MESSAGE = (
    "Must be 1 to 255 printable ASCII characters, not starting or ending with a space, "
    'or the same as a quoted string ("...").'
)

# Answers that the work itself decided: saved under the key and replayed. Any
# other failure (refused input, 5xx) leaves no key, so the request can be retried.
OUTCOMES = (
    errors.AlreadyMember,
    errors.InviteExpired,
    errors.InviteExhausted,
    errors.InviteNotFound,
    errors.InviteLimitReached,
)
# Expired keys go in bounded batches, after about one keyed request in this many.
PURGE_EVERY = 100


def parse_key(value: str) -> str:
    if not _KEY.fullmatch(value):
        raise errors.ValidationFailed.from_details([{"field": HEADER, "message": KEY_MESSAGE}])
    if value.startswith('"'):
        return _ESCAPE.sub(r"\1", value[1:-1])
    return value


def idempotent(
    *,
    attempts: int = 1,
    give_up: type[errors.ApiError] = errors.ServiceUnavailable,
    autocommit: bool = False,
):
    """The view in one unit of work, honouring Idempotency-Key; run again in a fresh
    one (``attempts`` in all) when it loses a race or a deadlock, then ``give_up``.
    ``autocommit``: without a key, each statement is its own transaction (no BEGIN
    and COMMIT round trips), for a view whose use case is written so."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            raw = request.headers.get(HEADER)
            if raw is None:
                return _run(attempts, give_up, lambda uow: view(*args, **kwargs), autocommit)
            key = parse_key(raw)
            user_id = current_actor().id
            digest = key_service.fingerprint(
                request.method,
                request.url_rule.rule,
                {name: str(value) for name, value in kwargs.items()},
                key_service.canonical_body(read_body(request)),
            )

            def keyed(uow: UnitOfWork) -> Response:
                stored = key_service.claim(uow, user_id, key, digest, keys=code_keys())
                if stored is not None:
                    return _replay(stored)
                response = _decided(uow, view, args, kwargs)
                stored = key_service.StoredResponse(
                    response.status_code,
                    response.get_data(as_text=True),
                    response.headers.get("Location"),
                )
                key_service.save(uow, user_id, key, digest, stored, keys=code_keys())
                return response

            response = _run(attempts, give_up, keyed)
            if secrets.randbelow(PURGE_EVERY) == 0:
                _purge()
            return response

        return wrapper

    return decorator


def _run(attempts: int, give_up: type[errors.ApiError], work, autocommit: bool = False) -> Response:
    def in_request(uow: UnitOfWork) -> Response:
        g.uow = uow
        try:
            return work(uow)
        finally:
            g.pop("uow", None)

    if autocommit:
        return unit_of_work.run_statements_retrying(get_engine(), attempts, give_up, in_request)
    return unit_of_work.run_retrying(get_engine(), attempts, give_up, in_request)


def _decided(uow: UnitOfWork, view, args, kwargs) -> Response:
    """The view's response, or the envelope of an outcome it decided, its work undone."""
    savepoint = uow.conn.begin_nested()
    try:
        response = view(*args, **kwargs)
    except OUTCOMES as outcome:
        savepoint.rollback()
        return error_response(outcome)
    savepoint.commit()
    return response


def _replay(stored: key_service.StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, mimetype="application/json")
    if stored.location:
        response.headers["Location"] = stored.location
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _purge() -> None:
    try:
        removed = unit_of_work.run(get_engine(), key_service.purge_expired)
    except SQLAlchemyError as exc:
        current_app.logger.warning("expired idempotency keys not purged: %s", type(exc).__name__)
        return
    if removed:
        current_app.logger.info("purged %d expired idempotency keys", removed)
