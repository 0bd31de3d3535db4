"""Event times that move with the ETAs: lag times and modelled zero-order input durations.

Where an ETA sets when a dose arrives (a lag time) or when its zero-order input ends (a modelled
duration, NONMEM's RATE=-2), the MAP objective is only piecewise smooth in that ETA: it breaks
wherever an event time crosses a sampling time, and each piece can hold a local mode of its own
that a gradient method started in another piece never reaches (issue 18). This module says which
ETAs move event times and where, within the prior's plausible range (|eta| <= 3 omega), the
breakpoints lie, so that :func:`interop.twin.estimate.estimate_map` can start a local search in
each piece. Models without such ETAs pay one look at the card.

Event times are read as the simulators read them (:func:`interop.twin.simulate.twin_actions`,
:class:`interop.twin.linear.LinearPredictor`): the lag and duration parameters' values after the
model's reset at time 0 with the first occasion's ETAs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from interop.schema import ModelCard
from interop.twin.binding import Twin
from interop.twin.simulate import initial_parameters

__all__ = ["event_parameters", "event_time_etas", "event_times", "segment_midpoints"]

PLAUSIBLE_OMEGAS = 3.0  # breakpoints are sought for |eta| <= 3 omega
_GRID = 121  # ETA values scanned per event-time ETA to locate the crossings


def event_parameters(card: ModelCard) -> tuple[str, ...]:
    """SBML ids of the parameters that set event times: lag times and modelled durations."""
    out: list[str] = []
    for d in card.dosing:
        for ref in (d.lag_time_h, d.duration_parameter):
            if isinstance(ref, str) and ref not in out:
                out.append(ref)
    return tuple(out)


def event_times(twin: Twin, names: Sequence[str], etas: np.ndarray) -> np.ndarray:
    """Times of the twin's ETA-dependent events for each row of ``etas`` (values of ``names``):
    per dose its arrival (time + lag) and, for a modelled duration, the end of its input."""
    refs = event_parameters(twin.card)
    model = twin.model
    rows = np.atleast_2d(np.asarray(etas, dtype=float))
    values = np.empty((len(rows), len(refs)))
    with model.lock:
        get = model.runner.model.getValue
        for i, row in enumerate(rows):
            params, _ = initial_parameters(twin, dict(zip(names, map(float, row), strict=True)))
            model.reset(params)
            values[i] = [get(r) for r in refs]
    cols = []
    for ev in twin.doses:
        inp = ev.input
        lag = values[:, refs.index(inp.lag_time_h)] if isinstance(inp.lag_time_h, str) else None
        start = ev.time_h + (lag if lag is not None else float(inp.lag_time_h or 0.0))
        cols.append(np.broadcast_to(start, (len(rows),)))
        if ev.duration_h is None and inp.duration_parameter:
            cols.append(start + values[:, refs.index(inp.duration_parameter)])
    return np.column_stack(cols) if cols else np.empty((len(rows), 0))


def event_time_etas(twin: Twin, names: Sequence[str], omega: np.ndarray) -> list[int]:
    """Indices of the ETAs (of ``names``) that move an event time of the twin's doses."""
    if not event_parameters(twin.card) or not twin.doses:
        return []
    sd = np.sqrt(np.diag(omega))
    pts = np.vstack([np.zeros(len(names)), np.diag(sd), -np.diag(sd)])
    times = event_times(twin, names, pts)
    if times.shape[1] == 0:
        return []
    moved = np.abs(times[1:] - times[0]).max(axis=1) > 1e-9 * (1.0 + np.abs(times[0]).max())
    n = len(names)
    return [k for k in range(n) if moved[k] or moved[n + k]]


def segment_midpoints(
    twin: Twin,
    names: Sequence[str],
    omega: np.ndarray,
    mode: np.ndarray,
    k: int,
    sample_times: Sequence[float],
) -> np.ndarray:
    """Midpoints of the pieces of ETA ``k`` (the others held at ``mode``) between its breakpoints
    in [-3 omega, 3 omega]: the values where an event time of the twin equals a sampling time.
    The piece holding ``mode`` itself is left out (it has been searched)."""
    half = PLAUSIBLE_OMEGAS * float(np.sqrt(omega[k, k]))
    grid = np.linspace(-half, half, _GRID)
    pts = np.repeat(mode[None, :], _GRID, axis=0)
    pts[:, k] = grid
    times = event_times(twin, names, pts)  # (grid, events)
    s = np.unique(np.asarray(sample_times, dtype=float))
    d = times[:, :, None] - s[None, None, :]  # (grid, events, samples)
    above = d > 0
    cross = above[1:] != above[:-1]  # sign change between grid points i and i+1
    i, e, j = np.nonzero(cross)
    d0, d1 = d[i, e, j], d[i + 1, e, j]
    with np.errstate(all="ignore"):
        frac = np.where(d0 != d1, d0 / (d0 - d1), 0.5)
    breaks = np.unique(grid[i] + np.clip(frac, 0.0, 1.0) * (grid[i + 1] - grid[i]))
    edges = np.concatenate([[-half], breaks[(breaks > -half) & (breaks < half)], [half]])
    mids = (edges[:-1] + edges[1:]) / 2
    keep = ~((edges[:-1] <= mode[k]) & (mode[k] <= edges[1:])) & (np.diff(edges) > 1e-9)
    return np.asarray(mids[keep])
