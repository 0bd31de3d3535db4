"""Plotly figures (as JSON for the vendored plotly.js) of a forecast or a recommendation: observed
levels, the a priori and individual curves, the prediction interval and the target band. The PNG
beside each is the matplotlib figure the twin workflows write from the same arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from interop.twin.binding import Twin
from interop.twin.forecast import Forecast
from interop.workflows.stage_plots import StagePlot

__all__ = ["concentration_figure", "stage_figure", "stage_png"]


def _r(a: Any) -> list[float]:
    return [float(f"{x:.5g}") for x in np.asarray(a, dtype=float)]


def concentration_figure(
    twin: Twin,
    fc: Forecast,
    observable: str,
    *,
    title: str,
    target: tuple[float, float] | None = None,
    population: bool = True,
) -> dict[str, Any]:
    """One observable's concentration-time figure (a Plotly figure dict)."""
    unit = next((o.unit for o in twin.card.observables if o.id == observable), "")
    x = _r(fc.times_h)
    lo, hi = _r(fc.lower[observable]), _r(fc.upper[observable])
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": hi,
            "line": {"width": 0},
            "showlegend": False,
            "hoverinfo": "skip",
            "name": "upper",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": lo,
            "line": {"width": 0},
            "fill": "tonexty",
            "fillcolor": "rgba(31,119,180,0.18)",
            "name": f"{fc.level:.0%} prediction interval",
        },
    ]
    if population:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": _r(fc.population[observable]),
                "name": "a priori (population)",
                "line": {"dash": "dash", "color": "#555"},
            }
        )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "x": x,
            "y": _r(fc.individual[observable]),
            "name": "individual (MAP)",
            "line": {"color": "#1f5fa8", "width": 2.5},
        }
    )
    obs = [o for o in twin.observations if o.observable == observable]
    if obs:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": [o.time_h for o in obs],
                "y": [o.value for o in obs],
                "name": "observed",
                "marker": {"color": "#b00020", "size": 9, "symbol": "circle"},
            }
        )
    doses = sorted({round(d.time_h, 4) for d in twin.doses})
    shapes: list[dict[str, Any]] = [
        {"type": "line", "x0": t, "x1": t, "yref": "paper", "y0": 0, "y1": 0.04, "line": {"color": "#444"}}
        for t in doses
    ]
    if target is not None:
        low, high = target
        top = high if np.isfinite(high) else max(hi) * 1.1
        shapes.append(
            {
                "type": "rect",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": low,
                "y1": top,
                "fillcolor": "rgba(0,150,0,0.12)",
                "line": {"width": 0},
                "layer": "below",
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [None],
                "y": [None],
                "name": "target range",
                "line": {"color": "rgba(0,150,0,0.5)", "width": 10},
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": title},
            "xaxis": {"title": {"text": "time since first event (h)"}},
            "yaxis": {"title": {"text": f"{observable} ({unit})"}, "rangemode": "tozero"},
            "shapes": shapes,
            "legend": {"orientation": "h", "y": -0.2},
            "margin": {"t": 50, "r": 20},
        },
    }


def stage_figure(plot: StagePlot) -> dict[str, Any]:
    """A validation stage's simulation (and the reference values it was compared with) for Plotly."""
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "x": _r(plot.times_h), "y": _r(v), "name": f"{k} (model)"}
        for k, v in plot.curves.items()
    ]
    if plot.points:
        data.append(
            {"type": "scatter", "mode": "markers", "x": plot.points_h, "y": plot.points,
             "name": f"{plot.observable} (reference)", "marker": {"color": "#b00020", "size": 8}}
        )  # fmt: skip
    return {
        "data": data,
        "layout": {
            "title": {"text": plot.title},
            "xaxis": {"title": {"text": "time (h)"}},
            "yaxis": {"title": {"text": f"concentration ({plot.unit})"}, "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": -0.2},
            "margin": {"t": 50, "r": 20},
        },
    }


def stage_png(plot: StagePlot) -> bytes:
    """The same figure as PNG (matplotlib, as the CLI's plots)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        for k, v in plot.curves.items():
            ax.plot(plot.times_h, v, label=f"{k} (model)")
        if plot.points:
            ax.plot(plot.points_h, plot.points, "o", color="#b00020", label=f"{plot.observable} (reference)")
        ax.set_xlabel("time (h)")
        ax.set_ylabel(f"concentration ({plot.unit})")
        ax.set_title(plot.title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
