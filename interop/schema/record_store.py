"""The one patient-record store: ``DIR/records/<patient id>.json``, merged and written atomically.

Every importer (FHIR, omics, NONMEM) and workflow writes records through :class:`RecordStore`,
so they all merge the same way: a record already on disk is merged with the new one, items
united by id per kind (the new item replaces the old one of the same id, in place; other items
are kept), so importing the same file twice changes nothing and one importer never drops
another's items. The Patient is merged field by field: a value the new import knows wins, a
value it does not know (``sex`` unknown, no birth date) is kept from the record on disk.

Saving writes a temporary file in the same folder (``tempfile.mkstemp``) and renames it over
the record (``os.replace``, atomic on POSIX), so a reader never sees half a record; the
temporary file is removed on any exception, including the ``SystemExit`` the CLI raises on
SIGTERM. A file must hold the patient it is named after, and a patient id must be a safe file
name (no path separators), so a record can never be written outside the folder.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from interop.errors import SchemaError
from interop.schema.base import HasProvenance, parse_json
from interop.schema.patient import Patient, PatientRecord

__all__ = ["ITEM_KINDS", "RecordStore", "merge_patients", "merge_records", "write_text_atomic"]

ITEM_KINDS = ("measurements", "doses", "conditions", "genotypes", "omics")
SAFE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
TMP_PREFIX = ".tmp-"

T = TypeVar("T", bound=HasProvenance)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _merge_items(old: Iterable[T], new: Iterable[T]) -> tuple[T, ...]:
    """Replace items in place by id, append the new ones: re-imports keep the file stable."""
    incoming = {item.id: item for item in new}
    merged = [incoming.pop(item.id, item) for item in old]
    return (*merged, *incoming.values())


def merge_patients(old: Patient, new: Patient) -> Patient:
    """``new`` over ``old`` field by field: what the new import does not know is kept."""
    if old == new:
        return new
    knows = new.birth_date is not None or new.sex != "unknown" or new.age_years is not None
    data: dict[str, Any] = {
        "id": new.id,
        "sex": new.sex if new.sex != "unknown" else old.sex,
        "birth_date": new.birth_date if new.birth_date is not None else old.birth_date,
        "age_years": new.age_years if new.age_years is not None else old.age_years,
        "provenance": new.provenance if knows else old.provenance,
    }
    return Patient.model_validate(data)


def merge_records(old: PatientRecord, new: PatientRecord) -> PatientRecord:
    """``new`` merged into ``old`` (same patient): items united by id, ``new`` wins on a clash."""
    if old.patient.id != new.patient.id:
        raise SchemaError(f"cannot merge patient {new.patient.id!r} into {old.patient.id!r}")
    items = {kind: _merge_items(getattr(old, kind), getattr(new, kind)) for kind in ITEM_KINDS}
    return PatientRecord(patient=merge_patients(old.patient, new.patient), **items)


class RecordStore:
    """Patient records of one output folder, one JSON file each under ``root/records``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.directory = self.root / "records"

    def path(self, patient_id: str) -> Path:
        if not SAFE_ID.match(patient_id):
            raise SchemaError(
                f"patient id {patient_id!r} is not a safe file name (1-128 of A-Z a-z 0-9 . _ -)",
                field="patient.id",
            )
        return self.directory / f"{patient_id}.json"

    def ids(self) -> list[str]:
        """Ids of every stored record, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if not p.name.startswith(TMP_PREFIX))

    def load(self, patient_id: str) -> PatientRecord | None:
        """The stored record of ``patient_id``, or None; a file holding another patient is an error."""
        path = self.path(patient_id)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        record = parse_json(PatientRecord, text, source=str(path))
        if record.patient.id != patient_id:
            raise SchemaError(
                f"file holds patient {record.patient.id!r}, not {patient_id!r}", source=str(path)
            )
        return record

    def records(self, exclude: Iterable[str] = ()) -> Iterator[PatientRecord]:
        """Every stored record (one at a time), except those in ``exclude``."""
        skip = set(exclude)
        for pid in self.ids():
            if pid not in skip:
                record = self.load(pid)
                if record is not None:
                    yield record

    def save(self, record: PatientRecord) -> Path:
        """Write ``record`` atomically (temporary file in the same folder, then rename)."""
        return write_text_atomic(self.path(record.patient.id), record.model_dump_json(indent=1) + "\n")

    def merge(self, record: PatientRecord) -> PatientRecord:
        """Merge ``record`` into the stored one (if any), save it, and return what was saved."""
        old = self.load(record.patient.id)
        merged = record if old is None else merge_records(old, record)
        self.save(merged)
        return merged

    def merge_all(self, records: Iterable[PatientRecord]) -> Iterator[PatientRecord]:
        """Merge and save each record, passing the saved record on (streams: one in memory at a time)."""
        for record in records:
            yield self.merge(record)
