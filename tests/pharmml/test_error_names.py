"""Warnings where an error model's names disagree with its body (DDMoRe's meropenem, DDMODEL00000213:
``combinedError2(additive=RUV_ADD, proportional=RUV_PROP)`` whose body is
``sqrt(proportional^2 + additive^2*f^2)``, while its NM-TRAN twin has ``W = SQRT(RUV_ADD**2 +
RUV_PROP**2*IPRED**2)``). The importer follows the body and warns; built here on the project's own
one-compartment fixture."""

from __future__ import annotations

import pytest

from registry.formats.pharmml import convert
from tests.data import PHARMML_ONECMT_IV

_FUNCTION = b"""<ct:FunctionDefinition symbId="proportionalError" symbolType="real">
        <ct:FunctionArgument symbolType="real" symbId="b"/>
        <ct:FunctionArgument symbolType="real" symbId="f"/>
        <ct:Definition>
            <ct:Assign>
                <math:Binop op="times"><ct:SymbRef symbIdRef="b"/><ct:SymbRef symbIdRef="f"/></math:Binop>
            </ct:Assign>
        </ct:Definition>
    </ct:FunctionDefinition>"""
_CALL = (
    b'<ct:SymbRef symbIdRef="proportionalError"/>\n                                '
    b'<math:FunctionArgument symbId="b"><ct:SymbRef blkIdRef="pm" symbIdRef="PROP"/></math:FunctionArgument>'
)
_DECLARED = b'<PopulationParameter symbId="PROP"/>'
_ESTIMATE = (
    b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="PROP"/>'
    b"<InitialEstimate><ct:Real>0.15</ct:Real></InitialEstimate></ParameterEstimation>"
)


def _combined(name: str, body_first: str, body_second: str) -> bytes:
    """The fixture with a two-argument error function ``name(additive, proportional, f)`` whose body
    is ``sqrt(body_first^2 + body_second^2*f^2)``, called with RUV_ADD = 0.5 and RUV_PROP = 0.2."""
    raw = PHARMML_ONECMT_IV.read_bytes()
    for part in (_FUNCTION, _CALL, _DECLARED, _ESTIMATE):
        assert part in raw

    def sq(e: bytes) -> bytes:
        return b'<math:Binop op="power">' + e + b"<ct:Int>2</ct:Int></math:Binop>"

    ref = b'<ct:SymbRef symbIdRef="%s"/>'
    function = (
        b'<ct:FunctionDefinition symbId="%s" symbolType="real">' % name.encode()
        + b"".join(
            b'<ct:FunctionArgument symbolType="real" symbId="%s"/>' % a
            for a in (b"additive", b"proportional", b"f")
        )
        + b'<ct:Definition><ct:Assign><math:Uniop op="sqrt"><math:Binop op="plus">'
        + sq(ref % body_first.encode())
        + b'<math:Binop op="times">'
        + sq(ref % body_second.encode())
        + sq(ref % b"f")
        + b"</math:Binop></math:Binop></math:Uniop></ct:Assign></ct:Definition></ct:FunctionDefinition>"
    )
    call = (
        b'<ct:SymbRef symbIdRef="%s"/>'
        % name.encode()
        + b'<math:FunctionArgument symbId="additive"><ct:SymbRef blkIdRef="pm" symbIdRef="RUV_ADD"/>'
        b"</math:FunctionArgument>"
        b'<math:FunctionArgument symbId="proportional"><ct:SymbRef blkIdRef="pm" symbIdRef="RUV_PROP"/>'
        b"</math:FunctionArgument>"
    )
    estimates = b"".join(
        b'<ParameterEstimation><ct:SymbRef blkIdRef="pm" symbIdRef="%s"/><InitialEstimate><ct:Real>%s'
        b"</ct:Real></InitialEstimate></ParameterEstimation>" % (p, v)
        for p, v in ((b"RUV_ADD", b"0.5"), (b"RUV_PROP", b"0.2"))
    )
    return (
        raw.replace(_FUNCTION, function)
        .replace(_CALL, call)
        .replace(
            _DECLARED, b'<PopulationParameter symbId="RUV_ADD"/><PopulationParameter symbId="RUV_PROP"/>'
        )
        .replace(_ESTIMATE, estimates)
    )


def _named(warnings: tuple[str, ...] | list[str]) -> list[str]:
    return [w for w in warnings if " is named " in w]


def test_parameters_that_set_the_other_part_of_a_combined_error_are_warned() -> None:
    conv = convert(_combined("combinedError2", "proportional", "additive"), source="swapped.xml")
    (err,) = conv.card.residual_error
    # the card follows the body: RUV_PROP = 0.2 is the additive SD, RUV_ADD = 0.5 the proportional one
    assert err.model == "combined"
    assert (err.additive_sd, err.proportional_sd) == pytest.approx((0.2, 0.5), rel=1e-12)
    warned = _named(conv.warnings)
    assert len(warned) == 2
    assert any("RUV_ADD is named additive but sets the proportional part" in w for w in warned)
    assert any("RUV_PROP is named proportional but sets the additive part" in w for w in warned)
    assert all("additive SD 0.2, proportional 0.5" in w for w in warned)


def test_no_warning_when_the_names_match_the_body() -> None:
    conv = convert(_combined("combinedError2", "additive", "proportional"), source="plain.xml")
    (err,) = conv.card.residual_error
    assert err.model == "combined"
    assert (err.additive_sd, err.proportional_sd) == pytest.approx((0.5, 0.2), rel=1e-12)
    assert _named(conv.warnings) == []


@pytest.mark.parametrize("name", ["proportionalError", "additiveError"])
def test_a_function_named_for_one_part_with_a_combined_body_is_warned(name: str) -> None:
    conv = convert(_combined(name, "additive", "proportional"), source="misnamed.xml")
    assert any(f"the error function is called {name!r} but its body is combined" in w for w in conv.warnings)
