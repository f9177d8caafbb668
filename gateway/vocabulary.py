"""Enumerations the command line needs to build its options, kept apart from the tables and the
report renderer so that `privacy-gateway --help` imports neither SQLModel nor Jinja2
(gateway.core.models and gateway.reports.render re-export them)."""

from __future__ import annotations

from enum import StrEnum


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
