"""One patient's validation: screening, a priori, a posteriori and iterative predictions, and the
simulations that NPDE and the VPC need. Runs in batches anywhere (one process or Dask workers);
a batch receives SBML text, card JSON and records as JSON, and compiles the model once per process.

Screening reasons (a patient with one is excluded from every metric and counted):
``drug-mismatch`` (no dose of the model's drug, or levels of another analyte only),
``unit-mismatch`` (a dose or level unit that does not convert to the model's), ``no-levels``
(no usable level: none at all, all below the limit or before the first dose),
``covariate-missing``, ``covariate-outside-domain`` (outside the card's validity domain),
``ode-failure`` (the model could not be simulated for this patient), ``estimation-failure``
(the MAP fit failed), ``binding-error`` (any other reason the record does not bind).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from interop.cohort.population import draw_etas, patient_rng
from interop.cohort.simulate import add_residual_error, compile_spec
from interop.errors import InteropError, ModelError, TwinError
from interop.schema import ModelCard, PatientRecord, parse_json
from interop.twin import CompiledModel, Twin, bind_patient, simulate_observations
from interop.twin.objective import sd_observations
from interop.validation.npde import patient_npde, prediction_interval
from interop.validation.subgroups import patient_subgroups

__all__ = ["REASONS", "Exclusion", "ValidationSpec", "evaluate_patient", "screen_patient", "validate_batch"]

log = logging.getLogger(__name__)

REASONS = (
    "drug-mismatch",
    "unit-mismatch",
    "no-levels",
    "covariate-missing",
    "covariate-outside-domain",
    "ode-failure",
    "estimation-failure",
    "binding-error",
)

LEVEL_COLUMNS = [
    "patient_id",
    "k",
    "time_h",
    "tad_h",
    "observable",
    "dv",
    "below_lloq",
    "used",
    "pred",
    "ipred",
    "iter_pred",
    "npde",
    "pi_low",
    "pi_high",
    "sims",
]
PATIENT_COLUMNS = [
    "patient_id",
    "status",
    "reason",
    "detail",
    "n_levels",
    "n_used",
    "map_converged",
    "ofv",
    "etas",
    "subgroups",
]


@dataclass(frozen=True)
class ValidationSpec:
    sbml: str
    card_json: str
    seed: int = 1
    n_sim: int = 200
    iterative: bool = True
    batched: bool = True  # the vectorised closed-form path where it applies; False: one by one


class Exclusion(Exception):
    """Why a patient is left out of the metrics (one of ``REASONS``) and the detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _analyte_matches(card: ModelCard, record: PatientRecord) -> bool:
    for m in record.drug_levels():
        for o in card.observables:
            if (m.drug_level and m.drug_level.analyte.matches(o.analyte)) or any(
                m.code.matches(c) for c in o.measurement_codes
            ):
                return True
    return False


def screen_patient(model: CompiledModel, record: PatientRecord) -> Twin:
    """The patient's twin, or an :class:`Exclusion` saying why the patient cannot be used."""
    card = model.card
    if not record.drug_levels():
        raise Exclusion("no-levels", "no drug-level measurement")
    if not _analyte_matches(card, record):
        found = sorted(
            {
                m.drug_level.analyte.display or m.drug_level.analyte.code
                for m in record.drug_levels()
                if m.drug_level
            }
        )
        raise Exclusion(
            "drug-mismatch",
            f"levels of {', '.join(found)}, model predicts "
            f"{', '.join(o.analyte.display or o.analyte.code for o in card.observables)}",
        )
    try:
        twin = bind_patient(model, record)
    except TwinError as exc:
        covs = {c.name for c in card.covariates}
        reason = (
            "unit-mismatch"
            if exc.field == "unit"
            else "drug-mismatch"
            if exc.field == "doses"
            else "covariate-missing"
            if exc.field in covs
            else "binding-error"
        )
        raise Exclusion(reason, str(exc)) from exc
    outside = []
    for name, (lo, hi) in card.validity.covariate_ranges.items():
        series = twin.covariates.get(name)
        if series is None:
            continue
        bad = [v for v in series.values if not lo <= v <= hi]
        if bad:
            outside.append(f"{name}={bad[0]:g} outside [{lo:g}, {hi:g}]")
    if outside:
        raise Exclusion("covariate-outside-domain", "; ".join(outside))
    first = twin.doses[0].time_h
    if not any(_usable(o, first) for o in twin.observations):
        raise Exclusion(
            "no-levels",
            f"{len(twin.observations)} level(s), none above the limit of quantification after the first dose",
        )
    return twin


def _usable(o: Any, first_dose_h: float) -> bool:
    return (not o.below_lloq) and o.value > 0 and o.time_h >= first_dose_h


def _tad(twin: Twin, t: float) -> float:
    before = [d.time_h for d in twin.doses if d.time_h <= t]
    return t - before[-1] if before else t


def evaluate_patient(model: CompiledModel, twin: Twin, spec: ValidationSpec) -> tuple[dict[str, Any], dict]:
    """Predictions, NPDE and simulated replicates of one screened patient (its level columns and
    its patient row)."""
    from interop.twin import estimate_map  # the twin runtime's MAP estimator
    from interop.twin.estimate import make_predictor  # f(eta) at the observations, set up once

    card = model.card
    obs = twin.observations
    n = len(obs)
    try:
        pred = simulate_observations(twin)
    except (ModelError, TwinError) as exc:  # the population prediction itself cannot be simulated
        raise Exclusion("ode-failure", str(exc)) from exc
    fit = estimate_map(twin)
    ipred = simulate_observations(twin, fit.etas)
    outs = [*obs, *sd_observations(card, obs)]  # then the SDs of sbml-form errors
    f, exact = make_predictor(twin, outs)
    iter_pred = np.full(n, np.nan)
    if spec.iterative:
        warm = None
        for k in range(1, n):
            # ODE models: each fit starts from the previous one's mode (far fewer solver calls); the
            # closed-form path keeps estimate_map's own starts (it is the batched path's reference).
            partial = estimate_map(twin, observations=obs[:k], start=warm)
            warm = None if exact else list(partial.etas.values())
            iter_pred[k] = simulate_observations(twin, partial.etas)[k]
    # Replicates of the patient's own design: ETAs from Omega, then residual error.
    etas, eps = replicate_draws(card, twin, spec)
    if exact:  # the closed-form path takes every replicate in one batched evaluation
        ip = np.asarray(f(etas)).reshape(spec.n_sim, len(outs))
    else:
        ip = np.array([f(etas[r]) for r in range(spec.n_sim)]).reshape(spec.n_sim, len(outs))
    return patient_tables(twin, pred, ipred, iter_pred, ip, eps, fit.converged, fit.ofv, fit.etas)


def replicate_draws(card: ModelCard, twin: Twin, spec: ValidationSpec) -> tuple[np.ndarray, np.ndarray]:
    """The patient's replicate ETAs (n_sim x n_eta) and residual draws (n_sim x levels), keyed by
    seed and patient id (the same whatever the batching)."""
    rng = patient_rng(spec.seed, twin.patient_id)
    etas = draw_etas(card, rng, size=spec.n_sim)
    return etas, rng.standard_normal((spec.n_sim, len(twin.observations)))


def patient_tables(
    twin: Twin,
    pred: np.ndarray,
    ipred: np.ndarray,
    iter_pred: np.ndarray,
    ip: np.ndarray,
    eps: np.ndarray,
    converged: bool,
    ofv: float,
    etas: dict[str, float],
) -> tuple[dict[str, Any], dict]:
    """The patient's level columns (``LEVEL_COLUMNS``, one entry per level) and patient row from
    its predictions: a priori ``pred``, MAP ``ipred``, iterative ``iter_pred`` and the replicates'
    individual predictions ``ip`` (n_sim x levels, then the SDs of sbml-form errors as
    :func:`interop.twin.objective.sd_observations` lists them) with residual draws ``eps``."""
    card = twin.card
    obs = twin.observations
    n = len(obs)
    dv = np.array([o.value for o in obs])
    if not np.all(np.isfinite(ip)):
        raise Exclusion("ode-failure", "non-finite prediction in a simulated replicate")
    sims = np.empty((ip.shape[0], n))
    k = n
    for j, o in enumerate(obs):
        err = card.error_for(o.observable)
        sd = None
        if err is not None and err.needs_sd:
            sd, k = ip[:, k], k + 1
        sims[:, j] = add_residual_error(err, ip[:, j], eps[:, j], sd)
    first = twin.doses[0].time_h
    used = np.array([_usable(o, first) for o in obs])
    npde = np.full(n, np.nan)
    if used.any():
        npde[used] = patient_npde(dv[used], sims[:, used])
    lo, hi = prediction_interval(sims)
    levels = {
        "patient_id": np.full(n, twin.patient_id, dtype=object),
        "k": np.arange(n),
        "time_h": np.array([o.time_h for o in obs], dtype=float),
        "tad_h": np.array([_tad(twin, o.time_h) for o in obs], dtype=float),
        "observable": np.array([o.observable for o in obs], dtype=object),
        "dv": dv,
        "below_lloq": np.array([o.below_lloq for o in obs], dtype=bool),
        "used": used,
        "pred": pred,
        "ipred": ipred,
        "iter_pred": iter_pred,
        "npde": npde,
        "pi_low": lo,
        "pi_high": hi,
        "sims": [sims[:, j].astype(np.float32) for j in range(n)],
    }
    row = {
        "patient_id": twin.patient_id,
        "status": "included",
        "reason": "",
        "detail": "; ".join(twin.notes),
        "n_levels": n,
        "n_used": int(used.sum()),
        "map_converged": bool(converged),
        "ofv": float(ofv),
        "etas": json.dumps(etas, sort_keys=True),
        "subgroups": patient_subgroups(twin),
    }
    return levels, row


def validate_batch(spec: ValidationSpec, records_json: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """Tables ``levels`` (included patients) and ``patients`` (every patient, with status).

    With ``spec.batched``, the patients the vectorised closed-form path covers are evaluated
    together (:mod:`interop.validation.batched`); the others, and any it hands back, here one by one.
    """
    from interop.validation.batched import evaluate_batched, joins_batch  # it builds on this module

    model = compile_spec(spec.sbml, spec.card_json)
    screened: list[tuple[dict, Twin | Exception]] = []
    for text in records_json:
        record = parse_json(PatientRecord, text, source="cohort record")
        base = {
            "patient_id": record.patient.id,
            "status": "excluded",
            "n_levels": len(record.drug_levels()),
            "n_used": 0,
            "map_converged": False,
            "ofv": float("nan"),
            "etas": "",
            "subgroups": "",
        }
        try:
            screened.append((base, screen_patient(model, record)))
        except (Exclusion, InteropError) as exc:  # classified below, as evaluation errors are
            screened.append((base, exc))
    together = [
        i
        for i, (_, t) in enumerate(screened)
        if isinstance(t, Twin) and spec.batched and joins_batch(model, t)
    ]
    done = dict(zip(together, evaluate_batched(model, [screened[i][1] for i in together], spec), strict=True))  # type: ignore[misc]
    levels, patients = [], []
    for i, (base, twin) in enumerate(screened):
        pid = base["patient_id"]
        try:
            if isinstance(twin, Exception):
                raise twin
            result = done.get(i)
            lv, row = result if result is not None else evaluate_patient(model, twin, spec)
        except Exclusion as exc:
            patients.append({**base, "reason": exc.reason, "detail": exc.detail})
            continue
        except (ModelError, TwinError) as exc:  # the MAP fits failed: recorded, not fatal
            log.warning("patient %s: %s", pid, exc)
            patients.append({**base, "reason": "estimation-failure", "detail": str(exc)})
            continue
        except InteropError as exc:
            patients.append({**base, "reason": "binding-error", "detail": str(exc)})
            continue
        levels.append(lv)
        patients.append(row)
    return {"levels": _levels_frame(levels), "patients": pd.DataFrame(patients, columns=PATIENT_COLUMNS)}


def _levels_frame(parts: list[dict[str, Any]]) -> pd.DataFrame:
    """One table from the patients' level columns (one DataFrame per batch, not per patient)."""
    if not parts:
        return pd.DataFrame(columns=LEVEL_COLUMNS)
    cols: dict[str, Any] = {}
    for c in LEVEL_COLUMNS:
        if c == "sims":
            cols[c] = [s for p in parts for s in p[c]]
        else:
            cols[c] = np.concatenate([p[c] for p in parts])
    return pd.DataFrame(cols, columns=LEVEL_COLUMNS)
