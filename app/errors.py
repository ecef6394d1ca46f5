"""Domain errors: each carries the contract's error code, HTTP status and message.

Services and the request parsers raise these; ``app.api.errors`` alone turns
them (and every other exception) into the JSON envelope.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal_error"
    message = "An unexpected error occurred."
    # Seconds a client should wait before trying again, sent as Retry-After.
    retry_after: int | None = None

    def __init__(self, message: str | None = None, *, details: list[dict] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details


class ValidationFailed(ApiError):
    status = 400
    code = "validation_error"
    message = "The request is not valid."
    # How one looks, for the OpenAPI document: a summary, and a detail per field.
    example = {
        "message": "max_uses: must be between 1 and 100",
        "details": [{"field": "max_uses", "message": "Must be between 1 and 100."}],
    }

    @classmethod
    def from_details(cls, details: list[dict]) -> ValidationFailed:
        """The error for ``[{"field", "message"}, ...]``, summarised in its message."""
        return cls(summarise(details), details=details)


def summarise(details: list[dict]) -> str:
    """``max_uses: must be between 1 and 100`` from the details list."""
    parts = []
    for item in details:
        text = item["message"].rstrip(".")
        text = text[:1].lower() + text[1:]
        parts.append(f"{item['field']}: {text}")
    return "; ".join(parts) or ValidationFailed.message


class InvalidCode(ApiError):
    status = 400
    code = "invalid_code"
    message = "An invite code looks like ABC-234-XYZ: nine letters and digits, never 0, O, 1 or I."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Request bodies must be JSON (Content-Type: application/json)."


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "A valid bearer token is required."


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "Only the group's owner and admins can manage invites."


class PresetRoleNotAllowed(ApiError):
    status = 403
    code = "preset_role_not_allowed"
    message = "Only the group's owner can create admin invites."


class GroupNotFound(ApiError):
    status = 404
    code = "group_not_found"
    message = "No such group."


class InviteNotFound(ApiError):
    status = 404
    code = "invite_not_found"
    message = "No such invite."


class AssetNotFound(ApiError):
    status = 404
    code = "not_found"
    message = "No such documentation asset."


class AlreadyMember(ApiError):
    status = 409
    code = "already_member"
    message = "You are already a member of this group."


class IdempotencyKeyInUse(ApiError):
    status = 409
    code = "idempotency_key_in_use"
    message = "A request with this Idempotency-Key is still being processed; retry shortly."
    retry_after = 1


class IdempotencyKeyReused(ApiError):
    status = 422
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


class InviteLimitReached(ApiError):
    status = 409
    code = "invite_limit_reached"
    message = "This group has too many active invites; revoke one first."


class InviteExpired(ApiError):
    status = 410
    code = "invite_expired"
    message = "This invite has expired."


class InviteExhausted(ApiError):
    status = 410
    code = "invite_exhausted"
    message = "This invite has been used as many times as allowed."


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; slow down and retry later."


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable; try again shortly."
    retry_after = 5


class InviteBusy(ServiceUnavailable):
    message = "The invite is busy; try again."
