"""``interop import vcf | pharmcat | fhir-genomics | expression``: omics into patient records.

Every command merges into ``--out DIR/records/<patient_id>.json`` (created when missing), prints
what it read, converted, rejected and skipped, and writes that report beside the records
(``DIR/reports/import-<kind>-<source token>.json/.txt``; the input's name never appears).
Patient ids: ``--samples`` maps sample ids to patient ids, and the pseudonymisation key (the
same ``--pseudonymise-key-file`` or ``$INTEROP_PSEUDONYM_KEY`` as every importer; required)
turns them into keyed HMAC-SHA256 pseudonyms.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

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
from converters.pseudonym import source_token
from converters.report import write_report
from interop.cli.imports import (
    KEY_FILE_OPTION,
    fail_if_all_rejected,
    hider,
    import_app,
    print_report,
    require_key,
    terminate_cleanly,
)
from interop.errors import ConversionError
from interop.schema import PatientRecord
from interop.schema.base import parse_json

__all__ = ["register"]

out_console = Console()

OUT = typer.Option(..., "--out", help="Cohort folder: records go to DIR/records/<patient>.json")
SAMPLES = typer.Option(None, "--samples", help="CSV/TSV with columns sample_id, patient_id", exists=True)
KEY = KEY_FILE_OPTION


def _ids(samples: Path | None, key_file: Path | None) -> PatientIds:
    key = require_key(key_file)
    return PatientIds(key=key, mapping=read_mapping(samples) if samples else None)


def _finish(report: ImportReport, out: Path, kind: str, ids: PatientIds) -> None:
    key = ids.key if isinstance(ids.key, bytes) else str(ids.key).encode()
    token = source_token(key, report.source)
    hide = hider(key)
    print_report(out_console, report, f"{kind}: {token}", hide)
    path, _ = write_report(report, out / "reports", hide=hide, stem=f"import-{kind}-{token}")
    out_console.print(f"{len(set(report.written))} record(s) written under {out}; report {path}")
    fail_if_all_rejected(report, path)


def vcf(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="VCF or VCF.gz, GRCh38"),
    out: Path = OUT,
    samples: Path | None = SAMPLES,
    key: Path | None = KEY,
    genes: str | None = typer.Option(
        None, "--genes", help=f"Comma-separated subset of the panel ({','.join(PANEL)})"
    ),
) -> None:
    """Call the pharmacogene panel's diplotypes from a VCF into each sample's patient record."""
    wanted = tuple(g.strip().upper() for g in genes.split(",") if g.strip()) if genes else None
    ids = _ids(samples, key)
    with terminate_cleanly():
        report = import_vcf(path, out, ids, genes=wanted)
    _finish(report, out, "vcf", ids)


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
    key: Path | None = KEY,
) -> None:
    """Import PharmCAT's calls as they are, beside any call of our own."""
    ids = _ids(samples, key)
    for path in paths:
        with terminate_cleanly():
            report = import_pharmcat(path, out, ids, sample=sample)
        _finish(report, out, "pharmcat", ids)


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
    key: Path | None = KEY,
) -> None:
    """Import Genomics Reporting and R4-core genetics Observations (genotype, phenotype)."""
    ids = _ids(samples, key)
    for path in paths:
        with terminate_cleanly():
            report = import_fhir_genomics(path, out, ids)
        _finish(report, out, "fhir-genomics", ids)


def expression(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="TSV, CSV or .h5ad"),
    out: Path = OUT,
    samples: Path = typer.Option(
        ..., "--samples", exists=True, help="CSV/TSV with columns sample_id, patient_id"
    ),
    key: Path | None = KEY,
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
    ids = _ids(samples, key)
    with terminate_cleanly():
        report = import_expression(
            path,
            out,
            ids,
            features=features,
            namespace=namespace,
            orientation=orientation,
            scale=scale,
            assay=assay,
        )
    _finish(report, out, "expression", ids)


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
