"""Drawing released assets for review with a seed fixed before the draw (pure).

The seed is the SHA-256 of a signed lineage checkpoint's canonical body: it exists only once
the batch's records are sealed, and nobody chooses it. Each asset is in the sample when
HMAC-SHA256(seed, asset id), read as a fraction of 2^256, is below the rate: a Bernoulli draw
per asset that anyone holding the checkpoint and the population can recompute."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from fractions import Fraction

SCALE = 1 << 256


def seed_of(checkpoint_body: str) -> str:
    return hashlib.sha256(checkpoint_body.encode()).hexdigest()


def draw(population: Iterable[str], *, seed: str, rate: str) -> list[str]:
    """The sampled ids, in the population's sorted order. `rate` is a decimal string."""
    threshold = Fraction(rate) * SCALE
    key = bytes.fromhex(seed)
    return [
        asset_id
        for asset_id in sorted(set(population))
        if int.from_bytes(hmac.new(key, asset_id.encode(), hashlib.sha256).digest(), "big")
        < threshold
    ]
