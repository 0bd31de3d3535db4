"""Cohort Parquet written in row groups as records arrive, atomically per table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from interop.schema import cohort
from interop.schema.cohort import read_cohort, write_cohort
from tests.schema.test_patient import make_record


def _records(n: int) -> Iterator:
    rec = make_record()
    for i in range(n):
        yield rec.replace(patient=rec.patient.replace(id=f"patient-{i:04d}").model_dump())


def test_rows_are_written_in_row_groups_and_read_back(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(cohort, "ROW_GROUP", 3)
    paths = write_cohort(_records(10), tmp_path)
    meta = pq.ParquetFile(paths["measurements"]).metadata
    assert meta.num_rows == 20 and meta.num_row_groups == 7  # 20 rows, 3 per group
    assert [r.patient.id for r in read_cohort(tmp_path)] == [f"patient-{i:04d}" for i in range(10)]
    doses = pq.read_table(paths["doses"]).to_pylist()
    infusion = next(d for d in doses if d["route"] == "iv-infusion")
    assert (infusion["duration_h"], infusion["rate"]) == (0.5, 640.0)
    bolus = next(d for d in doses if d["route"] == "iv-bolus")
    assert (bolus["duration_h"], bolus["rate"]) == (None, None)


def test_an_interrupted_write_keeps_the_previous_cohort_and_leaves_no_partial_file(tmp_path: Path) -> None:
    write_cohort(_records(2), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing() -> Iterator:
        yield from _records(5)
        raise KeyboardInterrupt  # as SIGTERM unwinds in the CLI

    with pytest.raises(KeyboardInterrupt):
        write_cohort(failing(), tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
