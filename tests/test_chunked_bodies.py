"""Chunked request bodies against a real gunicorn: the size limit holds for them too.

Werkzeug alone would read a chunked body (no Content-Length) only up to
MAX_CONTENT_LENGTH and drop the rest without a word; app/api/parsing.py's
read_body makes it the documented 413. The Flask test client always sends a
Content-Length, so this needs a real server and real chunked encoding.
"""

from __future__ import annotations

import io
import json
import socket
import uuid

import pytest

from tests.helpers import JWT_SECRET, make_token, serving

pytestmark = pytest.mark.slow

LIMIT = 4096


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-chunked") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "APP_BASE_URL": "https://invites.example",
        "MAX_CONTENT_LENGTH": str(LIMIT),
        "GUNICORN_THREADS": "2",
    }
    with serving(settings, log_path, workers=1) as srv:
        yield srv


def post_chunked(server, path: str, chunks: list[bytes], token: str, **headers):
    conn = server.connection()
    try:
        conn.request(
            "POST",
            path,
            body=iter(chunks),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **headers,
            },
            encode_chunked=True,
        )
        response = conn.getresponse()
        body = response.read()
        return response.status, dict(response.getheaders()), json.loads(body) if body else None
    finally:
        conn.close()


def groups_created_by(sql, user_id: str) -> int:
    return sql("SELECT count(*) AS n FROM groups WHERE created_by = :u", u=user_id)[0]["n"]


def padded(document: dict, size: int) -> bytes:
    """``document`` as JSON followed by spaces, ``size`` bytes in all (still valid JSON)."""
    raw = json.dumps(document).encode()
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT * 4])
def test_an_oversized_chunked_body_is_413_and_creates_nothing(server, sql, size):
    user = str(uuid.uuid4())
    body = padded({"name": "Chunked"}, size)
    status, headers, reply = post_chunked(
        server, "/api/v1/groups", [body[:1000], body[1000:]], make_token(user)
    )
    assert status == 413
    assert reply == {
        "error": "payload_too_large",
        "message": f"The request body is larger than {LIMIT} bytes.",
    }
    assert headers["Content-Type"].startswith("application/json")
    assert groups_created_by(sql, user) == 0


@pytest.mark.parametrize("size", [20, LIMIT])
def test_a_chunked_body_up_to_the_limit_is_read_whole(server, sql, size):
    user = str(uuid.uuid4())
    body = padded({"name": "Chunked"}, size) if size > 20 else b'{"name": "Chunked"}'
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    status, _headers, reply = post_chunked(server, "/api/v1/groups", chunks, make_token(user))
    assert status == 201, reply
    assert reply["name"] == "Chunked"
    assert groups_created_by(sql, user) == 1


def test_a_chunked_body_cut_at_the_limit_is_not_read_as_a_shorter_one(server, sql):
    # Once, a body like this was cut at the limit and then refused as broken
    # JSON (400); the caller must hear that it was too big.
    user = str(uuid.uuid4())
    body = json.dumps({"name": "x" * (LIMIT * 2)}).encode()
    status, _headers, reply = post_chunked(server, "/api/v1/groups", [body], make_token(user))
    assert (status, reply["error"]) == (413, "payload_too_large")
    assert groups_created_by(sql, user) == 0


def test_other_transfer_codings_are_refused(server, sql):
    # gunicorn de-chunks but does not decompress: a "gzip" body is not JSON as sent.
    user = str(uuid.uuid4())
    status, _headers, reply = post_chunked(
        server,
        "/api/v1/groups",
        [b'{"name": "Zipped"}'],
        make_token(user),
        **{"Transfer-Encoding": "gzip, chunked"},
    )
    assert (status, reply["error"]) == (415, "unsupported_media_type")
    assert groups_created_by(sql, user) == 0


class Untouchable(io.RawIOBase):
    """A request body that must never be read."""

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, _offset, _whence=0):
        return 0  # the test client rewinds it before the request; that is not a read

    def readinto(self, _buffer):
        raise AssertionError("the body was read")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("POST", "/api/v1/groups", 401),  # no token: refused before the body is read
        ("GET", "/api/v1/invites/ABC-234-XYZ", 404),
    ],
)
def test_only_a_view_that_parses_a_body_reads_one(client, method, path, status):
    """A stalled or endless chunked body holds up only a request that needs it."""
    response = client.open(
        path,
        method=method,
        input_stream=Untouchable(),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == status


def test_a_chunked_body_is_held_to_the_limit_in_process_too(app, client, owner):
    limit = app.config["MAX_CONTENT_LENGTH"]
    for size, status in [(limit, 201), (limit + 1, 413)]:
        response = client.post(
            "/api/v1/groups",
            input_stream=io.BytesIO(padded({"name": "In process"}, size)),
            headers={
                "Transfer-Encoding": "chunked",
                "Content-Type": "application/json",
                **owner.headers,
            },
            environ_overrides={"wsgi.input_terminated": True},
        )
        assert response.status_code == status, size


def _raw(server, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"GET /api/v1/invites/ABC-234-XYZ HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: n#'m\"c&?1=FV3T\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            b"GET /api/v1/invites/ABC-234-XYZ HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            400,
            "bad_request",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    ],
    ids=["unknown-transfer-coding", "malformed-header", "request-line-too-long"],
)
def test_what_gunicorn_refuses_itself_is_answered_in_the_envelope(
    server, request_bytes, status, code
):
    got, headers, body = _raw(server, request_bytes)
    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"] == code
    assert set(json.loads(body)) == {"error", "message"}
