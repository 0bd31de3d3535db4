"""FHIR R4 Bundle -> ``PatientRecord``: Patient, Observation, MedicationAdministration.

Resources are validated with fhir.resources' R4B models (R4 feeds parse with them). Each
resource is converted or reported with a reason; references (``urn:uuid:`` full URLs and
``Patient/id``) are resolved within the bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from converters.fhir.codes import CodeTables, load_code_tables
from converters.pseudonym import pseudonymise
from converters.report import ConversionReport
from interop.errors import ConversionError, SchemaError
from interop.schema import (
    RXNORM,
    Coding,
    Dose,
    Drug,
    DrugLevel,
    Measurement,
    Patient,
    PatientRecord,
    Provenance,
    Transformation,
)
from interop.schema.units import UnitError, convert

__all__ = ["CONVERTER", "ConversionResult", "convert_bundle", "convert_bundle_file"]

log = logging.getLogger(__name__)
CONVERTER = "converters.fhir"
CONVERTER_VERSION = "0.1.0"
SNOMED_IV = {"47625008", "255560000"}  # intravenous route; intravenous (qualifier)
SNOMED_ORAL = {"26643006"}
SNOMED_SC = {"34206005"}
SNOMED_IM = {"78421000"}
EXCLUDED_STATUS = {"entered-in-error", "cancelled", "not-done", "stopped"}


@dataclass(frozen=True)
class ConversionResult:
    records: tuple[PatientRecord, ...]
    report: ConversionReport


def convert_bundle_file(path: Path, key: bytes, *, extra_tables: tuple[Path, ...] = ()) -> ConversionResult:
    """Read a FHIR R4 Bundle JSON file and convert it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f"cannot read JSON: {exc}", source=str(path)) from exc
    return convert_bundle(data, key, source=str(path), tables=load_code_tables(extra_tables))


def _aware(value: dt.datetime | dt.date, notes: list[Transformation]) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value
        notes.append(Transformation(kind="timezone-assumed", detail="no time zone in source: UTC assumed"))
        return value.replace(tzinfo=dt.UTC)
    notes.append(Transformation(kind="timezone-assumed", detail="date only: 00:00 UTC assumed"))
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


class _Ctx:
    def __init__(self, key: bytes, source: str, tables: CodeTables, report: ConversionReport):
        self.key, self.source, self.tables, self.report = key, source, tables, report

    def provenance(self, rtype: str, rid: str | None, notes: list[Transformation]) -> Provenance:
        return Provenance(
            source_system=self.source, resource_type=rtype,
            resource_id=pseudonymise(self.key, rtype, rid) if rid else None,
            source_file=self.source, converter=CONVERTER, converter_version=CONVERTER_VERSION,
            transformations=(Transformation(kind="pseudonymisation", detail="resource id: keyed HMAC-SHA256"),
                             *notes),
        )


def convert_bundle(
    bundle: dict[str, Any], key: bytes, *, source: str = "<bundle>", tables: CodeTables | None = None
) -> ConversionResult:
    """Convert a Bundle (as parsed JSON) into one ``PatientRecord`` per Patient it holds."""
    report = ConversionReport()
    ctx = _Ctx(key, source, tables or load_code_tables(), report)
    entries = bundle.get("entry") or []
    try:
        Bundle.model_validate({**bundle, "entry": []})
    except ValidationError as exc:
        raise ConversionError(f"not a valid FHIR R4 Bundle: {exc.errors()[0]['msg']}", source=source) from exc

    # Pass 1: index patients (fullUrl and Type/id) so subjects resolve.
    patients: dict[str, Patient] = {}
    alias: dict[str, str] = {}
    items: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        res = e.get("resource") or {}
        if res.get("resourceType") != "Patient":
            continue
        report.read["Patient"] += 1
        try:
            fp = FhirPatient.model_validate(res)
        except ValidationError as exc:
            report.add("rejected", "Patient", _first(exc), source=source, resource_id=res.get("id"))
            continue
        p = _patient(fp, ctx)
        patients[p.id] = p
        for ref in (e.get("fullUrl"), f"Patient/{fp.id}"):
            if ref:
                alias[ref] = p.id
        report.converted["Patient"] += 1

    for e in entries:
        res = e.get("resource") or {}
        rtype = res.get("resourceType", "<none>")
        if rtype == "Patient":
            continue
        report.read[rtype] += 1
        rid = res.get("id")
        handler = _HANDLERS.get(rtype)
        if handler is None:
            report.add("skipped", rtype, "resource type not used by the patient schema",
                       source=source, resource_id=rid)
            continue
        subject = ((res.get("subject") or {}).get("reference"))
        owner = alias.get(subject or "")
        if owner is None:
            report.add("rejected", rtype, f"subject {subject!r} is not a Patient in this bundle",
                       source=source, resource_id=rid, field="subject")
            continue
        try:
            item = handler(res, ctx, entries)
        except _Reject as rej:
            report.add(rej.outcome, rtype, rej.reason, source=source, resource_id=rid, field=rej.field)
            continue
        except ValidationError as exc:
            report.add("rejected", rtype, _first(exc), source=source, resource_id=rid)
            continue
        except (SchemaError, UnitError) as exc:
            report.add("rejected", rtype, exc.message, source=source, resource_id=rid)
            continue
        kind = "doses" if isinstance(item, Dose) else "measurements"
        items[owner][kind].append(item)
        report.converted[rtype] += 1

    records = tuple(
        PatientRecord(patient=p, measurements=tuple(items[pid]["measurements"]),
                      doses=tuple(items[pid]["doses"]))
        for pid, p in patients.items()
    )
    return ConversionResult(records, report)


class _Reject(Exception):
    def __init__(self, reason: str, field: str | None = None, outcome: str = "rejected"):
        super().__init__(reason)
        self.reason, self.field, self.outcome = reason, field, outcome


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def _patient(fp: FhirPatient, ctx: _Ctx) -> Patient:
    ident = fp.identifier[0] if fp.identifier else None
    system, value = (ident.system or "", ident.value) if ident and ident.value else ("Patient", fp.id)
    return Patient(
        id=pseudonymise(ctx.key, system, str(value)),
        sex=fp.gender if fp.gender in ("male", "female", "other", "unknown") else "unknown",
        birth_date=fp.birthDate,
        provenance=ctx.provenance("Patient", fp.id, []),
    )


def _observation(res: dict[str, Any], ctx: _Ctx, entries: list[Any]) -> Measurement:
    obs = Observation.model_validate(res)
    if obs.status in EXCLUDED_STATUS:
        raise _Reject(f"status {obs.status}", "status", "skipped")
    lab = None
    for c in obs.code.coding or []:
        lab = ctx.tables.lab(c.system, c.code)
        if lab:
            break
    if lab is None:
        first = (obs.code.coding or [None])[0]
        key = f"{first.system}|{first.code}" if first else "<no coding>"
        ctx.report.unmapped_codes[key] += 1
        raise _Reject(f"unmapped code {key}", "code", "skipped")
    q = obs.valueQuantity
    if q is None or q.value is None:
        raise _Reject("no valueQuantity", "valueQuantity")
    notes: list[Transformation] = []
    when = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
    if when is None:
        raise _Reject("no effective time", "effectiveDateTime")
    time = _aware(when, notes)
    unit_in = q.code or q.unit or ""
    value_in = float(q.value)
    value = convert(value_in, unit_in, lab.unit, molar_mass=lab.molar_mass)
    if unit_in != lab.unit:
        notes.append(Transformation(kind="unit-conversion", detail=f"{unit_in} -> {lab.unit}"))
        ctx.report.unit_conversions[f"{unit_in} -> {lab.unit}"] += 1
    drug_level = None
    if lab.category == "drug-level" and lab.analyte is not None:
        below = q.comparator in ("<", "<=")
        drug_level = DrugLevel(analyte=lab.analyte, matrix=lab.matrix or "plasma",  # type: ignore[arg-type]
                               lloq=value if below else None, below_lloq=below)
    status = obs.status if obs.status in ("final", "preliminary", "amended", "corrected") else "final"
    if status == "preliminary":
        ctx.report.flags["preliminary"] += 1
    return Measurement(
        id=pseudonymise(ctx.key, "Observation", obs.id or json.dumps(res, sort_keys=True)),
        code=Coding(system="http://loinc.org", code=lab.code, display=lab.display),
        category=lab.category,  # type: ignore[arg-type]
        value=value, unit=lab.unit, original_value=value_in, original_unit=unit_in,
        time=time, status=status, drug_level=drug_level,
        provenance=ctx.provenance("Observation", obs.id, notes),
    )


def _route(codes: set[str], has_duration: bool) -> str:
    if codes & SNOMED_IV:
        return "iv-infusion" if has_duration else "iv-bolus"
    if codes & SNOMED_ORAL:
        return "oral"
    if codes & SNOMED_SC:
        return "subcutaneous"
    if codes & SNOMED_IM:
        return "intramuscular"
    return "other"


def _medication_codes(res: dict[str, Any], ma: MedicationAdministration, ctx: _Ctx) -> tuple[Coding, ...]:
    concept = ma.medicationCodeableConcept
    if concept is None and ma.medicationReference is not None:
        ref = ma.medicationReference.reference or ""
        med = next((c for c in res.get("contained", []) if ref == f"#{c.get('id')}"), None)
        concept_json = (med or {}).get("code") or {}
        codings = concept_json.get("coding") or []
    else:
        codings = [c.model_dump() for c in (concept.coding if concept else [])]
    for c in codings:
        if c.get("system") == RXNORM and c.get("code"):
            return ctx.tables.drug_codings(c["code"])
    first = codings[0] if codings else {}
    key = f"{first.get('system')}|{first.get('code')}"
    ctx.report.unmapped_codes[key] += 1
    raise _Reject(f"medication has no RxNorm code ({key})", "medication", "skipped")


def _administration(res: dict[str, Any], ctx: _Ctx, entries: list[Any]) -> Dose:
    ma = MedicationAdministration.model_validate(res)
    if ma.status in EXCLUDED_STATUS:
        raise _Reject(f"status {ma.status}", "status", "skipped")
    codes = _medication_codes(res, ma, ctx)
    dosage = ma.dosage
    if dosage is None or dosage.dose is None or dosage.dose.value is None:
        raise _Reject("no dosage.dose", "dosage.dose")
    notes: list[Transformation] = []
    if ma.effectivePeriod is not None and ma.effectivePeriod.start is not None:
        start = _aware(ma.effectivePeriod.start, notes)
        end = _aware(ma.effectivePeriod.end, notes) if ma.effectivePeriod.end else None
    elif ma.effectiveDateTime is not None:
        start, end = _aware(ma.effectiveDateTime, notes), None
    else:
        raise _Reject("no effective time", "effective[x]")
    duration = (end - start).total_seconds() / 3600.0 if end and end > start else None
    route_codes = {c.code for c in (dosage.route.coding if dosage.route else []) if c.code}
    route = _route(route_codes, duration is not None)
    unit_in = dosage.dose.code or dosage.dose.unit or ""
    amount_in = float(dosage.dose.value)
    amount = convert(amount_in, unit_in, "mg")
    if unit_in != "mg":
        notes.append(Transformation(kind="unit-conversion", detail=f"{unit_in} -> mg"))
        ctx.report.unit_conversions[f"{unit_in} -> mg"] += 1
    return Dose(
        id=pseudonymise(ctx.key, "MedicationAdministration", ma.id or json.dumps(res, sort_keys=True)),
        drug=Drug(codes=codes, name=codes[0].display),
        amount=amount, unit="mg", original_amount=amount_in, original_unit=unit_in,
        route=route,  # type: ignore[arg-type]
        start=start, duration_h=duration, status="administered",
        provenance=ctx.provenance("MedicationAdministration", ma.id, notes),
    )


_HANDLERS = {"Observation": _observation, "MedicationAdministration": _administration}
