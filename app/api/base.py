"""The project's flask-smorest classes, where HTTP policy is set once."""

from __future__ import annotations

import flask_smorest

from app.api import errors
from app.api.parsing import Parser
from app.api.schemas import ApiErrorSchema
from app.api.spec_plugin import DocumentPlugin


class Blueprint(flask_smorest.Blueprint):
    """Bodies are JSON only, and invalid input is a 400 with our error details."""

    ARGUMENTS_PARSER = Parser()


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
