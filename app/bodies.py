"""Chunked request bodies held to MAX_CONTENT_LENGTH like any other.

Werkzeug refuses a body whose Content-Length is over the limit, but a
chunked body (no Content-Length) is only read up to the limit and the rest
silently dropped: `{"name": "x"}` followed by 17 KB of spaces would be
accepted, and a long body would arrive cut short. This middleware reads a
chunked body (at most one byte past the limit) before the app sees it and
hands the app an ordinary body with a Content-Length, so an oversized one is
the documented 413 `payload_too_large` and a small one works as usual.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any


class BoundedChunkedBody:
    def __init__(self, app: Callable[..., Iterable[bytes]], max_length: Callable[[], int | None]):
        self.app = app
        self.max_length = max_length

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        limit = self.max_length()
        if chunked and not environ.get("CONTENT_LENGTH") and limit is not None:
            # The server de-chunks and ends the stream (wsgi.input_terminated);
            # past limit + 1 bytes the answer is 413 whatever follows.
            body = environ["wsgi.input"].read(limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # Werkzeug ignores Content-Length while Transfer-Encoding says chunked.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)
