"""General residual error models of PharmML on the card: power, and an SD the twin simulates.

Each fixture is converted, bound to a patient and individualised; the MAP estimate is checked
against an independent likelihood written here from the model's closed form (one compartment,
IV boluses) and minimised with scipy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize

from interop.schema import ReferenceDose
from interop.twin import LevelObservation, Twin, bind_regimen, estimate_map, load_model, simulate
from interop.twin.forecast import forecast
from registry.formats.pharmml import PharmMLError, convert
from tests.data import DDMORE_CORPUS, PHARMML_CORPUS, PHARMML_FIXTURES, PHARMML_ONECMT_IV, require_corpus

POWER = PHARMML_FIXTURES / "onecmt_power_error_0.8.xml"
SBML_SD = PHARMML_FIXTURES / "onecmt_sbml_error_0.8.xml"
WT = 100.0
DOSES = (
    ReferenceDose(route="iv-bolus", amount=100, time_h=0.0),
    ReferenceDose(route="iv-bolus", amount=100, time_h=12.0),
)
LEVELS = [(1.0, 3.1), (6.0, 1.9), (11.5, 1.2), (14.0, 4.4), (24.0, 2.0)]
OMEGA = np.diag([0.09, 0.04])  # OMEGA_CL, OMEGA_V of the fixtures


def _conc(eta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The fixtures' concentration by hand: CL = 4 (WT/70)^0.75 e^eta_CL, V = 30 e^eta_V."""
    cl = 4.0 * (WT / 70) ** 0.75 * np.exp(eta[0])
    v = 30.0 * np.exp(eta[1])
    return sum(d.amount / v * np.exp(-cl / v * (t - d.time_h)) * (t > d.time_h) for d in DOSES)


def _power_var(c: np.ndarray) -> np.ndarray:
    return 0.2**2 + (0.15 * c**0.7) ** 2


def _covariate_var(c: np.ndarray) -> np.ndarray:
    return (0.3 * WT / 70) ** 2 + (0.15 * c) ** 2


def _twin(path: Path) -> Twin:
    conv = convert(path.read_bytes(), source=path.name)
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, DOSES, {"WT": WT}, patient_id="p1")
    obs = tuple(LevelObservation(t, "Y", y, False, None, f"m{i}") for i, (t, y) in enumerate(LEVELS))
    return dataclasses.replace(twin, observations=obs)


def test_a_power_error_computed_in_the_model_by_a_function_of_four_arguments() -> None:
    err = convert(POWER.read_bytes(), source=POWER.name).card.residual_error[0]
    assert (err.model, err.additive_sd, err.exponent) == ("power", 0.2, 0.7)
    assert err.proportional_sd == pytest.approx(0.15, rel=1e-12)
    assert err.variance(3.0) == pytest.approx(_power_var(np.array(3.0)), rel=1e-12)


def test_an_sd_using_a_covariate_and_two_residual_variables_is_simulated() -> None:
    conv = convert(SBML_SD.read_bytes(), source=SBML_SD.name)
    err = conv.card.residual_error[0]
    assert err.model == "sbml" and err.sd_parameter == "Y_sd"
    twin = _twin(SBML_SD)
    times = np.array([0.5, 3.0, 13.0])
    pred = simulate(twin, times, {"ETA_CL": 0.1})
    np.testing.assert_allclose(pred.values["Y"], _conc(np.array([0.1, 0.0]), times), rtol=1e-6)
    np.testing.assert_allclose(pred.sds["Y"], np.sqrt(_covariate_var(pred.values["Y"])), rtol=1e-9)


@pytest.mark.parametrize(("path", "variance"), [(POWER, _power_var), (SBML_SD, _covariate_var)])
def test_map_equals_the_mode_of_an_independent_likelihood(
    path: Path, variance: Callable[[np.ndarray], np.ndarray]
) -> None:
    twin = _twin(path)
    fit = estimate_map(twin)
    t = np.array([x for x, _ in LEVELS])
    y = np.array([v for _, v in LEVELS])
    omega_inv = np.linalg.inv(OMEGA)

    def objective(eta: np.ndarray) -> float:
        c = _conc(eta, t)
        var = variance(c)
        return float(np.sum(np.log(var) + (y - c) ** 2 / var) + eta @ omega_inv @ eta)

    hand = minimize(objective, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    hand = minimize(objective, hand.x, method="BFGS", options={"gtol": 1e-10})
    mode = np.array([fit.etas["ETA_CL"], fit.etas["ETA_V"]])
    assert fit.converged
    np.testing.assert_allclose(mode, hand.x, atol=1e-5)
    # the same likelihood; the twin's ODE path solves the sensitivity system at relative 1e-7
    assert fit.objective == pytest.approx(objective(mode), rel=1e-6)
    assert fit.objective == pytest.approx(hand.fun, rel=1e-6)
    # the posterior covariance is the inverse FOCE-I information, Omega^-1 + sum J'J/var +
    # 1/2 sum D'D/var^2 with D = d var / d eta: for the sbml form, through the simulated SD
    h = 1e-6
    eye = np.eye(2) * h
    J = np.column_stack([(_conc(mode + e, t) - _conc(mode - e, t)) / (2 * h) for e in eye])
    D = np.column_stack(
        [(variance(_conc(mode + e, t)) - variance(_conc(mode - e, t))) / (2 * h) for e in eye]
    )
    var = variance(_conc(mode, t))
    info = omega_inv + (J / var[:, None]).T @ J + 0.5 * (D / var[:, None] ** 2).T @ D
    np.testing.assert_allclose(fit.covariance, np.linalg.inv(info), rtol=1e-4)


def test_the_observation_interval_of_an_sbml_error_adds_the_simulated_sd() -> None:
    twin = _twin(SBML_SD)
    fit = estimate_map(twin)
    fc = forecast(twin, fit, [2.0, 30.0], n_draws=300)
    assert set(fc.individual) == {"Y"}  # the SD output is no observable of the forecast
    assert np.all(fc.observation_upper["Y"] > fc.individual_upper["Y"])
    assert np.all(fc.observation_lower["Y"] < fc.individual_lower["Y"])


def test_a_log_transformed_observation_with_a_varying_sd_takes_it_from_the_model() -> None:
    """log(y) = log(C) + PROP*C*eps: on the log scale, an SD the twin simulates (the exponential form
    with an sd_parameter); MAP checked against the likelihood of log levels by hand."""
    raw = PHARMML_ONECMT_IV.read_bytes()  # proportional error: SD = b*f, here on the log scale
    conv = convert(raw.replace(b"<Output>", b'<Transformation type="log"/><Output>', 1), source="log.xml")
    err = conv.card.residual_error[0]
    assert (err.model, err.sd_parameter) == ("exponential", "Y_sd")
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, DOSES, {"WT": WT}, patient_id="p1")
    obs = tuple(LevelObservation(t, "Y", y, False, None, f"m{i}") for i, (t, y) in enumerate(LEVELS))
    fit = estimate_map(dataclasses.replace(twin, observations=obs))
    t, y = np.array(LEVELS).T
    omega_inv = np.linalg.inv(OMEGA)

    def objective(eta: np.ndarray) -> float:
        c = _conc(eta, t)
        var = (0.15 * c) ** 2
        return float(np.sum(np.log(var) + (np.log(y) - np.log(c)) ** 2 / var) + eta @ omega_inv @ eta)

    hand = minimize(objective, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
    hand = minimize(objective, hand.x, method="BFGS", options={"gtol": 1e-10})
    assert fit.converged
    np.testing.assert_allclose([fit.etas["ETA_CL"], fit.etas["ETA_V"]], hand.x, atol=1e-5)
    assert fit.objective == pytest.approx(hand.fun, rel=1e-6)


def test_a_residual_variable_entering_non_linearly_is_refused_by_name() -> None:
    raw = SBML_SD.read_bytes()
    term = b'<ct:SymbRef blkIdRef="sm" symbIdRef="W"/><ct:SymbRef blkIdRef="pm" symbIdRef="EPS1"/>'
    assert term in raw
    bad = raw.replace(term, b'<ct:SymbRef blkIdRef="sm" symbIdRef="W"/><math:Uniop op="exp">'
                      b'<ct:SymbRef blkIdRef="pm" symbIdRef="EPS1"/></math:Uniop>')  # fmt: skip
    with pytest.raises(PharmMLError, match=r"General\[@symbId='Y'\].*must enter linearly"):
        convert(bad, source="exp.xml")


@pytest.mark.parametrize(
    ("path", "forms"),
    [
        (DDMORE_CORPUS / "274" / "Terranova_2017_oncology_TGI.xml", {"Y1": (0.101, 0.5), "Y2": (0.134, 0.5)}),
        (PHARMML_CORPUS / "examples_0_9" / "bayesianHierarchical" / "example331.xml", {}),
    ],
)
def test_corpus_error_models(path: Path, forms: dict[str, tuple[float, float]]) -> None:
    """Terranova 2017: SD = b*sqrt(W) computed in the model (``W_err``), as its NM-TRAN twin has it;
    example331: an additive SD computed from a precision, sqrt(1/TAU)."""
    require_corpus(path)
    conv = convert(path.read_bytes(), source=path.name)
    errors = conv.card.residual_error
    if forms:
        assert {r.observable: (r.model, r.proportional_sd, r.exponent) for r in errors} == {
            k: ("power", b, c) for k, (b, c) in forms.items()
        }
    else:
        assert [r.model for r in errors] == ["additive"]
