"""Batched Newton MAP (interop.twin.batch_map) against the per-twin estimator and objective.

The batched fits must sit on the mode of the same objective that ``estimate_map`` minimises
(checked with the per-twin closed-form predictor and ``objective_value``, independently of
the vectorised code), and hand back the fits it cannot vouch for (a kink at a lag time).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tellurium as te

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import (
    CompiledModel,
    LevelObservation,
    Twin,
    bind_regimen,
    estimate_map,
    load_model,
    simulate,
)
from interop.twin.batch_map import TwinBatch, _Terms, batchable, fit_batch
from interop.twin.estimate import make_predictor
from interop.twin.objective import objective_value, residual_terms
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML, mapbayr_card
from tests.twin.test_kinks import LAG_MODEL

TIMES = [1.0, 8.0, 24.9, 32.0, 47.0]


def _with_levels(twin: Twin, times: list[float], values: np.ndarray, lloq: float | None = None) -> Twin:
    obs = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        below = lloq is not None and v < lloq
        value = lloq if lloq is not None and below else float(v)
        obs.append(LevelObservation(t, "gentamicin", value, below, lloq, f"m{i}"))
    return dataclasses.replace(twin, observations=tuple(obs))


def _twins(model: CompiledModel, n: int, seed: int, lloq: float | None = None) -> list[Twin]:
    """Patients of a gentamicin regimen (1-3 infusions, 2-5 levels: ragged) with levels from random
    ETAs and 15 % noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        covs = {"WT": float(rng.uniform(50, 100)), "SCR": float(rng.uniform(0.6, 2.0))}
        starts = (0.0, 24.0, 36.0)[: 1 + i % 3]
        doses = tuple(
            ReferenceDose(route="iv-infusion", amount=5 * covs["WT"], time_h=t, duration_h=0.5)
            for t in starts
        )
        twin = bind_regimen(model, doses, covs, patient_id=f"p{seed}-{i}")
        truth = {"ETA_CL": float(rng.normal(0, 0.3)), "ETA_V": float(rng.normal(0, 0.2))}
        times = TIMES[: 5 - i % 4]
        clean = simulate(twin, times, truth).values["gentamicin"]
        out.append(_with_levels(twin, times, clean * np.exp(0.15 * rng.standard_normal(len(times))), lloq))
    return out


def _near(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to 1e-10 of the largest level (the vectorised simulator's guarantee)."""
    return bool(np.allclose(a, b, rtol=0, atol=1e-10 * np.max(np.abs(b))))


def _model(form: str) -> CompiledModel:
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text()).model_dump()
    card["residual_error"][0]["model"] = form
    return load_model(GENTAMICIN_SBML.read_text(), ModelCard.model_validate(card))


@pytest.mark.parametrize("form", ["combined", "proportional", "additive", "exponential", "combined-sd"])
def test_batched_objective_equals_objective_value(form: str) -> None:
    model = _model(form)
    twins = _twins(model, 3, seed=5, lloq=0.5)  # some levels below the limit: M3 terms too
    assert any(o.below_lloq for t in twins for o in t.observations)
    batch = TwinBatch(model, twins)
    terms = _Terms(batch)
    rng = np.random.default_rng(0)
    pat = np.array([0, 1, 2, 2])
    k = np.array([5, 4, 1, 3])  # levels: 5, 4, 3
    E = rng.normal(0, 0.4, (4, 3, 2))
    F = batch.predict(np.repeat(pat, 3), E.reshape(-1, 2)).reshape(4, 3, -1)
    got = terms.objective(pat, k, F, E, np.linalg.inv(model.card.random_effects.omega_matrix()))
    omega_inv = np.linalg.inv(model.card.random_effects.omega_matrix())
    for g in range(4):
        obs = twins[pat[g]].observations[: k[g]]
        r = residual_terms(model.card, obs)
        f, _ = make_predictor(twins[pat[g]], obs)
        for s in range(3):
            assert _near(F[g, s, : k[g]], f(E[g, s]))
            want = objective_value(r, F[g, s, : k[g]], E[g, s], omega_inv)
            assert got[g, s] == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_batched_fits_are_the_modes_estimate_map_approaches(gentamicin: CompiledModel) -> None:
    twins = _twins(gentamicin, 6, seed=11, lloq=0.3)
    assert all(batchable(gentamicin, t) for t in twins)
    fits = [
        (p, k)
        for p, t in enumerate(twins)
        for k in sorted({1, 3, len(t.observations)})
        if k <= len(t.observations)
    ]
    results = fit_batch(TwinBatch(gentamicin, twins), fits)
    omega_inv = np.linalg.inv(gentamicin.card.random_effects.omega_matrix())
    for (p, k), res in zip(fits, results, strict=True):
        assert res is not None
        obs = twins[p].observations[:k]
        ref = estimate_map(twins[p], observations=obs)
        f, _ = make_predictor(twins[p], obs)
        r = residual_terms(gentamicin.card, obs)

        def obj(e: np.ndarray, f=f, r=r) -> float:  # type: ignore[no-untyped-def]
            return objective_value(r, f(e), e, omega_inv)

        h = 1e-6
        grad = [(obj(res.etas + h * u) - obj(res.etas - h * u)) / (2 * h) for u in np.eye(2)]
        assert max(map(abs, grad)) < 2e-5  # the mode (estimate_map stops at its tolerance, ~1e-3)
        assert res.objective <= ref.objective + 1e-9
        assert res.objective == pytest.approx(obj(res.etas), rel=1e-12)
        assert np.allclose(res.etas, list(ref.etas.values()), atol=1e-4)
        assert res.converged == ref.converged
        assert res.ofv == pytest.approx(ref.ofv, abs=1e-5)
        full, _ = make_predictor(twins[p], twins[p].observations)
        assert _near(res.predictions, full(res.etas))


def test_a_kink_at_a_lag_time_is_handed_back_to_estimate_map() -> None:
    card = parse_json(ModelCard, mapbayr_card("001").read_text()).model_dump()
    card["id"] = "lag-test"
    card["dosing"][0]["lag_time_h"] = "ALAG"
    card["random_effects"]["etas"] = ["ETA_CL", "ETA_V", "ETA_KA", "ETA_LAG"]
    card["random_effects"]["omega"] = np.diag([0.2, 0.2, 0.2, 0.2]).tolist()
    model = load_model(te.antimonyToSBML(LAG_MODEL), ModelCard.model_validate(card))
    rng = np.random.default_rng(0)
    twins = []
    # a level at the typical lag (1 h): a kink at ETA = 0; a level at 1.5 h: smooth at the mode, but
    # a lag within 3 omega (0.26-3.8 h) crosses it; a first level at 5 h: no lag within 3 omega does
    for first in (1.0, 1.5, 5.0):
        twin = bind_regimen(
            model, (ReferenceDose(route="oral", amount=10000, time_h=0.0),), {}, f"lag{first}"
        )
        times = [first, 6.0, 8.0, 24.0]
        truth = {"ETA_CL": 0.2, "ETA_V": -0.1, "ETA_KA": 0.0, "ETA_LAG": -0.5}
        clean = simulate(twin, times, truth).values["parent"]
        noisy = clean * (1 + 0.1 * rng.standard_normal(len(times)))
        obs = tuple(
            LevelObservation(t, "parent", float(v), False, None, f"m{i}")
            for i, (t, v) in enumerate(zip(times, noisy, strict=True))
        )
        twins.append(dataclasses.replace(twin, observations=obs))
    kinked, pieces, smooth = fit_batch(TwinBatch(model, twins), [(0, 4), (1, 4), (2, 4)])
    assert kinked is None  # the caller runs estimate_map, whose restarts escape the kink
    assert pieces is None  # ... and whose event-time search tries the lag's other pieces
    assert smooth is not None and smooth.converged
    ref = estimate_map(twins[2])
    assert ref.modes == 1 and "event-time" not in ref.message  # no piece to search
    assert smooth.objective <= ref.objective + 1e-9
    assert np.allclose(smooth.etas, list(ref.etas.values()), atol=1e-3)
