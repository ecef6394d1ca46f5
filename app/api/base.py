"""The project's flask-smorest classes, where HTTP policy is set once."""

from __future__ import annotations

from inspect import iscoroutinefunction

import flask
import flask_smorest

from app.api import errors
from app.api.parsing import Parser
from app.api.schemas import ApiErrorSchema
from app.api.spec_plugin import DocumentPlugin

MAX_REMEMBERED_FUNCTIONS = 1024


class App(flask.Flask):
    """Flask, asking once per function whether it is a coroutine function.

    Flask's ``ensure_sync`` asks on every call, and it is called for every hook
    and view of every request (18 times for a preview). No function changes
    its nature, so the answer is remembered per function (for a bound method,
    per its function: the views' instances are new on every request).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._is_sync: dict = {}

    def ensure_sync(self, func):
        target = getattr(func, "__func__", func)
        sync = self._is_sync.get(target)
        if sync is None:
            sync = not iscoroutinefunction(target)
            # Views and hooks are a fixed set; a function made per request (an
            # after_this_request closure) is asked about each time instead.
            if len(self._is_sync) < MAX_REMEMBERED_FUNCTIONS:
                self._is_sync[target] = sync
        return func if sync else super().ensure_sync(func)


class Blueprint(flask_smorest.Blueprint):
    """Bodies are JSON only, and invalid input is a 400 with our error details.

    flask-smorest's ``doc`` and ``alt_response`` only document a view, yet each
    wraps it in a layer that every request passes through (a preview went
    through eleven). Here they document it the same way and add no layer.
    """

    ARGUMENTS_PARSER = Parser()

    def doc(self, **kwargs):
        return _documenting(super().doc(**kwargs))

    def alt_response(self, *args, **kwargs):
        return _documenting(super().alt_response(*args, **kwargs))


def _documenting(decorate):
    """``decorate``'s documentation on the function itself, without its wrapper."""

    def decorator(func):
        func._apidoc = decorate(func)._apidoc
        return func

    return decorator


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ApiErrorSchema
    # Every status is declared per operation; a catch-all would hide omissions.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, app=None, *, spec_kwargs: dict | None = None):
        spec_kwargs = {**(spec_kwargs or {}), "extra_plugins": [DocumentPlugin()]}
        super().__init__(app, spec_kwargs=spec_kwargs)

    def handle_http_exception(self, error):
        """flask-smorest's hook for every HTTP error: our envelope, not its own."""
        return errors.http_error_response(error)

    def _register_pagination_header(self):
        """Nothing is paginated; keep flask-smorest's unused schema out of the document."""
