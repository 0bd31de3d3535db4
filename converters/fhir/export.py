"""``PatientRecord`` -> FHIR R4 Bundle (validated with fhir.resources' R4B models).

Resources are tagged as pseudonymised and the Patient carries its pseudonym as identifier, so
importing the Bundle again keeps every id: FHIR -> record -> FHIR -> record is lossless for the
mapped fields (codes, values and UCUM units, times, statuses, dose amounts, routes, infusion
durations and rates, repeats) and for the value and unit as first received (an extension).
A record whose dates were shifted exports every resource tagged ``date-shifted``, so importing
it again does not shift them twice and the new record says they were shifted. Provenance is
not carried back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from converters.fhir.clinical import PSEUDONYM_SYSTEM
from converters.fhir.context import DATE_SHIFT_TAG, ORIGINAL_EXT, PSEUDONYM_TAG
from interop.errors import ConversionError
from interop.schema import UCUM, Condition, Dose, Measurement, PatientRecord
from interop.schema.base import describe_validation_error

__all__ = ["export_bundle", "export_bundle_json", "is_date_shifted"]

TAG = dict(zip(("system", "code"), PSEUDONYM_TAG.split("|"), strict=True))
SHIFTED_TAG = dict(zip(("system", "code"), DATE_SHIFT_TAG.split("|"), strict=True))
SNOMED_ROUTES = {
    "iv-bolus": ("47625008", "Intravenous route"),
    "iv-infusion": ("47625008", "Intravenous route"),
    "oral": ("26643006", "Oral route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "inhalation": ("447694001", "Respiratory tract route"),
}
CATEGORY = {"vital-sign": "vital-signs", "laboratory": "laboratory", "drug-level": "laboratory"}
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL_CS = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def _urn(kind: str, item_id: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'digphat:{kind}:{item_id}')}"


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


def _meta(shifted: bool) -> dict[str, Any]:
    return {"tag": [dict(TAG), dict(SHIFTED_TAG)] if shifted else [dict(TAG)]}


def is_date_shifted(record: PatientRecord) -> bool:
    """Whether the record's dates were shifted (its Patient's provenance says so)."""
    return any(t.kind == "date-shift" for t in record.patient.provenance.transformations)


def _as_received(value: float | None, unit: str | None) -> list[dict[str, Any]]:
    if value is None:
        return []
    q: dict[str, Any] = {"value": value}
    if unit:
        q["unit"] = unit
    return [{"url": ORIGINAL_EXT, "valueQuantity": q}]


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _observation(m: Measurement, subject: str, shifted: bool) -> dict[str, Any]:
    q = _quantity(m.value, m.unit)
    if m.drug_level and m.drug_level.below_lloq:
        q["comparator"] = "<"
    res = {
        "resourceType": "Observation",
        "id": m.id,
        "meta": _meta(shifted),
        "status": m.status,
        "category": [{"coding": [{"system": OBS_CAT, "code": CATEGORY.get(m.category, "laboratory")}]}],
        "code": {"coding": [m.code.model_dump(exclude_none=True)]},
        "subject": {"reference": subject},
        "effectiveDateTime": _iso(m.time),
        "valueQuantity": q,
    }
    ext = _as_received(m.original_value, m.original_unit)
    return {**res, "extension": ext} if ext else res


def _route(d: Dose) -> dict[str, Any] | None:
    code = SNOMED_ROUTES.get(d.route)
    return (
        {"coding": [{"system": "http://snomed.info/sct", "code": code[0], "display": code[1]}]}
        if code
        else None
    )


def _timing(d: Dose) -> dict[str, Any]:
    timing: dict[str, Any] = {"event": [_iso(d.start)]}
    if d.interval_h:
        repeat: dict[str, Any] = {"frequency": 1, "period": d.interval_h, "periodUnit": "h"}
        if d.additional:
            repeat["count"] = d.additional + 1
        timing["repeat"] = repeat
    return timing


def _dose(d: Dose, subject: str, shifted: bool) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [c.model_dump(exclude_none=True) for c in d.drug.codes]}
    if d.drug.name:
        concept["text"] = d.drug.name
    route = _route(d)
    base: dict[str, Any] = {
        "id": d.id,
        "meta": _meta(shifted),
        "medicationCodeableConcept": concept,
        "subject": {"reference": subject},
    }
    ext = _as_received(d.original_amount, d.original_unit)
    if ext:
        base["extension"] = ext
    if d.status == "administered":
        dosage: dict[str, Any] = {"dose": _quantity(d.amount, d.unit)}
        if route:
            dosage["route"] = route
        res = {"resourceType": "MedicationAdministration", **base, "status": "completed", "dosage": dosage}
        if d.duration_h:
            end = d.start + dt.timedelta(hours=d.duration_h)
            res["effectivePeriod"] = {"start": _iso(d.start), "end": _iso(end)}
        else:
            res["effectiveDateTime"] = _iso(d.start)
            if d.rate:
                dosage["rateQuantity"] = _quantity(d.rate, f"{d.unit}/h")
        return res
    instruction: dict[str, Any] = {
        "timing": _timing(d),
        "doseAndRate": [{"doseQuantity": _quantity(d.amount, d.unit)}],
    }
    if route:
        instruction["route"] = route
    if d.status == "ordered":
        return {
            "resourceType": "MedicationRequest",
            **base,
            "status": "active",
            "intent": "order",
            "authoredOn": _iso(d.start),
            "dosageInstruction": [instruction],
        }
    return {
        "resourceType": "MedicationStatement",
        **base,
        "status": "completed",
        "effectiveDateTime": _iso(d.start),
        "dosage": [instruction],
    }


def _condition(c: Condition, subject: str, shifted: bool) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Condition",
        "id": c.id,
        "meta": _meta(shifted),
        "clinicalStatus": {"coding": [{"system": CLINICAL_CS, "code": c.clinical_status}]},
        "code": {"coding": [c.code.model_dump(exclude_none=True)]},
        "subject": {"reference": subject},
    }
    if c.onset:
        res["onsetDateTime"] = _iso(c.onset)
    if c.abatement:
        res["abatementDateTime"] = _iso(c.abatement)
    return res


def export_bundle(
    record: PatientRecord, bundle_type: Literal["collection", "transaction"] = "collection"
) -> dict[str, Any]:
    """The record as an R4 Bundle (JSON dict), validated with fhir.resources."""
    p = record.patient
    subject = f"Patient/{p.id}"
    shifted = is_date_shifted(record)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": p.id,
        "meta": _meta(shifted),
        "identifier": [{"system": PSEUDONYM_SYSTEM, "value": p.id}],
        "gender": p.sex,
    }
    if p.birth_date:
        patient["birthDate"] = p.birth_date.isoformat()
    resources = [
        patient,
        *(_observation(m, subject, shifted) for m in record.measurements),
        *(_dose(d, subject, shifted) for d in record.doses),
        *(_condition(c, subject, shifted) for c in record.conditions),
    ]
    entries = []
    for r in resources:
        e: dict[str, Any] = {"fullUrl": _urn(r["resourceType"], r["id"]), "resource": r}
        if bundle_type == "transaction":
            e["request"] = {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}
        entries.append(e)
    bundle = {"resourceType": "Bundle", "id": p.id, "type": bundle_type, "entry": entries}
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        raise ConversionError(
            f"exported Bundle does not validate: {describe_validation_error(exc)}", source=p.id
        ) from exc
    return bundle


def export_bundle_json(
    record: PatientRecord, bundle_type: Literal["collection", "transaction"] = "collection"
) -> str:
    import json

    return json.dumps(export_bundle(record, bundle_type), indent=1)
