"""The two combined residual error forms, named on the card, in the MAP objective and the forecast."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from interop.schema import ModelCard, ReferenceDose, ResidualError, parse_json
from interop.twin import LevelObservation, bind_regimen, estimate_map, load_model
from interop.twin.forecast import add_residual, forecast
from interop.twin.objective import laplace_information, objective_value, residual_terms
from tests.data import mapbayr_card, mapbayr_sbml

A, B = 0.5, 0.1


def _card(form: str) -> ModelCard:
    card = parse_json(ModelCard, mapbayr_card("001").read_text())
    error = ResidualError(observable="parent", model=form, additive_sd=A, proportional_sd=B)  # type: ignore[arg-type]
    return card.model_copy(update={"residual_error": (error,)})


def test_variance_of_each_form() -> None:
    f = 10.0
    assert _card("combined-sd").residual_error[0].variance(f) == pytest.approx((A + B * f) ** 2)
    assert _card("combined-variance").residual_error[0].variance(f) == pytest.approx(A**2 + (B * f) ** 2)
    legacy = _card("combined").residual_error[0]  # version-1 cards keep their meaning
    assert legacy.form == "combined-variance" and legacy.variance(f) == pytest.approx(A**2 + (B * f) ** 2)
    with pytest.raises(ValueError):
        ResidualError(observable="parent", model="combined-sd", additive_sd=0.0, proportional_sd=B)


@pytest.mark.parametrize("form", ["combined-sd", "combined-variance"])
def test_objective_and_information_by_hand(form: str) -> None:
    card = _card(form)
    obs = [
        LevelObservation(t, "parent", y, False, None, f"m{i}")
        for i, (t, y) in enumerate([(1, 4.0), (5, 12.0)])
    ]
    terms = residual_terms(card, obs)
    f = np.array([5.0, 10.0])
    eta = np.array([0.1, -0.2, 0.05])
    omega_inv = np.linalg.inv(card.random_effects.omega_matrix())

    def var(x: float) -> float:
        return (A + B * x) ** 2 if form == "combined-sd" else A**2 + (B * x) ** 2

    hand = sum(math.log(var(fi)) + (yi - fi) ** 2 / var(fi) for fi, yi in zip(f, [4.0, 12.0], strict=True))
    hand += float(eta @ omega_inv @ eta)
    assert objective_value(terms, f, eta, omega_inv) == pytest.approx(hand, rel=1e-12)
    jac = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    dvar = [(var(fi + 1e-6) - var(fi - 1e-6)) / 2e-6 for fi in f]
    expected = omega_inv.copy()
    for i in range(2):
        j = jac[i][:, None]
        expected += j @ j.T / var(f[i]) + 0.5 * (dvar[i] * j) @ (dvar[i] * j).T / var(f[i]) ** 2
    np.testing.assert_allclose(laplace_information(terms, f, jac, omega_inv), expected, rtol=1e-7)


def test_map_and_new_level_interval_use_the_form() -> None:
    card = _card("combined-sd")
    model = load_model(mapbayr_sbml("001").read_text(), card)
    twin = bind_regimen(model, (ReferenceDose(route="oral", amount=1000, time_h=0.0),), {}, patient_id="e")
    twin = dataclasses.replace(twin, observations=(LevelObservation(2.0, "parent", 9.0, False, None, "m0"),))
    fit = estimate_map(twin)
    assert fit.converged
    eps = np.random.default_rng(3).standard_normal((20000, 1))
    noisy = add_residual(card.residual_error[0], np.full((20000, 1), 10.0), eps)
    assert np.std(noisy) == pytest.approx(A + B * 10.0, rel=0.03)  # SD = a + b f, not sqrt(a^2 + b^2 f^2)
    fc = forecast(twin, fit, [2.0, 6.0], n_draws=200)
    assert np.all(fc.observation_upper["parent"] > fc.individual_upper["parent"])
