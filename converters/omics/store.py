"""Merge genotypes and omics references into the patient records of an output folder.

Records live one JSON file per patient as ``DIR/records/<patient_id>.json`` (the layout the
FHIR converter writes too). A patient without a record gets one with a minimal ``Patient``.
Items are merged by id: an item of the same id (same source and gene, say ``vcf-CYP2C19``)
is replaced, every other item is kept, so a VCF call and a PharmCAT call stay side by side
and importing the same file twice changes nothing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from interop.errors import ConversionError
from interop.schema import Genotype, OmicsRef, Patient, PatientRecord, Provenance
from interop.schema.base import parse_json

__all__ = ["load_record", "merge_items", "record_path", "save_record", "write_items"]

T = TypeVar("T", Genotype, OmicsRef)


def record_path(out: Path, patient_id: str) -> Path:
    return out / "records" / f"{patient_id}.json"


def load_record(out: Path, patient_id: str) -> PatientRecord | None:
    """The stored record of ``patient_id``, or None."""
    path = record_path(out, patient_id)
    if not path.exists():
        return None
    record = parse_json(PatientRecord, path.read_bytes(), source=str(path))
    if record.patient.id != patient_id:
        raise ConversionError(
            f"file holds patient {record.patient.id!r}, not {patient_id!r}", source=str(path)
        )
    return record


def save_record(out: Path, record: PatientRecord) -> Path:
    """Write ``record`` atomically to its file."""
    path = record_path(out, record.patient.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = record.model_dump_json(indent=2, exclude_defaults=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def merge_items(
    record: PatientRecord,
    genotypes: Iterable[Genotype] = (),
    omics: Iterable[OmicsRef] = (),
) -> PatientRecord:
    """``record`` with ``genotypes`` and ``omics`` added; same ids replace the old items."""
    return record.replace(genotypes=_merge(record.genotypes, genotypes), omics=_merge(record.omics, omics))


def _merge(old: tuple[T, ...], new: Iterable[T]) -> tuple[T, ...]:
    """Replace items in place by id, append the new ones: re-imports keep the file stable."""
    incoming = {item.id: item for item in new}
    merged = [incoming.pop(item.id, item) for item in old]
    return tuple(merged) + tuple(incoming.values())


def write_items(
    out: Path,
    patient_id: str,
    provenance: Provenance,
    genotypes: Iterable[Genotype] = (),
    omics: Iterable[OmicsRef] = (),
) -> Path:
    """Merge the items into the patient's record (created if missing) and save it."""
    record = load_record(out, patient_id)
    if record is None:
        record = PatientRecord(patient=Patient(id=patient_id, provenance=provenance))
    return save_record(out, merge_items(record, genotypes, omics))
