"""``interop export fhir RECORDS... --out DIR``: patient records back to FHIR R4 Bundles."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from interop.errors import InteropError
from interop.schema import PatientRecord, parse_json
from interop.schema.cohort import read_cohort

__all__ = ["register"]

export_app = typer.Typer(help="Export patient records to other formats.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")


def _records(inputs: list[Path]) -> list[PatientRecord]:
    out: list[PatientRecord] = []
    for p in inputs:
        if p.is_dir() and (p / "patients.parquet").exists():
            out.extend(read_cohort(p))
        elif p.is_dir():
            folder = p / "records" if (p / "records").is_dir() else p
            out.extend(
                parse_json(PatientRecord, f.read_text(), source=str(f)) for f in sorted(folder.glob("*.json"))
            )
        elif p.is_file():
            out.append(parse_json(PatientRecord, p.read_text(), source=str(p)))
        else:
            raise InteropError("no such file or folder", source=str(p))
    return out


@export_app.command("fhir")
def export_fhir(
    inputs: list[Path] = typer.Argument(
        ..., help="Record JSON files, a records/ folder, an import folder or a cohort folder"
    ),
    out: Path = typer.Option(..., "--out", help="Folder for one R4 Bundle per patient"),
    transaction: bool = typer.Option(
        False, "--transaction", help="transaction Bundles (PUT) instead of collection"
    ),
) -> None:
    """Export PatientRecords as FHIR R4 Bundles (validated with fhir.resources)."""
    from converters.fhir.export import export_bundle_json  # loaded on use: keeps `interop --help` fast

    records = _records(inputs)
    out.mkdir(parents=True, exist_ok=True)
    for rec in records:
        (out / f"{rec.patient.id}.json").write_text(
            export_bundle_json(rec, "transaction" if transaction else "collection"), encoding="utf-8"
        )
    Console(stderr=True).print(f"{len(records)} Bundle(s) written to {out}")
