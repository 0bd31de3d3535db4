"""ParameterModel: population parameters, random variables (normal, in ProbOnto or UncertML
form), individual parameters (general form, or structured: transformation, population value,
covariate fixed effects, random effects) and pairwise correlations."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from lxml import etree

from registry.formats.pharmml.distributions import (
    MULTIVARIATE,
    WISHARTS,
    distribution_of,
    estimated_value,
    literal,
    normal,
    numeric_matrix,
    prior_mean,
    prior_vector,
)
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
    if value is None:  # a covariance matrix may come as the estimation step's initial estimate
        estimate = estimated_value(el, scope)
        value = estimate if estimate is not None and local(estimate) == "Matrix" else None
    if value is not None and local(value) == "Vector":
        _vector_parameter(el, decl.sbml, decl.name, literal(el, "Vector", scope)[0], scope, model, False)
        return
    if value is not None and local(value) == "Matrix":
        scope.table.vectors[decl.sbml] = 0  # read where a distribution uses it, never as a number
        return
    dist = next((c for c in children(el) if local(c) in ("Distribution", "NormalDistribution")), None)
    if dist is not None and assign is None and _prior_value(el, decl.sbml, decl.name, scope, model):
        return
    size = model.vector_estimates.get(decl.sbml)
    if dist is None and assign is None and size:  # its value: a Vector in the modelling steps
        _vector_parameter(el, decl.sbml, decl.name, [None] * size, scope, model, False)
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


def _prior_value(el: etree._Element, sid: str, name: str, scope: BlockScope, model: ReadModel) -> bool:
    """A vector- or matrix-valued prior of ``el`` (a population parameter, or a random variable at
    a population level): its mean vector as one parameter per cell; a matrix is read where a
    distribution uses it. False for a scalar prior."""
    if child(el, "Distribution") is None:
        return False
    holder, kind = distribution_of(el)
    if kind in WISHARTS:
        scope.table.vectors[sid] = 0
        return True
    vector = prior_vector(el, scope)
    if vector is None:
        return False
    if kind == "RandomSample":  # the symbols its columns fill are its draws, not model values
        for ref in holder.iter("{*}SymbRef"):
            found = model.params.get(scope.table.lookup(ref, scope.block).sbml)
            if found is not None and found.kind == "population" and found.rule is None:
                del model.params[found.id]
        if len(vector) == 1 and next(holder.iter("{*}VectorSelector"), None) is None:  # a scalar
            model.add(Parameter(sid, "population", el, rule=vector[0], prior=True))
            return True
    _vector_parameter(el, sid, name, vector, scope, model, True)
    return True


def _vector_parameter(
    el: etree._Element,
    sid: str,
    name: str,
    cells: list[Expr] | list[None],
    scope: BlockScope,
    model: ReadModel,
    prior: bool,
) -> None:
    """A vector-valued population parameter as one SBML parameter per cell (``sid_1``, ``sid_2``,
    ... which ``<VectorSelector>`` cells name); a cell None takes its value from the modelling steps."""
    for k, cell in enumerate(cells, start=1):
        cid = f"{sid}_{k}"
        if cid in model.params:
            raise Unsupported(el, f"cell {cid!r} of {name!r} clashes with another symbol")
        model.add(Parameter(cid, "population", el, rule=cell, prior=prior))
    scope.table.vectors[sid] = len(cells)


def _prior_variable(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    """A random variable at a population level (a Bayesian model's prior, or a random variable
    without a level): a population parameter whose value the prior gives, unless an initial
    estimate does."""
    decl = declaration(scope.table, scope.block, el)
    decl.kind = "population"
    if _prior_value(el, decl.sbml, decl.name, scope, model):
        return
    dist, _name = distribution_of(el)
    holder = child(el, "Distribution")
    mean = prior_mean(holder if holder is not None else dist, scope)
    model.add(Parameter(decl.sbml, "population", el, rule=mean, prior=True))


def parameter_model(
    block: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    problems: Problems,
    levels: dict[tuple[str, str], str],
) -> None:
    """Read a ParameterModel: population parameters first (the vectors and matrices distributions
    use are read before them, wherever the file declares them), then the rest in file order."""
    elements = children(block)
    for el in [e for e in elements if local(e) in PARAM_TAGS] + [
        e for e in elements if local(e) not in PARAM_TAGS
    ]:
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
    level_decl = scope.table.lookup(ref, scope.block) if ref is not None else None
    level = levels.get((level_decl.block, level_decl.name)) if level_decl is not None else "population"
    if level is None:
        assert level_decl is not None
        raise Unsupported(ref, f"{level_decl.name!r} is not a variability level")
    if level == "population":
        _prior_variable(el, scope, model)
        return
    dist = child(el, "Distribution")
    onto = child(dist, "ProbOnto") if dist is not None else None
    if onto is not None and onto.get("name", "").startswith("MultivariateNormal"):
        if level != "subject":
            raise Unsupported(el, "multivariate random variables are supported between subjects only")
        _multivariate(el, decl.sbml, decl.name, onto, scope, model)
        return
    mean, variance = normal(el, scope)
    if not (isinstance(mean, Num) and mean.value == 0):
        if level != "subject":
            raise Unsupported(
                el, "a random variable with a mean other than 0 is supported between subjects only"
            )
        # between subjects, N(m, v) is m + eta with eta ~ N(0, v): an individual quantity
        eta = scope.table.fresh(f"eta_{decl.name}")
        model.add(Parameter(eta, "eta", el, value=0.0))
        model.etas.append(Eta(eta, f"eta_{decl.name}", variance, el))
        decl.kind = "individual"
        model.add(Parameter(decl.sbml, "individual", el, rule=Op("plus", (mean, Sym(eta)))))
        return
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


def individual_parameter(
    el: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    levels: dict[tuple[str, str], str] | None = None,
) -> None:
    decl = declaration(scope.table, scope.block, el)
    dist = child(el, "Distribution")
    onto = child(dist, "ProbOnto") if dist is not None else None
    if onto is not None and onto.get("name", "") in MULTIVARIATE and levels is not None:
        _level(el, scope, levels)
        _multivariate_parameter(el, decl.sbml, decl.name, onto, scope, model)
        return
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
    mean, ids = _multivariate_etas(el, sid, name, onto, scope, model, lambda k: f"{sid}_{k}")
    if any(not (isinstance(m, Num) and m.value == 0) for m in mean):
        raise Unsupported(onto, "random variables must have mean 0")


def _multivariate_etas(
    el: etree._Element,
    sid: str,
    name: str,
    onto: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    eta_id: Callable[[int], str],
) -> tuple[list[Expr], list[str]]:
    """The mean vector of a multivariate normal distribution and one ETA per component (``eta_id(k)``,
    k from 1) distributed as its covariance (or numeric precision) matrix says; the vector's size is
    recorded for ``<VectorSelector>`` cells of ``sid``."""
    params = {p.get("name", ""): p for p in children(onto, "Parameter")}
    kind = onto.get("name", "")
    if "mean" not in params or not (
        {"covarianceMatrix", "precisionMatrix", "precision", "covariance"} & params.keys()
    ):
        raise Unsupported(onto, f"{kind} needs its mean and covariance (or precision) matrix")
    mean = literal(params["mean"], "Vector", scope)[0]
    key = next(k for k in ("covarianceMatrix", "covariance", "precisionMatrix", "precision") if k in params)
    if key.startswith("precision"):  # inverted here: numbers only
        inv = np.linalg.inv(numeric_matrix(params[key], scope, {}))
        matrix: list[list[Expr]] = [[Num(float(inv[i, j])) for j in range(i + 1)] for i in range(len(inv))]
    else:
        matrix = literal(params[key], "Matrix", scope, {})
    n = len(matrix)
    if any(len(row) not in (n, i + 1) for i, row in enumerate(matrix)) or n != len(mean):
        raise Unsupported(params[key], f"a {n}x{n} matrix (full or lower-triangular) for {len(mean)} means")
    ids = [eta_id(k) for k in range(1, n + 1)]
    for k, eid in enumerate(ids):
        if eid in model.params:
            raise Unsupported(el, f"component {eid!r} of {name!r} clashes with another symbol")
        model.add(Parameter(eid, "eta", el, value=0.0))
        model.etas.append(Eta(eid, f"{name}[{k + 1}]", matrix[k][k], el))
        for j in range(k):
            model.correlations.append(Correlation(eid, ids[j], "covariance", matrix[k][j], el))
    scope.table.vectors[sid] = n
    return mean, ids


def _multivariate_parameter(
    el: etree._Element, sid: str, name: str, onto: etree._Element, scope: BlockScope, model: ReadModel
) -> None:
    """A vector-valued individual parameter distributed between subjects as a multivariate normal
    (WinBUGS' ``theta[i, 1:n] ~ dmnorm(mu, tau)``): cell k is ``mu_k + eta_k`` (``sid_k``, which
    ``<VectorSelector>`` cells name), the ETAs distributed as the covariance (or precision) says."""
    mean, etas = _multivariate_etas(
        el, sid, name, onto, scope, model, lambda k: scope.table.fresh(f"eta_{sid}_{k}")
    )
    for k, (m, eta) in enumerate(zip(mean, etas, strict=True), start=1):
        model.add(Parameter(f"{sid}_{k}", "individual", el, rule=Op("plus", (m, Sym(eta)))))


def _level(el: etree._Element, scope: BlockScope, levels: dict[tuple[str, str], str]) -> None:
    """Check that a distributed individual parameter varies between subjects."""
    vref = child(el, "VariabilityReference")
    ref = child(vref, "SymbRef") if vref is not None else None
    if ref is None:
        raise Unsupported(el, "a distributed individual parameter needs its variability level")
    level_decl = scope.table.lookup(ref, scope.block)
    if levels.get((level_decl.block, level_decl.name)) != "subject":
        raise Unsupported(ref, "distributed individual parameters are supported between subjects only")


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
    _level(el, scope, levels)
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
