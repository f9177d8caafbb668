"""REST API under /v1: one module per resource; handlers parse, call the core, return."""
