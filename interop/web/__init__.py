"""The web application: registry browser, model pages, twin workspace and validation dashboard,
server-rendered on the same FastAPI app as the JSON API (mounted at ``/api``)."""

from interop.web.app import create_web_app

__all__ = ["create_web_app"]
