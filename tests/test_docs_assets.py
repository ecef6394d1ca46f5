"""/docs loads Swagger UI from the service itself, never from another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app.api import docs_assets
from app.api.docs_assets import DIST, URL_PREFIX, VERSION

# The files flask-smorest's Swagger UI page loads, and the type each must have:
# responses carry "nosniff", so a browser refuses any other type.
EXPECTED_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
ABSOLUTE_URL = re.compile(r"""https?://[^\s"'<>)]+""")


class _References(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def page_references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    parser.close()
    return parser.urls


@pytest.fixture(scope="module")
def docs_html(make_app) -> str:
    response = make_app().test_client().get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_the_bundled_swagger_ui_has_the_files_the_page_loads():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), DIST
    for name in EXPECTED_ASSETS:
        assert (DIST / name).stat().st_size > 1000, name


def test_an_incomplete_package_stops_the_app_at_start(make_app, monkeypatch):
    monkeypatch.setattr(docs_assets, "ASSETS", docs_assets.ASSETS | {"swagger-ui-gone.js"})
    with pytest.raises(RuntimeError, match=r"lacks swagger-ui-gone\.js"):
        make_app()


def test_docs_page_references_only_the_services_own_assets(docs_html):
    references = page_references(docs_html)
    assert sorted(references) == sorted(URL_PREFIX + name for name in EXPECTED_ASSETS)
    assert URL_PREFIX.startswith("/docs/assets/")
    # No absolute URL anywhere in the page, inline script included.
    assert ABSOLUTE_URL.findall(docs_html) == []
    assert 'url: "/openapi.json"' in docs_html


@pytest.mark.parametrize(("name", "content_type"), sorted(EXPECTED_ASSETS.items()))
def test_each_referenced_asset_is_served_with_its_type_and_long_caching(
    client, docs_html, name, content_type
):
    url = URL_PREFIX + name
    assert url in page_references(docs_html)
    response = client.get(url, buffered=True)  # no Authorization header: the docs are public
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data() == (DIST / name).read_bytes()
    cache = response.cache_control
    assert (cache.public, cache.max_age, cache.immutable) == (True, 365 * 24 * 3600, True)
    assert not cache.no_store
    etag = response.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag}, buffered=True)
    assert again.status_code == 304
    assert again.get_data() == b""


def test_source_maps_and_favicons_are_served_too(client):
    source_map = client.get(URL_PREFIX + "swagger-ui-bundle.js.map", buffered=True)
    assert (source_map.status_code, source_map.mimetype) == (200, "application/json")
    assert source_map.get_json()["file"] == "swagger-ui-bundle.js"
    favicon = client.get(URL_PREFIX + "favicon-32x32.png", buffered=True)
    assert (favicon.status_code, favicon.mimetype) == (200, "image/png")
    assert favicon.get_data().startswith(b"\x89PNG\r\n\x1a\n")


def assert_not_found_envelope(response, message: str) -> None:
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": message}
    # An error must not be cached like an asset.
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "name",
    [
        "nope.js",
        "swagger-ui.CSS",
        "swagger-ui.css/",
        "sub/swagger-ui.css",
        # In the package, but the demo page that loads an external example API.
        "index.html",
        "swagger-initializer.js",
        "swagger-ui-es-bundle.js",
    ],
)
def test_an_unknown_asset_is_a_404_envelope(client, name):
    if name in ("index.html", "swagger-initializer.js"):
        assert (DIST / name).is_file()  # refused by the list, not by absence
    assert_not_found_envelope(client.get(URL_PREFIX + name), "No such documentation asset.")


def test_assets_of_another_version_are_a_404_envelope(client):
    response = client.get("/docs/assets/0.0.1/swagger-ui.css")
    assert_not_found_envelope(response, "No such endpoint.")


# Every target exists on disk, so only the refusal keeps it from being served.
TRAVERSALS = [
    "../../__init__.py",
    "../swagger-ui-" + VERSION + "/index.html",
    "%2e%2e/%2e%2e/__init__.py",
    "%2E%2E%2F%2E%2E%2F__init__.py",
    "..%2f..%2f__init__.py",
    "..%5c..%5c__init__.py",
    "%252e%252e%252f%252e%252e%252f__init__.py",
    "....//....//__init__.py",
    "/" + str(DIST / "swagger-ui.css").lstrip("/"),
    str(DIST / "swagger-ui.css").replace("/", "%2f"),
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(client, path):
    assert (DIST / "../../__init__.py").resolve().is_file()
    response = client.get(URL_PREFIX + path)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/docs/assets/../openapi.json", "/docs/assets/%2e%2e/setup.cfg"])
def test_traversal_out_of_the_assets_prefix_is_refused(client, path):
    assert_not_found_envelope(client.get(path), "No such endpoint.")


def test_assets_are_read_only(client):
    response = client.post(URL_PREFIX + "swagger-ui.css")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_the_asset_route_is_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert paths  # the document lists the API...
    assert [p for p in paths if p.startswith("/docs")] == []  # ...but not the asset files
