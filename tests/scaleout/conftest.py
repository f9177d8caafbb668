"""Fixtures of the scale-out tests."""

from tests.scaleout.kms_fixtures import kms_service

__all__ = ["kms_service"]
