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
    eps = symbols(expr) & set(model.epsilon_variance)
    if len(eps) != 1:
        raise Unsupported(el, "a general observation model needs exactly one residual random variable")
    (e,) = eps
    with_eps = [t for t in _terms(expr, "plus") if e in symbols(t)]
    rest = [t for t in _terms(expr, "plus") if e not in symbols(t)]
    factors = _terms(with_eps[0], "times") if len(with_eps) == 1 else []
    if not rest or factors.count(Sym(e)) != 1 or any(e in symbols(f) for f in factors if f != Sym(e)):
        raise Unsupported(el, "the residual random variable must enter as prediction + SD * epsilon")
    prediction = rest[0] if len(rest) == 1 else Op("plus", tuple(rest))
    others = [f for f in factors if f != Sym(e)]
    sd: Expr = Num(1.0) if not others else others[0] if len(others) == 1 else Op("times", tuple(others))
    if not isinstance(prediction, Sym):
        pid = scope.table.fresh(f"{decl.sbml}_pred")
        model.add(Parameter(pid, "derived", el, rule=prediction))
        prediction = Sym(pid)
    model.observations.append(Observation(decl.sbml, prediction, sd, model.epsilon_variance[e], log, el))


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
