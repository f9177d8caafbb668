"""The Label Studio Privacy Gateway service: API, CLI, data model, pipeline, lineage."""
