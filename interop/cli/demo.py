"""``interop demo``: one patient through converter, registry and twin (filled in below)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo() -> None:
        """Run the end-to-end demo on the embedded default (SQLite, local files)."""
        raise typer.Exit(0)
