"""``interop import fhir PATH_OR_URL... --out DIR``: FHIR feeds into pseudonymised patient records."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from converters.fhir import SpoolSink, convert_paths, load_code_tables, normalise_version
from converters.fhir.output import write_import
from converters.fhir.rest import TOKEN_ENV
from converters.fhir.sources import Entry
from converters.pseudonym import load_key
from interop.cli.imports import import_app

__all__ = ["register"]


def register(app: typer.Typer) -> None:  # noqa: ARG001 - commands hang on the import group
    @import_app.command("fhir")
    def import_fhir(
        inputs: list[str] = typer.Argument(
            ...,
            metavar="PATH_OR_URL...",
            help="Bundles, resources, NDJSON (gz), Bulk export folders or manifests, or FHIR search URLs",
        ),
        out: Path = typer.Option(..., "--out", help="Output folder: records/, cohort/, report.json/.txt"),
        fhir_version: str | None = typer.Option(None, "--fhir-version", help="R4, R4B or R5 (else detected)"),
        key_file: Path | None = typer.Option(
            None, "--pseudonymise-key-file", help="Secret key file (else $INTEROP_PSEUDONYM_KEY)"
        ),
        date_shift: bool = typer.Option(
            False, "--date-shift", help="Shift dates by a secret per-patient offset"
        ),
        mapping: list[Path] = typer.Option([], "--mapping-table", help="A site's own code table (CSV)"),
        token: str | None = typer.Option(
            None, "--token", envvar=TOKEN_ENV, show_envvar=True, help="Bearer token for a FHIR server"
        ),
    ) -> None:
        """Import FHIR R4/R4B/R5 data into the shared patient schema (pseudonymised)."""
        console = Console(stderr=True)
        key = load_key(key_file)
        version = normalise_version(fhir_version) if fhir_version else None
        tables = load_code_tables(tuple(mapping))
        out.mkdir(parents=True, exist_ok=True)
        sink = SpoolSink(out)
        try:
            with Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,} resources"),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task("reading FHIR", total=None)
                count = 0

                def tick(_: Entry) -> None:
                    nonlocal count
                    count += 1
                    if count % 500 == 0:
                        progress.update(task, completed=count)

                report, _ = convert_paths(
                    inputs,
                    key,
                    tables=tables,
                    version=version,
                    date_shift=date_shift,
                    sink=sink,
                    token=token,
                    on_entry=tick,
                )
                progress.update(task, completed=count, description="writing records and cohort")
                written = write_import(sink.records(), report, out)
                progress.update(task, description="done")
        finally:
            sink.close()
        table = Table(title="FHIR import")
        for col in ("resource type", "read", "converted", "rejected", "skipped"):
            table.add_column(col, justify="left" if col == "resource type" else "right")
        for t, r, c, j, s in report.summary_rows():
            table.add_row(t, str(r), str(c), str(j), str(s))
        tot = report.totals()
        table.add_row(
            "[bold]total", *(f"[bold]{tot[k]}" for k in ("read", "converted", "rejected", "skipped"))
        )
        console.print(table)
        console.print(
            f"counts add up: {'yes' if report.balanced() else '[red]NO'}; "
            f"{len(report.unmapped_codes)} unmapped code(s); "
            f"{sum(report.unit_conversions.values())} unit conversion(s)"
        )
        console.print(f"{written.patients} patient record(s) in {written.records_dir}")
        console.print(f"cohort: {written.cohort_dir}   report: {written.report_txt}")
