"""A posteriori forecasts with prediction intervals from the Laplace posterior of the ETAs.

ETAs are drawn from N(eta_hat, covariance) (the MAP mode and its Laplace covariance), each draw
is simulated on the grid, and the 5th/95th percentiles give the 90% interval of the individual
prediction (parameter uncertainty). The residual error can be added to make a prediction
interval for a future measured level (``include_residual=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from interop.twin.binding import Twin
from interop.twin.estimate import MapResult
from interop.twin.linear import LinearPredictor, linear_system
from interop.twin.simulate import simulate

__all__ = ["Forecast", "forecast", "sample_etas", "simulate_draws"]


@dataclass(frozen=True)
class Forecast:
    times_h: np.ndarray
    population: dict[str, np.ndarray]  # a priori (ETA = 0)
    individual: dict[str, np.ndarray]  # a posteriori (ETA = mode)
    lower: dict[str, np.ndarray]  # 5th percentile
    upper: dict[str, np.ndarray]  # 95th percentile
    level: float
    n_draws: int
    include_residual: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "times_h": self.times_h.tolist(),
            "level": self.level,
            "n_draws": self.n_draws,
            "include_residual": self.include_residual,
            "population": {k: v.tolist() for k, v in self.population.items()},
            "individual": {k: v.tolist() for k, v in self.individual.items()},
            "lower": {k: v.tolist() for k, v in self.lower.items()},
            "upper": {k: v.tolist() for k, v in self.upper.items()},
        }


def sample_etas(fit: MapResult, n_draws: int, seed: int = 0) -> np.ndarray:
    """Draws (n_draws x n_etas) from the Laplace posterior N(mode, covariance)."""
    mean = np.array(list(fit.etas.values()))
    cov = fit.covariance
    if not np.all(np.isfinite(cov)):
        cov = np.zeros_like(cov)
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(mean, cov, size=n_draws, method="eigh")


def simulate_draws(
    twin: Twin, times_h: Sequence[float] | np.ndarray, names: Sequence[str], draws: np.ndarray
) -> dict[str, np.ndarray]:
    """Each observable at ``times_h`` for each ETA draw (draws x times)."""
    times = np.asarray(times_h, dtype=float)
    obs_ids = [o.id for o in twin.card.observables]
    out = {o: np.empty((len(draws), len(times))) for o in obs_ids}
    lin = linear_system(twin.model)
    if lin is not None:
        pred = LinearPredictor(lin, twin, times)
        idx = np.array([lin.index[n] for n in names], dtype=int)
        with twin.model.lock:
            for k, eta in enumerate(draws):
                v = pred.base.copy()
                v[idx] = eta
                y = pred(v)
                for i, o in enumerate(obs_ids):
                    out[o][k] = y[i]
        return out
    for k, eta in enumerate(draws):
        p = simulate(twin, times, dict(zip(names, map(float, eta), strict=True)))
        for o in obs_ids:
            out[o][k] = p.values[o]
    return out


def forecast(
    twin: Twin,
    fit: MapResult,
    times_h: Sequence[float] | np.ndarray,
    *,
    n_draws: int = 500,
    level: float = 0.9,
    include_residual: bool = False,
    seed: int = 0,
) -> Forecast:
    """Population and individual predictions on ``times_h`` with a ``level`` interval.

    ``twin``, ``fit``: the demo patient and its MAP fit, as in :func:`estimate_map`'s example.

    >>> fc = forecast(twin, fit, [24.0, 48.0], n_draws=100)
    >>> low, mid, high = (s["gentamicin"][1] for s in (fc.lower, fc.individual, fc.upper))
    >>> bool(low < mid < high), fc.level
    (True, 0.9)
    """
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    times = np.asarray(times_h, dtype=float)
    names = list(fit.etas)
    pop = simulate(twin, times)
    ind = simulate(twin, times, fit.etas)
    draws = sample_etas(fit, n_draws, seed)
    sims = simulate_draws(twin, times, names, draws)
    rng = np.random.default_rng(seed + 1)
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    lower, upper = {}, {}
    for o, values in sims.items():
        if include_residual:
            err = twin.card.error_for(o)
            if err is not None:
                eps = rng.standard_normal(values.shape)
                if err.model == "exponential":
                    values = values * np.exp(err.proportional_sd * eps)
                else:
                    sd = np.sqrt(
                        err.additive_sd**2 * (err.model != "proportional")
                        + (err.proportional_sd * values) ** 2 * (err.model != "additive")
                    )
                    values = values + sd * eps
        lower[o] = np.percentile(values, lo_q, axis=0)
        upper[o] = np.percentile(values, hi_q, axis=0)
    return Forecast(times, pop.values, ind.values, lower, upper, level, n_draws, include_residual)
