"""``interop import fhir PATH_OR_URL... --out DIR``: FHIR feeds into pseudonymised patient records."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from converters.fhir import (
    CodeTables,
    FhirVersion,
    SpoolSink,
    convert_paths,
    load_code_tables,
    normalise_version,
)
from converters.fhir.output import ImportOutput, write_import
from converters.fhir.rest import TOKEN_ENV
from converters.fhir.sources import Entry
from converters.report import ImportReport
from interop.cli.imports import (
    KEY_FILE_OPTION,
    SHOW_PATHS_OPTION,
    fail_if_all_rejected,
    hider,
    import_app,
    print_report,
    require_key,
    shown,
    terminate_cleanly,
)

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
        key_file: Path | None = KEY_FILE_OPTION,
        date_shift: bool = typer.Option(
            True,
            "--date-shift/--no-date-shift",
            help="Shift dates by a secret per-patient offset (default; intervals and times of day "
            "stay exact); --no-date-shift keeps exact dates and the record says so",
        ),
        mapping: list[Path] = typer.Option([], "--mapping-table", help="A site's own code table (CSV)"),
        token: str | None = typer.Option(
            None, "--token", envvar=TOKEN_ENV, show_envvar=True, help="Bearer token for a FHIR server"
        ),
        show_paths: bool = SHOW_PATHS_OPTION,
        workers: int = typer.Option(
            0, "--workers", min=0, help="Convert on a local Dask cluster of N processes (0: this process)"
        ),
        scheduler: str | None = typer.Option(
            None,
            "--scheduler",
            help="Convert on a running Dask cluster (tcp://host:port); inputs and --out on shared storage",
        ),
    ) -> None:
        """Import FHIR R4/R4B/R5 data into the shared patient schema (pseudonymised, date-shifted)."""
        console = Console(stderr=True)
        key = require_key(key_file)
        version = normalise_version(fhir_version) if fhir_version else None
        tables = load_code_tables(tuple(mapping))
        out.mkdir(parents=True, exist_ok=True)
        if workers or scheduler:
            from converters.fhir.parallel import convert_parallel
            from interop.cohort.scale import dask_client

            before = set(out.glob(".parallel-*"))
            try:
                with terminate_cleanly(), dask_client(scheduler, workers or 2) as client:
                    report, written = convert_parallel(
                        client,
                        inputs,
                        key,
                        out,
                        hide=hider(key),
                        tables=tables,
                        version=version,
                        date_shift=date_shift,
                        token=token,
                        on_step=lambda text: console.print(f"[bold]{text}"),
                    )
            finally:  # after the cluster is closed: what its tasks were still writing when stopped
                for stage in set(out.glob(".parallel-*")) - before:
                    shutil.rmtree(stage, ignore_errors=True)
        else:
            report, written = _one_process(inputs, key, out, tables, version, date_shift, token, console)
        print_report(console, report, "FHIR import", shown if show_paths else hider(key))
        console.print(f"{written.patients} patient record(s) in {written.records_dir}")
        console.print(f"cohort: {written.cohort_dir}   report: {written.report_txt}")
        fail_if_all_rejected(report, written.report_txt)


def _one_process(
    inputs: list[str],
    key: bytes,
    out: Path,
    tables: CodeTables,
    version: FhirVersion | None,
    date_shift: bool,
    token: str | None,
    console: Console,
) -> tuple[ImportReport, ImportOutput]:
    """The import in this process, with a progress bar."""
    with terminate_cleanly():
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
                written = write_import(sink.records(), report, out, hider(key))
                progress.update(task, description="done")
        finally:
            sink.close()
    return report, written
