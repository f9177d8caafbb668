"""Typed errors of the policy engine (all GatewayError: problem+json, CLI exit codes)."""

from __future__ import annotations

from gateway.errors import GatewayError


class PolicyInvalid(GatewayError):
    """A policy file or document failed validation; `details.errors` holds each problem with
    its file, line, column, field and what was expected."""

    code, status, title = "invalid-policy", 422, "Invalid policy document"


class PolicyMissing(GatewayError):
    code, status, title = "policy-missing", 409, "No policy governs this dataset"


class PolicyImmutable(GatewayError):
    code, status, title = "policy-immutable", 409, "Activated policy versions cannot change"
