"""Image redaction library: image bytes and a redaction policy in, redacted image and regions out.

Usable without the gateway service. Never imports `gateway`.
"""
