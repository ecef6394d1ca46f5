"""/docs in a real headless Chromium against a real gunicorn.

Chromium resolves one made-up host name to the server and every other host to
nothing, so the page can only render if everything it needs comes from the
service itself. The page is seen under a host name, as in production, rather
than as 127.0.0.1, which Swagger UI treats as local in places.

Run by ``make test-browser``; needs /usr/bin/chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app.api.docs_assets import URL_PREFIX
from tests.helpers import JWT_SECRET, serving

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
HOSTNAME = "docs.invites.test"  # .test never resolves on a real network
CHROMIUM_TIMEOUT_S = 120
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Swagger UI's operation block holds its path in one of these, as data-path.
PATH_CLASSES = {"opblock-summary-path", "opblock-summary-path__deprecated"}
SCREENSHOT_SIZE = (1280, 2000)
# At that size a near-empty page (the JSON 404 envelope) is about 17 kB, the
# rendered docs about 160 kB. The DOM checks are the proof of rendering;
# this one catches a blank or error screenshot.
MIN_SCREENSHOT_BYTES = 60_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing); this check needs it. "
            "Install it with: apt-get install chromium",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    """gunicorn serving the app on a free port, against the migrated test database."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    settings = {"DATABASE_URL": database_url, "JWT_SECRET_KEY": JWT_SECRET}
    with serving(settings, log_path, workers=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def document(server) -> dict:
    reply = server.call("GET", "/openapi.json")
    assert reply.status == 200, reply
    return reply.body


def docs_url(server) -> str:
    return f"http://{HOSTNAME}:{server.port}/docs"


def run_chromium(chromium: Path, profile: Path, url: str, *args: str) -> str:
    """Run headless Chromium on ``url`` and return its standard output."""
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1, MAP * ~NOTFOUND",
        *args,
        url,
    ]
    # Its own process group, so a hung run is stopped with all its children.
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"Chromium did not finish within {CHROMIUM_TIMEOUT_S}s: {' '.join(command)}")
    assert proc.returncode == 0, (
        f"Chromium exited with {proc.returncode}:\n{err.decode(errors='replace')[-3000:]}"
    )
    return out.decode()


class RenderedDocs(HTMLParser):
    """What Swagger UI rendered: operation blocks, the title, every reference."""

    def __init__(self) -> None:
        super().__init__()
        self.operations: list[tuple[str, str]] = []
        self.summaries: set[str] = set()
        self.references: list[str] = []
        self.classes: set[str] = set()
        self.title = ""
        self._method: str | None = None
        self._in: str | None = None  # "title" or "summary" while inside one

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        self.classes |= classes
        self.references += [
            value for name, value in attrs if name in ("src", "href", "xlink:href") and value
        ]
        if tag == "div" and "opblock" in classes:
            methods = [m for m in METHODS if f"opblock-{m}" in classes]
            assert len(methods) == 1, classes
            self._method = methods[0]
        elif tag == "span" and classes & PATH_CLASSES:
            assert self._method is not None, "an operation path outside an operation block"
            self.operations.append((self._method, attributes["data-path"]))
        elif tag == "h2" and "title" in classes:
            self._in = "title"
        elif tag == "div" and "opblock-summary-description" in classes:
            self._in = "summary"

    def handle_endtag(self, tag):
        if (self._in, tag) in (("title", "h2"), ("summary", "div")):
            self._in = None

    def handle_data(self, data):
        if self._in == "title":
            self.title += data
        elif self._in == "summary":
            self.summaries.add(data.strip())


def spec_operations(document: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def rendered(chromium, server, tmp_path_factory) -> tuple[RenderedDocs, str]:
    """The DOM after Swagger UI ran, parsed; and the server log of that visit."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    log_before = len(server.log())
    dom = run_chromium(chromium, profile, docs_url(server), "--dump-dom")
    parser = RenderedDocs()
    parser.feed(dom)
    parser.close()
    return parser, server.log()[log_before:]


def test_swagger_ui_renders_every_operation(rendered, document):
    docs, _ = rendered
    expected = spec_operations(document)
    assert len(expected) >= 10, sorted(expected)
    assert set(docs.operations) == set(expected)
    summaries = {op["summary"] for op in expected.values() if op.get("summary")}
    assert summaries, "the document names no operation summaries"
    assert summaries <= docs.summaries


def test_the_api_title_and_version_are_shown(rendered, document):
    docs, _ = rendered
    title = " ".join(docs.title.split())
    assert title.startswith(document["info"]["title"]), title
    assert document["info"]["version"] in title


def test_no_error_and_nothing_left_loading(rendered):
    docs, _ = rendered
    assert "errors-wrapper" not in docs.classes
    assert "loading-container" not in docs.classes
    assert "swagger-ui" in docs.classes


def test_the_rendered_page_references_no_other_host(rendered, server):
    docs, _ = rendered
    own = ("http", HOSTNAME, server.port)
    urls = [urlsplit(ref) for ref in docs.references]
    # Anything naming a host ("https://cdn...", "//cdn...") must name this server.
    foreign = [u.geturl() for u in urls if u.netloc and (u.scheme, u.hostname, u.port) != own]
    assert foreign == []
    assert URL_PREFIX + "swagger-ui-bundle.js" in docs.references


def test_the_browser_loaded_the_assets_and_the_document_from_the_service(rendered):
    _, log = rendered
    lines = re.findall(r"app\.request: (GET \S+ \d{3})", log)
    assert lines.count("GET /docs 200") == 1, lines
    assert lines.count("GET /openapi.json 200") == 1, lines
    # The three files the page names, each fetched once and served.
    asset_lines = [line for line in lines if line.startswith(f"GET {URL_PREFIX}")]
    assert asset_lines == [f"GET {URL_PREFIX}{{filename}} 200"] * 3, lines


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_screenshot_of_the_rendered_docs(chromium, server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("screenshot")
    png = workdir / "docs.png"
    run_chromium(
        chromium,
        workdir / "profile",
        docs_url(server),
        f"--screenshot={png}",
        "--window-size={},{}".format(*SCREENSHOT_SIZE),
    )
    assert png.is_file(), f"no screenshot at {png}"
    data = png.read_bytes()
    assert png_size(data) == SCREENSHOT_SIZE
    assert len(data) > MIN_SCREENSHOT_BYTES, f"{png} is {len(data)} bytes: a blank page?"


@pytest.mark.parametrize(
    "path",
    [
        f"{URL_PREFIX}../../__init__.py",
        f"{URL_PREFIX}%2e%2e/%2e%2e/__init__.py",
        f"{URL_PREFIX}..%2f..%2f__init__.py",
        "/docs/assets/../../setup.cfg",
    ],
)
def test_the_live_server_refuses_traversal_sent_verbatim(server, path):
    # http.client sends the path as written; a browser or curl would collapse "..".
    reply = server.call("GET", path)
    assert reply.status == 404, reply
    assert reply.body["error"] == "not_found", reply
