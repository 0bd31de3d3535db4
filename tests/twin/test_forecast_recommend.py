"""Forecast intervals, dose recommendation and the FHIR export of their results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle

from interop.schema import ReferenceDose
from interop.twin import CompiledModel, LevelObservation, Twin, bind_regimen, estimate_map, simulate
from interop.twin.fhir_export import forecast_bundle, recommendation_bundle
from interop.twin.forecast import forecast
from interop.twin.recommend import RegimenOptions, Target, exposure, recommend_dose


@pytest.fixture(scope="module")
def twin(mapbayr: Callable[[str], CompiledModel]) -> Twin:
    model = mapbayr("001")
    t = bind_regimen(
        model,
        tuple(ReferenceDose(route="oral", amount=10000, time_h=24.0 * k) for k in range(3)),
        {},
        patient_id="synthetic-001",
    )
    levels = [(2.0, 95.0), (23.0, 30.0), (50.0, 120.0), (71.0, 41.0)]
    return dataclasses.replace(
        t,
        observations=tuple(
            LevelObservation(tt, "parent", v, False, None, f"m{i}") for i, (tt, v) in enumerate(levels)
        ),
    )


def test_forecast_interval_brackets_the_individual_prediction(twin: Twin) -> None:
    fit = estimate_map(twin)
    grid = np.linspace(0, 96, 97)
    fc = forecast(twin, fit, grid, n_draws=400, include_residual=False)
    assert "individual prediction" in fc.interval_kind
    ind, lo, hi = fc.individual["parent"], fc.lower["parent"], fc.upper["parent"]
    inside = (lo <= ind + 1e-9) & (ind <= hi + 1e-9)
    assert inside[1:].mean() > 0.95
    assert np.all(hi >= lo) and np.any(hi > lo)
    np.testing.assert_allclose(ind, simulate(twin, grid, fit.etas).values["parent"])
    wider = forecast(twin, fit, grid, n_draws=400)  # default: the prediction interval of a new level
    assert "new measured level" in wider.interval_kind and wider.include_residual
    assert np.mean(wider.upper["parent"][1:] - wider.lower["parent"][1:]) > np.mean(hi[1:] - lo[1:])
    np.testing.assert_allclose(wider.individual_lower["parent"], lo)  # both intervals offered, each labelled
    labels = list(wider.to_dict()["intervals"])  # type: ignore[call-overload]
    assert labels == [f"90% {fc.interval_kind}", f"90% {wider.interval_kind}"]
    bundle = Bundle.model_validate(forecast_bundle(twin, fc, step=8).model_dump(mode="json"))
    obs = [e.resource for e in bundle.entry[:-1]]
    assert len(obs) == len(range(0, 97, 8))
    patient = bundle.entry[-1]
    assert patient.resource.__resource_type__ == "Patient"
    assert all(o.subject.reference == patient.fullUrl for o in obs)  # resolves inside the Bundle
    assert all(o.code.coding[0].code == "predicted-concentration" for o in obs)  # not the drug's code
    assert all(c.code != "laboratory" for o in obs for cat in o.category for c in cat.coding)
    assert all(o.status == "preliminary" and o.valueQuantity.code == "mg/L" for o in obs)


def test_exposure_metrics() -> None:
    grid = np.linspace(0, 12, 121)
    values = np.vstack([10 * np.exp(-0.2 * grid), 5 * np.exp(-0.2 * grid)])
    assert exposure(Target("trough", 0.1, 1), grid, values) == pytest.approx(values[:, -1])
    assert exposure(Target("peak", 1, 20), grid, values) == pytest.approx([10, 5])
    auc = exposure(Target("auc", 1, 100), grid, values)  # AUC24: the 12 h interval's AUC x 24/12
    assert auc[0] == pytest.approx(2 * 50 * (1 - np.exp(-2.4)), rel=1e-3)
    assert auc[1] == pytest.approx(auc[0] / 2)
    above = exposure(Target("time_above", 10, 90, threshold=5.0), grid, values)
    assert above[0] == pytest.approx(np.log(2) / 0.2 / 12 * 100, abs=1.0) and above[1] == 0


def test_recommendation_reaches_the_target(twin: Twin) -> None:
    fit = estimate_map(twin)
    target = Target("trough", 20.0, 40.0)
    options = RegimenOptions(amounts=(2500, 5000, 7500, 10000, 15000), intervals_h=(12, 24), n_doses=6)
    rec = recommend_dose(twin, fit, target, options, n_draws=150)
    best = rec.best
    assert target.low <= best.exposure <= target.high and best.in_range
    assert 0.5 < best.probability <= 1.0
    assert len(rec.candidates) == 10
    assert rec.candidates[0].probability >= max(c.probability for c in rec.candidates) - 1e-3
    # linear kinetics: at a fixed interval the trough is affine in the dose (history adds a constant)
    per_dose = {c.amount: c.exposure for c in rec.candidates if c.interval_h == best.interval_h}
    assert per_dose[10000] - per_dose[7500] == pytest.approx(per_dose[7500] - per_dose[5000], rel=1e-6)
    assert rec.start_h == pytest.approx(max(48 + best.interval_h, 71.0))  # not before the last level
    assert sum(d.time_h >= rec.start_h for d in rec.twin.doses) == 6
    fc = forecast(rec.twin, fit, np.linspace(0, rec.start_h + 6 * best.interval_h, 100), n_draws=100)
    bundle = recommendation_bundle(rec, fc, step=20)
    request = bundle.entry[0].resource
    assert request.intent == "proposal" and request.status == "draft"
    dose = request.dosageInstruction[0]
    assert dose.doseAndRate[0].doseQuantity.value == best.amount
    assert request.subject.reference == bundle.entry[-1].fullUrl  # the reference resolves in the Bundle
    assert bundle.entry[-1].resource.__resource_type__ == "Patient"
    assert "mg/L" in request.note[0].text and "e+" not in request.note[0].text
    assert dose.timing.repeat.period == best.interval_h and dose.timing.repeat.count == 6
    assert dose.route.coding[0].code == "26643006"  # oral


def test_target_and_options_are_validated() -> None:
    with pytest.raises(ValueError):
        Target("trough", 40, 20)
    with pytest.raises(ValueError):
        Target("time_above", 50, 90)
    with pytest.raises(ValueError):
        RegimenOptions(amounts=(), intervals_h=(12,))
    with pytest.raises(ValueError):
        RegimenOptions(amounts=(100,), intervals_h=(12,), durations_h=(0,))
