"""PharmML maths -> libsbml AST and numbers: each operator evaluated both ways agrees."""

from __future__ import annotations

import math

import libsbml
import pytest
from lxml import etree

from registry.formats.pharmml.maths import (
    Num,
    Op,
    Sym,
    Time,
    Unsupported,
    evaluate,
    parse_expr,
    to_ast,
)

CT = "http://www.pharmml.org/pharmml/0.8/CommonTypes"
MATH = "http://www.pharmml.org/pharmml/0.8/Maths"


class _Names:
    def ref(self, element):  # type: ignore[no-untyped-def]
        name = element.get("symbIdRef")
        return Time() if name == "t" else Sym(name)

    def call(self, element, name, args):  # type: ignore[no-untyped-def]
        assert name == "square"
        return Op("times", (args["x"], args["x"]))

    def select(self, element, vector, index):  # type: ignore[no-untyped-def]
        return Sym(f"{vector.get('symbIdRef')}_{index}")


def _parse(xml: str):  # type: ignore[no-untyped-def]
    el = etree.fromstring(f'<Assign xmlns="{CT}" xmlns:math="{MATH}" xmlns:ct="{CT}">{xml}</Assign>')
    return parse_expr(el, _Names())


def _libsbml_value(expr, env, t=0.0) -> float:  # type: ignore[no-untyped-def]
    """Evaluate the libsbml AST of ``expr`` with libsbml itself (through a tiny model)."""
    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    for k, v in env.items():
        p = model.createParameter()
        p.setId(k)
        p.setValue(v)
        p.setConstant(True)
    ast = to_ast(expr)
    formula = libsbml.formulaToL3String(ast)
    return (
        float(libsbml.SBMLTransforms.evaluateASTNode(libsbml.parseL3Formula(formula), model))
        if "time" not in formula and " t" not in formula
        else math.nan
    )


UNIOPS = [
    "abs",
    "exp",
    "log",
    "log10",
    "log2",
    "sqrt",
    "sin",
    "cos",
    "tan",
    "floor",
    "ceiling",
    "minus",
    "logistic",
    "logit",
    "sinh",
    "cosh",
    "tanh",
    "arcsin",
    "arctan",
]


@pytest.mark.parametrize("op", UNIOPS)
def test_uniop_matches_libsbml(op: str) -> None:
    expr = _parse(f'<math:Uniop op="{op}"><ct:SymbRef symbIdRef="x"/></math:Uniop>')
    env = {"x": 0.37}
    assert evaluate(expr, env) == pytest.approx(_libsbml_value(expr, env), rel=1e-12)


@pytest.mark.parametrize(
    "op", ["plus", "minus", "times", "divide", "power", "min", "max", "rem", "root", "logx"]
)
def test_binop_matches_libsbml(op: str) -> None:
    expr = _parse(f'<math:Binop op="{op}"><ct:SymbRef symbIdRef="a"/><ct:Real>2.5</ct:Real></math:Binop>')
    env = {"a": 7.25}
    assert evaluate(expr, env) == pytest.approx(_libsbml_value(expr, env), rel=1e-12)


def test_piecewise_with_time_and_function_call() -> None:
    expr = _parse(
        "<math:Piecewise>"
        '<math:Piece><math:FunctionCall><ct:SymbRef symbIdRef="square"/>'
        '<math:FunctionArgument symbId="x"><ct:SymbRef symbIdRef="k"/></math:FunctionArgument>'
        "</math:FunctionCall>"
        '<math:Condition><math:LogicBinop op="geq"><ct:SymbRef symbIdRef="t"/><ct:Int>2</ct:Int>'
        "</math:LogicBinop></math:Condition></math:Piece>"
        "<math:Piece><ct:Int>0</ct:Int><math:Condition><math:Otherwise/></math:Condition></math:Piece>"
        "</math:Piecewise>"
    )
    assert evaluate(expr, {"k": 3.0}, time=1.0) == 0
    assert evaluate(expr, {"k": 3.0}, time=2.0) == 9
    assert libsbml.formulaToL3String(to_ast(expr)) == "piecewise(k * k, time >= 2, 0)"


def test_symbol_named_like_a_constant_stays_a_name() -> None:
    ast = to_ast(Op("times", (Sym("e"), Num(2.0))))
    child = ast.getChild(0)  # isName(): getType() is unreliable once another SWIG libsbml is loaded
    assert child.isName() and child.getName() == "e"


@pytest.mark.parametrize(
    "xml",
    [
        '<math:Uniop op="gamma"><ct:Real>1</ct:Real></math:Uniop>',
        '<math:Delay><ct:SymbRef symbIdRef="x"/><ct:Real>1</ct:Real></math:Delay>',
        "<ct:String>abc</ct:String>",
    ],
)
def test_unsupported_maths_names_the_element(xml: str) -> None:
    with pytest.raises(Unsupported) as info:
        _parse(xml)
    assert etree.QName(info.value.element).localname in ("Uniop", "Delay", "String")
