"""What the format's verifiers raise: integrity failures, so the API answers problem+json and
the CLI one line with the code, as for every other GatewayError."""

from __future__ import annotations

from gateway.core.errors import IntegrityFailure


class BundleInvalid(IntegrityFailure):
    code, title = "lineage-bundle-invalid", "Lineage bundle does not verify"


class TrustedKeyInvalid(IntegrityFailure):
    code, title = "lineage-trusted-key-invalid", "The trusted key or fingerprint is unusable"


class AnchorInvalid(IntegrityFailure):
    """A pinned checkpoint file is unreadable, malformed or not signed by a trusted key."""

    code, title = "lineage-anchor-invalid", "Pinned lineage checkpoint is invalid"
