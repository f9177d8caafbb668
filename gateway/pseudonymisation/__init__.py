"""Pseudonymisation: keyed pseudonyms, the metadata allowlist, the re-identification vault.

Public surface (other parts of the gateway use only these):
  task_meta.pseudonym(ctx, session, *, dataset_id, field, value, remember=False) -> str
  task_meta.task_metadata(ctx, session, asset) -> dict   (what a Label Studio task may carry)
  policy.PseudonymField, policy.PseudonymisationPolicy, policies.policy_for_dataset

This `__init__` imports nothing: the policy schema (`gateway.policy.schema`) embeds
`pseudonymisation.policy`, and re-exports here would run the whole package (and, through
`policy_for_dataset`, the policy engine that is still being imported) first.
"""
