"""Cohort Parquet tables: readable as plain tables and lossless back to records."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from interop.schema.cohort import read_cohort, write_cohort
from tests.schema.test_patient import make_record


def test_cohort_round_trip(tmp_path: Path) -> None:
    rec = make_record()
    other = rec.replace(patient=rec.patient.replace(id="q" * 32).model_dump())
    paths = write_cohort([rec, other], tmp_path)
    assert set(paths) == {"patients", "measurements", "doses", "genotypes", "omics"}
    doses = pd.read_parquet(paths["doses"], use_threads=False)
    assert list(doses["patient_id"].unique()) == ["p" * 32, "q" * 32]
    assert set(doses["route"]) == {"iv-bolus", "iv-infusion"}
    assert read_cohort(tmp_path) == [rec, other]
