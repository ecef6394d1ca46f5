"""An apispec plugin with the document's finishing touches, for readers and SDK generators.

- Enums used by several schemas become one named component each, so a
  generated client has one ``Role`` type rather than one per field.
- Every response declares ``X-Request-ID`` (``app.api.request_log``).
- ``Idempotency-Key`` is one parameter component, and the responses of an
  operation that takes it which can be replayed declare ``Idempotent-Replayed``.
- Responses are listed in status order, so the document reads and diffs
  predictably.
- A request field's default is said in words, never as ``default`` (see
  ``_default_in_words``).
- Response examples are components, referenced (see ``_examples_by_reference``).
"""

from __future__ import annotations

import json

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin

from app.api.idempotency import HEADER, KEY_PATTERN, OUTCOMES, REPLAYED_HEADER
from app.api.request_log import REQUEST_ID_PATTERN
from app.api.responses import IDEMPOTENCY_KEY
from app.api.schemas import INVITE_STATUSES, PRESET_ROLES, ROLES

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
_ENUM_BY_VALUES = {values: name for name, (values, _description) in NAMED_ENUMS.items()}

REQUEST_ID_HEADER = {
    "description": (
        "Identifies this request in the service's logs: the `X-Request-ID` that the "
        "trusted gateway in front set (1 to 128 characters from `A-Z a-z 0-9 . _ : -`), "
        "otherwise a new one; one a client sends is never used. Quote it when reporting "
        "a problem."
    ),
    "required": True,
    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
}


IDEMPOTENCY_KEY_PARAMETER = {
    "description": (
        "Makes a retry safe. A repeat of the same key with the same request (method, path, "
        "body) within 24 hours returns the first response, with `Idempotent-Replayed: true`, "
        "without doing the work again; the same key with another request is "
        "`422 idempotency_key_reused`; a repeat while the first is still being processed is "
        "`409 idempotency_key_in_use`. Keys belong to the caller: another user's identical "
        "key is another key. A request that fails (refused input, 5xx) leaves no key behind. "
        "1 to 255 printable ASCII characters, or the same as a quoted string "
        '(`"..."`, as the IETF httpapi draft writes it).'
    ),
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": KEY_PATTERN},
    "example": "8e03978e-40d5-43e8-bc93-6894a57f9324",
}
REPLAYED_HEADER_DOC = {
    "description": (
        "`true` on the stored response to an earlier request with the same `Idempotency-Key`; "
        "absent otherwise."
    ),
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}
# What a keyed request can replay: its success, and the outcomes the work decided.
_REPLAYABLE = {"200", "201"} | {str(outcome.status) for outcome in OUTCOMES}


def _default_in_words(_converter, _field, ret: dict, **_kwargs) -> dict:
    """A default (marshmallow's ``load_default``) goes into the description and the example.

    Generators read ``default`` as "always present": openapi-typescript, with
    its default ``defaultNonNullable``, makes such a property of a component
    schema required, so a request body that leaves it out does not compile.
    The server fills the value in; for the client the field is plainly optional.
    """
    if "default" not in ret:
        return {}
    default = ret.pop("default")
    said = f"Defaults to `{json.dumps(default)}` when omitted."
    ret["description"] = f"{ret['description']} {said}" if "description" in ret else said
    ret.setdefault("example", default)
    return {}


def _named_enum(_converter, _field, ret: dict, **_kwargs) -> dict:
    """A field property whose enum is a named one becomes a reference to it.

    apispec merges what an attribute function returns into the property; a
    reference must replace the inline ``type`` and ``enum`` instead, so this
    one rewrites ``ret`` in place. A ``$ref`` has no siblings in OpenAPI 3.0:
    a one-item ``allOf`` keeps the field's own keys (a default, say).
    """
    name = _ENUM_BY_VALUES.get(tuple(ret.get("enum", ())))
    if name is None:
        return {}
    ref = {"$ref": f"#/components/schemas/{name}"}
    rest = {k: v for k, v in ret.items() if k not in ("type", "enum")}
    ret.clear()
    ret.update({"allOf": [ref], **rest} if rest else ref)
    return {}


class DocumentPlugin(BasePlugin):
    spec: APISpec

    def init_spec(self, spec: APISpec) -> None:
        super().init_spec(spec)
        self.spec = spec
        spec.components.header("X-Request-ID", REQUEST_ID_HEADER)
        spec.components.header(REPLAYED_HEADER, REPLAYED_HEADER_DOC)
        spec.components.parameter(
            IDEMPOTENCY_KEY, "header", {"name": HEADER, **IDEMPOTENCY_KEY_PARAMETER}
        )
        for name, (values, description) in NAMED_ENUMS.items():
            spec.components.schema(
                name, {"type": "string", "enum": list(values), "description": description}
            )
        marshmallow = next(p for p in spec.plugins if isinstance(p, MarshmallowPlugin))
        # In this order: the default leaves before an enum becomes a reference.
        marshmallow.converter.add_attribute_function(_default_in_words)
        marshmallow.converter.add_attribute_function(_named_enum)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        for operation in (operations or {}).values():
            responses = sorted(operation.get("responses", {}).items(), key=lambda r: str(r[0]))
            keyed = IDEMPOTENCY_KEY in operation.get("parameters", ())
            for status, response in responses:
                if not isinstance(response, dict):
                    continue
                headers = response.setdefault("headers", {})
                if keyed and str(status) in _REPLAYABLE:
                    headers[REPLAYED_HEADER] = {"$ref": f"#/components/headers/{REPLAYED_HEADER}"}
                headers["X-Request-ID"] = {"$ref": "#/components/headers/X-Request-ID"}
                for content in response.get("content", {}).values():
                    self._examples_by_reference(content, operation["operationId"])
            if responses:
                operation["responses"] = dict(responses)

    def _examples_by_reference(self, content: dict, operation_id: str) -> None:
        """Each example of a response becomes a component that the response refers to.

        openapi-generator (7.x) warns "Failed to get the schema name: null" for
        every inline example of a response, and reads referenced ones quietly.
        An example is named after its error code, and shared by every response
        with the same one; a variant (another operation's summary, say) is
        named ``<code>.<operationId>`` after the first operation with it.
        Operations are registered in a fixed order, so the names are stable.
        """
        registered = self.spec.components.examples
        for key, example in content.get("examples", {}).items():
            if "$ref" in example:
                continue
            same = [
                name
                for name, known in registered.items()
                if (name == key or name.startswith(f"{key}.")) and known == example
            ]
            if same:
                name = same[0]
            else:
                name = f"{key}.{operation_id}" if key in registered else key
                self.spec.components.example(name, example)
            content["examples"][key] = {"$ref": f"#/components/examples/{name}"}
