"""Twin results as FHIR R4 (fhir.resources' R4B models): a MedicationRequest proposal for a
recommended regimen and Observations for predicted levels, in a collection Bundle.

Predicted levels are Observations with status ``preliminary``, the analyte code of the
observable, a UCUM valueQuantity and a method saying they are model predictions (not
measurements), so a receiving system never mistakes them for laboratory results.
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.observation import Observation

from interop.schema import UCUM
from interop.twin.binding import Twin
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


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _coding(c: object) -> dict[str, object]:
    out = {"system": c.system, "code": c.code}  # type: ignore[attr-defined]
    if getattr(c, "display", None):
        out["display"] = c.display  # type: ignore[attr-defined]
    return out


def _when(twin: Twin, hours: float) -> str:
    return (twin.origin + dt.timedelta(hours=float(hours))).isoformat()


def prediction_observations(twin: Twin, fc: Forecast, *, step: int = 1) -> list[Observation]:
    """One preliminary Observation per observable and grid time (every ``step``-th point)."""
    out = []
    for o in twin.card.observables:
        codes = [_coding(o.analyte), *(_coding(c) for c in o.measurement_codes)]
        for i in range(0, len(fc.times_h), step):
            t = float(fc.times_h[i])
            comps = [
                {
                    "code": {"text": f"{int(fc.level * 100)}% prediction interval, lower"},
                    "valueQuantity": {
                        "value": float(fc.lower[o.id][i]),
                        "unit": o.unit,
                        "system": UCUM,
                        "code": o.unit,
                    },
                },
                {
                    "code": {"text": f"{int(fc.level * 100)}% prediction interval, upper"},
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
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "laboratory",
                                    }
                                ]
                            }
                        ],
                        "code": {"coding": codes, "text": f"predicted {o.id} ({twin.card.id})"},
                        "subject": {"reference": f"Patient/{twin.patient_id}"},
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
                        "component": comps,
                    }
                )
            )
    return out


def regimen_request(rec: Recommendation) -> MedicationRequest:
    """A MedicationRequest proposal (status draft) for the recommended regimen."""
    twin = rec.twin
    unit = next(d.amount_unit for d in twin.card.dosing if d.route == rec.route)
    dosage: dict[str, object] = {
        "text": f"{rec.best.amount:g} {unit} every {rec.best.interval_h:g} h, {rec.n_doses} doses"
        + (f", infused over {rec.best.duration_h:g} h" if rec.best.duration_h else ""),
        "timing": {
            "repeat": {
                "boundsPeriod": {"start": _when(twin, rec.start_h)},
                "count": rec.n_doses,
                "frequency": 1,
                "period": float(rec.best.interval_h),
                "periodUnit": "h",
            }
        },
        "doseAndRate": [
            {"doseQuantity": {"value": float(rec.best.amount), "unit": unit, "system": UCUM, "code": unit}}
        ],
    }
    if rec.route in ROUTES:
        code, display = ROUTES[rec.route]
        dosage["route"] = {"coding": [{"system": SNOMED, "code": code, "display": display}]}
    if rec.best.duration_h:
        dosage["doseAndRate"][0]["rateQuantity"] = {  # type: ignore[index]
            "value": float(rec.best.amount / rec.best.duration_h),
            "unit": f"{unit}/h",
            "system": UCUM,
            "code": f"{unit}/h",
        }
    t = rec.target
    note = (
        f"Proposed by the twin of model {twin.card.id}@{twin.card.version}: target {t.kind} "
        f"{t.low:g}-{t.high:g}; predicted {rec.best.exposure:.4g} (90% {rec.best.exposure_p05:.4g}-"
        f"{rec.best.exposure_p95:.4g}); probability of target attainment {rec.best.probability:.0%}."
    )
    return MedicationRequest.model_validate(
        {
            "resourceType": "MedicationRequest",
            "status": "draft",
            "intent": "proposal",
            "medicationCodeableConcept": {"coding": [_coding(c) for c in twin.card.drugs]},
            "subject": {"reference": f"Patient/{twin.patient_id}"},
            "authoredOn": dt.datetime.now(dt.UTC).isoformat(),
            "dosageInstruction": [dosage],
            "note": [{"text": note}],
        }
    )


def _bundle(resources: list[object]) -> Bundle:
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "entry": [{"fullUrl": _urn(), "resource": r} for r in resources],
        }
    )


def forecast_bundle(twin: Twin, fc: Forecast, *, step: int = 1) -> Bundle:
    """A collection Bundle of predicted-level Observations."""
    return _bundle(list(prediction_observations(twin, fc, step=step)))


def recommendation_bundle(rec: Recommendation, fc: Forecast, *, step: int = 1) -> Bundle:
    """The MedicationRequest proposal followed by the predicted levels under it."""
    keep = np.asarray(fc.times_h) >= 0
    del keep
    return _bundle([regimen_request(rec), *prediction_observations(rec.twin, fc, step=step)])
