"""$ERROR W forms onto the card: power, SDs that add, and an SD the twin simulates (sbml form)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import minimize

from interop.schema import ReferenceDose
from interop.twin import LevelObservation, estimate_map, load_model
from interop.twin.binding import bind_regimen
from interop.twin.linear import linear_system
from interop.twin.simulate import simulate
from registry.formats.nonmem import convert
from tests.nonmem_import import streams


def test_a_power_w_is_the_power_form() -> None:
    err = convert(streams.POWER_W.encode(), source="power.mod").card.residual_error[0]
    assert (err.model, err.exponent) == ("power", pytest.approx(0.7))
    assert (err.additive_sd, err.proportional_sd) == (pytest.approx(0.2), pytest.approx(0.15))


def test_sds_that_add_are_combined_sd() -> None:
    err = convert(streams.SD_SUM_W.encode(), source="sum.mod").card.residual_error[0]
    assert err.model == "combined-sd"
    assert (err.additive_sd, err.proportional_sd) == (pytest.approx(0.2), pytest.approx(0.15))


def test_a_w_using_a_covariate_is_an_sd_the_twin_simulates() -> None:
    conv = convert(streams.COVARIATE_W.encode(), source="cov.mod")
    err = conv.card.residual_error[0]
    assert err.model == "sbml" and err.sd_parameter is not None
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route="iv-bolus", amount=100, time_h=0),), {"WT": 90.0})
    times = np.array([0.5, 2.0, 8.0])
    pred = simulate(twin, times)
    obs = conv.card.observables[0].id
    cl, v = 5 * (90 / 70) ** 0.75, 40
    conc = 100 / v * np.exp(-cl / v * times)
    np.testing.assert_allclose(pred.values[obs], conc, rtol=1e-6)
    expected = np.sqrt((0.2 * 90 / 70) ** 2 + (0.15 * conc) ** 2)
    np.testing.assert_allclose(pred.sds[obs], expected, rtol=1e-6)


def test_map_with_a_power_w_on_the_closed_form_path_equals_an_independent_likelihood() -> None:
    conv = convert(streams.POWER_W.encode(), source="power.mod")
    model = load_model(conv.sbml, conv.card)
    assert linear_system(model) is not None  # the power form keeps the closed-form path
    obs = conv.card.observables[0].id
    levels = [(0.5, 2.9), (2.0, 2.1), (6.0, 1.2), (12.0, 0.55)]
    twin = bind_regimen(model, (ReferenceDose(route="iv-bolus", amount=100, time_h=0),), {"WT": 80.0})
    twin = dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, obs, y, False, None, f"m{i}") for i, (t, y) in enumerate(levels)
        ),
    )
    fit = estimate_map(twin)
    t, y = np.array(levels).T
    omega_inv = np.linalg.inv(np.array([[0.09, 0.01], [0.01, 0.04]]))

    def objective(eta: np.ndarray) -> float:
        cl, v = 5 * (80 / 70) ** 0.75 * np.exp(eta[0]), 40 * np.exp(eta[1])
        c = 100 / v * np.exp(-cl / v * t)
        var = 0.2**2 + (0.15 * c**0.7) ** 2
        return float(np.sum(np.log(var) + (y - c) ** 2 / var) + eta @ omega_inv @ eta)

    hand = minimize(objective, np.zeros(2), method="BFGS", options={"gtol": 1e-10})
    mode = np.array([fit.etas[e] for e in conv.card.random_effects.etas])
    assert fit.converged
    np.testing.assert_allclose(mode, hand.x, atol=1e-6)
    assert fit.objective == pytest.approx(hand.fun, rel=1e-9)


def test_a_log_scale_sd_using_a_covariate_is_exponential_with_a_simulated_sd() -> None:
    conv = convert(streams.LOG_COVARIATE_SD.encode(), source="logcov.mod")
    err = conv.card.residual_error[0]
    assert err.model == "exponential" and err.sd_parameter is not None
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route="iv-bolus", amount=100, time_h=0),), {"WT": 90.0})
    pred = simulate(twin, [1.0, 5.0])
    np.testing.assert_allclose(pred.sds[conv.card.observables[0].id], 0.2 * 90 / 70, rtol=1e-9)
