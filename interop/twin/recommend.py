"""Dose recommendation: the regimen in the clinician's grid that meets every exposure target.

For each candidate (loading dose x amount x interval x infusion duration) the twin's history is
extended by ``n_doses`` doses from the start time (the first one the loading dose when given).
Exposure is evaluated over the last dosing interval of the new regimen (near steady state):
- ``trough``: the level at the end of that interval (just before the next dose);
- ``peak``: the highest level in it;
- ``auc``: the AUC over 24 h (AUC24). At steady state (default) it is the AUC over the last
  interval scaled to 24 h (AUC_tau x 24 / tau, the mean daily exposure); with
  ``Target.window_start_h`` it is the AUC from that hour after the first new dose over 24 h;
- ``time_above``: % of the last interval above ``threshold``.
The probability of target attainment (PTA) is the share of ETA draws from the Laplace posterior
whose exposures meet *all* targets at once. Candidates whose individual (mode) prediction meets
every target always rank before those that do not; then by PTA, then by how close the mode is to
the middle of the ranges (log scale). When no candidate meets every target, the recommendation
says so. A hold delays the start until the predicted level falls below the trough ceiling.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from interop.errors import TwinError
from interop.schema.patient import Route
from interop.twin.binding import DoseEvent, Twin
from interop.twin.display import auc_unit, format_quantity
from interop.twin.estimate import MapResult
from interop.twin.forecast import sample_etas, simulate_draws
from interop.twin.simulate import simulate

__all__ = [
    "Candidate",
    "Recommendation",
    "RegimenOptions",
    "Target",
    "TargetExposure",
    "continue_regimen",
    "evaluate_regimen",
    "exposure",
    "recommend_dose",
]

TargetKind = Literal["trough", "peak", "auc", "time_above"]
_GRID = 241  # points per evaluated interval
_HOLD_STEP_H = 0.5  # a held first dose starts on a half hour
_HOLD_HORIZON_H = 14 * 24.0


@dataclass(frozen=True)
class Target:
    """Acceptable exposure range: concentrations in the observable's unit, AUC24 in unit*h,
    time above ``threshold`` in % of the interval. ``high=inf`` means "at least ``low``",
    ``low=0`` "at most ``high``"."""

    kind: TargetKind
    low: float
    high: float
    observable: str | None = None
    threshold: float | None = None
    window_start_h: float | None = None  # AUC24 from this hour after the first new dose (None: steady state)

    def __post_init__(self) -> None:
        if not math.isfinite(self.low) or math.isnan(self.high) or not 0 <= self.low < self.high:
            raise ValueError(f"target range must satisfy 0 <= low < high (got {self.low}, {self.high})")
        if self.kind == "time_above" and (self.threshold is None or self.high > 100):
            raise ValueError("time_above needs a threshold concentration and a range in % (<= 100)")
        if self.window_start_h is not None and (self.kind != "auc" or self.window_start_h < 0):
            raise ValueError("a window start applies to an AUC target and must be >= 0")

    @property
    def middle(self) -> float:
        if not math.isfinite(self.high):
            return self.low
        return math.sqrt(self.low * self.high) if self.low > 0 else self.high / 2

    def unit(self, concentration_unit: str) -> str:
        return {"auc": auc_unit(concentration_unit), "time_above": "%"}.get(self.kind, concentration_unit)

    def label(self) -> str:
        """What is measured, e.g. ``AUC24 at steady state``."""
        if self.kind == "auc":
            if self.window_start_h is None:
                return "AUC24 at steady state (last interval x 24 h / interval)"
            w = self.window_start_h
            return f"AUC24 from {w:g} h to {w + 24:g} h after the first new dose"
        if self.kind == "time_above":
            return f"time above {self.threshold:g} (% of the last interval)"
        return f"{self.kind} (last interval)"

    @property
    def name(self) -> str:
        if self.kind == "auc":
            return "AUC24"
        return f"time above {self.threshold:g}" if self.kind == "time_above" else self.kind

    def describe(self, concentration_unit: str) -> str:
        """The range with its unit, e.g. ``trough 15-20 mg/L`` or ``peak >= 8 mg/L``."""
        u = self.unit(concentration_unit)
        name = self.name
        if not math.isfinite(self.high):
            return f"{name} >= {format_quantity(self.low, u)}"
        if self.low == 0:
            return f"{name} <= {format_quantity(self.high, u)}"
        return f"{name} {format_quantity(self.low, '')}-{format_quantity(self.high, u)}"

    def met(self, value: np.ndarray | float) -> np.ndarray:
        return (np.asarray(value) >= self.low) & (np.asarray(value) <= self.high)


@dataclass(frozen=True)
class RegimenOptions:
    """What the clinician allows."""

    amounts: tuple[float, ...]
    intervals_h: tuple[float, ...]
    durations_h: tuple[float | None, ...] = (None,)  # None: as the route gives it (bolus, oral)
    route: Route | None = None  # default: the route of the twin's last dose
    start_h: float | None = None  # default: one interval after the last dose, not before the last level
    n_doses: int = 8
    loading_amounts: tuple[float | None, ...] = (None,)  # first dose of the regimen (None: no loading)
    hold: bool = False  # delay the start until the predicted level is below the trough ceiling

    def __post_init__(self) -> None:
        if not self.amounts or not self.intervals_h or not self.durations_h or not self.loading_amounts:
            raise ValueError("give at least one amount, interval and duration")
        if min(self.amounts) <= 0 or min(self.intervals_h) <= 0 or self.n_doses < 1:
            raise ValueError("amounts, intervals and n_doses must be positive")
        if any(d is not None and d <= 0 for d in self.durations_h):
            raise ValueError("durations must be positive")
        if any(d is not None and d <= 0 for d in self.loading_amounts):
            raise ValueError("loading doses must be positive")
        if self.start_h is not None and (not math.isfinite(self.start_h) or self.start_h < 0):
            raise ValueError("the start must be a finite hour >= 0")


@dataclass(frozen=True)
class TargetExposure:
    """One target's exposure for a candidate: at the mode and the posterior's 90% range."""

    kind: TargetKind
    value: float
    p05: float
    p95: float
    met: bool  # at the mode
    probability: float  # of meeting this target alone


@dataclass(frozen=True)
class Candidate:
    amount: float
    interval_h: float
    duration_h: float | None
    exposure: float  # first target, at the MAP mode
    exposure_p05: float
    exposure_p95: float
    probability: float  # of attaining every target at once under the posterior
    in_range: bool  # every target met at the mode
    loading_amount: float | None = None
    start_h: float = 0.0
    exposures: tuple[TargetExposure, ...] = ()
    summary: dict[str, float] = field(default_factory=dict)  # trough, peak, auc24 at the mode

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Recommendation:
    target: Target  # the first target (see ``targets``)
    best: Candidate
    candidates: tuple[Candidate, ...]  # ranked, best first
    start_h: float
    n_doses: int
    route: Route
    observable: str
    twin: Twin  # the twin with the recommended regimen appended
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()  # holds, no regimen in range, levels above the ceiling
    unit: str = ""  # concentration unit of the observable
    amount_unit: str = "mg"

    def to_dict(self) -> dict[str, object]:
        return {
            "target": dataclasses.asdict(self.target),
            "targets": [
                {**dataclasses.asdict(t), "measured_as": t.label(), "unit": t.unit(self.unit)}
                for t in self.targets
            ],
            "best": self.best.to_dict(),
            "start_h": self.start_h,
            "n_doses": self.n_doses,
            "route": self.route,
            "observable": self.observable,
            "concentration_unit": self.unit,
            "amount_unit": self.amount_unit,
            "summary_units": {"trough": self.unit, "peak": self.unit, "auc24": auc_unit(self.unit)},
            "notes": list(self.notes),
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def summary_line(self) -> str:
        """One sentence for the clinician, every number with its unit."""
        b = self.best
        text = f"{_regimen_text(b, self.amount_unit)} from hour {b.start_h:g}: " + "; ".join(
            f"predicted {t.name} {format_quantity(e.value, t.unit(self.unit))}"
            for t, e in zip(self.targets, b.exposures, strict=True)
        )
        return text + f"; probability of meeting all targets {b.probability:.0%}"


def _regimen_text(c: Candidate, amount_unit: str) -> str:
    text = ""
    if c.loading_amount is not None:
        text = f"loading dose {format_quantity(c.loading_amount, amount_unit)}, then "
    text += f"{format_quantity(c.amount, amount_unit)} every {format_quantity(c.interval_h, 'h')}"
    if c.duration_h:
        text += f" over {format_quantity(c.duration_h, 'h')}"
    return text


def extend_regimen(
    twin: Twin,
    route: Route,
    amount: float,
    interval_h: float,
    duration_h: float | None,
    start_h: float,
    n_doses: int,
    loading_amount: float | None = None,
) -> Twin:
    """``twin`` with ``n_doses`` more doses every ``interval_h`` from ``start_h`` (the first one
    ``loading_amount`` when given); recorded doses from ``start_h`` on are replaced."""
    inputs = twin.card.dosing_for(route)
    if not inputs:
        raise TwinError(f"model {twin.card.id} takes no {route} dose", field="route")
    new = [
        DoseEvent(
            start_h + k * interval_h,
            (loading_amount if k == 0 and loading_amount is not None else amount) * inp.fraction,
            inp,
            duration_h if inp.duration_parameter is None else None,
            f"proposed-{k}",
        )
        for k in range(n_doses)
        for inp in inputs
    ]
    kept = [d for d in twin.doses if d.time_h < start_h]
    return dataclasses.replace(twin, doses=tuple(sorted([*kept, *new], key=lambda e: e.time_h)))


def continue_regimen(twin: Twin, until_h: float) -> tuple[Twin, str]:
    """Continued therapy: the last recorded dose repeated at the last dosing interval up to ``until_h``,
    and a sentence saying what was assumed."""
    times = sorted({d.time_h for d in twin.doses})
    if len(times) < 2:
        raise TwinError("continued therapy needs at least two recorded doses (to know the interval)")
    last = [d for d in twin.doses if d.time_h == times[-1]]
    tau = times[-1] - times[-2]
    amount = last[0].amount / last[0].input.fraction
    n = int(math.floor((until_h - times[-1]) / tau + 1e-9))
    if n < 1:
        return twin, "continued therapy: no further dose before the end of the forecast"
    unit = last[0].input.amount_unit
    extended = extend_regimen(twin, last[0].input.route, amount, tau, last[0].duration_h, times[-1] + tau, n)
    text = (
        f"continued therapy assumed: {format_quantity(amount, unit)} every {format_quantity(tau, 'h')} "
        f"({n} more dose(s) after hour {times[-1]:g}, as the last recorded dose and interval)"
    )
    return extended, text


def exposure(target: Target, grid_h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The target's exposure metric over one interval (``values`` is draws x grid); AUCs are
    scaled to 24 h (AUC24 = AUC over the grid x 24 / its span)."""
    span = grid_h[-1] - grid_h[0]
    if target.kind == "trough":
        return values[:, -1]
    if target.kind == "peak":
        return values.max(axis=1)
    if target.kind == "auc":
        return np.trapezoid(values, grid_h, axis=1) * (24.0 / span)
    assert target.threshold is not None
    above = (values > target.threshold).astype(float)
    return np.trapezoid(above, grid_h, axis=1) / span * 100.0


def _trough_ceiling(targets: Sequence[Target]) -> float | None:
    highs = [t.high for t in targets if t.kind == "trough" and math.isfinite(t.high)]
    return min(highs) if highs else None


def _hold_until(
    twin: Twin, etas: dict[str, float], observable: str, start: float, ceiling: float
) -> float | None:
    """First half hour from ``start`` at which the predicted level of the recorded history is at or
    below ``ceiling`` (None within two weeks: the level does not fall)."""
    history = dataclasses.replace(twin, doses=tuple(d for d in twin.doses if d.time_h < start))
    grid = start + np.arange(0.0, _HOLD_HORIZON_H + _HOLD_STEP_H, _HOLD_STEP_H)
    level = simulate(history, grid, etas).values[observable]
    below = np.nonzero(level <= ceiling)[0]
    return float(grid[below[0]]) if len(below) else None


def recommend_dose(
    twin: Twin,
    fit: MapResult,
    target: Target | Sequence[Target],
    options: RegimenOptions,
    *,
    n_draws: int = 200,
    seed: int = 0,
) -> Recommendation:
    """The regimen of ``options`` that best meets every target for this twin (see module doc).

    ``twin``, ``fit``: the demo patient and its MAP fit, as in :func:`estimate_map`'s example.

    >>> options = RegimenOptions(amounts=(240.0, 320.0), intervals_h=(24.0, 36.0))
    >>> rec = recommend_dose(twin, fit, Target("trough", 0.0, 1.0), options, n_draws=50)
    >>> rec.best.amount in options.amounts and rec.best.interval_h in options.intervals_h
    True
    """
    targets = (target,) if isinstance(target, Target) else tuple(target)
    if not targets:
        raise TwinError("give at least one target", field="target")
    if not twin.doses and options.route is None:
        raise TwinError("no dose history: give the route", field="route")
    route: Route = options.route or twin.doses[-1].input.route
    observable = targets[0].observable or twin.card.observables[0].id
    if any((t.observable or observable) != observable for t in targets):
        raise TwinError("all targets must concern the same observable", field="observable")
    by_id = {o.id: o for o in twin.card.observables}
    if observable not in by_id:
        raise TwinError(f"model {twin.card.id} has no observable {observable!r}", field="observable")
    unit = by_id[observable].unit
    inputs = twin.card.dosing_for(route)
    amount_unit = inputs[0].amount_unit if inputs else twin.card.dosing[0].amount_unit
    last_dose = max((d.time_h for d in twin.doses), default=0.0)
    last_obs = max((o.time_h for o in twin.observations), default=0.0)
    names = list(fit.etas)
    all_etas = np.vstack([np.array([list(fit.etas.values())]), sample_etas(fit, n_draws, seed)])
    ceiling = _trough_ceiling(targets)
    notes: list[str] = []
    starts: dict[float, float] = {}
    for tau in options.intervals_h:
        start = options.start_h if options.start_h is not None else max(last_dose + tau, last_obs)
        if ceiling is not None and twin.doses:
            level = float(simulate(twin, [start], fit.etas).values[observable][0])
            if level > ceiling:
                at = f"predicted level {format_quantity(level, unit)} at hour {start:g}"
                if options.hold:
                    held = _hold_until(twin, fit.etas, observable, start, ceiling)
                    if held is None:
                        raise TwinError(
                            f"{at} does not fall below the trough ceiling {format_quantity(ceiling, unit)} "
                            "within two weeks: no start can be proposed",
                            source=twin.patient_id,
                        )
                    notes.append(
                        f"hold: {at} is above the trough ceiling {format_quantity(ceiling, unit)}; "
                        f"the first dose every {tau:g} h waits until hour {held:g}, when the level is "
                        "predicted to have fallen to the ceiling"
                    )
                    start = held
                else:
                    notes.append(
                        f"warning: {at} is already above the trough ceiling "
                        f"{format_quantity(ceiling, unit)}; consider a hold (option hold)"
                    )
        starts[tau] = start
    candidates = []
    grid_n = _GRID
    for loading, amount, tau, dur in itertools.product(
        options.loading_amounts, options.amounts, options.intervals_h, options.durations_h
    ):
        start = starts[tau]
        t0 = start + (options.n_doses - 1) * tau
        last = np.linspace(t0, t0 + tau, grid_n)
        windows = {
            t.window_start_h: np.linspace(start + t.window_start_h, start + t.window_start_h + 24.0, grid_n)
            for t in targets
            if t.window_start_h is not None
        }
        grid = np.concatenate([last, *windows.values()])
        extended = extend_regimen(twin, route, amount, tau, dur, start, options.n_doses, loading)
        values = simulate_draws(extended, grid, names, all_etas)[observable]
        slices: dict[float | None, slice] = {None: slice(0, grid_n)}
        for k, w in enumerate(windows):
            slices[w] = slice(grid_n * (k + 1), grid_n * (k + 2))
        exposures = []
        hit_all = np.ones(len(all_etas) - 1, dtype=bool)
        for t in targets:
            s = slices[t.window_start_h]
            metric = exposure(t, grid[s], values[:, s])
            hit = t.met(metric[1:])
            hit_all &= hit
            exposures.append(
                TargetExposure(
                    t.kind,
                    float(metric[0]),
                    float(np.percentile(metric[1:], 5)),
                    float(np.percentile(metric[1:], 95)),
                    bool(t.met(metric[0])),
                    float(hit.mean()),
                )
            )
        mode_last = values[:1, :grid_n]
        summary = {
            "trough": float(mode_last[0, -1]),
            "peak": float(mode_last.max()),
            "auc24": float(np.trapezoid(mode_last[0], last) * 24.0 / tau),
        }
        first = exposures[0]
        candidates.append(
            Candidate(
                amount=float(amount),
                interval_h=float(tau),
                duration_h=dur,
                exposure=first.value,
                exposure_p05=first.p05,
                exposure_p95=first.p95,
                probability=float(hit_all.mean()),
                in_range=all(e.met for e in exposures),
                loading_amount=None if loading is None else float(loading),
                start_h=float(start),
                exposures=tuple(exposures),
                summary=summary,
            )
        )

    def distance(c: Candidate) -> float:
        total = 0.0
        for t, e in zip(targets, c.exposures, strict=True):
            v = max(e.value, 1e-300)
            if math.isfinite(t.high) and t.low > 0:
                total += abs(math.log(v / t.middle))
            elif not t.met(v):  # one-sided: only the shortfall counts
                bound = t.low if v < t.low else t.high
                total += abs(math.log(v / max(bound, 1e-300)))
        return total

    # Inside every target at the mode first: a regimen predicted outside never outranks one inside.
    ranked = sorted(candidates, key=lambda c: (not c.in_range, -round(c.probability, 3), distance(c)))
    best = ranked[0]
    if not best.in_range:
        notes.append(
            "no regimen in the allowed grid meets every target at the individual prediction; "
            "shown: the highest probability of meeting them, then the closest (widen the grid)"
        )
    chosen = extend_regimen(
        twin,
        route,
        best.amount,
        best.interval_h,
        best.duration_h,
        best.start_h,
        options.n_doses,
        best.loading_amount,
    )
    return Recommendation(
        targets[0],
        best,
        tuple(ranked),
        best.start_h,
        options.n_doses,
        route,
        observable,
        chosen,
        targets,
        tuple(dict.fromkeys(notes)),
        unit,
        amount_unit,
    )


def evaluate_regimen(
    twin: Twin,
    fit: MapResult,
    targets: Sequence[Target],
    *,
    amount: float,
    interval_h: float,
    n_doses: int,
    start_h: float | None = None,
    duration_h: float | None = None,
    loading_amount: float | None = None,
    route: Route | None = None,
    hold: bool = False,
    n_draws: int = 200,
    seed: int = 0,
) -> Recommendation:
    """Forecast a planned regimen the user typed in: its exposures and probability of meeting
    ``targets`` (default: a trough reported with no range restriction)."""
    options = RegimenOptions(
        (amount,), (interval_h,), (duration_h,), route, start_h, n_doses, (loading_amount,), hold
    )
    if not targets:
        targets = (Target("trough", 0.0, math.inf),)
    return recommend_dose(twin, fit, targets, options, n_draws=n_draws, seed=seed)


def regimen_grid(
    amounts: Sequence[float],
    intervals_h: Sequence[float],
    durations_h: Sequence[float | None] = (None,),
    **kwargs: object,
) -> RegimenOptions:
    """Convenience constructor from sequences."""
    return RegimenOptions(tuple(amounts), tuple(intervals_h), tuple(durations_h), **kwargs)  # type: ignore[arg-type]
