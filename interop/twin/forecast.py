"""A posteriori forecasts with prediction intervals from the Laplace posterior of the ETAs.

ETAs are drawn from N(eta_hat, covariance) (the MAP mode and its Laplace covariance), each draw
is simulated on the grid. Two intervals are always computed, each labelled:
- the interval of the *individual prediction* (parameter uncertainty only: where the patient's
  true concentration curve lies);
- the *prediction interval of a new measured level* (the same draws plus the card's residual
  error: where a level measured at that time should fall).
``lower``/``upper`` are the prediction interval of a new level unless ``include_residual=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from interop.schema import ResidualError
from interop.twin.binding import Twin
from interop.twin.estimate import MapResult
from interop.twin.linear import LinearPredictor, linear_system
from interop.twin.model import outputs, sd_output
from interop.twin.simulate import simulate

__all__ = ["Forecast", "add_residual", "forecast", "sample_etas", "simulate_draws"]


@dataclass(frozen=True)
class Forecast:
    times_h: np.ndarray
    population: dict[str, np.ndarray]  # a priori (ETA = 0)
    individual: dict[str, np.ndarray]  # a posteriori (ETA = mode)
    lower: dict[str, np.ndarray]  # lower bound of the interval selected by include_residual
    upper: dict[str, np.ndarray]
    level: float
    n_draws: int
    include_residual: bool
    individual_lower: dict[str, np.ndarray] = field(default_factory=dict)  # individual prediction
    individual_upper: dict[str, np.ndarray] = field(default_factory=dict)
    observation_lower: dict[str, np.ndarray] = field(default_factory=dict)  # a new measured level
    observation_upper: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def interval_kind(self) -> str:
        """What ``lower``/``upper`` are, for labels."""
        return INTERVAL_NEW_LEVEL if self.include_residual else INTERVAL_INDIVIDUAL

    def to_dict(self) -> dict[str, object]:
        pct = f"{self.level:.0%}"
        return {
            "times_h": self.times_h.tolist(),
            "level": self.level,
            "n_draws": self.n_draws,
            "include_residual": self.include_residual,
            "interval": f"{pct} {self.interval_kind}",
            "population": {k: v.tolist() for k, v in self.population.items()},
            "individual": {k: v.tolist() for k, v in self.individual.items()},
            "lower": {k: v.tolist() for k, v in self.lower.items()},
            "upper": {k: v.tolist() for k, v in self.upper.items()},
            "intervals": {
                f"{pct} {INTERVAL_INDIVIDUAL}": {
                    "lower": {k: v.tolist() for k, v in self.individual_lower.items()},
                    "upper": {k: v.tolist() for k, v in self.individual_upper.items()},
                },
                f"{pct} {INTERVAL_NEW_LEVEL}": {
                    "lower": {k: v.tolist() for k, v in self.observation_lower.items()},
                    "upper": {k: v.tolist() for k, v in self.observation_upper.items()},
                },
            },
        }


INTERVAL_INDIVIDUAL = "interval of the individual prediction (parameter uncertainty, no residual error)"
INTERVAL_NEW_LEVEL = "prediction interval of a new measured level (with residual error)"


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
    """Each output (observables, then sbml-form error SDs) at ``times_h`` for each ETA draw
    (draws x times)."""
    times = np.asarray(times_h, dtype=float)
    obs_ids = [oid for oid, _ in outputs(twin.card)]
    out = {o: np.empty((len(draws), len(times))) for o in obs_ids}
    lin = linear_system(twin.model) if not twin.resets else None  # resets: roadrunner's event loop
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
            out[o][k] = p.output(o)
    return out


def forecast(
    twin: Twin,
    fit: MapResult,
    times_h: Sequence[float] | np.ndarray,
    *,
    n_draws: int = 500,
    level: float = 0.9,
    include_residual: bool = True,
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
    observables = [o.id for o in twin.card.observables]
    pop = simulate(twin, times).values
    ind = simulate(twin, times, fit.etas).values
    draws = sample_etas(fit, n_draws, seed)
    sims = simulate_draws(twin, times, names, draws)
    rng = np.random.default_rng(seed + 1)
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    ind_lo, ind_hi, obs_lo, obs_hi = {}, {}, {}, {}
    for o in observables:
        values = sims[o]
        ind_lo[o] = np.percentile(values, lo_q, axis=0)
        ind_hi[o] = np.percentile(values, hi_q, axis=0)
        eps = rng.standard_normal(values.shape)
        noisy = add_residual(twin.card.error_for(o), values, eps, sims.get(sd_output(o)))
        obs_lo[o] = np.percentile(noisy, lo_q, axis=0)
        obs_hi[o] = np.percentile(noisy, hi_q, axis=0)
    lower, upper = (obs_lo, obs_hi) if include_residual else (ind_lo, ind_hi)
    return Forecast(
        times,
        {o: pop[o] for o in observables},
        {o: ind[o] for o in observables},
        lower,
        upper,
        level,
        n_draws,
        include_residual,
        ind_lo,
        ind_hi,
        obs_lo,
        obs_hi,
    )


def add_residual(
    error: ResidualError | None, values: np.ndarray, eps: np.ndarray, sd: np.ndarray | None = None
) -> np.ndarray:
    """Measured levels from predictions and standard-normal draws, by the card's error form
    (:meth:`ResidualError.observe`; ``sd``: the simulated SDs of an sbml-form error)."""
    if error is None:
        return np.asarray(values).copy()
    return error.observe(values, eps, sd)
