"""PharmML models of the pharmml-example repository checked against their NM-TRAN twins.

The repository's ``mdl-to-pharmml-to-nmtran`` folder holds each warfarin use case as PharmML and
as the NM-TRAN control stream generated from the same MDL. Each test here solves the control
stream's own equations (``$PRED`` closed form, or ``$DES`` with scipy's ``solve_ivp``) at its
``$THETA`` initial estimates, ETAs 0, written out by hand from the ``.ctl`` (quoted in comments),
and compares the twin built from the converted PharmML. The files have no licence and are not in the
project's or CI's test data: the tests run when INTEROP_PHARMML_CORPUS names a checkout, and skip
otherwise (``tests.data.require_corpus``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from interop.schema import ReferenceDose
from interop.twin import CovariateSeries, bind_regimen, load_model, simulate
from registry.formats.pharmml import convert
from tests.data import PHARMML_NMTRAN_TWINS, require_corpus

TIMES = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0, 36.0, 48.0])
RTOL = 1e-5
# $THETA initial estimates shared by the warfarin use cases
POP_CL, POP_V, POP_KA, POP_TLAG = 0.1, 8.0, 0.362, 1.0
BETA_CL_WT, BETA_V_WT = 0.75, 1.0  # FIX
WT = 82.0
LOGTWT = math.log(WT / 70)
CL = math.exp(math.log(POP_CL) + BETA_CL_WT * LOGTWT)  # MU_1 = LOG(POP_CL) + BETA_CL_WT * LOGTWT
V = math.exp(math.log(POP_V) + BETA_V_WT * LOGTWT)  # MU_2 = LOG(POP_V) + BETA_V_WT * LOGTWT


def _twin(name: str, doses: list[ReferenceDose], covariates: dict[str, float]) -> np.ndarray:
    path = PHARMML_NMTRAN_TWINS / f"{name}.xml"
    require_corpus(path)
    conv = convert(path.read_bytes(), source=str(path))
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, tuple(doses), covariates)
    (obs,) = conv.card.observables
    return simulate(twin, TIMES).values[obs.id]


def _close(pred: np.ndarray, expected: np.ndarray) -> None:
    floor = 1e-6 * float(np.max(np.abs(expected)))  # the solvers' absolute error near 0 (at the lag)
    err = np.abs(pred - expected) / np.maximum(np.abs(expected), floor)
    assert float(np.max(err)) <= RTOL, f"max relative error {np.max(err):.3g}\n{pred}\n{expected}"


def _ode(rhs, y0: list[float], breaks: list[float]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Integrate ``rhs`` piecewise between ``breaks`` (lag times, infusion ends) to TIMES."""
    out = np.empty((len(TIMES), len(y0)))
    edges = sorted({0.0, *breaks, float(TIMES[-1])})
    y = np.array(y0, dtype=float)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        inside = (TIMES > a) & (TIMES <= b)
        sol = solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-10, atol=1e-12, t_eval=TIMES[inside])
        out[inside] = sol.y.T
        y = solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-10, atol=1e-12).y[:, -1]
    return out


def test_usecase2_closed_form_with_the_dataset_dose_d() -> None:
    # $PRED: IF(AMT.GT.0) D = AMT; K = CL/V;
    # CC = D/V*KA/(KA-K)*(EXP(-K*(TIME-TLAG)) - EXP(-KA*(TIME-TLAG))); IF (TIME.LT.TLAG) CC = 0
    dose = 100.0
    k = CL / V
    t = TIMES - POP_TLAG
    expected = dose / V * POP_KA / (POP_KA - k) * (np.exp(-k * t) - np.exp(-POP_KA * t))
    expected[TIMES < POP_TLAG] = 0.0
    pred = _twin("UseCase2", [ReferenceDose(route="oral", amount=dose, time_h=0)], {"WT": WT})
    _close(pred, expected)
    # $PRED: W = RUV_ADD + RUV_PROP*IPRED (SDs add), $THETA 0.1 and 0.1, $SIGMA 1 FIX
    path = PHARMML_NMTRAN_TWINS / "UseCase2.xml"
    (err,) = convert(path.read_bytes(), source=str(path)).card.residual_error
    assert (err.model, err.additive_sd, err.proportional_sd) == ("combined-sd", 0.1, 0.1)


def test_usecase4_oral_bioavailability_and_dose_time_dt() -> None:
    # $PK: IF(AMT.GT.0) NM_DT = TIME; FORAL = 1/(1 + EXP(-LOG(POP_FORAL/(1-POP_FORAL)))) = POP_FORAL
    # $DES: RATEIN = GUT*KA when T-NM_DT >= TLAG; DADT(1) = -RATEIN; DADT(2) = RATEIN*FORAL - CL*A(2)/V
    foral = 0.7
    dose = 100.0

    def rhs(t: float, y: np.ndarray) -> list[float]:
        ratein = y[0] * POP_KA if t >= POP_TLAG else 0.0
        return [-ratein, ratein * foral - CL * y[1] / V]

    expected = _ode(rhs, [dose, 0.0], [POP_TLAG])[:, 1] / V
    pred = _twin("UseCase4", [ReferenceDose(route="oral", amount=dose, time_h=0)], {"logtWT": LOGTWT})
    _close(pred, expected)


def test_usecase4_infusion_into_central() -> None:
    # CMT=2 with RATE: zero-order input into CENTRAL (no GUT, so no absorption)
    amount, duration = 100.0, 2.0

    def rhs(t: float, y: np.ndarray) -> list[float]:
        return [(amount / duration if t < duration else 0.0) - CL * y[0] / V]

    expected = _ode(rhs, [0.0], [duration])[:, 0] / V
    doses = [ReferenceDose(route="iv-infusion", amount=amount, time_h=0, duration_h=duration)]
    _close(_twin("UseCase4", doses, {"logtWT": LOGTWT}), expected)


def test_usecase7_alag_and_f1_on_the_depot() -> None:
    # $PK: ALAG1 = TLAG; F1 = POP_F1 (1.0 FIX); $DES: DADT(1) = -KA*A(1); DADT(2) = KA*A(1) - CL/V*A(2)
    # the dose enters A(1) at TLAG, so the closed form of the one-compartment oral model applies
    dose = 100.0
    k = CL / V
    t = np.clip(TIMES - POP_TLAG, 0, None)
    expected = dose / V * POP_KA / (POP_KA - k) * (np.exp(-k * t) - np.exp(-POP_KA * t))
    pred = _twin("UseCase7", [ReferenceDose(route="oral", amount=dose, time_h=0)], {"logtWT": LOGTWT})
    _close(pred, expected)


def test_usecase9_bolus_and_infusion() -> None:
    # $DES: DADT(1) = -CL*A(1)/V; CC = A(1)/V
    k = CL / V
    _close(
        _twin("UseCase9", [ReferenceDose(route="iv-bolus", amount=50.0, time_h=0)], {"logtWT": LOGTWT}),
        50.0 / V * np.exp(-k * TIMES),
    )
    amount, duration = 100.0, 4.0
    rate = amount / duration
    during = rate / CL * (1 - np.exp(-k * TIMES))
    after = rate / CL * (1 - np.exp(-k * duration)) * np.exp(-k * (TIMES - duration))
    doses = [ReferenceDose(route="iv-infusion", amount=amount, time_h=0, duration_h=duration)]
    _close(_twin("UseCase9", doses, {"logtWT": LOGTWT}), np.where(TIMES <= duration, during, after))


@pytest.mark.parametrize("sexf", [0.0, 1.0])
def test_usecase5_covariates_age_weight_and_sex(sexf: float) -> None:
    # MU_1 = LOG(POP_CL) + BETA_CL_WT*LOGTWT + POP_FCL_FEM*SEXF + BETA_CL_AGE*TAGE; TAGE = AGE-40
    # THETA: BETA_CL_AGE 0.001, POP_FCL_FEM 1.0; $DES as UseCase4 without FORAL or dose time
    age = 55.0
    cl = math.exp(math.log(POP_CL) + BETA_CL_WT * LOGTWT + 1.0 * sexf + 0.001 * (age - 40))
    dose = 100.0

    def rhs(t: float, y: np.ndarray) -> list[float]:
        ratein = y[0] * POP_KA if t >= POP_TLAG else 0.0
        return [-ratein, ratein - cl * y[1] / V]

    expected = _ode(rhs, [dose, 0.0], [POP_TLAG])[:, 1] / V
    pred = _twin(
        "UseCase5", [ReferenceDose(route="oral", amount=dose, time_h=0)], {"WT": WT, "AGE": age, "SEXF": sexf}
    )
    _close(pred, expected)


def test_usecase8_inter_occasion_variability_follows_the_occasion_column() -> None:
    # $ABBR REPLACE ETA(OCC_BOV_CL)=ETA(5,7), ETA(OCC_BOV_V)=ETA(6,8): one effect per occasion;
    # CL = EXP(MU_1 + ETA(1) + ETA(OCC_BOV_CL)), V = EXP(MU_2 + ETA(2) + ETA(OCC_BOV_V)); $DES as
    # UseCase5 (absorption from T >= TLAG). The PharmML maps the dataset's OCC column to the
    # occasion level: OCC switches the occasions (here at the second dose, 24 h), as in NONMEM.
    path = PHARMML_NMTRAN_TWINS / "UseCase8.xml"
    require_corpus(path)
    conv = convert(path.read_bytes(), source=str(path))
    occasions = {o.parameter: o for o in conv.card.random_effects.occasions}
    assert set(occasions) == {"eta_BOV_CL", "eta_BOV_V"}
    assert occasions["eta_BOV_CL"].variance == pytest.approx(0.1)  # $OMEGA BLOCK(2) (0.1) ;BOV_CL
    assert any("occasion effects are independent" in w for w in conv.warnings)  # the 0.01 covariance
    assert conv.card.random_effects.occasion_covariate == "OCC"
    ka = 2.0  # this run's $THETA: ( 0.001 , 2.0 ) ;POP_KA
    iov = {"CL": (0.2, -0.3), "V": (0.0, 0.1)}
    etas = {f"eta_BOV_{p}_occ{k + 1}": v for p, vals in iov.items() for k, v in enumerate(vals)}
    dose = 100.0
    doses = tuple(ReferenceDose(route="oral", amount=dose, time_h=t) for t in (0.0, 24.0))
    twin = bind_regimen(load_model(conv.sbml, conv.card), doses, {"WT": WT})
    occ = CovariateSeries("OCC", (0.0, 24.0, 48.0), (1.0, 1.0, 2.0))  # records at 0, 24 (OCC 1), 48 (OCC 2)
    pred = simulate(
        dataclasses.replace(twin, covariates={**twin.covariates, "OCC": occ}), TIMES, etas
    ).values["Y"]
    unswitched = simulate(twin, TIMES, etas).values["Y"]  # OCC 1 throughout: the SBML's default
    assert unswitched[-1] != pytest.approx(pred[-1], rel=1e-3)

    def params(t: float) -> tuple[float, float]:
        k = 0 if t < 24 else 1
        return CL * math.exp(iov["CL"][k]), V * math.exp(iov["V"][k])

    def rhs(t: float, y: np.ndarray) -> list[float]:
        cl, v = params(t)
        ratein = y[0] * ka if t >= POP_TLAG else 0.0
        return [-ratein, ratein - cl * y[1] / v]

    # the second dose enters GUT at 24 h: integrate to 24 h, add it, integrate on
    first = TIMES <= 24
    before = _ode(rhs, [dose, 0.0], [POP_TLAG, 24.0])
    at24 = _ode_at(rhs, [dose, 0.0], [POP_TLAG, 24.0])
    later = TIMES[~first]
    sol = solve_ivp(rhs, (24.0, float(later[-1])), [at24[0] + dose, at24[1]], method="LSODA",
                    rtol=1e-10, atol=1e-12, t_eval=later)  # fmt: skip
    conc = np.concatenate([before[first, 1], sol.y[1]])
    # a sample at 24 h is taken before that dose, in occasion 1 (as the twin and NONMEM order it)
    expected = conc / np.where(first, params(0.0)[1], params(24.0)[1])
    _close(pred, expected)


def _ode_at(rhs, y0: list[float], breaks: list[float]) -> list[float]:  # type: ignore[no-untyped-def]
    """The state at the last of ``breaks``, integrated piecewise from 0."""
    y, a = list(y0), 0.0
    for b in breaks:
        y = list(solve_ivp(rhs, (a, b), y, method="LSODA", rtol=1e-10, atol=1e-12).y[:, -1])
        a = b
    return y


def _oral_closed_form(dose: float, f: float, lag: float) -> np.ndarray:
    """One-compartment first-order absorption, the dose (times F) entering the depot at ``lag``."""
    k = CL / V
    t = np.clip(TIMES - lag, 0, None)
    return f * dose / V * POP_KA / (POP_KA - k) * (np.exp(-k * t) - np.exp(-POP_KA * t))


@pytest.mark.parametrize(
    ("name", "lag"),
    [
        ("UseCase1", POP_TLAG),  # $DES: RATEIN = GUT*KA when T >= TLAG (a dose at 0: the lag)
        ("UseCase6", POP_TLAG),  # the same model, written with another covariate set-up
        ("UseCase17", 0.0),  # $DES: RATEIN = GUT*KA (the data's SS records are the regimen's concern)
        ("UseCase17_1", 0.0),  # the same with ADDL
    ],
)
def test_oral_use_cases_against_the_closed_form_of_their_des(name: str, lag: float) -> None:
    dose = 100.0
    pred = _twin(name, [ReferenceDose(route="oral", amount=dose, time_h=0)], {"logtWT": LOGTWT})
    _close(pred, _oral_closed_form(dose, 1.0, lag))


def test_usecase4_1_alag_and_logit_bioavailability_on_the_depot() -> None:
    # $PK: ALAG1 = TLAG; F1 = FORAL = 1/(1+EXP(-LOG(POP_FORAL/(1-POP_FORAL)))) = 0.7
    dose = 100.0
    pred = _twin("UseCase4_1", [ReferenceDose(route="oral", amount=dose, time_h=0)], {"logtWT": LOGTWT})
    _close(pred, _oral_closed_form(dose, 0.7, POP_TLAG))


def test_usecase3_pk_and_the_turnover_of_prothrombin_complex_activity() -> None:
    # $DES: RATEIN = KA*GUT when T >= TLAG; DADT(3) = RPCA*PD - KPCA*PCA with KPCA = LOG(2)/TEQ,
    # RPCA = PCA0*KPCA, PD = 1 - EMAX*CC/(C50+CC), A_0(3) = PCA0; $THETA PCA0 96.7, C50 1.2, TEQ 12.9,
    # EMAX 1.0; CL and V scaled by LOGTWT = LOG(WT/70) as in the other use cases
    pca0, c50, teq, emax = 96.7, 1.2, 12.9, 1.0
    kpca = math.log(2) / teq
    dose = 100.0

    def rhs(t: float, y: np.ndarray) -> list[float]:
        ratein = POP_KA * y[0] if t >= POP_TLAG else 0.0
        cc = y[1] / V
        return [-ratein, ratein - CL * y[1] / V, pca0 * kpca * (1 - emax * cc / (c50 + cc)) - kpca * y[2]]

    expected = _ode(rhs, [dose, 0.0, pca0], [POP_TLAG])
    path = PHARMML_NMTRAN_TWINS / "UseCase3.xml"
    require_corpus(path)
    conv = convert(path.read_bytes(), source=str(path))
    doses = (ReferenceDose(route="oral", amount=dose, time_h=0),)
    twin = bind_regimen(load_model(conv.sbml, conv.card), doses, {"WT": WT})
    pred = simulate(twin, TIMES).values
    _close(pred["CP_obs"], expected[:, 1] / V)  # DVID 1: IPRED = CC
    _close(pred["PCA_obs"], expected[:, 2])  # DVID 2: IPRED = PCA
