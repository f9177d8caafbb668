"""The core every concern is built on: the data model, typed errors, the clock, settings, the
database, key custody, cryptography, the blob stores, the residency `Clearance` and the
`GatewayContext` that carries them. It imports nothing of the concern packages above it
(import-linter contracts in pyproject.toml); importing this package loads nothing."""
