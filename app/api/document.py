"""Write the OpenAPI document as checked in (docs/openapi.json), or check it is current:
``make openapi`` or ``python -m app.api.document docs/openapi.json [--check]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def render(document: dict) -> str:
    """The document as checked in: stable, readable, one trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def build() -> dict:
    """The document the service serves, built without touching a database."""
    from app import create_app

    app = create_app(
        {
            # Placeholders: nothing connects or signs while the document is built.
            "DATABASE_URL": "postgresql://document-only@localhost/none",
            "JWT_SECRET_KEY": "document-only-" + "x" * 32,
            "CODE_KEYS": "document-only:" + "A" * 43,
            "APP_BASE_URL": "https://invites.example",
        }
    )
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.api.document",
        description="Write the OpenAPI document, or check that the checked-in copy is current.",
    )
    parser.add_argument("path", type=Path, help="where the document lives (docs/openapi.json)")
    parser.add_argument("--check", action="store_true", help="fail if the file differs")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run `make openapi` and commit it", file=sys.stderr)
            return 1
        print(f"{args.path} is current")
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
