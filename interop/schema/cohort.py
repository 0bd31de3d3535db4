"""Cohorts as tables: one Parquet file per record kind, keyed by pseudonymous patient id.

Each table has flat, typed columns for the fields analyses use (so pandas, DuckDB, Spark and
Dask read them as they are) and an ``item_json`` column with the whole item, so reading a
cohort back gives the exact ``PatientRecord``s that were written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

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
            "duration_h": item.duration_h,
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


def write_cohort(records: Iterable[PatientRecord], directory: Path) -> dict[str, Path]:
    """Write ``patients.parquet`` and one table per non-empty record kind; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    patients: list[dict[str, Any]] = []
    tables: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        p = rec.patient
        patients.append(
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
                tables[kind].append(
                    {
                        "patient_id": p.id,
                        "id": item.id,
                        **_flat(kind, item),
                        "item_json": item.model_dump_json(),
                    }
                )
    written = {}
    path = directory / "patients.parquet"
    pd.DataFrame(patients).to_parquet(path, index=False)
    written["patients"] = path
    for kind, rows in tables.items():
        path = directory / f"{kind}.parquet"
        pd.DataFrame(rows).to_parquet(path, index=False)
        written[kind] = path
    for kind in KINDS:  # a stale table from an earlier write would mix cohorts
        if kind not in tables:
            (directory / f"{kind}.parquet").unlink(missing_ok=True)
    return written


def _read(path: Path) -> pd.DataFrame:
    # use_threads=False: pyarrow's reader thread pool intermittently aborts the interpreter at exit
    # ("terminate called without an active exception", seen with pyarrow 21 and 26 here).
    return pd.read_parquet(path, columns=["patient_id", "item_json"], use_threads=False)


def read_cohort(directory: Path) -> list[PatientRecord]:
    """The ``PatientRecord``s of a cohort folder written by :func:`write_cohort`."""
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
