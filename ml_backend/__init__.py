"""Label Studio ML backend serving pre-labels from redacted images (next issue)."""
