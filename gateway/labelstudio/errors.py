"""Typed errors of the Label Studio sync (translated to problem+json / CLI exit codes)."""

from __future__ import annotations

from gateway.core.errors import GatewayError


class LabelStudioUnavailable(GatewayError):
    """Label Studio did not answer, or answered 5xx/429, after every retry (transient)."""

    code, status, title = "labelstudio-unavailable", 502, "Label Studio unavailable"


class LabelStudioRejected(GatewayError):
    """Label Studio refused the request (4xx): a wrong token, a bad config, a missing task."""

    code, status, title = "labelstudio-rejected", 502, "Label Studio refused the request"


class WebhookUnauthorised(GatewayError):
    code, status, title = "webhook-unauthorised", 401, "Webhook secret missing or wrong"
