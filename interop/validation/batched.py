"""A batch of screened patients validated together on the vectorised closed-form path.

Same quantities as :func:`interop.validation.patient.evaluate_patient`, computed for all the
batch's patients at once: every MAP fit (all levels, and each prefix for iterative forecasting)
by :func:`interop.twin.batch_map.fit_batch`, and the a priori predictions and every
replicate of every patient in one call of the vectorised simulator. A patient that this path
cannot vouch for (a fit it hands back, a non-finite prediction, a model error) is returned as
None and the caller runs the per-patient path for it, which gives the reference result and
the exclusion reasons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interop.errors import InteropError
from interop.twin import CompiledModel, Twin
from interop.twin.batch_map import TwinBatch, batchable, fit_batch
from interop.twin.objective import residual_terms
from interop.twin.vectorised import Unsupported
from interop.validation.patient import ValidationSpec, patient_tables, replicate_draws

__all__ = ["evaluate_batched", "joins_batch"]


def joins_batch(model: CompiledModel, twin: Twin) -> bool:
    """Whether the patient can be validated on the batched path (else: the per-patient path)."""
    if not batchable(model, twin):
        return False
    try:
        residual_terms(model.card, twin.observations)
    except InteropError:  # a level the objective refuses: the per-patient path reports it
        return False
    return True


def evaluate_batched(
    model: CompiledModel, twins: list[Twin], spec: ValidationSpec
) -> list[tuple[dict[str, Any], dict] | None]:
    """Per twin: its tables, or None (run the per-patient path for it)."""
    if not twins:
        return []
    try:
        batch = TwinBatch(model, twins)
        fits = [(p, len(t.observations)) for p, t in enumerate(twins)]
        if spec.iterative:
            fits += [(p, k) for p, t in enumerate(twins) for k in range(1, len(t.observations))]
        results = fit_batch(batch, fits)
        draws = [replicate_draws(model.card, t, spec) for t in twins]
        n_eta = len(batch.eta_names)
        owner = np.concatenate([np.full(spec.n_sim + 1, p) for p in range(len(twins))])
        etas = np.concatenate([np.vstack([np.zeros((1, n_eta)), e]) for e, _ in draws])
        sims = batch.predict(owner, etas).reshape(len(twins), spec.n_sim + 1, -1)
    except (Unsupported, InteropError, np.linalg.LinAlgError):  # the whole batch goes the per-patient way
        return [None] * len(twins)
    by_fit = dict(zip(fits, results, strict=True))
    out: list[tuple[dict[str, Any], dict] | None] = []
    for p, twin in enumerate(twins):
        n = len(twin.observations)
        full = by_fit[(p, n)]
        partial = [by_fit[(p, k)] for k in range(1, n)] if spec.iterative else []
        pred = sims[p, 0, :n]
        usable = np.all(np.isfinite(pred)) and np.all(np.isfinite(sims[p, 1:, :n]))
        if full is None or any(f is None for f in partial) or not usable:
            out.append(None)
            continue
        iter_pred = np.full(n, np.nan)
        for k, f in enumerate(partial, start=1):
            assert f is not None
            iter_pred[k] = f.predictions[k]
        mode = dict(zip(batch.eta_names, map(float, full.etas), strict=True))
        ip, eps = sims[p, 1:, :n], draws[p][1]
        out.append(
            patient_tables(twin, pred, full.predictions, iter_pred, ip, eps, full.converged, full.ofv, mode)
        )
    return out
