"""The registry's HTTP API (FastAPI): bearer tokens, roles, models, versions, evidence."""

from interop.api.app import create_app

__all__ = ["create_app"]
