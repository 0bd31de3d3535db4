"""``interop import ...``: every converter's command lives in this group."""

from __future__ import annotations

import typer

import_app = typer.Typer(help="Import data into the shared patient schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    # Each converter's CLI module adds its commands to `import_app` (one line each).
    app.add_typer(import_app, name="import")
