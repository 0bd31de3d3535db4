"""Simulate a twin: doses as events and input rates, covariates switched at record times.

The integration runs segment by segment between breakpoints (dose starts, infusion ends,
covariate changes); outputs at a breakpoint are taken before the events at that time, so a
trough sampled at a dose time is the pre-dose level, as in NONMEM.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import roadrunner

from interop.errors import ModelError, TwinError, roadrunner_errors
from interop.schema import ModelCard
from interop.twin.binding import Twin
from interop.twin.model import CompiledModel, input_parameter, sd_output
from interop.twin.occasions import OccasionSwitch, occasion_switches

__all__ = ["Prediction", "as_prediction", "predict", "simulate", "simulate_observations"]


@dataclass(frozen=True)
class Prediction:
    times_h: np.ndarray
    values: dict[str, np.ndarray]  # observable id -> predictions at times_h
    sds: dict[str, np.ndarray] = field(default_factory=dict)  # observable id -> its sbml-form error's SD

    def output(self, output_id: str) -> np.ndarray:
        """An output of :func:`interop.twin.model.outputs`: an observable, or an SD by its
        :func:`interop.twin.model.sd_output` id."""
        sds = {sd_output(k): v for k, v in self.sds.items()}
        return self.values[output_id] if output_id in self.values else sds[output_id]


def as_prediction(card: ModelCard, times: np.ndarray, rows: np.ndarray) -> Prediction:
    """A prediction from the rows of every output (:func:`interop.twin.model.outputs`, in order)."""
    n = len(card.observables)
    sds = [r.observable for r in card.residual_error if r.needs_sd]
    return Prediction(
        times,
        {o.id: rows[i] for i, o in enumerate(card.observables)},
        {oid: rows[n + k] for k, oid in enumerate(sds)},
    )


Method = Literal["auto", "linear", "roadrunner"]


@contextmanager
def _noting(twin: Twin) -> Iterator[None]:
    """A failed simulation's error also names what the twin assumed (its notes: a covariate at
    a placeholder value, say), which is often why it failed."""
    try:
        yield
    except (ModelError, TwinError) as exc:
        if not twin.notes:
            raise
        raise type(exc)(
            f"{'; '.join(twin.notes)}: {exc.message}", source=exc.source, field=exc.field
        ) from exc


def simulate(
    twin: Twin,
    times_h: Sequence[float] | np.ndarray,
    etas: Mapping[str, float] | None = None,
    parameters: Mapping[str, float] | None = None,
    *,
    method: Method = "auto",
) -> Prediction:
    """Predictions of every observable at ``times_h`` (hours from the twin's origin).

    ``etas`` (default all 0: the a priori, population prediction) and ``parameters`` overlay
    the model's defaults; covariates come from the twin. ``method="auto"`` uses the closed-form
    path of :mod:`interop.twin.linear` when the model is linear in its states, else roadrunner.
    """
    model = twin.model
    times = np.asarray(times_h, dtype=float)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError("times_h must be a 1-D array of finite numbers")
    if method != "roadrunner":
        from interop.twin.linear import linear_system, predict_linear

        lin = linear_system(model) if not twin.resets else None  # resets: the event loop below
        if lin is None and method == "linear":
            raise TwinError(
                f"model {model.card.id} is not linear in its states, or the twin has state resets",
                source=twin.patient_id,
            )
        if lin is not None:
            merged = {**(parameters or {}), **(etas or {})}
            with model.lock, _noting(twin):
                out = predict_linear(lin, twin, times, merged)
                _check_finite(out, twin)
            return as_prediction(model.card, times, out)
    params: dict[str, float] = dict(parameters or {})
    params.update(etas or {})
    with _noting(twin):
        values = run_segments(model, twin, times, params, model.observable_selections)
        _check_finite(values, twin)
    return as_prediction(model.card, times, values)


Action = tuple[str, str, float]  # (set | bolus | rate, id, value)


def run_segments(
    model: CompiledModel,
    twin: Twin,
    times: np.ndarray,
    params: Mapping[str, float],
    selections: Sequence[str],
    occasion_weights: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Values of ``selections`` (rows) at ``times`` (columns) from one roadrunner run of the twin.

    One reset per run, then segment by segment between breakpoints with the state carried over;
    nothing is integrated past the last output time. ``model`` may be another compilation of
    the twin's model (the sensitivity system of :mod:`interop.twin.sensitivity`) with the same
    ids; ``occasion_weights`` maps an occasion ETA to a parameter set to 1 while that ETA is the
    current effect of its occasion parameter and 0 otherwise.
    """
    order = np.argsort(times, kind="stable")
    values = np.full((len(selections), len(times)), np.nan)
    initial, switch = initial_parameters(twin, params, occasion_weights)
    with model.lock, roadrunner_errors(source=f"twin {twin.patient_id}"):
        model.reset(initial)
        r = model.runner
        m = r.model  # the executable model's get/setValue: same ids, a tenth of RoadRunner's cost
        states = [*m.getFloatingSpeciesIds(), *r.getRateRuleIds()] if twin.resets else []
        actions = twin_actions(twin, m.getValue, states, switch)
        values[:, order] = integrate_segments(r, times[order].tolist(), actions, selections).T
    return values


def initial_parameters(
    twin: Twin, params: Mapping[str, float], occasion_weights: Mapping[str, str] | None = None
) -> tuple[dict[str, float], Callable[[OccasionSwitch], list[Action]]]:
    """Parameters at time 0 (``params`` with covariates and first occasions) and the actions of an
    occasion switch (the occasion parameter, and the weights of :func:`run_segments`)."""
    params = dict(params)
    for name, series in twin.covariates.items():
        params[name] = series.at(0.0)
    weights = dict(occasion_weights or {})
    weights_of: dict[str, list[tuple[str, str]]] = defaultdict(list)  # occasion parameter -> (eta, weight id)
    for occ in twin.card.random_effects.occasions:
        weights_of[occ.parameter] += [(e, weights[e]) for e in occ.etas if e in weights]
    etas = dict(params)

    def switch(sw: OccasionSwitch) -> list[Action]:
        out = [("set", sw.parameter, etas.get(sw.eta, 0.0) if sw.eta else 0.0)]
        return out + [("set", w, 1.0 if e == sw.eta else 0.0) for e, w in weights_of[sw.parameter]]

    for sw in occasion_switches(twin):
        if sw.time_h == 0:
            for _, pid, v in switch(sw):
                params[pid] = v
    return params, switch


def twin_actions(
    twin: Twin,
    value: Callable[[str], float],
    states: Sequence[str],
    switch: Callable[[OccasionSwitch], list[Action]],
) -> dict[float, list[Action]]:
    """What happens when: doses, infusion ends, covariate changes, occasion switches, resets.

    ``value`` reads the model after its reset (dose parameters, initial states for resets)."""
    actions: dict[float, list[Action]] = defaultdict(list)
    resets = sorted(t for t in twin.resets if t > 0)
    if resets:  # a reset returns every state to its value at time 0 and stops every input
        initial = {s: float(value(s)) for s in states}
        inputs = sorted({input_parameter(ev.input.target) for ev in twin.doses})
        for t in resets:
            actions[t] += [("set", sid, v) for sid, v in initial.items()]
            actions[t] += [("set", pid, 0.0) for pid in inputs]

    def param(ref: float | str | None, default: float) -> float:
        return default if ref is None else float(value(ref)) if isinstance(ref, str) else float(ref)

    for ev in twin.doses:
        amount = ev.amount * param(ev.input.bioavailability, 1.0)
        start = ev.time_h + param(ev.input.lag_time_h, 0.0)
        duration = ev.duration_h
        if duration is None and ev.input.duration_parameter:
            duration = param(ev.input.duration_parameter, 0.0)
        if duration is None or duration <= 0:
            actions[start].append(("bolus", ev.input.target, amount))
        else:
            rate = amount / duration
            end = start + duration
            cut = next((t for t in resets if start < t < end), None)  # a reset stops the input
            actions[start].append(("rate", input_parameter(ev.input.target), rate))
            if cut is None:
                actions[end].append(("rate", input_parameter(ev.input.target), -rate))
    for name, series in twin.covariates.items():
        for t, v in series.changes():
            if t >= 0:  # earlier changes are already in the value at t=0
                actions[t].append(("set", name, v))
    for sw in occasion_switches(twin):
        if sw.time_h > 0:
            actions[sw.time_h][:0] = switch(sw)
    if any(t < 0 for t in actions):
        raise TwinError("a dose or covariate change falls before the twin's origin", source=twin.patient_id)
    return actions


def integrate_segments(
    r: Any, ts: list[float], actions: Mapping[float, list[Action]], selections: Sequence[str]
) -> np.ndarray:
    """Values of ``selections`` at the sorted times ``ts`` (rows) from the runner's current state.

    Outputs at a breakpoint are taken before its actions; the run stops at the last output."""
    if list(r.timeCourseSelections)[1:] != list(selections):
        r.timeCourseSelections = ["time", *selections]
    simulate_at = _simulator(r)
    m = r.model
    n_times = len(ts)
    t_last = ts[-1] if n_times else 0.0
    out = np.empty((n_times, len(selections)))
    k = 0  # next output index
    while k < n_times and ts[k] <= 0.0:  # outputs at t=0: before the events at 0
        out[k] = [m.getValue(s) for s in selections]
        k += 1
    t_cur = 0.0
    for stop in [*sorted(t for t in actions if t < t_last), t_last]:
        if stop > t_cur:
            hi = bisect_right(ts, stop, k)
            grid = [t_cur]
            for t in ts[k:hi]:
                if grid[-1] < t < stop:
                    grid.append(t)
            grid.append(stop)
            res = simulate_at(grid)
            if hi > k:  # every output in (t_cur, stop] at once
                pos = {t: i for i, t in enumerate(grid)}
                out[k:hi] = np.asarray(res)[[pos[t] for t in ts[k:hi]], 1:]
                k = hi
            t_cur = stop
        if stop >= t_last:
            break
        for kind, target, amount in actions.get(stop, ()):
            if kind == "set":
                m.setValue(target, amount)
            else:  # a bolus adds to an amount, an infusion start/end to an input rate
                m.setValue(target, m.getValue(target) + amount)
    return out


def _simulator(r: Any) -> Callable[[list[float]], Any]:
    """``r.simulate(times=grid)`` without the Python wrapper's option checks and resets, which cost
    as much as a short segment's integration (~15 of ~30 us per call; a regimen has one segment per
    dose). The wrapper is used where libRoadRunner lacks the two calls it is made of."""
    run, set_times = getattr(r, "_simulate", None), getattr(r, "_setSimulateOptionsTimes", None)
    if run is None or set_times is None or r.getIntegrator().getValue("variable_step_size"):
        return lambda grid: r.simulate(times=grid)
    options = roadrunner.SimulateOptions()

    def simulate_at(grid: list[float]) -> Any:
        set_times(options, grid)
        return run(options)

    return simulate_at


def _check_finite(values: np.ndarray, twin: Twin) -> None:
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise TwinError(f"simulation produced {bad} non-finite prediction(s)", source=twin.patient_id)


def simulate_observations(twin: Twin, etas: Mapping[str, float] | None = None) -> np.ndarray:
    """Predictions at the twin's own observations, in their order (NaN-free or an error)."""
    if not twin.observations:
        return np.empty(0)
    pred = simulate(twin, [o.time_h for o in twin.observations], etas)
    return np.array([pred.values[o.observable][i] for i, o in enumerate(twin.observations)], dtype=float)


def predict(
    twin: Twin, times_h: Sequence[float] | np.ndarray, etas: Mapping[str, float] | None = None
) -> Prediction:
    """A posteriori (with ``etas``) or a priori predictions at ``times_h``: :func:`simulate`."""
    return simulate(twin, times_h, etas)
