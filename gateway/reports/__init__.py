"""Governance reports for compliance officers: signed JSON (the source of truth), HTML, PDF."""
