"""Probability of target attainment (PTA) of dosing regimens on a virtual population.

A study file (JSON or YAML) names the exposure targets and the regimens to compare::

    description: gentamicin extended-interval dosing
    targets:                          # all must be met: PTA = P(every target met)
      - {kind: peak, low: 16, high: 1000}
      - {kind: trough, low: 0, high: 1}
    regimens:
      - name: 5 mg/kg q24h
        doses: [{route: iv-infusion, amount: 5, per: WT, duration_h: 0.5, interval_h: 24, additional: 6}]
      - name: 7 mg/kg q24h
        doses: [{route: iv-infusion, amount: 7, per: WT, duration_h: 0.5, interval_h: 24, additional: 6}]

Each regimen is evaluated over its last dosing interval (near steady state) unless it gives
``window_h: [start, end]``, with the dose recommendation's own metrics
(:func:`interop.twin.recommend.exposure`): the trough is the level at the end of the window, the
peak the highest level in it, ``auc`` (or ``auc24``) the AUC24 (the AUC over the window scaled to
24 h, whatever the interval) and ``time_above`` the share of the window (%) above ``threshold``.
Levels come from :func:`interop.twin.vectorised.simulate_many` on a fine grid (``grid_points``
per window); ODE models run as roadrunner ensembles (blocks of >= 128 subjects) or one subject
at a time.

Subjects are drawn in blocks: block ``b`` draws its covariates (the population's distributions
or rows of a real cohort) and ETAs (the card's Omega) from ``SeedSequence(seed, (b,))``, so a
block gives the same subjects on one process or on any Dask worker and the table is the same.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

import interop.cohort.simulate as cohort_simulate
from interop.cohort.design import Design, DesignDose, read_structured_file
from interop.cohort.population import Population, draw_etas
from interop.cohort.scale import Progress, run_batches
from interop.cohort.simulate import compile_spec, design_schedule
from interop.errors import InteropError, TwinError
from interop.schema import ModelCard, parse
from interop.schema.base import Frozen
from interop.twin import CompiledModel, Twin, bind_regimen, simulate
from interop.twin.ensemble import simulate_ensemble
from interop.twin.recommend import Target, exposure
from interop.twin.vectorised import Unsupported, simulate_many

__all__ = [
    "PtaResult",
    "PtaStudy",
    "PtaTarget",
    "load_study",
    "run_pta",
    "write_pta",
]

log = logging.getLogger(__name__)


class PtaTarget(Frozen):
    """An acceptable range of one exposure metric (concentrations in the observable's unit);
    read from the study file, evaluated as the dose recommendation's :class:`Target`."""

    kind: Literal["trough", "peak", "auc", "auc24", "time_above"]
    low: float = Field(default=0.0, ge=0)
    high: float = Field(default=math.inf, gt=0, description="Omitted: no upper limit")
    threshold: float | None = Field(default=None, gt=0, description="time_above: the concentration")

    @model_validator(mode="after")
    def _range(self) -> Self:
        self.to_target()  # one set of rules: the recommendation's
        return self

    def to_target(self) -> Target:
        try:
            kind = "auc" if self.kind == "auc24" else self.kind
            return Target(kind, self.low, self.high, threshold=self.threshold)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(str(exc)) from None


class PtaRegimen(Frozen):
    name: str = Field(min_length=1)
    doses: tuple[DesignDose, ...] = Field(min_length=1)
    window_h: tuple[float, float] | None = Field(default=None, description="Evaluated window (hours)")

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.window_h is not None and not 0 <= self.window_h[0] < self.window_h[1]:
            raise ValueError("window_h must be [start, end] with 0 <= start < end")
        return self

    def window(self) -> tuple[float, float]:
        """The evaluated window: given, else the interval after the last dose."""
        if self.window_h is not None:
            return self.window_h
        last = max(self.doses, key=lambda d: d.time_h + d.additional * (d.interval_h or 0.0))
        start = last.time_h + last.additional * (last.interval_h or 0.0)
        return start, start + (last.interval_h or 24.0)


class PtaStudy(Frozen):
    description: str = ""
    observable: str | None = Field(default=None, description="Default: the card's first observable")
    targets: tuple[PtaTarget, ...] = Field(min_length=1)
    regimens: tuple[PtaRegimen, ...] = Field(min_length=1)
    grid_points: int = Field(default=241, ge=3, le=5000)

    @model_validator(mode="after")
    def _names(self) -> Self:
        names = [r.name for r in self.regimens]
        if len(set(names)) != len(names):
            raise ValueError("regimen names must be unique")
        return self


def load_study(path: Path) -> PtaStudy:
    """The PTA study in ``path`` (JSON or YAML), validated; errors name the file and field."""
    return parse(PtaStudy, read_structured_file(path), source=str(path))


@dataclass(frozen=True)
class _Spec:
    sbml: str
    card_json: str
    study: PtaStudy
    population: Population
    seed: int


def _levels(
    model: CompiledModel,
    regimen: PtaRegimen,
    covs: dict[str, np.ndarray],
    params: dict[str, np.ndarray],
    grid: np.ndarray,
    size: int,
) -> np.ndarray:
    """Levels (subjects x observables x grid): vectorised; ODE models as ensembles in blocks of at
    least ``ENSEMBLE_FROM`` subjects (:mod:`interop.cohort.simulate`), else subject by subject."""
    try:
        return simulate_many(model, design_schedule(regimen.doses, covs, size), params, grid)
    except Unsupported:
        pass
    design = Design(doses=regimen.doses, sampling_h=(0.0,))
    twins: list[Twin] = []
    values: list[dict[str, float]] = []
    for s in range(size):
        cov = {k: float(v[s]) for k, v in covs.items()}
        twins.append(bind_regimen(model, design.regimen(cov), cov, f"pta-{s}"))
        values.append({k: float(v[s]) for k, v in params.items()})
    if size >= cohort_simulate.ENSEMBLE_FROM:
        try:
            preds = simulate_ensemble(twins, grid, values)
        except InteropError as exc:  # the subject-by-subject runs below say which subject fails
            log.debug("PTA block subject by subject: %s", exc)
        else:
            return np.stack([np.stack([p.values[x.id] for x in model.card.observables]) for p in preds])
    out = np.empty((size, len(model.card.observables), len(grid)))
    for s, (twin, v) in enumerate(zip(twins, values, strict=True)):
        pred = simulate(twin, grid, parameters=v)
        out[s] = np.stack([pred.values[x.id] for x in model.card.observables])
    return out


def _block(spec: _Spec, block: int, size: int) -> dict[str, pd.DataFrame]:
    """Block ``block`` of ``size`` subjects: every regimen's metrics per subject (float32)."""
    model = compile_spec(spec.sbml, spec.card_json)
    card = model.card
    study = spec.study
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(block,)))
    covs = spec.population.draw_table(card, rng, size)
    etas = draw_etas(card, rng, size=size)
    params = {**covs, **{e: etas[:, j] for j, e in enumerate(card.random_effects.etas)}}
    obs = study.observable or card.observables[0].id
    o = [x.id for x in card.observables].index(obs)
    columns: dict[str, np.ndarray] = {}
    for r, regimen in enumerate(study.regimens):
        lo, hi = regimen.window()
        grid = np.linspace(lo, hi, study.grid_points)
        values = _levels(model, regimen, covs, params, grid, size)[:, o, :]
        for t, target in enumerate(study.targets):
            columns[f"r{r}_t{t}"] = exposure(target.to_target(), grid, values).astype(np.float32)
    return {"metrics": pd.DataFrame(columns)}


@dataclass(frozen=True)
class PtaResult:
    """One row per regimen: PTA (all targets), PTA per target, metric percentiles."""

    table: pd.DataFrame
    study: PtaStudy
    n: int
    observable: str
    unit: str
    extra: dict[str, object] = field(default_factory=dict)


def run_pta(
    sbml: str,
    card: ModelCard,
    study: PtaStudy,
    n: int,
    population: Population,
    *,
    seed: int = 1,
    block_size: int = 10_000,
    scheduler: str | None = "single",
    workers: int = 2,
    progress: Progress | None = None,
) -> PtaResult:
    """Every regimen of ``study`` on ``n`` virtual subjects (see the module docstring)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    obs = study.observable or card.observables[0].id
    units = {x.id: x.unit for x in card.observables}
    if obs not in units:
        raise TwinError(f"model {card.id} has no observable {obs!r}", field="observable")
    spec = _Spec(sbml, card.model_dump_json(), study, population, seed)
    blocks = [(b, min(block_size, n - b * block_size)) for b in range((n + block_size - 1) // block_size)]
    parts = run_batches(_block, spec, blocks, scheduler=scheduler, workers=workers, progress=progress)
    metrics = pd.concat([p["metrics"] for p in parts], ignore_index=True)
    rows = []
    for r, regimen in enumerate(study.regimens):
        met = np.ones(n, dtype=bool)
        row: dict[str, object] = {
            "regimen": regimen.name,
            "window_h": "-".join(f"{x:g}" for x in regimen.window()),
        }
        for t, spec_target in enumerate(study.targets):
            target = spec_target.to_target()
            v = metrics[f"r{r}_t{t}"].to_numpy(dtype=float)
            hit = target.met(v)
            met &= hit
            row[f"PTA {target.describe(units[obs])}"] = float(hit.mean())
            p05, p50, p95 = np.percentile(v, [5, 50, 95])
            unit = target.unit(units[obs])
            row[f"{target.name} p05 ({unit})"] = p05
            row[f"{target.name} median ({unit})"] = p50
            row[f"{target.name} p95 ({unit})"] = p95
        row["PTA all targets"] = float(met.mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    return PtaResult(table, study, n, obs, units[obs])


def write_pta(result: PtaResult, out_dir: Path) -> dict[str, Path]:
    """``pta.csv``, ``pta.json`` and a bar chart ``pta.png`` in ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "pta.csv", "json": out_dir / "pta.json", "png": out_dir / "pta.png"}
    result.table.to_csv(paths["csv"], index=False)
    payload = {
        "description": result.study.description,
        "n_subjects": result.n,
        "observable": result.observable,
        "concentration_unit": result.unit,
        "targets": [
            {
                **t.model_dump(),
                "high": t.high if math.isfinite(t.high) else None,
                "label": t.to_target().label(),
            }
            for t in result.study.targets
        ],
        "metric_units": {t.to_target().name: t.to_target().unit(result.unit) for t in result.study.targets},
        "regimens": result.table.to_dict(orient="records"),
    }
    import json

    paths["json"].write_text(json.dumps(payload, indent=2))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(result.table) + 2), 4))
    names = list(result.table["regimen"])
    ax.bar(names, 100 * result.table["PTA all targets"], color="#3b6ea5", label="all targets")
    for target in result.study.targets:
        label = target.to_target().describe(result.unit)
        ax.plot(names, 100 * result.table[f"PTA {label}"], "o--", label=label)
    ax.set_ylabel("probability of target attainment (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"PTA, {result.n:,} virtual subjects ({result.observable}, {result.unit})", fontsize=10)
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(paths["png"], dpi=120)
    plt.close(fig)
    return paths
