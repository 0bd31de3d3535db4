"""Refusal: every unsupported element is named with its XML path, and nothing is half-converted."""

from __future__ import annotations

import pytest

from interop.errors import ModelError
from registry.formats.pharmml import PharmMLError, convert, detect, load
from tests.data import PHARMML_ADVAN1, PHARMML_FIXTURES, PHARMML_ONECMT_IV


def _refuse(name: str) -> PharmMLError:
    path = PHARMML_FIXTURES / name
    with pytest.raises(PharmMLError) as info:
        load(path.read_bytes(), source=str(path))
    assert isinstance(info.value, ModelError)
    assert str(path) in str(info.value)
    return info.value


def test_categorical_observation_model_is_refused_with_its_path() -> None:
    err = _refuse("bad_categorical_obs_0.8.xml")
    (problem,) = err.problems
    assert problem.path == (
        "/PharmML/ModelDefinition/ObservationModel[@blkId='om2']/Discrete/CategoricalData"
    )
    assert problem.line == 125
    assert "categorical observation models are not supported" in str(err)
    assert problem.path in str(err)


def test_unknown_namespace_version_is_refused() -> None:
    raw = (PHARMML_FIXTURES / "bad_unknown_version_1.0.xml").read_bytes()
    assert detect(raw)  # it is PharmML, of a version we do not read
    err = _refuse("bad_unknown_version_1.0.xml")
    assert err.problems[0].path == "/PharmML"
    assert "unknown PharmML namespace version 1.0" in str(err)


def test_mixed_namespace_versions_name_the_element() -> None:
    raw = (
        PHARMML_ONECMT_IV.read_bytes()
        .replace(
            b'<Standard symbId="Y">',
            b'<Standard symbId="Y" xmlns:m9="http://www.pharmml.org/pharmml/0.9/Maths">',
            1,
        )
        .replace(b"<math:FunctionCall>", b"<m9:FunctionCall>", 1)
        .replace(b"</math:FunctionCall>", b"</m9:FunctionCall>", 1)
    )
    with pytest.raises(PharmMLError) as info:
        convert(raw)
    (problem,) = info.value.problems
    assert problem.path.endswith("Standard[@symbId='Y']/ErrorModel/Assign/FunctionCall")
    assert "PharmML 0.9 inside a PharmML 0.8 document" in problem.message


def test_dangling_symbol_reference_is_refused_with_its_path() -> None:
    err = _refuse("bad_dangling_ref_0.8.xml")
    (problem,) = err.problems
    assert problem.path == (
        "/PharmML/ModelDefinition/ParameterModel[@blkId='pm']/IndividualParameter[@symbId='CL']"
        "/Assign/Binop/Binop/SymbRef"
    )
    assert "dangling reference: no symbol 'POP_CLX' in block 'pm'" in problem.message


def test_every_problem_is_listed_at_once() -> None:
    err = _refuse("bad_several_0.8.xml")
    messages = [str(p) for p in err.problems]
    assert len(messages) == 3, messages
    assert "PopulationParameter[@symbId='POP_V']/Distribution" in messages[0]
    assert "prior distribution 'Weibull1' is not supported" in messages[0]
    assert "DerivativeVariable[@symbId='A']/Assign/Uniop/Binop/Delay" in messages[1]
    assert "delay differential equations" in messages[1]
    assert "Discrete/CountData" in messages[2] and "count observation" in messages[2]
    assert "(3 problems)" in str(err)


def test_missing_values_are_refused_until_given() -> None:
    with pytest.raises(PharmMLError, match=r"PopulationParameter\[@symbId='CL'\].*has no value"):
        load(PHARMML_ADVAN1.read_bytes())
    conv = convert(PHARMML_ADVAN1.read_bytes(), values={"CL": 1.0})
    assert 'id="CL"' in conv.sbml and 'value="1"' in conv.sbml


def test_units_that_do_not_fit_are_reported_at_the_element() -> None:
    raw = PHARMML_ONECMT_IV.read_bytes()
    with pytest.raises(PharmMLError) as info:
        convert(raw, units={"Y": "furlong/fortnight", "dose": "mg/L"})
    paths = sorted(p.path for p in info.value.problems)
    assert paths == [
        "/PharmML/ModelDefinition/ObservationModel[@blkId='om']/ContinuousData/Standard[@symbId='Y']",
        "/PharmML/ModelDefinition/StructuralModel[@blkId='sm']/DerivativeVariable[@symbId='A']",
    ]


def test_external_entities_are_not_resolved(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    raw = (
        PHARMML_ONECMT_IV.read_bytes()
        .replace(
            b"<PharmML ",
            f'<!DOCTYPE PharmML [<!ENTITY x SYSTEM "file://{secret}">]>\n<PharmML '.encode(),
            1,
        )
        .replace(b"One-compartment IV test model", b"&x;")
    )
    with pytest.raises(PharmMLError) as info:
        convert(raw)
    assert "DOCTYPE" in str(info.value)
    assert "TOP-SECRET" not in str(info.value)


def test_not_pharmml() -> None:
    assert not detect(b"<sbml xmlns='http://www.sbml.org/sbml/level3/version2/core'/>")
    assert not detect(b"not xml at all")
    assert detect(PHARMML_ONECMT_IV.read_bytes())
    with pytest.raises(PharmMLError, match="not a PharmML document"):
        load(b"<sbml xmlns='http://www.sbml.org/sbml/level3/version2/core'/>")
    with pytest.raises(PharmMLError, match="not well-formed"):
        load(b"<PharmML")
