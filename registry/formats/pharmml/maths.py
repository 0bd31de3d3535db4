"""PharmML maths (``math:Binop``, ``Uniop``, ``Piecewise``, ``FunctionCall``, constants) as a
small expression tree, turned into libsbml ASTs and evaluated numerically.

Why a tree of our own rather than straight to libsbml: the same expression is needed three ways
(an SBML ``<math>``, a number for parameter values and error-model analysis, and the set of symbols
it uses for dependency checks), and PharmML function calls are inlined, which is a substitution on
the tree. The libsbml AST is built node by node (never by parsing infix text), so a PharmML symbol
called ``e`` or ``pi`` stays a name and is not read as a constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import libsbml
from lxml import etree

from registry.formats.pharmml.document import children, local

__all__ = [
    "Expr",
    "Num",
    "Op",
    "Scope",
    "Sym",
    "Time",
    "Unsupported",
    "evaluate",
    "evaluate_variance",
    "parse_expr",
    "substitute",
    "symbols",
    "to_ast",
]


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Sym:
    name: str  # an SBML id


@dataclass(frozen=True)
class Time:
    pass


@dataclass(frozen=True)
class Op:
    op: str
    args: tuple[Expr, ...] = ()


Expr = Num | Sym | Time | Op


class Unsupported(Exception):
    """An element that cannot be converted; the reader records it as a problem."""

    def __init__(self, element: etree._Element, message: str) -> None:
        self.element = element
        self.message = message
        super().__init__(message)


class Scope(Protocol):
    """How the reader resolves names while maths is parsed."""

    def ref(self, element: etree._Element) -> Expr: ...

    def call(self, element: etree._Element, name: str, args: dict[str, Expr]) -> Expr: ...

    def select(self, element: etree._Element, vector: etree._Element, index: int) -> Expr: ...


_UNIOP: dict[str, str] = {
    "abs": "abs", "exp": "exp", "log": "ln", "log10": "log10", "sqrt": "sqrt",
    "floor": "floor", "ceiling": "ceiling", "factorial": "factorial", "minus": "neg",
    "sin": "sin", "cos": "cos", "tan": "tan", "sec": "sec", "csc": "csc", "cot": "cot",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "sech": "sech", "csch": "csch",
    "coth": "coth", "arcsin": "arcsin", "arccos": "arccos", "arctan": "arctan",
    "arcsinh": "arcsinh", "arccosh": "arccosh", "arctanh": "arctanh",
}  # fmt: skip
_BINOP = {"plus", "minus", "times", "divide", "power", "min", "max", "rem"}
_LOGIC_BINOP = {"lt", "leq", "gt", "geq", "eq", "neq", "and", "or", "xor"}
_CONSTANTS: dict[str, Expr] = {"pi": Op("pi"), "exponentiale": Op("exponentiale"),
              "infinity": Num(math.inf), "notanumber": Num(math.nan)}  # fmt: skip
_WRAPPERS = {"Assign", "Equation", "Condition", "Definition"}


def _number(element: etree._Element) -> Num:
    text = (element.text or "").strip()
    try:
        return Num(float(text))
    except ValueError:
        raise Unsupported(element, f"{text!r} is not a number") from None


def parse_expr(element: etree._Element, scope: Scope) -> Expr:
    """The expression that ``element`` (or its single wrapped child) denotes."""
    name = local(element)
    if name in _WRAPPERS:
        inner = children(element)
        if len(inner) != 1:
            raise Unsupported(element, f"<{name}> should hold exactly one expression")
        return parse_expr(inner[0], scope)
    if name in ("Int", "Real"):
        return _number(element)
    if name == "True":
        return Op("true")
    if name == "False":
        return Op("false")
    if name == "SymbRef":
        return scope.ref(element)
    if name == "Constant":
        op = element.get("op", "")
        if op not in _CONSTANTS:
            raise Unsupported(element, f"constant {op!r} is not supported")
        return _CONSTANTS[op]
    if name == "Uniop":
        return _uniop(element, scope)
    if name == "Binop":
        return _binop(element, scope)
    if name == "LogicBinop":
        op = element.get("op", "")
        args = children(element)
        if op not in _LOGIC_BINOP or len(args) != 2:
            raise Unsupported(element, f"logic operator {op!r} is not supported")
        return Op(op, (parse_expr(args[0], scope), parse_expr(args[1], scope)))
    if name == "LogicUniop":
        op = element.get("op", "")
        args = children(element)
        if op != "not" or len(args) != 1:
            raise Unsupported(element, f"logic operator {op!r} is not supported")
        return Op("not", (parse_expr(args[0], scope),))
    if name == "Piecewise":
        return _piecewise(element, scope)
    if name == "FunctionCall":
        return _call(element, scope)
    if name == "Delay":
        raise Unsupported(element, "delay differential equations are not supported")
    if name == "VectorSelector":
        return _vector_selector(element, scope)
    raise Unsupported(element, f"<{name}> is not supported in an expression")


def _vector_selector(element: etree._Element, scope: Scope) -> Expr:
    """``v[k]``: one cell of a vector symbol (a multivariate random variable, a vector parameter)."""
    parts = children(element)
    cell = [p for p in parts if local(p) == "Cell"]
    if len(parts) != 2 or local(parts[0]) != "SymbRef" or len(cell) != 1:
        raise Unsupported(element, "only a single cell of a vector symbol can be selected")
    index = children(cell[0])
    if len(index) == 1 and local(index[0]) == "Assign":  # 0.8 writers wrap the index in ct:Assign
        index = children(index[0])
    if len(index) != 1 or local(index[0]) != "Int":
        raise Unsupported(cell[0], "the selected cell must be a constant integer")
    k = int(_number(index[0]).value)
    return scope.select(element, parts[0], k)


def _uniop(element: etree._Element, scope: Scope) -> Expr:
    op = element.get("op", "")
    args = children(element)
    if len(args) != 1:
        raise Unsupported(element, "a Uniop takes one argument")
    x = parse_expr(args[0], scope)
    if op in _UNIOP:
        return Op(_UNIOP[op], (x,))
    if op == "log2":
        return Op("divide", (Op("ln", (x,)), Op("ln", (Num(2.0),))))
    if op == "logistic":
        return Op("divide", (Num(1.0), Op("plus", (Num(1.0), Op("exp", (Op("neg", (x,)),))))))
    if op == "logit":
        return Op("ln", (Op("divide", (x, Op("minus", (Num(1.0), x)))),))
    if op == "heaviside":  # H(0) = 1, as NONMEM's and Monolix' step functions use it
        return Op("piecewise", (Num(0.0), Op("lt", (x, Num(0.0))), Num(1.0)))
    if op == "sign":
        return Op("piecewise", (Num(-1.0), Op("lt", (x, Num(0.0))), Num(0.0),
                                Op("eq", (x, Num(0.0))), Num(1.0)))  # fmt: skip
    raise Unsupported(element, f"function {op!r} has no SBML equivalent")


def _binop(element: etree._Element, scope: Scope) -> Expr:
    op = element.get("op", "")
    args = children(element)
    if len(args) != 2:
        raise Unsupported(element, "a Binop takes two arguments")
    a, b = parse_expr(args[0], scope), parse_expr(args[1], scope)
    if op in _BINOP:
        return Op(op, (a, b))
    if op == "root":  # root(x, n): the n-th root of x
        return Op("power", (a, Op("divide", (Num(1.0), b))))
    if op == "logx":  # logx(x, b): logarithm of x to base b
        return Op("divide", (Op("ln", (a,)), Op("ln", (b,))))
    raise Unsupported(element, f"binary operator {op!r} is not supported")


def _piecewise(element: etree._Element, scope: Scope) -> Expr:
    args: list[Expr] = []
    otherwise: Expr | None = None
    for piece in children(element):
        if local(piece) != "Piece":
            raise Unsupported(piece, f"<{local(piece)}> inside Piecewise")
        parts = children(piece)
        cond = [p for p in parts if local(p) == "Condition"]
        value = [p for p in parts if local(p) != "Condition"]
        if len(cond) != 1 or len(value) != 1:
            raise Unsupported(piece, "a Piece needs one value and one Condition")
        inner = children(cond[0])
        if len(inner) == 1 and local(inner[0]) == "Otherwise":
            otherwise = parse_expr(value[0], scope)
        else:
            args += [parse_expr(value[0], scope), parse_expr(cond[0], scope)]
    if otherwise is not None:
        args.append(otherwise)
    if not args:
        raise Unsupported(element, "empty Piecewise")
    return Op("piecewise", tuple(args))


def _call(element: etree._Element, scope: Scope) -> Expr:
    parts = children(element)
    if not parts or local(parts[0]) != "SymbRef":
        raise Unsupported(element, "a FunctionCall starts with the function's SymbRef")
    args: dict[str, Expr] = {}
    for arg in parts[1:]:
        if local(arg) != "FunctionArgument" or not arg.get("symbId"):
            raise Unsupported(arg, "function arguments must be named FunctionArgument elements")
        inner = children(arg)
        if len(inner) != 1:
            raise Unsupported(arg, "a FunctionArgument holds one expression")
        args[arg.get("symbId", "")] = parse_expr(inner[0], scope)
    return scope.call(element, parts[0].get("symbIdRef", ""), args)


def symbols(expr: Expr) -> set[str]:
    """SBML ids used by ``expr``."""
    if isinstance(expr, Sym):
        return {expr.name}
    if isinstance(expr, Op):
        out: set[str] = set()
        for a in expr.args:
            out |= symbols(a)
        return out
    return set()


def uses_time(expr: Expr) -> bool:
    if isinstance(expr, Time):
        return True
    return isinstance(expr, Op) and any(uses_time(a) for a in expr.args)


def substitute(expr: Expr, mapping: Mapping[str, Expr]) -> Expr:
    if isinstance(expr, Sym):
        return mapping.get(expr.name, expr)
    if isinstance(expr, Op):
        return Op(expr.op, tuple(substitute(a, mapping) for a in expr.args))
    return expr


_AST_FUNC: dict[str, int] = {
    "plus": libsbml.AST_PLUS, "minus": libsbml.AST_MINUS, "times": libsbml.AST_TIMES,
    "divide": libsbml.AST_DIVIDE, "power": libsbml.AST_FUNCTION_POWER,
    "neg": libsbml.AST_MINUS, "exp": libsbml.AST_FUNCTION_EXP, "ln": libsbml.AST_FUNCTION_LN,
    "abs": libsbml.AST_FUNCTION_ABS, "floor": libsbml.AST_FUNCTION_FLOOR,
    "ceiling": libsbml.AST_FUNCTION_CEILING, "factorial": libsbml.AST_FUNCTION_FACTORIAL,
    "min": libsbml.AST_FUNCTION_MIN, "max": libsbml.AST_FUNCTION_MAX,
    "rem": libsbml.AST_FUNCTION_REM, "piecewise": libsbml.AST_FUNCTION_PIECEWISE,
    "lt": libsbml.AST_RELATIONAL_LT, "leq": libsbml.AST_RELATIONAL_LEQ,
    "gt": libsbml.AST_RELATIONAL_GT, "geq": libsbml.AST_RELATIONAL_GEQ,
    "eq": libsbml.AST_RELATIONAL_EQ, "neq": libsbml.AST_RELATIONAL_NEQ,
    "and": libsbml.AST_LOGICAL_AND, "or": libsbml.AST_LOGICAL_OR,
    "xor": libsbml.AST_LOGICAL_XOR, "not": libsbml.AST_LOGICAL_NOT,
    "true": libsbml.AST_CONSTANT_TRUE, "false": libsbml.AST_CONSTANT_FALSE,
    "pi": libsbml.AST_CONSTANT_PI, "exponentiale": libsbml.AST_CONSTANT_E,
    "sin": libsbml.AST_FUNCTION_SIN, "cos": libsbml.AST_FUNCTION_COS,
    "tan": libsbml.AST_FUNCTION_TAN, "sec": libsbml.AST_FUNCTION_SEC,
    "csc": libsbml.AST_FUNCTION_CSC, "cot": libsbml.AST_FUNCTION_COT,
    "sinh": libsbml.AST_FUNCTION_SINH, "cosh": libsbml.AST_FUNCTION_COSH,
    "tanh": libsbml.AST_FUNCTION_TANH, "sech": libsbml.AST_FUNCTION_SECH,
    "csch": libsbml.AST_FUNCTION_CSCH, "coth": libsbml.AST_FUNCTION_COTH,
    "arcsin": libsbml.AST_FUNCTION_ARCSIN, "arccos": libsbml.AST_FUNCTION_ARCCOS,
    "arctan": libsbml.AST_FUNCTION_ARCTAN, "arcsinh": libsbml.AST_FUNCTION_ARCSINH,
    "arccosh": libsbml.AST_FUNCTION_ARCCOSH, "arctanh": libsbml.AST_FUNCTION_ARCTANH,
}  # fmt: skip


def to_ast(expr: Expr) -> libsbml.ASTNode:
    """A libsbml AST for ``expr`` (the caller owns it)."""
    if isinstance(expr, Num):
        node = libsbml.ASTNode(libsbml.AST_REAL)
        node.setValue(float(expr.value))
        return node
    if isinstance(expr, Sym):
        node = libsbml.ASTNode(libsbml.AST_NAME)
        node.setName(expr.name)
        return node
    if isinstance(expr, Time):
        node = libsbml.ASTNode(libsbml.AST_NAME_TIME)
        node.setName("t")
        return node
    if expr.op == "log10":
        node = libsbml.ASTNode(libsbml.AST_FUNCTION_LOG)
        node.addChild(to_ast(Num(10.0)))
        node.addChild(to_ast(expr.args[0]))
        return node
    if expr.op == "sqrt":
        node = libsbml.ASTNode(libsbml.AST_FUNCTION_ROOT)
        node.addChild(to_ast(Num(2.0)))
        node.addChild(to_ast(expr.args[0]))
        return node
    node = libsbml.ASTNode(_AST_FUNC[expr.op])
    for arg in expr.args:
        node.addChild(to_ast(arg))
    return node


def _piecewise_value(args: tuple[Expr, ...], ev: Callable[[Expr], float]) -> float:
    for i in range(0, len(args) - 1, 2):
        if ev(args[i + 1]):
            return ev(args[i])
    if len(args) % 2 == 1:
        return ev(args[-1])
    return math.nan


_EVAL1: dict[str, Callable[[float], float]] = {
    "neg": lambda x: -x, "exp": math.exp, "ln": math.log, "log10": math.log10,
    "sqrt": math.sqrt, "abs": abs, "floor": math.floor, "ceiling": math.ceil,
    "factorial": lambda x: float(math.factorial(int(x))), "not": lambda x: float(not x),
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "sinh": math.sinh, "cosh": math.cosh,
    "tanh": math.tanh, "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan,
    "arcsinh": math.asinh, "arccosh": math.acosh, "arctanh": math.atanh,
    "sec": lambda x: 1 / math.cos(x), "csc": lambda x: 1 / math.sin(x),
    "cot": lambda x: 1 / math.tan(x), "sech": lambda x: 1 / math.cosh(x),
    "csch": lambda x: 1 / math.sinh(x), "coth": lambda x: 1 / math.tanh(x),
}  # fmt: skip
_EVAL2: dict[str, Callable[[float, float], float]] = {
    "minus": lambda a, b: a - b, "divide": lambda a, b: a / b, "power": lambda a, b: a**b,
    "rem": math.fmod, "lt": lambda a, b: float(a < b), "leq": lambda a, b: float(a <= b),
    "gt": lambda a, b: float(a > b), "geq": lambda a, b: float(a >= b),
    "eq": lambda a, b: float(a == b), "neq": lambda a, b: float(a != b),
    "xor": lambda a, b: float(bool(a) != bool(b)),
}  # fmt: skip


def evaluate_variance(expr: Expr, env: Mapping[str, float], element: etree._Element, what: str) -> float:
    """A variance's value in ``env``, finite and not negative; else :class:`Unsupported` at
    ``element`` naming ``what`` (a random effect's or the residual error's variance)."""
    try:
        value = evaluate(expr, env)
    except KeyError as exc:
        raise Unsupported(element, f"{what} uses {exc} which has no value") from None
    if not math.isfinite(value) or value < 0:
        raise Unsupported(element, f"{what} is {value}")
    return value


def evaluate(expr: Expr, env: Mapping[str, float], time: float = 0.0) -> float:
    """The value of ``expr`` with SBML ids taken from ``env`` (KeyError when one is missing)."""

    def ev(e: Expr) -> float:
        if isinstance(e, Num):
            return e.value
        if isinstance(e, Sym):
            return float(env[e.name])
        if isinstance(e, Time):
            return time
        vals = e.args
        if e.op == "piecewise":
            return _piecewise_value(vals, ev)
        if e.op in ("true", "false", "pi", "exponentiale"):
            return {"true": 1.0, "false": 0.0, "pi": math.pi, "exponentiale": math.e}[e.op]
        if e.op == "plus":
            return math.fsum(ev(a) for a in vals)
        if e.op == "times":
            return math.prod(ev(a) for a in vals)
        if e.op in ("and", "or"):
            results = [bool(ev(a)) for a in vals]
            return float(all(results) if e.op == "and" else any(results))
        if e.op in ("min", "max"):
            return (min if e.op == "min" else max)(ev(a) for a in vals)
        if e.op in _EVAL1 and len(vals) == 1:
            return _EVAL1[e.op](ev(vals[0]))
        if e.op in _EVAL2 and len(vals) == 2:
            return _EVAL2[e.op](ev(vals[0]), ev(vals[1]))
        raise ValueError(f"cannot evaluate {e.op!r}")

    return ev(expr)
