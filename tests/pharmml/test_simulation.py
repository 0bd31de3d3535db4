"""Acceptance: converted PharmML models simulated by the twin runtime match independent solutions.

PK-macro models against their closed forms; the warfarin models against a direct scipy
integration of the PharmML equations, written out here by hand from the files. Values the files
do not carry (the PK-macro examples omit most estimates, and dataset-driven doses have no amount)
are chosen here and said so.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from interop.schema import ReferenceDose, ReferenceOutput
from interop.twin import bind_regimen, check_reference_outputs, load_model, simulate
from registry.formats.pharmml import PharmMLError, convert
from tests.data import (
    PHARMML_ADVAN1,
    PHARMML_ADVAN4,
    PHARMML_ONECMT_IV,
    PHARMML_ORAL_EFFECT,
    PHARMML_USECASE1,
    PHARMML_USECASE3,
)

RTOL = 1e-6
TIMES = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0, 48.0, 72.0])


def _assert_close(pred: np.ndarray, expected: np.ndarray, atol: float = 1e-12) -> None:
    scale = np.maximum(np.abs(expected), atol / RTOL)
    err = np.abs(pred - expected) / scale
    assert np.max(err) <= RTOL, f"max relative error {np.max(err):.3g}\n{pred}\n{expected}"


def _twin_prediction(conv, doses, covariates, times=TIMES):  # type: ignore[no-untyped-def]
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, tuple(doses), covariates)
    return model, simulate(twin, times)


# ---------------------------------------------------------------- warfarin (UseCase1, UseCase3)
# Population values from the files' EstimationStep initial estimates.
POP_CL, POP_V, POP_KA, POP_TLAG = 0.1, 8.0, 0.362, 1.0
BETA_CL_WT, BETA_V_WT = 0.75, 1.0
POP_PCA0, POP_EMAX, POP_C50, POP_TEQ = 96.7, 1.0, 1.2, 12.9
WT = 82.0
DOSE = 100.0  # mg: the files take AMT from a dataset; the column mapping sends it to GUT


def _warfarin_ivp(with_pd: bool) -> dict[str, np.ndarray]:
    """The UseCase equations integrated by scipy, segment by segment around the lag time."""
    logtwt = math.log(WT / 70)
    cl = POP_CL * math.exp(BETA_CL_WT * logtwt)
    v = POP_V * math.exp(BETA_V_WT * logtwt)
    ka, tlag = POP_KA, POP_TLAG
    kpca = math.log(2) / POP_TEQ
    rpca = POP_PCA0 * kpca

    def rhs(t: float, y: np.ndarray) -> list[float]:
        gut, central, pca = y
        ratein = ka * gut if t >= tlag else 0.0
        cc = central / v
        pd = 1 - POP_EMAX * cc / (POP_C50 + cc)
        return [-ratein, ratein - cl * central / v, rpca * pd - kpca * pca]

    y0 = [DOSE, 0.0, POP_PCA0]
    before = TIMES[TIMES < tlag]
    after = TIMES[TIMES >= tlag]
    first = solve_ivp(
        rhs,
        (0, tlag),
        y0,
        method="DOP853",
        rtol=1e-13,
        atol=1e-14,
        t_eval=before,
        dense_output=True,
    )
    second = solve_ivp(
        rhs,
        (tlag, TIMES[-1]),
        first.sol(tlag),
        method="DOP853",
        rtol=1e-13,
        atol=1e-14,
        t_eval=after,
    )
    y = np.hstack([first.y, second.y])
    out = {"CC": y[1] / v}
    if with_pd:
        out["PCA"] = y[2]
    return out


def test_usecase1_matches_direct_integration() -> None:
    conv = convert(PHARMML_USECASE1.read_bytes(), source=str(PHARMML_USECASE1))
    assert conv.column_mappings["AMT"] == ("GUT",)
    (oral,) = conv.card.dosing
    assert (oral.route, oral.target) == ("oral", "GUT")
    _, pred = _twin_prediction(
        conv, [ReferenceDose(route="oral", amount=DOSE, time_h=0)], {"logtWT": math.log(WT / 70)}
    )
    _assert_close(pred.values["Y"], _warfarin_ivp(with_pd=False)["CC"])


def test_usecase3_pkpd_matches_direct_integration() -> None:
    conv = convert(PHARMML_USECASE3.read_bytes(), source=str(PHARMML_USECASE3))
    assert [c.name for c in conv.card.covariates] == ["WT"]
    assert conv.card.covariates[0].reference == 70  # from the transformation log(WT/70)
    assert conv.column_mappings == {
        "ID": (), "TIME": (), "WT": ("WT",), "AMT": ("GUT",), "DV": ("CP_obs", "PCA_obs"),
    }  # fmt: skip
    _, pred = _twin_prediction(conv, [ReferenceDose(route="oral", amount=DOSE, time_h=0)], {"WT": WT})
    expected = _warfarin_ivp(with_pd=True)
    _assert_close(pred.values["CP_obs"], expected["CC"])
    _assert_close(pred.values["PCA_obs"], expected["PCA"])


def test_warfarin_random_effects_and_residual_error_on_the_card() -> None:
    card = convert(PHARMML_USECASE3.read_bytes(), source="UseCase3.xml").card
    re = card.random_effects
    assert re.etas == ("ETA_CL", "ETA_V", "ETA_KA", "ETA_TLAG", "ETA_PCA0", "ETA_C50", "ETA_TEQ")
    omega = re.omega_matrix()
    assert np.allclose(np.diag(omega), 0.01)  # PPV_* = 0.1 are standard deviations (Normal1)
    assert omega[0, 1] == pytest.approx(0.01 * 0.1 * 0.1)  # correlation 0.01 -> covariance
    cp = card.error_for("CP_obs")
    pca = card.error_for("PCA_obs")
    assert cp is not None and cp.model == "combined-sd"  # combinedError1: SD = a + b*f
    assert (cp.additive_sd, cp.proportional_sd) == pytest.approx((0.3, 0.05), rel=1e-12)
    assert pca is not None and (pca.model, pca.additive_sd) == ("additive", 4.0)


def test_eta_moves_the_individual_parameter() -> None:
    """ETA_CL enters CL = POP_CL * exp(BETA*logtWT + ETA_CL): a positive ETA lowers exposure."""
    conv = convert(PHARMML_USECASE1.read_bytes(), source="UseCase1.xml")
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route="oral", amount=DOSE, time_h=0),), {"logtWT": 0.0})
    base = simulate(twin, [48.0]).values["Y"][0]
    high = simulate(twin, [48.0], etas={"ETA_CL": 0.3}).values["Y"][0]
    cl0, cl1 = POP_CL, POP_CL * math.exp(0.3)
    assert high < base
    assert math.isclose(model.runner.getValue("CL"), cl1, rel_tol=1e-12)
    assert cl1 > cl0


# ---------------------------------------------------------------- PK macros (closed forms)
def test_advan1_iv_bolus_and_infusion_match_closed_form() -> None:
    cl = 1.0  # the file omits CL's estimate ("omitted other parameters"); V = 10 is in the file
    conv = convert(PHARMML_ADVAN1.read_bytes(), source=str(PHARMML_ADVAN1), values={"CL": cl})
    v, k = 10.0, cl / 10.0
    routes = {d.route: d.target for d in conv.card.dosing}
    assert routes == {"iv-bolus": "Ac", "iv-infusion": "Ac"}
    assert conv.column_mappings["ADM"] == ("adm1",)
    _, bolus = _twin_prediction(conv, [ReferenceDose(route="iv-bolus", amount=DOSE, time_h=0)], {})
    _assert_close(bolus.values["Cc_obs"], DOSE / v * np.exp(-k * TIMES))

    tinf = 2.0
    _, inf = _twin_prediction(
        conv, [ReferenceDose(route="iv-infusion", amount=DOSE, time_h=0, duration_h=tinf)], {}
    )
    rate = DOSE / tinf
    during = rate / (k * v) * (1 - np.exp(-k * np.minimum(TIMES, tinf)))
    closed = np.where(TIMES <= tinf, during, during * np.exp(-k * (TIMES - tinf)))
    _assert_close(inf.values["Cc_obs"], closed)


def _two_cmt_oral(
    t: np.ndarray, dose: float, ka: float, k: float, k12: float, k21: float, v: float
) -> np.ndarray:
    """Closed form of first-order absorption into a two-compartment model (Gibaldi & Perrier)."""
    s = k + k12 + k21
    alpha = (s + math.sqrt(s * s - 4 * k * k21)) / 2
    beta = (s - math.sqrt(s * s - 4 * k * k21)) / 2
    return (
        dose
        * ka
        / v
        * (
            (k21 - alpha) / ((ka - alpha) * (beta - alpha)) * np.exp(-alpha * t)
            + (k21 - beta) / ((ka - beta) * (alpha - beta)) * np.exp(-beta * t)
            + (k21 - ka) / ((alpha - ka) * (beta - ka)) * np.exp(-ka * t)
        )
    )


def test_advan4_oral_two_compartments_match_closed_form() -> None:
    values = {"ka": 1.3, "k": 0.25, "k12": 0.4, "k21": 0.15}  # the file gives only V and a
    conv = convert(PHARMML_ADVAN4.read_bytes(), source=str(PHARMML_ADVAN4), values=values)
    (oral,) = conv.card.dosing
    assert oral.route == "oral" and oral.target != "Ac"  # a depot made for adm 1
    model, pred = _twin_prediction(conv, [ReferenceDose(route="oral", amount=DOSE, time_h=0)], {})
    expected = _two_cmt_oral(TIMES, DOSE, v=10.0, **values)
    _assert_close(pred.values["Cc_obs"], expected)

    # The same numbers as a reference output on the emitted card, checked by the twin runtime.
    ref = ReferenceOutput(
        description="100 mg oral, closed form",
        observable="Cc_obs",
        doses=(ReferenceDose(route="oral", amount=DOSE, time_h=0),),
        times_h=tuple(TIMES),
        values=tuple(expected),
    )
    with_ref = convert(PHARMML_ADVAN4.read_bytes(), values=values, reference_outputs=[ref])
    assert with_ref.card.reference_outputs == (ref,)
    (check,) = check_reference_outputs(load_model(with_ref.sbml, with_ref.card))
    assert check.passed, check


# ---------------------------------------------------------------- TrialDesign administrations
def test_trial_design_doses_match_superposition() -> None:
    """Two boluses (0 h, 12 h) and an infusion (24 h over 2 h) from the TrialDesign."""
    conv = convert(PHARMML_ONECMT_IV.read_bytes(), source=str(PHARMML_ONECMT_IV), units={"Y": "mg/L"})
    doses = conv.trial_doses
    assert [(d.route, d.amount, d.time_h, d.duration_h) for d in doses] == [
        ("iv-bolus", 100, 0, None),
        ("iv-bolus", 100, 12, None),
        ("iv-infusion", 200, 24, 2),
    ]
    wt = 70.0
    cl, v = 4.0 * (wt / 70) ** 0.75, 30.0
    k = cl / v
    times = np.array([1.0, 6.0, 11.99, 12.5, 20.0, 24.5, 25.0, 26.0, 30.0, 48.0])
    _, pred = _twin_prediction(conv, doses, {"WT": wt}, times)
    expected = np.zeros_like(times)
    for d in doses:
        dt = times - d.time_h
        if d.duration_h is None:
            expected += np.where(dt >= 0, d.amount / v * np.exp(-k * np.maximum(dt, 0)), 0)
        else:
            r = d.amount / d.duration_h
            on = np.clip(dt, 0, d.duration_h)
            level = r / (k * v) * (1 - np.exp(-k * on))
            expected += np.where(dt > d.duration_h, level * np.exp(-k * (dt - d.duration_h)), level)
    _assert_close(pred.values["Y"], expected)
    err = conv.card.error_for("Y")
    assert err is not None and err.model == "proportional"
    assert err.proportional_sd == pytest.approx(0.15, rel=1e-12)
    assert conv.card.random_effects.omega == ((0.09, 0.0), (0.0, 0.04))


# ---------------------------------------------------------------- more PK macros
def test_oral_lag_bioavailability_and_effect_compartment_match_closed_form() -> None:
    conv = convert(PHARMML_ORAL_EFFECT.read_bytes(), source=str(PHARMML_ORAL_EFFECT))
    (oral,) = conv.card.dosing
    assert (oral.route, oral.bioavailability, oral.lag_time_h) == ("oral", "F", "Tlag")
    (dose,) = conv.trial_doses  # the TrialDesign's 250 into adm 1
    assert (dose.route, dose.amount, dose.time_h) == ("oral", 250, 0)
    v, cl, ka, tlag, f, ke0 = 20.0, 3.0, 0.9, 0.5, 0.7, 0.4
    k = cl / v
    times = np.array([0.25, 0.75, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
    _, pred = _twin_prediction(conv, [dose], {}, times)
    s = np.maximum(times - tlag, 0)
    amp = f * dose.amount * ka / (v * (ka - k))
    cc = amp * (np.exp(-k * s) - np.exp(-ka * s))
    ce = (
        amp
        * ke0
        * (
            (np.exp(-k * s) - np.exp(-ke0 * s)) / (ke0 - k)
            - (np.exp(-ka * s) - np.exp(-ke0 * s)) / (ke0 - ka)
        )
    )
    _assert_close(pred.values["Cc_obs"], cc)
    _assert_close(pred.values["Ce_obs"], ce)


def test_zero_order_absorption_is_an_input_of_modelled_duration() -> None:
    raw = PHARMML_ORAL_EFFECT.read_bytes().replace(
        b'<Value><ct:SymbRef blkIdRef="pm1" symbIdRef="ka"/></Value>',
        b'<Value argument="Tk0"><ct:SymbRef blkIdRef="pm1" symbIdRef="ka"/></Value>',
    )
    conv = convert(raw, source="zero-order.xml")
    (oral,) = conv.card.dosing
    assert (oral.target, oral.duration_parameter) == ("Ac", "ka")  # Tk0 is the symbol ka here
    v, cl, tk0, tlag, f = 20.0, 3.0, 0.9, 0.5, 0.7
    k = cl / v
    times = np.array([0.25, 0.75, 1.0, 1.4, 2.0, 4.0, 12.0])
    _, pred = _twin_prediction(conv, list(conv.trial_doses), {}, times)
    rate = f * 250 / tk0
    on = np.clip(times - tlag, 0, tk0)
    level = rate / (k * v) * (1 - np.exp(-k * on))
    after = np.maximum(times - tlag - tk0, 0)
    _assert_close(pred.values["Cc_obs"], level * np.exp(-k * after))


# ---------------------------------------------------------------- categorical covariates
SEX_COVARIATE = b"""<Covariate symbId="SEX"><Categorical>
    <Category catId="female"/><Category catId="male"/></Categorical></Covariate>
        </CovariateModel>"""
SEX_ON_V = b"""<LinearCovariate>
  <PopulationValue><ct:Assign><ct:SymbRef symbIdRef="POP_V"/></ct:Assign></PopulationValue>
  <Covariate>
    <ct:SymbRef blkIdRef="cm" symbIdRef="SEX"/>
    <FixedEffect><ct:SymbRef symbIdRef="BETA_V_F"/><Category catId="female"/></FixedEffect>
  </Covariate>
</LinearCovariate>"""


def _with_sex_on_v() -> bytes:
    raw = PHARMML_ONECMT_IV.read_bytes()
    raw = raw.replace(b"</CovariateModel>", SEX_COVARIATE, 1)
    raw = raw.replace(
        b'<PopulationValue><ct:Assign><ct:SymbRef symbIdRef="POP_V"/></ct:Assign></PopulationValue>',
        SEX_ON_V,
        1,
    )
    raw = raw.replace(
        b'<PopulationParameter symbId="PROP"/>',
        b'<PopulationParameter symbId="PROP"/><PopulationParameter symbId="BETA_V_F"/>',
    )
    return raw.replace(
        b"</ParametersToEstimate>",
        b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="BETA_V_F"/>'
        b"<InitialEstimate><ct:Real>-0.2</ct:Real></InitialEstimate></ParameterEstimation>"
        b"</ParametersToEstimate>",
    )


@pytest.mark.parametrize("version", ["0.8", "0.9"])
def test_categorical_covariate_fixed_effect(version: str) -> None:
    """V = POP_V * exp(BETA_V_F * [SEX == female] + ETA_V); sex binds from the patient record."""
    from tests.pharmml.versions import to_09

    raw = _with_sex_on_v()
    conv = convert(to_09(raw) if version == "0.9" else raw, source="sex.xml")
    sex = next(c for c in conv.card.covariates if c.name == "SEX")
    assert sex.source.patient_field == "sex"
    assert sex.source.categories == {"female": 0.0, "male": 1.0}
    dose = [ReferenceDose(route="iv-bolus", amount=DOSE, time_h=0)]
    times = np.array([1.0, 5.0])
    for code, v in ((0.0, 30.0 * math.exp(-0.2)), (1.0, 30.0)):
        _, pred = _twin_prediction(conv, dose, {"WT": 70.0, "SEX": code}, times)
        _assert_close(pred.values["Y"], DOSE / v * np.exp(-4.0 / v * times))


# ---------------------------------------------------------------- general-form observation, sequences
GENERAL_Y = b"""<General symbId="Y"><ct:Assign>
  <math:Binop op="plus">
    <ct:SymbRef blkIdRef="sm" symbIdRef="C"/>
    <math:Binop op="times">
      <math:Binop op="times"><ct:SymbRef blkIdRef="pm" symbIdRef="PROP"/>
        <ct:SymbRef blkIdRef="sm" symbIdRef="C"/></math:Binop>
      <ct:SymbRef blkIdRef="pm" symbIdRef="EPS"/>
    </math:Binop>
  </math:Binop></ct:Assign></General>"""
SEQUENCE_0_12 = b"""<ct:Assign><ct:Sequence><ct:Begin><ct:Int>0</ct:Int></ct:Begin>
  <ct:StepSize><ct:Int>12</ct:Int></ct:StepSize><ct:End><ct:Int>12</ct:Int></ct:End></ct:Sequence></ct:Assign>"""


def test_general_form_observation_and_dosing_sequence_convert_like_the_standard_form() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    start, end = raw.index(b'<Standard symbId="Y">'), raw.index(b"</Standard>") + len(b"</Standard>")
    general = raw[:start] + GENERAL_Y + raw[end:]
    vec_start = general.index(b"<ct:Assign>\n                            <ct:Vector>")
    vec_end = general.index(b"</ct:Assign>", vec_start) + len(b"</ct:Assign>")
    general = general[:vec_start] + SEQUENCE_0_12 + general[vec_end:]
    base = convert(raw, source="standard.xml")
    conv = convert(general, source="general.xml")
    assert conv.trial_doses == base.trial_doses
    assert conv.card.model_dump(
        exclude={"id", "description", "drugs", "observables"}
    ) == base.card.model_dump(exclude={"id", "description", "drugs", "observables"})
    times = np.array([1.0, 13.0, 30.0])
    _, a = _twin_prediction(base, list(base.trial_doses), {"WT": 70.0}, times)
    _, b = _twin_prediction(conv, list(conv.trial_doses), {"WT": 70.0}, times)
    np.testing.assert_allclose(b.values["Y"], a.values["Y"], rtol=1e-12)


def test_eta_on_an_initial_condition_follows_the_eta() -> None:
    """PCA(0) = PCA0 = POP_PCA0 * exp(ETA_PCA0): an initial assignment the runtime re-evaluates."""
    conv = convert(PHARMML_USECASE3.read_bytes(), source="UseCase3.xml")
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route="oral", amount=DOSE, time_h=0),), {"WT": 70.0})
    assert simulate(twin, [0.0]).values["PCA_obs"][0] == pytest.approx(POP_PCA0, rel=1e-12)
    shifted = simulate(twin, [0.0], etas={"ETA_PCA0": 0.5}).values["PCA_obs"][0]
    assert shifted == pytest.approx(POP_PCA0 * math.exp(0.5), rel=1e-12)


def test_covariance_form_of_a_correlation() -> None:
    corr = b"""<Correlation>
      <ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/></ct:VariabilityReference>
      <Pairwise>
        <RandomVariable1><ct:SymbRef symbIdRef="ETA_CL"/></RandomVariable1>
        <RandomVariable2><ct:SymbRef symbIdRef="ETA_V"/></RandomVariable2>
        <Covariance><ct:Assign><ct:Real>0.012</ct:Real></ct:Assign></Covariance>
      </Pairwise>
    </Correlation>
        </ParameterModel>"""
    raw = PHARMML_ONECMT_IV.read_bytes().replace(b"</ParameterModel>", corr, 1)
    card = convert(raw, source="cov.xml").card
    assert card.random_effects.omega == ((0.09, 0.012), (0.012, 0.04))
    matrix = raw.replace(b"<Pairwise>", b"<Matrix><Pairwise>").replace(
        b"</Pairwise>", b"</Pairwise></Matrix>"
    )
    with pytest.raises(PharmMLError, match=r"Correlation.*a correlation is Pairwise, or a CorrMatrix"):
        convert(matrix, source="matrix.xml")
