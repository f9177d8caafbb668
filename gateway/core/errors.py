"""The gateway's typed errors and their one translation to RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM = "application/problem+json"  # RFC 9457 media type of every error answer


class GatewayError(Exception):
    """Base error: a stable code, an HTTP status, a message that tells the user what to do."""

    code = "gateway-error"
    status = 500
    title = "Gateway error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://privacy-gateway.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class NotAuthenticated(GatewayError):
    code, status, title = "not-authenticated", 401, "Missing or invalid API key"


class Forbidden(GatewayError):
    code, status, title = "forbidden", 403, "Not allowed for this API key"


class NotFound(GatewayError):
    code, status, title = "not-found", 404, "Not found"


class Conflict(GatewayError):
    code, status, title = "conflict", 409, "Conflict"


class InvalidRequest(GatewayError):
    code, status, title = "invalid-request", 422, "Invalid request"


class RejectedInput(GatewayError):
    """An uploaded file was refused; `details.reason` carries the redaction library's code."""

    code, status, title = "rejected-input", 422, "File rejected"


class InvalidStateTransition(GatewayError):
    code, status, title = "invalid-state-transition", 409, "Invalid asset state transition"


class KeyUnavailable(GatewayError):
    code, status, title = "key-unavailable", 500, "Key unavailable"


class KeyCustodyRefused(KeyUnavailable):
    """The key service refused this process's credential for the key (another region's)."""

    code, status, title = "key-custody-refused", 403, "Key held by another region"


class IntegrityFailure(GatewayError):
    code, status, title = "integrity-failure", 500, "Integrity check failed"


class ResidencyViolation(GatewayError):
    code, status, title = "residency-violation", 403, "Residency rule blocks this transfer"


class ServiceUnavailable(GatewayError):
    """The database or storage is away (or full): nothing was accepted; try again later."""

    code, status, title = "service-unavailable", 503, "Service temporarily unavailable"
