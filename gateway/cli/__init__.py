"""`privacy-gateway`: the command line (gateway.cli.root assembles the sub-apps)."""

from gateway.cli.root import app, main

__all__ = ["app", "main"]
