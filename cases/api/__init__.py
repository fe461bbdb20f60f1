"""The HTTP API for entity CSIRTs (FastAPI); the composition root wires it with services."""

from cases.api.app import create_app

__all__ = ["create_app"]
