"""Human review of redaction in Label Studio: the review project per dataset, its reviewers,
what enters it (quarantines, incidents, a verifiable sample of released assets) and what its
decisions do (manual regions, re-render, leak check, release or reject)."""

from gateway.review import models  # noqa: F401  (registers the tables on the metadata)
