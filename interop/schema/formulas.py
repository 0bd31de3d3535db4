"""Derived covariates: a small, safe expression language and the field's standard formulas.

An expression is parsed with Python's :mod:`ast` and only these nodes are accepted: numbers,
names (covariates or formula variables), ``+ - * / **``, unary minus, comparisons
(``< <= > >= == !=``, true = 1), ``and``/``or``/``not``, the conditional ``a if c else b`` (or
``if_else(c, a, b)``) and the functions ``min max exp log sqrt abs``. Nothing is ever passed to
``eval``; attribute access, subscripts, lambdas, strings and other calls are errors. Written by
hand because the well-kept alternatives (asteval, simpleeval, numexpr) either run a far larger
subset of Python or offer no way to list the names an expression uses before evaluating it,
which the card validation needs.

The library (:data:`FORMULAS`) holds the standard formulas as expressions of this language with
the unit of each input, so a card can name one (``formula: cockcroft_gault``) and map its
variables to covariates. Each is tested against worked examples in ``tests/twin/test_formulas.py``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from interop.errors import SchemaError

if TYPE_CHECKING:  # the card imports this module; avoid the cycle at run time
    from interop.schema.model_card import DerivedSource

__all__ = [
    "FORMULAS",
    "Expression",
    "Formula",
    "FormulaError",
    "derived_expression",
    "derived_inputs",
    "parse_expression",
]

MAX_LENGTH = 2000
MAX_DEPTH = 60


class FormulaError(SchemaError):
    """An expression outside the safe language, or one that cannot be evaluated."""


_BINARY: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_FUNCTIONS: dict[str, tuple[Callable[..., float], int | None]] = {
    "min": (min, None),
    "max": (max, None),
    "exp": (math.exp, 1),
    "log": (math.log, 1),
    "sqrt": (math.sqrt, 1),
    "abs": (abs, 1),
}
_RESERVED = {*_FUNCTIONS, "if_else"}

Node = Callable[[Mapping[str, float]], float]


def _compile(node: ast.AST, names: set[str], depth: int = 0) -> Node:
    """A closure evaluating ``node``; records the names it reads in ``names``."""
    if depth > MAX_DEPTH:
        raise FormulaError("expression nested too deeply")
    d = depth + 1
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"only numbers are allowed as constants (got {node.value!r})")
        value = float(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        if node.id in _RESERVED:
            raise FormulaError(f"{node.id!r} is a function, not a value")
        name = node.id
        names.add(name)

        def read(env: Mapping[str, float]) -> float:
            try:
                return float(env[name])
            except KeyError:
                raise FormulaError(f"no value for {name!r}") from None

        return read
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, names, d), _compile(node.right, names, d)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        inner = _compile(node.operand, names, d)
        if isinstance(node.op, ast.USub):
            return lambda env: -inner(env)
        if isinstance(node.op, ast.Not):
            return lambda env: 0.0 if inner(env) else 1.0
        return inner
    if isinstance(node, ast.Compare):
        parts = [_compile(node.left, names, d), *(_compile(c, names, d) for c in node.comparators)]
        ops = []
        for o in node.ops:
            if type(o) not in _COMPARE:
                raise FormulaError(f"comparison {type(o).__name__} is not allowed")
            ops.append(_COMPARE[type(o)])

        def compare(env: Mapping[str, float]) -> float:
            values = [p(env) for p in parts]
            return float(all(op(values[i], values[i + 1]) for i, op in enumerate(ops)))

        return compare
    if isinstance(node, ast.BoolOp):
        items = [_compile(v, names, d) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda env: float(all(i(env) for i in items))
        return lambda env: float(any(i(env) for i in items))
    if isinstance(node, ast.IfExp):
        cond, yes, no = (_compile(n, names, d) for n in (node.test, node.body, node.orelse))
        return lambda env: yes(env) if cond(env) else no(env)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise FormulaError("only calls of min, max, exp, log, sqrt, abs, if_else are allowed")
        fname = node.func.id
        if fname not in _RESERVED:
            raise FormulaError(f"function {fname!r} is not allowed")
        args = [_compile(a, names, d) for a in node.args]
        if fname == "if_else":
            if len(args) != 3:
                raise FormulaError("if_else takes (condition, value if true, value if false)")
            c, a, b = args
            return lambda env: a(env) if c(env) else b(env)
        fn, arity = _FUNCTIONS[fname]
        if (arity is not None and len(args) != arity) or not args:
            raise FormulaError(f"{fname} takes {arity or 'at least one'} argument(s), got {len(args)}")
        return lambda env: float(fn(*(a(env) for a in args)))
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text, the names it reads, and its evaluator."""

    text: str
    names: frozenset[str]
    _fn: Node

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The value for ``values`` (name -> number); a math error or non-finite result is an error."""
        try:
            out = self._fn(values)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError) as exc:
            raise FormulaError(f"cannot evaluate {self.text!r}: {exc}") from exc
        if not math.isfinite(out):
            raise FormulaError(f"{self.text!r} is not finite for these values")
        return out


@lru_cache(maxsize=512)
def parse_expression(text: str) -> Expression:
    """Parse ``text`` in the safe language (errors name what is not allowed)."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"not a formula: {text!r} ({exc.msg})") from exc
    names: set[str] = set()
    fn = _compile(tree.body, names)
    return Expression(text, frozenset(names), fn)


@dataclass(frozen=True)
class Formula:
    """A library formula: expression over its variables, their units, the result's unit."""

    expression: str
    inputs: dict[str, str]  # variable -> UCUM unit ("1": number or 0/1 flag)
    unit: str
    citation: str


_CG = "(140 - age) * {w} / (72 * scr) * (0.85 if female else 1)"
_IBW = "(45.5 if female else 50) + 2.3 * (height / 2.54 - 60)"
_CG_CITE = "Cockcroft DW, Gault MH. Nephron 1976;16:31-41"
_IBW_CITE = "Devine BJ. Drug Intell Clin Pharm 1974;8:650-655"

FORMULAS: dict[str, Formula] = {
    "cockcroft_gault": Formula(
        _CG.format(w="weight"),
        {"age": "a", "weight": "kg", "scr": "mg/dL", "female": "1"},
        "mL/min",
        _CG_CITE + " (total body weight)",
    ),
    "cockcroft_gault_ibw": Formula(
        _CG.format(w=f"min(weight, {_IBW})"),
        {"age": "a", "weight": "kg", "height": "cm", "scr": "mg/dL", "female": "1"},
        "mL/min",
        _CG_CITE + "; ideal body weight (Devine), actual weight when lower",
    ),
    "cockcroft_gault_adjbw": Formula(
        _CG.format(w=f"(({_IBW}) + 0.4 * (weight - ({_IBW})) if weight > {_IBW} else weight)"),
        {"age": "a", "weight": "kg", "height": "cm", "scr": "mg/dL", "female": "1"},
        "mL/min",
        _CG_CITE + "; adjusted body weight IBW + 0.4 (TBW - IBW) above IBW, else actual weight",
    ),
    "ckd_epi_2021": Formula(
        "142 * min(scr / (0.7 if female else 0.9), 1) ** (-0.241 if female else -0.302)"
        " * max(scr / (0.7 if female else 0.9), 1) ** -1.2 * 0.9938 ** age * (1.012 if female else 1)",
        {"age": "a", "scr": "mg/dL", "female": "1"},
        "mL/min/{1.73_m2}",
        "Inker LA et al. N Engl J Med 2021;385:1737-1749 (eGFRcr, race-free)",
    ),
    "mdrd": Formula(
        "175 * scr ** -1.154 * age ** -0.203 * (0.742 if female else 1) * (1.212 if black else 1)",
        {"age": "a", "scr": "mg/dL", "female": "1", "black": "1"},
        "mL/min/{1.73_m2}",
        "Levey AS et al. Clin Chem 2007;53:766-772 (4-variable MDRD, IDMS-traceable creatinine)",
    ),
    "bsa_dubois": Formula(
        "0.007184 * weight ** 0.425 * height ** 0.725",
        {"weight": "kg", "height": "cm"},
        "m2",
        "Du Bois D, Du Bois EF. Arch Intern Med 1916;17:863-871",
    ),
    "bsa_mosteller": Formula(
        "sqrt(height * weight / 3600)",
        {"weight": "kg", "height": "cm"},
        "m2",
        "Mosteller RD. N Engl J Med 1987;317:1098",
    ),
    "ideal_body_weight": Formula(_IBW, {"height": "cm", "female": "1"}, "kg", _IBW_CITE),
    "adjusted_body_weight": Formula(
        f"({_IBW}) + 0.4 * (weight - ({_IBW}))",
        {"weight": "kg", "height": "cm", "female": "1"},
        "kg",
        "IBW + 0.4 (TBW - IBW); Bauer LA, Applied Clinical Pharmacokinetics (IBW: " + _IBW_CITE + ")",
    ),
    "lean_body_weight": Formula(
        "9270 * weight"
        " / ((8780 if female else 6680) + (244 if female else 216) * weight / (height / 100) ** 2)",
        {"weight": "kg", "height": "cm", "female": "1"},
        "kg",
        "Janmahasatian S et al. Clin Pharmacokinet 2005;44:1051-1065",
    ),
    "age_months": Formula("age * 12", {"age": "a"}, "mo", "calendar: 12 months per year"),
    "postmenstrual_age": Formula(
        "gestational_age + postnatal_age",
        {"gestational_age": "wk", "postnatal_age": "wk"},
        "wk",
        "Engle WA et al. Pediatrics 2004;114:1362-1364 (AAP age terminology)",
    ),
}


def derived_expression(source: DerivedSource) -> tuple[Expression, dict[str, str]]:
    """The parsed expression of a card's derived source and its variable -> covariate mapping."""
    if source.expression is not None:
        expr = parse_expression(source.expression)
        return expr, {n: n for n in expr.names}
    assert source.formula is not None  # the card validates exactly one
    lib = FORMULAS.get(source.formula)
    if lib is None:
        raise FormulaError(f"unknown formula {source.formula!r} (library: {', '.join(sorted(FORMULAS))})")
    expr = parse_expression(lib.expression)
    missing = sorted(set(lib.inputs) - set(source.inputs))
    extra = sorted(set(source.inputs) - set(lib.inputs))
    if missing or extra:
        raise FormulaError(
            f"formula {source.formula} takes {', '.join(lib.inputs)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
        )
    return expr, dict(source.inputs)


def derived_inputs(source: DerivedSource) -> set[str]:
    """The covariate names a derived source reads."""
    _, mapping = derived_expression(source)
    return set(mapping.values())
