"""Simulate virtual subjects under a design, in batches that run anywhere (one process or a
Dask worker): a batch gets SBML text and card JSON, compiles the model once per process (the
twin runtime's cache) and never receives a compiled roadrunner object.

A subject whose ODE integration fails is recorded with its error in the subjects table; the
batch goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from interop.cohort.design import Design
from interop.cohort.population import Population, Subject, draw_subject
from interop.errors import InteropError
from interop.schema import ModelCard, ResidualError, parse_json
from interop.twin import CompiledModel, bind_regimen, load_model, simulate

__all__ = [
    "CohortSpec",
    "add_residual_error",
    "compile_spec",
    "simulate_batch",
    "simulate_subject",
    "warm_up",
]

log = logging.getLogger(__name__)


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


def add_residual_error(error: ResidualError | None, ipred: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Observations from individual predictions and standard-normal draws ``eps``."""
    if error is None:
        return ipred.copy()
    if error.model == "exponential":
        return ipred * np.exp(error.proportional_sd * eps)
    sd = np.sqrt(np.array([error.variance(float(f)) for f in np.ravel(ipred)])).reshape(ipred.shape)
    return ipred + sd * eps


def simulate_subject(
    model: CompiledModel, design: Design, subject: Subject, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The subject's levels: population (PRED) and individual (IPRED) predictions and DV, as
    columns (a batch builds one table at the end: a DataFrame per subject costs more than the ODE)."""
    card = model.card
    obs = design.observable or card.observables[0].id
    twin = bind_regimen(model, design.regimen(subject.covariates), subject.covariates, subject.id)
    times = np.asarray(design.sampling_h, dtype=float)
    ipred = simulate(twin, times, subject.etas).values[obs]
    pred = simulate(twin, times).values[obs]
    dv = add_residual_error(card.error_for(obs), ipred, rng.standard_normal(len(times)))
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


def simulate_batch(spec: CohortSpec, start: int, stop: int) -> dict[str, pd.DataFrame]:
    """Subjects ``start`` to ``stop - 1``: tables ``levels`` and ``subjects`` (with status)."""
    model = compile_spec(spec.sbml, spec.card_json)
    card = model.card
    levels: list[dict[str, np.ndarray]] = []
    subjects: list[dict[str, object]] = []
    for i in range(start, stop):
        subject = draw_subject(card, spec.population, spec.seed, i)
        # Residual draws: a second stream of the same subject, independent of batching.
        rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(i, 1)))
        row: dict[str, object] = {"patient_id": subject.id, "index": i, "status": "ok", "error": ""}
        if subject.population is not None:
            row["population"] = subject.population
        row.update({f"cov_{k}": v for k, v in subject.covariates.items()})
        row.update({f"eta_{k}": v for k, v in subject.etas.items()})
        try:
            levels.append(simulate_subject(model, spec.design, subject, rng))
        except InteropError as exc:  # an ODE failure of one subject is data, not a crash
            log.warning("subject %s failed: %s", subject.id, exc)
            row.update(status="failed", error=str(exc))
        subjects.append(row)
    columns = ["patient_id", "time_h", "observable", "pred", "ipred", "dv", "below_lloq"]
    table = (
        {c: np.concatenate([lv[c] for lv in levels]) for c in columns}
        if levels
        else {c: np.empty(0, dtype=object if c in ("patient_id", "observable") else float) for c in columns}
    )
    return {"levels": pd.DataFrame(table, columns=columns), "subjects": pd.DataFrame(subjects)}
