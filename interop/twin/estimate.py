"""Bayesian MAP individualisation of a twin from its drug levels (NONMEM POSTHOC, mapbayr).

The optimiser is scipy's BFGS on the objective of :mod:`interop.twin.objective`, with a
forward-difference gradient; predictions come from the closed-form linear path when the
model allows it (exact to rounding, so small difference steps are safe), else from
roadrunner with a coarser central-difference step. Several starts: the population values
(ETA = 0) first, then deterministic draws from N(0, Omega); the best mode wins.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from interop.errors import TwinError
from interop.twin.binding import LevelObservation, Twin
from interop.twin.linear import LinearPredictor, linear_system
from interop.twin.objective import (
    laplace_information,
    numeric_jacobian,
    objective_value,
    residual_terms,
)
from interop.twin.simulate import simulate

__all__ = ["MapResult", "estimate_map", "individual_parameters", "make_predictor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MapResult:
    """The mode of the ETAs' posterior for one twin, with its uncertainty and diagnostics."""

    patient_id: str
    etas: dict[str, float]
    objective: float  # the MAP objective of DESIGN.md at the mode
    ofv: float  # NONMEM-style subject OBJ (objective + Laplace terms)
    standard_errors: dict[str, float]
    covariance: np.ndarray  # Laplace posterior covariance of the ETAs (NONMEM's ETC)
    individual_parameters: dict[str, float]
    shrinkage: dict[str, float]  # posterior variance / prior variance per ETA (1: nothing learned)
    converged: bool
    message: str
    n_evaluations: int
    n_observations: int
    starts: int
    predictions: tuple[float, ...] = ()  # individual predictions at the observations used
    population_predictions: tuple[float, ...] = ()
    observations: tuple[LevelObservation, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "patient_id": self.patient_id, "etas": self.etas, "objective": self.objective,
            "ofv": self.ofv, "standard_errors": self.standard_errors,
            "covariance": self.covariance.tolist(), "individual_parameters": self.individual_parameters,
            "shrinkage": self.shrinkage, "converged": self.converged, "message": self.message,
            "n_evaluations": self.n_evaluations, "n_observations": self.n_observations,
            "starts": self.starts,
            "observations": [
                {"time_h": o.time_h, "observable": o.observable, "value": o.value,
                 "below_lloq": o.below_lloq, "ipred": ip, "pred": pp}
                for o, ip, pp in zip(self.observations, self.predictions, self.population_predictions,
                                     strict=False)
            ],
        }


def make_predictor(
    twin: Twin, observations: Sequence[LevelObservation]
) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    """f(eta) at the observations (in order) and whether it is the exact linear path."""
    card = twin.card
    etas = list(card.random_effects.etas)
    times = np.array([o.time_h for o in observations])
    rows = np.array([[o.id for o in card.observables].index(o.observable) for o in observations], dtype=int)
    cols = np.arange(len(observations))
    lin = linear_system(twin.model)
    if lin is not None:
        pred = LinearPredictor(lin, twin, times)
        idx = np.array([lin.index[e] for e in etas], dtype=int)
        lock = twin.model.lock

        def f_lin(eta: np.ndarray) -> np.ndarray:
            v = pred.base.copy()
            v[idx] = eta
            with lock:
                out = pred(v)
            return out[rows, cols]

        return f_lin, True

    def f_rr(eta: np.ndarray) -> np.ndarray:
        p = simulate(twin, times, dict(zip(etas, map(float, eta), strict=True)), method="roadrunner")
        return np.array([p.values[o.observable][i] for i, o in enumerate(observations)])

    return f_rr, False


def _starts(twin: Twin, omega: np.ndarray, starts: int) -> list[np.ndarray]:
    n = omega.shape[0]
    out = [np.zeros(n)]
    if starts > 1:
        seed = int.from_bytes(hashlib.sha256(twin.patient_id.encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        L = np.linalg.cholesky(omega)
        for _ in range(starts - 1):
            out.append(L @ rng.standard_normal(n))
    return out


def estimate_map(
    twin: Twin,
    *,
    observations: Sequence[LevelObservation] | None = None,
    starts: int = 2,
    gtol: float = 1e-6,
    max_iterations: int = 200,
) -> MapResult:
    """The MAP estimate of the twin's ETAs from ``observations`` (default: all of the twin's).

    Passing a subset (say the levels before some time) gives iterative forecasting.
    """
    card = twin.card
    obs = tuple(twin.observations if observations is None else observations)
    re = card.random_effects
    if re.occasions:
        raise TwinError(f"model {card.id}: inter-occasion variability is not supported by the MAP "
                        "estimator yet", field="random_effects.occasions")
    if not re.etas:
        raise TwinError(f"model {card.id} has no random effects to estimate", field="random_effects")
    if not twin.doses:
        raise TwinError("no doses: nothing to individualise", source=twin.patient_id, field="doses")
    if starts < 1:
        raise ValueError("starts must be >= 1")
    names = list(re.etas)
    omega = re.omega_matrix()
    omega_inv = np.linalg.inv(omega)
    _, logdet_omega = np.linalg.slogdet(omega)
    terms = residual_terms(card, obs)
    predict, exact = make_predictor(twin, obs) if obs else (lambda e: np.empty(0), True)
    count = [0]

    def fun(eta: np.ndarray) -> float:
        count[0] += 1
        f = predict(eta)
        if not np.all(np.isfinite(f)):
            raise TwinError("non-finite prediction during estimation", source=twin.patient_id)
        return objective_value(terms, f, eta, omega_inv)

    step = 1e-7 if exact else 1e-4

    def grad(eta: np.ndarray, f0: float | None = None) -> np.ndarray:
        base = fun(eta) if f0 is None else f0
        g = np.empty(len(eta))
        for j in range(len(eta)):
            e = eta.copy()
            if exact:
                e[j] += step
                g[j] = (fun(e) - base) / step
            else:
                e[j] += step
                up = fun(e)
                e[j] -= 2 * step
                g[j] = (up - fun(e)) / (2 * step)
        return g

    cache: dict[bytes, float] = {}

    def fun_cached(eta: np.ndarray) -> float:
        key = eta.tobytes()
        if key not in cache:
            cache[key] = fun(eta)
        return cache[key]

    def grad_cached(eta: np.ndarray) -> np.ndarray:
        return grad(eta, fun_cached(eta))

    best = None
    for x0 in _starts(twin, omega, starts if obs else 1):
        if not obs:
            break
        res = minimize(fun_cached, x0, jac=grad_cached, method="BFGS",
                       options={"gtol": gtol, "maxiter": max_iterations})
        if best is None or res.fun < best.fun - 1e-9:
            best = res
    if best is None:  # no levels: the mode is the prior mean
        eta_hat = np.zeros(len(names))
        converged, message, obj = True, "no observations: a priori (population) estimate", 0.0
    else:
        eta_hat = np.asarray(best.x)
        obj = float(best.fun)
        gnorm = float(np.max(np.abs(grad(eta_hat)))) if obs else 0.0
        converged = bool(best.success) or gnorm < 1e-3
        message = str(best.message) + ("" if best.success else f" (max |gradient| {gnorm:.2g})")
    if obs:
        f_hat = predict(eta_hat)
        jac = numeric_jacobian(predict, eta_hat, 1e-5 if exact else 1e-3)
        info = laplace_information(terms, f_hat, jac, omega_inv)
        f_pop = predict(np.zeros(len(names)))
    else:
        f_hat = f_pop = np.empty(0)
        info = omega_inv
    _, logdet_info = np.linalg.slogdet(info)
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.full_like(info, np.nan)
        converged = False
        message += "; singular information matrix"
    ofv = obj + float(logdet_omega) + float(logdet_info)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    etas = dict(zip(names, map(float, eta_hat), strict=True))
    return MapResult(
        patient_id=twin.patient_id,
        etas=etas,
        objective=obj,
        ofv=ofv,
        standard_errors=dict(zip(names, map(float, se), strict=True)),
        covariance=cov,
        individual_parameters=individual_parameters(twin, etas),
        shrinkage={n: float(cov[i, i] / omega[i, i]) for i, n in enumerate(names)},
        converged=converged,
        message=message,
        n_evaluations=count[0],
        n_observations=len(obs),
        starts=starts,
        predictions=tuple(map(float, f_hat)),
        population_predictions=tuple(map(float, f_pop)),
        observations=obs,
    )


def individual_parameters(twin: Twin, etas: dict[str, float]) -> dict[str, float]:
    """The model's derived parameters (assignment rules) for these ETAs, at time 0's covariates."""
    model = twin.model
    params = dict(etas)
    for name, series in twin.covariates.items():
        params[name] = series.at(0.0)
    skip = {o.sbml for o in model.card.observables}
    with model.lock:
        model.reset(params)
        r = model.runner
        out = {}
        for rid in r.getAssignmentRuleIds():
            if rid.startswith("_obs_") or rid in skip:
                continue
            out[rid] = float(r.getValue(rid))
    return out
