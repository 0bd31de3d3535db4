"""Merge genotypes and omics references into the patient records of an output folder.

A thin layer over the one record store (:class:`interop.schema.record_store.RecordStore`):
records live one JSON file per patient as ``DIR/records/<patient_id>.json`` and are merged
the same way by every importer. A patient without a record gets one with a minimal
``Patient``. Items of the same id (same source and gene, say ``vcf-CYP2C19``) are replaced,
every other item is kept, so a VCF call and a PharmCAT call stay side by side and importing
the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from interop.schema import Genotype, OmicsRef, Patient, PatientRecord, Provenance
from interop.schema.record_store import RecordStore, merge_records

__all__ = ["load_record", "merge_items", "record_path", "save_record", "write_items"]


def record_path(out: Path, patient_id: str) -> Path:
    return RecordStore(out).path(patient_id)


def load_record(out: Path, patient_id: str) -> PatientRecord | None:
    """The stored record of ``patient_id``, or None."""
    return RecordStore(out).load(patient_id)


def save_record(out: Path, record: PatientRecord) -> Path:
    """Write ``record`` atomically to its file."""
    return RecordStore(out).save(record)


def merge_items(
    record: PatientRecord,
    genotypes: Iterable[Genotype] = (),
    omics: Iterable[OmicsRef] = (),
) -> PatientRecord:
    """``record`` with ``genotypes`` and ``omics`` added; same ids replace the old items."""
    return merge_records(
        record,
        PatientRecord(patient=record.patient, genotypes=tuple(genotypes), omics=tuple(omics)),
    )


def write_items(
    out: Path,
    patient_id: str,
    provenance: Provenance,
    genotypes: Iterable[Genotype] = (),
    omics: Iterable[OmicsRef] = (),
) -> Path:
    """Merge the items into the patient's record (created if missing) and save it."""
    store = RecordStore(out)
    new = PatientRecord(
        patient=Patient(id=patient_id, provenance=provenance), genotypes=tuple(genotypes), omics=tuple(omics)
    )
    store.merge(new)
    return store.path(patient_id)
