"""Sympy expressions (what pharmpy's statements become) as SBML Level 3 infix formulas.

Written by hand because neither sympy nor libsbml prints one as the other: sympy's MathML printer
writes presentation/content MathML that libsbml does not read as SBML math, and libsbml parses
infix text. The printer covers what NM-TRAN code can say (arithmetic, powers, EXP/LOG/SQRT/ABS,
IF/ELSE as ``Piecewise``, comparisons, .AND./.OR./.NOT.) and raises :class:`Unprintable` on
anything else, so a model never converts with a function silently changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import libsbml
import sympy

__all__ = ["Unprintable", "to_ast", "to_formula"]


class Unprintable(ValueError):
    """An expression uses a function SBML math has no equivalent for here."""


_FUNCS = {
    sympy.exp: "exp",
    sympy.log: "ln",  # libsbml's infix log() is base 10
    sympy.Abs: "abs",
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.floor: "floor",
    sympy.ceiling: "ceil",
}
_REL = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Lt: "<", sympy.Le: "<=", sympy.Gt: ">", sympy.Ge: ">="}


def _num(x: sympy.Expr) -> str:
    value = float(x)
    text = repr(value)
    return f"({text})" if value < 0 else text


def to_formula(expr: sympy.Basic, names: Mapping[str, str] | Callable[[str], str]) -> str:
    """Infix text of ``expr``; ``names`` maps sympy symbol (and state function) names to SBML ids."""
    rename = names if callable(names) else (lambda n: names.get(n, n))

    def go(e: sympy.Basic) -> str:
        if e is sympy.true:
            return "true"
        if e is sympy.false:
            return "false"
        if isinstance(e, sympy.Symbol):
            return rename(e.name)
        if isinstance(e, sympy.core.function.AppliedUndef):  # a state: A_CENTRAL(t)
            return rename(type(e).__name__)
        if e.is_Number:
            return _num(e)  # type: ignore[arg-type]
        if e in (sympy.pi, sympy.E):
            return "pi" if e is sympy.pi else "exponentiale"
        if isinstance(e, sympy.Add):
            return "(" + " + ".join(go(a) for a in e.args) + ")"
        if isinstance(e, sympy.Mul):
            num, den = sympy.fraction(e)
            top = " * ".join(go(a) for a in sympy.Mul.make_args(num))
            if den == 1:
                return "(" + top + ")"
            return f"(({top}) / ({go(den)}))"
        if isinstance(e, sympy.Pow):
            base, exp = e.args
            if exp == sympy.Rational(1, 2):
                return f"sqrt({go(base)})"
            return f"pow({go(base)}, {go(exp)})"
        for fn, name in _FUNCS.items():
            if isinstance(e, fn):
                return f"{name}({go(e.args[0])})"
        if isinstance(e, sympy.Piecewise):
            parts: list[str] = []
            for value, cond in e.args:
                if cond is sympy.true:
                    parts.append(go(value))
                    break
                parts += [go(value), go(cond)]
            else:
                parts.append("0")  # NONMEM leaves an unassigned variable at 0
            return "piecewise(" + ", ".join(parts) + ")"
        for rel, op in _REL.items():
            if isinstance(e, rel):
                return f"({go(e.args[0])} {op} {go(e.args[1])})"
        if isinstance(e, sympy.And):
            return "(" + " && ".join(go(a) for a in e.args) + ")"
        if isinstance(e, sympy.Or):
            return "(" + " || ".join(go(a) for a in e.args) + ")"
        if isinstance(e, sympy.Not):
            return f"!({go(e.args[0])})"
        if isinstance(e, (sympy.Min, sympy.Max)):
            name = "min" if isinstance(e, sympy.Min) else "max"
            return f"{name}(" + ", ".join(go(a) for a in e.args) + ")"
        raise Unprintable(f"{type(e).__name__} in {e} has no SBML equivalent here")

    return go(expr)


def to_ast(expr: sympy.Basic, names: Mapping[str, str] | Callable[[str], str]) -> libsbml.ASTNode:
    """libsbml's AST for ``expr`` (time is the symbol named by ``names`` as ``time``)."""
    text = to_formula(expr, names)
    settings = libsbml.L3ParserSettings()
    settings.setParseLog(libsbml.L3P_PARSE_LOG_AS_LN)
    ast = libsbml.parseL3FormulaWithSettings(text, settings)
    if ast is None:
        raise Unprintable(f"libsbml cannot parse {text!r}: {libsbml.getLastParseL3Error()}")
    return ast
