"""Path parameters of authenticated resources: ids arrive in views as UUIDs."""

from __future__ import annotations

import functools
import re
import uuid

from app.api.parsing import validation_error
from app.auth import auth_required

_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def parse_id(value: str, field: str) -> uuid.UUID:
    """A path id (canonical 8-4-4-4-12 UUID) as a UUID, or a 400 naming the parameter."""
    if not _CANONICAL_UUID.fullmatch(value):
        raise validation_error([{"field": field, "message": "Not a valid UUID."}])
    return uuid.UUID(value)


def path_ids(view):
    """Hand the view its ``<id:...>`` path parameters as UUIDs."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        return view(
            *args, **{k: parse_id(v, k) if k.endswith("_id") else v for k, v in kwargs.items()}
        )

    return wrapper


# MethodView.decorators for authenticated resources: the token is checked
# first (the last decorator listed is the outermost), then the path ids.
AUTHENTICATED = [path_ids, auth_required]
