"""The validation report: PNG plots and one self-contained HTML file that embeds them (base64),
with the metrics table, NPDE tests, counts and every excluded patient with the reason.

Plots: observed vs predicted (a priori, a posteriori, iterative), relative residuals vs time,
VPC and pcVPC, NPDE histogram and NPDE QQ plot. matplotlib with the Agg backend (no screen).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from interop.validation.summary import SETTINGS, ValidationSummary  # noqa: E402

__all__ = ["SHARED_PLOTS", "shared_images", "write_plots", "write_report"]

# Plots a site sends with its record: binned percentiles (VPC) and the NPDE distribution, which
# show no patient id, time or row of any one patient.
SHARED_PLOTS = ("VPC", "NPDE")

LABELS = {
    "a-priori": "a priori (population)",
    "a-posteriori": "a posteriori (MAP, all levels)",
    "iterative": "iterative (MAP on earlier levels)",
}


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _obs_vs_pred(used: pd.DataFrame, unit: str, path: Path) -> Path:
    settings = [s for s, c in SETTINGS.items() if used[c].notna().any()]
    fig, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings), 4.4), squeeze=False)
    lo = max(min(used["dv"].min(), used[[SETTINGS[s] for s in settings]].min().min()), 1e-3)
    hi = max(used["dv"].max(), used[[SETTINGS[s] for s in settings]].max().max())
    line = np.array([lo, hi])
    for ax, s in zip(axes[0], settings, strict=True):
        d = used.dropna(subset=[SETTINGS[s]])
        ax.scatter(d[SETTINGS[s]], d["dv"], s=8, alpha=0.5)
        ax.plot(line, line, "k-", lw=1)
        ax.plot(line, line * 1.2, "k:", lw=0.8)
        ax.plot(line, line / 1.2, "k:", lw=0.8)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel=f"predicted ({unit})",
            ylabel=f"observed ({unit})",
            title=LABELS[s],
        )
    return _save(fig, path)


def _residuals_vs_time(used: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.4))
    for s, col in SETTINGS.items():
        d = used.dropna(subset=[col])
        if len(d):
            ax.scatter(d["time_h"], 100 * (d[col] - d["dv"]) / d["dv"], s=8, alpha=0.5, label=LABELS[s])
    ax.axhline(0, color="k", lw=1)
    ax.axhspan(-20, 20, color="grey", alpha=0.15, label="±20 %")
    ax.set(xlabel="time since first record (h)", ylabel="relative prediction error (%)")
    ax.legend(fontsize=8, loc="upper right")  # "best" searches every point: slow on large cohorts
    return _save(fig, path)


def _vpc(tables: dict[str, pd.DataFrame], unit: str, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.4), squeeze=False)
    for ax, (title, t) in zip(axes[0], tables.items(), strict=True):
        for q, color in (("p5", "tab:blue"), ("p50", "tab:red"), ("p95", "tab:blue")):
            ax.fill_between(t["x_mid"], t[f"sim_{q}_lo"], t[f"sim_{q}_hi"], color=color, alpha=0.2)
            ax.plot(t["x_mid"], t[f"obs_{q}"], color=color, marker="o", ms=3, ls="-" if q == "p50" else "--")
        ax.set(xlabel="time after last dose (h)", ylabel=f"concentration ({unit})", yscale="log", title=title)
    fig.suptitle(
        "observed 5th/50th/95th percentiles (lines) and 90 % CI of the simulated ones (bands)", fontsize=9
    )
    return _save(fig, path)


def _npde_hist(x: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.hist(x, bins=30, density=True, alpha=0.6)
    g = np.linspace(-4, 4, 200)
    ax.plot(g, stats.norm.pdf(g), "k-", lw=1, label="N(0, 1)")
    ax.set(xlabel="NPDE", ylabel="density", title="NPDE histogram")
    ax.legend()
    return _save(fig, path)


def _npde_qq(x: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    (osm, osr), _ = stats.probplot(x, dist="norm")
    ax.scatter(osm, osr, s=6, alpha=0.6)
    lim = [min(osm.min(), osr.min()), max(osm.max(), osr.max())]
    ax.plot(lim, lim, "k-", lw=1)
    ax.set(xlabel="theoretical N(0, 1) quantiles", ylabel="NPDE quantiles", title="NPDE QQ plot")
    return _save(fig, path)


def write_plots(
    levels: pd.DataFrame, summary: ValidationSummary, units: dict[str, str], out_dir: Path
) -> dict[str, Path]:
    """The PNGs (one set per observable) in ``out_dir``; returns title -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    used = levels[levels["used"].astype(bool)] if len(levels) else levels
    plots: dict[str, Path] = {}
    for obs_id, g in used.groupby("observable", sort=True):
        unit = units.get(obs_id, "")
        sfx = f"_{obs_id}" if used["observable"].nunique() > 1 else ""
        plots[f"Observed vs predicted ({obs_id})"] = _obs_vs_pred(g, unit, out_dir / f"obs_vs_pred{sfx}.png")
        plots[f"Relative residuals vs time ({obs_id})"] = _residuals_vs_time(
            g, out_dir / f"residuals_vs_time{sfx}.png"
        )
        plots[f"VPC and pcVPC ({obs_id})"] = _vpc(
            {"VPC": summary.vpc[obs_id], "prediction-corrected VPC": summary.pcvpc[obs_id]},
            unit,
            out_dir / f"vpc{sfx}.png",
        )
        x = g["npde"].to_numpy(float)
        x = x[np.isfinite(x)]
        if len(x) >= 3:
            plots[f"NPDE histogram ({obs_id})"] = _npde_hist(x, out_dir / f"npde_hist{sfx}.png")
            plots[f"NPDE QQ plot ({obs_id})"] = _npde_qq(x, out_dir / f"npde_qq{sfx}.png")
    return plots


def shared_images(plots: dict[str, Path]) -> list[tuple[str, bytes]]:
    """The ``(title, PNG bytes)`` of a run's VPC and NPDE plots, in ``plots`` order: the images a
    site sends beside its aggregate record."""
    return [(t, p.read_bytes()) for t, p in plots.items() if t.startswith(SHARED_PLOTS)]


def _table(df: pd.DataFrame, max_rows: int | None = None) -> str:
    shown = df if max_rows is None else df.head(max_rows)
    out = shown.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="t", escape=True)
    if max_rows is not None and len(df) > max_rows:
        out += f"<p>… {len(df) - max_rows} more rows in the CSV beside this report.</p>"
    return out


def write_report(
    path: Path,
    *,
    title: str,
    facts: dict[str, str],
    summary: ValidationSummary,
    plots: dict[str, Path],
    excluded: pd.DataFrame,
) -> Path:
    """One HTML file, every image embedded: it can be mailed or archived on its own."""
    m = summary.metrics.copy()
    if len(m):
        m["value [95 % CI]"] = [
            f"{v:.3g} [{lo:.3g}, {hi:.3g}]" if np.isfinite(lo) else f"{v:.3g}"
            for v, lo, hi in zip(m["value"], m["ci_low"], m["ci_high"], strict=True)
        ]
        m = m.pivot_table(
            index=["observable", "name"], columns="setting", values="value [95 % CI]", aggfunc="first"
        ).reset_index()
    npde = pd.DataFrame([{"observable": k, **v} for k, v in summary.npde.items()])
    cov = pd.DataFrame(
        [
            {"observable": k, "levels inside their simulated 90 % PI (%)": v}
            for k, v in summary.coverage_90.items()
        ]
    )
    counts = pd.DataFrame([{"reason": k, "patients": v} for k, v in summary.exclusions.items()])
    parts = [f"<h1>{html.escape(title)}</h1>", "<table class='t'>"]
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items()]
    parts.append("</table><h2>Predictive performance</h2>")
    parts.append(
        "<p>Relative error = (predicted − observed) / observed; CIs from a patient-level "
        "bootstrap. Iterative: each level predicted from the MAP fit on the earlier levels "
        "(a patient's first level has none and is left out).</p>"
    )
    parts.append(_table(m))
    pp = summary.per_patient
    if len(pp):
        rows = []
        for (setting, obs_id), g in pp.groupby(["setting", "observable"], sort=False):
            row = {"setting": setting, "observable": obs_id, "patients": len(g)}
            for name in ("mpe_percent", "mape_percent", "within_20_percent"):
                q = g[name].quantile([0.25, 0.5, 0.75])
                row[f"{name} median [IQR]"] = f"{q[0.5]:.3g} [{q[0.25]:.3g}, {q[0.75]:.3g}]"
            rows.append(row)
        parts.append(
            "<h3>Per patient</h3><p>Distribution over patients of each patient's own metrics "
            "(every patient's row: per_patient_metrics.csv beside this report).</p>"
        )
        parts.append(_table(pd.DataFrame(rows)))
    sg = summary.subgroups
    if len(sg):
        sg = sg[sg["name"].isin(["mpe_percent", "mape_percent", "within_20_percent"])]
        parts.append(
            "<h3>By covariate subgroup</h3><p>Each categorical covariate's groups (e.g. per "
            "phenotype); CIs from 200 patient-bootstrap replicates (metrics_by_subgroup.csv).</p>"
        )
        parts.append(
            _table(sg[["covariate", "group", "patients", "setting", "observable", "name", "value", "n"]])
        )
    parts.append("<h2>NPDE (decorrelated, from simulations)</h2>" + _table(npde) + _table(cov))
    for name, p in plots.items():
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(
            f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'/>"
        )
    parts.append("<h2>Excluded patients</h2>")
    parts.append(_table(counts) if len(counts) else "<p>none</p>")
    if len(excluded):
        parts.append(_table(excluded[["patient_id", "reason", "detail"]], max_rows=2000))
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table.t{border-collapse:collapse;margin:.5em 0}"
        "table.t td,table.t th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        "img{max-width:100%}"
    )
    path.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    return path
