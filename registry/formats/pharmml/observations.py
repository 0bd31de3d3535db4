"""ObservationModel: continuous observations, in the standard form (output, error model, residual
random variable) or the general form ``y = f + g * eps``; discrete data are refused."""

from __future__ import annotations

from lxml import etree

from registry.formats.pharmml.document import Problems, child, children, local
from registry.formats.pharmml.flatmodel import (
    PARAM_TAGS,
    Observation,
    Parameter,
    ReadModel,
    declaration,
    expression_in,
    guard,
)
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported, symbols
from registry.formats.pharmml.parameters import population_parameter, random_variable
from registry.formats.pharmml.symbols import BlockScope

__all__ = ["observation_model"]


def observation_model(
    block: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    problems: Problems,
    levels: dict[tuple[str, str], str],
) -> None:
    for data in children(block):
        if local(data) != "ContinuousData":
            kinds = {"CategoricalData": "categorical", "CountData": "count",
                     "TimeToEventData": "time-to-event"}  # fmt: skip
            for item in children(data) or [data]:
                kind = kinds.get(local(item), local(item))
                problems.add(item, f"{kind} observation models are not supported "
                             "(only continuous data)")  # fmt: skip
            continue
        # Parameters and residual random variables first: observations refer to them.
        items = sorted(children(data), key=lambda e: local(e) in ("Standard", "General"))
        for el in items:
            name = local(el)
            if name in PARAM_TAGS:
                guard(problems, population_parameter, el, scope, model)
            elif name == "RandomVariable":
                guard(problems, random_variable, el, scope, model, levels)
            elif name == "Standard":
                guard(problems, _standard, el, scope, model)
            elif name == "General":
                guard(problems, _general, el, scope, model)
            elif name != "Description":
                problems.add(el, f"<{name}> in ContinuousData is not supported")


def _terms(expr: Expr, op: str) -> list[Expr]:
    if isinstance(expr, Op) and expr.op == op:
        return [t for a in expr.args for t in _terms(a, op)]
    return [expr]


def _general(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    """``y = f + g * eps`` written out: split into prediction f and error SD g, as Standard."""
    decl = declaration(scope.table, scope.block, el)
    assign = child(el, "Assign")
    dist = child(el, "Distribution")
    if assign is None and dist is None:
        raise Unsupported(el, "a general observation model needs its equation or its distribution")
    log = False
    for tr in children(el):
        if local(tr) in ("LHSTransformation", "Transformation"):
            kind = tr.get("type") or (tr.text or "").strip()
            if kind != "log":
                raise Unsupported(tr, f"observation transformation {kind!r} is not supported")
            log = True
        elif local(tr) not in ("Assign", "Description", "Distribution", "VariabilityReference"):
            raise Unsupported(tr, f"<{local(tr)}> in a general observation model is not supported")
    if assign is None:
        assert dist is not None
        _distributional(el, decl.sbml, dist, log, scope, model)
        return
    expr = scope.parse(assign)
    prediction, sd = split_residuals(el, expr, model.epsilon_variance)
    if not isinstance(prediction, Sym):
        pid = scope.table.fresh(f"{decl.sbml}_pred")
        model.add(Parameter(pid, "derived", el, rule=prediction))
        prediction = Sym(pid)
    model.observations.append(Observation(decl.sbml, prediction, sd, Num(1.0), log, el))


def split_residuals(el: etree._Element, expr: Expr, variances: dict[str, Expr]) -> tuple[Expr, Expr]:
    """``Y`` linear in its residual random variables, ``f + g1*eps1 + g2*eps2 + ...`` (in any
    arrangement: ``f*(1 + eps)`` too), as (prediction f, SD of the sum): with independent
    variables of variances v_k, ``sqrt(sum g_k^2 v_k)`` (one variable: ``g1 * sqrt(v1)``)."""
    eps = symbols(expr) & set(variances)
    if not eps:
        raise Unsupported(el, "a general observation model needs a residual random variable")
    prediction, coefficient = _linear(el, expr, eps)
    if prediction is None:
        raise Unsupported(el, "a general observation model needs a prediction besides its residuals")
    parts = [(coefficient[e], variances[e]) for e in sorted(coefficient)]
    if len(parts) == 1:
        g, v = parts[0]
        return prediction, Op("times", (g, Op("sqrt", (v,))))
    total = tuple(Op("times", (Op("power", (g, Num(2.0))), v)) for g, v in parts)
    return prediction, Op("sqrt", (Op("plus", total),))


_Linear = tuple[Expr | None, dict[str, Expr]]  # (part free of eps or None for 0, eps -> coefficient)


def _linear(el: etree._Element, expr: Expr, eps: set[str]) -> _Linear:
    """``expr`` as constant part plus a coefficient per random variable; refused where it is not
    linear in them (a function of epsilon, a product of two of them)."""
    if not symbols(expr) & eps:
        return expr, {}
    if isinstance(expr, Sym):
        return None, {expr.name: Num(1.0)}
    if isinstance(expr, Op) and expr.op in ("plus", "minus", "neg"):
        parts = [_linear(el, a, eps) for a in expr.args]
        if expr.op != "plus":  # minus(a, b) = a + (-b); neg(a) = -a
            parts = (
                parts[:-1] + [_scaled(parts[-1], Num(-1.0))]
                if expr.op == "minus"
                else [_scaled(parts[0], Num(-1.0))]
            )
        constant = [c for c, _ in parts if c is not None]
        coefficient: dict[str, list[Expr]] = {}
        for _, co in parts:
            for e, g in co.items():
                coefficient.setdefault(e, []).append(g)
        return (
            None if not constant else constant[0] if len(constant) == 1 else Op("plus", tuple(constant)),
            {e: g[0] if len(g) == 1 else Op("plus", tuple(g)) for e, g in coefficient.items()},
        )
    if isinstance(expr, Op) and expr.op in ("times", "divide"):
        with_eps = [i for i, a in enumerate(expr.args) if symbols(a) & eps]
        if len(with_eps) == 1 and (expr.op == "times" or with_eps[0] == 0):
            i = with_eps[0]
            rest = [a for k, a in enumerate(expr.args) if k != i]
            factor = rest[0] if len(rest) == 1 else Op("times", tuple(rest))
            if expr.op == "divide":
                factor = Op("divide", (Num(1.0), factor))
            return _scaled(_linear(el, expr.args[i], eps), factor)
    raise Unsupported(el, "the residual random variables must enter linearly (prediction + SD * epsilon)")


def _scaled(part: _Linear, factor: Expr) -> _Linear:
    constant, coefficient = part
    return (
        None if constant is None else _times(constant, factor),
        {e: _times(g, factor) for e, g in coefficient.items()},
    )


def _times(a: Expr, b: Expr) -> Expr:
    """a * b, without a factor 1 (so ``f * (1 + eps)`` keeps ``f`` as the prediction symbol)."""
    if a == Num(1.0):
        return b
    return a if b == Num(1.0) else Op("times", (a, b))


def _distributional(
    el: etree._Element, sid: str, dist: etree._Element, log: bool, scope: BlockScope, model: ReadModel
) -> None:
    """``y ~ Normal(mean = f, stdev = g)`` (ProbOnto Normal1, or Normal2 with a variance): the
    prediction f and error SD g of a standard observation with a unit residual variance."""
    onto = child(dist, "ProbOnto")
    kind = onto.get("name", "") if onto is not None else ""
    params = {p.get("name", ""): p for p in children(onto, "Parameter")} if onto is not None else {}
    if kind not in ("Normal1", "Normal2", "Normal3") or "mean" not in params:
        raise Unsupported(
            dist, f"an observation distributed as {kind or 'this'} is not supported (only normal)"
        )
    if kind == "Normal1" and "stdev" in params:
        sd = expression_in(params["stdev"], scope)
    elif kind == "Normal2" and "var" in params:
        sd = Op("sqrt", (expression_in(params["var"], scope),))
    elif kind == "Normal3" and "precision" in params:  # ProbOnto: mean and precision 1/var
        sd = Op("divide", (Num(1.0), Op("sqrt", (expression_in(params["precision"], scope),))))
    else:
        raise Unsupported(onto, f"{kind} needs its stdev or var parameter")
    prediction = expression_in(params["mean"], scope)
    if not isinstance(prediction, Sym):
        pid = scope.table.fresh(f"{sid}_pred")
        model.add(Parameter(pid, "derived", el, rule=prediction))
        prediction = Sym(pid)
    model.observations.append(Observation(sid, prediction, sd, Num(1.0), log, el))


def _standard(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    decl = declaration(scope.table, scope.block, el)
    output = child(el, "Output")
    error = child(el, "ErrorModel")
    resid = child(el, "ResidualError")
    if output is None or error is None or resid is None:
        raise Unsupported(el, "a standard observation needs Output, ErrorModel and ResidualError")
    log = False
    for tr in children(el, "Transformation"):
        kind = tr.get("type") or (tr.text or "").strip()
        if kind == "log":
            log = True
        elif kind not in ("", "identity"):
            raise Unsupported(tr, f"observation transformation {kind!r} is not supported")
    eps = expression_in(resid, scope)
    if not isinstance(eps, Sym):
        raise Unsupported(resid, "the residual error must name a random variable")
    variance = model.epsilon_variance.get(eps.name)
    if variance is None:
        raise Unsupported(resid, f"{eps.name!r} is not a residual-error random variable")
    model.observations.append(
        Observation(decl.sbml, expression_in(output, scope), expression_in(error, scope), variance, log, el)
    )
