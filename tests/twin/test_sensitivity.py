"""Exact MAP gradients on ODE models: forward sensitivities against differences of plain runs."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
import tellurium as te

from converters.nonmem import read_event_table
from interop.schema import ModelCard, ReferenceDose
from interop.twin import (
    CompiledModel,
    LevelObservation,
    Twin,
    bind_patient,
    bind_regimen,
    estimate_map,
    load_model,
    simulate,
)
from interop.twin.estimate import make_predictor
from interop.twin.linear import linear_system
from interop.twin.objective import ResidualTerms, numeric_jacobian, objective_gradient, objective_value
from interop.twin.sensitivity import SensitivityPredictor, sensitivity_model
from interop.workflows.twin import event_table_mapping
from tests.data import MAPBAYR_MODELS, mapbayr_data

DRUG = {"system": "urn:test", "code": "drug"}
# Michaelis-Menten elimination (written with abs and max: their derivatives are sign and a step)
# from a concentration species (rates divided by the volume),
# first-order absorption, an allometric covariate, a piecewise (time-dependent) absorption and
# inter-occasion variability on VMAX.
ANTIMONY = """
model mm_iov
  compartment central = 30
  compartment gut = 1
  substanceOnly species A_depot in gut = 0
  species C in central = 0
  absorption: A_depot -> C; KA * A_depot
  elimination: C -> ; VMAX * abs(C) / (KM + max(C, 0))
  TVVMAX = 40; KM = 3; TVKA = 0.8; WT = 70
  ETA_VMAX = 0; ETA_KA = 0; IOV_VMAX = 0; KAPPA_1 = 0; KAPPA_2 = 0
  VMAX := TVVMAX * (WT / 70)^0.75 * exp(ETA_VMAX + IOV_VMAX)
  KA := piecewise(TVKA * exp(ETA_KA), time < 100, 2 * TVKA * exp(ETA_KA))
  Cc := C
end
"""


def card(**random_effects: object) -> ModelCard:
    return ModelCard.model_validate(
        {
            "id": "mm-iov-test",
            "title": "MM IOV test model",
            "drugs": [DRUG],
            "institution": "test",
            "dosing": [{"route": "oral", "target": "A_depot"}, {"route": "iv-infusion", "target": "C"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG}],
            "covariates": [
                {
                    "name": "WT",
                    "source": {
                        "measurement": {"system": "http://loinc.org", "code": "29463-7"},
                        "unit": "kg",
                    },
                    "reference": 70,
                }
            ],
            "random_effects": {
                "etas": ["ETA_VMAX", "ETA_KA"],
                "omega": [[0.09, 0.01], [0.01, 0.16]],
                "occasions": [{"parameter": "IOV_VMAX", "etas": ["KAPPA_1", "KAPPA_2"], "variance": 0.04}],
                **random_effects,
            },
            "residual_error": [
                {"observable": "drug", "model": "combined", "additive_sd": 0.05, "proportional_sd": 0.1}
            ],
        }
    )


DOSES = (
    ReferenceDose(route="oral", amount=300, time_h=0.0),
    ReferenceDose(route="iv-infusion", amount=200, time_h=24.0, duration_h=2.0),
    ReferenceDose(route="oral", amount=300, time_h=48.0),
)
TIMES = [1.0, 6.0, 24.0, 25.0, 30.0, 48.0, 50.0, 60.0]  # 24 and 48: at dose times (before the dose)
NAMES = ["ETA_VMAX", "ETA_KA", "KAPPA_1", "KAPPA_2"]


@pytest.fixture(scope="module")
def twin() -> Twin:
    model = load_model(te.antimonyToSBML(ANTIMONY), card())
    assert linear_system(model) is None
    return with_levels(bind_regimen(model, DOSES, {"WT": 85.0}, patient_id="mm-iov"), TIMES)


def with_levels(twin: Twin, times: list[float]) -> Twin:
    truth = dict(zip(NAMES, [-0.3, 0.2, 0.15, -0.1], strict=True))
    y = simulate(twin, times, truth).values["drug"]
    levels = tuple(
        LevelObservation(t, "drug", float(v), False, None, f"m{i}")
        for i, (t, v) in enumerate(zip(times, y, strict=True))
    )
    return dataclasses.replace(twin, observations=levels)


def differences(twin: Twin, eta: np.ndarray, h: float = 1e-3) -> np.ndarray:
    """Central differences; h balances truncation (~h^2) against solver noise (~1e-10 f / h)."""
    f, _ = make_predictor(twin, twin.observations)  # plain roadrunner runs at the model's tolerances
    return np.column_stack([(f(eta + h * e) - f(eta - h * e)) / (2 * h) for e in np.eye(len(eta))])


def test_jacobian_equals_differences(twin: Twin) -> None:
    sens = sensitivity_model(twin.model)
    assert sens is not None and sens.columns == tuple(NAMES)
    predictor = SensitivityPredictor(sens, twin, twin.observations)
    rng = np.random.default_rng(3)
    for _ in range(3):
        eta = rng.normal(0, 0.3, len(NAMES))
        f, J = predictor(eta)
        plain, _ = make_predictor(twin, twin.observations)
        # relative to SENS_RTOL's global error, and absolute to the run's tolerance (scaled to the
        # dose: a trough of 1e-7 of the peak is resolved to that, not to its own relative tolerance)
        np.testing.assert_allclose(f, plain(eta), rtol=1e-5, atol=1e-8 * np.abs(f).max())
        np.testing.assert_allclose(J, differences(twin, eta), rtol=1e-5, atol=1e-6 * np.abs(J).max())
        # an occasion ETA moves only the levels of its occasion and after (dose groups: 0, 24, 48 h)
        times = np.array(TIMES)
        assert np.all(J[times <= 24.0, 3] == 0) and np.all(J[times <= 0.0, 2] == 0)
        assert np.all(np.abs(J[(times > 24) & (times <= 48), 3]) > 0)


def test_state_resets_restart_the_sensitivities(twin: Twin) -> None:
    reset = dataclasses.replace(twin, resets=(30.0,))
    sens = sensitivity_model(twin.model)
    assert sens is not None
    eta = np.array([0.1, -0.2, 0.05, 0.2])
    f, J = SensitivityPredictor(sens, reset, reset.observations)(eta)
    np.testing.assert_allclose(J, differences(reset, eta), rtol=1e-5, atol=1e-6 * np.abs(J).max())
    plain, _ = make_predictor(reset, reset.observations)
    np.testing.assert_allclose(f, plain(eta), rtol=1e-5)  # SENS_RTOL's global error over 4 doses


def test_map_with_sensitivities_equals_map_with_differences(twin: Twin) -> None:
    exact = estimate_map(twin, starts=1)
    plain, _ = make_predictor(twin, twin.observations)
    by_differences = estimate_map(twin, starts=1, predictor=plain)
    assert exact.converged and by_differences.converged
    for name in NAMES:
        assert abs(exact.etas[name] - by_differences.etas[name]) < 1e-4
    assert abs(exact.objective - by_differences.objective) < 1e-6
    assert exact.n_evaluations < by_differences.n_evaluations / 3  # one run per gradient, not 2n+1
    np.testing.assert_allclose(exact.covariance, by_differences.covariance, rtol=1e-3)


def test_eta_dependent_lag_falls_back_to_differences() -> None:
    sbml = te.antimonyToSBML(ANTIMONY.replace("Cc := C", "Cc := C\n  ALAG := 0.5 * exp(ETA_KA)"))
    c = card()
    c = c.model_copy(update={"dosing": (c.dosing[0].model_copy(update={"lag_time_h": "ALAG"}), c.dosing[1])})
    model = load_model(sbml, c)
    assert sensitivity_model(model) is None  # a dose time that moves with an ETA: not covered
    fitted = with_levels(bind_regimen(model, DOSES, {"WT": 85.0}), TIMES)
    fit = estimate_map(fitted, starts=1)
    assert fit.converged and abs(fit.etas["ETA_VMAX"] + 0.3) < 0.2


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 4, 5, 6])
def test_objective_gradient_equals_differences(kind: int) -> None:
    rng = np.random.default_rng(kind)
    n, k = 6, 3
    A = rng.normal(size=(n, k))
    f0 = np.abs(rng.normal(5, 1, n))
    sbml = kind == 6  # the SDs are simulated outputs after the levels, depending on the ETAs too

    def f(eta: np.ndarray) -> np.ndarray:
        pred = f0 * np.exp(0.3 * A @ eta)
        return np.concatenate([pred, 0.5 + 0.1 * pred * np.exp(0.2 * eta[0])]) if sbml else pred

    blq = np.array([False] * 4 + [True] * 2)  # two levels below the limit (M3)
    terms = ResidualTerms(
        np.abs(rng.normal(5, 1, n)),
        np.full(n, kind),
        np.full(n, np.sqrt(0.3)),
        np.full(n, 0.2),
        np.full(n, 0.7),
        blq,
        np.where(blq, 4.0, np.nan),
        n + np.arange(n) if sbml else np.full(n, -1),
        np.full(n, kind == 3),
    )
    omega_inv = np.linalg.inv(np.diag([0.1, 0.2, 0.3]))
    eta = rng.normal(0, 0.3, k)
    g = objective_gradient(terms, f(eta), numeric_jacobian(f, eta, 1e-6), eta, omega_inv)
    h = 1e-6
    numeric = [
        (
            objective_value(terms, f(eta + h * e), eta + h * e, omega_inv)
            - objective_value(terms, f(eta - h * e), eta - h * e, omega_inv)
        )
        / (2 * h)
        for e in np.eye(k)
    ]
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", MAPBAYR_MODELS)
def test_jacobian_equals_closed_form_on_mapbayr_models(
    name: str, mapbayr: Callable[[str], CompiledModel]
) -> None:
    """On the shared linear models the closed-form path differentiates exactly: the reference."""
    model = mapbayr(name)
    sens = sensitivity_model(model)
    if sens is None:  # 006: the zero-order input's duration depends on an ETA (a kink): differences
        assert any(isinstance(d.duration_parameter, str) for d in model.card.dosing)
        return
    records = read_event_table(
        mapbayr_data(name), event_table_mapping(model.card), ignore=("s2_sampling",)
    ).records
    rng = np.random.default_rng(11)
    for record in records[:3]:
        twin = bind_patient(model, record)
        exact, is_linear = make_predictor(twin, twin.observations)
        assert is_linear
        eta = rng.normal(0, 0.3, len(sens.columns))
        f, J = SensitivityPredictor(sens, twin, twin.observations)(eta)
        h = 1e-6
        ref = np.column_stack([(exact(eta + h * e) - exact(eta - h * e)) / (2 * h) for e in np.eye(len(eta))])
        np.testing.assert_allclose(f, exact(eta), rtol=1e-6)
        np.testing.assert_allclose(J, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
