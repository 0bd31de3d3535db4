"""The one record store: merge semantics, the patient-id check, and atomic saves (also on SIGTERM)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from interop.errors import SchemaError
from interop.schema import Patient, PatientRecord
from interop.schema.record_store import RecordStore, merge_records
from tests import data
from tests.schema.test_patient import PROV, make_record


def test_merge_unites_items_by_id_and_the_new_item_wins(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = make_record()
    store.save(rec)
    heavier = next(m for m in rec.measurements if m.id == "m1").replace(value=70)  # same id, new value
    extra = heavier.replace(id="m3")
    update = PatientRecord(patient=rec.patient, measurements=(heavier, extra))
    merged = store.merge(update)
    # replaced in place, the new one appended
    assert [m.id for m in merged.measurements] == [m.id for m in rec.measurements] + ["m3"]
    assert {m.id: m.value for m in merged.measurements}["m1"] == 70
    assert merged.doses == rec.doses and merged.genotypes == rec.genotypes and merged.omics == rec.omics
    assert store.load(rec.patient.id) == merged
    assert store.merge(update) == merged  # importing the same thing twice changes nothing


def test_a_minimal_patient_never_erases_what_another_import_knew(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = make_record()
    full = rec.replace(patient=rec.patient.replace(sex="female", birth_date=dt.date(1970, 1, 2)).model_dump())
    store.save(full)
    bare = PatientRecord(patient=Patient(id=rec.patient.id, provenance=PROV))  # e.g. an omics import
    merged = store.merge(bare)
    assert (merged.patient.sex, merged.patient.birth_date) == ("female", dt.date(1970, 1, 2))
    newer = Patient(id=rec.patient.id, sex="male", provenance=PROV)
    assert merge_records(full, PatientRecord(patient=newer)).patient.sex == "male"


def test_patient_id_check_and_safe_file_names(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = make_record()
    path = store.save(rec)
    assert path == tmp_path / "records" / f"{rec.patient.id}.json"
    path.rename(tmp_path / "records" / "someone-else.json")
    with pytest.raises(SchemaError, match="holds patient"):
        store.load("someone-else")
    for bad in ("../escape", "a/b", ".hidden", ""):
        with pytest.raises(SchemaError, match="safe file name"):
            store.path(bad)
    with pytest.raises(SchemaError, match="cannot merge"):
        merge_records(rec, PatientRecord(patient=Patient(id="other-patient", provenance=PROV)))
    assert store.load("not-there") is None and store.ids() == ["someone-else"]


def test_sigterm_during_saves_leaves_no_temporary_file(tmp_path: Path) -> None:
    # A child process saves a large record over and over under the CLI's SIGTERM handling; it is
    # terminated mid-way. The record on disk must be whole and no temporary file may be left.
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from interop.cli.imports import terminate_cleanly
        from interop.schema.record_store import RecordStore
        from tests.schema.test_patient import make_record

        rec = make_record()
        big = rec.replace(measurements=tuple(
            rec.measurements[1].replace(id=f"m{{i}}") for i in range(4000)))
        store = RecordStore(Path({str(tmp_path)!r}))
        with terminate_cleanly():
            store.save(big)
            print("ready", flush=True)
            while True:
                store.save(big)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(data.ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    leftovers = [
        p.name for p in (tmp_path / "records").iterdir() if p.name != f"{make_record().patient.id}.json"
    ]
    assert leftovers == []
    assert len(RecordStore(tmp_path).load(make_record().patient.id).measurements) == 4000
