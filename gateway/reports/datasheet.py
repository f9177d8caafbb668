"""A "Datasheets for Datasets" summary (Gebru et al., 2021), answered from the records."""

from __future__ import annotations

from gateway.core.models import AssetState
from gateway.reports.facts import Facts
from gateway.reports.model import Datasheet, DatasheetAnswer
from gateway.reports.sections import NOTHING, PSEUDONYMISED


def _qa(question: str, answer: str) -> DatasheetAnswer:
    return DatasheetAnswer(question=question, answer=answer)


def datasheet(facts: Facts) -> Datasheet:
    d, q = facts.dataset, facts.quality
    labels = ", ".join(f"{c.key} ({c.count})" for c in q.label_distribution) if q else ""
    recipients = ", ".join(f"{r.name} in {r.region}" for r in facts.recipients)
    deletions = ", ".join(f"{e.action}: {e.count}" for e in facts.deletions)
    return Datasheet(
        sections={
            "Motivation": [
                _qa("For what purpose was the dataset created?", d.purpose),
                _qa("Who created the dataset (controller)?", d.controller),
            ],
            "Composition": [
                _qa(
                    "What do the instances represent, and how many are there?",
                    f"{facts.assets_total} image(s) of {', '.join(d.data_subject_categories)}; "
                    f"{facts.held(AssetState.RELEASED.value)} released after redaction.",
                ),
                _qa("Does the dataset contain personal data?", PSEUDONYMISED),
                _qa("Are there labels?", labels or "No annotations recorded yet."),
            ],
            "Collection process": [
                _qa(
                    "How was the data acquired?",
                    "Uploaded to the privacy gateway, which validates, encrypts and records "
                    "each file before any other processing.",
                ),
                _qa(
                    "Over what time frame?",
                    f"Lineage records from {facts.span[1] or '-'} to {facts.span[2] or '-'}.",
                ),
            ],
            "Preprocessing, cleaning, labelling": [
                _qa(
                    "What preprocessing was done?",
                    "Face, plate and (per policy) personal-text redaction, metadata stripping, "
                    "pseudonymisation; regions redacted: "
                    + (", ".join(f"{c.key} {c.count}" for c in facts.regions_by_label) or "none"),
                ),
                _qa("Is the raw data kept?", _raw_data(facts)),
            ],
            "Uses": [
                _qa("What is the intended use?", d.purpose),
                _qa(
                    "What uses should be avoided?",
                    "Any attempt to re-identify people; any purpose incompatible with the one "
                    "stated (GDPR Art. 5(1)(b)).",
                ),
            ],
            "Distribution": [
                _qa("To whom is the dataset distributed?", recipients or NOTHING),
            ],
            "Maintenance": [
                _qa("Is there a retention and erasure process?", deletions or NOTHING),
                _qa(
                    "How can the record be checked?",
                    "The lineage ledger is hash-chained and this report is signed; verify "
                    "with `privacy-gateway verify --report FILE`.",
                ),
            ],
        }
    )


def _raw_data(facts: Facts) -> str:
    """What is stored now, not what the policy would allow."""
    deleted = sum(facts.originals_deleted.values())
    stored = (
        f"Encrypted originals stored now: {facts.originals_stored} of {facts.assets_total} "
        f"asset(s); {deleted} deleted (retention, expiry or erasure)"
    )
    due = "; ".join(f"{i.what} next due {i.due_at}" for i in facts.due)
    if due:
        return f"{stored}. Under the policy in force: {due}."
    days = (facts.current_policy.retention_days if facts.current_policy else {}).get(
        "originals_days"
    )
    return f"{stored}." if days is not None else f"{stored}; no retention policy is recorded."
