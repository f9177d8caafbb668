"""The lineage format, without the database: what a record is and how it is hashed, canonical
JSON, RFC 9162 Merkle trees and proofs, signatures and the key rotation chain, signed
checkpoints, and the offline verification of an exported bundle.

`privacy-gateway verify BUNDLE` and any third-party verifier need only this package. It may
import the standard library, `cryptography`, `rfc8785` and `gateway.core.errors`, nothing else of
the gateway (no SQLModel, SQLAlchemy, FastAPI or service code): a test imports the verify path
in a fresh interpreter and looks at `sys.modules`. The ledger (`gateway.lineage.ledger`),
signing with the stored keys and the live verification build on it.

    records     the record model (plain dataclasses) and its place in the chain
    canonical   RFC 8785 JSON and the hash chain
    merkle      RFC 9162 tree hash, inclusion and consistency proofs, the frontier
    keys        public keys, fingerprints, signatures, the rotation chain, trust anchors
    checkpoint  signed tree heads and pinned checkpoint files
    bundle      the bundle's JSON Lines layout (what the exporter writes)
    verify      offline verification of a bundle
"""
