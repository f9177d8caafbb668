"""Label Studio sync: destinations, projects, tasks, image URLs, annotations, removal."""

from gateway.labelstudio import tables  # noqa: F401  (registers the tables on the metadata)
