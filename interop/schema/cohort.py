"""Cohorts as tables: one Parquet file per record kind, keyed by pseudonymous patient id.

Each table has flat, typed columns for the fields analyses use (so pandas, DuckDB, Spark and
Dask read them as they are; times in UTC) and an ``item_json`` column with the whole item, so
reading a cohort back gives the exact ``PatientRecord``s that were written. Tables are written
with pyarrow in row groups as records arrive, so a cohort of any size is written in flat memory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from interop.errors import SchemaError
from interop.schema.base import parse
from interop.schema.patient import (
    Condition,
    Dose,
    Genotype,
    Measurement,
    OmicsRef,
    Patient,
    PatientRecord,
)

__all__ = ["KINDS", "read_cohort", "write_cohort"]

KINDS: dict[str, type] = {
    "measurements": Measurement,
    "doses": Dose,
    "conditions": Condition,
    "genotypes": Genotype,
    "omics": OmicsRef,
}


# Typed columns per table (besides patient_id, id and item_json): fixed, so row groups stream.
_TS = pa.timestamp("us", tz="UTC")
COLUMNS: dict[str, list[tuple[str, pa.DataType]]] = {
    "patients": [
        ("sex", pa.string()),
        ("birth_date", pa.date32()),
        ("age_years", pa.float64()),
        ("schema_version", pa.string()),
    ],
    "measurements": [
        ("code_system", pa.string()),
        ("code", pa.string()),
        ("category", pa.string()),
        ("value", pa.float64()),
        ("unit", pa.string()),
        ("time", _TS),
        ("status", pa.string()),
        ("below_lloq", pa.bool_()),
    ],
    "doses": [
        ("drug_code", pa.string()),
        ("drug_name", pa.string()),
        ("amount", pa.float64()),
        ("unit", pa.string()),
        ("route", pa.string()),
        ("start", _TS),
        ("duration_h", pa.float64()),
        ("rate", pa.float64()),
        ("interval_h", pa.float64()),
        ("additional", pa.int64()),
        ("status", pa.string()),
    ],
    "conditions": [("code_system", pa.string()), ("code", pa.string()), ("onset", _TS)],
    "genotypes": [
        ("gene", pa.string()),
        ("diplotype", pa.string()),
        ("phenotype", pa.string()),
        ("activity_score", pa.float64()),
        ("caller", pa.string()),
    ],
    "omics": [
        ("assay", pa.string()),
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("sample_id", pa.string()),
    ],
}
ROW_GROUP = 10_000  # rows buffered per table before a row group is written (bounds memory)


def _schema(table: str) -> pa.Schema:
    head = [("patient_id", pa.string())] + ([] if table == "patients" else [("id", pa.string())])
    return pa.schema([*head, *COLUMNS[table], ("item_json", pa.string())])


def _flat(kind: str, item: Any) -> dict[str, Any]:
    if kind == "measurements":
        return {
            "code_system": item.code.system,
            "code": item.code.code,
            "category": item.category,
            "value": item.value,
            "unit": item.unit,
            "time": item.time,
            "status": item.status,
            "below_lloq": bool(item.drug_level and item.drug_level.below_lloq),
        }
    if kind == "doses":
        return {
            "drug_code": item.drug.codes[0].code,
            "drug_name": item.drug.name,
            "amount": item.amount,
            "unit": item.unit,
            "route": item.route,
            "start": item.start,
            "duration_h": item.infusion_hours,
            "rate": item.rate if item.rate is not None else _rate(item),
            "interval_h": item.interval_h,
            "additional": item.additional,
            "status": item.status,
        }
    if kind == "conditions":
        return {"code_system": item.code.system, "code": item.code.code, "onset": item.onset}
    if kind == "genotypes":
        return {
            "gene": item.gene,
            "diplotype": item.diplotype,
            "phenotype": item.phenotype,
            "activity_score": item.activity_score,
            "caller": item.caller,
        }
    return {"assay": item.assay, "path": item.path, "sha256": item.sha256, "sample_id": item.sample_id}


def _rate(dose: Dose) -> float | None:
    """An infusion's rate (unit per hour) from its duration, so both columns are filled."""
    return dose.amount / dose.duration_h if dose.duration_h else None


class _Table:
    """One Parquet file written in row groups to a temporary name, renamed when complete."""

    def __init__(self, directory: Path, name: str) -> None:
        self.final = directory / f"{name}.parquet"
        self.schema = _schema(name)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        self.tmp = Path(tmp)
        self.writer = pq.ParquetWriter(self.tmp, self.schema)
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROW_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> Path:
        self.flush()
        self.writer.close()
        _remove_table(self.final)  # a folder of part files (a Dask import) cannot be replaced by a rename
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_cohort(records: Iterable[PatientRecord], directory: Path) -> dict[str, Path]:
    """Write ``patients.parquet`` and one table per non-empty record kind; returns the paths.

    Records are consumed one at a time and rows written in row groups of ``ROW_GROUP``, so
    memory stays flat however many records there are. Each table is written under a temporary
    name and renamed when complete: an interrupted write leaves the previous cohort intact and
    no partial file behind.
    """
    directory.mkdir(parents=True, exist_ok=True)
    tables: dict[str, _Table] = {}

    def table(name: str) -> _Table:
        if name not in tables:
            tables[name] = _Table(directory, name)
        return tables[name]

    try:
        patients = table("patients")
        for rec in records:
            p = rec.patient
            patients.add(
                {
                    "patient_id": p.id,
                    "sex": p.sex,
                    "birth_date": p.birth_date,
                    "age_years": p.age_years,
                    "schema_version": rec.schema_version,
                    "item_json": p.model_dump_json(),
                }
            )
            for kind in KINDS:
                for item in getattr(rec, kind):
                    table(kind).add(
                        {
                            "patient_id": p.id,
                            "id": item.id,
                            **_flat(kind, item),
                            "item_json": item.model_dump_json(),
                        }
                    )
        written = {name: t.close() for name, t in tables.items()}
    except BaseException:
        for t in tables.values():
            t.abort()
        raise
    for kind in KINDS:  # a stale table from an earlier write would mix cohorts
        if kind not in written:
            _remove_table(directory / f"{kind}.parquet")
    return written


def _remove_table(path: Path) -> None:
    """Remove a table: one Parquet file, or a folder of part files."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _read(path: Path) -> pd.DataFrame:
    # use_threads=False: pyarrow's reader thread pool intermittently aborts the interpreter at exit
    # ("terminate called without an active exception", seen with pyarrow 21 and 26 here).
    return pd.read_parquet(path, columns=["patient_id", "item_json"], use_threads=False)


def read_cohort(directory: Path) -> list[PatientRecord]:
    """The ``PatientRecord``s of a cohort folder written by :func:`write_cohort` (tables as single
    files, or as folders of part files written by a Dask import)."""
    path = directory / "patients.parquet"
    if not path.exists():
        raise SchemaError("no patients.parquet: not a cohort folder", source=str(directory))
    items: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for kind, cls in KINDS.items():
        kpath = directory / f"{kind}.parquet"
        if not kpath.exists():
            continue
        df = _read(kpath)
        for i, (pid, text) in enumerate(zip(df["patient_id"], df["item_json"], strict=True)):
            items[pid][kind].append(parse(cls, json.loads(text), source=f"{kpath} row {i + 1}"))
    records = []
    df = _read(path)
    for i, (pid, text) in enumerate(zip(df["patient_id"], df["item_json"], strict=True)):
        patient = parse(Patient, json.loads(text), source=f"{path} row {i + 1}")
        records.append(PatientRecord(patient=patient, **{k: tuple(v) for k, v in items[pid].items()}))
    return records
