"""Fixtures of the scale-out tests."""

from tests.scaleout.kms_fixtures import eu, kms_service

__all__ = ["eu", "kms_service"]
