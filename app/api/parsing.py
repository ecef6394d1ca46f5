"""Request-body parsing policy: JSON only, 400 (not 422) with our error details."""

from __future__ import annotations

import json
import typing

import flask
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser

from app.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed


def error_details(messages: object, prefix: str = "") -> list[dict]:
    """Flatten marshmallow's nested messages into ``[{"field", "message"}]``."""
    details: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = "body" if key == "_schema" else str(key)
            field = f"{prefix}.{name}" if prefix and name != "body" else (prefix or name)
            details.extend(error_details(value, field))
    elif isinstance(messages, list | tuple):
        for value in messages:
            details.extend(error_details(value, prefix))
    else:
        details.append({"field": prefix or "body", "message": str(messages)})
    return details


# No body here nests at all; this only keeps a hostile one from costing much.
MAX_DEPTH = 32


def _is_unicode(text: str) -> bool:
    """JSON's \\udXXX escapes can smuggle in text that is not encodable as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(data: object) -> str | None:
    """What is wrong with parsed JSON beyond its syntax, walked without recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _is_unicode(value):
                return "Strings must be valid Unicode."
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return "Nested too deeply."
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None and not _is_unicode(key):
                    return "Strings must be valid Unicode."
                stack.append((item, depth + 1))
    return None


def _body_error(message: str) -> ValidationFailed:
    return ValidationFailed.from_details([{"field": "body", "message": message}])


class DuplicateKey(Exception):
    """A JSON object names a key twice."""


def _unique_keys(pairs: list[tuple[str, typing.Any]]) -> dict:
    """Refuse `{"max_uses": 200, "max_uses": 2}`: parsers disagree on which one
    wins, so a body that a gateway and this service read differently is refused."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        raise DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return data


def read_body(req: flask.Request) -> bytes:
    """The request body, whole, or 413 when it is over MAX_CONTENT_LENGTH.

    Werkzeug refuses an oversized body only when it has a Content-Length; a
    chunked one it reads up to the limit and silently drops the rest, so a
    padded body would be accepted and a long one mistaken for broken JSON.
    A chunked body is therefore read here, from the server's de-chunked
    stream, at most one byte past the limit. This runs only when a view
    parses its body, after authentication, as any body read does.
    """
    codings = [c.strip().lower() for c in req.headers.get("Transfer-Encoding", "").split(",")]
    if codings == [""]:
        return req.get_data(cache=True)
    if _BODY in req.environ:
        return req.environ[_BODY]  # read already (the Idempotency-Key fingerprint)
    if codings != ["chunked"]:
        # e.g. "gzip, chunked": the server de-chunks but does not decompress.
        raise UnsupportedMediaType("Only the chunked transfer coding is supported.")
    limit = req.max_content_length
    stream = req.environ["wsgi.input"]
    body = stream.read() if limit is None else stream.read(limit + 1)
    if limit is not None and len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    req.environ[_BODY] = body
    return body


_BODY = "app.chunked_body"


class Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        body = read_body(req)
        if not body:
            return core.missing  # no body: every field takes its default
        # Exactly what the document says: not application/*+json, not text/json.
        if req.mimetype != "application/json":
            raise UnsupportedMediaType()
        try:
            data = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys)
        except DuplicateKey as exc:
            message = f"The key {exc.args[0]!r} appears more than once."
            raise _body_error(message) from None
        except UnicodeDecodeError:
            raise _body_error("Not valid JSON.") from None
        except RecursionError:
            raise _body_error("Nested too deeply.") from None
        except json.JSONDecodeError:
            raise  # webargs hands it to _handle_invalid_json_error
        except ValueError:
            # e.g. an integer literal longer than Python will convert
            raise _body_error("Not valid JSON.") from None
        problem = _problem(data)
        if problem:
            raise _body_error(problem)
        return data

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> typing.NoReturn:
        raise _body_error("Not valid JSON.") from error

    def handle_error(
        self,
        error: ma.ValidationError,
        req: flask.Request,
        schema: ma.Schema,
        *,
        error_status_code: int | None,
        error_headers: typing.Mapping[str, str] | None,
    ) -> typing.NoReturn:
        messages = error.messages
        # webargs nests messages under the location ("json"); callers only
        # care about the field.
        if isinstance(messages, dict) and set(messages) <= {"json", "query", "view_args"}:
            merged: dict = {}
            for value in messages.values():
                merged.update(value if isinstance(value, dict) else {"_schema": value})
            messages = merged
        raise ValidationFailed.from_details(error_details(messages)) from error
