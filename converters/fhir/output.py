"""Writing an import: ``DIR/records/<id>.json``, ``DIR/cohort/`` (Parquet) and the report.

Records go through the one record store (:class:`interop.schema.record_store.RecordStore`):
a record that already exists (another import into the same folder, keyed by the same
pseudonymous id) is merged, items united by id per kind. The cohort is written from the
merged records as they are saved, plus the folder's other records, one at a time.
The report files name sources by keyed token only (``hide``), never by path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from converters.report import Hide, ImportReport, write_report
from interop.schema import PatientRecord
from interop.schema.cohort import write_cohort
from interop.schema.record_store import RecordStore

__all__ = ["ImportOutput", "sorted_outputs", "write_import"]


@dataclass(frozen=True)
class ImportOutput:
    records_dir: Path
    cohort_dir: Path
    report_json: Path
    report_txt: Path
    patients: int


def write_import(
    records: Iterable[PatientRecord], report: ImportReport, out: Path, hide: Hide
) -> ImportOutput:
    """Write records (merged with existing ones), the cohort of every record in ``out``, the report."""
    store = RecordStore(out)
    written: set[str] = set()

    def every_record() -> Iterator[PatientRecord]:
        for rec in store.merge_all(records):
            written.add(rec.patient.id)
            yield rec
        yield from store.records(exclude=written)  # records of other imports, untouched

    write_cohort(every_record(), out / "cohort")
    report_json, report_txt = write_report(report, out, hide)
    return ImportOutput(store.directory, out / "cohort", report_json, report_txt, len(written))


def sorted_outputs(out: Path) -> dict[str, Any]:
    """An import folder's content, order removed: each record file's bytes, each cohort table's
    rows (sorted, whether the table is one file or a folder of part files), the report as data
    (reasons sorted). Two imports of the same inputs with the same key give equal results, in
    one process or on a cluster."""
    records = {p.name: p.read_bytes() for p in sorted((out / "records").glob("*.json"))}
    tables = {}
    for path in sorted((out / "cohort").glob("*.parquet")):
        table = pq.read_table(path, use_threads=False)  # a file, or a folder of part files
        tables[path.name] = (table.schema, sorted(map(repr, table.to_pylist())))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["reasons"] = sorted(report["reasons"], key=lambda r: json.dumps(r, sort_keys=True))
    return {"records": records, "cohort": tables, "report": report}
