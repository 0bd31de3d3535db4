"""DDMoRe Model Repository PK models checked against their NM-TRAN twins and NONMEM's output:
sibrotuzumab (195), meropenem (213), tamoxifen (212), and rifampicin (280, which has no PharmML).

Each folder of the repository (``tests.data.DDMORE_CORPUS``, one per DDMODEL number) holds the PharmML
with the NM-TRAN control stream generated from the same MDL (echoed in a NONMEM ``.lst``, or as a
``.mod``/``.ctl``). Each test here solves the control stream's own equations (written out below,
quoted in comments) with scipy's ``solve_ivp`` (``tests.pharmml.ddmore``), at the ``$THETA`` initial
estimates read from the twin file, and compares the twin built from the converted PharmML: typical
values (ETAs 0) and a non-zero ETA vector, one dose and several doses, on each route the model has;
relative tolerance 1e-5. Where NONMEM's own output holds predictions (the standard output's
PRED/IPRED at the final estimates and each subject's ETAs, or the sdtab/patab tables), the
independent solution is also compared with NONMEM's numbers to their printed precision: that checks
the solution, so the twin's agreement with it means agreement with NONMEM. The PK/PD and systems
models are in ``test_ddmore_pkpd_twins``.

The corpus has no licence: neither the project nor CI holds it, and the tests skip unless
INTEROP_DDMORE_CORPUS names a checkout (``tests.data.require_corpus``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from interop.schema import ReferenceDose
from interop.twin import bind_regimen, load_model, simulate
from registry.formats.pharmml import convert
from tests.data import DDMORE_CORPUS
from tests.pharmml.ddmore import (
    NONMEM_DIGITS,
    TIMES,
    Dose,
    close,
    control_stream,
    dataset,
    doses_into,
    nonmem_table,
    printed_unit,
    so_table,
    solve,
    subjects_with_predictions,
    thetas,
    twin_prediction,
)

# --- DDMODEL00000195: sibrotuzumab, two compartments with parallel linear and Michaelis-Menten
# elimination; NM-TRAN in the .lst of its NONMEM simulation (no predictions in NONMEM's output) ----

SIBRO = DDMORE_CORPUS / "195"


def sibrotuzumab(
    th: dict[str, float], wt: float, eta: Sequence[float], doses: Sequence[Dose], times: np.ndarray
) -> np.ndarray:
    """CC = A(1)/V1 of the control stream in Output_simulated_nca_simulation.1.lst."""
    # CLL_WT = POP_CLL*(1+BETA_CLL_WT*(WT-75)); CLL = CLL_WT*EXP(ETA_CLL); the same for V1, V2, VMAX
    cll = th["POP_CLL"] * (1 + th["BETA_CLL_WT"] * (wt - 75)) * math.exp(eta[0])
    v1 = th["POP_V1"] * (1 + th["BETA_V1_WT"] * (wt - 75)) * math.exp(eta[1])
    v2 = th["POP_V2"] * (1 + th["BETA_V2_WT"] * (wt - 75)) * math.exp(eta[2])
    vmax = th["POP_VMAX"] * (1 + th["BETA_VMAX_WT"] * (wt - 75)) * math.exp(eta[3])
    km, q = th["POP_KM"], th["POP_Q"]

    def rhs(t: float, a: np.ndarray) -> np.ndarray:
        # DADT(1) = Q*(CP-CC) - CLL*CC - VMAX*CC/(KM+CC); DADT(2) = Q*(CC-CP)
        cc, cp = a[0] / v1, a[1] / v2
        return np.array([q * (cp - cc) - cll * cc - vmax * cc / (km + cc), q * (cc - cp)])

    return solve(rhs, [0.0, 0.0], doses, times)[:, 0] / v1


SIBRO_REGIMENS = {
    # the simulation's dataset: AMT 80, RATE 80 (a one-hour infusion into AC) at time 0
    "one infusion": [ReferenceDose(route="iv-infusion", amount=80.0, time_h=0, duration_h=1.0)],
    "daily infusions": [
        ReferenceDose(route="iv-infusion", amount=80.0, time_h=t, duration_h=1.0) for t in (0.0, 24.0, 48.0)
    ],
    "one bolus": [ReferenceDose(route="iv-bolus", amount=80.0, time_h=0)],
    "bolus then infusion": [
        ReferenceDose(route="iv-bolus", amount=40.0, time_h=0),
        ReferenceDose(route="iv-infusion", amount=80.0, time_h=30.0, duration_h=2.0),
    ],
}


@pytest.mark.parametrize("regimen", list(SIBRO_REGIMENS))
@pytest.mark.parametrize("eta", [(0.0, 0.0, 0.0, 0.0), (0.4, -0.2, 0.3, -0.5)])
def test_195_sibrotuzumab_against_its_nmtran(regimen: str, eta: tuple[float, ...]) -> None:
    th = thetas(control_stream(SIBRO / "Output_simulated_nca_simulation.1.lst"))
    wt = 90.0  # the dataset's weights run 70-100 kg
    doses = SIBRO_REGIMENS[regimen]
    expected = sibrotuzumab(th, wt, eta, doses_into(doses, {"iv-infusion": 0, "iv-bolus": 0}), TIMES)
    etas = dict(zip(("ETA_CLL", "ETA_V1", "ETA_V2", "ETA_Vmax"), eta, strict=True))
    pred = twin_prediction(SIBRO / "Executable_sibrotuzumab.xml", doses, {"WT": wt}, etas=etas)
    close(pred["Y"], expected)


# --- DDMODEL00000213: meropenem, two compartments, covariates age, weight and creatinine clearance;
# NM-TRAN in the .lst of NONMEM's estimation, whose standard output holds PRED and IPRED ------------

MERO = DDMORE_CORPUS / "213"
MERO_ETAS = ("ETA_CL", "ETA_V1", "ETA_Q", "ETA_V2")


def meropenem(
    th: dict[str, float],
    cov: dict[str, float],
    eta: Sequence[float],
    doses: Sequence[Dose],
    times: np.ndarray,
) -> np.ndarray:
    """CC = A(1)/V1 of the control stream in Output_simulated_Meropenem.lst."""
    # MU_1 = LOG(POP_CL) + COV_CL_AGE*LOG(AGE/35) + COV_CL_CLCR*LOG(CLCR/83); CL = EXP(MU_1 + ETA(1))
    cl = math.exp(
        math.log(th["POP_CL"])
        + th["COV_CL_AGE"] * math.log(cov["AGE"] / 35)
        + th["COV_CL_CLCR"] * math.log(cov["CLCR"] / 83)
        + eta[0]
    )
    v1 = math.exp(math.log(th["POP_V1"]) + th["COV_V1_WT"] * math.log(cov["WT"] / 70) + eta[1])
    q = th["POP_Q"] * math.exp(eta[2])
    v2 = th["POP_V2"] * math.exp(eta[3])

    def rhs(t: float, a: np.ndarray) -> np.ndarray:
        # DADT(1) = -Q*A(1)/V1 + Q*A(2)/V2 - CL*A(1)/V1; DADT(2) = Q*A(1)/V1 - Q*A(2)/V2
        return np.array([-q * a[0] / v1 + q * a[1] / v2 - cl * a[0] / v1, q * a[0] / v1 - q * a[1] / v2])

    return solve(rhs, [0.0, 0.0], doses, times)[:, 0] / v1


MERO_REGIMENS = {
    # the dataset's groups: 500, 1000 or 2000 mg infused at 1000-3000 mg/h or over three hours
    "one infusion": [ReferenceDose(route="iv-infusion", amount=1000.0, time_h=0, duration_h=0.5)],
    "8-hourly infusions": [
        ReferenceDose(route="iv-infusion", amount=1000.0, time_h=t, duration_h=3.0) for t in (0.0, 8.0, 16.0)
    ],
    "one bolus": [ReferenceDose(route="iv-bolus", amount=500.0, time_h=0)],
    "boluses": [ReferenceDose(route="iv-bolus", amount=500.0, time_h=t) for t in (0.0, 8.0, 16.0)],
}


@pytest.mark.parametrize("regimen", list(MERO_REGIMENS))
@pytest.mark.parametrize("eta", [(0.0, 0.0, 0.0, 0.0), (0.3, -0.25, 0.4, 0.1)])
def test_213_meropenem_against_its_nmtran(regimen: str, eta: tuple[float, ...]) -> None:
    th = thetas(control_stream(MERO / "Output_simulated_Meropenem.lst"))
    cov = {"AGE": 60.0, "WT": 55.0, "CLCR": 50.0}
    doses = MERO_REGIMENS[regimen]
    times = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 9.0, 12.0, 17.0, 20.0, 24.0])
    expected = meropenem(th, cov, eta, doses_into(doses, {"iv-infusion": 0, "iv-bolus": 0}), times)
    pred = twin_prediction(
        MERO / "Executable_Meropenem_MDL.xml", doses, cov, times, etas=dict(zip(MERO_ETAS, eta, strict=True))
    )
    close(pred["Y"], expected)


def test_213_the_solution_reproduces_nonmems_pred_and_ipred() -> None:
    # the SO of NONMEM's estimation: final estimates (MLE), each subject's ETAs (EffectMean) and its
    # PRED and IPRED at the dataset's times (5 significant figures); doses and covariates from the data
    so = MERO / "Output_simulated_Meropenem.SO.xml"
    (mle,) = so_table(so, "PopulationEstimates/MLE")
    th = {k: float(v) for k, v in mle.items()}
    etas = {r["ID"]: [float(r[e]) for e in MERO_ETAS] for r in so_table(so, "EffectMean")}
    data = dataset(
        MERO / "Simulated_DatasetMeropenem.csv", control_stream(MERO / "Output_simulated_Meropenem.lst")
    )
    ids = sorted({r["ID"] for r in data}, key=int)  # 79 subjects, six dosing groups
    checked = 0
    for sid, preds in subjects_with_predictions(so, ids).items():
        rows = [r for r in data if r["ID"] == sid]
        cov = {k: float(rows[0][k]) for k in ("AGE", "WT", "CLCR")}
        doses = [
            Dose(float(r["TIME"]), 0, float(r["AMT"]), float(r["AMT"]) / float(r["RATE"]))
            for r in rows
            if r["MDV"] == "1"
        ]
        times = np.array([float(p["TIME"]) for p in preds])
        for column, eta in (("PRED", [0.0] * 4), ("IPRED", etas[sid])):
            mine = meropenem(th, cov, eta, doses, times)
            for value, printed in zip(mine, (p[column] for p in preds), strict=True):
                assert abs(value - float(printed)) <= NONMEM_DIGITS * printed_unit(printed), (
                    sid,
                    column,
                    value,
                )
                checked += 1
    assert checked == 2 * 9 * 79


def test_213_the_twin_at_nonmems_estimates_reproduces_its_ipred() -> None:
    # The twin itself at NONMEM's final estimates (a parameter overlay) and each subject's ETAs, with
    # the subject's covariates and infusion, against the SO's IPRED (first subject of each group)
    so = MERO / "Output_simulated_Meropenem.SO.xml"
    (mle,) = so_table(so, "PopulationEstimates/MLE")
    estimates = {k: float(v) for k, v in mle.items() if k.startswith(("POP_", "COV_"))}
    etas = {r["ID"]: {e: float(r[e]) for e in MERO_ETAS} for r in so_table(so, "EffectMean")}
    data = dataset(
        MERO / "Simulated_DatasetMeropenem.csv", control_stream(MERO / "Output_simulated_Meropenem.lst")
    )
    path = MERO / "Executable_Meropenem_MDL.xml"
    conv = convert(path.read_bytes(), source=str(path))
    model = load_model(conv.sbml, conv.card)
    checked = 0
    for sid, preds in subjects_with_predictions(so, ["1", "15", "28", "41", "54", "67"]).items():
        rows = [r for r in data if r["ID"] == sid]
        doses = tuple(
            ReferenceDose(route="iv-infusion", amount=float(r["AMT"]), time_h=float(r["TIME"]),
                          duration_h=float(r["AMT"]) / float(r["RATE"]))
            for r in rows if r["MDV"] == "1"
        )  # fmt: skip
        twin = bind_regimen(model, doses, {k: float(rows[0][k]) for k in ("AGE", "WT", "CLCR")})
        times = np.array([float(p["TIME"]) for p in preds])
        pred = simulate(twin, times, etas[sid], estimates).values["Y"]
        for value, printed in zip(pred, (p["IPRED"] for p in preds), strict=True):
            assert abs(value - float(printed)) <= NONMEM_DIGITS * printed_unit(printed), (sid, value, printed)
            checked += 1
    assert checked == 6 * 9


def test_213_the_error_model_differs_from_its_nmtran_twin_and_the_importer_warns() -> None:
    # NM-TRAN: W = SQRT((RUV_ADD*RUV_ADD) + (RUV_PROP*RUV_PROP*IPRED*IPRED)), RUV_PROP 0.19, RUV_ADD
    # 0.47: additive SD 0.47, proportional 0.19. The PharmML calls combinedError2(additive=RUV_ADD,
    # proportional=RUV_PROP, f) whose body is sqrt(proportional^2 + additive^2*f^2): additive SD 0.19,
    # proportional 0.47. The importer follows the PharmML body, and warns that the names disagree.
    th = thetas(control_stream(MERO / "Output_simulated_Meropenem.lst"))
    path = MERO / "Executable_Meropenem_MDL.xml"
    conv = convert(path.read_bytes(), source=str(path))
    (err,) = conv.card.residual_error
    assert err.model == "combined"
    assert (err.additive_sd, err.proportional_sd) == pytest.approx((th["RUV_PROP"], th["RUV_ADD"]), rel=1e-12)
    assert (
        sum(
            " is named " in w and "check the model against its NONMEM/MLXTRAN twin" in w
            for w in conv.warnings
        )
        == 2
    )


# --- DDMODEL00000212: tamoxifen and endoxifen, oral with an absorption lag, a hepatic compartment
# in quasi-steady state, CYP2D6 and CYP3A4 activity covariates; NM-TRAN in the .lst, predictions in
# the standard output of NONMEM's estimation ----------------------------------------------------------

TAM = DDMORE_CORPUS / "212"
TAM_ETAS = ("ETA_CL20", "ETA_V2", "ETA_CL23")


def tamoxifen(
    th: dict[str, float],
    cov: dict[str, float],
    eta: Sequence[float],
    doses: Sequence[Dose],
    times: np.ndarray,
    y0: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
    start: float = 0.0,
) -> np.ndarray:
    """(CTAM, CENDX, and the three amounts) of the control stream in Output_simulated_tamoxifen.lst,
    as columns."""
    # MTAM = 371.51456; MENDX = 373.48738; V3 = 400; CL30 = 5.1; K30 = CL30/V3 (constants of $PK)
    mtam, mendx, v3, k30 = 371.51456, 373.48738, 400.0, 5.1 / 400.0
    cl20 = th["POP_CL20"] * math.exp(eta[0])
    v2 = th["POP_V2"] * math.exp(eta[1])
    # MU_3 = LOG(POP_CL23) + BETA_CL23_PHENO2D6*LOG(CYP2D6/1560) + BETA_CL23_PHENO3A4*LOG(CYP3A4/44.7)
    cl23 = math.exp(
        math.log(th["POP_CL23"])
        + th["BETA_CL23_PHENO2D6"] * math.log(cov["CYP2D6"] / 1560)
        + th["BETA_CL23_PHENO3A4"] * math.log(cov["CYP3A4"] / 44.7)
        + eta[2]
    )
    k12, q1, alag = th["POP_K12"], th["POP_Q1"], th["POP_ALAG1"]

    def rhs(t: float, a: np.ndarray) -> np.ndarray:
        # RATEIN = 0; IF (T.GE.NM_ALAG1) RATEIN = GUT*K12 (the model's time, not the time after a dose)
        ratein = a[0] * k12 if t >= alag else 0.0
        c2 = a[1] / v2
        c_hep = (ratein + q1 * c2) / (q1 + cl23)
        # DADT(1) = -RATEIN; DADT(2) = Q1*C_HEP - Q1*C2 - CL20*C2; DADT(3) = CL23*C_HEP - K30*A(3)
        return np.array([-ratein, q1 * c_hep - q1 * c2 - cl20 * c2, cl23 * c_hep - k30 * a[2]])

    a = solve(rhs, y0, doses, times, breaks=(alag,), start=start)
    # CTAM = A(2)/SC2, SC2 = V2*MTAM/10**6; CENDX = A(3)/SC3, SC3 = V3*MENDX/10**6
    return np.column_stack([a[:, 1] / (v2 * mtam / 1e6), a[:, 2] / (v3 * mendx / 1e6), a])


TAM_REGIMENS = {
    "one dose": [0.0],
    "daily doses": [0.0, 24.0, 48.0],  # the dataset's II = 24 (20 mg once a day)
}


@pytest.mark.parametrize("regimen", list(TAM_REGIMENS))
@pytest.mark.parametrize("eta", [(0.0, 0.0, 0.0), (0.3, -0.2, 0.25)])
def test_212_tamoxifen_against_its_nmtran(regimen: str, eta: tuple[float, ...]) -> None:
    th = thetas(control_stream(TAM / "Output_simulated_tamoxifen.lst"))
    cov = {"CYP2D6": 364.04, "CYP3A4": 56.738}  # subject 2 of the dataset
    doses = [ReferenceDose(route="oral", amount=20.0, time_h=t) for t in TAM_REGIMENS[regimen]]
    expected = tamoxifen(th, cov, eta, doses_into(doses, {"oral": 0}), TIMES)
    pred = twin_prediction(
        TAM / "Executable_tamoxifen.xml", doses, cov, etas=dict(zip(TAM_ETAS, eta, strict=True))
    )
    close(pred["TAM_OBS"], expected[:, 0])
    close(pred["ENDX_OBS"], expected[:, 1])


def _tamoxifen_steady_state(
    th: dict[str, float], cov: dict[str, float], eta: Sequence[float], amount: float, ii: float
) -> np.ndarray:
    """The amounts just before a dose at steady state of ``amount`` every ``ii`` hours, each interval
    integrated from T = 0 as NONMEM's steady-state computation does (so ``T.GE.NM_ALAG1`` holds the
    input back for the lag in every interval). The model is linear in its amounts, so the interval's
    map is affine, ``y -> M y + c``, and the steady state is ``(I - M)^-1 c``."""

    def interval(y0: Sequence[float]) -> np.ndarray:
        return tamoxifen(th, cov, eta, [Dose(0.0, 0, amount)], np.array([ii]), y0)[0, 2:]

    c = interval([0.0, 0.0, 0.0])
    m = np.column_stack([interval(np.eye(3)[i]) - c for i in range(3)])
    return np.linalg.solve(np.eye(3) - m, c)


def test_212_the_solution_reproduces_nonmems_pred_and_ipred_at_steady_state() -> None:
    # Each subject has one dose record, AMT 20 with SS=1 and II=24 at TIME 456, and samples up to 480.
    # NONMEM computes the steady state with T starting at 0 in each interval, so the lag written as
    # T.GE.NM_ALAG1 delays every pre-steady-state dose; the dose at 456 itself is not delayed (T >= 456).
    # A twin dosing daily from time 0 delays only its first dose, as the control stream does for a
    # dataset without SS records.
    so = TAM / "Output_simulated_tamoxifen_SO.xml"
    (mle,) = so_table(so, "PopulationEstimates/MLE")
    th = {k: float(v) for k, v in mle.items()}
    etas = {r["ID"]: [float(r[e]) for e in TAM_ETAS] for r in so_table(so, "EffectMean")}
    data = dataset(TAM / "Simulated_tamoxifen.csv", control_stream(TAM / "Output_simulated_tamoxifen.lst"))
    ids = [str(i) for i in range(1, 101, 11)]
    checked = 0
    for sid, preds in subjects_with_predictions(so, ids).items():
        rows = [r for r in data if r["ID"] == sid]
        (dose,) = [r for r in rows if r["EVID"] == "1"]
        assert (dose["SS"], dose["II"], dose["AMT"]) == ("1", "24", "20")
        t_dose = float(dose["TIME"])
        cov = {k: float(rows[0][k]) for k in ("CYP2D6", "CYP3A4")}
        samples = [p for p in preds if p["DVID"] in ("2.0000E+00", "3.0000E+00")]  # 1: the dose record
        times = np.array([float(p["TIME"]) for p in samples])
        column = np.array([0 if p["DVID"] == "2.0000E+00" else 1 for p in samples])
        for name, eta in (("PRED", [0.0] * 3), ("IPRED", etas[sid])):
            trough = _tamoxifen_steady_state(th, cov, eta, 20.0, 24.0)
            # the sample at 456 follows the dose record; the central amounts are the same either way
            levels = tamoxifen(th, cov, eta, [Dose(t_dose, 0, 20.0)], times, trough, start=t_dose)
            mine = levels[np.arange(len(times)), column]
            for value, printed in zip(mine, (p[name] for p in samples), strict=True):
                assert abs(value - float(printed)) <= NONMEM_DIGITS * printed_unit(printed), (
                    sid,
                    name,
                    value,
                )
                checked += 1
    assert checked == 2 * 18 * len(ids)


# --- DDMODEL00000280: rifampicin (Wilkins 2008), a transit-compartment absorption written as an
# analytic input into the depot; the folder has no PharmML, only the NONMEM control stream and its
# tables (sdtab: IPRED, patab: each record's individual parameters), which check the solution ---------

RIF = DDMORE_CORPUS / "280"


def rifampicin(ind: dict[str, float], dose: float, t_dose: float, times: np.ndarray) -> np.ndarray:
    """F = A(2)/V of Executable_simulated_TB_Rifampicin_PK_Wilkins_2008.mod after one dose ``dose`` at
    ``t_dose`` (F1 = 0: the dose enters only through the transit input), at the individual
    parameters ``ind`` (CL, V, KA, MTT, NN)."""
    cl, v, ka, mtt, nn = (ind[k] for k in ("CL", "V", "KA", "MTT", "NN"))
    k, ktr, x = cl / v, (nn + 1) / mtt, 0.00001  # K = CL/V; KTR = (NN+1)/MTT; X = 0.00001
    lgam = math.log(2.5066) + (nn + 0.5) * math.log(nn) - nn + math.log(1 + 1 / (12 * nn))  # L

    def rhs(t: float, a: np.ndarray) -> np.ndarray:
        # IF (T.GT.TDOS) DADT(1) = EXP(LOG(PD+X)+LOG(KTR+X)+NN*LOG(KTR*(T-TDOS)+X)-KTR*(T-TDOS)-L) - KA*A(1)
        tad = t - t_dose
        into = math.exp(
            math.log(dose + x) + math.log(ktr + x) + nn * math.log(ktr * tad + x) - ktr * tad - lgam
        )
        return np.array([into - ka * a[0], ka * a[0] - k * a[1]])  # DADT(2) = KA*A(1) - K*A(2)

    return solve(rhs, [0.0, 0.0], [], times, start=t_dose)[:, 1] / v


def test_280_the_solution_reproduces_nonmems_ipred() -> None:
    # Each occasion starts with a daily dose followed by samples; the later daily doses of an occasion
    # are never followed by samples, and $PK sets TDOS = TIME on each dose record, so their input
    # (computed with the next record's TDOS) is 0, and nothing is left of an occasion a week later:
    # each occasion's samples see its first dose only, from 0. Within 2e-4 of NONMEM's IPRED: its
    # ADVAN6 runs with TOL=4, and patab prints the individual parameters to 5 figures (the median
    # difference is 2e-5).
    control = control_stream(RIF / "Executable_simulated_TB_Rifampicin_PK_Wilkins_2008.mod")
    data = dataset(RIF / "Simulated_TB_Rifampicin_PK_Wilkins_2008.csv", control)
    sdtab = nonmem_table(RIF / "sdtab.simulated_TB_Rifampicin_PK_Wilkins_2008")
    patab = nonmem_table(RIF / "patab.simulated_TB_Rifampicin_PK_Wilkins_2008")
    assert len(sdtab) == len(patab) == len(data)
    subjects = sorted({r["ID"] for r in data}, key=int)[::10]
    errors = []
    for sid in subjects:
        for occ in sorted({r["OCC"] for r in data if r["ID"] == sid}):
            rows = [i for i, r in enumerate(data) if r["ID"] == sid and r["OCC"] == occ]
            first = next(data[i] for i in rows if data[i]["EVID"] == "1")
            samples = [i for i in rows if data[i]["MDV"] == "0"]
            assert all(sdtab[i]["TIME"] == float(data[i]["TIME"]) for i in samples)
            (ind,) = {tuple(patab[i][k] for k in ("CL", "V", "KA", "MTT", "NN")) for i in samples}
            times = np.array([float(data[i]["TIME"]) for i in samples])
            mine = rifampicin(
                dict(zip(("CL", "V", "KA", "MTT", "NN"), ind, strict=True)),
                float(first["AMT"]),
                float(first["TIME"]),
                times,
            )
            errors += [abs(m / sdtab[i]["IPRED"] - 1) for m, i in zip(mine, samples, strict=True)]
    assert len(errors) > 250
    assert max(errors) <= 2e-4 and float(np.median(errors)) <= 3e-5, (max(errors), np.median(errors))
