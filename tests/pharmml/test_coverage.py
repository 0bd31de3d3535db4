"""Issue 14 PharmML items: name-vs-body error model warning, Monolix depots, IV routes, priors."""

from __future__ import annotations

import math
import re

import libsbml
import pytest
import roadrunner

from interop.twin import bind_regimen, load_model, simulate
from registry.formats.pharmml import PharmMLError, convert
from tests.data import PHARMML_ONECMT_IV

_PROP_BODY = b'<math:Binop op="times"><ct:SymbRef symbIdRef="b"/><ct:SymbRef symbIdRef="f"/></math:Binop>'


def test_error_function_named_proportional_with_an_additive_body_is_warned() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    assert _PROP_BODY in raw
    swapped = raw.replace(_PROP_BODY, b'<ct:SymbRef symbIdRef="b"/>')
    conv = convert(swapped, source="swapped.xml")
    assert conv.card.residual_error[0].model == "additive"  # the body decides
    assert any("called 'proportionalError' but its body is additive" in w for w in conv.warnings)
    plain = convert(raw, source="plain.xml")
    assert not any("but its body is" in w for w in plain.warnings)


_ORAL = (
    b'<Oral>\n                    <Value argument="adm"><ct:Int>1</ct:Int></Value>\n'
    b'                    <Value argument="cmt"><ct:Int>1</ct:Int></Value>\n'
    b'                    <Value><ct:SymbRef blkIdRef="pm1" symbIdRef="ka"/></Value>\n'
    b'                    <Value><ct:SymbRef blkIdRef="pm1" symbIdRef="Tlag"/></Value>\n'
    b'                    <Value argument="p"><ct:SymbRef blkIdRef="pm1" symbIdRef="F"/></Value>\n'
    b"                </Oral>"
)


def _iv(adm: int, cmt: int) -> bytes:
    return (
        f'<IV><Value argument="adm"><ct:Int>{adm}</ct:Int></Value>'
        f'<Value argument="cmt"><ct:Int>{cmt}</ct:Int></Value></IV>'
    ).encode()


def _depot(adm: int, target: str) -> bytes:
    return (
        f'<Depot><Value argument="adm"><ct:Int>{adm}</ct:Int></Value>'
        f'<Value argument="target"><ct:SymbRef symbIdRef="{target}"/></Value></Depot>'
    ).encode()


def test_monolix_depot_without_ka_is_a_bolus_into_its_target() -> None:
    from tests.data import PHARMML_ORAL_EFFECT

    raw = PHARMML_ORAL_EFFECT.read_bytes()
    assert _ORAL in raw
    depot = (
        b'<Depot><Value argument="adm"><ct:Int>1</ct:Int></Value>'
        b'<Value argument="target"><ct:SymbRef symbIdRef="Ac"/></Value></Depot>'
    )
    conv = convert(raw.replace(_ORAL, depot), source="depot.xml", values={"Tlag": 0.5, "ka": 1, "F": 1})
    bolus = conv.card.dosing_for("iv-bolus")
    assert [d.target for d in bolus] == ["Ac"]
    assert not conv.card.dosing_for("oral")


def test_iv_routes_follow_the_iv_macro_and_one_id_for_two_places_is_refused() -> None:
    import pytest

    from registry.formats.pharmml import PharmMLError
    from tests.data import PHARMML_ORAL_EFFECT

    raw = PHARMML_ORAL_EFFECT.read_bytes()
    values = {"Tlag": 0.5, "ka": 1, "F": 1}
    with_iv = raw.replace(_ORAL, _ORAL + _iv(2, 1))
    conv = convert(with_iv, source="iv.xml", values=values)
    assert conv.card.dosing_for("iv-bolus")[0].target == "Ac"  # the IV macro's compartment
    assert conv.card.dosing_for("oral")[0].target != "Ac"  # the absorption depot
    two = raw.replace(_ORAL, _ORAL + _depot(2, "Ac") + _depot(3, "Ce"))  # two bolus places: adm 2, 3
    card = convert(two, source="two.xml", values=values).card
    assert [(d.target, d.adm) for d in card.dosing if d.route == "iv-bolus"] == [("Ac", 2), ("Ce", 3)]
    clash = raw.replace(_ORAL, _ORAL + _depot(2, "Ac") + _depot(2, "Ce"))  # one id, two places
    with pytest.raises(PharmMLError) as exc:
        convert(clash, source="clash.xml", values=values)
    assert "iv-bolus administration into Ce: administration 2 also names the one into Ac" in str(exc.value)


_POP_V = b'<PopulationParameter symbId="POP_V"/>'
_POP_V_ESTIMATE = (
    b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="POP_V"/>'
    b"<InitialEstimate><ct:Real>30</ct:Real></InitialEstimate></ParameterEstimation>"
)


def _prior(dist: str) -> bytes:
    return (
        b'<PopulationParameter symbId="POP_V"><Distribution>'
        + dist.encode()
        + b"</Distribution></PopulationParameter>"
    )


def _value(sbml: str, pid: str) -> float:
    m = re.search(rf'<parameter id="{pid}" value="([^"]+)"', sbml)
    assert m is not None, pid
    return float(m.group(1))


def test_a_prior_gives_the_typical_value_its_initial_estimate_else_its_mean() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    assert _POP_V in raw and _POP_V_ESTIMATE in raw
    lognormal = _prior(
        '<po:ProbOnto xmlns:po="http://www.pharmml.org/probonto/ProbOnto" name="LogNormal1">'
        '<po:Parameter name="meanLog"><ct:Assign><ct:Real>3.4</ct:Real></ct:Assign></po:Parameter>'
        '<po:Parameter name="stdevLog"><ct:Assign><ct:Real>0.5</ct:Real></ct:Assign></po:Parameter>'
        "</po:ProbOnto>"
    )
    with_estimate = convert(raw.replace(_POP_V, lognormal), source="prior.xml")
    assert _value(with_estimate.sbml, "POP_V") == 30.0  # the estimation step's initial estimate
    no_estimate = raw.replace(_POP_V, lognormal).replace(_POP_V_ESTIMATE, b"")
    conv = convert(no_estimate, source="prior.xml")
    assert math.isclose(_value_or_rule(conv.sbml), math.exp(3.4 + 0.5**2 / 2), rel_tol=1e-12)
    gamma = _prior(
        '<po:ProbOnto xmlns:po="http://www.pharmml.org/probonto/ProbOnto" name="Gamma1">'
        '<po:Parameter name="shape"><ct:Assign><ct:Real>4</ct:Real></ct:Assign></po:Parameter>'
        '<po:Parameter name="scale"><ct:Assign><ct:Real>7.5</ct:Real></ct:Assign></po:Parameter>'
        "</po:ProbOnto>"
    )
    conv = convert(raw.replace(_POP_V, gamma).replace(_POP_V_ESTIMATE, b""), source="gamma.xml")
    assert _value_or_rule(conv.sbml) == 30.0  # shape * scale


def _value_or_rule(sbml: str) -> float:
    """POP_V as the compiled model sees it (a value, or a rule of constants)."""
    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    p = model.getParameter("POP_V")
    if p.isSetValue():
        return float(p.getValue())
    return float(roadrunner.RoadRunner(sbml)["POP_V"])


def test_a_wrong_block_reference_takes_the_one_symbol_of_that_name_with_a_warning() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    wrong = raw.replace(_POP_V_ESTIMATE, _POP_V_ESTIMATE.replace(b'blkIdRef="pm"', b'blkIdRef="om"'))
    assert wrong != raw
    conv = convert(wrong, source="wrong-block.xml")
    assert _value(conv.sbml, "POP_V") == 30.0
    assert any(
        "'POP_V' referred to in block 'om' is the one declared in block 'pm'" in w for w in conv.warnings
    )


_IC = b"<ct:InitialValue><ct:Assign><ct:Real>0</ct:Real></ct:Assign></ct:InitialValue>"
_T0 = b'<ct:Variable symbId="t0" symbolType="real"><ct:Assign><ct:Real>0</ct:Real></ct:Assign></ct:Variable>'
_CLOCK = (
    b'<ct:DerivativeVariable symbId="S" symbolType="real"><ct:Assign><ct:Real>2</ct:Real></ct:Assign>'
    b"<ct:InitialCondition><ct:InitialValue><ct:Assign><ct:Real>-1</ct:Real></ct:Assign></ct:InitialValue>"
    b"<ct:InitialTime><ct:Assign><ct:Real>-3</ct:Real></ct:Assign></ct:InitialTime></ct:InitialCondition>"
    b"</ct:DerivativeVariable>"
)


def test_initial_time_may_be_a_symbol_assigned_0_or_shift_a_constant_derivative() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    assert _IC in raw
    t0_ref = (
        b'<ct:InitialTime><ct:Assign><ct:SymbRef blkIdRef="sm" symbIdRef="t0"/></ct:Assign></ct:InitialTime>'
    )
    with_t0 = raw.replace(_IC, _IC + t0_ref).replace(
        b'<StructuralModel blkId="sm">', b'<StructuralModel blkId="sm">' + _T0
    )
    plain = convert(raw, source="plain.xml")
    assert convert(with_t0, source="t0.xml").sbml.count("<rateRule") == plain.sbml.count("<rateRule")
    clock = raw.replace(b"</StructuralModel>", _CLOCK + b"</StructuralModel>")
    conv = convert(clock, source="clock.xml")
    assert _value(conv.sbml, "S") == -1.0 + 2.0 * 3.0  # S(-3) = -1, dS/dt = 2: S(0) = 5
    rate = b"<ct:Real>2</ct:Real></ct:Assign><ct:InitialCondition>"
    moving = clock.replace(rate, b'<ct:SymbRef symbIdRef="A"/></ct:Assign><ct:InitialCondition>')
    with pytest.raises(PharmMLError, match="need a constant derivative"):
        convert(moving, source="moving.xml")


_MAP_A = b'<ds:Map modelSymbol="A"/>'
_SM = b'<StructuralModel blkId="sm">'


def test_an_initial_condition_from_the_dose_variable_takes_the_doses() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    init_d = (
        raw.replace(_MAP_A, b'<ds:Map modelSymbol="D"/>')
        .replace(_SM, _SM + b'<ct:Variable symbId="D" symbolType="real"/>')
        .replace(
            _IC, b'<ct:InitialValue><ct:Assign><ct:SymbRef symbIdRef="D"/></ct:Assign></ct:InitialValue>'
        )
    )
    plain, conv = convert(raw, source="plain.xml"), convert(init_d, source="init_d.xml")
    assert [(d.route, d.target) for d in conv.card.dosing] == [(d.route, d.target) for d in plain.card.dosing]
    assert conv.trial_doses == plain.trial_doses and len(conv.trial_doses) == 3
    assert any("A = D at the start: D's doses go into A" in w for w in conv.warnings)
    times = [1.0, 6.0, 13.0, 30.0]
    preds = [
        simulate(bind_regimen(load_model(c.sbml, c.card), c.trial_doses, {}), times).values["Y"]
        for c in (plain, conv)
    ]
    assert list(preds[0]) == list(preds[1])


def test_a_dataset_column_mapped_to_an_undefined_variable_is_a_time_varying_covariate() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    dataset = (
        b'<ExternalDataSet toolName="NONMEM" oid="nm"><ColumnMapping><ds:ColumnRef columnIdRef="KIN"/>'
        b'<ct:SymbRef blkIdRef="sm" symbIdRef="KIN"/></ColumnMapping><ds:DataSet><ds:Definition>'
        b'<ds:Column columnId="KIN" columnType="reg" valueType="real" columnNum="1"/></ds:Definition>'
        b"</ds:DataSet></ExternalDataSet><Interventions>"
    )
    with_reg = raw.replace(_SM, _SM + b'<ct:Variable symbId="KIN" symbolType="real"/>').replace(
        b"<Interventions>", dataset
    )
    conv = convert(with_reg, source="regressor.xml")
    (kin,) = [c for c in conv.card.covariates if c.name == "KIN"]
    assert kin.time_varying
    assert any("KIN (a dataset column, a regressor) is a time-varying covariate" in w for w in conv.warnings)


def test_a_computed_dose_names_its_target_but_is_no_reference_dose() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    amount = b"<ct:Assign><ct:Int>100</ct:Int></ct:Assign>"
    assert raw.count(amount) == 1
    per_kg = (
        b'<ct:Assign><math:Binop op="times"><ct:Int>2</ct:Int><ct:SymbRef blkIdRef="pm" symbIdRef="POP_V"/>'
    )
    conv = convert(raw.replace(amount, per_kg + b"</math:Binop></ct:Assign>"), source="computed.xml")
    plain = convert(raw, source="plain.xml")
    assert conv.card.dosing == plain.card.dosing
    assert [d.route for d in conv.trial_doses] == ["iv-infusion"]  # the bolus (at 0 and 12 h) left out
    assert any("a dose computed from covariates is not a reference dose" in w for w in conv.warnings)


def test_a_de_element_makes_its_variable_a_state() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    clock = (
        b'<ct:Variable symbId="S"/><ct:DE type="ode"><ct:AssignStatement op="eq"><math:Diff>'
        b'<math:DiffVariable><ct:SymbRef symbIdRef="t"/></math:DiffVariable><math:DiffOpArgument><ct:Assign>'
        b'<ct:SymbRef symbIdRef="S"/></ct:Assign></math:DiffOpArgument></math:Diff><ct:Real>2</ct:Real>'
        b"</ct:AssignStatement><ct:InitialCondition><ct:InitialValue><ct:Assign><ct:Real>1</ct:Real>"
        b"</ct:Assign></ct:InitialValue></ct:InitialCondition></ct:DE>"
    )
    conv = convert(raw.replace(b"</StructuralModel>", clock + b"</StructuralModel>"), source="de.xml")
    runner = roadrunner.RoadRunner(conv.sbml)
    runner.simulate(0, 3, 4)
    assert math.isclose(runner["S"], 1 + 2 * 3, rel_tol=1e-6)  # dS/dt = 2, S(0) = 1
    pde = clock.replace(b'type="ode"', b'type="pde"')
    with pytest.raises(PharmMLError, match="only ordinary differential equations"):
        convert(raw.replace(b"</StructuralModel>", pde + b"</StructuralModel>"), source="pde.xml")


def _corr_matrix(kind: str, value: str, lower: bool) -> bytes:
    first_row = "<ct:Real>1</ct:Real>" + ("" if lower else f"<ct:Real>{value}</ct:Real>")
    return (
        f'<Correlation deviationMatrixType="{kind}">'
        '<ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/></ct:VariabilityReference>'
        "<ct:Assign><ct:Vector><ct:VectorElements>"
        '<ct:SymbRef symbIdRef="ETA_CL"/><ct:SymbRef symbIdRef="ETA_V"/>'
        "</ct:VectorElements></ct:Vector></ct:Assign>"
        f'<ct:Matrix matrixType="{"LowerTriangular" if lower else "Any"}">'
        f"<ct:MatrixRow>{first_row}</ct:MatrixRow>"
        f"<ct:MatrixRow><ct:Real>{value}</ct:Real><ct:Real>1</ct:Real></ct:MatrixRow>"
        "</ct:Matrix></Correlation>"
    ).encode()


def test_a_correlation_matrix_over_random_variables_fills_omega() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    end = b"</ParameterModel>"
    conv = convert(raw.replace(end, _corr_matrix("CorrMatrix", "0.5", True) + end), source="corr.xml")
    omega = conv.card.random_effects.omega
    assert conv.card.random_effects.etas == ("ETA_CL", "ETA_V")
    assert math.isclose(omega[0][1], 0.5 * math.sqrt(0.09 * 0.04)) and omega[0][1] == omega[1][0]
    conv = convert(raw.replace(end, _corr_matrix("CovMatrix", "0.01", False) + end), source="cov.xml")
    assert math.isclose(conv.card.random_effects.omega[1][0], 0.01)


def test_an_error_sd_b_sqrt_f_is_a_power_model() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    assert _PROP_BODY in raw
    sqrt_body = (
        b'<math:Binop op="times"><ct:SymbRef symbIdRef="b"/>'
        b'<math:Uniop op="sqrt"><ct:SymbRef symbIdRef="f"/></math:Uniop></math:Binop>'
    )
    err = convert(raw.replace(_PROP_BODY, sqrt_body), source="power.xml").card.residual_error[0]
    assert (err.model, err.additive_sd, err.proportional_sd, err.exponent) == ("power", 0.0, 0.15, 0.5)


def _cell(k: int) -> bytes:
    return (
        f'<ct:VectorSelector><ct:SymbRef symbIdRef="ETA"/><ct:Cell><ct:Int>{k}</ct:Int></ct:Cell>'
        "</ct:VectorSelector>"
    ).encode()


_MVN = (
    b'<PopulationParameter symbId="OMEGA"><ct:Assign><ct:Matrix matrixType="Any">'
    b"<ct:MatrixRow><ct:Real>0.09</ct:Real><ct:Real>0.012</ct:Real></ct:MatrixRow>"
    b"<ct:MatrixRow><ct:Real>0.012</ct:Real><ct:Real>0.04</ct:Real></ct:MatrixRow>"
    b"</ct:Matrix></ct:Assign></PopulationParameter>"
    b'<RandomVariable symbId="ETA">'
    b'<ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/></ct:VariabilityReference>'
    b'<Distribution><po:ProbOnto name="MultivariateNormal1">'
    b'<po:Parameter name="mean"><ct:Assign><ct:Vector><ct:VectorElements>'
    b"<ct:Real>0</ct:Real><ct:Real>0</ct:Real></ct:VectorElements></ct:Vector></ct:Assign></po:Parameter>"
    b'<po:Parameter name="covarianceMatrix"><ct:Assign><ct:SymbRef symbIdRef="OMEGA"/></ct:Assign>'
    b"</po:Parameter>"
    b"</po:ProbOnto></Distribution></RandomVariable>"
)


def test_a_multivariate_normal_random_effect_selected_by_cells() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    start, end = (
        raw.index(b'<RandomVariable symbId="ETA_CL">'),
        raw.index(b'<IndividualParameter symbId="CL">'),
    )
    mvn = (
        raw[:start]
        + _MVN
        + raw[end:]
        .replace(b'<ct:SymbRef symbIdRef="ETA_CL"/>', _cell(1))
        .replace(
            b'<RandomEffects><ct:SymbRef symbIdRef="ETA_V"/></RandomEffects>',
            b"<RandomEffects>" + _cell(2) + b"</RandomEffects>",
        )
    )
    conv = convert(mvn, source="mvn.xml")
    plain = convert(raw, source="plain.xml")
    assert conv.card.random_effects.etas == ("ETA_1", "ETA_2")
    assert conv.card.random_effects.omega == ((0.09, 0.012), (0.012, 0.04))
    etas = {"ETA_1": 0.3, "ETA_2": -0.2}
    times = [1.0, 6.0, 13.0, 30.0]
    ours = simulate(bind_regimen(load_model(conv.sbml, conv.card), conv.trial_doses, {}), times, etas)
    theirs = simulate(
        bind_regimen(load_model(plain.sbml, plain.card), plain.trial_doses, {}),
        times,
        {"ETA_CL": 0.3, "ETA_V": -0.2},
    )
    assert list(ours.values["Y"]) == list(theirs.values["Y"])
    with pytest.raises(PharmMLError, match="cell 3 of a vector of 2"):
        convert(mvn.replace(_cell(2), _cell(3)), source="bad-cell.xml")


_STANDARD_Y_START = b'<Standard symbId="Y">'


def test_a_general_observation_given_as_a_normal_distribution() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    start = raw.index(_STANDARD_Y_START)
    end = raw.index(b"</Standard>", start) + len(b"</Standard>")
    general = (
        b'<General symbId="Y"><Distribution><po:ProbOnto name="Normal1">'
        b'<po:Parameter name="mean"><ct:Assign><ct:SymbRef blkIdRef="sm" symbIdRef="C"/></ct:Assign>'
        b"</po:Parameter>"
        b'<po:Parameter name="stdev"><ct:Assign><math:Binop op="times">'
        b'<ct:SymbRef blkIdRef="pm" symbIdRef="PROP"/><ct:SymbRef blkIdRef="sm" symbIdRef="C"/>'
        b"</math:Binop></ct:Assign></po:Parameter>"
        b"</po:ProbOnto></Distribution></General>"
    )
    conv = convert(raw[:start] + general + raw[end:], source="general.xml")
    plain = convert(raw, source="plain.xml")
    assert conv.card.residual_error == plain.card.residual_error  # proportional, SD 0.15
    assert conv.card.observables[0].sbml == "C"


_V_LOGNORMAL = (
    b'<ct:VariabilityReference><ct:SymbRef blkIdRef="vm" symbIdRef="ID"/></ct:VariabilityReference>'
    b'<Distribution><po:ProbOnto name="LogNormal1">'
    b'<po:Parameter name="mean"><ct:Assign><ct:SymbRef symbIdRef="POP_V"/></ct:Assign></po:Parameter>'
    b'<po:Parameter name="stdev"><ct:Assign><ct:Real>0.2</ct:Real></ct:Assign></po:Parameter>'
    b"</po:ProbOnto></Distribution>"
)


def test_an_individual_parameter_given_as_a_distribution_gets_its_own_random_effect() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    start = raw.index(b"<StructuredModel>", raw.index(b'<IndividualParameter symbId="V">'))
    end = raw.index(b"</StructuredModel>", start) + len(b"</StructuredModel>")
    assert b'symbIdRef="ETA_V"' in raw[start:end]
    conv = convert(raw[:start] + _V_LOGNORMAL + raw[end:], source="distributed.xml")
    re = conv.card.random_effects
    assert "eta_V" in re.etas and math.isclose(
        re.omega_matrix()[re.etas.index("eta_V")][re.etas.index("eta_V")], 0.04
    )
    plain = convert(raw, source="plain.xml")
    times = [1.0, 6.0, 30.0]
    ours = simulate(
        bind_regimen(load_model(conv.sbml, conv.card), conv.trial_doses, {}), times, {"eta_V": 0.1}
    )
    theirs = simulate(
        bind_regimen(load_model(plain.sbml, plain.card), plain.trial_doses, {}), times, {"ETA_V": 0.1}
    )
    assert list(ours.values["Y"]) == pytest.approx(list(theirs.values["Y"]), rel=1e-9)  # V = POP_V * exp(eta)


def test_a_level_nested_under_a_level_without_random_effects_is_the_subjects_level() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    top = b'<Level symbId="ID"/>'
    assert top in raw
    parent = b'<ParentLevel><ct:SymbRef symbIdRef="pop"/></ParentLevel>'
    nested = raw.replace(top, b'<Level symbId="pop"/><Level symbId="ID">' + parent + b"</Level>")
    conv = convert(nested, source="nested.xml")
    assert conv.card.random_effects.etas == ("ETA_CL", "ETA_V") and not conv.card.random_effects.occasions


def test_normal3_is_given_by_its_precision() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    normal2 = b'<po:ProbOnto name="Normal2">'
    var_cl = (
        b'<po:Parameter name="var"><ct:Assign><ct:SymbRef symbIdRef="OMEGA_CL"/></ct:Assign></po:Parameter>'
    )
    assert normal2 in raw and var_cl in raw
    precision = b'<po:Parameter name="precision"><ct:Assign><ct:Real>4</ct:Real></ct:Assign></po:Parameter>'
    start = raw.index(normal2)
    changed = raw[:start] + raw[start:].replace(normal2, b'<po:ProbOnto name="Normal3">', 1).replace(
        var_cl, precision, 1
    )
    re = convert(changed, source="normal3.xml").card.random_effects
    assert re.omega_matrix()[re.etas.index("ETA_CL")][re.etas.index("ETA_CL")] == 0.25


def test_a_covariance_matrix_given_as_the_estimation_steps_initial_estimate() -> None:
    """DDMoRe's MDL writes a multivariate normal's covariance as a parameter whose value is a
    (lower-triangular) Matrix in the estimation step, and cells as <Cell><Assign><Int>k</Int>..."""
    raw = PHARMML_ONECMT_IV.read_bytes()
    start, end = (
        raw.index(b'<RandomVariable symbId="ETA_CL">'),
        raw.index(b'<IndividualParameter symbId="CL">'),
    )
    matrix = _MVN[_MVN.index(b"<ct:Matrix") : _MVN.index(b"</ct:Matrix>") + len(b"</ct:Matrix>")]
    declared = _MVN.replace(b"<ct:Assign>" + matrix + b"</ct:Assign>", b"")
    assert b"<ct:Matrix" not in declared

    def cell(k: int) -> bytes:
        return (
            _cell(k)
            .replace(b"<ct:Cell>", b"<ct:Cell><ct:Assign>")
            .replace(b"</ct:Cell>", b"</ct:Assign></ct:Cell>")
        )

    mvn = (
        raw[:start]
        + declared
        + raw[end:]
        .replace(b'<ct:SymbRef symbIdRef="ETA_CL"/>', cell(1))
        .replace(
            b'<RandomEffects><ct:SymbRef symbIdRef="ETA_V"/></RandomEffects>',
            b"<RandomEffects>" + cell(2) + b"</RandomEffects>",
        )
    )
    step = b"</ParametersToEstimate>"
    estimate = (
        b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="OMEGA"/><InitialEstimate>'
        + matrix
        + b"</InitialEstimate></ParameterEstimation>"
    )
    conv = convert(mvn.replace(step, estimate + step), source="estimated-matrix.xml")
    assert conv.card.random_effects.omega == ((0.09, 0.012), (0.012, 0.04))
    with pytest.raises(PharmMLError, match="expected a Matrix"):
        convert(mvn, source="no-matrix.xml")  # declared without a value anywhere
