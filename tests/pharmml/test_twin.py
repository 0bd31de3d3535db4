"""A converted PharmML model makes a twin from a patient record like any other model."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from interop.schema import (
    LOINC,
    RXNORM,
    Coding,
    Dose,
    Drug,
    Measurement,
    Patient,
    PatientRecord,
    Provenance,
    ReferenceDose,
)
from interop.twin import bind_patient, bind_regimen, load_model, simulate
from registry.formats.pharmml import convert
from tests.data import PHARMML_USECASE3

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
PROV = Provenance(source_system="test", converter="tests", converter_version="1")
WARFARIN = Coding(system=RXNORM, code="11289", display="warfarin")


def _record(weight_kg: float) -> PatientRecord:
    weight = Measurement(id="w", code=Coding(system=LOINC, code="29463-7"), category="vital-sign",
                         value=weight_kg * 1000, unit="g", time=T0, provenance=PROV)  # fmt: skip
    dose = Dose(id="d1", drug=Drug(codes=(WARFARIN,), name="warfarin"), amount=0.1, unit="g",
                route="oral", start=T0, status="administered", provenance=PROV)  # fmt: skip
    return PatientRecord(
        patient=Patient(id="p" * 32, sex="male", birth_date=dt.date(1960, 1, 1), provenance=PROV),
        measurements=(weight,),
        doses=(dose,),
    )


def test_patient_record_binds_weight_and_dose_through_the_card() -> None:
    conv = convert(PHARMML_USECASE3.read_bytes(), source=str(PHARMML_USECASE3), drug=WARFARIN,
                   units={"CP_obs": "mg/L", "PCA_obs": "%"})  # fmt: skip
    model = load_model(conv.sbml, conv.card)
    twin = bind_patient(model, _record(82.0))  # weight in g, dose in g: converted by the card's units
    times = np.array([2.0, 12.0, 48.0])
    pred = simulate(twin, times)
    same = simulate(bind_regimen(model, (ReferenceDose(route="oral", amount=100, time_h=0),),
                                 {"WT": 82.0}), times)  # fmt: skip
    np.testing.assert_allclose(pred.values["CP_obs"], same.values["CP_obs"], rtol=1e-12)
    assert twin.covariates["WT"].values == (82.0,)
    assert math.isclose(twin.doses[0].amount, 100.0)
