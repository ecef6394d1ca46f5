"""Validation errors: marshmallow's messages as the contract's details, and the summary."""

from __future__ import annotations

import marshmallow as ma
import pytest

from app.api.parsing import error_details
from app.api.schemas import InviteCreateSchema
from app.errors import ValidationFailed, summarise


def _errors(schema: ma.Schema, data: object) -> dict:
    with pytest.raises(ma.ValidationError) as excinfo:
        schema.load(data)
    return excinfo.value.messages


def test_error_details_follow_the_contract():
    messages = _errors(InviteCreateSchema(), {"max_uses": 0})
    details = error_details(messages)
    assert details == [{"field": "max_uses", "message": "Must be between 1 and 100."}]
    assert summarise(details) == "max_uses: must be between 1 and 100"


def test_several_errors_are_summarised_in_field_order():
    messages = _errors(
        InviteCreateSchema(), {"preset_role": "owner", "max_uses": "5", "expires_in_hours": 0}
    )
    details = error_details(messages)
    assert details == [
        {"field": "preset_role", "message": "Must be one of: admin, member, viewer."},
        {"field": "max_uses", "message": "Must be an integer."},
        {"field": "expires_in_hours", "message": "Must be between 1 and 168."},
    ]
    assert summarise(details) == (
        "preset_role: must be one of: admin, member, viewer; "
        "max_uses: must be an integer; expires_in_hours: must be between 1 and 168"
    )


def test_schema_level_errors_belong_to_the_body():
    details = error_details(_errors(InviteCreateSchema(), []))
    assert details == [{"field": "body", "message": "Must be a JSON object."}]
    assert summarise(details) == "body: must be a JSON object"


def test_nested_and_listed_messages_are_flattened():
    messages = {
        "group": {"name": ["Too long.", "Bad."], "_schema": ["Broken."]},
        "items": {0: {"code": ["Nope."]}},
        "plain": "Just a string.",
    }
    assert error_details(messages) == [
        {"field": "group.name", "message": "Too long."},
        {"field": "group.name", "message": "Bad."},
        {"field": "group", "message": "Broken."},
        {"field": "items.0.code", "message": "Nope."},
        {"field": "plain", "message": "Just a string."},
    ]


def test_summary_of_no_details_is_the_generic_message():
    assert summarise([]) == ValidationFailed.message
    assert error_details({}) == []
    assert error_details("Oops.") == [{"field": "body", "message": "Oops."}]


def test_validation_error_carries_the_envelope_parts():
    error = ValidationFailed.from_details(
        [{"field": "max_uses", "message": "Must be between 1 and 100."}]
    )
    assert isinstance(error, ValidationFailed)
    assert error.status == 400
    assert error.code == "validation_error"
    assert error.message == "max_uses: must be between 1 and 100"
    assert error.details == [{"field": "max_uses", "message": "Must be between 1 and 100."}]
