"""Normalised prediction distribution errors (NPDE), decorrelated, from simulations.

Brendel et al. 2006, Comets et al. 2008 (the R package ``npde``): for a patient with
observations ``y`` (n) and K simulated replicates of the same design ``Y`` (K x n, with
between-subject and residual variability), take the mean ``E`` and covariance ``V`` of the
replicates, decorrelate with the inverse Cholesky factor of ``V`` both ``y`` and every
replicate, and let ``pde_j`` be the share of decorrelated replicates below the decorrelated
observation ``j``; ``npde_j = Phi^-1(pde_j)``, with pde clamped to [1/(2K), 1 - 1/(2K)].
Under the model they are N(0, 1) and independent. No maintained Python package computes
NPDE, so this is written here (about 30 lines).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["npde_summary", "patient_npde", "prediction_interval"]


def patient_npde(y: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """NPDE of one patient's observations ``y`` (n,) from replicates ``sims`` (K, n)."""
    y = np.asarray(y, float)
    sims = np.asarray(sims, float)
    k, n = sims.shape
    if n != len(y):
        raise ValueError("sims must have one column per observation")
    if n == 0:
        return np.empty(0)
    mean = sims.mean(axis=0)
    cov = np.atleast_2d(np.cov(sims, rowvar=False))
    jitter = 1e-12 * max(float(np.trace(cov)) / n, 1e-300)
    try:
        chol = np.linalg.cholesky(cov + jitter * np.eye(n))
    except np.linalg.LinAlgError:  # near-singular: decorrelate only by the variances
        chol = np.diag(np.sqrt(np.maximum(np.diag(cov), 1e-300)))
    y_dec = np.linalg.solve(chol, y - mean)
    sims_dec = np.linalg.solve(chol, (sims - mean).T).T
    pde = (sims_dec < y_dec).mean(axis=0)
    pde = np.clip(pde, 1.0 / (2 * k), 1.0 - 1.0 / (2 * k))
    return np.asarray(stats.norm.ppf(pde))


def prediction_interval(sims: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per-observation simulated prediction interval (columns of ``sims``)."""
    a = (1 - level) / 2
    return np.quantile(sims, a, axis=0), np.quantile(sims, 1 - a, axis=0)


def npde_summary(npde: np.ndarray) -> dict[str, float]:
    """Mean, variance, skewness, kurtosis and the tests of the npde package: Wilcoxon signed-rank
    (mean 0), Fisher's variance test (variance 1), Shapiro-Wilk (normality), and their
    Bonferroni-adjusted global p-value."""
    x = np.asarray(npde, float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return {"n": float(n)}
    var = float(np.var(x, ddof=1))
    p_mean = float(stats.wilcoxon(x).pvalue) if np.any(x != 0) else 1.0
    chi = (n - 1) * var
    p_var = float(2 * min(stats.chi2.cdf(chi, n - 1), stats.chi2.sf(chi, n - 1)))
    p_norm = float(stats.shapiro(x[:5000]).pvalue)
    return {
        "n": float(n),
        "mean": float(np.mean(x)),
        "variance": var,
        "skewness": float(stats.skew(x)),
        "kurtosis": float(stats.kurtosis(x)),
        "p_mean": p_mean,
        "p_variance": p_var,
        "p_normality": p_norm,
        "p_global": float(min(1.0, 3 * min(p_mean, p_var, p_norm))),
    }
