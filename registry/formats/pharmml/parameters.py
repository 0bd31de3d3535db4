"""ParameterModel: population parameters, random variables (normal, in ProbOnto or UncertML
form), individual parameters (general form, or structured: transformation, population value,
covariate fixed effects, random effects) and pairwise correlations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from lxml import etree

from registry.formats.pharmml.document import Problems, child, children, local
from registry.formats.pharmml.flatmodel import (
    PARAM_TAGS,
    Correlation,
    Eta,
    Parameter,
    ReadModel,
    declaration,
    expression_in,
    guard,
)
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported
from registry.formats.pharmml.symbols import BlockScope, first_expression

__all__ = ["individual_parameter", "parameter_model", "population_parameter", "random_variable"]


def population_parameter(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    decl = declaration(scope.table, scope.block, el)
    assign = child(el, "Assign")
    value = first_expression(assign) if assign is not None else None
    if value is None:  # a matrix may come as the estimation step's initial estimate
        value = estimated_value(el, scope)
    if value is not None and local(value) in ("Matrix", "Vector"):
        scope.table.vectors[decl.sbml] = 0  # read where a distribution uses it, never as a number
        return
    param = model.add(Parameter(decl.sbml, "population", el))
    for c in children(el):
        name = local(c)
        if name in ("Assign", "Equation"):
            param.rule = scope.parse(c)
        elif name in ("Distribution", "NormalDistribution"):
            # a prior: its mean is the typical value unless an initial estimate gives one
            param.rule, param.prior = prior_mean(c, scope), True
        elif name not in ("Description", "Name", "VariabilityReference"):
            raise Unsupported(c, f"<{name}> in a population parameter is not supported")


# prior means by distribution: ProbOnto name or UncertML element -> (parameter names, mean)
_MEANS: dict[str, tuple[tuple[str, ...], Callable[..., Expr]]] = {
    "Gamma1": (("shape", "scale"), lambda k, th: Op("times", (k, th))),
    "Gamma2": (("shape", "rate"), lambda k, r: Op("divide", (k, r))),
    "GammaDistribution": (("shape", "scale"), lambda k, th: Op("times", (k, th))),
    "LogNormal1": (
        ("meanLog", "stdevLog"),
        lambda m, s: _exp(Op("plus", (m, _half(Op("power", (s, Num(2.0))))))),
    ),
    "LogNormal2": (("meanLog", "varLog"), lambda m, v: _exp(Op("plus", (m, _half(v))))),
    "Uniform1": (("minimum", "maximum"), lambda a, b: _half(Op("plus", (a, b)))),
    "UniformDistribution": (("minimum", "maximum"), lambda a, b: _half(Op("plus", (a, b)))),
    "Beta1": (("alpha", "beta"), lambda a, b: Op("divide", (a, Op("plus", (a, b))))),
}


def _exp(x: Expr) -> Expr:
    return Op("exp", (x,))


def _half(x: Expr) -> Expr:
    return Op("divide", (x, Num(2.0)))


def prior_mean(el: etree._Element, scope: BlockScope) -> Expr:
    """The mean of a prior distribution (normal, log-normal, gamma, uniform, beta), as an expression
    of its (hyper)parameters; other distributions are refused."""
    holder = el
    if local(el) == "Distribution":
        inner = [c for c in children(el) if local(c) not in ("Description",)]
        if len(inner) != 1:
            raise Unsupported(el, "a prior needs one distribution")
        holder = inner[0]
        if local(holder) == "UncertML" and len(children(holder)) == 1:
            holder = children(holder)[0]
    name = holder.get("name", "") if local(holder) == "ProbOnto" else local(holder)
    if name in ("Normal1", "Normal2", "NormalDistribution", "StandardNormal1"):
        parent = el.getparent()
        assert parent is not None
        return _normal(parent, scope)[0]
    known = name in _MEANS or any(p.get("name") == "mean" for p in children(holder, "Parameter"))
    if not known:
        raise Unsupported(holder, f"prior distribution {name!r} is not supported (no mean taken)")
    if local(holder) == "ProbOnto":
        params = {p.get("name", ""): p for p in children(holder, "Parameter")}
        if "mean" in params:  # parameterised by its mean
            return expression_in(params["mean"], scope)
    names, mean = _MEANS[name]
    if local(holder) == "ProbOnto":
        if not set(names) <= params.keys():
            raise Unsupported(holder, f"{name} prior needs {', '.join(names)}")
        return mean(*(expression_in(params[n], scope) for n in names))
    parts = {local(c): c for c in children(holder)}
    if not set(names) <= parts.keys():
        raise Unsupported(holder, f"{name} prior needs {', '.join(names)}")
    return mean(*(_uncertml_value(parts[n], scope) for n in names))


def parameter_model(
    block: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    problems: Problems,
    levels: dict[tuple[str, str], str],
) -> None:
    for el in children(block):
        name = local(el)
        if name in PARAM_TAGS:
            guard(problems, population_parameter, el, scope, model)
        elif name == "RandomVariable":
            guard(problems, random_variable, el, scope, model, levels)
        elif name == "IndividualParameter":
            guard(problems, individual_parameter, el, scope, model, levels)
        elif name == "Correlation":
            guard(problems, _correlation, el, scope, model)
        elif name not in ("Description",):
            problems.add(el, f"<{name}> in a ParameterModel is not supported")


def random_variable(
    el: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    levels: dict[tuple[str, str], str],
) -> None:
    decl = declaration(scope.table, scope.block, el)
    vref = child(el, "VariabilityReference")
    ref = child(vref, "SymbRef") if vref is not None else None
    if ref is None:
        raise Unsupported(el, "random variable without a variability level (a Bayesian prior?)")
    level_decl = scope.table.lookup(ref, scope.block)
    level = levels.get((level_decl.block, level_decl.name))
    if level is None:
        raise Unsupported(ref, f"{level_decl.name!r} is not a variability level")
    dist = child(el, "Distribution")
    onto = child(dist, "ProbOnto") if dist is not None else None
    if onto is not None and onto.get("name", "").startswith("MultivariateNormal"):
        if level != "subject":
            raise Unsupported(el, "multivariate random variables are supported between subjects only")
        _multivariate(el, decl.sbml, decl.name, onto, scope, model)
        return
    mean, variance = _normal(el, scope)
    if not (isinstance(mean, Num) and mean.value == 0):
        raise Unsupported(el, "random variables must have mean 0")
    if level == "occasion":  # the SBML parameter carries the current occasion's effect
        decl.kind = "eta"
        model.add(Parameter(decl.sbml, "eta", el, value=0.0))
        model.occasion_etas.append(Eta(decl.sbml, decl.name, variance, el))
        return
    decl.kind = "epsilon" if level == "residual" else "eta"
    if level == "residual":
        model.add(Parameter(decl.sbml, "epsilon", el, value=0.0))
        model.epsilon_variance[decl.sbml] = variance
    else:
        model.add(Parameter(decl.sbml, "eta", el, value=0.0))
        model.etas.append(Eta(decl.sbml, decl.name, variance, el))


def _normal(el: etree._Element, scope: BlockScope) -> tuple[Expr, Expr]:
    """(mean, variance) of a normal distribution in ProbOnto or UncertML form."""
    dist = child(el, "Distribution")
    holder = dist if dist is not None else el
    for d in children(holder):
        name = local(d)
        if name == "UncertML" and len(children(d)) == 1:  # 0.8 wrapper around UncertML
            d, name = children(d)[0], local(children(d)[0])
        if name == "ProbOnto" and d.get("name") == "StandardNormal1":
            return Num(0.0), Num(1.0)
        if name == "ProbOnto":
            kind = d.get("name", "")
            params = {p.get("name", ""): p for p in children(d, "Parameter")}
            if kind not in ("Normal1", "Normal2", "Normal3") or "mean" not in params:
                raise Unsupported(d, f"distribution {kind!r} is not supported (only normal)")
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
            mean = _uncertml_value(parts["mean"], scope)
            if "stddev" in parts:
                return mean, Op("power", (_uncertml_value(parts["stddev"], scope), Num(2.0)))
            return mean, _uncertml_value(parts["variance"], scope)
        if name not in ("VariabilityReference", "Description"):
            raise Unsupported(d, f"distribution <{name}> is not supported (only normal)")
    raise Unsupported(el, "random variable without a distribution")


def _uncertml_value(el: etree._Element, scope: BlockScope) -> Expr:
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


def individual_parameter(
    el: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    levels: dict[tuple[str, str], str] | None = None,
) -> None:
    decl = declaration(scope.table, scope.block, el)
    param = model.add(Parameter(decl.sbml, "individual", el))
    structured = next((c for c in children(el) if local(c) in ("StructuredModel", "GaussianModel")), None)
    assign = next((c for c in children(el) if local(c) in ("Assign", "Equation")), None)
    if assign is not None:
        param.rule = scope.parse(assign)
        return
    dist = child(el, "Distribution")
    if structured is None and dist is not None and levels is not None:
        param.rule = _distributed(el, decl.name, dist, scope, model, levels)
        return
    if structured is None:
        other = children(el)
        what = "individual parameter form not supported"
        if any(local(c) in ("Distribution", "VariabilityReference") for c in other):
            what = "distributional (Bayesian hierarchical) individual parameters are not supported"
        raise Unsupported(other[0] if other else el, what)
    transform = "identity"
    population: Expr | None = None
    terms: list[Expr] = []
    etas: list[Expr] = []
    for part in children(structured):
        name = local(part)
        if name == "Transformation":
            transform = part.get("type") or (part.text or "").strip() or "identity"
        elif name in ("LinearCovariate", "PopulationValue"):
            holder = part if name == "LinearCovariate" else None
            if holder is None:
                population = expression_in(part, scope)
                continue
            for item in children(holder):
                iname = local(item)
                if iname in ("PopulationValue", "PopulationParameter"):
                    population = expression_in(item, scope)
                elif iname == "Covariate":
                    terms += _covariate_terms(item, scope, model)
                else:
                    raise Unsupported(item, f"<{iname}> in LinearCovariate is not supported")
        elif name == "GeneralCovariate":
            # h(phi) = general expression + random effects
            population = expression_in(part, scope)
            transform = "general-" + transform
        elif name == "RandomEffects":
            etas.append(expression_in(part, scope))
        else:
            raise Unsupported(part, f"<{name}> in an individual parameter is not supported")
    if population is None:
        raise Unsupported(structured, "individual parameter without a population value")
    param.rule = _structured_rule(structured, transform, population, terms, etas)


def _covariate_terms(item: etree._Element, scope: BlockScope, model: ReadModel) -> list[Expr]:
    """beta * cov for a continuous covariate; beta * (cov == category) for a categorical one."""
    cov: Expr | None = None
    out: list[Expr] = []
    for c in children(item):
        if local(c) != "FixedEffect":
            cov = scope.parse(c)
            continue
        if cov is None:
            raise Unsupported(item, "a covariate term needs its covariate before FixedEffect")
        beta = expression_in(c, scope)
        cats = [x for x in c.iter() if local(x) in ("Category", "CatRef")]
        if not cats:
            out.append(Op("times", (beta, cov)))
            continue
        cov_id = cov.name if isinstance(cov, Sym) else ""
        codes = model.categories.get(cov_id)
        if codes is None:
            raise Unsupported(c, "a category fixed effect needs a categorical covariate")
        for cat in cats:
            cat_id = cat.get("catId") or cat.get("catIdRef") or ""
            if cat_id not in codes:
                raise Unsupported(cat, f"dangling reference: no category {cat_id!r} of {cov_id}")
            indicator = Op("piecewise", (Num(1.0), Op("eq", (cov, Num(codes[cat_id]))), Num(0.0)))
            out.append(Op("times", (beta, indicator)))
    return out


def _structured_rule(
    el: etree._Element, transform: str, population: Expr, terms: list[Expr], etas: list[Expr]
) -> Expr:
    """phi = h^-1(h(pop) + sum(beta*cov) + sum(eta)), written the way modellers read it."""
    general = transform.startswith("general-")
    transform = transform.removeprefix("general-")
    extra = [*terms, *etas]
    if transform == "identity":
        return Op("plus", (population, *extra)) if extra else population
    if transform == "log":
        if general:  # the general covariate expression is already on the log scale
            return Op("exp", (Op("plus", (population, *etas)),) if etas else (population,))
        return Op("times", (population, Op("exp", (Op("plus", tuple(extra)),)))) if extra else population
    if transform == "logit":
        base = (
            population
            if general
            else Op("ln", (Op("divide", (population, Op("minus", (Num(1.0), population)))),))
        )
        lin = Op("plus", (base, *extra)) if extra else base
        return Op("divide", (Num(1.0), Op("plus", (Num(1.0), Op("exp", (Op("neg", (lin,)),))))))
    raise Unsupported(el, f"transformation {transform!r} of an individual parameter is not supported")


def _correlation(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    pairwise = child(el, "Pairwise")
    if pairwise is None:
        _correlation_matrix(el, scope, model)
        return
    rv = [child(pairwise, "RandomVariable1"), child(pairwise, "RandomVariable2")]
    if rv[0] is None or rv[1] is None:
        raise Unsupported(pairwise, "a pairwise correlation names two random variables")
    a, b = expression_in(rv[0], scope), expression_in(rv[1], scope)
    if not (isinstance(a, Sym) and isinstance(b, Sym)):
        raise Unsupported(pairwise, "correlated random variables must be symbols")
    coef = child(pairwise, "CorrelationCoefficient")
    cov = child(pairwise, "Covariance")
    if coef is not None:
        model.correlations.append(Correlation(a.name, b.name, "correlation", expression_in(coef, scope), el))
    elif cov is not None:
        model.correlations.append(Correlation(a.name, b.name, "covariance", expression_in(cov, scope), el))
    else:
        raise Unsupported(pairwise, "a correlation needs CorrelationCoefficient or Covariance")


def _correlation_matrix(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    """A correlation (``CorrMatrix``) or covariance (``CovMatrix``) matrix over a vector of random
    variables, as the pairwise entries below its diagonal (the variances stay the random
    variables' own); full or lower-triangular rows."""
    kind = {"CorrMatrix": "correlation", "CovMatrix": "covariance"}.get(el.get("deviationMatrixType", ""))
    matrix = child(el, "Matrix")
    assign = child(el, "Assign")
    vector = child(assign, "Vector") if assign is not None else None
    elements = child(vector, "VectorElements") if vector is not None else None
    if kind is None or matrix is None or elements is None:
        raise Unsupported(
            el,
            "a correlation is Pairwise, or a CorrMatrix/CovMatrix Matrix over a Vector of random variables",
        )
    names = []
    for item in children(elements):
        x = expression_in(item, scope) if local(item) == "Assign" else scope.parse(item)
        if not isinstance(x, Sym):
            raise Unsupported(item, "correlated random variables must be symbols")
        names.append(x.name)
    rows = children(matrix, "MatrixRow")
    if len(rows) != len(names):
        raise Unsupported(matrix, f"the matrix has {len(rows)} rows for {len(names)} random variables")
    for i, row in enumerate(rows):
        cells = [c for c in children(row) if local(c) != "Description"]
        if len(cells) not in (i + 1, len(names)):
            raise Unsupported(row, f"row {i + 1} of the matrix has {len(cells)} entries")
        for j in range(i):
            value = scope.parse(cells[j])
            model.correlations.append(Correlation(names[i], names[j], kind, value, row))


def _multivariate(
    el: etree._Element, sid: str, name: str, onto: etree._Element, scope: BlockScope, model: ReadModel
) -> None:
    """A multivariate normal random effect (mean 0; covariance, or a numeric precision matrix) as
    one ETA per component (``sid_1``, ``sid_2``, ... which ``<VectorSelector>`` cells name), with
    the matrix's diagonal as their variances and the rest as their covariances."""
    params = {p.get("name", ""): p for p in children(onto, "Parameter")}
    kind = onto.get("name", "")
    if "mean" not in params or not (
        {"covarianceMatrix", "precisionMatrix", "precision", "covariance"} & params.keys()
    ):
        raise Unsupported(onto, f"{kind} needs its mean and covariance (or precision) matrix")
    mean = _literal(params["mean"], "Vector", scope)
    if any(not (isinstance(m, Num) and m.value == 0) for row in mean for m in row):
        raise Unsupported(params["mean"], "random variables must have mean 0")
    key = next(k for k in ("covarianceMatrix", "covariance", "precisionMatrix", "precision") if k in params)
    matrix = _literal(params[key], "Matrix", scope)
    n = len(matrix)
    if any(len(row) not in (n, i + 1) for i, row in enumerate(matrix)) or n != len(mean[0]):
        raise Unsupported(
            params[key], f"a {n}x{n} matrix (full or lower-triangular) for {len(mean[0])} means"
        )
    if key.startswith("precision"):
        if any(not isinstance(x, Num) for row in matrix for x in row):
            raise Unsupported(params[key], "a precision matrix must be numbers (it is inverted here)")
        full = [[matrix[max(i, j)][min(i, j)].value for j in range(n)] for i in range(n)]  # type: ignore[union-attr]
        inv = np.linalg.inv(np.array(full))
        matrix = [[Num(float(inv[i, j])) for j in range(i + 1)] for i in range(n)]
    ids = [f"{sid}_{k}" for k in range(1, n + 1)]
    for k, eid in enumerate(ids):
        if eid in model.params:
            raise Unsupported(el, f"component {eid!r} of {name!r} clashes with another symbol")
        model.add(Parameter(eid, "eta", el, value=0.0))
        model.etas.append(Eta(eid, f"{name}[{k + 1}]", matrix[k][k], el))
        for j in range(k):
            model.correlations.append(Correlation(eid, ids[j], "covariance", matrix[k][j], el))
    scope.table.vectors[sid] = n


def _literal(holder: etree._Element, what: str, scope: BlockScope) -> list[list[Expr]]:
    """The rows of a ``Vector`` (one row) or ``Matrix`` in ``holder``, directly or through a
    population parameter that is assigned it."""
    inner = first_expression(holder)
    if inner is not None and local(inner) == "Assign":
        inner = first_expression(inner)
    if inner is not None and local(inner) == "SymbRef":
        decl = scope.table.lookup(inner, scope.block)
        assign = child(decl.element, "Assign")
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


def _distributed(
    el: etree._Element,
    name: str,
    dist: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    levels: dict[tuple[str, str], str],
) -> Expr:
    """An individual parameter given as a distribution between subjects, as its typical value and
    a random effect of its own: ``Normal(m, s)`` is ``m + eta``; ``LogNormal`` is ``exp(meanLog +
    eta)``, or ``p * exp(eta)`` when given by its median or (as MDL writes it) its ``mean``, the
    prediction; ``eta ~ N(0, s^2)`` with ``s`` the (log-scale) stdev, or the variance given."""
    vref = child(el, "VariabilityReference")
    ref = child(vref, "SymbRef") if vref is not None else None
    if ref is None:
        raise Unsupported(el, "a distributed individual parameter needs its variability level")
    level_decl = scope.table.lookup(ref, scope.block)
    if levels.get((level_decl.block, level_decl.name)) != "subject":
        raise Unsupported(ref, "distributed individual parameters are supported between subjects only")
    onto = child(dist, "ProbOnto")
    kind = onto.get("name", "") if onto is not None else ""
    params = {p.get("name", ""): p for p in children(onto, "Parameter")} if onto is not None else {}
    spread = next((k for k in ("stdev", "stdevLog", "var", "varLog", "precision") if k in params), None)
    centre = next((k for k in ("mean", "meanLog", "median") if k in params), None)
    if (
        kind not in ("Normal1", "Normal2", "Normal3", "LogNormal1", "LogNormal2", "LogNormal3")
        or not spread
        or not centre
    ):
        raise Unsupported(dist, f"an individual parameter distributed as {kind or 'this'} is not supported")
    s = expression_in(params[spread], scope)
    if spread == "precision":
        variance: Expr = Op("divide", (Num(1.0), s))
    else:
        variance = s if spread.startswith("var") else Op("power", (s, Num(2.0)))
    eta = scope.table.fresh(f"eta_{name}")
    model.add(Parameter(eta, "eta", el, value=0.0))
    model.etas.append(Eta(eta, f"eta_{name}", variance, el))
    m = expression_in(params[centre], scope)
    if kind.startswith("Normal"):
        return Op("plus", (m, Sym(eta)))
    if centre == "meanLog":
        return Op("exp", (Op("plus", (m, Sym(eta))),))
    return Op("times", (m, Op("exp", (Sym(eta),))))
