"""The vectorised closed-form path against the per-subject twin path and against exact solutions."""

from __future__ import annotations

import json
from pathlib import Path

import antimony
import mpmath as mp
import numpy as np
import pytest

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import CompiledModel, bind_regimen, load_model, simulate
from interop.twin.vectorised import BatchSchedule, Unsupported, schedule_for, simulate_many

MODELS = Path(__file__).resolve().parents[2] / "interop" / "data" / "models"
TIMES = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 11.9, 12.0, 13.0, 30.0, 48.0, 60.2, 72.0, 120.0])


def _load(name: str) -> CompiledModel:
    card = parse_json(ModelCard, (MODELS / f"{name}.card.json").read_text())
    return load_model((MODELS / f"{name}.xml").read_text(), card)


def _random_cohort(
    model: CompiledModel, n: int, seed: int
) -> tuple[list[tuple[ReferenceDose, ...]], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Regimens of 1-5 doses (every route the card takes, infusions of 0.5 h), covariates within
    +-30 % of their reference, ETAs ~ N(0, 0.3^2)."""
    rng = np.random.default_rng(seed)
    card = model.card
    routes = sorted({d.route for d in card.dosing})
    regimens = []
    for s in range(n):
        route = routes[s % len(routes)]
        regimens.append(
            tuple(
                ReferenceDose(
                    route=route,
                    amount=float(rng.uniform(50, 500)),
                    time_h=float(12 * k + rng.uniform(0, 3)),
                    duration_h=0.5 if route == "iv-infusion" else None,
                )
                for k in range(int(rng.integers(1, 6)))
            )
        )
    covs = {c.name: rng.uniform(0.7, 1.3, n) * (c.reference or 1.0) for c in card.covariates}
    etas = {e: rng.normal(0.0, 0.3, n) for e in card.random_effects.etas}
    return regimens, covs, etas


@pytest.mark.parametrize(
    "name", ["gentamicin_1cmt", "mapbayr_001", "mapbayr_006", "mapbayr_301", "mapbayr_401"]
)
def test_equals_the_per_subject_path(name: str) -> None:
    """Every shipped linear model, 30 subjects with their own regimens, covariates and ETAs.

    Tolerance: 1e-10 of the subject's peak. Both paths are exact in exact arithmetic; the
    per-subject path adds an infusion as two rate steps, whose difference cancels to ~1e-7
    relative on levels that decayed 10^6-fold (the vectorised path is checked against the exact
    solution there, below)."""
    model = _load(name)
    regimens, covs, etas = _random_cohort(model, 30, seed=7)
    out = simulate_many(model, schedule_for(regimens), {**covs, **etas}, TIMES)
    for s, regimen in enumerate(regimens):
        twin = bind_regimen(model, regimen, {k: float(v[s]) for k, v in covs.items()})
        ref = simulate(twin, TIMES, {k: float(v[s]) for k, v in etas.items()})
        for o, obs in enumerate(model.card.observables):
            expected = ref.values[obs.id]
            peak = float(np.max(np.abs(expected)))
            assert peak > 0
            np.testing.assert_allclose(out[s, o], expected, rtol=0, atol=1e-10 * peak)
            big = np.abs(expected) > 1e-3 * peak
            np.testing.assert_allclose(out[s, o][big], expected[big], rtol=1e-10)


def test_decayed_infusion_levels_are_exact() -> None:
    """One-compartment infusion, closed form C = R/(kV) (1 - e^{-kD}) e^{-k(t-D)} in 40-digit arithmetic,
    down to levels 10^8 below the peak."""
    model = _load("gentamicin_1cmt")
    n = 20
    rng = np.random.default_rng(3)
    wt, scr = rng.uniform(50, 90, n), rng.uniform(0.6, 1.4, n)
    eta_cl, eta_v = rng.normal(0, 0.3, n), rng.normal(0, 0.2, n)
    dose, dur = 240.0, 0.5
    schedule = BatchSchedule(np.zeros((n, 1)), np.full((n, 1), dose), np.full((n, 1), dur), ("iv-infusion",))
    times = np.array([0.2, 0.5, 6.0, 24.0, 72.0, 120.0])
    out = simulate_many(
        model,
        schedule,
        {"WT": wt, "SCR": scr, "AGE": 50.0, "SEX": 0.0, "ETA_CL": eta_cl, "ETA_V": eta_v},
        times,
    )
    mp.mp.dps = 40
    for s in range(n):
        crcl = (140 - 50) * wt[s] / (72 * scr[s])
        cl = mp.mpf(5 * (crcl / 100) * np.exp(eta_cl[s]))
        v = mp.mpf(20 * (wt[s] / 70) * np.exp(eta_v[s]))
        k, rate = cl / v, mp.mpf(dose / dur)
        for j, t in enumerate(times):
            t_ = mp.mpf(t)
            exact = (
                rate / (k * v) * (1 - mp.e ** (-k * t_))
                if t <= dur
                else rate / (k * v) * (1 - mp.e ** (-k * dur)) * mp.e ** (-k * (t_ - dur))
            )
            assert out[s, 0, j] == pytest.approx(float(exact), rel=1e-12)


def test_shared_and_subject_specific_schedules_agree() -> None:
    """The breakpoint sweep (one schedule for all) and superposition (padded, per-subject times)
    give the same levels: the same regimen once shared and once with a zero-amount pad."""
    model = _load("mapbayr_401")
    n = 25
    rng = np.random.default_rng(11)
    etas = {e: rng.normal(0, 0.3, n) for e in model.card.random_effects.etas}
    times_doses = np.tile(np.arange(7) * 24.0, (n, 1))
    shared = BatchSchedule(times_doses, np.full((n, 7), 100.0), np.full((n, 7), np.nan), ("oral",) * 7)
    padded_t = np.concatenate([times_doses, rng.uniform(0, 100, (n, 1))], axis=1)
    padded_a = np.concatenate([np.full((n, 7), 100.0), np.zeros((n, 1))], axis=1)
    padded = BatchSchedule(padded_t, padded_a, np.full((n, 8), np.nan), ("oral",) * 8)
    times = np.linspace(0, 170, 60)
    a = simulate_many(model, shared, etas, times)
    b = simulate_many(model, padded, etas, times)
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14 * np.abs(a).max())


def _antimony(text: str, card: dict[str, object]) -> CompiledModel:
    assert antimony.loadAntimonyString(text) >= 0, antimony.getLastError()
    sbml = antimony.getSBMLString(antimony.getMainModuleName())
    return load_model(sbml, parse_json(ModelCard, json.dumps(card)))


def _card(model_id: str, **extra: object) -> dict[str, object]:
    """mapbayr 001's card (oral depot, observable ``parent`` = Cc) with another id and ETA_CL only."""
    card = json.loads((MODELS / "mapbayr_001.card.json").read_text())
    card.update(id=model_id, reference_outputs=[], random_effects={"etas": ["ETA_CL"], "omega": [[0.09]]})
    card.update(extra)
    return dict(card)


ORAL = """
model m
  compartment body = 1
  substanceOnly species A_depot in body = 0
  substanceOnly species A_central in body = 0
  absorption: A_depot -> A_central; KA * A_depot
  elimination: A_central -> ; CL / V * A_central
  KA = 1.2; V = 40; TVCL = 3; ETA_CL = 0; SEX = 0; WT = 70; ALAG = 0.75; F1 = 0.8
  CL := piecewise(TVCL * 0.8, SEX > 0.5, TVCL) * max(WT, 40)^0.75 / 70^0.75 * exp(ETA_CL)
  Cc := A_central / V
end
"""


def test_piecewise_max_power_lag_and_bioavailability() -> None:
    """A model whose maths and dosing use what the evaluator compiles (piecewise, relation, max,
    power) and per-subject lag time and bioavailability from parameters."""
    card = _card(
        "vec-lag",
        dosing=[
            {
                "route": "oral",
                "target": "A_depot",
                "amount_unit": "mg",
                "lag_time_h": "ALAG",
                "bioavailability": "F1",
            }
        ],
    )
    model = _antimony(ORAL, card)
    n = 24
    rng = np.random.default_rng(5)
    params = {
        "SEX": (np.arange(n) % 2).astype(float),
        "WT": rng.uniform(30, 110, n),
        "ETA_CL": rng.normal(0, 0.3, n),
        "ALAG": rng.uniform(0.2, 1.5, n),
        "F1": rng.uniform(0.5, 1.0, n),
    }
    regimens = [tuple(ReferenceDose(route="oral", amount=100.0, time_h=12.0 * k) for k in range(3))] * n
    times = np.array([0.5, 1.0, 2.0, 12.3, 13.0, 30.0, 40.0])
    out = simulate_many(model, schedule_for(regimens), params, times)
    for s in range(n):
        p = {k: float(v[s]) for k, v in params.items()}
        ref = simulate(bind_regimen(model, regimens[s], {}), times, parameters=p).values["parent"]
        np.testing.assert_allclose(out[s, 0], ref, rtol=1e-10, atol=1e-12 * ref.max())


def test_nonlinear_model_is_refused() -> None:
    """Michaelis-Menten elimination is not state-linear: the caller must use the per-subject path."""
    text = ORAL.replace("CL / V * A_central", "VMAX * A_central / (KM + A_central)").replace(
        "KA = 1.2;", "KA = 1.2; VMAX = 10; KM = 5;"
    )
    model = _antimony(text, _card("vec-mm"))
    schedule = schedule_for([(ReferenceDose(route="oral", amount=100.0, time_h=0.0),)])
    with pytest.raises(Unsupported):
        simulate_many(model, schedule, {}, [1.0, 2.0])


def test_unknown_parameter_is_a_clear_error() -> None:
    model = _load("mapbayr_001")
    schedule = schedule_for([(ReferenceDose(route="oral", amount=100.0, time_h=0.0),)])
    with pytest.raises(Exception, match="unknown model parameter 'NOPE'"):
        simulate_many(model, schedule, {"NOPE": 1.0}, [1.0])
