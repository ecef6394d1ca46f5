"""Schemathesis hooks for fuzzing a live server (`make fuzz`).

Loaded by the Schemathesis CLI through tests/fuzz/schemathesis.toml. They
give the fuzzer its users, add the checks that hold this API to its own
document, and count what was sent.

- Every operation runs as one owner, so the stateful phase's links (create a
  group, then an invite in it, then preview, join, revoke it) reach real
  data. Joins run as a fresh user each time, so a live invite admits them
  until it is used up.
- Now and then the caller is someone else, so the refusals are reached too:
  a join by the owner, already a member (409 already_member), and managing
  calls on a group by a member who joined it earlier in the run (403
  forbidden).
- Every 4xx and 5xx must be the contract's envelope, and its `error` code one
  the document lists for that status (`x-error-codes`).
- A well-formed Idempotency-Key is mostly swapped for a fresh one, as a real
  caller would send: generated keys repeat (the document's example, short
  strings), and a repeated key answers only its first request; every later
  one is a 422 that hides the rest. Malformed keys are left alone: they must
  be refused.
- Text the document's patterns cannot describe is not sent as valid data:
  the patterns state the text rules for the Basic Multilingual Plane, and
  each field's description the rest (characters beyond it, runs of marks).
- Counts of requests per operation and status go to FUZZ_STATS_PATH.
"""

from __future__ import annotations

import ast
import atexit
import collections
import datetime as dt
import json
import os
import random
import re
import threading
import uuid

import jwt
import schemathesis

from app.api.fields import MAX_COMBINING_RUN, _combining, _invisible_alone
from app.api.idempotency import KEY_PATTERN
from app.token import mint

SECRET = os.environ["FUZZ_JWT_SECRET"]
OWNER_ID = os.environ.get("FUZZ_OWNER_ID") or str(uuid.uuid4())
STATS_PATH = os.environ.get("FUZZ_STATS_PATH")
ERROR_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# How often a call goes to someone other than its usual caller.
OTHER_CALLER_RATE = 0.2
MANAGING = {"getInvite", "listInvites", "createInvite", "revokeInvite", "listInviteRedemptions"}

# Not the `random` module: Hypothesis seeds that inside generation, which
# would make every choice the same.
_rng = random.SystemRandom()
_lock = threading.Lock()
_counts: collections.Counter[str] = collections.Counter()
# group id -> ids of users who joined it during the run
_members: dict[str, list[str]] = collections.defaultdict(list)


WELL_FORMED_KEY = re.compile(KEY_PATTERN)
FRESH_KEY_RATE = 0.8

# CPython 3.11 before 3.11.9 can raise "SystemError: AST constructor recursion
# depth mismatch" when two threads parse at once (gh-106905); Hypothesis parses
# lambdas' source to describe them, in both of Schemathesis' workers.
_parse_lock = threading.Lock()
_parse = ast.parse


def _serial_parse(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _serial_parse


_BEYOND_THE_PATTERN = frozenset(ch for ch in _invisible_alone(True) if ord(ch) > 0xFFFF)
_TEXT_FIELDS = ("name", "description", "icon_emoji")


def _states_only_in_prose(text: str) -> bool:
    """Whether a rule the pattern leaves to the description decides this text."""
    if any(ch in _BEYOND_THE_PATTERN for ch in text):
        return True
    run = 0
    for ch in text:
        run = run + 1 if ch in _combining() else 0
        if run > MAX_COMBINING_RUN:
            return True
    return False


@schemathesis.hook
def filter_case(context, case):
    body = case.body
    if not isinstance(body, dict):
        return True
    return not any(
        isinstance(body.get(field), str) and _states_only_in_prose(body[field])
        for field in _TEXT_FIELDS
    )


def token(sub: str, name: str) -> str:
    return mint(SECRET, subject=sub, name=name, lifetime=dt.timedelta(hours=2))


def operation_id(case) -> str:
    return case.operation.definition.raw.get("operationId", case.operation.label)


@schemathesis.auth(refresh_interval=None)
class Users:
    """The owner for everything, a newcomer for each join."""

    def get(self, case, context):
        operation = operation_id(case)
        other = _rng.random() < OTHER_CALLER_RATE
        if operation == "joinGroup":
            if other:
                return token(OWNER_ID, "Fuzz Owner")  # a member of every group it made
            return token(str(uuid.uuid4()), "Fuzz Joiner")
        if operation in MANAGING and other:
            with _lock:
                members = list(_members.get(str((case.path_parameters or {}).get("group_id")), ()))
            if members:
                return token(_rng.choice(members), "Fuzz Member")
        return token(OWNER_ID, "Fuzz Owner")

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
        key = case.headers.get("Idempotency-Key")
        if isinstance(key, str) and WELL_FORMED_KEY.match(key) and _rng.random() < FRESH_KEY_RATE:
            case.headers["Idempotency-Key"] = str(uuid.uuid4())


@schemathesis.hook
def after_call(context, case, response):
    # Checks also send other methods to an operation's path (to see a 405 and
    # its Allow header, or what OPTIONS says); those are counted apart.
    method = "" if case.method.upper() == case.operation.method.upper() else f" {case.method}"
    joined = None
    if operation_id(case) == "joinGroup" and not method and response.status_code == 200:
        bearer = (case.headers or {}).get("Authorization", "").removeprefix("Bearer ")
        user = jwt.decode(bearer, SECRET, algorithms=["HS256"])["sub"]
        joined = (response.json()["group"]["id"], user)
    with _lock:
        _counts[f"{operation_id(case)}{method} {response.status_code}"] += 1
        if joined:
            _members[joined[0]].append(joined[1])


def _write_stats() -> None:
    if STATS_PATH:
        with open(STATS_PATH, "w", encoding="utf-8") as out:
            json.dump(dict(sorted(_counts.items())), out, indent=1)


atexit.register(_write_stats)


@schemathesis.check
def error_envelope(ctx, response, case):
    """Every 4xx and 5xx is `{error, message[, details]}` with a code the document lists."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith("application/json"):
        raise AssertionError(f"{response.status_code} is {content_type!r}, not the JSON envelope")
    body = response.json()
    if not isinstance(body, dict) or not {"error", "message"} <= set(body) <= {
        "error",
        "message",
        "details",
    }:
        raise AssertionError(f"not the error envelope: {body!r}")
    if not (isinstance(body["error"], str) and ERROR_CODE.match(body["error"])):
        raise AssertionError(f"`error` is not a snake_case code: {body['error']!r}")
    if not (isinstance(body["message"], str) and body["message"].strip()):
        raise AssertionError("`message` is empty")
    if "Traceback" in body["message"] or "SELECT" in body["message"]:
        raise AssertionError(f"internals leak into the message: {body['message']!r}")
    if "details" in body and body["error"] != "validation_error":
        raise AssertionError(f"`details` on {body['error']}")
    if response.status_code == 401 and response.headers.get("www-authenticate") != ["Bearer"]:
        raise AssertionError("401 without `WWW-Authenticate: Bearer`")
    documented = case.operation.definition.raw.get("responses", {}).get(
        str(response.status_code), {}
    )
    codes = documented.get("x-error-codes")
    if codes is not None and body["error"] not in codes:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} {body['error']}, "
            f"but the document lists only {codes}"
        )
    return
