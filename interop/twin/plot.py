"""Concentration-time plots (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from interop.twin.binding import Twin  # noqa: E402

__all__ = ["plot_concentrations"]


def plot_concentrations(
    twin: Twin,
    grid_h: np.ndarray,
    curves: dict[str, np.ndarray],
    path: Path,
    *,
    observable: str | None = None,
    band: tuple[np.ndarray, np.ndarray] | None = None,
    band_label: str = "90% interval of the individual prediction",
    target: tuple[float, float] | None = None,
    title: str | None = None,
) -> Path:
    """Curves over ``grid_h`` with the twin's observed levels; optional interval and target band."""
    obs_id = observable or twin.card.observables[0].id
    unit = next(o.unit for o in twin.card.observables if o.id == obs_id)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if band is not None:
        ax.fill_between(grid_h, band[0], band[1], alpha=0.25, label=band_label)
    for label, values in curves.items():
        ax.plot(grid_h, values, label=label)
    if target is not None:
        ax.axhspan(target[0], target[1], color="green", alpha=0.12, label="target")
    pts: Sequence = [o for o in twin.observations if o.observable == obs_id]
    if pts:
        ax.scatter([o.time_h for o in pts], [o.value for o in pts], color="black", zorder=3, label="observed")
    for d in twin.doses:
        ax.axvline(d.time_h, color="grey", lw=0.6, ls=":")
    ax.set_xlabel(f"time since {twin.origin:%Y-%m-%d %H:%M %Z} (h)")
    ax.set_ylabel(f"{obs_id} ({unit})")
    ax.set_title(title or f"{twin.card.title}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
