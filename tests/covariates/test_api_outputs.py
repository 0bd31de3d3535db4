"""The API response and the fit JSON say which covariates were bound, from which records, which
fell back to the reference, and warn about values outside the validity range."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from interop.api.twin import make_router
from interop.schema import ModelCard, PatientRecord, parse_json
from interop.workflows.twin import fit_patient
from tests.covariates.records import WT, gentamicin_dose, level, measurement, record
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML

CARD = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
SBML = GENTAMICIN_SBML.read_text()


def patient(weight: float) -> PatientRecord:
    # no creatinine: the card allows its reference (1.0 mg/dL); weight outside [40, 120] warns
    return record(
        measurements=(measurement("w1", WT, weight, "kg", -1), level("l1", 8.0, 1.0), level("l2", 1.0, 20.0)),
        doses=(gentamicin_dose("d1", 0, 300),),
    )


def test_api_reports_bindings_fallbacks_and_range_warnings() -> None:
    app = FastAPI()
    app.include_router(make_router(lambda _id, _v: (SBML, CARD), lambda: None))
    with TestClient(app) as client:
        r = client.post(
            "/twin/fit",
            json={"model": "gentamicin-1cmt", "patient": json.loads(patient(130).model_dump_json())},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["fell_back_to_reference"] == ["SCR"]
    cov = {c["name"]: c for c in body["covariates"]}
    assert cov["SCR"]["fell_back_to_reference"] and cov["SCR"]["value_at_origin"] == 1.0
    assert cov["WT"]["records"] == ["w1"] and cov["WT"]["value_at_origin"] == 130
    assert "converters.fhir" in cov["WT"]["provenance"][0]
    assert any(w.startswith("WT: 130 outside") for w in body["warnings"])
    assert any(w.startswith("SCR: reference value used") for w in body["warnings"])


def test_fit_json_reports_the_same(tmp_path: Path) -> None:
    out = fit_patient(SBML, CARD, patient(70), tmp_path, starts=1)
    assert out.json_path is not None
    body = json.loads(out.json_path.read_text())
    assert body["fell_back_to_reference"] == ["SCR"]
    assert body["warnings"] == [
        "SCR: reference value used (no Creatinine [Mass/volume] in Serum or Plasma measurement)"
    ]
    assert {c["name"] for c in body["covariates"]} == {"WT", "SCR", "AGE", "SEX"}
