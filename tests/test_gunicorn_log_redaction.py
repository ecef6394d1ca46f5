"""gunicorn's own log lines never print a code or a token: malformed request lines
and headers sent to a real gunicorn, then its output read back whole."""

from __future__ import annotations

import json
import socket
import time

import pytest

from app.liveserver import HOST
from tests.helpers import JWT_SECRET, make_token, serving

pytestmark = pytest.mark.slow

CODE = "K7M-2QX-HP9"


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_malformed_requests_leave_no_code_or_token_in_gunicorns_log(
    database_url, engine, tmp_path, log_format
):
    token = make_token(name="Leaky")
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": log_format,
    }
    bad = [
        # a request line with two spaces (gunicorn: Invalid HTTP request line)
        f"GET  /api/v1/invites/{CODE} HTTP/1.1\r\nHost: x\r\n\r\n",
        # the same code without dashes, and spaced, which no pattern can mask
        f"GET  /api/v1/invites/{CODE.replace('-', '')} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET  /api/v1/invites/{CODE.replace('-', ' ')} HTTP/1.1\r\nHost: x\r\n\r\n",
        # a header line without its colon, carrying a whole token
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {token}\r\n\r\n",
        # a header name with a space, and a control character in a value
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Code {CODE}: 1\r\n\r\n",
        f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Code: {CODE}\x01\r\n\r\n",
        # a bad method and HTTP version beside a code
        f"G{CODE} /x HTTP/1.1\r\n\r\n",
        f"GET /api/v1/invites/{CODE} HTTP/9.{CODE}\r\n\r\n",
    ]
    with serving(settings, tmp_path / "server.log", workers=1) as server:
        answers = [_send_raw(server.port, request.encode("latin-1")) for request in bad]
        time.sleep(0.5)
        log = server.log()
    statuses = [answer.split(b"\r\n", 1)[0] for answer in answers]
    assert all(s.startswith(b"HTTP/1.1 4") for s in statuses), statuses
    # Every request gunicorn refused says so without what was sent; the odd
    # method reaches the app (a 404), which logs it as OTHER.
    refused = log.count("refused as malformed; what it sent is not logged")
    assert refused == sum(s.startswith(b"HTTP/1.1 400") for s in statuses) >= len(bad) - 1, log
    assert "OTHER <unmatched> 404" in log
    compact = CODE.replace("-", "")
    for secret in (CODE, compact, CODE.replace("-", " "), token, token.split(".")[2]):
        assert secret not in log, secret
    if log_format == "json":
        # Every line the process wrote, gunicorn's and the app's, is one JSON object.
        lines = [json.loads(line) for line in log.splitlines()]
        assert {"time", "level", "logger", "message", "pid"} <= set(lines[0])
        assert any(line["logger"] == "gunicorn.error" for line in lines)
