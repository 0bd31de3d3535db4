"""Dose recommendation safety, checked against closed forms of the one-compartment oral model.

Model 001 (mapbayr): CL = 4 exp(ETA_CL) L/h, V = 70 exp(ETA_V) L, ka = 1 exp(ETA_KA) /h, F = 1.
One oral dose D at t_i gives C(t) = D ka / (V (ka - k)) (exp(-k s) - exp(-ka s)), s = t - t_i > 0,
k = CL/V, and its integral from 0 to s is D/CL (1 - (ka exp(-k s) - k exp(-ka s)) / (ka - k)).
Doses superpose, so every exposure below is a sum over the history and the proposed doses.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle

from interop.schema import ReferenceDose
from interop.twin import CompiledModel, LevelObservation, MapResult, Twin, bind_regimen, estimate_map
from interop.twin.display import format_number, format_quantity
from interop.twin.fhir_export import recommendation_bundle
from interop.twin.forecast import forecast
from interop.twin.recommend import RegimenOptions, Target, evaluate_regimen, recommend_dose

HISTORY = (0.0, 24.0, 48.0)  # 10 g oral doses


@pytest.fixture(scope="module")
def twin(mapbayr: Callable[[str], CompiledModel]) -> Twin:
    t = bind_regimen(
        mapbayr("001"),
        tuple(ReferenceDose(route="oral", amount=10000, time_h=h) for h in HISTORY),
        {},
        patient_id="synthetic-safety",
    )
    levels = [(2.0, 95.0), (23.0, 30.0), (50.0, 120.0), (71.0, 41.0)]
    obs = tuple(LevelObservation(tt, "parent", v, False, None, f"m{i}") for i, (tt, v) in enumerate(levels))
    return dataclasses.replace(t, observations=obs)


@pytest.fixture(scope="module")
def fit(twin: Twin) -> MapResult:
    return estimate_map(twin)


def _pk(fit: MapResult) -> tuple[float, float, float]:
    p = fit.individual_parameters
    return p["CL"], p["V"], p["KA"]


def conc(fit: MapResult, doses: Sequence[tuple[float, float]], t: float) -> float:
    cl, v, ka = _pk(fit)
    k = cl / v
    total = 0.0
    for ti, d in doses:
        s = t - ti
        if s > 0:
            total += d * ka / (v * (ka - k)) * (math.exp(-k * s) - math.exp(-ka * s))
    return total


def auc(fit: MapResult, doses: Sequence[tuple[float, float]], a: float, b: float) -> float:
    cl, v, ka = _pk(fit)
    k = cl / v

    def integral(s: float) -> float:
        if s <= 0:
            return 0.0
        return 1 / cl * (1 - (ka * math.exp(-k * s) - k * math.exp(-ka * s)) / (ka - k))

    return sum(d * (integral(b - ti) - integral(a - ti)) for ti, d in doses)


def regimen(
    start: float, tau: float, n: int, amount: float, loading: float | None = None
) -> list[tuple[float, float]]:
    doses = [(h, 10000.0) for h in HISTORY if h < start]
    return doses + [(start + i * tau, loading if i == 0 and loading else amount) for i in range(n)]


def test_auc_target_is_auc24_not_the_interval_auc(twin: Twin, fit: MapResult) -> None:
    """The vancomycin failure: 1000 mg q12h is an AUC24 twice the interval AUC."""
    cl, _, _ = _pk(fit)
    amounts = (1000, 1500, 2000, 4000)
    options = RegimenOptions(amounts=amounts, intervals_h=(12, 24, 48), n_doses=20, start_h=96.0)
    target = Target("auc", 400, 600)
    rec = recommend_dose(twin, fit, target, options, n_draws=50)
    assert "AUC24 at steady state" in target.label()
    for c in rec.candidates:
        doses = regimen(96.0, c.interval_h, 20, c.amount)
        t0 = 96.0 + 19 * c.interval_h
        hand = auc(fit, doses, t0, t0 + c.interval_h) * 24.0 / c.interval_h
        assert c.exposure == pytest.approx(hand, rel=2e-4)
        assert c.summary["auc24"] == pytest.approx(hand, rel=2e-4)
        assert c.exposure == pytest.approx(c.amount / cl * 24 / c.interval_h, rel=1e-3)  # steady state
        assert c.summary["trough"] == pytest.approx(conc(fit, doses, t0 + c.interval_h), rel=1e-6)
    assert rec.best.in_range and 400 <= rec.best.exposure <= 600
    by = {(c.amount, c.interval_h): c for c in rec.candidates}
    assert by[(1000, 12)].exposure == pytest.approx(2 * by[(1000, 24)].exposure, rel=1e-3)


def test_auc24_over_a_stated_window_with_a_loading_dose(twin: Twin, fit: MapResult) -> None:
    options = RegimenOptions(
        amounts=(2000,), intervals_h=(12,), n_doses=6, start_h=80.0, loading_amounts=(5000,)
    )
    target = Target("auc", 100, 2000, window_start_h=0.0)
    rec = recommend_dose(twin, fit, target, options, n_draws=30)
    doses = regimen(80.0, 12.0, 6, 2000, loading=5000)
    assert rec.best.exposure == pytest.approx(auc(fit, doses, 80.0, 104.0), rel=2e-4)
    proposed = [d for d in rec.twin.doses if d.dose_id.startswith("proposed")]
    assert [d.amount for d in proposed] == [5000, 2000, 2000, 2000, 2000, 2000]
    assert proposed[0].time_h == 80.0  # the user's first dose time
    fc = forecast(rec.twin, fit, np.linspace(0, 160, 50), n_draws=30)
    request = Bundle.model_validate(recommendation_bundle(rec, fc, step=10).model_dump(mode="json")).entry[0]
    dosage = request.resource.dosageInstruction
    assert [d.sequence for d in dosage] == [1, 2]
    assert dosage[0].doseAndRate[0].doseQuantity.value == 5000 and dosage[0].timing.repeat.count == 1
    assert dosage[1].doseAndRate[0].doseQuantity.value == 2000 and dosage[1].timing.repeat.count == 5


def test_outside_never_outranks_inside(twin: Twin, fit: MapResult) -> None:
    """A wide posterior can give an out-of-range regimen a higher PTA; it still ranks after."""
    options = RegimenOptions(amounts=tuple(range(500, 8001, 500)), intervals_h=(12, 24), n_doses=8)
    target = Target("trough", 15, 20)
    rec = recommend_dose(twin, fit, target, options, n_draws=100)
    flags = [c.in_range for c in rec.candidates]
    assert any(flags) and not all(flags)
    assert flags == sorted(flags, reverse=True)  # every in-range candidate before every other
    assert rec.best.in_range and 15 <= rec.best.exposure <= 20
    for c in rec.candidates:
        hand = conc(fit, regimen(c.start_h, c.interval_h, 8, c.amount), c.start_h + 8 * c.interval_h)
        assert c.exposure == pytest.approx(hand, rel=1e-6)
    impossible = recommend_dose(
        twin, fit, Target("trough", 15, 20), RegimenOptions((100,), (24,)), n_draws=20
    )
    assert not impossible.best.in_range
    assert any("no regimen in the allowed grid" in n for n in impossible.notes)


def test_hold_until_the_level_falls_below_the_ceiling(twin: Twin, fit: MapResult) -> None:
    start = 50.0  # two hours after the last 10 g dose: far above a 20 mg/L trough ceiling
    level = conc(fit, regimen(start, 24, 0, 0), start)
    assert level > 20
    options = RegimenOptions(amounts=(1000,), intervals_h=(24,), n_doses=4, start_h=start)
    warned = recommend_dose(twin, fit, Target("trough", 5, 20), options, n_draws=20)
    assert warned.start_h == start and any(n.startswith("warning") for n in warned.notes)
    held = recommend_dose(
        twin, fit, Target("trough", 5, 20), dataclasses.replace(options, hold=True), n_draws=20
    )
    history = [(h, 10000.0) for h in HISTORY]
    t_fall = next(t for t in np.arange(start, start + 400, 0.01) if conc(fit, history, t) <= 20)
    assert held.start_h == math.ceil(t_fall * 2) / 2  # the first half hour at or below the ceiling
    assert conc(fit, history, held.start_h) <= 20 < conc(fit, history, held.start_h - 0.5)
    assert any(n.startswith("hold:") and "20 mg/L" in n for n in held.notes)


def test_several_targets_pta_is_all_at_once(twin: Twin, fit: MapResult) -> None:
    peak_floor, trough_ceiling = Target("peak", 60, math.inf), Target("trough", 0, 10)
    options = RegimenOptions(amounts=(4000, 8000, 12000), intervals_h=(24, 36, 48), n_doses=6, start_h=120.0)
    rec = recommend_dose(twin, fit, [peak_floor, trough_ceiling], options, n_draws=150)
    for c in rec.candidates:
        doses = regimen(120.0, c.interval_h, 6, c.amount)
        t0 = 120.0 + 5 * c.interval_h
        fine = np.linspace(t0, t0 + c.interval_h, 4001)
        peak = max(conc(fit, doses, float(t)) for t in fine)
        trough = conc(fit, doses, t0 + c.interval_h)
        assert c.exposures[0].value == pytest.approx(peak, rel=1e-3)
        assert c.exposures[1].value == pytest.approx(trough, rel=1e-6)
        assert c.in_range == (peak >= 60 and trough <= 10)
        assert c.probability <= min(e.probability for e in c.exposures) + 1e-12
    assert rec.best.in_range
    line = rec.summary_line()
    assert "predicted peak" in line and "predicted trough" in line and "mg/L" in line and "e+" not in line


def test_planned_regimen_forecast(twin: Twin, fit: MapResult) -> None:
    plan = evaluate_regimen(
        twin, fit, [Target("trough", 15, 20)], amount=3000, interval_h=12, n_doses=5, start_h=72.0, n_draws=20
    )
    hand = conc(fit, regimen(72.0, 12, 5, 3000), 72.0 + 5 * 12)
    assert plan.best.exposure == pytest.approx(hand, rel=1e-6)
    assert plan.best.in_range == (15 <= hand <= 20) and plan.start_h == 72.0


def test_clinician_number_format() -> None:
    assert format_number(1087.6) == "1088"
    assert format_number(438.2) == "438"
    assert format_number(19.14) == "19.1"
    assert format_number(0.045678) == "0.0457"
    assert format_number(2.0) == "2"
    assert format_quantity(1.09e3, "mg·h/L") == "1090 mg·h/L"
    assert format_quantity(95, "%") == "95%"


def test_continued_therapy_repeats_the_last_dose_and_interval(twin: Twin, fit: MapResult) -> None:
    from interop.twin.recommend import continue_regimen

    extended, said = continue_regimen(twin, 130.0)
    added = [d for d in extended.doses if d.time_h > 48.0]
    assert [d.time_h for d in added] == [72.0, 96.0, 120.0] and all(d.amount == 10000 for d in added)
    assert "10000 mg every 24 h" in said
    t = 125.0
    got = simulate_at(extended, fit, t)
    assert got == pytest.approx(conc(fit, [(h, 10000.0) for h in (0, 24, 48, 72, 96, 120)], t), rel=1e-6)


def simulate_at(twin: Twin, fit: MapResult, t: float) -> float:
    from interop.twin import simulate

    return float(simulate(twin, [t], fit.etas).values["parent"][0])
