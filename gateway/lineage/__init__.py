"""The lineage ledger: an append-only, hash-chained record of every state change.

`gateway.lineage.format` is its database-free part (records, canonical JSON, Merkle proofs,
bundle and checkpoint verification). Importing it must not load the ledger, which pulls in
SQLAlchemy and its session hooks; so the ledger's names below are loaded on first use
(PEP 562), not when this package is imported.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.lineage.ledger import Actor, append, verify_chain

__all__ = ["Actor", "append", "verify_chain"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        # deferred: the ledger imports SQLAlchemy/SQLModel (see the docstring)
        from gateway.lineage import ledger

        return getattr(ledger, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
