"""``interop serve``: the web pages at ``/`` and the JSON API under ``/api`` in one process."""

from __future__ import annotations

from typing import Any

import typer

from interop.errors import MissingExtraError
from interop.settings import Settings, get_settings

__all__ = ["register", "run_server", "web_app"]


def web_app(settings: Settings) -> Any:
    """The web application over ``settings`` (the 'web' extra)."""
    try:
        import uvicorn  # noqa: F401 - the 'api' extra

        from interop.web import create_web_app
    except ImportError as exc:
        raise MissingExtraError(exc.name or "fastapi", extra="web", purpose="serving the web app") from exc
    return create_web_app(settings)


def run_server(app: Any, host: str, port: int) -> None:
    """Serve ``app`` until interrupted (uvicorn; X-Forwarded-Proto from a TLS proxy marks https)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
        port: int = typer.Option(8000, help="TCP port"),
    ) -> None:
        """Serve the web application (pages at /, the API under /api)."""
        web = web_app(get_settings())
        typer.echo(
            f"Serving http://{host}:{port}/ (API at http://{host}:{port}/api, OpenAPI /api/openapi.json)"
        )
        run_server(web, host, port)
