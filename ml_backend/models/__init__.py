"""Model files shipped with the ML backend (see models.json and THIRD_PARTY.md)."""
