"""The digest the lineage keeps of an annotation's result, as Label Studio holds it.

Label Studio's editor writes coordinates as fractional percentages (`"x": 30.769230769230766`),
and the gateway stores the result exactly as received. Signed and hashed data holds no floats
(RFC 8785 renders them differently from language to language), so the digest is taken over a
canonical form derived at this boundary: every float becomes the decimal string of its
shortest round-trip representation (Python's `repr`: `30.769230769230766`, `1e-07`, `-0.0`),
integers beyond ±(2**53 - 1) become decimal strings too, everything else stays as it is, and
the whole goes through the ledger's RFC 8785 encoder. Different numbers give different strings
(`repr` round-trips, so two floats with one representation are one float); an int and a float
of equal value differ (`1` against `"1.0"`). The one collision left is a float against a
string holding its representation at the same place, which Label Studio's result schema
never produces. NaN and infinities have no JSON form: they are refused with a typed error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import rfc8785

from gateway.core import crypto
from gateway.core.errors import GatewayError
from gateway.lineage.canonical import MAX_SAFE_INTEGER, canonical_json


class UnrepresentableAnnotation(GatewayError):
    """A value no JSON document can hold (NaN, an infinity, a non-JSON type)."""

    code, status, title = "annotation-not-representable", 422, "Annotation not representable"


def digest_form(value: Any, path: str = "$") -> Any:
    """A copy of `value` (parsed JSON) with floats and oversized integers as decimal strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnrepresentableAnnotation(
                f"the annotation holds a number that is not finite at {path}", path=path
            )
        return repr(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnrepresentableAnnotation(f"a non-string key at {path}", path=path)
            out[key] = digest_form(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [digest_form(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise UnrepresentableAnnotation(
        f"a {type(value).__name__} at {path} is not JSON", path=path, type=type(value).__name__
    )


def result_sha256(result: list[Any]) -> str:
    """SHA-256 of the canonical form of `{"result": result}`; raises UnrepresentableAnnotation."""
    form = {"result": digest_form(result, "$.result")}
    try:
        encoded = canonical_json(form)
    except (UnicodeEncodeError, rfc8785.CanonicalizationError) as exc:  # a lone surrogate
        raise UnrepresentableAnnotation(
            "the annotation holds text that is not valid Unicode", reason=type(exc).__name__
        ) from None
    return crypto.sha256_hex(encoded)
