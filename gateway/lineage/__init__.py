"""The lineage ledger: an append-only, hash-chained record of every state change."""

from gateway.lineage.ledger import Actor, append, verify_chain

__all__ = ["Actor", "append", "verify_chain"]
