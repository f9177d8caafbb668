"""Pre-label sources: one-method detectors over a redacted image (see `base.PreLabelSource`)."""
