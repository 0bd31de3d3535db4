"""``interop schemas``: export the contracts as JSON Schema and JSON-LD."""

from __future__ import annotations

from pathlib import Path

import typer

from interop.schema.export import export_schemas

schemas_app = typer.Typer(help="Contracts as JSON Schema / JSON-LD.", no_args_is_help=True)


@schemas_app.command("export")
def export(
    out: Path = typer.Option(Path("schemas"), "--out", help="Folder to write into"),
) -> None:
    """Write the patient-record and model-card JSON Schemas and the JSON-LD context."""
    for path in export_schemas(out):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(schemas_app, name="schemas")
