"""ADVAN5/7/8, M3 censoring (F_FLAG), solver-only verbatim code: own streams against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from interop.schema import ReferenceDose
from interop.twin import load_model
from interop.twin.binding import bind_regimen
from interop.twin.simulate import simulate
from registry.formats.nonmem import NonmemError, convert
from tests.nonmem_import import streams

TIMES = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])


def _levels(sbml: str, card, dose: ReferenceDose, covariates: dict[str, float] | None = None):  # type: ignore[no-untyped-def]
    twin = bind_regimen(load_model(sbml, card), (dose,), covariates or {})
    return simulate(twin, TIMES).values


def test_advan5_parent_metabolite_against_the_matrix_exponential() -> None:
    conv = convert(streams.ADVAN5_METABOLITE.encode(), source="advan5.mod")
    card = conv.card
    assert card.compartments is not None
    assert {(d.cmt, d.route) for d in card.compartments.doses} == {(1, "iv-bolus")}  # observed: not a depot
    assert sorted(lv.cmt or 0 for lv in card.compartments.levels) == [1, 2]
    errors = {e.observable: e for e in card.residual_error}  # W per CMT, W.EQ.0 guard ignored
    by_cmt = {lv.cmt: lv.observable for lv in card.compartments.levels}
    assert errors[by_cmt[1]].additive_sd == pytest.approx(0.5)
    assert errors[by_cmt[2]].additive_sd == pytest.approx(0.2)
    values = _levels(conv.sbml, card, ReferenceDose(route="iv-bolus", amount=100, time_h=0))
    k10, k12, k13, k31, k20 = 0.2, 0.1, 0.3, 0.15, 0.25
    a = np.array([[-(k10 + k12 + k13), 0, k31], [k12, -k20, 0], [k13, 0, -k31]])
    amounts = np.array([scipy.linalg.expm(a * t) @ [100, 0, 0] for t in TIMES])
    np.testing.assert_allclose(values[by_cmt[1]], amounts[:, 0] / 20, rtol=1e-6)
    np.testing.assert_allclose(values[by_cmt[2]], amounts[:, 1] / 30, rtol=1e-6)


@pytest.mark.parametrize("advan", ["ADVAN7", "ADVAN8"])
def test_advan7_and_8_convert_like_their_siblings(advan: str) -> None:
    sibling = streams.ADVAN5_METABOLITE if advan == "ADVAN7" else streams.ADVAN13_DES
    conv = convert(sibling.replace("ADVAN5" if advan == "ADVAN7" else "ADVAN13", advan).encode())
    ref = convert(sibling.encode())
    route = conv.card.dosing[0].route
    dose = ReferenceDose(route=route, amount=10, time_h=0, duration_h=None)
    covariates = {c.name: 0.0 for c in conv.card.covariates}
    ours, theirs = (
        _levels(conv.sbml, conv.card, dose, covariates),
        _levels(ref.sbml, ref.card, dose, covariates),
    )
    for key, value in theirs.items():
        np.testing.assert_allclose(ours[key], value, rtol=1e-9)


def test_m3_censoring_keeps_the_continuous_branch() -> None:
    conv = convert(streams.M3_BLQ.encode())
    err = conv.card.residual_error[0]
    assert (err.model, err.additive_sd) == ("additive", pytest.approx(0.3))
    assert [c.name for c in conv.card.covariates] == []  # BLQ only chose the likelihood branch
    assert any("F_FLAG" in w and "BLQ" in w for w in conv.warnings)
    values = _levels(conv.sbml, conv.card, ReferenceDose(route="iv-bolus", amount=100, time_h=0))
    np.testing.assert_allclose(
        values[conv.card.observables[0].id], 100 / 40 * np.exp(-4 / 40 * TIMES), rtol=1e-6
    )


def test_m3_censoring_on_dv_on_the_log_scale() -> None:
    conv = convert(streams.M3_ON_DV.encode())
    err = conv.card.residual_error[0]
    assert (err.model, err.proportional_sd) == ("exponential", pytest.approx(0.2))
    values = _levels(conv.sbml, conv.card, ReferenceDose(route="iv-bolus", amount=100, time_h=0))
    np.testing.assert_allclose(
        values[conv.card.observables[0].id], 100 / 40 * np.exp(-4 / 40 * TIMES), rtol=1e-6
    )


def test_solver_settings_in_verbatim_code_are_ignored() -> None:
    plain, tuned = convert(streams.ADVAN1_IV.encode()), convert(streams.SOLVER_VERBATIM.encode())
    assert tuned.sbml == plain.sbml


@pytest.mark.parametrize(
    ("text", "construct", "line", "words"),
    [
        (streams.ALL_LIKELIHOOD, "F_FLAG", 16, "likelihood"),
        (streams.LIKE_OPTION, "$ESTIMATION LIKE", 16, "likelihood"),
        (streams.OTHER_VERBATIM, "verbatim code", 6, "Fortran"),
        (streams.DVID_TYPES, "Y", 10, "DVID"),
    ],
)
def test_likelihoods_and_fortran_are_refused(text: str, construct: str, line: int, words: str) -> None:
    with pytest.raises(NonmemError) as exc:
        convert(text.encode(), source="run.mod")
    problem = next(p for p in exc.value.problems if p.construct == construct)
    assert problem.line == line and words in problem.message


def test_an_if_else_block_pharmpy_reorders_keeps_the_code_s_meaning() -> None:
    conv = convert(streams.MERGED_IF_BLOCK.encode())
    err = conv.card.residual_error[0]
    assert (err.model, err.additive_sd) == ("additive", pytest.approx(0.3))  # THETA(3): CMT 1


def test_initial_amount_a_0_starts_the_compartment() -> None:
    conv = convert(streams.INITIAL_AMOUNT.encode())
    values = _levels(conv.sbml, conv.card, ReferenceDose(route="iv-bolus", amount=100, time_h=0))
    base, kout = 10, 0.3  # RESP(t) = BASE + BASE exp(-KOUT t) from A_0(2) = 2 BASE
    np.testing.assert_allclose(
        values[conv.card.observables[0].id], base + base * np.exp(-kout * TIMES), rtol=1e-6
    )


def test_compartments_named_by_numbers_take_doses() -> None:
    numbered = streams.ADVAN5_METABOLITE.replace("COMP=(CENTRAL, DEFDOSE, DEFOBS)", "COMP=(1 DEFDOSE DEFOBS)")
    numbered = numbered.replace("COMP=(METAB)", "COMP=(2)").replace("COMP=(PERIPH)", "COMP=(3)")
    conv, ref = convert(numbered.encode()), convert(streams.ADVAN5_METABOLITE.encode())
    dose = ReferenceDose(route="iv-bolus", amount=100, time_h=0)
    ours, theirs = _levels(conv.sbml, conv.card, dose), _levels(ref.sbml, ref.card, dose)
    np.testing.assert_allclose(
        sorted(ours.values(), key=lambda v: v[0]), sorted(theirs.values(), key=lambda v: v[0]), rtol=1e-9
    )
