"""Predictive performance by covariate subgroup: per CYP2C19 phenotype, with or without a
condition or co-medication, per sex. A patient's group is the category of each categorical
covariate at its twin's origin (a genotype's call, present/absent, with/without); patients whose
value fell back to the card's reference form the group ``missing``."""

from __future__ import annotations

import json

import pandas as pd

from interop.twin.binding import Twin
from interop.validation.metrics import bootstrap_metrics

__all__ = ["patient_subgroups", "subgroup_metrics"]

SETTINGS = {"a-priori": "pred", "a-posteriori": "ipred", "iterative": "iter_pred"}


def patient_subgroups(twin: Twin) -> str:
    """JSON object covariate -> category for the twin's categorical covariates."""
    report = twin.covariate_report
    groups = {b.name: b.label for b in report.bindings if b.label is not None} if report else {}
    return json.dumps(groups, sort_keys=True)


def subgroup_metrics(
    levels: pd.DataFrame, patients: pd.DataFrame, *, n_boot: int = 200, seed: int = 0
) -> pd.DataFrame:
    """Metrics of each subgroup (columns covariate, group, patients, setting, observable, name,
    value, ci_low, ci_high, n), from the levels used in the overall metrics."""
    if not len(levels) or "subgroups" not in patients:
        return pd.DataFrame()
    used = levels[levels["used"].astype(bool)]
    included = patients[patients["status"] == "included"]
    membership: dict[tuple[str, str], set[str]] = {}
    for pid, text in zip(included["patient_id"], included["subgroups"], strict=True):
        for cov, label in (json.loads(text) if text else {}).items():
            membership.setdefault((cov, str(label)), set()).add(pid)
    rows = []
    for (cov, label), pids in sorted(membership.items()):
        sub = used[used["patient_id"].isin(pids)]
        for obs_id, g in sub.groupby("observable", sort=True):
            for setting, col in SETTINGS.items():
                if g[col].notna().sum() == 0:
                    continue
                m = bootstrap_metrics(g, col, n_boot=n_boot, seed=seed)
                m.insert(0, "observable", obs_id)
                m.insert(0, "setting", setting)
                m.insert(0, "patients", len(pids))
                m.insert(0, "group", label)
                m.insert(0, "covariate", cov)
                rows.append(m)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
