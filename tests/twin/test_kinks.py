"""Kinks: an estimated lag time with a level sampled exactly at the typical lag.

At ETA = 0 the prediction at that sample is exactly 0 (the dose has not arrived), and any shorter
lag makes it positive with a tiny residual variance: the objective has a cliff at the start, the
first optimisation does not move, and NONMEM-like single starts stop there. The estimator must
notice (no progress from the start, or a mode failing the gradient / Hessian test), restart from
prior draws and keep the lowest objective.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tellurium as te

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import LevelObservation, bind_regimen, estimate_map, load_model, simulate
from interop.twin.estimate import make_predictor
from interop.twin.objective import objective_value, residual_terms
from tests.data import mapbayr_card

LAG_MODEL = """
model lag_1cmt
  compartment body = 1
  substanceOnly species A_depot in body = 0
  substanceOnly species A_central in body = 0
  absorption: A_depot -> A_central; KA * A_depot
  elimination: A_central -> ; CL / V * A_central
  TVCL = 4; TVV = 70; TVKA = 1; TVLAG = 1
  ETA_CL = 0; ETA_V = 0; ETA_KA = 0; ETA_LAG = 0
  CL := TVCL * exp(ETA_CL); V := TVV * exp(ETA_V); KA := TVKA * exp(ETA_KA)
  ALAG := TVLAG * exp(ETA_LAG)
  Cc := A_central / V
end
"""


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    card = parse_json(ModelCard, mapbayr_card("001").read_text()).model_dump()
    card["id"] = "lag-test"
    card["dosing"][0]["lag_time_h"] = "ALAG"
    card["random_effects"]["etas"] = ["ETA_CL", "ETA_V", "ETA_KA", "ETA_LAG"]
    card["random_effects"]["omega"] = np.diag([0.2, 0.2, 0.2, 0.2]).tolist()
    return load_model(te.antimonyToSBML(LAG_MODEL), ModelCard.model_validate(card))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lag_time_kink_at_the_start_is_escaped(model, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    truth = {"ETA_CL": rng.normal(0, 0.4), "ETA_V": rng.normal(0, 0.4), "ETA_KA": 0.0, "ETA_LAG": -0.5}
    twin = bind_regimen(
        model, (ReferenceDose(route="oral", amount=10000, time_h=0.0),), {}, patient_id=f"k{seed}"
    )
    times = [1.0, 3.0, 8.0, 24.0]  # the first level at the typical lag (1 h); the true lag is 0.61 h
    clean = simulate(twin, times, truth).values["parent"]
    noisy = clean * (1 + 0.1 * rng.standard_normal(len(times)))
    twin = dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, "parent", float(v), False, None, f"m{i}")
            for i, (t, v) in enumerate(zip(times, noisy, strict=True))
        ),
    )
    assert simulate(twin, [1.0]).values["parent"][0] == 0.0  # the cliff sits at ETA = 0
    fit = estimate_map(twin, starts=1)
    predict, _ = make_predictor(twin, twin.observations)
    terms = residual_terms(model.card, twin.observations)
    omega_inv = np.linalg.inv(model.card.random_effects.omega_matrix())
    eta = np.array(list(truth.values()))
    at_truth = objective_value(terms, predict(eta), eta, omega_inv)
    assert fit.objective < at_truth  # the mode, not the start
    assert fit.starts > 1 and "restart" in fit.message
    assert fit.converged and fit.etas["ETA_LAG"] < -0.2
