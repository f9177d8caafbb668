"""Typed errors of the policy engine (all GatewayError: problem+json, CLI exit codes)."""

from __future__ import annotations

from gateway.core.errors import GatewayError


class PolicyInvalid(GatewayError):
    """A policy file or document failed validation; `details.errors` holds each problem with
    its file, line, column, field and what was expected."""

    code, status, title = "invalid-policy", 422, "Invalid policy document"


class PolicyMissing(GatewayError):
    code, status, title = "policy-missing", 409, "No policy governs this dataset"


class PolicyImmutable(GatewayError):
    code, status, title = "policy-immutable", 409, "Activated policy versions cannot change"


class WeakeningNotAcknowledged(GatewayError):
    """A policy switches off face or plate redaction or the leak check and the caller did not
    name each of them in its acknowledgement (`acknowledge_weakening`)."""

    code, status, title = "weakening-not-acknowledged", 422, "Weakened protection not acknowledged"
