"""Read a PharmML ModelDefinition into a flat model: SBML parameters with their rules, random
effects, covariates and observations. Everything that cannot be read is a problem with its path.
This module declares the symbols and reads the covariate and structural models; the parameter
and observation models are in ``parameters.py`` and ``observations.py``.

Version differences handled across them (0.6 -> 0.8 -> 0.9): ``SimpleParameter`` / ``PopulationParameter``,
``GaussianModel`` / ``StructuredModel``, ``Transformation`` as text or ``type``, the population
value as ``LinearCovariate/PopulationParameter`` or ``PopulationValue``, ``math:Equation`` wrappers,
UncertML or ProbOnto normal distributions, and 0.9's ``ct:Assign`` around fixed effects, random
effects and correlated variables.
"""

from __future__ import annotations

from lxml import etree

from registry.formats.pharmml.distributions import MULTIVARIATE, distribution_of
from registry.formats.pharmml.document import Document, Problems, child, children, local
from registry.formats.pharmml.flatmodel import (
    PARAM_TAGS,
    Covariate,
    Parameter,
    ReadModel,
    declaration,
    expression_in,
    guard,
)
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Unsupported
from registry.formats.pharmml.observations import observation_model
from registry.formats.pharmml.parameters import individual_parameter, parameter_model, population_parameter
from registry.formats.pharmml.symbols import BlockScope, SymbolTable, first_expression

__all__ = ["ReadModel", "read_model"]


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
                if local(el) in PARAM_TAGS:  # parameters of covariate distributions
                    table.declare(blk, el.get("symbId", ""), "population", el)
            for cov in children(block, "Covariate"):
                table.declare(blk, cov.get("symbId", ""), "covariate", cov)
                for tc in cov.iter("{*}TransformedCovariate"):
                    table.declare(blk, tc.get("symbId", ""), "transformed-covariate", tc)
        elif kind == "ParameterModel":
            for el in children(block):
                name = local(el)
                if name in PARAM_TAGS:
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
                elif name in PARAM_TAGS:
                    table.declare(blk, el.get("symbId", ""), "population", el)
                elif name == "IndividualParameter":  # allowed here since PharmML 0.9
                    table.declare(blk, el.get("symbId", ""), "individual", el)
        elif kind == "ObservationModel":
            for data in children(block):
                for el in children(data):
                    name = local(el)
                    if name in PARAM_TAGS:
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
    levels = _variability_levels(mdef)
    model.levels = levels
    model.vector_estimates = _vector_estimates(doc.root, table)
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
                parameter_model(block, scope, model, problems, levels)
            elif kind == "StructuralModel":
                _structural_model(block, scope, model, problems)
            elif kind == "ObservationModel":
                observation_model(block, scope, model, problems, levels)
            else:
                problems.add(block, f"<{kind}> in ModelDefinition is not supported")
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    for el, vector, k in table.vector_uses:  # cells of multivariate random variables
        size = table.vectors.get(vector)
        if size is None:
            problems.add(el, "<VectorSelector> of a symbol that is not a vector (nor multivariate normal)")
        elif not 1 <= k <= size:
            problems.add(el, f"cell {k} of a vector of {size}")
    return model


def _variability_levels(mdef: etree._Element) -> dict[tuple[str, str], str]:
    """(block, level) -> "subject" | "occasion" | "population" | "residual".

    A level the dataset's ``id`` column maps to is the subjects' level, one its ``occasion`` column
    maps to an occasion level. Otherwise a nested level is an occasion inside subjects when random
    effects (zero-mean normal random variables, distributed individual parameters) live on its
    parent; a level that has nested levels and no random effects (only priors: a Bayesian model's
    "population" level) is a population level, and the level under it the subjects' level. A
    level above the subjects' level is a population level.
    """
    root = mdef.getroottree().getroot()
    columns = _level_columns(root)
    with_effects = set()
    for el in mdef.iter("{*}RandomVariable", "{*}IndividualParameter"):
        vref = child(el, "VariabilityReference")
        ref = child(vref, "SymbRef") if vref is not None else None
        if ref is not None and (local(el) == "IndividualParameter" or _is_random_effect(el)):
            with_effects.add(ref.get("symbIdRef", ""))
    parents: dict[tuple[str, str], str] = {}
    out: dict[tuple[str, str], str] = {}
    for vm in children(mdef, "VariabilityModel"):
        blk = vm.get("blkId", "")
        nested = {r.get("symbIdRef", "") for p in vm.iter("{*}ParentLevel") for r in children(p, "SymbRef")}
        for level in children(vm, "Level"):
            name = level.get("symbId", "")
            parent = child(level, "ParentLevel")
            parent_ref = child(parent, "SymbRef") if parent is not None else None
            if parent_ref is not None:
                parents[(blk, name)] = parent_ref.get("symbIdRef", "")
            if vm.get("type", "") == "residualError":
                out[(blk, name)] = "residual"
            elif columns.get(name) in ("id", "occasion"):
                out[(blk, name)] = "subject" if columns[name] == "id" else "occasion"
            elif parent_ref is not None and parent_ref.get("symbIdRef", "") in with_effects:
                out[(blk, name)] = "occasion"
            elif name in nested and name not in with_effects:
                out[(blk, name)] = "population"
            else:
                out[(blk, name)] = "subject"
    for (blk, name), parent_name in parents.items():  # above the subjects: population
        if out[(blk, name)] == "subject" and columns.get(parent_name) is None:
            out[(blk, parent_name)] = "population"
    return out


def _vector_estimates(root: etree._Element, table: SymbolTable) -> dict[str, int]:
    """SBML id -> size, for the parameters the modelling steps give a ``Vector`` value (an initial
    estimate or a simulation assignment): vector-valued parameters even where declared bare."""
    out: dict[str, int] = {}
    steps = child(root, "ModellingSteps")
    for est in steps.iter("{*}ParameterEstimation", "{*}VariableAssignment") if steps is not None else ():
        ref = child(est, "SymbRef")
        vector = next(est.iter("{*}Vector"), None)
        elements = child(vector, "VectorElements") if vector is not None else None
        if ref is None or elements is None:
            continue
        try:
            out[table.lookup(ref, None).sbml] = len(children(elements))
        except Unsupported:
            continue  # reported where the values are read
    return out


def _level_columns(root: etree._Element) -> dict[str, str]:
    """Level symbId -> the type (``id``, ``occasion``) of the dataset column mapped to it."""
    out: dict[str, str] = {}
    for ds in root.iter("{*}ExternalDataSet"):
        types = {c.get("columnId", ""): c.get("columnType", "") for c in ds.iter("{*}Column")}
        for cm in children(ds, "ColumnMapping"):
            col, ref = child(cm, "ColumnRef"), child(cm, "SymbRef")
            kind = types.get(col.get("columnIdRef", "") if col is not None else "", "")
            if ref is not None and kind in ("id", "occasion"):
                out[ref.get("symbIdRef", "")] = kind
    return out


def _is_random_effect(el: etree._Element) -> bool:
    """A random variable that is a random effect: normal (or multivariate normal) with mean 0
    given as a number (priors have other distributions or means)."""
    try:
        holder, name = distribution_of(el)
    except Unsupported:
        return False
    if name == "StandardNormal1":
        return True
    if name not in ("Normal1", "Normal2", "Normal3", "NormalDistribution", *MULTIVARIATE):
        return False
    if local(holder) == "ProbOnto":
        mean = next((p for p in children(holder, "Parameter") if p.get("name") == "mean"), None)
    else:
        mean = child(holder, "mean")
    if mean is None:
        return False
    numbers = [(x.text or "").strip() for x in mean.iter() if local(x) in ("Real", "Int", "rVal", "prVal")]
    symbolic = any(local(x) == "SymbRef" or local(x) == "var" for x in mean.iter())
    if not numbers and (mean.text or "").strip():  # UncertML mean vector as text
        numbers = (mean.text or "").split()
    try:
        return bool(numbers) and not symbolic and all(float(v) == 0 for v in numbers)
    except ValueError:
        return False


def _covariate_model(block: etree._Element, scope: BlockScope, model: ReadModel, problems: Problems) -> None:
    table = scope.table
    for cov in children(block):
        if local(cov) in PARAM_TAGS:
            guard(problems, population_parameter, cov, scope, model)
            continue
        if local(cov) != "Covariate":
            problems.add(cov, f"<{local(cov)}> in a CovariateModel is not supported")
            continue
        decl = declaration(table, scope.block, cov)
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
            target = declaration(table, scope.block, tc)
            expr = guard(problems, scope.parse, assign)
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
    """Categories coded as numbers: the dataset's CategoryMapping codes, else 0, 1, 2, ...

    The covariate's ``Distribution`` only matters to simulate virtual patients: ignored, warned.
    Without categories the covariate is the dataset's numeric code, a plain covariate (warned).
    """
    cats = [c.get("catId", "") for c in children(categorical, "Category")]
    name = cov.get("symbId", "")
    if "" in cats:
        problems.add(categorical, "a categorical covariate needs categories with catId")
        return
    for extra in children(categorical):
        if local(extra) == "Distribution":
            model.table.notes.append(f"the distribution of covariate {name} is ignored (it only matters to "
                                     "simulate virtual patients)")  # fmt: skip
        elif local(extra) not in ("Category", "Description"):
            problems.add(extra, f"<{local(extra)}> of a categorical covariate is not supported")
            return
    if not cats:
        model.table.notes.append(f"categorical covariate {name} lists no categories: its values are the "
                                 "dataset's codes")  # fmt: skip
        model.covariates.append(Covariate(sid, name, cov))
        model.add(Parameter(sid, "covariate", cov, value=0.0))
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
    """``c`` when ``expr`` is ``cov/c``, ``log(cov/c)``, ``(cov/c)^k`` or ``cov - c``: the reference."""
    if isinstance(expr, Op) and expr.op == "ln" and len(expr.args) == 1:
        expr = expr.args[0]
    if isinstance(expr, Op) and expr.op == "power" and len(expr.args) == 2:  # allometric (cov/c)^k
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


def _structural_model(block: etree._Element, scope: BlockScope, model: ReadModel, problems: Problems) -> None:
    table = scope.table
    for el in children(block):
        name = local(el)
        if name in PARAM_TAGS:
            guard(problems, population_parameter, el, scope, model)
            continue
        if name == "PKmacros":
            model.pkmacros.append((scope.block or "", el))
            continue
        if name == "IndividualParameter":
            guard(problems, individual_parameter, el, scope, model)
            continue
        if name == "DE":
            guard(problems, _differential_equation, el, scope, model)
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
            expr = guard(problems, scope.parse, assign)
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
            guard(problems, _initial_condition, el, scope, param)


def _differential_equation(el: etree._Element, scope: BlockScope, model: ReadModel) -> None:
    """``<DE type="ode">`` (PharmML 0.9): ``d Y / d t = RHS`` for a declared Variable ``Y``, which
    becomes a state as a DerivativeVariable would; other differential equations are refused."""
    if el.get("type", "ode") != "ode":
        raise Unsupported(el, f"<DE type={el.get('type')!r}> (only ordinary differential equations)")
    stmt = child(el, "AssignStatement")
    parts = children(stmt) if stmt is not None else []
    if stmt is None or len(parts) != 2 or local(parts[0]) != "Diff":
        raise Unsupported(el, "a <DE> needs an AssignStatement 'Diff = expression'")
    diff, rhs = parts
    if diff.get("order", "1") != "1":
        raise Unsupported(diff, "only first-order derivatives are supported")
    holder = child(diff, "DiffVariable")
    wrt = child(holder, "SymbRef") if holder is not None else None
    arg = child(diff, "DiffOpArgument")
    target = first_expression(arg) if arg is not None else None
    if target is not None and local(target) == "Assign":
        target = first_expression(target)
    by_time = wrt is not None and wrt.get("symbIdRef") == scope.table.time_symbol
    if not by_time or target is None or local(target) != "SymbRef":
        raise Unsupported(diff, "a <DE> must differentiate a variable with respect to time")
    decl = scope.table.lookup(target, scope.block)
    param = model.params.get(decl.sbml)
    if param is None or param.kind != "variable" or param.rule is not None:
        raise Unsupported(target, f"{decl.name!r} is not a variable without a definition")
    decl.kind, param.kind, param.rate = "derivative", "state", scope.parse(rhs)
    _initial_condition(el, scope, param)


def _initial_condition(el: etree._Element, scope: BlockScope, param: Parameter) -> None:
    ic = child(el, "InitialCondition")
    param.value = 0.0
    if ic is None:
        return
    value = child(ic, "InitialValue")
    time = child(ic, "InitialTime")
    t0 = _initial_time(time, scope) if time is not None else 0.0
    if value is not None:
        expr = expression_in(value, scope)
        if isinstance(expr, Num):
            param.value = expr.value
        else:
            param.initial = expr
    if t0 != 0:  # s(t0) given: s(0) = s(t0) + rate * (0 - t0) when the rate is a constant
        assert time is not None
        if not isinstance(param.rate, Num) or param.initial is not None:
            raise Unsupported(time, "initial conditions at a time other than 0 need a constant derivative")
        param.value = (param.value or 0.0) - param.rate.value * t0


def _initial_time(time: etree._Element, scope: BlockScope) -> float:
    """The InitialTime's value: a number, or a symbol (``t0``) assigned a number."""
    t0 = expression_in(time, scope)
    if isinstance(t0, Sym):
        decl = next((d for d in scope.table.declarations.values() if d.sbml == t0.name), None)
        assign = child(decl.element, "Assign") if decl is not None else None
        t0 = expression_in(decl.element, scope) if decl is not None and assign is not None else t0
    if not isinstance(t0, Num):
        raise Unsupported(time, "the initial time must be a number or a symbol assigned a number")
    return t0.value
