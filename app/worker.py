"""gunicorn's threaded worker: closing its listening sockets as soon as it stops,
and answering the requests it refuses itself in the service's error envelope.

On SIGTERM the stock gthread worker stops accepting but keeps its copy of
the listening socket open until its last request is answered: meanwhile the
kernel completes new clients' handshakes into a queue nobody reads, and
resets them when the worker exits. A client (or nginx's proxy_next_upstream)
can retry a refused connection on another replica, but not a request it has
sent and then lost. Closing the copy when accepting stops makes the port
refuse new connections at once, while requests in flight drain.

A request gunicorn cannot parse (a malformed request line or header, an
unknown transfer coding) never reaches the app: gunicorn answers it with an
HTML page. Here gunicorn still decides and logs the refusal, and the client
gets the envelope every other error uses, as the gateway's own refusals do
(``bad_request``, ``uri_too_long``...). An unknown transfer coding is a 400
like any other malformed request, not gunicorn's 501: a 5xx would say the
service failed.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from gunicorn.workers.gthread import ThreadWorker

from app.errors import ApiError

# gunicorn's status for a refused request -> (ours, error code, message).
_REFUSALS = {
    400: (400, "bad_request", "The request is malformed."),
    403: (403, "forbidden", "The request is forbidden."),
    414: (414, "uri_too_long", "The request line is too long."),
    417: (417, "expectation_failed", "The Expect header cannot be met."),
    431: (431, "headers_too_large", "The request's headers are too large."),
    501: (400, "bad_request", "The request is malformed."),
}
_INTERNAL = (500, ApiError.code, ApiError.message)


class _Captured:
    """The client socket, keeping what gunicorn writes to it instead of sending it."""

    def __init__(self, sock):
        self._sock = sock
        self.written = b""

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data) -> None:
        self.written += bytes(data)

    def send(self, data) -> int:
        self.written += bytes(data)
        return len(data)


def envelope_response(gunicorn_status: int) -> bytes:
    """The raw HTTP response for a request gunicorn refused with ``gunicorn_status``."""
    status, code, message = _REFUSALS.get(gunicorn_status, _INTERNAL)
    body = json.dumps({"error": code, "message": message}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # stopping, not merely at its connection limit
            for listener in self.sockets:
                listener.close()

    def handle_error(self, req, client, addr, exc):
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)  # decides, logs, writes its page
        if not captured.written:
            return
        try:
            gunicorn_status = int(captured.written.split(b" ", 2)[1])
        except (IndexError, ValueError):
            gunicorn_status = 500
        try:
            client.sendall(envelope_response(gunicorn_status))
        except OSError:
            self.log.debug("Failed to send error message.")
