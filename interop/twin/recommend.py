"""Dose recommendation: the regimen in the clinician's grid that reaches an exposure target best.

For each candidate (amount x interval x infusion duration) the twin's history is extended by
``n_doses`` doses from ``start_h``; exposure is evaluated over the last dosing interval
(near steady state): the trough (level at the end of the interval), the peak (highest level),
the AUC over the interval (trapezoids on a fine grid) or the time above a concentration (% of
the interval). The probability of target attainment (PTA) is the share of ETA draws from the
Laplace posterior whose exposure falls in the target range. Candidates rank by PTA, then by
how close the individual (mode) exposure is to the middle of the range (log scale).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from interop.errors import TwinError
from interop.schema.patient import Route
from interop.twin.binding import DoseEvent, Twin
from interop.twin.estimate import MapResult
from interop.twin.forecast import sample_etas, simulate_draws

__all__ = ["Candidate", "Recommendation", "RegimenOptions", "Target", "exposure", "recommend_dose"]

TargetKind = Literal["trough", "peak", "auc", "time_above"]
_GRID = 241  # points per evaluated interval


@dataclass(frozen=True)
class Target:
    """Acceptable exposure range: concentrations in the observable's unit, AUC in unit*h,
    time above ``threshold`` in % of the interval."""

    kind: TargetKind
    low: float
    high: float
    observable: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or not 0 <= self.low < self.high:
            raise ValueError(f"target range must satisfy 0 <= low < high (got {self.low}, {self.high})")
        if self.kind == "time_above" and (self.threshold is None or self.high > 100):
            raise ValueError("time_above needs a threshold concentration and a range in % (<= 100)")

    @property
    def middle(self) -> float:
        return math.sqrt(self.low * self.high) if self.low > 0 else self.high / 2


@dataclass(frozen=True)
class RegimenOptions:
    """What the clinician allows."""

    amounts: tuple[float, ...]
    intervals_h: tuple[float, ...]
    durations_h: tuple[float | None, ...] = (None,)  # None: as the route gives it (bolus, oral)
    route: Route | None = None  # default: the route of the twin's last dose
    start_h: float | None = None  # default: one interval after the last dose, not before the last level
    n_doses: int = 8

    def __post_init__(self) -> None:
        if not self.amounts or not self.intervals_h or not self.durations_h:
            raise ValueError("give at least one amount, interval and duration")
        if min(self.amounts) <= 0 or min(self.intervals_h) <= 0 or self.n_doses < 1:
            raise ValueError("amounts, intervals and n_doses must be positive")
        if any(d is not None and d <= 0 for d in self.durations_h):
            raise ValueError("durations must be positive")


@dataclass(frozen=True)
class Candidate:
    amount: float
    interval_h: float
    duration_h: float | None
    exposure: float  # at the MAP mode
    exposure_p05: float
    exposure_p95: float
    probability: float  # of target attainment under the posterior
    in_range: bool

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Recommendation:
    target: Target
    best: Candidate
    candidates: tuple[Candidate, ...]  # ranked, best first
    start_h: float
    n_doses: int
    route: Route
    observable: str
    twin: Twin  # the twin with the recommended regimen appended

    def to_dict(self) -> dict[str, object]:
        return {
            "target": dataclasses.asdict(self.target),
            "best": self.best.to_dict(),
            "start_h": self.start_h,
            "n_doses": self.n_doses,
            "route": self.route,
            "observable": self.observable,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def extend_regimen(
    twin: Twin,
    route: Route,
    amount: float,
    interval_h: float,
    duration_h: float | None,
    start_h: float,
    n_doses: int,
) -> Twin:
    """``twin`` with ``n_doses`` more doses every ``interval_h`` from ``start_h``."""
    inputs = twin.card.dosing_for(route)
    if not inputs:
        raise TwinError(f"model {twin.card.id} takes no {route} dose", field="route")
    new = [
        DoseEvent(
            start_h + k * interval_h,
            amount * inp.fraction,
            inp,
            duration_h if inp.duration_parameter is None else None,
            f"proposed-{k}",
        )
        for k in range(n_doses)
        for inp in inputs
    ]
    kept = [d for d in twin.doses if d.time_h < start_h]
    return dataclasses.replace(twin, doses=tuple(sorted([*kept, *new], key=lambda e: e.time_h)))


def exposure(target: Target, grid_h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The target's exposure metric over one interval; ``values`` is (draws x grid)."""
    if target.kind == "trough":
        return values[:, -1]
    if target.kind == "peak":
        return values.max(axis=1)
    if target.kind == "auc":
        return np.trapezoid(values, grid_h, axis=1)
    assert target.threshold is not None
    above = (values > target.threshold).astype(float)
    span = grid_h[-1] - grid_h[0]
    return np.trapezoid(above, grid_h, axis=1) / span * 100.0


def recommend_dose(
    twin: Twin,
    fit: MapResult,
    target: Target,
    options: RegimenOptions,
    *,
    n_draws: int = 200,
    seed: int = 0,
) -> Recommendation:
    """The regimen of ``options`` that best reaches ``target`` for this twin (see module doc).

    ``twin``, ``fit``: the demo patient and its MAP fit, as in :func:`estimate_map`'s example.

    >>> options = RegimenOptions(amounts=(240.0, 320.0), intervals_h=(24.0, 36.0))
    >>> rec = recommend_dose(twin, fit, Target("trough", 0.0, 1.0), options, n_draws=50)
    >>> rec.best.amount in options.amounts and rec.best.interval_h in options.intervals_h
    True
    """
    if not twin.doses and options.route is None:
        raise TwinError("no dose history: give the route", field="route")
    route: Route = options.route or twin.doses[-1].input.route
    observable = target.observable or twin.card.observables[0].id
    if observable not in {o.id for o in twin.card.observables}:
        raise TwinError(f"model {twin.card.id} has no observable {observable!r}", field="observable")
    last_dose = max((d.time_h for d in twin.doses), default=0.0)
    last_obs = max((o.time_h for o in twin.observations), default=0.0)
    names = list(fit.etas)
    draws = sample_etas(fit, n_draws, seed)
    mode = np.array([list(fit.etas.values())])
    all_etas = np.vstack([mode, draws])
    candidates = []
    starts = {}
    for amount, tau, dur in itertools.product(options.amounts, options.intervals_h, options.durations_h):
        start = options.start_h if options.start_h is not None else max(last_dose + tau, last_obs)
        starts[(amount, tau, dur)] = start
        t0 = start + (options.n_doses - 1) * tau
        grid = np.linspace(t0, t0 + tau, _GRID)
        extended = extend_regimen(twin, route, amount, tau, dur, start, options.n_doses)
        values = simulate_draws(extended, grid, names, all_etas)[observable]
        metric = exposure(target, grid, values)
        hit = (metric[1:] >= target.low) & (metric[1:] <= target.high)
        candidates.append(
            Candidate(
                amount=float(amount),
                interval_h=float(tau),
                duration_h=dur,
                exposure=float(metric[0]),
                exposure_p05=float(np.percentile(metric[1:], 5)),
                exposure_p95=float(np.percentile(metric[1:], 95)),
                probability=float(hit.mean()),
                in_range=bool(target.low <= metric[0] <= target.high),
            )
        )

    def distance(c: Candidate) -> float:
        return abs(math.log(max(c.exposure, 1e-300) / target.middle)) if target.middle > 0 else c.exposure

    ranked = sorted(candidates, key=lambda c: (-round(c.probability, 3), distance(c)))
    best = ranked[0]
    key = (best.amount, best.interval_h, best.duration_h)
    chosen = extend_regimen(
        twin, route, best.amount, best.interval_h, best.duration_h, starts[key], options.n_doses
    )
    return Recommendation(
        target, best, tuple(ranked), starts[key], options.n_doses, route, observable, chosen
    )


def regimen_grid(
    amounts: Sequence[float],
    intervals_h: Sequence[float],
    durations_h: Sequence[float | None] = (None,),
    **kwargs: object,
) -> RegimenOptions:
    """Convenience constructor from sequences."""
    return RegimenOptions(tuple(amounts), tuple(intervals_h), tuple(durations_h), **kwargs)  # type: ignore[arg-type]
