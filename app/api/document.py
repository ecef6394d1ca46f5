"""Final touches to the generated OpenAPI document, for readers and SDK generators."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import flask_smorest

from app.api.schemas import INVITE_STATUSES, PRESET_ROLES, ROLES
from app.request_log import REQUEST_ID_PATTERN

# Enums used by several schemas become one named component each, so a
# generated client has one `Role` type rather than one per field.
NAMED_ENUMS = {
    "Role": (ROLES, "A member's role. Owners and admins manage invites."),
    "PresetRole": (PRESET_ROLES, "The role an invite grants. Never `owner`."),
    "InviteStatus": (
        INVITE_STATUSES,
        "Why an invite works or not. When several apply: revoked, then exhausted, then expired.",
    ),
    "PreviewStatus": (
        tuple(s for s in INVITE_STATUSES if s != "revoked"),
        "Why a previewed invite works or not (revoked codes are 404).",
    ),
}


REQUEST_ID_HEADER = {
    "description": (
        "Identifies this request in the service's logs: the caller's own `X-Request-ID` "
        "when it sent one of 1 to 128 characters from `A-Z a-z 0-9 . _ : -`, "
        "otherwise a new one. Quote it when reporting a problem."
    ),
    "required": True,
    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
}


def finish(api: flask_smorest.Api) -> None:
    _name_enums(api)
    _sort_responses(api)
    _declare_request_id(api)


def _name_enums(api: flask_smorest.Api) -> None:
    by_values = {values: name for name, (values, _description) in NAMED_ENUMS.items()}
    for name, (values, description) in NAMED_ENUMS.items():
        api.spec.components.schema(
            name, {"type": "string", "enum": list(values), "description": description}
        )
    for component, schema in api.spec.components.schemas.items():
        if component in NAMED_ENUMS:
            continue
        for field, prop in schema.get("properties", {}).items():
            name = by_values.get(tuple(prop.get("enum", ())))
            if name is None:
                continue
            ref = {"$ref": f"#/components/schemas/{name}"}
            rest = {k: v for k, v in prop.items() if k not in ("type", "enum")}
            # A $ref has no siblings in OpenAPI 3.0; a one-item allOf keeps the default.
            schema["properties"][field] = {"allOf": [ref], **rest} if rest else ref


def _operations(api: flask_smorest.Api) -> Iterator[dict]:
    for operations in api.spec._paths.values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                yield operation


def _sort_responses(api: flask_smorest.Api) -> None:
    """Responses in status order, so the document reads (and diffs) predictably."""
    for operation in _operations(api):
        operation["responses"] = dict(
            sorted(operation["responses"].items(), key=lambda item: str(item[0]))
        )


def _declare_request_id(api: flask_smorest.Api) -> None:
    """Every response carries X-Request-ID (app/request_log.py); say so once, refer to it."""
    api.spec.components.header("X-Request-ID", REQUEST_ID_HEADER)
    ref = {"$ref": "#/components/headers/X-Request-ID"}
    for operation in _operations(api):
        for response in operation["responses"].values():
            response.setdefault("headers", {})["X-Request-ID"] = ref


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
