"""Inter-occasion variability: an IOV parameter switched at each dosing occasion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tellurium as te

from interop.errors import TwinError
from interop.schema import ModelCard, ReferenceDose
from interop.twin import LevelObservation, bind_regimen, estimate_map, load_model, simulate

ANTIMONY = """
model iov_1cmt
  compartment body = 1
  substanceOnly species A in body = 0
  elim: A -> ; CL / V * A
  TVCL = 5; TVV = 20; ETA_CL = 0; ETA_V = 0
  IOV_CL = 0; KAPPA_CL_1 = 0; KAPPA_CL_2 = 0
  CL := TVCL * exp(ETA_CL + IOV_CL)
  V := TVV * exp(ETA_V)
  Cc := A / V
end
"""
DRUG = {"system": "urn:test", "code": "drug"}


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    card = ModelCard.model_validate(
        {
            "id": "iov-test",
            "title": "IOV test model",
            "drugs": [DRUG],
            "institution": "test",
            "dosing": [{"route": "iv-bolus", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG}],
            "random_effects": {
                "etas": ["ETA_CL", "ETA_V"],
                "omega": [[0.09, 0.0], [0.0, 0.04]],
                "occasions": [
                    {"parameter": "IOV_CL", "etas": ["KAPPA_CL_1", "KAPPA_CL_2"], "variance": 0.04}
                ],
            },
            "residual_error": [{"observable": "drug", "model": "proportional", "proportional_sd": 0.1}],
        }
    )
    return load_model(te.antimonyToSBML(ANTIMONY), card)


def regimen(model, levels):  # type: ignore[no-untyped-def]
    doses = tuple(ReferenceDose(route="iv-bolus", amount=100, time_h=t) for t in (0.0, 24.0, 48.0))
    twin = bind_regimen(model, doses, {}, patient_id="iov-subject")
    return dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, "drug", v, False, None, f"m{i}") for i, (t, v) in enumerate(levels)
        ),
    )


def test_clearance_switches_per_occasion(model) -> None:  # type: ignore[no-untyped-def]
    twin = regimen(model, [])
    etas = {"KAPPA_CL_1": 0.3, "KAPPA_CL_2": -0.4}
    times = np.array([2.0, 23.0, 26.0, 47.0, 50.0, 70.0])
    fast = simulate(twin, times, etas).values["drug"]
    slow = simulate(twin, times, etas, method="roadrunner").values["drug"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    k1, k2, k3 = 5 * np.exp(0.3) / 20, 5 * np.exp(-0.4) / 20, 5 / 20  # the third occasion has no KAPPA: 0
    c24 = 5 * np.exp(-k1 * 24)
    c48 = (c24 + 5) * np.exp(-k2 * 24)
    expected = [
        5 * np.exp(-k1 * 2),
        5 * np.exp(-k1 * 23),
        (c24 + 5) * np.exp(-k2 * 2),
        (c24 + 5) * np.exp(-k2 * 23),
        (c48 + 5) * np.exp(-k3 * 2),
        (c48 + 5) * np.exp(-k3 * 22),
    ]
    np.testing.assert_allclose(fast, expected, rtol=1e-9)


def test_map_estimates_the_occasion_effects(model) -> None:  # type: ignore[no-untyped-def]
    truth = {"ETA_CL": 0.1, "KAPPA_CL_1": 0.25, "KAPPA_CL_2": -0.25}
    times = [1.0, 12.0, 23.0, 25.0, 36.0, 47.0]
    clean = simulate(regimen(model, []), times, truth).values["drug"]
    fit = estimate_map(regimen(model, list(zip(times, clean, strict=True))), starts=2)
    assert set(fit.etas) == {"ETA_CL", "ETA_V", "KAPPA_CL_1", "KAPPA_CL_2"}
    assert fit.etas["KAPPA_CL_1"] > fit.etas["KAPPA_CL_2"] + 0.2
    assert fit.covariance.shape == (4, 4) and fit.converged
    # the occasion effects are shrunk towards 0 and the rest goes to ETA_CL: their sums are identified
    for k in (1, 2):
        assert fit.etas["ETA_CL"] + fit.etas[f"KAPPA_CL_{k}"] == pytest.approx(
            truth["ETA_CL"] + truth[f"KAPPA_CL_{k}"], abs=0.01
        )


def test_occasion_parameter_must_exist(model) -> None:  # type: ignore[no-untyped-def]
    card = model.card.replace(
        random_effects={
            **model.card.random_effects.model_dump(),
            "occasions": [{"parameter": "NOT_THERE", "etas": ["KAPPA_CL_1"], "variance": 0.04}],
        }
    )
    bad = load_model(model.sbml, card)
    with pytest.raises(TwinError, match="occasion parameter"):
        simulate(regimen(bad, []), [1.0])
