"""Which `PseudonymisationPolicy` governs a dataset: the `pseudonymisation` section of the
policy that governs it (its bound version, else the default; see `gateway.policy`).
Fails closed: no valid governing policy raises, nothing is guessed."""

from __future__ import annotations

from sqlmodel import Session

from gateway.policy.governing import governing_policy
from gateway.pseudonymisation.policy import PseudonymisationPolicy


def policy_for_dataset(session: Session, dataset_id: str) -> PseudonymisationPolicy:
    return governing_policy(session, dataset_id).document.pseudonymisation
