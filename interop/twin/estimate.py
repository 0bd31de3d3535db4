"""Bayesian MAP individualisation of a twin from its drug levels (NONMEM POSTHOC, mapbayr).

The optimiser is scipy's BFGS on the objective of :mod:`interop.twin.objective`, with a
forward-difference gradient; predictions come from the closed-form linear path when the
model allows it (exact to rounding, so small difference steps are safe), else from
roadrunner with an exact gradient from forward sensitivities (:mod:`interop.twin.sensitivity`),
or a coarser central-difference step where those do not cover the model. Several starts: the
population values (ETA = 0) first, then deterministic draws from N(0, Omega); where an ETA moves a
lag time or an input end, one more start in each piece of the objective that the event's crossings
of sampling times cut out (:mod:`interop.twin.event_times`); the best mode wins.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from interop.errors import InteropError, TwinError
from interop.twin.binding import LevelObservation, Twin
from interop.twin.event_times import event_time_etas, segment_midpoints
from interop.twin.linear import LinearPredictor, linear_system
from interop.twin.model import outputs
from interop.twin.objective import (
    laplace_information,
    numeric_jacobian,
    objective_gradient,
    objective_rows,
    objective_value,
    residual_terms,
    sd_observations,
)
from interop.twin.occasions import occasion_etas, occasion_omega, occasion_switches
from interop.twin.sensitivity import sensitivity_predictor
from interop.twin.simulate import simulate

__all__ = [
    "MapResult",
    "calculate_eta_shrinkage",
    "check_mode",
    "estimate_map",
    "individual_parameters",
    "make_predictor",
]

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
    variance_ratio: dict[str, float]  # posterior / prior variance per ETA (1: nothing learned; not shrinkage)
    converged: bool
    message: str
    n_evaluations: int
    n_observations: int
    starts: int
    predictions: tuple[float, ...] = ()  # individual predictions at the observations used
    population_predictions: tuple[float, ...] = ()
    observations: tuple[LevelObservation, ...] = field(default=(), repr=False)
    modes: int = 1  # distinct local modes the starts ended at (counted where event times move)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary."""
        return {
            "patient_id": self.patient_id,
            "etas": self.etas,
            "objective": self.objective,
            "ofv": self.ofv,
            "standard_errors": self.standard_errors,
            "covariance": self.covariance.tolist(),
            "individual_parameters": self.individual_parameters,
            "posterior_prior_variance_ratio": self.variance_ratio,
            "converged": self.converged,
            "message": self.message,
            "n_evaluations": self.n_evaluations,
            "n_observations": self.n_observations,
            "starts": self.starts,
            "modes": self.modes,
            "observations": [
                {
                    "time_h": o.time_h,
                    "observable": o.observable,
                    "value": o.value,
                    "below_lloq": o.below_lloq,
                    "ipred": ip,
                    "pred": pp,
                }
                for o, ip, pp in zip(
                    self.observations, self.predictions, self.population_predictions, strict=False
                )
            ],
        }


def make_predictor(
    twin: Twin, observations: Sequence[LevelObservation]
) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
    """f(eta) at the observations (in order; an observation may name an output of
    :func:`interop.twin.model.outputs`) and whether it is the exact linear path."""
    card = twin.card
    etas = [*card.random_effects.etas, *occasion_etas(card)]
    times = np.array([o.time_h for o in observations])
    ids = [oid for oid, _ in outputs(card)]
    rows = np.array([ids.index(o.observable) for o in observations], dtype=int)
    cols = np.arange(len(observations))
    lin = linear_system(twin.model) if not twin.resets else None  # resets: roadrunner's event loop
    if lin is not None:
        pred = LinearPredictor(lin, twin, times)
        idx = np.array([lin.index[e] for e in etas], dtype=int)
        lock = twin.model.lock

        def f_lin(eta: np.ndarray) -> np.ndarray:
            if eta.ndim == 2:  # several ETA sets: one batched evaluation
                v = np.repeat(pred.base[None, :], len(eta), axis=0)
                v[:, idx] = eta
                with lock:
                    out = pred.batch(v)
                return out[:, rows, cols]
            v = pred.base.copy()
            v[idx] = eta
            with lock:
                out1 = pred(v)
            return out1[rows, cols]

        return f_lin, True

    def f_rr(eta: np.ndarray) -> np.ndarray:
        p = simulate(twin, times, dict(zip(etas, map(float, eta), strict=True)), method="roadrunner")
        return np.array([p.output(o.observable)[i] for i, o in enumerate(observations)])

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


COARSE_GTOL = 1e-2  # tolerance of the extra starts before polishing
# Backward differences: where ETA = 0 sits on a kink of the predictions (a zero-order input
# that ends exactly at a sampling time, as in 3 of the 100 subjects of mapbayr model 006), the
# left derivative leads to the mode NONMEM finds; forward differences led to another local mode.
DIFF_SIGN = -1.0
GRADIENT_TOL = 1e-3  # largest |d objective / d eta| at a mode called converged
RESCUE_STARTS = 4  # extra starts from prior draws when the first mode is doubtful
# Models whose ETAs move event times (lag times, modelled durations): at most this many extra
# local searches per fit, started in the pieces of the objective between the breakpoints where
# an event time crosses a sampling time (interop.twin.event_times); the lowest objectives at the
# pieces' midpoints go first.
EVENT_STARTS = 8
_HESS_STEP = 1e-3


def _minimise(
    evaluate: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray, np.ndarray]],
    hessian: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    omega: np.ndarray,
    gtol: float,
    max_iterations: int,
) -> Any:
    """BFGS started from the inverse Fisher-scoring Hessian at the start point: the first step is a
    Gauss-Newton step and the updates converge in a few iterations. A non-finite objective is +inf,
    so the line search backs off from it instead of failing."""

    def fun(e: np.ndarray) -> float:
        return evaluate(e)[0]

    def jac(e: np.ndarray) -> np.ndarray:
        return evaluate(e)[1]

    try:
        h0 = np.linalg.inv(hessian(x0))
        h0 = (h0 + h0.T) / 2
        if not np.all(np.isfinite(h0)) or np.linalg.eigvalsh(h0).min() <= 0:
            raise np.linalg.LinAlgError("not positive definite")
    except np.linalg.LinAlgError:
        h0 = omega / 2  # the prior's curvature: objective ~ eta' Omega^-1 eta
    return minimize(
        fun, x0, jac=jac, method="BFGS", options={"gtol": gtol, "maxiter": max_iterations, "hess_inv0": h0}
    )


def _numeric_hessian(values: Callable[[np.ndarray], np.ndarray], x: np.ndarray, h: float) -> np.ndarray:
    """Second differences of the objective around ``x`` (``values`` maps rows of points to objectives)."""
    n = len(x)
    eye = np.eye(n) * h
    pts = [x]
    for i in range(n):
        pts += [x + eye[i], x - eye[i]]
        for j in range(i + 1, n):
            pts += [x + eye[i] + eye[j], x + eye[i] - eye[j], x - eye[i] + eye[j], x - eye[i] - eye[j]]
    v = values(np.array(pts))
    H = np.empty((n, n))
    k = 1
    for i in range(n):
        H[i, i] = (v[k] - 2 * v[0] + v[k + 1]) / h**2
        k += 2
        for j in range(i + 1, n):
            H[i, j] = H[j, i] = (v[k] - v[k + 1] - v[k + 2] + v[k + 3]) / (4 * h**2)
            k += 4
    return H


def check_mode(gradient: np.ndarray, hessian: np.ndarray) -> tuple[bool, str]:
    """Converged only where the gradient is small and the Hessian positive definite; else why not."""
    why = []
    gnorm = float(np.max(np.abs(gradient))) if len(gradient) else 0.0
    if not np.isfinite(gnorm) or gnorm > GRADIENT_TOL:
        why.append(f"max |gradient| {gnorm:.2g} > {GRADIENT_TOL:g}")
    if not np.all(np.isfinite(hessian)):
        why.append("the Hessian is not finite")
    else:
        low = float(np.linalg.eigvalsh((hessian + hessian.T) / 2).min()) if len(hessian) else 1.0
        if low <= 0:
            why.append(f"the Hessian is not positive definite (smallest eigenvalue {low:.2g})")
    return not why, "; ".join(why)


def estimate_map(
    twin: Twin,
    *,
    observations: Sequence[LevelObservation] | None = None,
    starts: int = 3,
    gtol: float = 1e-4,
    max_iterations: int = 200,
    predictor: Callable[[np.ndarray], np.ndarray] | None = None,
    start: Sequence[float] | None = None,
) -> MapResult:
    """The MAP estimate of the twin's ETAs from ``observations`` (default: all of the twin's).

    Passing a subset (say the levels before some time) gives iterative forecasting.
    ``predictor`` replaces the prediction function f(eta) (rows of eta -> rows of predictions at
    ``observations``); benchmarks use it to run the same optimiser on a naive model.
    ``start`` (one value per ETA) replaces ETA = 0 as the first start: a warm start from a nearby
    mode, such as the previous fit of iterative forecasting; staying there is then no sign of a kink.
    When the first mode is doubtful (the optimiser did not move from the start, as on a kink at a
    lag time, or the mode fails :func:`check_mode`), up to ``RESCUE_STARTS`` more starts from prior
    draws run and the lowest objective wins. Where an ETA moves an event time, up to
    ``EVENT_STARTS`` more local searches start in the other pieces of the objective (see
    :mod:`interop.twin.event_times`); ``modes`` of the result counts the distinct modes found.

    ``twin``: the demo patient on the gentamicin model, as in :func:`bind_patient`'s example.

    >>> fit = estimate_map(twin)
    >>> fit.converged, sorted(fit.etas), fit.n_observations
    (True, ['ETA_CL', 'ETA_V'], 4)
    """
    card = twin.card
    obs = tuple(twin.observations if observations is None else observations)
    re = card.random_effects
    if not re.etas:
        raise TwinError(f"model {card.id} has no random effects to estimate", field="random_effects")
    if not twin.doses:
        raise TwinError("no doses: nothing to individualise", source=twin.patient_id, field="doses")
    if starts < 1:
        raise ValueError("starts must be >= 1")
    names = [*re.etas, *occasion_etas(card)]
    omega = occasion_omega(card)
    omega_inv = np.linalg.inv(omega)
    _, logdet_omega = np.linalg.slogdet(omega)
    terms = residual_terms(card, obs)
    # predictions at the levels, then the SDs simulated for sbml-form errors (see ResidualTerms)
    outs = [*obs, *sd_observations(card, obs)]
    raw_predict, exact = make_predictor(twin, outs) if obs else (lambda e: np.empty(0), True)
    if predictor is not None:
        raw_predict = predictor
    # ODE models: predictions and their ETA Jacobian from one run of the forward sensitivity system
    sens = sensitivity_predictor(twin, outs) if obs and predictor is None and not exact else None
    if sens is not None:
        raw_predict = sens.predictions
    count = [0]
    n_obs = len(outs)

    def predict(eta: np.ndarray) -> np.ndarray:
        """Predictions, NaN where the model cannot be solved (the objective is then +inf)."""
        try:
            with np.errstate(all="ignore"):
                return np.asarray(raw_predict(eta), dtype=float)
        except (
            InteropError,
            RuntimeError,
            FloatingPointError,
            OverflowError,
        ) as exc:  # ODE solver failures too
            log.debug("prediction failed for %s at %s: %s", twin.patient_id, eta, exc)
            shape = (len(eta), n_obs) if eta.ndim == 2 else (n_obs,)
            return np.full(shape, np.nan)

    def safe_objective(f: np.ndarray, eta: np.ndarray) -> float:
        if not np.all(np.isfinite(f)):
            return np.inf
        with np.errstate(all="ignore"):
            v = objective_value(terms, f, eta, omega_inv)
        return v if np.isfinite(v) else np.inf

    def objectives(pts: np.ndarray) -> np.ndarray:
        if exact:
            return objectives_from(predict(pts), pts)
        return np.array([safe_objective(predict(p), p) for p in pts])

    step = (1e-7 if exact else 1e-4) * DIFF_SIGN
    memo: dict[bytes, tuple[float, np.ndarray, np.ndarray, np.ndarray]] = {}

    def evaluate(eta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """Objective, its gradient and df/deta from n+1 (or 2n+1) predictions; +inf where unusable."""
        key = eta.tobytes()
        hit = memo.get(key)
        if hit is not None:
            return hit
        n = len(eta)
        g = np.empty(n)
        J = np.empty((n_obs, n))
        if exact:  # one-sided differences, all n+1 points in one batched prediction
            pts = np.vstack([eta, eta + step * np.eye(n)])
            count[0] += n + 1
            fs = predict(pts)
            f0 = fs[0]
            objs = objectives_from(fs, pts)
            o0 = float(objs[0])
            with np.errstate(invalid="ignore"):
                g = (objs[1:] - o0) / step
                J = ((fs[1:] - f0) / step).T
            bad = ~np.isfinite(g)
            if np.isfinite(o0) and bad.any():  # the step left the solvable region: step the other way
                other = np.vstack([eta - step * np.eye(n)[bad]])
                count[0] += len(other)
                fo = predict(other)
                oo = objectives_from(fo, other)
                with np.errstate(invalid="ignore"):
                    g[bad] = (o0 - oo) / step
                    J[:, bad] = ((f0 - fo) / step).T
        elif sens is not None:  # exact gradient: forward sensitivities, one ODE run
            count[0] += 1
            try:
                with np.errstate(all="ignore"):
                    f0, J = sens(eta)
            except (InteropError, RuntimeError, FloatingPointError, OverflowError) as exc:
                log.debug("prediction failed for %s at %s: %s", twin.patient_id, eta, exc)
                f0, J = np.full(n_obs, np.nan), np.full((n_obs, n), np.nan)
            o0 = safe_objective(f0, eta)
            if np.isfinite(o0):
                with np.errstate(all="ignore"):
                    g = objective_gradient(terms, f0, J, eta, omega_inv)
        else:  # central differences around a tolerance-limited ODE solution
            count[0] += 2 * n + 1
            f0 = predict(eta)
            o0 = safe_objective(f0, eta)
            for j in range(n):
                up, down = eta.copy(), eta.copy()
                up[j] += step
                down[j] -= step
                f1, f2 = predict(up), predict(down)
                with np.errstate(invalid="ignore"):
                    g[j] = (safe_objective(f1, up) - safe_objective(f2, down)) / (2 * step)
                    J[:, j] = (f1 - f2) / (2 * step)
        if not np.isfinite(o0) or not np.all(np.isfinite(g)):
            o0, g = np.inf, np.full(n, np.nan)
        if len(memo) >= 8:  # a few recent points: the mode is asked for again after the checks
            memo.pop(next(iter(memo)))
        memo[key] = (o0, g, f0, J)
        return memo[key]

    def objectives_from(fs: np.ndarray, pts: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = objective_rows(terms, np.nan_to_num(fs, nan=1.0), pts, omega_inv)
        return np.where(np.all(np.isfinite(fs), axis=1) & np.isfinite(out), out, np.inf)

    def hessian(eta: np.ndarray) -> np.ndarray:
        """Fisher-scoring Hessian (twice the FOCE-I information) at ``eta``."""
        o0, _, f0, J = evaluate(eta)
        if not np.isfinite(o0):
            raise np.linalg.LinAlgError("objective not finite at the start")
        return 2.0 * laplace_information(terms, f0, J, omega_inv)

    def run(x0: np.ndarray, tol: float) -> Any:
        if not np.isfinite(evaluate(x0)[0]):
            return None
        return _minimise(evaluate, hessian, x0, omega, tol, max_iterations)

    verdicts: dict[bytes, tuple[bool, str]] = {}

    def verdict(res: Any) -> tuple[bool, str]:
        x = np.asarray(res.x)
        key = x.tobytes()
        if key not in verdicts:
            if sens is not None:  # forward differences of the exact gradient: n runs, not 2n^2+1
                g0 = evaluate(x)[1]
                eye = np.eye(len(x)) * _HESS_STEP
                cols = [(evaluate(x + e)[1] - g0) / _HESS_STEP for e in eye]
                hess = np.column_stack(cols) if cols else np.zeros((0, 0))
                hess = (hess + hess.T) / 2
            else:
                hess = _numeric_hessian(objectives, x, _HESS_STEP)
            verdicts[key] = check_mode(evaluate(x)[1], hess)
        return verdicts[key]

    moving = event_time_etas(twin, names, omega) if obs else []
    sample_times = [o.time_h for o in obs]

    def event_search(first: Any) -> tuple[Any, int, str, int]:
        """Local searches started in the pieces of the objective that event-time ETAs cut out
        (between the values where a dose arrival or an infusion end crosses a sampling time): the
        best mode, the number of distinct modes, a note for the message, the starts run."""
        x = np.asarray(first.x, dtype=float)
        cands = []
        for k in moving:
            for mid in segment_midpoints(twin, names, omega, x, k, sample_times):
                c = x.copy()
                c[k] = mid
                cands.append(c)
        if not cands:
            return first, 1, "", 0
        pts = np.array(cands)
        screen = objectives(pts)
        order = [i for i in np.argsort(screen, kind="stable") if np.isfinite(screen[i])][:EVENT_STARTS]
        best, ends = first, [(x, float(first.fun))]
        for i in order:
            res = run(pts[i], max(gtol, COARSE_GTOL))
            if res is None:
                continue
            if res.fun < best.fun - 1e-6:
                res = run(np.asarray(res.x), gtol) or res
                if res.fun < best.fun - 1e-9:
                    best = res
            end = (np.asarray(res.x), float(res.fun))
            if all(abs(end[1] - f) > 1e-3 or np.max(np.abs(end[0] - e)) > 0.05 for e, f in ends):
                ends.append(end)
        what = ", ".join(names[k] for k in moving)
        found = (
            f"a lower mode (objective {float(first.fun):.6g} -> {float(best.fun):.6g})"
            if best is not first
            else "none lower than the first"
        )
        note = (
            f"; event-time search ({what}): {len(order)} starts in {len(cands)} pieces, "
            f"{len(ends)} distinct mode(s), {found}"
        )
        return best, len(ends), note, len(order)

    best = None
    tried = 0
    modes, event = 1, ""
    draws = _starts(twin, omega, max(starts, 1) + RESCUE_STARTS) if obs else []
    if start is not None and draws:
        if len(start) != len(names):
            raise ValueError(f"start needs {len(names)} values (ETAs {', '.join(names)})")
        draws[0] = np.asarray(start, dtype=float)
    for x0 in draws[:starts]:
        tried += 1
        # Extra starts run to a coarse tolerance first and are polished only when they beat the best.
        if best is None:
            best = run(x0, gtol)
            continue
        res = run(x0, max(gtol, COARSE_GTOL))
        if res is not None and res.fun < best.fun - 1e-6:
            res = run(np.asarray(res.x), gtol) or res
            if res.fun < best.fun - 1e-9:
                best = res
    rescue = ""
    if obs:
        doubtful = best is None or (best.nit == 0 and start is None) or not verdict(best)[0]
        if doubtful:
            before = None if best is None else float(best.fun)
            for x0 in draws[starts:]:
                tried += 1
                res = run(x0, gtol)
                if res is not None and (best is None or res.fun < best.fun - 1e-9):
                    best = res
            if best is not None and (before is None or best.fun < before - 1e-9):
                rescue = f"; a restart from a prior draw found a lower objective ({tried} starts)"
            else:
                rescue = f"; {tried} starts, none lower than the first"
        if best is not None and moving:
            best, modes, event, extra = event_search(best)
            tried += extra
        if best is None:
            raise TwinError(
                f"the objective is not finite at any of {tried} starts (the model cannot be solved "
                "for this subject's ETAs)",
                source=twin.patient_id,
            )
    if best is None:  # no levels: the mode is the prior mean
        eta_hat = np.zeros(len(names))
        converged, message, obj = True, "no observations: a priori (population) estimate", 0.0
    else:
        eta_hat = np.asarray(best.x)
        obj = float(best.fun)
        converged, why = verdict(best)
        message = str(best.message) + ("" if converged else f"; not converged: {why}") + rescue + event
    if obs:
        k = len(names)
        if exact:  # central differences for the Laplace terms, batched with the a priori prediction
            h = 1e-5
            pts = np.vstack([eta_hat, eta_hat + h * np.eye(k), eta_hat - h * np.eye(k), np.zeros(k)])
            fs = predict(pts)
            f_hat, f_pop = fs[0], fs[-1]
            jac = ((fs[1 : k + 1] - fs[k + 1 : 2 * k + 1]) / (2 * h)).T
        else:
            if sens is not None:  # exact, and usually memoised from the last iteration
                _, _, f_hat, jac = evaluate(eta_hat)
            else:
                f_hat = predict(eta_hat)
                jac = numeric_jacobian(predict, eta_hat, 1e-3)
            f_pop = predict(np.zeros(k))
        info = laplace_information(terms, f_hat, jac, omega_inv)
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
        variance_ratio={n: float(cov[i, i] / omega[i, i]) for i, n in enumerate(names)},
        converged=converged,
        message=message,
        n_evaluations=count[0],
        n_observations=len(obs),
        starts=tried or starts,
        modes=modes,
        predictions=tuple(map(float, f_hat[: len(obs)])),
        population_predictions=tuple(map(float, f_pop[: len(obs)])),
        observations=obs,
    )


def individual_parameters(twin: Twin, etas: dict[str, float]) -> dict[str, float]:
    """The model's derived parameters (assignment rules) for these ETAs, at time 0's covariates."""
    model = twin.model
    params = dict(etas)
    for name, series in twin.covariates.items():
        params[name] = series.at(0.0)
    for sw in occasion_switches(twin):  # the first occasion's effects
        if sw.time_h == 0:
            params[sw.parameter] = etas.get(sw.eta, 0.0) if sw.eta else 0.0
    skip = {expr for _, expr in outputs(model.card)}
    with model.lock:
        model.reset(params)
        r = model.runner
        out = {}
        for rid in r.getAssignmentRuleIds():
            if rid.startswith("_obs_") or rid in skip:
                continue
            out[rid] = float(r.getValue(rid))
    return out


def calculate_eta_shrinkage(fits: Sequence[MapResult], omega: np.ndarray) -> dict[str, float]:
    """Population ETA shrinkage over subjects: 1 - SD(ETA estimates) / omega (per ETA).

    Per subject, :attr:`MapResult.variance_ratio` gives the posterior-to-prior variance ratio instead.
    """
    if len(fits) < 2:
        raise ValueError("shrinkage needs at least two subjects")
    names = list(fits[0].etas)
    values = np.array([[f.etas[n] for n in names] for f in fits])
    sd = values.std(axis=0, ddof=1)
    return {n: float(1 - sd[i] / np.sqrt(omega[i, i])) for i, n in enumerate(names)}
