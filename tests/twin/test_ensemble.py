"""Many twins in one roadrunner run (N copies of the model) equal one run per twin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tellurium as te

from interop.schema import ModelCard, ReferenceDose
from interop.twin import CompiledModel, Twin, bind_regimen, load_model, simulate
from interop.twin.ensemble import simulate_ensemble
from tests.twin.test_sensitivity import ANTIMONY, card

TIMES = np.array([0.0, 0.5, 12.0, 13.0, 24.0, 30.0, 47.5, 60.0, 72.0, 5.0])  # unsorted on purpose


def test_linear_model_equals_closed_form(mapbayr) -> None:  # type: ignore[no-untyped-def]
    model = mapbayr("001")
    rng = np.random.default_rng(0)
    twins, etas = [], []
    for k in range(6):  # different regimens: number of doses, times, amounts
        doses = tuple(
            ReferenceDose(route="oral", amount=float(5000 + 1000 * k), time_h=float(t))
            for t in np.arange(0.0, 12.0 * (k + 2), 12.0 + k)
        )
        twins.append(bind_regimen(model, doses, {}, patient_id=f"s{k}"))
        etas.append(dict(zip(model.card.random_effects.etas, rng.normal(0, 0.4, 3), strict=True)))
    preds = simulate_ensemble(twins, TIMES, etas, block=4)  # two runs, the second padded
    assert len(preds) == 6
    for twin, e, p in zip(twins, etas, preds, strict=True):
        exact = simulate(twin, TIMES, e, method="linear")
        np.testing.assert_allclose(p.values["parent"], exact.values["parent"], rtol=1e-7, atol=1e-9)


@pytest.fixture(scope="module")
def mm() -> CompiledModel:
    return load_model(te.antimonyToSBML(ANTIMONY), card())


def test_ode_model_with_covariates_occasions_infusions_and_resets(mm: CompiledModel) -> None:
    twins: list[Twin] = []
    for k in range(5):
        doses = (
            ReferenceDose(route="oral", amount=300 + 50 * k, time_h=0.0),
            ReferenceDose(route="iv-infusion", amount=200, time_h=24.0 + k, duration_h=1.0 + k),
            ReferenceDose(route="oral", amount=300, time_h=48.0),
        )
        twin = bind_regimen(mm, doses, {"WT": 60.0 + 10 * k}, patient_id=f"mm{k}")
        twins.append(dataclasses.replace(twin, resets=(40.0,)) if k % 2 else twin)
    etas = [{"ETA_VMAX": 0.1 * k, "ETA_KA": -0.1 * k, "KAPPA_1": 0.2, "KAPPA_2": -0.05 * k} for k in range(5)]
    preds = simulate_ensemble(twins, TIMES, etas)
    for twin, e, p in zip(twins, etas, preds, strict=True):
        one = simulate(twin, TIMES, e, method="roadrunner")
        np.testing.assert_allclose(p.values["drug"], one.values["drug"], rtol=1e-7, atol=1e-10)
    assert preds[1].values["drug"][list(TIMES).index(47.5)] < preds[0].values["drug"][list(TIMES).index(47.5)]


def test_stiff_model_falls_back_to_bdf() -> None:
    sbml = te.antimonyToSBML(
        """
        model stiff
          compartment body = 1
          substanceOnly species A in body = 0
          substanceOnly species B in body = 0
          fast: A -> B; KF * A - KF * B
          elim: B -> ; K * B
          KF = 1e6; TVK = 0.1; ETA_K = 0
          K := TVK * exp(ETA_K)
          Cc := (A + B) / 10
        end
        """
    )
    drug = {"system": "urn:test", "code": "stiff"}
    c = ModelCard.model_validate(
        {
            "id": "stiff-test",
            "title": "stiff test model",
            "drugs": [drug],
            "institution": "test",
            "dosing": [{"route": "iv-bolus", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": drug}],
            "random_effects": {"etas": ["ETA_K"], "omega": [[0.1]]},
            "residual_error": [{"observable": "drug", "model": "proportional", "proportional_sd": 0.1}],
        }
    )
    model = load_model(sbml, c)
    dose = (ReferenceDose(route="iv-bolus", amount=100, time_h=0.0),)
    twins = [bind_regimen(model, dose, {}) for _ in range(3)]
    etas = [{"ETA_K": x} for x in (-0.2, 0.0, 0.3)]
    times = np.array([1.0, 10.0, 40.0])
    preds = simulate_ensemble(twins, times, etas)  # Adams' method gives up (CVODE logs it); BDF runs
    for e, p in zip(etas, preds, strict=True):  # A and B at equilibrium: half the amount is eliminated
        k = 0.1 * np.exp(e["ETA_K"])
        np.testing.assert_allclose(p.values["drug"], 10 * np.exp(-k / 2 * times), rtol=1e-5)


def test_bad_input(mapbayr, mm: CompiledModel) -> None:  # type: ignore[no-untyped-def]
    a = bind_regimen(mapbayr("001"), (ReferenceDose(route="oral", amount=1000, time_h=0.0),), {})
    b = bind_regimen(mm, (ReferenceDose(route="oral", amount=100, time_h=0.0),), {"WT": 70.0})
    with pytest.raises(ValueError, match="one compiled model"):
        simulate_ensemble([a, b], [1.0])
    with pytest.raises(ValueError, match="one entry"):
        simulate_ensemble([a, a], [1.0], [None])
    assert simulate_ensemble([], [1.0]) == []
