"""The database as views reach it: the app's engine, and use cases run in one unit of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import current_app

from app import unit_of_work
from app.unit_of_work import UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")


def get_engine() -> sa.Engine:
    """The engine of the current app (created by the app factory, connected lazily)."""
    return current_app.extensions["db_engine"]


def run(
    use_case: Callable[Concatenate[UnitOfWork, P], T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``use_case(uow, *args, **kwargs)`` in one transaction, committed when it returns."""
    return unit_of_work.run(get_engine(), use_case, *args, **kwargs)


def run_retrying(
    attempts: int,
    give_up: Callable[[], Exception],
    use_case: Callable[Concatenate[UnitOfWork, P], T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``run``, tried up to ``attempts`` times (see ``unit_of_work.run_retrying``)."""
    return unit_of_work.run_retrying(get_engine(), attempts, give_up, use_case, *args, **kwargs)
