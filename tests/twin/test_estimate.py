"""MAP estimation beyond the NONMEM set: error models, M3, full Omega, starts, bad input."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import norm

from interop.errors import TwinError
from interop.schema import ModelCard, ReferenceDose, ResidualError
from interop.twin import (
    CompiledModel,
    LevelObservation,
    Twin,
    bind_regimen,
    estimate_map,
    load_model,
    simulate,
)
from tests.data import GENTAMICIN_SBML


def with_levels(
    twin: Twin,
    levels: list[tuple[float, float]],
    *,
    lloq: float | None = None,
    observable: str = "gentamicin",
) -> Twin:
    obs = tuple(
        LevelObservation(t, observable, v, lloq is not None and v < lloq, lloq, f"m{i}")
        for i, (t, v) in enumerate(levels)
    )
    return dataclasses.replace(twin, observations=obs)


def regimen(model: CompiledModel) -> Twin:
    doses = tuple(
        ReferenceDose(route="iv-infusion", amount=240, time_h=24.0 * k, duration_h=0.5) for k in range(3)
    )
    return bind_regimen(model, doses, {"WT": 75, "SCR": 1.1, "AGE": 55, "SEX": 0}, patient_id="synthetic-1")


def brute_force(twin: Twin, card: ModelCard) -> np.ndarray:
    """An independent MAP: roadrunner predictions, the objective written out, Nelder-Mead."""
    names = list(card.random_effects.etas)
    oinv = np.linalg.inv(card.random_effects.omega_matrix())
    times = [o.time_h for o in twin.observations]
    y = np.array([o.value for o in twin.observations])
    err = card.residual_error[0]

    def objective(eta: np.ndarray) -> float:
        f = simulate(twin, times, dict(zip(names, eta, strict=True)), method="roadrunner").values[
            "gentamicin"
        ]
        total = 0.0
        for o, fi, yi in zip(twin.observations, f, y, strict=True):
            if err.model == "exponential":
                var = err.proportional_sd**2
                fi, yi = np.log(fi), np.log(yi)
                lim = np.log(o.lloq) if o.lloq else None
            else:
                var = (
                    err.additive_sd**2 + (err.proportional_sd * fi) ** 2
                    if err.model == "combined"
                    else (err.additive_sd**2 if err.model == "additive" else (err.proportional_sd * fi) ** 2)
                )
                lim = o.lloq
            if o.below_lloq:
                total += -2 * norm.logcdf((lim - fi) / np.sqrt(var))
            else:
                total += np.log(var) + (yi - fi) ** 2 / var
        return total + float(eta @ oinv @ eta)

    res = minimize(
        objective,
        np.zeros(len(names)),
        method="Nelder-Mead",
        options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": 4000},
    )
    return np.asarray(res.x)


@pytest.mark.parametrize(
    "error",
    [
        ResidualError(observable="gentamicin", model="combined", additive_sd=0.2, proportional_sd=0.1),
        ResidualError(observable="gentamicin", model="additive", additive_sd=0.4),
        ResidualError(observable="gentamicin", model="proportional", proportional_sd=0.15),
        ResidualError(observable="gentamicin", model="exponential", proportional_sd=0.15),
    ],
)
def test_error_models_and_full_omega_match_an_independent_estimator(
    gentamicin: CompiledModel, error: ResidualError
) -> None:
    card = gentamicin.card.replace(residual_error=(error.model_dump(),))
    assert card.random_effects.omega[0][1] != 0  # a full Omega with a correlation
    model = load_model(GENTAMICIN_SBML.read_text(), card)
    twin = with_levels(regimen(model), [(1.0, 9.1), (8.0, 2.9), (23.5, 0.45), (49.0, 9.8), (71.0, 0.5)])
    fit = estimate_map(twin, starts=2)
    assert fit.converged
    np.testing.assert_allclose(list(fit.etas.values()), brute_force(twin, card), atol=1e-3)
    assert fit.ofv > fit.objective - 10 and np.isfinite(fit.ofv)
    assert set(fit.individual_parameters) >= {"CL", "V"}
    assert fit.individual_parameters["CL"] != pytest.approx(
        estimate_map(with_levels(regimen(model), []), starts=1).individual_parameters["CL"]
    )


def test_m3_below_limit_levels(gentamicin: CompiledModel) -> None:
    twin = with_levels(regimen(gentamicin), [(1.0, 9.1), (8.0, 2.9), (23.5, 0.3), (71.0, 0.2)], lloq=0.5)
    assert [o.below_lloq for o in twin.observations] == [False, False, True, True]
    fit = estimate_map(twin, starts=2)
    np.testing.assert_allclose(list(fit.etas.values()), brute_force(twin, gentamicin.card), atol=1e-3)
    without = estimate_map(with_levels(regimen(gentamicin), [(1.0, 9.1), (8.0, 2.9)]), starts=1)
    assert fit.etas != without.etas  # the below-limit levels carry information


def test_no_levels_gives_the_prior(gentamicin: CompiledModel) -> None:
    fit = estimate_map(with_levels(regimen(gentamicin), []))
    assert fit.etas == {"ETA_CL": 0.0, "ETA_V": 0.0} and fit.n_observations == 0
    np.testing.assert_allclose(fit.covariance, gentamicin.card.random_effects.omega_matrix())
    assert all(s == pytest.approx(1.0) for s in fit.variance_ratio.values())


def test_subset_of_observations_for_iterative_forecasting(mapbayr: Callable[[str], CompiledModel]) -> None:
    model = mapbayr("001")
    twin = bind_regimen(
        model, tuple(ReferenceDose(route="oral", amount=10000, time_h=24.0 * k) for k in range(4)), {}
    )
    twin = dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, "parent", v, False, None, f"m{i}")
            for i, (t, v) in enumerate([(2, 90.0), (23, 40.0), (50, 130.0), (71, 45.0)])
        ),
    )
    first = estimate_map(twin, observations=twin.observations[:2])
    full = estimate_map(twin)
    assert first.n_observations == 2 and full.n_observations == 4
    assert first.etas != full.etas
    assert full.variance_ratio["ETA_CL"] < first.variance_ratio["ETA_CL"] <= 1.0


def test_bad_input_is_a_clear_error(gentamicin: CompiledModel) -> None:
    twin = regimen(gentamicin)
    with pytest.raises(TwinError, match="negative concentration"):
        estimate_map(with_levels(twin, [(1.0, -2.0)]))
    with pytest.raises(TwinError, match="limit of quantification"):
        estimate_map(
            dataclasses.replace(
                twin, observations=(LevelObservation(1.0, "gentamicin", 0.1, True, None, "m0"),)
            )
        )
    with pytest.raises(TwinError, match="no doses"):
        estimate_map(with_levels(dataclasses.replace(twin, doses=()), [(1.0, 2.0)]))
    with pytest.raises(TwinError, match="residual error"):
        estimate_map(with_levels(twin, [(1.0, 2.0)], observable="other"))
