"""Enumerations the command line needs to build its options, kept apart from the tables and the
report renderer so that `privacy-gateway --help` imports neither SQLModel nor Jinja2
(gateway.core.models and gateway.reports.render re-export them); and the rule for the names
an operator gives (`slug`)."""

from __future__ import annotations

import re
from enum import StrEnum

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,99}$")


def slug(name: str) -> str:
    """`name` if it may name a dataset, a destination or a policy, else ValueError (in a
    pydantic validator: a 422 that says the rule)."""
    if not _SLUG.match(name):
        raise ValueError("use lowercase letters, digits, '-' and '_' (max 100)")
    return name


class LegalBasis(StrEnum):
    """GDPR Art. 6(1) lawful bases."""

    CONSENT = "consent"  # (a)
    CONTRACT = "contract"  # (b)
    LEGAL_OBLIGATION = "legal_obligation"  # (c)
    VITAL_INTERESTS = "vital_interests"  # (d)
    PUBLIC_TASK = "public_task"  # (e)
    LEGITIMATE_INTERESTS = "legitimate_interests"  # (f)


class Role(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"
    COMPLIANCE = "compliance"
    ML = "ml"


class ReportFormat(StrEnum):
    JSON = "json"
    HTML = "html"
    PDF = "pdf"
