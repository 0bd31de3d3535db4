"""Use cases behind the web pages' patient side: import an uploaded FHIR file into the hub's own
record store, list and load imported records and cohorts, and describe how a record binds to a
model (covariates, doses, levels, what was left out and why) before anything is fitted.

Records live under the hub's output folder (``$INTEROP_HOME/output``): uploads in
``web/<institution>/records/``, seen only by users of that institution, and any other folder that the
operator's ``interop import fhir --out`` or the demo wrote there, seen by every signed-in user of this
server. Only folders under that root are offered, so a form never names a server path.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters import convert_bundle_file
from converters.report import ImportReport
from interop.errors import NotFoundError, SchemaError
from interop.schema import ModelCard, PatientRecord
from interop.schema.record_store import RecordStore
from interop.settings import Settings
from interop.twin import bind_patient, load_model
from interop.twin.covariates import describe_covariates
from interop.twin.model import parameter_units
from interop.workflows.demo import demo_key

__all__ = [
    "ImportedRecord",
    "binding_summary",
    "cohort_folders",
    "import_upload",
    "imported_records",
    "load_imported",
    "parameter_table",
    "upload_folder",
    "upload_store",
]

MAX_DEPTH = 3


@dataclass(frozen=True)
class ImportedRecord:
    patient_id: str
    folder: str  # relative to the output folder


UPLOADS = "web"


def upload_folder(institution: str) -> str:
    """The folder (relative to the output folder) of one institution's uploads."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", institution or "local")[:100].strip(".") or "local"
    return f"{UPLOADS}/{safe}"


def _visible(folder: str, institution: str) -> bool:
    """Another institution's uploads are never listed or loaded."""
    return not (folder == UPLOADS or folder.startswith(UPLOADS + "/")) or folder == upload_folder(institution)


def upload_store(settings: Settings, institution: str) -> RecordStore:
    return RecordStore(settings.output_dir / upload_folder(institution))


def import_upload(
    settings: Settings, raw: bytes, filename: str, institution: str
) -> tuple[list[PatientRecord], ImportReport]:
    """Convert an uploaded FHIR Bundle, resource or NDJSON file (pseudonymised with the hub's key,
    date-shifted) and merge its records into ``institution``'s upload store."""
    suffix = ".ndjson" if filename.lower().endswith((".ndjson", ".jsonl")) else ".json"
    if raw[:2] == b"\x1f\x8b":
        suffix += ".gz"
    with tempfile.TemporaryDirectory(prefix="interop-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(raw)
        result = convert_bundle_file(path, demo_key(settings))
    if not result.records:
        raise SchemaError(f"{filename}: no Patient with data in the file", source=filename)
    store = upload_store(settings, institution)
    return [store.merge(r) for r in result.records], result.report


def _stores(settings: Settings) -> list[RecordStore]:
    root = settings.output_dir
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.rglob("records")):
        if d.is_dir() and len(d.relative_to(root).parts) <= MAX_DEPTH:
            found.append(RecordStore(d.parent))
    return found


def imported_records(settings: Settings, institution: str) -> list[ImportedRecord]:
    """Every record ``institution``'s users may see (id and folder), their uploads first."""
    own = upload_folder(institution)
    out: list[ImportedRecord] = []
    for store in _stores(settings):
        rel = store.root.relative_to(settings.output_dir).as_posix()
        if _visible(rel, institution):
            out.extend(ImportedRecord(pid, rel) for pid in store.ids())
    return sorted(out, key=lambda r: (r.folder != own, r.folder, r.patient_id))


def load_imported(settings: Settings, patient_id: str, folder: str, institution: str) -> PatientRecord:
    """An imported record by pseudonymous id and folder (one of ``imported_records``)."""
    for store in _stores(settings):
        rel = store.root.relative_to(settings.output_dir).as_posix()
        if rel == folder and _visible(rel, institution):
            record = store.load(patient_id)
            if record is not None:
                return record
    raise NotFoundError(f"no imported record {patient_id!r} in {folder!r}", source=folder)


def cohort_folders(settings: Settings, institution: str) -> list[str]:
    """Folders under the output folder that ``validate`` reads (Parquet tables or records/*.json)
    and ``institution``'s users may see."""
    root = settings.output_dir
    if not root.is_dir():
        return []
    found = {
        p.parent for p in root.rglob("patients.parquet") if len(p.relative_to(root).parts) <= MAX_DEPTH + 1
    }
    found |= {s.root for s in _stores(settings) if s.ids()}
    folders = (p.relative_to(root).as_posix() for p in found)
    return sorted(f for f in folders if _visible(f, institution))


def cohort_path(settings: Settings, folder: str, institution: str) -> Path:
    """The path of a folder that ``cohort_folders`` lists (anything else is refused)."""
    if folder not in cohort_folders(settings, institution):
        raise NotFoundError(f"no cohort folder {folder!r} under the hub's output folder", source=folder)
    return settings.output_dir / folder


def binding_summary(sbml: str, card: ModelCard, record: PatientRecord) -> dict[str, Any]:
    """How ``record`` binds to the model: covariates, doses, levels and the notes on what was left out."""
    twin = bind_patient(load_model(sbml, card), record)
    units = {o.id: o.unit for o in card.observables}
    return {
        "patient_id": twin.patient_id,
        "origin": twin.origin.isoformat(),
        "doses": [
            {
                "time_h": d.time_h,
                "amount": d.amount,
                "route": d.input.route,
                "duration_h": d.duration_h,
                "unit": d.input.amount_unit,
            }
            for d in twin.doses
        ],
        "levels": [
            {
                "time_h": o.time_h,
                "observable": o.observable,
                "value": o.value,
                "unit": units.get(o.observable, ""),
                "below_lloq": o.below_lloq,
            }
            for o in twin.observations
        ],
        "notes": list(twin.notes),
        **describe_covariates(twin),
    }


def parameter_table(sbml: str, card: ModelCard | None) -> list[dict[str, Any]]:
    """The model's parameters with units: the card's table where it has one, else every global SBML
    parameter (value, units from the SBML) that is not an ETA, a covariate or an assignment-rule target."""
    if card is not None and card.parameters:
        return [p.model_dump() for p in card.parameters]
    import libsbml

    model = libsbml.readSBMLFromString(sbml).getModel()
    if model is None:
        return []
    units = parameter_units(sbml, card)
    skip = set() if card is None else {*card.random_effects.etas, *(c.name for c in card.covariates)}
    rows = []
    for p in model.getListOfParameters():
        pid = p.getId()
        if pid in skip or model.getAssignmentRuleByVariable(pid) is not None or not p.isSetValue():
            continue
        row = {"id": pid, "value": p.getValue(), "unit": units.get(pid, ""), "source": "SBML"}
        rows.append({**row, "description": p.getName() or ""})
    return rows
