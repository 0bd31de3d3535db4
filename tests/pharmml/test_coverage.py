"""Issue 14 PharmML items: name-vs-body error model warning."""

from __future__ import annotations

from registry.formats.pharmml import convert
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


def test_iv_routes_follow_the_iv_macro_and_clashes_are_refused() -> None:
    import pytest

    from registry.formats.pharmml import PharmMLError
    from tests.data import PHARMML_ORAL_EFFECT

    raw = PHARMML_ORAL_EFFECT.read_bytes()
    values = {"Tlag": 0.5, "ka": 1, "F": 1}
    with_iv = raw.replace(_ORAL, _ORAL + _iv(2, 1))
    conv = convert(with_iv, source="iv.xml", values=values)
    assert conv.card.dosing_for("iv-bolus")[0].target == "Ac"  # the IV macro's compartment
    assert conv.card.dosing_for("oral")[0].target != "Ac"  # the absorption depot
    clash = raw.replace(_ORAL, _ORAL + _depot(2, "Ac") + _depot(3, "Ce"))  # two bolus targets
    with pytest.raises(PharmMLError) as exc:
        convert(clash, source="clash.xml", values=values)
    assert "the card has one target per route" in str(exc.value)
