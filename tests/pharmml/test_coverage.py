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
