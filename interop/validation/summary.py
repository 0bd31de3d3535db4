"""From per-patient results to the aggregates: metrics with CIs, NPDE tests, VPC tables,
exclusion counts, and the ``ValidationRecord`` (aggregates only, never a patient row)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from interop import __version__
from interop.schema import MetricValue, ValidationRecord
from interop.validation.metrics import bootstrap_metrics, per_patient_metrics
from interop.validation.npde import npde_summary
from interop.validation.subgroups import subgroup_metrics
from interop.validation.vpc import vpc_table

__all__ = ["SETTINGS", "ValidationSummary", "summarise", "to_record"]

SETTINGS = {"a-priori": "pred", "a-posteriori": "ipred", "iterative": "iter_pred"}


@dataclass(frozen=True)
class ValidationSummary:
    metrics: pd.DataFrame  # setting, observable, name, value, ci_low, ci_high, n
    per_patient: pd.DataFrame  # setting, observable, patient_id, n, metrics...
    npde: dict[str, dict[str, float]]  # observable -> summary
    vpc: dict[str, pd.DataFrame]  # observable -> table
    pcvpc: dict[str, pd.DataFrame]
    coverage_90: dict[str, float]  # observable -> share of levels inside their 90 % PI
    n_read: int
    n_included: int
    exclusions: dict[str, int]
    n_levels: int  # levels used in the metrics
    n_levels_unused: int  # levels of included patients left out (below limit, before first dose)
    map_not_converged: int
    extra: dict[str, float] = field(default_factory=dict)
    subgroups: pd.DataFrame = field(default_factory=pd.DataFrame)  # metrics per covariate subgroup


def summarise(
    levels: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    vpc_x: str = "tad_h",
    n_bins: int = 8,
) -> ValidationSummary:
    included = patients[patients["status"] == "included"]
    used = levels[levels["used"].astype(bool)] if len(levels) else levels
    metric_rows, pp_rows = [], []
    npde: dict[str, dict[str, float]] = {}
    vpc: dict[str, pd.DataFrame] = {}
    pcvpc: dict[str, pd.DataFrame] = {}
    coverage: dict[str, float] = {}
    for obs_id, g in used.groupby("observable", sort=True):
        for setting, col in SETTINGS.items():
            if g[col].notna().sum() == 0:
                continue
            m = bootstrap_metrics(g, col, n_boot=n_boot, seed=seed)
            m.insert(0, "observable", obs_id)
            m.insert(0, "setting", setting)
            metric_rows.append(m)
            pp = per_patient_metrics(g, col)
            pp.insert(0, "observable", obs_id)
            pp.insert(0, "setting", setting)
            pp_rows.append(pp)
        npde[obs_id] = npde_summary(g["npde"].to_numpy(float))
        sims = np.vstack(g["sims"].to_numpy()).astype(float)
        x = g[vpc_x].to_numpy(float)
        vpc[obs_id] = vpc_table(x, g["dv"].to_numpy(float), sims, n_bins=n_bins)
        pcvpc[obs_id] = vpc_table(x, g["dv"].to_numpy(float), sims, g["pred"].to_numpy(float), n_bins=n_bins)
        inside = (g["dv"] >= g["pi_low"]) & (g["dv"] <= g["pi_high"])
        coverage[obs_id] = float(100 * inside.mean())
    reasons = Counter(patients.loc[patients["status"] != "included", "reason"])
    return ValidationSummary(
        metrics=pd.concat(metric_rows, ignore_index=True) if metric_rows else pd.DataFrame(),
        per_patient=pd.concat(pp_rows, ignore_index=True) if pp_rows else pd.DataFrame(),
        npde=npde,
        vpc=vpc,
        pcvpc=pcvpc,
        coverage_90=coverage,
        n_read=len(patients),
        n_included=len(included),
        exclusions=dict(sorted(reasons.items())),
        n_levels=len(used),
        n_levels_unused=len(levels) - len(used),
        map_not_converged=int((~included["map_converged"].astype(bool)).sum()),
        subgroups=subgroup_metrics(levels, patients, n_boot=min(n_boot, 200), seed=seed),
    )


def to_record(
    summary: ValidationSummary,
    *,
    model_id: str,
    model_version: int,
    model_sha256: str,
    site: str,
    fingerprint: str,
    notes: str = "",
) -> ValidationRecord:
    """The record a site publishes: metrics, counts, fingerprint; no patient rows."""
    metrics = [
        MetricValue(
            name=r.name,
            setting=r.setting,
            observable=r.observable,
            value=float(r.value),
            ci_low=None if pd.isna(r.ci_low) else float(r.ci_low),
            ci_high=None if pd.isna(r.ci_high) else float(r.ci_high),
            n=int(r.n),
        )
        for r in summary.metrics.itertuples(index=False)
        if np.isfinite(r.value)
    ]
    for obs_id, s in summary.npde.items():
        n = int(s.get("n", 0))
        for key in ("mean", "variance", "p_global"):
            if key in s and np.isfinite(s[key]):
                metrics.append(
                    MetricValue(
                        name=f"npde_{key}", setting="simulation", observable=obs_id, value=float(s[key]), n=n
                    )
                )
    for obs_id, cov in summary.coverage_90.items():
        metrics.append(
            MetricValue(
                name="pi90_coverage_percent",
                setting="simulation",
                observable=obs_id,
                value=cov,
                n=summary.n_levels,
            )
        )
    return ValidationRecord(
        model_id=model_id,
        model_version=model_version,
        model_sha256=model_sha256,
        site=site,
        software=f"digphat-interop {__version__}",
        created_at=dt.datetime.now(dt.UTC),
        dataset_fingerprint=fingerprint,
        n_patients=summary.n_included,
        n_levels=summary.n_levels,
        n_excluded_patients=summary.n_read - summary.n_included,
        exclusions=summary.exclusions,
        metrics=tuple(metrics),
        notes=notes,
    )
