"""The database as views reach it: the app's engine, and use cases run in one unit of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import current_app, g

from app import unit_of_work
from app.code_keys import CodeKeyring
from app.unit_of_work import UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")


def code_keys() -> CodeKeyring:
    """The keys invite codes are stored under (app/code_keys.py)."""
    return current_app.extensions["code_keys"]


def get_engine() -> sa.Engine:
    """The engine of the current app (created by the app factory, connected lazily)."""
    return current_app.extensions["db_engine"]


def run(
    use_case: Callable[Concatenate[UnitOfWork, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``use_case(uow, *args, **kwargs)`` in the request's unit of work when the view
    runs in one (``app.api.idempotency``), else in its own, committed when it returns."""
    uow = g.get("uow")
    if uow is not None:
        return use_case(uow, *args, **kwargs)
    return unit_of_work.run(get_engine(), use_case, *args, **kwargs)


def read(
    use_case: Callable[Concatenate[UnitOfWork, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``run`` for a use case that only reads: no transaction around it, so no COMMIT
    round trip (the hot reads are one statement each)."""
    uow = g.get("uow")
    if uow is not None:
        return use_case(uow, *args, **kwargs)
    return unit_of_work.read(get_engine(), use_case, *args, **kwargs)
