"""Predictive-performance metrics of a model on observed levels, per patient and overall.

For each level, the prediction error is ``pred - obs`` and the relative error
``100 * (pred - obs) / obs``. The metrics (Sheiner & Beal 1981; the ±20 % / ±30 % shares of the
TDM literature):

- ``mpe_percent`` mean relative error (bias), ``mdpe_percent`` its median,
- ``mape_percent`` mean absolute relative error, ``rrmse_percent`` root mean squared relative
  error (imprecision), ``rmse`` root mean squared error in the observable's unit,
- ``within_20_percent`` / ``within_30_percent``: share of levels with |relative error| <= 20/30 %.

Confidence intervals come from a patient-level (cluster) bootstrap: patients are resampled with
replacement and the pooled metric is recomputed, because levels of one patient are correlated.
``scipy.stats.bootstrap`` resamples observations, not clusters, hence the few lines here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["METRICS", "bootstrap_metrics", "compute_metrics", "per_patient_metrics"]


def _rel(pred: np.ndarray, obs: np.ndarray) -> np.ndarray:
    return 100.0 * (pred - obs) / obs


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "mpe_percent": lambda p, o: float(np.mean(_rel(p, o))),
    "mdpe_percent": lambda p, o: float(np.median(_rel(p, o))),
    "mape_percent": lambda p, o: float(np.mean(np.abs(_rel(p, o)))),
    "rrmse_percent": lambda p, o: float(np.sqrt(np.mean(_rel(p, o) ** 2))),
    "rmse": lambda p, o: float(np.sqrt(np.mean((p - o) ** 2))),
    "within_20_percent": lambda p, o: float(100.0 * np.mean(np.abs(_rel(p, o)) <= 20.0)),
    "within_30_percent": lambda p, o: float(100.0 * np.mean(np.abs(_rel(p, o)) <= 30.0)),
}


def compute_metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """Every metric over paired predictions and (positive) observations."""
    pred, obs = np.asarray(pred, float), np.asarray(obs, float)
    if pred.shape != obs.shape:
        raise ValueError("pred and obs must have the same shape")
    if len(obs) == 0:
        return {k: float("nan") for k in METRICS}
    if np.any(obs <= 0):
        raise ValueError("relative errors need observations > 0")
    return {k: f(pred, obs) for k, f in METRICS.items()}


def per_patient_metrics(df: pd.DataFrame, pred_col: str, obs_col: str = "dv") -> pd.DataFrame:
    """One row per patient (sorted by id): number of levels and every metric over that patient's
    levels, from per-patient sums and one sort (no Python loop over patients)."""
    d = df.dropna(subset=[pred_col])
    if not len(d):
        return pd.DataFrame(columns=["patient_id", "n", *METRICS])
    pred, obs = d[pred_col].to_numpy(float), d[obs_col].to_numpy(float)
    if np.any(obs <= 0):
        raise ValueError("relative errors need observations > 0")
    codes, ids = pd.factorize(d["patient_id"], sort=True)
    rel = _rel(pred, obs)
    order = np.lexsort((rel, codes))  # by patient, then by relative error (for the medians)
    codes, rel, err = codes[order], rel[order], (pred - obs)[order]
    starts = np.searchsorted(codes, np.arange(len(ids)))
    cnt = np.diff(np.append(starts, len(codes)))
    mean = lambda x: np.add.reduceat(x, starts) / cnt  # noqa: E731
    absrel = np.abs(rel)
    mid_lo, mid_hi = rel[starts + (cnt - 1) // 2], rel[starts + cnt // 2]
    return pd.DataFrame(
        {
            "patient_id": np.asarray(ids, dtype=object),
            "n": cnt,
            "mpe_percent": mean(rel),
            "mdpe_percent": np.where(cnt % 2 == 1, mid_lo, (mid_lo + mid_hi) / 2),
            "mape_percent": mean(absrel),
            "rrmse_percent": np.sqrt(mean(rel**2)),
            "rmse": np.sqrt(mean(err**2)),
            "within_20_percent": 100.0 * mean((absrel <= 20.0).astype(float)),
            "within_30_percent": 100.0 * mean((absrel <= 30.0).astype(float)),
        },
        columns=["patient_id", "n", *METRICS],
    )


def bootstrap_metrics(
    df: pd.DataFrame,
    pred_col: str,
    obs_col: str = "dv",
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Overall metrics with percentile CIs from resampling patients; columns name, value, ci_low,
    ci_high, n (levels)."""
    d = df.dropna(subset=[pred_col])
    pred, obs = d[pred_col].to_numpy(float), d[obs_col].to_numpy(float)
    point = compute_metrics(pred, obs)
    codes, _ = pd.factorize(d["patient_id"])
    n_pat = int(codes.max()) + 1 if len(codes) else 0
    lo_hi = {k: (float("nan"), float("nan")) for k in METRICS}
    if n_pat >= 2 and n_boot > 0:
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(n_pat))
        ends = np.append(starts[1:], len(codes))
        rel = _rel(pred, obs)[order]
        err = (pred - obs)[order]
        # Per patient sums make each replicate O(patients): sum, sum|.|, sum^2, count, within.
        s = np.add.reduceat(rel, starts)
        sa = np.add.reduceat(np.abs(rel), starts)
        s2 = np.add.reduceat(rel**2, starts)
        e2 = np.add.reduceat(err**2, starts)
        w20 = np.add.reduceat((np.abs(rel) <= 20).astype(float), starts)
        w30 = np.add.reduceat((np.abs(rel) <= 30).astype(float), starts)
        cnt = (ends - starts).astype(float)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n_pat, size=(n_boot, n_pat))
        counts = np.apply_along_axis(np.bincount, 1, idx, minlength=n_pat).astype(float)
        n = counts @ cnt
        reps = {
            "mpe_percent": counts @ s / n,
            "mape_percent": counts @ sa / n,
            "rrmse_percent": np.sqrt(counts @ s2 / n),
            "rmse": np.sqrt(counts @ e2 / n),
            "within_20_percent": 100 * (counts @ w20) / n,
            "within_30_percent": 100 * (counts @ w30) / n,
        }
        # The median does not decompose; compute it on a capped number of replicates.
        reps["mdpe_percent"] = _resampled_medians(rel, codes[order], counts[: min(n_boot, 400)])
        a = (1 - level) / 2
        lo_hi = {k: (float(np.quantile(v, a)), float(np.quantile(v, 1 - a))) for k, v in reps.items()}
    return pd.DataFrame(
        [
            {"name": k, "value": point[k], "ci_low": lo_hi[k][0], "ci_high": lo_hi[k][1], "n": len(obs)}
            for k in METRICS
        ]
    )


def _resampled_medians(values: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each replicate whose sample holds every value of patient ``owner[i]`` as many times
    as ``counts[r, owner[i]]`` says: a weighted median over the values sorted once (the same
    numbers as ``np.median`` of the concatenated sample), in blocks of replicates to bound memory."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    who = owner[order]
    out = np.empty(len(counts))
    block = max(1, 4_000_000 // max(1, len(v)))
    for lo in range(0, len(counts), block):
        w = counts[lo : lo + block][:, who]  # (replicates, values): multiplicity of each sorted value
        cum = np.cumsum(w, axis=1)
        n = cum[:, -1]
        a = v[np.minimum(np.argmax(cum > ((n - 1) // 2)[:, None], axis=1), len(v) - 1)]
        b = v[np.minimum(np.argmax(cum > (n // 2)[:, None], axis=1), len(v) - 1)]
        out[lo : lo + len(w)] = np.where(n % 2 == 1, a, (a + b) / 2)
    return out
