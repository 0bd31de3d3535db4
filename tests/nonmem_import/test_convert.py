"""Control streams -> SBML + card, each checked against a hand-derived closed-form solution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from interop.schema import ReferenceDose
from interop.twin import load_model
from interop.twin.binding import bind_regimen
from interop.twin.simulate import simulate
from registry.formats.nonmem import Conversion, convert
from tests.nonmem_import import streams

TIMES = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])


def predict(conv: Conversion, doses: list[ReferenceDose], covariates: dict[str, float] | None = None,
            times: np.ndarray = TIMES) -> np.ndarray:  # fmt: skip
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, tuple(doses), covariates or {})
    return simulate(twin, times).values[conv.card.observables[0].id]


def test_advan1_iv_bolus_with_covariate_block_omega_and_bounds() -> None:
    conv = convert(streams.ADVAN1_IV.encode(), source="advan1.mod")
    card = conv.card
    assert [c.name for c in card.covariates] == ["WT"]
    assert card.covariates[0].source.unit == "kg"  # WT binds to body weight
    np.testing.assert_allclose(card.random_effects.omega, [[0.09, 0.01], [0.01, 0.04]])
    err = card.residual_error[0]
    assert err.model == "additive" and err.additive_sd == pytest.approx(0.5)
    assert card.compartments is not None
    assert {(d.cmt, d.route) for d in card.compartments.doses} == {(1, "iv-bolus")}
    assert [(lv.cmt, lv.observable) for lv in card.compartments.levels] == [(1, "central")]
    assert "THETA(1) = 5 in [0, 50]" in conv.sbml  # bounds kept in the notes
    pred = predict(conv, [ReferenceDose(route="iv-bolus", amount=100, time_h=0)], {"WT": 80})
    cl, v = 5 * (80 / 70) ** 0.75, 40
    np.testing.assert_allclose(pred, 100 / v * np.exp(-cl / v * TIMES), rtol=1e-6)


def test_advan1_infusion_uses_the_iv_infusion_route() -> None:
    conv = convert(streams.ADVAN1_IV.encode())
    pred = predict(conv, [ReferenceDose(route="iv-infusion", amount=100, time_h=0, duration_h=2)], {"WT": 70})
    k, v, rate = 5 / 40, 40, 50
    during = rate / (k * v) * (1 - np.exp(-k * TIMES))
    after = rate / (k * v) * (1 - np.exp(-k * 2)) * np.exp(-k * (TIMES - 2))
    np.testing.assert_allclose(pred, np.where(TIMES <= 2, during, after), rtol=1e-6)


def test_advan2_lag_and_bioavailability_and_exponential_error() -> None:
    conv = convert(streams.ADVAN2_ORAL.encode())
    inp = conv.card.dosing[0]
    assert (inp.route, inp.target, inp.bioavailability, inp.lag_time_h) == ("oral", "A_DEPOT", "F1", "ALAG1")
    err = conv.card.residual_error[0]  # F*EXP(EPS) is proportional to first order, as in FOCE
    assert err.model == "proportional" and err.proportional_sd == pytest.approx(0.2)
    pred = predict(conv, [ReferenceDose(route="oral", amount=100, time_h=0)])
    cl, v, ka, lag, f = 4, 50, 1.5, 0.5, 0.6
    k, t = cl / v, np.clip(TIMES - lag, 0, None)
    expected = f * 100 * ka / (v * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t))
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-12)


def test_advan3_two_compartments_combined_error() -> None:
    conv = convert(streams.ADVAN3_COMBINED.encode())
    err = conv.card.residual_error[0]
    assert err.model == "combined"
    assert (err.additive_sd, err.proportional_sd) == (pytest.approx(0.1), pytest.approx(0.15))
    pred = predict(conv, [ReferenceDose(route="iv-bolus", amount=100, time_h=0)])
    cl, v1, q, v2 = 3, 20, 2, 60
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    alpha = (s + math.sqrt(s * s - 4 * k10 * k21)) / 2
    beta = (s - math.sqrt(s * s - 4 * k10 * k21)) / 2
    expected = 100 / v1 * ((alpha - k21) / (alpha - beta) * np.exp(-alpha * TIMES)
                           + (k21 - beta) / (alpha - beta) * np.exp(-beta * TIMES))  # fmt: skip
    np.testing.assert_allclose(pred, expected, rtol=1e-6)


def test_advan4_iov_with_same_becomes_occasions() -> None:
    conv = convert(streams.ADVAN4_IOV.encode())
    re = conv.card.random_effects
    assert re.etas == ("ETA_1", "ETA_2")
    assert len(re.occasions) == 1
    occ = re.occasions[0]
    assert occ.parameter == "IOV" and occ.etas == ("ETA_3", "ETA_4") and occ.variance == pytest.approx(0.05)
    assert [c.name for c in conv.card.covariates] == ["OCC"]  # OCC selects the occasion
    assert conv.card.random_effects.occasion_covariate == "OCC"
    pred = predict(conv, [ReferenceDose(route="oral", amount=100, time_h=0)], {"OCC": 1})
    cl, v2, q, v3, ka = 4, 30, 3, 80, 1
    a = np.array([[-ka, 0, 0], [ka, -(cl + q) / v2, q / v3], [0, q / v2, -q / v3]])
    expected = [(scipy.linalg.expm(a * t) @ [100, 0, 0])[1] / v2 for t in TIMES]
    np.testing.assert_allclose(pred, expected, rtol=1e-6)


def test_advan10_michaelis_menten_satisfies_the_integrated_equation() -> None:
    conv = convert(streams.ADVAN10_MM.encode())
    assert conv.card.residual_error[0].model == "additive"
    times = TIMES[:6]  # while the amount is well above the solver's tolerance
    pred = predict(conv, [ReferenceDose(route="iv-bolus", amount=100, time_h=0)], times=times)
    vm, km, v = 20, 5, 10  # dA/dt = -VM*A/(KM+A) in amounts: t = (A0-A)/VM + KM/VM*ln(A0/A)
    amount = pred * v
    t = (100 - amount) / vm + km / vm * np.log(100 / amount)
    np.testing.assert_allclose(t, times, rtol=1e-5)


def test_advan12_three_compartments_against_the_matrix_exponential() -> None:
    conv = convert(streams.ADVAN12_THREE.encode())
    pred = predict(conv, [ReferenceDose(route="oral", amount=100, time_h=0)])
    cl, v2, q3, v3, q4, v4, ka = 5, 25, 4, 50, 1, 100, 1.2
    a = np.array([
        [-ka, 0, 0, 0],
        [ka, -(cl + q3 + q4) / v2, q3 / v3, q4 / v4],
        [0, q3 / v2, -q3 / v3, 0],
        [0, q4 / v2, 0, -q4 / v4],
    ])  # fmt: skip
    expected = [(scipy.linalg.expm(a * t) @ [100, 0, 0, 0])[1] / v2 for t in TIMES]
    np.testing.assert_allclose(pred, expected, rtol=1e-6)


def test_advan13_des_if_else_modelled_duration_and_log_error() -> None:
    conv = convert(streams.ADVAN13_DES.encode())
    card = conv.card
    assert card.residual_error[0].model == "exponential"
    assert card.residual_error[0].proportional_sd == pytest.approx(0.1)
    assert card.observables[0].sbml == "PRED_CENTRAL"  # the level, not its log
    infusion = card.dosing_for("iv-infusion")[0]
    assert infusion.duration_parameter == "D1"
    assert card.compartments is not None
    assert (1, "iv-infusion", -2) in {(d.cmt, d.route, d.rate_code) for d in card.compartments.doses}
    for sex, factor in ((0, 1.0), (1, 0.8)):
        pred = predict(conv, [ReferenceDose(route="iv-infusion", amount=10, time_h=0)], {"SEX": sex})
        k, v, dur = 2 * factor / 10, 10, 2.0
        rate = 10 / dur
        during = rate / (k * v) * (1 - np.exp(-k * TIMES))
        after = rate / (k * v) * (1 - np.exp(-k * dur)) * np.exp(-k * (TIMES - dur))
        np.testing.assert_allclose(pred, np.where(TIMES <= dur, during, after), rtol=1e-6)


def test_registry_plugin_detects_control_streams_only() -> None:
    from registry.formats import detect_format

    assert detect_format(streams.ADVAN1_IV.encode()) == "nonmem"
    assert detect_format(b"model m\n  x = 1\nend\n") == "antimony"
