"""Visual predictive check (VPC) and prediction-corrected VPC (pcVPC; Bergstrand et al. 2011).

Observations are binned on the x axis (time after the last dose by default) by quantiles; in
each bin the 5th, 50th and 95th percentiles of the observations are set against the same
percentiles of every simulated replicate, summarised by their 90 % interval across replicates.
For the pcVPC, observed and simulated values are multiplied by median(PRED in bin) / PRED.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["PERCENTILES", "make_bins", "vpc_table"]

PERCENTILES = (5.0, 50.0, 95.0)


def make_bins(x: np.ndarray, n_bins: int = 8) -> np.ndarray:
    """Bin edges at quantiles of ``x`` (fewer bins when there are few distinct values)."""
    x = np.asarray(x, float)
    distinct = np.unique(x)
    if len(distinct) <= n_bins:
        mids = (distinct[:-1] + distinct[1:]) / 2
        return np.concatenate(([distinct[0] - 1e-9], mids, [distinct[-1] + 1e-9]))
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    edges[0] -= 1e-9
    edges[-1] += 1e-9
    return edges


def vpc_table(
    x: np.ndarray,
    dv: np.ndarray,
    sims: np.ndarray,
    pred: np.ndarray | None = None,
    *,
    n_bins: int = 8,
    ci: float = 0.9,
) -> pd.DataFrame:
    """One row per bin: x median, n, observed percentiles and simulated ones with their CI.

    ``sims`` is (n_obs, K): K replicates of each observation. With ``pred`` (population
    predictions), the table is prediction-corrected.
    """
    x, dv, sims = np.asarray(x, float), np.asarray(dv, float), np.asarray(sims, float)
    edges = make_bins(x, n_bins)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    a = (1 - ci) / 2
    rows = []
    for b in range(len(edges) - 1):
        sel = which == b
        if not np.any(sel):
            continue
        obs_b, sim_b = dv[sel], sims[sel]
        if pred is not None:
            p = np.asarray(pred, float)[sel]
            factor = np.median(p) / np.where(p > 0, p, np.nan)
            obs_b = obs_b * factor
            sim_b = sim_b * factor[:, None]
        row: dict[str, float] = {
            "bin": b,
            "x_low": edges[b],
            "x_high": edges[b + 1],
            "x_mid": float(np.median(x[sel])),
            "n": int(sel.sum()),
        }
        sim_q = np.nanpercentile(sim_b, PERCENTILES, axis=0)  # (3, K)
        obs_q = np.nanpercentile(obs_b, PERCENTILES)
        for j, q in enumerate(PERCENTILES):
            tag = f"p{int(q)}"
            row[f"obs_{tag}"] = float(obs_q[j])
            row[f"sim_{tag}"] = float(np.median(sim_q[j]))
            row[f"sim_{tag}_lo"] = float(np.quantile(sim_q[j], a))
            row[f"sim_{tag}_hi"] = float(np.quantile(sim_q[j], 1 - a))
        rows.append(row)
    return pd.DataFrame(rows)
