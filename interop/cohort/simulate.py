"""Simulate virtual subjects under a design, in batches that run anywhere (one process or a
Dask worker): a batch gets SBML text and card JSON, compiles the model once per process (the
twin runtime's cache) and never receives a compiled roadrunner object.

Models on the closed-form path simulate a whole batch as one array program
(:func:`interop.twin.vectorised.simulate_many`); ODE models, in a batch of at least
``ENSEMBLE_FROM`` subjects, run ``BLOCK`` subjects per roadrunner run
(:func:`interop.twin.ensemble.simulate_ensemble`: one CVODE restart per dose for the block, not
per subject; its one-off compilation, ~20 ms per copy, is only repaid by a large batch); others,
or a batch where any subject's prediction is not finite, go subject by subject. A subject whose
ODE integration fails is recorded with its error in the subjects table; the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interop.cohort.design import Design, DesignDose
from interop.cohort.population import Population, Subject, draw_subject
from interop.errors import InteropError, SchemaError
from interop.schema import ModelCard, parse_json
from interop.twin import CompiledModel, Twin, bind_regimen, load_model, simulate
from interop.twin.ensemble import simulate_ensemble
from interop.twin.forecast import add_residual as add_residual_error  # the one way to draw levels
from interop.twin.vectorised import BatchSchedule, Unsupported, simulate_many

__all__ = [
    "CohortSpec",
    "add_residual_error",
    "compile_spec",
    "design_schedule",
    "simulate_batch",
    "simulate_subject",
    "warm_up",
]

log = logging.getLogger(__name__)

ENSEMBLE_FROM = 128  # subjects in a batch from which ODE models run as ensembles


@dataclass(frozen=True)
class CohortSpec:
    """Everything a worker needs, as plain picklable data."""

    sbml: str
    card_json: str
    design: Design
    population: Population
    seed: int


def compile_spec(sbml: str, card_json: str) -> CompiledModel:
    """The compiled model for this process (compiled on first use, then cached)."""
    return load_model(sbml, parse_json(ModelCard, card_json, source="model card"))


def warm_up(sbml: str, card_json: str) -> str:
    """Compile the model in this process now (e.g. ``client.run(warm_up, ...)`` on every worker);
    returns the SBML hash, never the compiled model (roadrunner objects do not travel)."""
    return compile_spec(sbml, card_json).sha256


def simulate_subject(
    model: CompiledModel, design: Design, subject: Subject, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The subject's levels: population (PRED) and individual (IPRED) predictions and DV, as
    columns (a batch builds one table at the end: a DataFrame per subject costs more than the ODE)."""
    card = model.card
    obs = design.observable or card.observables[0].id
    twin = bind_regimen(model, design.regimen(subject.covariates), subject.covariates, subject.id)
    times = np.asarray(design.sampling_h, dtype=float)
    individual = simulate(twin, times, subject.etas)
    ipred = individual.values[obs]
    pred = simulate(twin, times).values[obs]
    dv = add_residual_error(
        card.error_for(obs), ipred, rng.standard_normal(len(times)), individual.sds.get(obs)
    )
    below = dv < design.lloq if design.lloq is not None else dv <= 0
    n = len(times)
    return {
        "patient_id": np.full(n, subject.id, dtype=object),
        "time_h": times,
        "observable": np.full(n, obs, dtype=object),
        "pred": pred,
        "ipred": ipred,
        "dv": dv,
        "below_lloq": np.asarray(below, dtype=bool),
    }


def design_schedule(
    doses: Sequence[DesignDose], covariates: Mapping[str, np.ndarray], n: int
) -> BatchSchedule:
    """Design doses for ``n`` subjects as one schedule (amounts scaled by their ``per`` covariate)."""
    times, amounts, durations, routes = [], [], [], []
    for d in doses:
        if d.per is not None and d.per not in covariates:
            raise SchemaError(f"dose 'per: {d.per}' is not a covariate of the model", field="per")
        amount = np.broadcast_to(d.amount * (covariates[d.per] if d.per else 1.0), (n,))
        for k in range(d.additional + 1):
            times.append(np.full(n, d.time_h + k * (d.interval_h or 0.0)))
            amounts.append(amount)
            durations.append(np.full(n, d.duration_h if d.duration_h is not None else np.nan))
            routes.append(d.route)
    return BatchSchedule(
        np.stack(times, axis=1), np.stack(amounts, axis=1), np.stack(durations, axis=1), tuple(routes)
    )


def _residual_rng(seed: int, index: int) -> np.random.Generator:
    """Residual draws: a second stream of the same subject, independent of batching."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1)))


def _levels_table(
    card: ModelCard,
    design: Design,
    subjects: list[Subject],
    seed: int,
    ipred: np.ndarray,
    pred: np.ndarray,
    sd: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The batch's levels columns from IPRED and PRED (subjects x times), DV drawn per subject
    (``sd``: the simulated SDs of an sbml-form error, subjects x times)."""
    obs = design.observable or card.observables[0].id
    n, times = len(subjects), np.asarray(design.sampling_h, dtype=float)
    eps = np.stack([_residual_rng(seed, s.index).standard_normal(len(times)) for s in subjects])
    dv = add_residual_error(card.error_for(obs), ipred, eps, sd)
    below = dv < design.lloq if design.lloq is not None else dv <= 0
    return {
        "patient_id": np.repeat(np.array([s.id for s in subjects], dtype=object), len(times)),
        "time_h": np.tile(times, n),
        "observable": np.full(n * len(times), obs, dtype=object),
        "pred": pred.ravel(),
        "ipred": ipred.ravel(),
        "dv": dv.ravel(),
        "below_lloq": np.asarray(below, dtype=bool).ravel(),
    }


def _levels_vectorised(
    model: CompiledModel, design: Design, subjects: list[Subject], seed: int
) -> dict[str, np.ndarray]:
    """Every subject's levels in one array program (raises Unsupported / TwinError to fall back)."""
    card = model.card
    obs = design.observable or card.observables[0].id
    o = [x.id for x in card.observables].index(obs)
    n, times = len(subjects), np.asarray(design.sampling_h, dtype=float)
    covs = {c.name: np.array([s.covariates[c.name] for s in subjects]) for c in card.covariates}
    etas = {e: np.array([s.etas[e] for s in subjects]) for e in card.random_effects.etas}
    schedule = design_schedule(design.doses, covs, n)
    ipred = simulate_many(model, schedule, {**covs, **etas}, times)[:, o, :]
    pred = simulate_many(model, schedule, covs, times)[:, o, :]
    return _levels_table(card, design, subjects, seed, ipred, pred)  # no sbml-form SDs on this path


def _levels_ensemble(
    model: CompiledModel, design: Design, subjects: list[Subject], seed: int
) -> dict[str, np.ndarray]:
    """Every subject's levels from ensemble runs of an ODE model (raises InteropError to fall back)."""
    obs = design.observable or model.card.observables[0].id
    times = np.asarray(design.sampling_h, dtype=float)
    twins: list[Twin] = [
        bind_regimen(model, design.regimen(s.covariates), s.covariates, s.id) for s in subjects
    ]
    ipred = simulate_ensemble(twins, times, [s.etas for s in subjects])
    pred = simulate_ensemble(twins, times)
    return _levels_table(
        model.card,
        design,
        subjects,
        seed,
        np.stack([p.values[obs] for p in ipred]),
        np.stack([p.values[obs] for p in pred]),
        np.stack([p.sds[obs] for p in ipred]) if ipred and obs in ipred[0].sds else None,
    )


def simulate_batch(spec: CohortSpec, start: int, stop: int) -> dict[str, pd.DataFrame]:
    """Subjects ``start`` to ``stop - 1``: tables ``levels`` and ``subjects`` (with status)."""
    model = compile_spec(spec.sbml, spec.card_json)
    card = model.card
    drawn = [draw_subject(card, spec.population, spec.seed, i) for i in range(start, stop)]
    levels: list[dict[str, np.ndarray]] = []
    subjects: list[dict[str, object]] = []
    for subject in drawn:
        row: dict[str, object] = {
            "patient_id": subject.id,
            "index": subject.index,
            "status": "ok",
            "error": "",
        }
        if subject.population is not None:
            row["population"] = subject.population
        row.update({f"cov_{k}": v for k, v in subject.covariates.items()})
        row.update({f"eta_{k}": v for k, v in subject.etas.items()})
        subjects.append(row)
    try:
        levels.append(_levels_vectorised(model, spec.design, drawn, spec.seed))
    except (Unsupported, InteropError) as exc:  # not on the closed-form path, or a subject failed
        log.debug("batch %d-%d not vectorised: %s", start, stop, exc)
        if isinstance(exc, Unsupported) and len(drawn) >= ENSEMBLE_FROM:
            try:
                levels.append(_levels_ensemble(model, spec.design, drawn, spec.seed))
            except InteropError as err:  # a subject failed, or the model cannot be copied
                log.debug("batch %d-%d subject by subject: %s", start, stop, err)
    if not levels:
        for subject, row in zip(drawn, subjects, strict=True):
            try:
                levels.append(
                    simulate_subject(model, spec.design, subject, _residual_rng(spec.seed, subject.index))
                )
            except InteropError as err:  # an ODE failure of one subject is data, not a crash
                log.warning("subject %s failed: %s", subject.id, err)
                row.update(status="failed", error=str(err))
    columns = ["patient_id", "time_h", "observable", "pred", "ipred", "dv", "below_lloq"]
    table = (
        {c: np.concatenate([lv[c] for lv in levels]) for c in columns}
        if levels
        else {c: np.empty(0, dtype=object if c in ("patient_id", "observable") else float) for c in columns}
    )
    return {"levels": pd.DataFrame(table, columns=columns), "subjects": pd.DataFrame(subjects)}
