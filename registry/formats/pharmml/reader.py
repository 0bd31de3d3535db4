"""Read a PharmML ModelDefinition into a flat model: SBML parameters with their rules, random
effects, covariates and observations. Everything that cannot be read is a problem with its path.

Version differences handled here (0.6 -> 0.8 -> 0.9): ``SimpleParameter`` / ``PopulationParameter``,
``GaussianModel`` / ``StructuredModel``, ``Transformation`` as text or ``type``, the population
value as ``LinearCovariate/PopulationParameter`` or ``PopulationValue``, ``math:Equation`` wrappers,
UncertML or ProbOnto normal distributions, and 0.9's ``ct:Assign`` around fixed effects, random
effects and correlated variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from registry.formats.pharmml.document import Document, Problems, child, children, local, xml_path
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported, substitute, symbols
from registry.formats.pharmml.symbols import (
    BlockScope,
    Declaration,
    SymbolTable,
    first_expression,
)

__all__ = ["Correlation", "Covariate", "Eta", "Observation", "Parameter", "ReadModel", "read_model"]

_PARAM_TAGS = ("PopulationParameter", "SimpleParameter", "Parameter")


@dataclass
class Parameter:
    id: str
    kind: str
    element: etree._Element  # where it is declared (or the macro that made it)
    value: float | None = None
    rule: Expr | None = None
    rate: Expr | None = None
    initial: Expr | None = None

    @property
    def path(self) -> str:
        return xml_path(self.element)

    @property
    def line(self) -> int | None:
        return self.element.sourceline


@dataclass
class Eta:
    id: str
    name: str
    variance: Expr
    element: etree._Element


@dataclass
class Correlation:
    first: str
    second: str
    kind: str  # "correlation" or "covariance"
    value: Expr
    element: etree._Element


@dataclass
class Covariate:
    id: str
    name: str
    element: etree._Element
    reference: float | None = None


@dataclass
class Observation:
    id: str
    output: Expr
    error: Expr
    epsilon_variance: Expr
    log_transformed: bool
    element: etree._Element


@dataclass
class ReadModel:
    table: SymbolTable
    params: dict[str, Parameter] = field(default_factory=dict)
    etas: list[Eta] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    covariates: list[Covariate] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    pkmacros: list[tuple[str, etree._Element]] = field(default_factory=list)  # (block, element)
    categories: dict[str, dict[str, float]] = field(default_factory=dict)  # covariate -> codes
    dataset_category_codes: dict[str, dict[str, float]] = field(default_factory=dict)
    epsilon_variance: dict[str, Expr] = field(default_factory=dict)

    def add(self, param: Parameter) -> Parameter:
        self.params[param.id] = param
        return param


def _declare(doc: Document, table: SymbolTable, problems: Problems) -> etree._Element | None:
    root = doc.root
    iv = child(root, "IndependentVariable")
    if iv is not None:
        table.time_symbol = iv.get("symbId")
    for fn in children(root, "FunctionDefinition"):
        table.functions[fn.get("symbId", "")] = fn
    mdef = child(root, "ModelDefinition")
    if mdef is None:
        problems.add(root, "no ModelDefinition")
        return None
    for block in children(mdef):
        blk = block.get("blkId", "")
        kind = local(block)
        if kind == "VariabilityModel":
            for level in children(block, "Level"):
                table.declare(blk, level.get("symbId", ""), "level", level)
        elif kind == "CovariateModel":
            for el in children(block):
                if local(el) in _PARAM_TAGS:  # parameters of covariate distributions
                    table.declare(blk, el.get("symbId", ""), "population", el)
            for cov in children(block, "Covariate"):
                table.declare(blk, cov.get("symbId", ""), "covariate", cov)
                for tc in cov.iter("{*}TransformedCovariate"):
                    table.declare(blk, tc.get("symbId", ""), "transformed-covariate", tc)
        elif kind == "ParameterModel":
            for el in children(block):
                name = local(el)
                if name in _PARAM_TAGS:
                    table.declare(blk, el.get("symbId", ""), "population", el)
                elif name == "RandomVariable":
                    table.declare(blk, el.get("symbId", ""), "random", el)
                elif name == "IndividualParameter":
                    table.declare(blk, el.get("symbId", ""), "individual", el)
        elif kind == "StructuralModel":
            for el in children(block):
                name = local(el)
                if name == "Variable":
                    table.declare(blk, el.get("symbId", ""), "variable", el)
                elif name == "DerivativeVariable":
                    table.declare(blk, el.get("symbId", ""), "derivative", el)
                elif name in _PARAM_TAGS:
                    table.declare(blk, el.get("symbId", ""), "population", el)
        elif kind == "ObservationModel":
            for data in children(block):
                for el in children(data):
                    name = local(el)
                    if name in _PARAM_TAGS:
                        table.declare(blk, el.get("symbId", ""), "population", el)
                    elif name == "RandomVariable":
                        table.declare(blk, el.get("symbId", ""), "random", el)
                    elif name in ("Standard", "General"):
                        table.declare(blk, el.get("symbId", ""), "observation", el)
    table.assign_ids()
    return mdef


def read_model(doc: Document, problems: Problems) -> ReadModel:
    """The flat model of ``doc``'s ModelDefinition (problems collected, not raised)."""
    table = SymbolTable(problems)
    mdef = _declare(doc, table, problems)
    model = ReadModel(table, dataset_category_codes=_dataset_category_codes(doc.root))
    if mdef is None:
        return model
    levels = _variability_levels(mdef, problems)
    order = ["VariabilityModel", "CovariateModel", "ParameterModel", "StructuralModel"]
    blocks = sorted(children(mdef), key=lambda b: order.index(local(b)) if local(b) in order else len(order))
    for block in blocks:
        blk = block.get("blkId", "")
        scope = table.scope(blk)
        kind = local(block)
        try:
            if kind == "VariabilityModel":
                continue
            if kind == "CovariateModel":
                _covariate_model(block, scope, model, problems)
            elif kind == "ParameterModel":
                _parameter_model(block, scope, model, problems, levels)
            elif kind == "StructuralModel":
                _structural_model(block, scope, model, problems)
            elif kind == "ObservationModel":
                _observation_model(block, scope, model, problems, levels)
            else:
                problems.add(block, f"<{kind}> in ModelDefinition is not supported")
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    return model


def _variability_levels(mdef: etree._Element, problems: Problems) -> dict[tuple[str, str], str]:
    """(block, level) -> "subject" | "occasion" | "residual"."""
    out: dict[tuple[str, str], str] = {}
    for vm in children(mdef, "VariabilityModel"):
        blk = vm.get("blkId", "")
        kind = vm.get("type", "")
        for level in children(vm, "Level"):
            nested = child(level, "ParentLevel") is not None
            if kind == "residualError":
                out[(blk, level.get("symbId", ""))] = "residual"
            else:
                out[(blk, level.get("symbId", ""))] = "occasion" if nested else "subject"
    return out


def _guard(problems: Problems, fn, *args):  # type: ignore[no-untyped-def]
    """Run one element's reading; an Unsupported becomes a problem and reading goes on."""
    try:
        return fn(*args)
    except Unsupported as exc:
        problems.add(exc.element, exc.message)
        return None


def _decl(table: SymbolTable, block: str | None, el: etree._Element) -> Declaration:
    decl = table.declarations.get((block or "", el.get("symbId", "")))
    if decl is None:
        raise Unsupported(el, "element without a usable symbId")
    return decl


def _expr_in(element: etree._Element, scope: BlockScope) -> Expr:
    inner = first_expression(element)
    if inner is None:
        raise Unsupported(element, f"<{local(element)}> holds no expression")
    return scope.parse(inner)


def _covariate_model(block: etree._Element, scope: BlockScope, model: ReadModel, problems: Problems) -> None:
    table = scope.table
    for cov in children(block):
        if local(cov) in _PARAM_TAGS:
            _guard(problems, _population_parameter, cov, scope, model)
            continue
        if local(cov) != "Covariate":
            problems.add(cov, f"<{local(cov)}> in a CovariateModel is not supported")
            continue
        decl = _decl(table, scope.block, cov)
        continuous = child(cov, "Continuous")
        categorical = child(cov, "Categorical")
        if categorical is not None:
            _categorical_covariate(cov, categorical, decl.sbml, model, problems)
            continue
        if continuous is None:
            problems.add(cov, "a covariate must be continuous or categorical")
            continue
        info = Covariate(decl.sbml, decl.name, cov)
        model.covariates.append(info)
        param = model.add(Parameter(decl.sbml, "covariate", cov))
        for tr in children(continuous, "Transformation"):
            tc = child(tr, "TransformedCovariate")
            assign = next((c for c in children(tr) if local(c) in ("Assign", "Equation")), None)
            if tc is None or assign is None:
                problems.add(tr, "a covariate transformation needs a TransformedCovariate and a value")
                continue
            target = _decl(table, scope.block, tc)
            expr = _guard(problems, scope.parse, assign)
            if expr is None:
                continue
            model.add(Parameter(target.sbml, "transformed-covariate", tr, rule=expr))
            ref = _centring_value(expr, decl.sbml)
            if ref is not None and info.reference is None:
                info.reference = ref
        param.value = info.reference if info.reference is not None else 0.0


def _categorical_covariate(
    cov: etree._Element, categorical: etree._Element, sid: str, model: ReadModel, problems: Problems
) -> None:
    """Categories coded as numbers: the dataset's CategoryMapping codes, else 0, 1, 2, ..."""
    cats = [c.get("catId", "") for c in children(categorical, "Category")]
    if not cats or "" in cats:
        problems.add(categorical, "a categorical covariate needs categories with catId")
        return
    for extra in children(categorical):
        if local(extra) != "Category":
            problems.add(extra, f"<{local(extra)}> of a categorical covariate is not supported")
            return
    codes = {c: float(i) for i, c in enumerate(cats)}
    for mapping in model.dataset_category_codes.get(cov.get("symbId", ""), {}).items():
        codes[mapping[0]] = mapping[1]
    model.categories[sid] = codes
    info = Covariate(sid, cov.get("symbId", ""), cov)
    model.covariates.append(info)
    model.add(Parameter(sid, "covariate", cov, value=codes[cats[0]]))


def _dataset_category_codes(root: etree._Element) -> dict[str, dict[str, float]]:
    """covariate symbId -> {catId: code} from the datasets' ``CategoryMapping``."""
    out: dict[str, dict[str, float]] = {}
    for cm in root.iter("{*}ColumnMapping"):
        ref, cat = child(cm, "SymbRef"), child(cm, "CategoryMapping")
        if ref is None or cat is None:
            continue
        for m in children(cat, "Map"):
            try:
                out.setdefault(ref.get("symbIdRef", ""), {})[m.get("modelSymbol", "")] = float(
                    m.get("dataSymbol", "")
                )
            except ValueError:
                continue
    return out


def _centring_value(expr: Expr, cov: str) -> float | None:
    """``c`` when ``expr`` is ``cov/c``, ``log(cov/c)`` or ``cov - c``: the reference value."""
    if isinstance(expr, Op) and expr.op == "ln" and len(expr.args) == 1:
        expr = expr.args[0]
    if (
        isinstance(expr, Op)
        and expr.op in ("divide", "minus")
        and len(expr.args) == 2
        and expr.args[0] == Sym(cov)
        and isinstance(expr.args[1], Num)
    ):
        return expr.args[1].value
    return None


def _population_parameter(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    decl = _decl(scope.table, scope.block, el)
    param = model.add(Parameter(decl.sbml, "population", el))
    for c in children(el):
        name = local(c)
        if name in ("Assign", "Equation"):
            param.rule = scope.parse(c)
        elif name in ("Distribution", "NormalDistribution", "VariabilityReference"):
            raise Unsupported(c, "Bayesian priors on population parameters are not supported")
        elif name not in ("Description", "Name"):
            raise Unsupported(c, f"<{name}> in a population parameter is not supported")


def _parameter_model(
    block: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    problems: Problems,
    levels: dict[tuple[str, str], str],
) -> None:
    for el in children(block):
        name = local(el)
        if name in _PARAM_TAGS:
            _guard(problems, _population_parameter, el, scope, model)
        elif name == "RandomVariable":
            _guard(problems, _random_variable, el, scope, model, levels)
        elif name == "IndividualParameter":
            _guard(problems, _individual_parameter, el, scope, model)
        elif name == "Correlation":
            _guard(problems, _correlation, el, scope, model)
        elif name not in ("Description",):
            problems.add(el, f"<{name}> in a ParameterModel is not supported")


def _random_variable(
    el: etree._Element,
    scope: BlockScope,
    model: ReadModel,
    levels: dict[tuple[str, str], str],
) -> None:
    decl = _decl(scope.table, scope.block, el)
    vref = child(el, "VariabilityReference")
    ref = child(vref, "SymbRef") if vref is not None else None
    if ref is None:
        raise Unsupported(el, "random variable without a variability level (a Bayesian prior?)")
    level_decl = scope.table.lookup(ref, scope.block)
    level = levels.get((level_decl.block, level_decl.name))
    if level is None:
        raise Unsupported(ref, f"{level_decl.name!r} is not a variability level")
    mean, variance = _normal(el, scope)
    if not (isinstance(mean, Num) and mean.value == 0):
        raise Unsupported(el, "random variables must have mean 0")
    if level == "occasion":
        raise Unsupported(el, "inter-occasion variability is not supported")
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
            if kind not in ("Normal1", "Normal2") or "mean" not in params:
                raise Unsupported(d, f"distribution {kind!r} is not supported (only normal)")
            mean = _expr_in(params["mean"], scope)
            if kind == "Normal1" and "stdev" in params:
                sd = _expr_in(params["stdev"], scope)
                return mean, Op("power", (sd, Num(2.0)))
            if kind == "Normal2" and "var" in params:
                return mean, _expr_in(params["var"], scope)
            raise Unsupported(d, f"{kind} needs its stdev or var parameter")
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


def _symbol_in(el: etree._Element, scope: BlockScope) -> Expr:
    """The expression in ``el``, directly or wrapped in ``ct:Assign`` (0.9)."""
    return _expr_in(el, scope)


def _individual_parameter(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    decl = _decl(scope.table, scope.block, el)
    param = model.add(Parameter(decl.sbml, "individual", el))
    structured = next((c for c in children(el) if local(c) in ("StructuredModel", "GaussianModel")), None)
    assign = next((c for c in children(el) if local(c) in ("Assign", "Equation")), None)
    if assign is not None:
        param.rule = scope.parse(assign)
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
                population = _expr_in(part, scope)
                continue
            for item in children(holder):
                iname = local(item)
                if iname in ("PopulationValue", "PopulationParameter"):
                    population = _expr_in(item, scope)
                elif iname == "Covariate":
                    terms += _covariate_terms(item, scope, model)
                else:
                    raise Unsupported(item, f"<{iname}> in LinearCovariate is not supported")
        elif name == "GeneralCovariate":
            # h(phi) = general expression + random effects
            population = _expr_in(part, scope)
            transform = "general-" + transform
        elif name == "RandomEffects":
            etas.append(_symbol_in(part, scope))
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
        beta = _expr_in(c, scope)
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
        raise Unsupported(el, "only pairwise correlations are supported (not a matrix)")
    rv = [child(pairwise, "RandomVariable1"), child(pairwise, "RandomVariable2")]
    if rv[0] is None or rv[1] is None:
        raise Unsupported(pairwise, "a pairwise correlation names two random variables")
    a, b = _symbol_in(rv[0], scope), _symbol_in(rv[1], scope)
    if not (isinstance(a, Sym) and isinstance(b, Sym)):
        raise Unsupported(pairwise, "correlated random variables must be symbols")
    coef = child(pairwise, "CorrelationCoefficient")
    cov = child(pairwise, "Covariance")
    if coef is not None:
        model.correlations.append(Correlation(a.name, b.name, "correlation", _expr_in(coef, scope), el))
    elif cov is not None:
        model.correlations.append(Correlation(a.name, b.name, "covariance", _expr_in(cov, scope), el))
    else:
        raise Unsupported(pairwise, "a correlation needs CorrelationCoefficient or Covariance")


def _structural_model(block: etree._Element, scope: BlockScope, model: ReadModel, problems: Problems) -> None:
    table = scope.table
    for el in children(block):
        name = local(el)
        if name in _PARAM_TAGS:
            _guard(problems, _population_parameter, el, scope, model)
            continue
        if name == "PKmacros":
            model.pkmacros.append((scope.block or "", el))
            continue
        if name not in ("Variable", "DerivativeVariable"):
            if name not in ("Description", "Name"):
                problems.add(el, f"<{name}> in a StructuralModel is not supported")
            continue
        decl = table.declarations.get((scope.block or "", el.get("symbId", "")))
        if decl is None:  # refused at declaration (no symbId)
            continue
        kind = "state" if name == "DerivativeVariable" else "variable"
        param = model.add(Parameter(decl.sbml, kind, el))
        assign = child(el, "Assign")
        if assign is not None:
            expr = _guard(problems, scope.parse, assign)
            if kind == "state":
                param.rate = expr
            else:
                param.rule = expr
        for c in children(el):
            if local(c) not in ("Assign", "IndependentVariable", "InitialCondition", "Description"):
                problems.add(c, f"<{local(c)}> in a {name} is not supported")
        if kind == "state":
            if assign is None:
                problems.add(el, "derivative variable without its derivative")
            _guard(problems, _initial_condition, el, scope, param)


def _initial_condition(el: etree._Element, scope: BlockScope, param: Parameter) -> None:
    ic = child(el, "InitialCondition")
    param.value = 0.0
    if ic is None:
        return
    value = child(ic, "InitialValue")
    time = child(ic, "InitialTime")
    if time is not None:
        t0 = _expr_in(time, scope)
        if not (isinstance(t0, Num) and t0.value == 0):
            raise Unsupported(time, "initial conditions at a time other than 0 are not supported")
    if value is not None:
        expr = _expr_in(value, scope)
        if isinstance(expr, Num):
            param.value = expr.value
        else:
            param.initial = expr


def _observation_model(
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
            if name in _PARAM_TAGS:
                _guard(problems, _population_parameter, el, scope, model)
            elif name == "RandomVariable":
                _guard(problems, _random_variable, el, scope, model, levels)
            elif name == "Standard":
                _guard(problems, _standard, el, scope, model)
            elif name == "General":
                _guard(problems, _general, el, scope, model)
            elif name != "Description":
                problems.add(el, f"<{name}> in ContinuousData is not supported")


def _terms(expr: Expr, op: str) -> list[Expr]:
    if isinstance(expr, Op) and expr.op == op:
        return [t for a in expr.args for t in _terms(a, op)]
    return [expr]


def _general(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    """``y = f + g * eps`` written out: split into prediction f and error SD g, as Standard."""
    decl = _decl(scope.table, scope.block, el)
    assign = child(el, "Assign")
    if assign is None:
        raise Unsupported(el, "a general observation model needs its equation")
    log = False
    for tr in children(el):
        if local(tr) in ("LHSTransformation", "Transformation"):
            kind = tr.get("type") or (tr.text or "").strip()
            if kind != "log":
                raise Unsupported(tr, f"observation transformation {kind!r} is not supported")
            log = True
        elif local(tr) not in ("Assign", "Description"):
            raise Unsupported(tr, f"<{local(tr)}> in a general observation model is not supported")
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
        sd = substitute(sd, {})  # the SD may name the prediction's parts; evaluated as written
        prediction = Sym(pid)
    model.observations.append(Observation(decl.sbml, prediction, sd, model.epsilon_variance[e], log, el))


def _standard(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    decl = _decl(scope.table, scope.block, el)
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
    eps = _symbol_in(resid, scope)
    if not isinstance(eps, Sym):
        raise Unsupported(resid, "the residual error must name a random variable")
    variance = model.epsilon_variance.get(eps.name)
    if variance is None:
        raise Unsupported(resid, f"{eps.name!r} is not a residual-error random variable")
    model.observations.append(
        Observation(decl.sbml, _symbol_in(output, scope), _symbol_in(error, scope), variance, log, el)
    )
