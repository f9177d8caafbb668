"""The lineage ledger: an append-only, hash-chained record of every state change.

`gateway.lineage.format` is its database-free part (records, canonical JSON, Merkle proofs,
bundle and checkpoint verification). Importing it must not load the ledger, which pulls in
SQLAlchemy and its session hooks; so the names below (the ledger's, the lineage writer's and
the `Action` enum) are loaded on first use (PEP 562), not when this package is imported.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.lineage.actions import Action
    from gateway.lineage.ledger import Actor, append, verify_chain
    from gateway.lineage.writer import LineagePayloadError, Recorder, recorder, recorder_at

__all__ = [
    "Action",
    "Actor",
    "LineagePayloadError",
    "Recorder",
    "append",
    "recorder",
    "recorder_at",
    "verify_chain",
]
_LEDGER = {"Actor", "append", "verify_chain"}
_RECORDER = {"LineagePayloadError", "Recorder", "recorder", "recorder_at"}
_ACTIONS = {"Action"}


def __getattr__(name: str) -> Any:
    # deferred: the ledger and the writer import SQLAlchemy/SQLModel (see the docstring)
    if name in _ACTIONS:
        return getattr(importlib.import_module("gateway.lineage.actions"), name)
    if name in _LEDGER:
        return getattr(importlib.import_module("gateway.lineage.ledger"), name)
    if name in _RECORDER:
        return getattr(importlib.import_module("gateway.lineage.writer"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
