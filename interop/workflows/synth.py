"""Synthetic TDM feeds: patients with infusions, oral doses, weight, creatinine and drug levels
simulated from a model (the twin runtime) with random effects and residual error, written as
FHIR R4 transaction Bundles or as a Bulk Data export (per-type NDJSON + manifest).

Hospital TDM data is not public; these feeds drive the demo, the tests at scale and the
benchmark. Everything is drawn from one seeded generator, so a seed gives the same feed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from interop.errors import InteropError
from interop.schema import (
    LOINC,
    UCUM,
    Coding,
    Dose,
    Drug,
    Measurement,
    ModelCard,
    Patient,
    PatientRecord,
    Provenance,
    parse_json,
)
from interop.settings import Settings
from interop.twin import bind_patient, load_model, simulate
from interop.twin.model import CompiledModel

__all__ = ["SynthResult", "load_synth_model", "write_synthetic_feed"]

Format = Literal["bundle", "ndjson"]
WEIGHT, HEIGHT, CREAT = "29463-7", "8302-2", "2160-0"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
IV = {"coding": [{"system": "http://snomed.info/sct", "code": "47625008", "display": "Intravenous route"}]}
ORAL = {"coding": [{"system": "http://snomed.info/sct", "code": "26643006", "display": "Oral route"}]}
AZITHRO = {
    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "code": "18631",
    "display": "azithromycin",
}
ORIGIN = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
_PROV = Provenance(source_system="synth", converter="interop.workflows.synth", converter_version="1")


@dataclass(frozen=True)
class SynthResult:
    out: Path
    format: Format
    patients: int
    resources: int
    files: tuple[Path, ...]
    model: str


def load_synth_model(settings: Settings, model_ref: str | None) -> tuple[str, ModelCard, str]:
    """(SBML, card, label): the bundled gentamicin model, or ``ID[@VERSION]`` from the registry."""
    if model_ref is None:
        data = files("interop").joinpath("data", "models")
        card = parse_json(ModelCard, data.joinpath("gentamicin_1cmt.card.json").read_text())
        return data.joinpath("gentamicin_1cmt.xml").read_text(), card, f"{card.id}@{card.version} (bundled)"
    from interop.schema.model_id import parse_model_ref
    from interop.workflows.registry_session import registry_session

    model_id, version = parse_model_ref(model_ref)
    with registry_session(settings) as reg:
        stored = reg.get(model_id, version)
    return stored.sbml, stored.card, f"{stored.model_id}@{stored.version}"


def _id(rng: np.random.Generator) -> str:
    return str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)), version=4))


def _qty(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(float(value), 4), "unit": unit, "system": UCUM, "code": unit}


class _Patient:
    """One synthetic patient's resources, references written for a Bundle or for NDJSON."""

    def __init__(self, n: int, rng: np.random.Generator, model: CompiledModel, days: int, bundle: bool):
        self.rng, self.bundle = rng, bundle
        self.resources: list[dict[str, Any]] = []
        self.full_urls: list[str] = []
        card = model.card
        sex = "female" if rng.random() < 0.5 else "male"
        age = int(rng.integers(20, 90))
        wt = float(np.clip(rng.normal(75 if sex == "male" else 65, 12), 40, 140))
        scr = float(np.clip(rng.lognormal(np.log(1.0), 0.35), 0.4, 4.0))
        start = ORIGIN + dt.timedelta(days=int(rng.integers(0, 300)), minutes=int(rng.integers(0, 600)))
        self.pref = self._add(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:oid:2.999.1.1.1", "value": f"SYN-{n:07d}"}],
                "gender": sex,
                "birthDate": (start.date() - dt.timedelta(days=int(age * 365.25))).isoformat(),
            }
        )
        self.enc = self._add(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": self.pref},
                "period": {"start": start.isoformat(), "end": (start + dt.timedelta(days=days)).isoformat()},
            }
        )
        drug = [c.model_dump(exclude_none=True) for c in card.drugs]
        route = "iv-infusion" if card.dosing_for("iv-infusion") else card.dosing[0].route
        unit = card.dosing_for(route)[0].amount_unit
        per_kg = 5.0 if unit == "mg" else 1.0
        amount = max(10.0, round(per_kg * wt / 10.0) * 10.0)
        interval_h, inf_h = 24.0, 0.5
        doses, dose_res = [], []
        for k in range(days):
            t = start + dt.timedelta(hours=k * interval_h, minutes=int(rng.integers(-20, 20)))
            doses.append(
                Dose(
                    id=f"d{k}",
                    drug=Drug(codes=card.drugs),
                    amount=amount,
                    unit=unit,
                    route=route,
                    start=t,
                    duration_h=inf_h if route == "iv-infusion" else None,
                    status="administered",
                    provenance=_PROV,
                )
            )
            eff = (
                {
                    "effectivePeriod": {
                        "start": t.isoformat(),
                        "end": (t + dt.timedelta(hours=inf_h)).isoformat(),
                    }
                }
                if route == "iv-infusion"
                else {"effectiveDateTime": t.isoformat()}
            )
            dose_res.append(
                {
                    "resourceType": "MedicationAdministration",
                    "status": "completed",
                    "medicationCodeableConcept": {"coding": drug},
                    "subject": {"reference": self.pref},
                    "context": {"reference": self.enc},
                    **eff,
                    "dosage": {"route": IV if route.startswith("iv") else ORAL, "dose": _qty(amount, unit)},
                }
            )
        self._add(
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "medicationCodeableConcept": {"coding": drug},
                "subject": {"reference": self.pref},
                "authoredOn": start.isoformat(),
                "dosageInstruction": [
                    {
                        "timing": {
                            "event": [start.isoformat()],
                            "repeat": {
                                "frequency": 1,
                                "period": interval_h,
                                "periodUnit": "h",
                                "count": days,
                            },
                        },
                        "route": IV,
                        "doseAndRate": [{"doseQuantity": _qty(amount, unit)}],
                    }
                ],
            }
        )
        for r in dose_res:
            self._add(r)
        # an oral co-medication in tablets, resolved through the Medication's strength
        tab_t = start + dt.timedelta(hours=2)
        self._add(
            {
                "resourceType": "MedicationAdministration",
                "status": "completed",
                "contained": [
                    {
                        "resourceType": "Medication",
                        "id": "azi",
                        "code": {"coding": [AZITHRO]},
                        "ingredient": [
                            {
                                "itemCodeableConcept": {"coding": [AZITHRO]},
                                "strength": {
                                    "numerator": _qty(250, "mg"),
                                    "denominator": {
                                        "value": 1,
                                        "unit": "TAB",
                                        "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                                        "code": "TAB",
                                    },
                                },
                            }
                        ],
                    }
                ],
                "medicationReference": {"reference": "#azi"},
                "subject": {"reference": self.pref},
                "effectiveDateTime": tab_t.isoformat(),
                "dosage": {
                    "route": ORAL,
                    "dose": {
                        "value": 2,
                        "unit": "TAB",
                        "code": "TAB",
                        "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                    },
                },
            }
        )
        # covariates: weight (sometimes in pounds), height, creatinine daily (sometimes in umol/L)
        lb = rng.random() < 0.2
        self._obs(
            WEIGHT,
            "Body weight",
            "vital-signs",
            start - dt.timedelta(hours=1),
            _qty(wt / 0.45359237, "[lb_av]") if lb else _qty(wt, "kg"),
        )
        self._obs(
            HEIGHT,
            "Body height",
            "vital-signs",
            start - dt.timedelta(hours=1),
            _qty(rng.normal(172 if sex == "male" else 162, 8), "cm"),
        )
        measurements = [
            Measurement(
                id="wt",
                code=Coding(system=LOINC, code=WEIGHT),
                category="vital-sign",
                value=wt,
                unit="kg",
                time=start - dt.timedelta(hours=1),
                provenance=_PROV,
            )
        ]
        umol = rng.random() < 0.3
        for k in range(days):
            t = start + dt.timedelta(hours=k * 24 - 2)
            s = float(np.clip(scr * rng.lognormal(0, 0.08), 0.3, 5.0))
            measurements.append(
                Measurement(
                    id=f"scr{k}",
                    code=Coding(system=LOINC, code=CREAT),
                    category="laboratory",
                    value=s,
                    unit="mg/dL",
                    time=t,
                    provenance=_PROV,
                )
            )
            self._obs(
                CREAT,
                "Creatinine [Mass/volume] in Serum or Plasma",
                "laboratory",
                t,
                _qty(s * 88.4016973125884, "umol/L") if umol else _qty(s, "mg/dL"),
            )
        # drug levels: a peak 1 h after the end of each infusion and a trough before the next dose
        twin = bind_patient(
            model,
            PatientRecord(
                patient=Patient(id="synthetic", sex=sex, age_years=age, provenance=_PROV),
                measurements=tuple(measurements),
                doses=tuple(doses),
            ),
        )
        times = sorted(
            {d.start + dt.timedelta(hours=inf_h + 1) for d in doses}
            | {d.start - dt.timedelta(minutes=30) for d in doses[1:]}
        )
        re = card.random_effects
        etas = (
            dict(
                zip(re.etas, rng.multivariate_normal(np.zeros(len(re.etas)), re.omega_matrix()), strict=True)
            )
            if re.etas
            else {}
        )
        obs = card.observables[0]
        simulated = simulate(twin, [twin.hours(t) for t in times], etas=etas)
        pred = simulated.values[obs.id]
        err = card.error_for(obs.id)
        if err is not None and err.form not in ("additive", "proportional", "combined", "combined-variance"):
            levels = err.observe(pred, rng.standard_normal(len(pred)), simulated.sds.get(obs.id))
            pred = np.asarray(levels)
            err = None  # drawn already, by the card's form
        code = obs.measurement_codes[0] if obs.measurement_codes else None
        lloq = 0.3
        for t, f in zip(times, pred, strict=True):
            y = float(f)
            if err is not None:
                y = y * (1 + rng.normal(0, err.proportional_sd or 0)) + rng.normal(0, err.additive_sd or 0)
            spec = self._add(
                {
                    "resourceType": "Specimen",
                    "subject": {"reference": self.pref},
                    "collection": {"collectedDateTime": t.isoformat()},
                }
            )
            q = _qty(max(y, lloq), obs.unit)
            if y < lloq:
                q["comparator"] = "<"
            if code is not None:
                self._obs(
                    code.code,
                    code.display or obs.id,
                    "laboratory",
                    t + dt.timedelta(minutes=5),
                    q,
                    specimen=spec,
                )

    def _ref(self, res: dict[str, Any]) -> str:
        return self.full_urls[-1] if self.bundle else f"{res['resourceType']}/{res['id']}"

    def _add(self, res: dict[str, Any]) -> str:
        res["id"] = _id(self.rng)
        self.resources.append(res)
        self.full_urls.append(f"urn:uuid:{res['id']}")
        return self._ref(res)

    def _obs(
        self,
        code: str,
        display: str,
        cat: str,
        t: dt.datetime,
        q: dict[str, Any],
        specimen: str | None = None,
    ) -> None:
        res: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": OBS_CAT, "code": cat}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": self.pref},
            "encounter": {"reference": self.enc},
            "effectiveDateTime": t.isoformat(),
            "valueQuantity": q,
        }
        if specimen:
            res["specimen"] = {"reference": specimen}
        self._add(res)


def _patients(n: int, sbml: str, card: ModelCard, days: int, seed: int, bundle: bool) -> Iterator[_Patient]:
    model = load_model(sbml, card)
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield _Patient(i, rng, model, days, bundle)


def write_synthetic_feed(
    out: Path,
    n: int,
    *,
    sbml: str,
    card: ModelCard,
    label: str,
    fmt: Format = "bundle",
    days: int = 3,
    seed: int = 1,
    gzip_ndjson: bool = False,
    on_patient: Any = None,
) -> SynthResult:
    """Write ``n`` synthetic patients to ``out`` as Bundles (one per patient) or a Bulk export."""
    if n < 1 or days < 1:
        raise InteropError("--n and --days must be at least 1")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    count = 0
    if fmt == "bundle":
        for i, p in enumerate(_patients(n, sbml, card, days, seed, bundle=True)):
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"fullUrl": u, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
                    for u, r in zip(p.full_urls, p.resources, strict=True)
                ],
            }
            path = out / f"patient-{i:06d}.json"
            path.write_text(json.dumps(bundle), encoding="utf-8")
            written.append(path)
            count += len(p.resources)
            if on_patient:
                on_patient()
        return SynthResult(out, fmt, n, count, tuple(written), label)
    handles: dict[str, IO[str]] = {}
    counts: dict[str, int] = {}
    try:
        for p in _patients(n, sbml, card, days, seed, bundle=False):
            for r in p.resources:
                t = r["resourceType"]
                if t not in handles:
                    name = f"{t}.ndjson" + (".gz" if gzip_ndjson else "")
                    handles[t] = (
                        gzip.open(out / name, "wt", encoding="utf-8")
                        if gzip_ndjson
                        else (out / name).open("w", encoding="utf-8")
                    )
                    counts[t] = 0
                handles[t].write(json.dumps(r) + "\n")
                counts[t] += 1
                count += 1
            if on_patient:
                on_patient()
    finally:
        for h in handles.values():
            h.close()
    suffix = ".ndjson.gz" if gzip_ndjson else ".ndjson"
    manifest = {
        "transactionTime": dt.datetime.now(dt.UTC).isoformat(),
        "request": f"synth:{label}",
        "requiresAccessToken": False,
        "output": [{"type": t, "url": f"{t}{suffix}", "count": c} for t, c in counts.items()],
        "error": [],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    written = [out / "manifest.json", *(out / f"{t}{suffix}" for t in counts)]
    return SynthResult(out, fmt, n, count, tuple(written), label)
