"""The last metadata gate before a redacted file is stored for release.

The redaction library re-encodes pixels with no metadata at all; this gate adds back only what
the dataset's policy allowlists (an ICC profile, from the original) and then walks the file's
structure: anything outside the allowlist quarantines the asset instead of releasing it.
"""

from __future__ import annotations

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.pseudonymisation.policies import policy_for_dataset
from gateway.pseudonymisation.policy import FileMetadata
from redaction.metadata import disallowed_metadata, embed_icc_profile_jpeg, read_facts


class MetadataNotAllowed(GatewayError):
    code, status, title = "metadata-not-allowed", 422, "Metadata outside the allowlist"


def release_file(ctx: GatewayContext, *, dataset_id: str, original: bytes, output: bytes) -> bytes:
    """`output` with exactly the allowlisted metadata; raises MetadataNotAllowed otherwise."""
    with transaction(ctx.engine) as session:
        allowlist = policy_for_dataset(session, dataset_id).file_allowlist
    if FileMetadata.ICC_PROFILE in allowlist and output.startswith(b"\xff\xd8"):
        icc = read_facts(original).icc_profile
        if icc is not None:
            output = embed_icc_profile_jpeg(output, icc)
    leftover = disallowed_metadata(output, allowed={item.value for item in allowlist})
    if leftover:
        raise MetadataNotAllowed(
            "the redacted file still carries metadata outside the policy's allowlist",
            items=leftover,
        )
    return output
