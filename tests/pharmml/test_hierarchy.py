"""Hierarchical PharmML constructs (issue 14): priors as random variables at a population level,
vector- and matrix-valued priors, and occasions switched by the dataset's occasion column.
Each test edits the project's one-compartment fixture and checks a hand-computed value."""

from __future__ import annotations

import dataclasses
import math
import re

import libsbml
import numpy as np
import pytest

from interop.schema import ReferenceDose
from interop.twin import CovariateSeries, bind_regimen, load_model, simulate
from registry.formats.pharmml import PharmMLError, convert
from tests.data import PHARMML_CORPUS, PHARMML_ONECMT_IV, require_corpus

_LEVEL = b'<Level symbId="ID"/>'
_NESTED = (
    b'<Level symbId="pop"/><Level symbId="ID">'
    b'<ParentLevel><ct:SymbRef symbIdRef="pop"/></ParentLevel></Level>'
)
_POP_V = b'<PopulationParameter symbId="POP_V"/>'
_POP_V_ESTIMATE = (
    b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="POP_V"/>'
    b"<InitialEstimate><ct:Real>30</ct:Real></InitialEstimate></ParameterEstimation>"
)
_PO = b'xmlns:po="http://www.pharmml.org/probonto/ProbOnto"'


def _fixture() -> bytes:
    raw = PHARMML_ONECMT_IV.read_bytes()
    assert _LEVEL in raw and _POP_V in raw and _POP_V_ESTIMATE in raw
    return raw


def _prior_variable(dist: str, params: dict[str, str]) -> bytes:
    """POP_V as a random variable at the population level ``pop``, distributed as ``dist``."""
    body = "".join(
        f'<po:Parameter name="{k}"><ct:Assign>{v}</ct:Assign></po:Parameter>' for k, v in params.items()
    )
    return (
        b'<RandomVariable symbId="POP_V"><ct:VariabilityReference><ct:SymbRef blkIdRef="vm" '
        b'symbIdRef="pop"/></ct:VariabilityReference><Distribution><po:ProbOnto '
        + _PO
        + f' name="{dist}">{body}</po:ProbOnto></Distribution></RandomVariable>'.encode()
    )


def _real(x: float) -> str:
    return f"<ct:Real>{x}</ct:Real>"


def _sbml_card(conv):  # type: ignore[no-untyped-def]
    return conv.sbml, conv.card


def _v(conv_sbml: str, conv_card) -> float:  # type: ignore[no-untyped-def]
    """V at the typical values, from the simulated model: C(0+) = dose / V after a 100 bolus."""
    twin = bind_regimen(
        load_model(conv_sbml, conv_card),
        (ReferenceDose(route="iv-bolus", amount=100.0, time_h=0.0),),
        {"WT": 70},
    )
    return 100.0 / float(simulate(twin, [1e-9]).values["Y"][0])


@pytest.mark.parametrize(
    ("dist", "params", "expected"),
    [
        ("Gamma1", {"shape": _real(4), "scale": _real(7.5)}, 30.0),  # shape * scale
        ("InverseGamma1", {"shape": _real(3), "scale": _real(50)}, 25.0),  # mean b/(a-1)
        ("InverseGamma1", {"shape": _real(0.5), "scale": _real(45)}, 30.0),  # no mean: mode b/(a+1)
        ("LogNormal3", {"median": _real(20), "stdevLog": _real(0.5)}, 20 * math.exp(0.125)),
        ("Normal1", {"mean": _real(28), "stdev": _real(3)}, 28.0),
    ],
)
def test_a_random_variable_at_the_population_level_is_a_prior_giving_a_typical_value(
    dist: str, params: dict[str, str], expected: float
) -> None:
    raw = _fixture().replace(_LEVEL, _NESTED).replace(_POP_V_ESTIMATE, b"")
    conv = convert(raw.replace(_POP_V, _prior_variable(dist, params)), source="prior.xml")
    assert conv.card.random_effects.etas == ("ETA_CL", "ETA_V")  # ID stays the subjects' level
    assert _v(conv.sbml, conv.card) == pytest.approx(expected, rel=1e-6)
    with_estimate = raw.replace(_POP_V, _prior_variable(dist, params)).replace(
        b"</ParametersToEstimate>", _POP_V_ESTIMATE + b"</ParametersToEstimate>"
    )
    conv = convert(with_estimate, source="prior-estimate.xml")
    assert _v(conv.sbml, conv.card) == pytest.approx(30.0, rel=1e-6)  # the initial estimate wins


def test_a_random_variable_without_a_level_is_a_prior_and_an_unknown_prior_is_refused() -> None:
    raw = _fixture().replace(_POP_V_ESTIMATE, b"")
    gamma = _prior_variable("Gamma2", {"shape": _real(60), "rate": _real(2)})
    no_level = gamma.replace(
        b'<ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="pop"/></ct:VariabilityReference>', b""
    )
    conv = convert(raw.replace(_POP_V, no_level), source="no-level.xml")
    assert _v(conv.sbml, conv.card) == pytest.approx(30.0)  # shape / rate
    poisson = no_level.replace(b'name="Gamma2"', b'name="Poisson1"')
    with pytest.raises(
        PharmMLError, match=r"prior distribution 'Poisson1' is not supported \(no mean taken\)"
    ):
        convert(raw.replace(_POP_V, poisson), source="poisson.xml")


_THETA = (
    b'<PopulationParameter symbId="THETA"><Distribution><po:ProbOnto ' + _PO + b' name="MultivariateNormal1">'
    b'<po:Parameter name="mean"><ct:Assign><ct:Vector><ct:VectorElements><ct:Real>4</ct:Real>'
    b"<ct:Real>30</ct:Real></ct:VectorElements></ct:Vector></ct:Assign></po:Parameter>"
    b'<po:Parameter name="covarianceMatrix"><ct:Assign><ct:Matrix><ct:MatrixRow><ct:Real>1</ct:Real>'
    b"<ct:Real>0</ct:Real></ct:MatrixRow><ct:MatrixRow><ct:Real>0</ct:Real><ct:Real>1</ct:Real>"
    b"</ct:MatrixRow></ct:Matrix></ct:Assign></po:Parameter></po:ProbOnto></Distribution></PopulationParameter>"
)


def _theta(k: int) -> bytes:
    return (
        f'<ct:VectorSelector><ct:SymbRef symbIdRef="THETA"/><ct:Cell><ct:Int>{k}</ct:Int></ct:Cell>'
        "</ct:VectorSelector>"
    ).encode()


def test_a_multivariate_normal_prior_gives_a_vector_of_typical_values_by_cell() -> None:
    raw = _fixture().replace(_POP_V_ESTIMATE, b"")
    vector = raw.replace(_POP_V, _THETA).replace(b'<ct:SymbRef symbIdRef="POP_V"/>', _theta(2))
    conv = convert(vector, source="mvn-prior.xml")
    assert _v(conv.sbml, conv.card) == pytest.approx(30.0)  # the mean vector's 2nd cell
    wrapped = vector.replace(
        b"<ct:Cell><ct:Int>2</ct:Int></ct:Cell>",
        b"<ct:Cell><ct:Assign><ct:Int>2</ct:Int></ct:Assign></ct:Cell>",
    )
    assert wrapped != vector  # PharmML 0.8 writers (MDL) wrap the cell index in ct:Assign
    assert _v(*_sbml_card(convert(wrapped, source="wrapped-cell.xml"))) == pytest.approx(30.0)
    whole = raw.replace(_POP_V, _THETA).replace(
        b'<ct:SymbRef symbIdRef="POP_V"/>', b'<ct:SymbRef symbIdRef="THETA"/>'
    )
    with pytest.raises(PharmMLError, match="the vector 'THETA' is used whole"):
        convert(whole, source="whole.xml")


def test_a_random_sample_prior_gives_its_weighted_mean() -> None:
    rows = [(20.0, 1.0), (30.0, 2.0), (45.0, 1.0)]  # (draw, weight): (20 + 60 + 45) / 4 = 31.25
    table = "".join(f"<ds:Row><ct:Real>{x}</ct:Real><ct:Real>{w}</ct:Real></ds:Row>" for x, w in rows)
    sample = (
        b'<PopulationParameter symbId="draws"/><PopulationParameter symbId="weights"/>'
        b'<PopulationParameter symbId="POP_V"><Distribution><po:ProbOnto ' + _PO + b' name="RandomSample">'
        b'<po:Realisation><ct:Assign><ct:SymbRef symbIdRef="draws"/></ct:Assign></po:Realisation>'
        b'<po:Weight><ct:Assign><ct:SymbRef symbIdRef="weights"/></ct:Assign></po:Weight>'
        b'<po:ColumnMapping><ds:ColumnRef columnIdRef="x"/><ct:SymbRef symbIdRef="draws"/></po:ColumnMapping>'
        b'<po:ColumnMapping><ds:ColumnRef columnIdRef="w"/>'
        b'<ct:SymbRef symbIdRef="weights"/></po:ColumnMapping>'
        b'<ds:DataSet><ds:Definition><ds:Column columnId="x" valueType="real" columnNum="1"/>'
        b'<ds:Column columnId="w" valueType="real" columnNum="2"/></ds:Definition><ds:Table>'
        + table.encode()
        + b"</ds:Table></ds:DataSet></po:ProbOnto></Distribution></PopulationParameter>"
    )
    conv = convert(_fixture().replace(_POP_V_ESTIMATE, b"").replace(_POP_V, sample), source="sample.xml")
    assert _v(conv.sbml, conv.card) == pytest.approx(31.25)


def test_a_wishart_prior_on_a_precision_matrix_gives_omega() -> None:
    # ETA ~ MVN(0, precision TAU), TAU ~ Wishart2(inverse scale R, 4): TAU = 4 R^-1, Omega = R / 4
    r = ((0.36, 0.048), (0.048, 0.16))
    rows = "".join(
        "<ct:MatrixRow>" + "".join(f"<ct:Real>{x}</ct:Real>" for x in row) + "</ct:MatrixRow>" for row in r
    )
    raw = _fixture()
    start, end = (
        raw.index(b'<RandomVariable symbId="ETA_CL">'),
        raw.index(b'<IndividualParameter symbId="CL">'),
    )
    mvn = (
        b'<PopulationParameter symbId="R"><ct:Assign><ct:Matrix>'
        + rows.encode()
        + b"</ct:Matrix></ct:Assign>"
        b'</PopulationParameter><PopulationParameter symbId="TAU"><Distribution><po:ProbOnto name="Wishart2">'
        b'<po:Parameter name="inverseScaleMatrix">'
        b'<ct:Assign><ct:SymbRef symbIdRef="R"/></ct:Assign></po:Parameter>'
        b'<po:Parameter name="degreesOfFreedom"><ct:Assign><ct:Int>4</ct:Int></ct:Assign></po:Parameter>'
        b"</po:ProbOnto></Distribution></PopulationParameter>"
        b'<RandomVariable symbId="ETA"><ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/>'
        b'</ct:VariabilityReference><Distribution><po:ProbOnto name="MultivariateNormal2">'
        b'<po:Parameter name="mean"><ct:Assign><ct:Vector><ct:VectorElements><ct:Real>0</ct:Real>'
        b"<ct:Real>0</ct:Real></ct:VectorElements></ct:Vector></ct:Assign></po:Parameter>"
        b'<po:Parameter name="precisionMatrix">'
        b'<ct:Assign><ct:SymbRef symbIdRef="TAU"/></ct:Assign></po:Parameter>'
        b"</po:ProbOnto></Distribution></RandomVariable>"
    )
    cell = (
        b'<ct:VectorSelector><ct:SymbRef symbIdRef="ETA"/>'
        b"<ct:Cell><ct:Int>%d</ct:Int></ct:Cell></ct:VectorSelector>"
    )
    edited = (
        raw[:start]
        + mvn
        + raw[end:]
        .replace(b'<ct:SymbRef symbIdRef="ETA_CL"/>', cell % 1)
        .replace(b'<ct:SymbRef symbIdRef="ETA_V"/>', cell % 2)
    )
    re = convert(edited, source="wishart.xml").card.random_effects
    assert re.etas == ("ETA_1", "ETA_2")
    assert re.omega_matrix().ravel().tolist() == pytest.approx([0.09, 0.012, 0.012, 0.04], rel=1e-9)


_IOV = (
    b'<RandomVariable symbId="IOV_CL"><ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="OCC"/>'
    b'</ct:VariabilityReference><Distribution><po:ProbOnto name="Normal2">'
    b'<po:Parameter name="mean"><ct:Assign><ct:Real>0</ct:Real></ct:Assign></po:Parameter>'
    b'<po:Parameter name="var"><ct:Assign><ct:Real>0.05</ct:Real></ct:Assign></po:Parameter>'
    b"</po:ProbOnto></Distribution></RandomVariable>"
)
_OCC_LEVEL = (
    b'<Level symbId="ID"/><Level symbId="OCC"><ParentLevel><ct:SymbRef symbIdRef="ID"/></ParentLevel></Level>'
)
_OCC_DATASET = (
    b'<ExternalDataSet oid="data"><ColumnMapping><ds:ColumnRef columnIdRef="OCC"/>'
    b'<ct:SymbRef blkIdRef="vm" symbIdRef="OCC"/></ColumnMapping>'
    b'<ds:DataSet><ds:Definition><ds:Column columnId="ID" columnType="id" valueType="int" columnNum="1"/>'
    b'<ds:Column columnId="OCC" columnType="occasion" valueType="int" columnNum="2"/></ds:Definition>'
    b'<ds:ExternalFile oid="f"><ds:path>data.csv</ds:path></ds:ExternalFile></ds:DataSet></ExternalDataSet>'
)


def _iov_model(with_column: bool) -> bytes:
    raw = _fixture()
    cl = b'<math:Uniop op="exp"><ct:SymbRef symbIdRef="ETA_CL"/></math:Uniop>'
    assert cl in raw
    iov_cl = (
        b'<math:Uniop op="exp"><math:Binop op="plus"><ct:SymbRef symbIdRef="ETA_CL"/>'
        b'<ct:SymbRef symbIdRef="IOV_CL"/></math:Binop></math:Uniop>'
    )
    edited = (
        raw.replace(_LEVEL, _OCC_LEVEL)
        .replace(b'<IndividualParameter symbId="CL">', _IOV + b'<IndividualParameter symbId="CL">')
        .replace(cl, iov_cl)
    )
    if with_column:
        edited = edited.replace(b"</Interventions>", b"</Interventions>" + _OCC_DATASET)
    return edited


def test_occasions_follow_the_column_the_dataset_maps_to_the_occasion_level() -> None:
    conv = convert(_iov_model(True), source="iov.xml")
    re = conv.card.random_effects
    assert re.occasion_covariate == "OCC" and "OCC" in {c.name for c in conv.card.covariates}
    assert re.occasions[0].parameter == "IOV_CL" and re.occasions[0].variance == 0.05
    model = load_model(conv.sbml, conv.card)
    twin = bind_regimen(model, (ReferenceDose(route="iv-bolus", amount=100.0, time_h=0.0),), {"WT": 70})
    occ = CovariateSeries("OCC", (0.0, 4.0, 24.0), (1.0, 1.0, 2.0))  # occasion 2 from just after 4 h
    twin = dataclasses.replace(twin, covariates={**twin.covariates, "OCC": occ})
    etas = {"IOV_CL_occ1": 0.2, "IOV_CL_occ2": -0.3}
    times = [2.0, 4.0, 10.0]
    pred = simulate(twin, times, etas).values["Y"]
    k1, k2, v = 4 * math.exp(0.2) / 30, 4 * math.exp(-0.3) / 30, 30.0  # CL = POP_CL exp(ETA_CL + IOV)
    c4 = 100 / v * math.exp(-k1 * 4)
    expected = [100 / v * math.exp(-k1 * 2), c4, c4 * math.exp(-k2 * 6)]
    assert list(pred) == pytest.approx(expected, rel=1e-6)


def test_without_an_occasion_column_occasions_switch_at_the_doses_with_a_warning() -> None:
    conv = convert(_iov_model(False), source="iov-doses.xml")
    assert conv.card.random_effects.occasion_covariate is None and conv.card.random_effects.occasions
    assert any("switch at each dose time" in w for w in conv.warnings)


def test_a_symbol_declared_twice_in_a_block_is_refused() -> None:
    raw = _fixture()
    twice = raw.replace(_POP_V, _POP_V + _POP_V)
    with pytest.raises(PharmMLError, match="symbol 'POP_V' declared twice in block 'pm'"):
        convert(twice, source="twice.xml")


@pytest.mark.parametrize(
    "name",
    [
        "examples_0_9/bayesianHierarchical/example3422.xml",
        "examples_0_8_1/bayesianHierarchical/example3422.xml",
    ],
)
def test_bayesian_priors_of_the_corpus_give_values(name: str) -> None:
    # POP_K_V: an empirical (RandomSample) prior, a vector of 2 selected by cell; TAU_K ~ Gamma1
    # at the "pop" level, so its prior's mean is the typical value and SD_ADD = sqrt(1/TAU) a
    # constant: an additive error
    path = PHARMML_CORPUS / name
    require_corpus(path)
    conv = convert(path.read_bytes(), source=str(path))
    (err,) = conv.card.residual_error
    assert err.model == "additive" and err.additive_sd > 0
    dose = ReferenceDose(route=conv.card.dosing[0].route, amount=100, time_h=0)
    pred = simulate(bind_regimen(load_model(conv.sbml, conv.card), (dose,), {}), [1.0, 6.0])
    assert all(np.all(np.isfinite(v)) for v in pred.values.values())


_PHI = (
    b'<IndividualParameter symbId="PHI"><ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/>'
    b'</ct:VariabilityReference><Distribution><po:ProbOnto name="MultivariateNormal1">'
    b'<po:Parameter name="mean"><ct:Assign><ct:Vector><ct:VectorElements><ct:SymbRef symbIdRef="POP_CL"/>'
    b'<ct:SymbRef symbIdRef="POP_V"/></ct:VectorElements></ct:Vector></ct:Assign></po:Parameter>'
    b'<po:Parameter name="covarianceMatrix"><ct:Assign><ct:Matrix><ct:MatrixRow><ct:Real>0.25</ct:Real>'
    b"</ct:MatrixRow><ct:MatrixRow><ct:Real>0.5</ct:Real><ct:Real>4</ct:Real></ct:MatrixRow></ct:Matrix>"
    b"</ct:Assign></po:Parameter></po:ProbOnto></Distribution></IndividualParameter>"
)


def _phi(k: int) -> bytes:
    return (
        f'<ct:Assign><ct:VectorSelector><ct:SymbRef symbIdRef="PHI"/><ct:Cell><ct:Int>{k}</ct:Int></ct:Cell>'
        "</ct:VectorSelector></ct:Assign>"
    ).encode()


def test_an_individual_parameter_distributed_as_a_multivariate_normal_is_a_vector_of_cells() -> None:
    # PHI ~ MVN((POP_CL, POP_V), lower-triangular covariance): CL = PHI[1], V = PHI[2]; cell k is
    # its mean plus an ETA of its own, the ETAs' Omega the covariance
    raw = _fixture()
    start = raw.index(b'<IndividualParameter symbId="CL">')
    end = raw.index(b'<RandomVariable symbId="EPS">')
    cells = (
        b'<IndividualParameter symbId="CL">' + _phi(1) + b"</IndividualParameter>"
        b'<IndividualParameter symbId="V">' + _phi(2) + b"</IndividualParameter>"
    )
    conv = convert(raw[:start] + _PHI + cells + raw[end:], source="mvn-individual.xml")
    re = conv.card.random_effects
    assert re.etas == ("ETA_CL", "ETA_V", "eta_PHI_1", "eta_PHI_2")
    assert re.omega_matrix()[2:, 2:].ravel().tolist() == [0.25, 0.5, 0.5, 4.0]
    twin = bind_regimen(
        load_model(conv.sbml, conv.card), (ReferenceDose(route="iv-bolus", amount=100.0, time_h=0.0),), {}
    )
    pred = simulate(twin, [2.0], {"eta_PHI_1": 0.5, "eta_PHI_2": -2.0}).values["Y"]
    cl, v = 4.0 + 0.5, 30.0 - 2.0
    assert pred[0] == pytest.approx(100 / v * math.exp(-cl / v * 2.0), rel=1e-6)


def test_a_design_parameter_with_a_value_is_a_constant() -> None:
    design = b'<DesignParameter symbId="POP_V"><ct:Assign><ct:Real>25</ct:Real></ct:Assign></DesignParameter>'
    conv = convert(_fixture().replace(_POP_V_ESTIMATE, b"").replace(_POP_V, design), source="design.xml")
    assert _v(conv.sbml, conv.card) == pytest.approx(25.0)
    no_value = _fixture().replace(_POP_V_ESTIMATE, b"").replace(_POP_V, b'<DesignParameter symbId="POP_V"/>')
    with pytest.raises(PharmMLError, match="'POP_V' has no value"):
        convert(no_value, source="design-no-value.xml")


_WT = b'<Covariate symbId="WT"><Continuous/></Covariate>'
_SEX = (
    b'<Covariate symbId="SEX"><Categorical><Category catId="female"/><Category catId="male"/>'
    b'<Distribution><po:ProbOnto name="CategoricalNonordered1"><po:Parameter name="probability">'
    b"<ct:Assign><ct:Vector><ct:VectorElements><ct:Real>0.4</ct:Real><ct:Real>0.6</ct:Real>"
    b"</ct:VectorElements></ct:Vector></ct:Assign></po:Parameter></po:ProbOnto></Distribution>"
    b"</Categorical></Covariate>"
)


def test_a_categorical_covariate_keeps_its_categories_and_ignores_its_distribution() -> None:
    raw = _fixture()
    assert _WT in raw
    conv = convert(raw.replace(_WT, _WT + _SEX), source="categorical.xml")
    sex = next(c for c in conv.card.covariates if c.name == "SEX")
    assert sex.source.patient_field == "sex" and sex.source.categories == {"female": 0.0, "male": 1.0}
    assert any("distribution of covariate SEX is ignored" in w for w in conv.warnings)
    bare = raw.replace(_WT, _WT + b'<Covariate symbId="DSD"><Categorical/></Covariate>')
    conv = convert(bare, source="bare-categorical.xml")
    assert "DSD" in {c.name for c in conv.card.covariates}
    assert any("DSD lists no categories" in w for w in conv.warnings)


def test_a_random_variable_with_a_mean_between_subjects_is_its_mean_plus_a_random_effect() -> None:
    # PharmML 0.6 drafts: V_RV ~ N(POP_V, 0.04) between subjects (in a <PDF> wrapper), V = V_RV
    raw = _fixture()
    start = raw.index(b'<IndividualParameter symbId="V">')
    end = raw.index(b"</IndividualParameter>", start) + len(b"</IndividualParameter>")
    rv = (
        b'<RandomVariable symbId="V_RV"><ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/>'
        b'</ct:VariabilityReference><PDF><NormalDistribution xmlns="http://www.uncertml.org/3.0">'
        b'<mean><var varId="POP_V"/></mean><variance><rVal>0.04</rVal></variance></NormalDistribution></PDF>'
        b'</RandomVariable><IndividualParameter symbId="V"><ct:Assign><ct:SymbRef symbIdRef="V_RV"/>'
        b"</ct:Assign></IndividualParameter>"
    )
    conv = convert(raw[:start] + rv + raw[end:], source="mean-rv.xml")
    re = conv.card.random_effects
    assert "eta_V_RV" in re.etas
    assert re.omega_matrix()[re.etas.index("eta_V_RV"), re.etas.index("eta_V_RV")] == pytest.approx(0.04)
    twin = bind_regimen(
        load_model(conv.sbml, conv.card), (ReferenceDose(route="iv-bolus", amount=100.0, time_h=0.0),), {}
    )
    pred = simulate(twin, [1e-9], {"eta_V_RV": 5.0}).values["Y"]
    assert pred[0] == pytest.approx(100 / 35.0, rel=1e-6)  # V = POP_V + eta = 30 + 5
    untyped = rv.replace(
        b'<NormalDistribution xmlns="http://www.uncertml.org/3.0"><mean><var varId="POP_V"/></mean><variance>'
        b"<rVal>0.04</rVal></variance></NormalDistribution>",
        b"<DistributionName>Normal</DistributionName><Parameter1><ct:Real>30</ct:Real></Parameter1>",
    )
    assert untyped != rv
    with pytest.raises(PharmMLError, match="by <DistributionName> and untyped parameters is not supported"):
        convert(raw[:start] + untyped + raw[end:], source="untyped.xml")


def test_a_vector_initial_estimate_makes_a_bare_parameter_a_vector_of_cells() -> None:
    raw = _fixture()
    estimate = (
        b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="THETA"/><InitialEstimate><ct:Vector>'
        b"<ct:VectorElements><ct:Real>4</ct:Real><ct:Real>27</ct:Real></ct:VectorElements></ct:Vector>"
        b"</InitialEstimate></ParameterEstimation>"
    )
    edited = (
        raw.replace(_POP_V, b'<PopulationParameter symbId="THETA"/>')
        .replace(_POP_V_ESTIMATE, estimate)
        .replace(b'<ct:SymbRef symbIdRef="POP_V"/>', _theta(2))
    )
    assert _v(*_sbml_card(convert(edited, source="vector-estimate.xml"))) == pytest.approx(27.0)


def test_an_empirical_prior_of_the_corpus_gives_each_cell_its_column_mean() -> None:
    # example3422: POP_K_V ~ RandomSample (rows of log K, log V draws); POP_K = exp(POP_K_V[1]).
    # The error SD (sqrt(1/TAU), TAU with a random effect) has no card form: a constant replaces it.
    path = PHARMML_CORPUS / "examples_0_9/bayesianHierarchical/example3422.xml"
    require_corpus(path)
    raw = path.read_bytes()
    block = raw[raw.index(b'name="RandomSample"') : raw.index(b"</ds:Table>")]
    rows = re.findall(rb"<ds:Row>\s*<ct:Real>([^<]+)</ct:Real>\s*<ct:Real>([^<]+)</ct:Real>", block)
    assert len(rows) == 10
    error = re.compile(rb'(<ErrorModel>\s*<ct:Assign>\s*)<ct:SymbRef symbIdRef="SD_ADD"[^>]*/>')
    conv = convert(error.sub(rb"\1<ct:Real>0.1</ct:Real>", raw), source=str(path))
    sbml = libsbml.readSBMLFromString(conv.sbml).getModel()
    for k in (1, 2):
        expected = sum(float(r[k - 1]) for r in rows) / len(rows)
        assert sbml.getParameter(f"POP_K_V_{k}").getValue() == pytest.approx(expected, rel=1e-12)
