"""``interop import vcf | pharmcat | fhir-genomics | expression``: omics into patient records.

Every command merges into ``--out DIR/records/<patient_id>.json`` (created when missing), prints
what it read, converted, rejected and skipped, and writes that report as JSON beside the
records (``DIR/reports/``). Patient ids: ``--samples`` maps sample ids to patient ids, and
``--key`` (or ``INTEROP_PSEUDONYM_KEY``) pseudonymises them with HMAC-SHA256.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from converters.omics import (
    PANEL,
    ImportReport,
    PatientIds,
    export_genotypes_bundle,
    import_expression,
    import_fhir_genomics,
    import_pharmcat,
    import_vcf,
    read_mapping,
)
from interop.cli.imports import import_app
from interop.errors import ConversionError
from interop.schema import PatientRecord
from interop.schema.base import parse_json

__all__ = ["register"]

out_console = Console()

OUT = typer.Option(..., "--out", help="Cohort folder: records go to DIR/records/<patient>.json")
SAMPLES = typer.Option(None, "--samples", help="CSV/TSV with columns sample_id, patient_id", exists=True)
KEY = typer.Option(
    None,
    "--key",
    envvar="INTEROP_PSEUDONYM_KEY",
    help="Pseudonymisation key: patient ids become keyed HMAC-SHA256 pseudonyms "
    "(SYSTEM|VALUE ids match FHIR Patients)",
    show_default=False,
)


def _ids(samples: Path | None, key: str | None) -> PatientIds:
    return PatientIds(key=key or None, mapping=read_mapping(samples) if samples else None)


def _finish(report: ImportReport, out: Path, kind: str) -> None:
    table = Table(title=f"{kind}: {Path(report.source).name}")
    for col in ("unit", "read", "converted", "rejected", "skipped"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for t in report.tallies.values():
        table.add_row(t.unit, str(t.read), str(t.converted), str(t.n_rejected), str(t.n_skipped))
    out_console.print(table)
    for t in report.tallies.values():
        for reason, n in {**t.rejected, **t.skipped}.items():
            where = "; ".join(t.examples.get(reason, [])[:3])
            out_console.print(f"  {t.unit}: {n} x {reason}" + (f"  (e.g. {where})" if where else ""))
    for name, n in report.counts.items():
        out_console.print(f"  {name}: {n}")
    for w in report.warnings:
        out_console.print(f"  [yellow]warning:[/] {w}")
    reports = out / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    path = reports / f"import-{kind}-{Path(report.source).name}.json"
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    out_console.print(f"{len(set(report.written))} record(s) written under {out}; report {path}")


def vcf(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="VCF or VCF.gz, GRCh38"),
    out: Path = OUT,
    samples: Path | None = SAMPLES,
    key: str | None = KEY,
    genes: str | None = typer.Option(
        None, "--genes", help=f"Comma-separated subset of the panel ({','.join(PANEL)})"
    ),
) -> None:
    """Call the pharmacogene panel's diplotypes from a VCF into each sample's patient record."""
    wanted = tuple(g.strip().upper() for g in genes.split(",") if g.strip()) if genes else None
    report = import_vcf(path, out, _ids(samples, key), genes=wanted)
    _finish(report, out, "vcf")


def pharmcat(
    paths: list[Path] = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="PharmCAT .phenotype.json, .report.json, .report.tsv or outside-call TSV",
    ),
    out: Path = OUT,
    sample: str | None = typer.Option(
        None, "--sample", help="Sample id for files that do not name one (TSV outputs)"
    ),
    samples: Path | None = SAMPLES,
    key: str | None = KEY,
) -> None:
    """Import PharmCAT's calls as they are, beside any call of our own."""
    ids = _ids(samples, key)
    for path in paths:
        _finish(import_pharmcat(path, out, ids, sample=sample), out, "pharmcat")


def fhir_genomics(
    paths: list[Path] = typer.Argument(
        ..., exists=True, help="FHIR R4 Observation / Bundle JSON, NDJSON, or a folder of them"
    ),
    out: Path = OUT,
    samples: Path | None = typer.Option(
        None,
        "--subjects",
        help="CSV/TSV mapping subject ids (sample_id column) to patient ids",
        exists=True,
    ),
    key: str | None = KEY,
) -> None:
    """Import Genomics Reporting and R4-core genetics Observations (genotype, phenotype)."""
    ids = _ids(samples, key)
    for path in paths:
        _finish(import_fhir_genomics(path, out, ids), out, "fhir-genomics")


def expression(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="TSV, CSV or .h5ad"),
    out: Path = OUT,
    samples: Path = typer.Option(
        ..., "--samples", exists=True, help="CSV/TSV with columns sample_id, patient_id"
    ),
    key: str | None = KEY,
    features: Path | None = typer.Option(
        None,
        "--features",
        exists=True,
        help="Mapping table with columns hgnc_symbol, ensembl_gene_id",
    ),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Feature ids to store: hgnc.symbol or ensembl.gene"
    ),
    orientation: str = typer.Option(
        "auto", "--orientation", help="auto, genes-by-samples or samples-by-genes"
    ),
    scale: str | None = typer.Option(
        None, "--scale", help="counts, tpm, fpkm, log2, log2-tpm, normalised (default: detect)"
    ),
    assay: str = typer.Option("rna-seq", "--assay", help="rna-seq, microarray, proteomics, ..."),
) -> None:
    """Store an expression matrix as Parquet, referenced (SHA-256) from each patient's record."""
    report = import_expression(
        path,
        out,
        _ids(samples, key),
        features=features,
        namespace=namespace,
        orientation=orientation,
        scale=scale,
        assay=assay,
    )
    _finish(report, out, "expression")


omics_app = typer.Typer(help="Omics records: export genotypes.", no_args_is_help=True)


@omics_app.command("export-fhir")
def export_fhir(
    record: Path = typer.Argument(..., exists=True, dir_okay=False, help="A PatientRecord JSON"),
    output: Path = typer.Option(..., "--output", "-o", help="Bundle JSON to write"),
) -> None:
    """Export a record's genotypes as a Bundle of Genomics Reporting Observations."""
    rec = parse_json(PatientRecord, record.read_bytes(), source=str(record))
    if not rec.genotypes:
        raise ConversionError("the record has no genotypes to export", source=str(record))
    bundle = export_genotypes_bundle(rec)
    output.write_text(json.dumps(bundle, indent=2) + "\n", encoding="utf-8")
    out_console.print(f"{len(bundle['entry'])} Observation(s) written to {output}")


def register(app: typer.Typer) -> None:
    import_app.command("vcf")(vcf)
    import_app.command("pharmcat")(pharmcat)
    import_app.command("fhir-genomics")(fhir_genomics)
    import_app.command("expression")(expression)
    app.add_typer(omics_app, name="omics")
