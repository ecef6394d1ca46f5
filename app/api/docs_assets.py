"""Swagger UI's own files, served by the service so /docs works without internet.

They come from the swagger-ui-bundle package. The URL carries the Swagger UI
version (``/docs/assets/4.15.5/swagger-ui.css``), so browsers may keep a file
for a year: upgrading the package changes the URL. This is a plain Flask
route, not a flask-smorest one, so it stays out of the OpenAPI document, and
it needs no token.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, redirect, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from app.errors import AssetNotFound

DIST = Path(swagger_ui_path)
VERSION = DIST.name.removeprefix("swagger-ui-")
URL_PREFIX = f"/docs/assets/{VERSION}/"
MAX_AGE_S = 365 * 24 * 3600

# Set explicitly rather than guessed from the machine's MIME table: responses
# carry "X-Content-Type-Options: nosniff", so a browser refuses a script or a
# stylesheet served under any other type.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".png": "image/png",
}
# What /docs loads, their source maps and the favicons. The package's demo
# page (index.html, swagger-initializer.js) loads an external example API and
# is not served.
ASSETS = frozenset(
    name + suffix
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
    for suffix in ("", ".map")
) | {"favicon-16x16.png", "favicon-32x32.png"}


def asset(filename: str):
    # Only names from the list: nothing else in or outside the package is reachable.
    if filename not in ASSETS:
        raise AssetNotFound()
    response = send_from_directory(
        DIST,
        filename,
        mimetype=CONTENT_TYPES[Path(filename).suffix],
        max_age=MAX_AGE_S,
    )
    response.cache_control.immutable = True
    return response


def init_app(app: Flask) -> None:
    missing = sorted(name for name in ASSETS if not (DIST / name).is_file())
    if missing:
        raise RuntimeError(f"swagger-ui-bundle lacks {', '.join(missing)} in {DIST}")
    app.add_url_rule(f"{URL_PREFIX}<path:filename>", endpoint="docs_asset", view_func=asset)
    # A person who opens the service's address lands on its documentation.
    app.add_url_rule("/", endpoint="home", view_func=lambda: redirect("/docs", 302))
