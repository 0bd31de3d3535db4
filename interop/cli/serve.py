"""``interop serve``: the web pages at ``/`` and the JSON API under ``/api`` in one process."""

from __future__ import annotations

import typer

from interop.errors import MissingExtraError
from interop.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
        port: int = typer.Option(8000, help="TCP port"),
    ) -> None:
        """Serve the web application (pages at /, the API under /api) over the local registry."""
        try:
            import uvicorn  # the 'api' extra

            from interop.web import create_web_app
        except ImportError as exc:
            raise MissingExtraError(
                exc.name or "fastapi", extra="web", purpose="serving the web app"
            ) from exc
        typer.echo(
            f"Serving http://{host}:{port}/ (API at http://{host}:{port}/api, OpenAPI /api/openapi.json)"
        )
        uvicorn.run(
            create_web_app(get_settings()), host=host, port=port, log_level="info", proxy_headers=True
        )
