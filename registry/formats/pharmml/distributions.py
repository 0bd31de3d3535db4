"""Distributions in ProbOnto or UncertML form: a normal distribution's mean and variance, and the
value a prior gives a population parameter (scalar, vector or matrix).

A Bayesian model's typical values come from its priors where no initial estimate gives them. The
value taken, by distribution (ProbOnto name or UncertML element):

- normal (``Normal1/2/3``, ``NormalDistribution``), log-normal (``LogNormal1/2/3``), gamma
  (``Gamma1/2``, ``GammaDistribution``), uniform, beta, or any distribution given by a ``mean``
  parameter: the mean;
- inverse gamma (``InverseGamma1``, ``InverseGammaDistribution``; shape a, scale b): the mean
  b/(a-1) when a > 1, else (no mean) the mode b/(a+1);
- multivariate normal (``MultivariateNormal1/2``, ``MultivariateNormalDistribution``): its mean
  vector; an empirical prior (``RandomSample``, a table of draws): the mean of each column;
- Wishart (``Wishart1``: scale V, n degrees of freedom): the mean nV; ``Wishart2`` (inverse scale
  R): n R^-1; inverse Wishart (``InverseWishart1``: scale S, n, p x p): S/(n-p-1) when n > p+1,
  else the mode S/(n+p+1). Matrices must be numbers.
Other distributions (Poisson, zero-inflated, ...) are refused by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from lxml import etree

from registry.formats.pharmml.document import child, children, local
from registry.formats.pharmml.flatmodel import expression_in
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported, evaluate
from registry.formats.pharmml.symbols import BlockScope, first_expression

__all__ = [
    "MULTIVARIATE",
    "WISHARTS",
    "distribution_of",
    "literal",
    "normal",
    "prior_matrix",
    "prior_mean",
    "prior_vector",
    "uncertml_value",
]

_NORMALS = ("Normal1", "Normal2", "Normal3", "NormalDistribution", "StandardNormal1")
MULTIVARIATE = ("MultivariateNormal1", "MultivariateNormal2", "MultivariateNormalDistribution")
WISHARTS = ("Wishart1", "Wishart2", "InverseWishart1", "InverseWishart")


def _exp(x: Expr) -> Expr:
    return Op("exp", (x,))


def _half(x: Expr) -> Expr:
    return Op("divide", (x, Num(2.0)))


def _inverse_gamma(a: Expr, b: Expr) -> Expr:
    """The mean b/(a-1) where it exists (a > 1), else the mode b/(a+1)."""
    mean = Op("divide", (b, Op("minus", (a, Num(1.0)))))
    mode = Op("divide", (b, Op("plus", (a, Num(1.0)))))
    return Op("piecewise", (mean, Op("gt", (a, Num(1.0))), mode))


# scalar priors by distribution: ProbOnto name or UncertML element -> (parameter names, value)
_MEANS: dict[str, tuple[tuple[str, ...], Callable[..., Expr]]] = {
    "Gamma1": (("shape", "scale"), lambda k, th: Op("times", (k, th))),
    "Gamma2": (("shape", "rate"), lambda k, r: Op("divide", (k, r))),
    "GammaDistribution": (("shape", "scale"), lambda k, th: Op("times", (k, th))),
    "InverseGamma1": (("shape", "scale"), _inverse_gamma),
    "InverseGammaDistribution": (("shape", "scale"), _inverse_gamma),
    "LogNormal1": (
        ("meanLog", "stdevLog"),
        lambda m, s: _exp(Op("plus", (m, _half(Op("power", (s, Num(2.0))))))),
    ),
    "LogNormal2": (("meanLog", "varLog"), lambda m, v: _exp(Op("plus", (m, _half(v))))),
    "LogNormal3": (
        ("median", "stdevLog"),
        lambda med, s: Op("times", (med, _exp(_half(Op("power", (s, Num(2.0))))))),
    ),
    "Uniform1": (("minimum", "maximum"), lambda a, b: _half(Op("plus", (a, b)))),
    "UniformDistribution": (("minimum", "maximum"), lambda a, b: _half(Op("plus", (a, b)))),
    "Beta1": (("alpha", "beta"), lambda a, b: Op("divide", (a, Op("plus", (a, b))))),
}


def distribution_of(el: etree._Element) -> tuple[etree._Element, str]:
    """The distribution element inside ``el`` (a ``Distribution``, or what holds one, or in 0.6 the
    element an UncertML distribution is a child of) and its name: the ProbOnto ``name`` or the
    UncertML element's."""
    holder = _wrapper(el) if local(el) not in ("Distribution", "PDF") else el
    if holder is None:  # PharmML 0.6: the UncertML distribution is the element's own child
        holder = el
    skip = ("Description", "Name", "VariabilityReference")
    inner = [c for c in children(holder) if local(c) not in skip]
    _refuse_untyped(holder)
    if len(inner) != 1:
        raise Unsupported(holder, "a distribution holds one ProbOnto or UncertML element")
    found = inner[0]
    if local(found) == "UncertML" and len(children(found)) == 1:
        found = children(found)[0]
    return found, (found.get("name", "") if local(found) == "ProbOnto" else local(found))


def _refuse_untyped(holder: etree._Element) -> None:
    """A 0.6 draft's ``<DistributionName>`` with ``Parameter1``, ``Parameter2``: refused by name."""
    if child(holder, "DistributionName") is not None:
        raise Unsupported(holder, "a distribution by <DistributionName> and untyped parameters is not "
                          "supported (their meaning is undefined: use ProbOnto or UncertML)")  # fmt: skip


def _wrapper(el: etree._Element) -> etree._Element | None:
    """The ``Distribution`` element of ``el`` (``PDF`` in early 0.6 drafts), if any."""
    found = child(el, "Distribution")
    return found if found is not None else child(el, "PDF")


def normal(el: etree._Element, scope: BlockScope) -> tuple[Expr, Expr]:
    """(mean, variance) of a normal distribution in ProbOnto or UncertML form."""
    dist = _wrapper(el)
    holder = dist if dist is not None else el
    _refuse_untyped(holder)
    for d in children(holder):
        name = local(d)
        if name == "UncertML" and len(children(d)) == 1:  # 0.8 wrapper around UncertML
            d, name = children(d)[0], local(children(d)[0])
        if name == "ProbOnto" and d.get("name") == "StandardNormal1":
            return Num(0.0), Num(1.0)
        if name == "ProbOnto":
            kind = d.get("name", "")
            params = {p.get("name", ""): p for p in children(d, "Parameter")}
            if kind not in ("Normal1", "Normal2", "Normal3"):
                raise Unsupported(d, f"distribution {kind!r} is not supported (only normal)")
            if "mean" not in params:
                raise Unsupported(d, f"{kind} needs its mean parameter")
            mean = expression_in(params["mean"], scope)
            if kind == "Normal1" and "stdev" in params:
                sd = expression_in(params["stdev"], scope)
                return mean, Op("power", (sd, Num(2.0)))
            if kind == "Normal2" and "var" in params:
                return mean, expression_in(params["var"], scope)
            if kind == "Normal3" and "precision" in params:  # ProbOnto: precision = 1/variance
                return mean, Op("divide", (Num(1.0), expression_in(params["precision"], scope)))
            raise Unsupported(d, f"{kind} needs its stdev, var or precision parameter")
        if name == "NormalDistribution":  # UncertML
            parts = {local(c): c for c in children(d)}
            if "mean" not in parts or not ({"stddev", "variance"} & parts.keys()):
                raise Unsupported(d, "UncertML normal distribution needs mean and stddev or variance")
            mean = uncertml_value(parts["mean"], scope)
            if "stddev" in parts:
                return mean, Op("power", (uncertml_value(parts["stddev"], scope), Num(2.0)))
            return mean, uncertml_value(parts["variance"], scope)
        if name not in ("VariabilityReference", "Description"):
            raise Unsupported(d, f"distribution <{name}> is not supported (only normal)")
    raise Unsupported(el, "random variable without a distribution")


def uncertml_value(el: etree._Element, scope: BlockScope) -> Expr:
    """An UncertML parameter's value: a number (``rVal``, ``prVal``) or a variable (``var``)."""
    inner = children(el)
    if len(inner) != 1:
        raise Unsupported(el, "expected one value")
    v = inner[0]
    if local(v) in ("rVal", "prVal"):
        try:
            return Num(float((v.text or "").strip()))
        except ValueError:
            raise Unsupported(v, f"{v.text!r} is not a number") from None
    if local(v) == "var":
        decl = scope.table.declarations.get((scope.block or "", v.get("varId", "")))
        if decl is None:
            found = [d for (b, n), d in scope.table.declarations.items() if n == v.get("varId")]
            if len(found) != 1:
                raise Unsupported(v, f"dangling reference: no symbol {v.get('varId')!r}")
            decl = found[0]
        return Sym(decl.sbml)
    raise Unsupported(v, f"<{local(v)}> is not supported in a distribution")


def prior_mean(el: etree._Element, scope: BlockScope) -> Expr:
    """The value a scalar prior gives (module docstring), as an expression of its parameters.
    ``el`` is the ``Distribution`` (or ``NormalDistribution``) of a parameter or random variable."""
    holder, name = distribution_of(el) if local(el) == "Distribution" else (el, local(el))
    if name in _NORMALS:
        parent = el.getparent()
        if parent is None:
            raise Unsupported(el, "a prior must belong to a parameter")
        return normal(parent, scope)[0]
    if name in MULTIVARIATE or name in WISHARTS or name == "RandomSample":
        raise Unsupported(holder, f"a {name} prior gives a vector or matrix, not a number")
    params = {p.get("name", ""): p for p in children(holder, "Parameter")}
    if local(holder) == "ProbOnto" and "mean" in params:  # parameterised by its mean
        return expression_in(params["mean"], scope)
    if name not in _MEANS:
        raise Unsupported(holder, f"prior distribution {name!r} is not supported (no mean taken)")
    names, mean = _MEANS[name]
    if local(holder) == "ProbOnto":
        if not set(names) <= params.keys():
            raise Unsupported(holder, f"{name} prior needs {', '.join(names)}")
        return mean(*(expression_in(params[n], scope) for n in names))
    parts = {local(c): c for c in children(holder)}
    if not set(names) <= parts.keys():
        raise Unsupported(holder, f"{name} prior needs {', '.join(names)}")
    return mean(*(uncertml_value(parts[n], scope) for n in names))


def prior_vector(el: etree._Element, scope: BlockScope) -> list[Expr] | None:
    """The mean vector of a vector-valued prior in ``el`` (multivariate normal, ``RandomSample``),
    or None when its prior is not vector-valued."""
    holder, name = distribution_of(el)
    if name in MULTIVARIATE:
        if local(holder) == "ProbOnto":
            params = {p.get("name", ""): p for p in children(holder, "Parameter")}
            if "mean" not in params:
                raise Unsupported(holder, f"{name} needs its mean")
            return literal(params["mean"], "Vector", scope)[0]
        parts = {local(c): c for c in children(holder)}
        if "mean" not in parts:
            raise Unsupported(holder, f"{name} needs its mean")
        values = (parts["mean"].text or "").split() if not children(parts["mean"]) else []
        try:
            return [Num(float(v)) for v in values] or [uncertml_value(parts["mean"], scope)]
        except ValueError:
            raise Unsupported(parts["mean"], "the mean must be numbers") from None
    if name == "RandomSample":
        return _sample_means(holder, scope)
    return None


def _sample_means(holder: etree._Element, scope: BlockScope) -> list[Expr]:
    """Means of a ``RandomSample``'s inline table of draws: per cell of the vector the
    ``ColumnMapping``s fill (a scalar: its one column, or every value of a table without column
    definitions), weighted by the column the ``Weight`` names when there is one."""
    dataset = child(holder, "DataSet")
    table = child(dataset, "Table") if dataset is not None else None
    if dataset is None or table is None:
        raise Unsupported(
            holder, "a RandomSample's draws must be an inline DataSet (an external one is not read)"
        )
    rows = [[(c.text or "").strip() for c in children(r)] for r in children(table, "Row")]
    definition = child(dataset, "Definition")
    if definition is None:  # one scalar's draws, however laid out
        return [Num(float(np.mean(_numbers([v for row in rows for v in row], table))))]
    columns = {c.get("columnId", ""): int(c.get("columnNum", "0")) for c in children(definition, "Column")}
    weight = child(holder, "Weight")
    weight_ref = next(iter(weight.iter("{*}SymbRef")), None) if weight is not None else None
    weight_name = weight_ref.get("symbIdRef") if weight_ref is not None else None
    cells: dict[int, int] = {}  # vector cell (from 1) -> column number
    weights: int | None = None
    for mapping in children(holder, "ColumnMapping"):
        ref = child(mapping, "ColumnRef")
        column = columns.get(ref.get("columnIdRef", "") if ref is not None else "")
        if column is None:
            raise Unsupported(mapping, "a RandomSample column mapping names no column of its draws")
        symbol = child(mapping, "SymbRef")
        if symbol is not None and symbol.get("symbIdRef") == weight_name:
            weights = column
            continue
        selector = next(iter(mapping.iter("{*}VectorSelector")), None)
        cell = next(iter(selector.iter("{*}Cell")), None) if selector is not None else None
        cells[_cell_number(cell, scope) if cell is not None else len(cells) + 1] = column
    if not cells and len(columns) == 1:
        cells = {1: next(iter(columns.values()))}
    if not cells or sorted(cells) != list(range(1, len(cells) + 1)):
        raise Unsupported(holder, "a RandomSample must map its draws to the cells 1, 2, ... of its vector")

    def draws(k: int) -> list[float]:
        try:
            return _numbers([row[k - 1] for row in rows], table)
        except IndexError:
            raise Unsupported(table, f"a row of the draws has no column {k}") from None

    w = draws(weights) if weights is not None else None
    return [Num(float(np.average(draws(cells[k]), weights=w))) for k in sorted(cells)]


def _numbers(values: list[str], where: etree._Element) -> list[float]:
    try:
        out = [float(v) for v in values]
    except ValueError:
        raise Unsupported(where, "the draws must be numbers") from None
    if not out:
        raise Unsupported(where, "a RandomSample needs draws")
    return out


def _cell_number(cell: etree._Element, scope: BlockScope) -> int:
    inner = first_expression(cell)
    value = scope.parse(inner) if inner is not None else None
    if not isinstance(value, Num) or value.value != int(value.value):
        raise Unsupported(cell, "the selected cell must be a constant integer")
    return int(value.value)


def prior_matrix(el: etree._Element, scope: BlockScope, env: dict[str, float]) -> np.ndarray | None:
    """The value a Wishart or inverse Wishart prior in ``el`` gives (module docstring), numeric;
    None when its prior is not matrix-valued."""
    holder, name = distribution_of(el)
    if name not in WISHARTS:
        return None
    params = {p.get("name", ""): p for p in children(holder, "Parameter")}
    key = next((k for k in ("scaleMatrix", "inverseScaleMatrix") if k in params), None)
    if key is None or "degreesOfFreedom" not in params:
        raise Unsupported(holder, f"a {name} prior needs its scale matrix and degreesOfFreedom")
    scale = numeric_matrix(params[key], scope, env)
    try:
        n = evaluate(expression_in(params["degreesOfFreedom"], scope), env)
    except KeyError as exc:
        why = f"degreesOfFreedom uses {exc} which has no value"
        raise Unsupported(params["degreesOfFreedom"], why) from None
    p = scale.shape[0]
    if name.startswith("Inverse"):
        return scale / (n - p - 1) if n > p + 1 else scale / (n + p + 1)
    if key == "inverseScaleMatrix":
        return n * np.linalg.inv(scale)
    return n * scale


def numeric_matrix(holder: etree._Element, scope: BlockScope, env: dict[str, float]) -> np.ndarray:
    """A square matrix of numbers (full or lower-triangular rows) in ``holder``: a ``Matrix``, or
    a parameter assigned one or given one by its Wishart prior."""
    rows = literal(holder, "Matrix", scope, env)
    n = len(rows)
    if any(len(row) not in (n, i + 1) for i, row in enumerate(rows)):
        raise Unsupported(holder, f"a {n}x{n} matrix (full or lower-triangular rows)")
    try:
        values = [[evaluate(x, env) for x in row] for row in rows]
    except KeyError as exc:
        raise Unsupported(holder, f"the matrix uses {exc} which has no value") from None
    return np.array([[values[max(i, j)][min(i, j)] for j in range(n)] for i in range(n)])


def literal(
    holder: etree._Element, what: str, scope: BlockScope, env: dict[str, float] | None = None
) -> list[list[Expr]]:
    """The rows of a ``Vector`` (one row) or ``Matrix`` in ``holder``, directly or through a
    population parameter that is assigned it, given it by a prior (a matrix: evaluated in ``env``),
    or read already as a vector of cells."""
    inner = first_expression(holder)
    if inner is not None and local(inner) == "Assign":
        inner = first_expression(inner)
    if inner is not None and local(inner) == "SymbRef":
        decl = scope.table.lookup(inner, scope.block)
        size = scope.table.vectors.get(decl.sbml, 0)
        if what == "Vector" and size:  # a vector-valued parameter read already: its cells
            return [[Sym(f"{decl.sbml}_{k}") for k in range(1, size + 1)]]
        assign = child(decl.element, "Assign")
        if assign is None and child(decl.element, "Distribution") is not None and what == "Matrix":
            value = prior_matrix(decl.element, scope, env or {})
            if value is not None:
                return [[Num(float(x)) for x in row] for row in value]
        if assign is None and child(decl.element, "Distribution") is not None and what == "Vector":
            vector = prior_vector(decl.element, scope)
            if vector is not None:
                return [vector]
        inner = first_expression(assign) if assign is not None else estimated_value(decl.element, scope)
    if inner is None or local(inner) != what:
        raise Unsupported(holder, f"expected a {what} (or a parameter assigned one)")
    if what == "Vector":
        elements = child(inner, "VectorElements")
        cells = children(elements) if elements is not None else []
        return [[scope.parse(c) for c in cells]]
    return [[scope.parse(c) for c in children(row)] for row in children(inner, "MatrixRow")]


def estimated_value(el: etree._Element, scope: BlockScope) -> etree._Element | None:
    """The expression an estimation step's ``InitialEstimate`` gives the parameter declared at
    ``el`` (a ``Matrix`` for a covariance parameter, say), or None."""
    for est in el.getroottree().getroot().iter("{*}ParameterEstimation"):
        ref, initial = child(est, "SymbRef"), child(est, "InitialEstimate")
        if ref is None or initial is None:
            continue
        try:
            if scope.table.lookup(ref, None).element is el:
                return first_expression(initial)
        except Unsupported:  # a dangling reference: the estimation step's reader reports it
            continue
    return None
