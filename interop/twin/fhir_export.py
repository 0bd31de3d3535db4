"""Twin results as FHIR R4 (fhir.resources' R4B models): a MedicationRequest proposal for a
recommended regimen and Observations for predicted levels, in a collection Bundle.

Predicted levels are Observations with status ``preliminary``, a code meaning "predicted
concentration" (the analyte is in ``focus``-free text and a component, never the test code), a
category "model prediction" (not ``laboratory``), a UCUM valueQuantity and a method saying they
are model predictions, so a receiving system never mistakes them for laboratory results. Every
``subject`` points at a pseudonymous Patient entry of the same Bundle, so the reference resolves.
"""

from __future__ import annotations

import datetime as dt
import uuid

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation

from interop.schema import UCUM
from interop.twin.binding import Twin
from interop.twin.display import format_quantity
from interop.twin.forecast import Forecast
from interop.twin.recommend import Recommendation

__all__ = ["forecast_bundle", "prediction_observations", "recommendation_bundle", "regimen_request"]

SNOMED = "http://snomed.info/sct"
ROUTES = {  # SNOMED CT route of administration
    "iv-bolus": ("47625008", "Intravenous route"),
    "iv-infusion": ("47625008", "Intravenous route"),
    "oral": ("26643006", "Oral route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "inhalation": ("18679011000001101", "Inhalation"),
}
METHOD_SYSTEM = "urn:digphat:twin"
PREDICTED_CODE = {
    "system": METHOD_SYSTEM,
    "code": "predicted-concentration",
    "display": "Predicted concentration",
}
PREDICTION_CATEGORY = {"system": METHOD_SYSTEM, "code": "model-prediction", "display": "Model prediction"}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _coding(c: object) -> dict[str, object]:
    out = {"system": c.system, "code": c.code}  # type: ignore[attr-defined]
    if getattr(c, "display", None):
        out["display"] = c.display  # type: ignore[attr-defined]
    return out


def _when(twin: Twin, hours: float) -> str:
    return (twin.origin + dt.timedelta(hours=float(hours))).isoformat()


def _patient_url(twin: Twin) -> str:
    """The Bundle-local fullUrl of the twin's Patient (stable per patient id)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'digphat-twin-patient:' + twin.patient_id)}"


def _patient(twin: Twin) -> dict[str, object]:
    """A pseudonymous Patient for references to resolve to (the twin's id only, nothing else)."""
    return {"resourceType": "Patient", "id": _fhir_id(twin.patient_id)}


def _fhir_id(text: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)[:64]
    return cleaned or "patient"


def prediction_observations(twin: Twin, fc: Forecast, *, step: int = 1) -> list[Observation]:
    """One preliminary Observation per observable and grid time (every ``step``-th point)."""
    out = []
    kind = fc.interval_kind
    for o in twin.card.observables:
        analyte = o.analyte.display or o.analyte.code
        for i in range(0, len(fc.times_h), step):
            t = float(fc.times_h[i])
            comps = [
                {
                    "code": {"text": f"{int(fc.level * 100)}% {kind}, lower"},
                    "valueQuantity": {
                        "value": float(fc.lower[o.id][i]),
                        "unit": o.unit,
                        "system": UCUM,
                        "code": o.unit,
                    },
                },
                {
                    "code": {"text": f"{int(fc.level * 100)}% {kind}, upper"},
                    "valueQuantity": {
                        "value": float(fc.upper[o.id][i]),
                        "unit": o.unit,
                        "system": UCUM,
                        "code": o.unit,
                    },
                },
            ]
            out.append(
                Observation.model_validate(
                    {
                        "resourceType": "Observation",
                        "status": "preliminary",
                        "category": [{"coding": [PREDICTION_CATEGORY], "text": "model prediction"}],
                        "code": {
                            "coding": [PREDICTED_CODE],
                            "text": f"predicted {analyte} concentration ({o.id}, model {twin.card.id})",
                        },
                        "subject": {"reference": _patient_url(twin)},
                        "effectiveDateTime": _when(twin, t),
                        "valueQuantity": {
                            "value": float(fc.individual[o.id][i]),
                            "unit": o.unit,
                            "system": UCUM,
                            "code": o.unit,
                        },
                        "method": {
                            "coding": [
                                {
                                    "system": METHOD_SYSTEM,
                                    "code": "map-prediction",
                                    "display": "Model prediction (Bayesian MAP twin)",
                                }
                            ],
                            "text": f"model {twin.card.id}@{twin.card.version}",
                        },
                        "component": [
                            {
                                "code": {
                                    "coding": [
                                        _coding(o.analyte),
                                        *(_coding(c) for c in o.measurement_codes),
                                    ],
                                    "text": f"analyte predicted: {analyte}",
                                },
                                "valueString": o.id,
                            },
                            *comps,
                        ],
                    }
                )
            )
    return out


def _dose(twin: Twin, route: str, amount: float, unit: str, duration_h: float | None) -> dict[str, object]:
    out: dict[str, object] = {
        "doseQuantity": {"value": float(amount), "unit": unit, "system": UCUM, "code": unit}
    }
    if duration_h:
        out["rateQuantity"] = {
            "value": float(amount / duration_h),
            "unit": f"{unit}/h",
            "system": UCUM,
            "code": f"{unit}/h",
        }
    return out


def _dosage(
    rec: Recommendation, sequence: int, amount: float, start_h: float, count: int, text: str
) -> dict[str, object]:
    twin, best = rec.twin, rec.best
    dosage: dict[str, object] = {
        "sequence": sequence,
        "text": text,
        "timing": {
            "repeat": {
                "boundsPeriod": {"start": _when(twin, start_h)},
                "count": count,
                "frequency": 1,
                "period": float(best.interval_h),
                "periodUnit": "h",
            }
        },
        "doseAndRate": [_dose(twin, rec.route, amount, rec.amount_unit, best.duration_h)],
    }
    if rec.route in ROUTES:
        code, display = ROUTES[rec.route]
        dosage["route"] = {"coding": [{"system": SNOMED, "code": code, "display": display}]}
    return dosage


def regimen_request(rec: Recommendation) -> MedicationRequest:
    """A MedicationRequest proposal (status draft) for the recommended regimen: with a loading dose,
    two dosage instructions in sequence (the loading dose, then the maintenance doses)."""
    twin, best, unit = rec.twin, rec.best, rec.amount_unit
    over = f", infused over {format_quantity(best.duration_h, 'h')}" if best.duration_h else ""
    every = f"every {format_quantity(best.interval_h, 'h')}"
    dosages = []
    maintenance = rec.n_doses
    if best.loading_amount is not None:
        dosages.append(
            _dosage(
                rec,
                1,
                best.loading_amount,
                rec.start_h,
                1,
                f"loading dose {format_quantity(best.loading_amount, unit)}{over}",
            )
        )
        maintenance -= 1
    if maintenance > 0:
        first = rec.start_h + (rec.n_doses - maintenance) * best.interval_h
        dosages.append(
            _dosage(
                rec,
                len(dosages) + 1,
                best.amount,
                first,
                maintenance,
                f"{format_quantity(best.amount, unit)} {every}, {maintenance} doses{over}",
            )
        )
    predicted = "; ".join(
        f"{t.describe(rec.unit)}: predicted {format_quantity(e.value, t.unit(rec.unit))} "
        f"(90% {format_quantity(e.p05, '')}-{format_quantity(e.p95, t.unit(rec.unit))})"
        for t, e in zip(rec.targets, best.exposures, strict=True)
    )
    note = (
        f"Proposed by the twin of model {twin.card.id}@{twin.card.version}. {predicted}. "
        f"Probability of meeting all targets {best.probability:.0%}." + "".join(f" {n}." for n in rec.notes)
    )
    return MedicationRequest.model_validate(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "medicationCodeableConcept": {"coding": [_coding(c) for c in twin.card.drugs]},
            "subject": {"reference": _patient_url(twin)},
            "authoredOn": dt.datetime.now(dt.UTC).isoformat(),
            "dosageInstruction": dosages,
            "note": [{"text": note}],
        }
    )


def _bundle(twin: Twin, resources: list[object]) -> Bundle:
    """A collection of ``resources`` and, last, the Patient their ``subject`` references resolve to."""
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "entry": [
                *({"fullUrl": _urn(), "resource": r} for r in resources),
                {"fullUrl": _patient_url(twin), "resource": _patient(twin)},
            ],
        }
    )


def forecast_bundle(twin: Twin, fc: Forecast, *, step: int = 1) -> Bundle:
    """A collection Bundle of predicted-level Observations."""
    return _bundle(twin, list(prediction_observations(twin, fc, step=step)))


def recommendation_bundle(rec: Recommendation, fc: Forecast, *, step: int = 1) -> Bundle:
    """The MedicationRequest proposal followed by the predicted levels under it."""
    return _bundle(rec.twin, [regimen_request(rec), *prediction_observations(rec.twin, fc, step=step)])
