"""Writing an import: ``DIR/records/<id>.json``, ``DIR/cohort/`` (Parquet) and the report.

A record file that already exists (the omics importer writes into the same folder, keyed by
the same pseudonymous id) is merged: items are united by id per kind (this import's item wins
on the same id), so neither importer overwrites the other's items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from converters.report import ConversionReport
from interop.schema import PatientRecord, parse_json
from interop.schema.cohort import write_cohort

__all__ = ["ImportOutput", "merge_records", "write_import"]

ITEM_KINDS = ("measurements", "doses", "conditions", "genotypes", "omics")


@dataclass(frozen=True)
class ImportOutput:
    records_dir: Path
    cohort_dir: Path
    report_json: Path
    report_txt: Path
    patients: int


def merge_records(old: PatientRecord, new: PatientRecord) -> PatientRecord:
    """``new`` over ``old``: same patient, items united by id (``new`` wins on a clash)."""
    merged: dict[str, tuple[object, ...]] = {}
    for kind in ITEM_KINDS:
        items = {i.id: i for i in getattr(old, kind)}
        items.update({i.id: i for i in getattr(new, kind)})
        merged[kind] = tuple(items.values())
    return PatientRecord(patient=new.patient, **merged)  # type: ignore[arg-type]


def _write_records(
    records: Iterable[PatientRecord], directory: Path, written: list[Path]
) -> Iterator[PatientRecord]:
    """Write (merging) each record and pass the merged record on, so the cohort needs no re-read."""
    directory.mkdir(parents=True, exist_ok=True)
    for rec in records:
        path = directory / f"{rec.patient.id}.json"
        if path.exists():
            rec = merge_records(
                parse_json(PatientRecord, path.read_text(encoding="utf-8"), source=str(path)), rec
            )
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(rec.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
        yield rec


def _read_records(paths: Iterable[Path]) -> Iterator[PatientRecord]:
    for p in paths:
        yield parse_json(PatientRecord, p.read_text(encoding="utf-8"), source=str(p))


def write_import(records: Iterable[PatientRecord], report: ConversionReport, out: Path) -> ImportOutput:
    """Write records (merged with existing ones), the cohort of every record in ``out``, the report."""
    out.mkdir(parents=True, exist_ok=True)
    records_dir = out / "records"
    earlier = set(records_dir.glob("*.json")) if records_dir.is_dir() else set()
    written: list[Path] = []

    def every_record() -> Iterator[PatientRecord]:
        yield from _write_records(records, records_dir, written)
        yield from _read_records(sorted(earlier - set(written)))  # records of other imports, untouched

    write_cohort(every_record(), out / "cohort")
    report_json, report_txt = out / "report.json", out / "report.txt"
    report_json.write_text(report.to_json(), encoding="utf-8")
    report_txt.write_text(report.to_text(), encoding="utf-8")
    return ImportOutput(records_dir, out / "cohort", report_json, report_txt, len(written))
