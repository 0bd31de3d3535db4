"""Forward sensitivities of an ODE model's observables to its ETAs: exact MAP gradients.

The model's ODEs ``x' = f(x, p, t)`` are read from the prepared SBML into sympy, and the
forward sensitivity equations ``s_j' = (df/dx) s_j + (df/dq_j) w_j`` (one column per ETA) are
added to the SBML as rate rules, with the observables' derivatives ``dg/dx s_j + dg/dq_j w_j``
as assignment rules. The augmented model is compiled once by libRoadRunner and integrated with
the same segment loop as any simulation (:func:`interop.twin.simulate.run_segments`): one run
per objective evaluation gives the predictions and their Jacobian, in place of ``2n+1`` runs
for central differences. Between-subject ETAs are model parameters (``w_j = 1``); an occasion
ETA's column differentiates with respect to its occasion parameter, weighted by a parameter
that is 1 while that ETA is the occasion's effect (set at the occasion switches).

Why by hand: libRoadRunner 2.10's own sensitivity solver (CVODES, ``timeSeriesSensitivities``)
returned zeros in our checks, for the ETAs of the Michaelis-Menten bench model (they reach the
rates through assignment rules, as every twin model's ETAs do) and even for the rate constant
of a one-reaction model. AMICI would derive the same equations but builds a C++ extension per
model; sympy (pure Python) does the symbolic part and roadrunner, already compiling every
model, integrates the result.

Models the derivation does not cover fall back to difference gradients (``None`` from
:func:`sensitivity_model`): SBML events, algebraic rules, compartments with rules, initial
values or dose bioavailability/lag/duration that depend on an ETA (state jumps at ETA-dependent
times), and math outside the supported set.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET  # types and ParseError; parsing goes through defusedxml
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import libsbml
import numpy as np
import roadrunner
import sympy as sp
from defusedxml.ElementTree import fromstring as defused_fromstring
from sympy.printing.str import StrPrinter

from interop.twin.binding import LevelObservation, Twin
from interop.twin.model import ATOL, RTOL, CompiledModel, observable_parameter, outputs
from interop.twin.occasions import occasion_etas
from interop.twin.simulate import run_segments

__all__ = ["SensitivityModel", "SensitivityPredictor", "sensitivity_model", "sensitivity_predictor"]

log = logging.getLogger(__name__)

_MATHML = "{http://www.w3.org/1998/Math/MathML}"


def _sym(name: str) -> sp.Symbol:
    """Every model quantity is real: derivatives of abs, max and min stay sign/Heaviside."""
    return sp.Symbol(name, real=True)


_TIME = _sym("__sbml_time__")


class Unsupported(Exception):
    """The model uses something the sensitivity derivation does not cover."""


# --- SBML math -> sympy ------------------------------------------------------------------------

_FUNCS: dict[str, Any] = {
    "exp": sp.exp,
    "ln": sp.log,
    "abs": sp.Abs,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "arcsin": sp.asin,
    "arccos": sp.acos,
    "arctan": sp.atan,
    "floor": sp.floor,
    "ceiling": sp.ceiling,
}
_REL = {"lt": sp.Lt, "leq": sp.Le, "gt": sp.Gt, "geq": sp.Ge, "eq": sp.Eq, "neq": sp.Ne}


def _tag(el: ET.Element) -> str:
    return el.tag.replace(_MATHML, "")


def _math(node: libsbml.ASTNode | None, symbols: Mapping[str, sp.Expr]) -> sp.Expr:
    """sympy expression of an SBML math node (via its MathML: robust to libsbml's SWIG enums)."""
    if node is None:
        raise Unsupported("missing math")
    root = defused_fromstring(libsbml.writeMathMLToString(node))
    children = list(root)
    if len(children) != 1:
        raise Unsupported("unexpected MathML")
    return _el(children[0], symbols)


def _el(el: ET.Element, symbols: Mapping[str, sp.Expr]) -> Any:  # noqa: C901 - one branch per element
    tag = _tag(el)
    if tag == "ci":
        name = (el.text or "").strip()
        return symbols.get(name, _sym(name))
    if tag == "cn":
        kind = el.get("type", "real")
        parts = [t.strip() for t in el.itertext() if t.strip()]
        if kind == "integer":
            return sp.Integer(int(parts[0]))
        if kind == "rational":
            return sp.Rational(int(parts[0]), int(parts[1]))
        if kind == "e-notation":
            return sp.Float(float(parts[0]) * 10.0 ** float(parts[1]))
        return sp.Float(float(parts[0]))
    if tag == "csymbol":
        url = el.get("definitionURL", "")
        if url.endswith("/time"):
            return _TIME
        if url.endswith("/avogadro"):
            return sp.Float(6.02214076e23)
        raise Unsupported(f"csymbol {url}")
    constants = {"pi": sp.pi, "exponentiale": sp.E, "true": sp.true, "false": sp.false}
    if tag in constants:
        return constants[tag]
    if tag == "piecewise":
        pieces = []
        for piece in el:
            kids = list(piece)
            if _tag(piece) == "piece":
                pieces.append((_el(kids[0], symbols), _el(kids[1], symbols)))
            else:  # otherwise
                pieces.append((_el(kids[0], symbols), sp.true))
        return sp.Piecewise(*pieces)
    if tag != "apply":
        raise Unsupported(f"MathML element {tag}")
    head, *rest = list(el)
    op = _tag(head)
    qualifiers = {_tag(r): r for r in rest if _tag(r) in ("logbase", "degree")}
    args = [_el(r, symbols) for r in rest if _tag(r) not in ("logbase", "degree")]
    if op == "plus":
        return sp.Add(*args)
    if op == "minus":
        return -args[0] if len(args) == 1 else args[0] - args[1]
    if op == "times":
        return sp.Mul(*args)
    if op == "divide":
        return args[0] / args[1]
    if op == "power":
        return args[0] ** args[1]
    if op == "root":
        deg = _el(list(qualifiers["degree"])[0], symbols) if "degree" in qualifiers else 2
        return args[0] ** (1 / sp.sympify(deg))
    if op == "log":
        base = _el(list(qualifiers["logbase"])[0], symbols) if "logbase" in qualifiers else 10
        return sp.log(args[0]) / sp.log(base)
    if op in _FUNCS:
        return _FUNCS[op](*args)
    if op in ("max", "min"):
        return (sp.Max if op == "max" else sp.Min)(*args)
    if op in _REL:
        if len(args) == 2:
            return _REL[op](args[0], args[1])
        return sp.And(*(_REL[op](a, b) for a, b in zip(args, args[1:], strict=False)))
    logical = {"and": sp.And, "or": sp.Or, "xor": sp.Xor, "not": sp.Not}
    if op in logical:
        return logical[op](*args)
    raise Unsupported(f"MathML operator {op}")


# --- sympy -> SBML L3 formula ----------------------------------------------------------------


class _L3Printer(StrPrinter):
    """sympy expressions as libsbml L3 formulas (``pow``, ``ln``, ``piecewise``, ``&&``)."""

    _relationals = {"<": "lt", "<=": "leq", ">": "gt", ">=": "geq", "==": "eq", "!=": "neq"}

    def _print_Symbol(self, expr: sp.Symbol) -> str:
        return "time" if expr == _TIME else expr.name

    def _print_Pow(self, expr: sp.Pow, rational: bool = False) -> str:
        b, e = expr.as_base_exp()
        if e == -1:
            return f"1 / ({self._print(b)})"
        if e == sp.S.Half:
            return f"sqrt({self._print(b)})"
        return f"pow({self._print(b)}, {self._print(e)})"

    def _print_Float(self, expr: sp.Float) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"({expr.p} / {expr.q})"

    def _print_Exp1(self, expr: Any) -> str:
        return "exponentiale"

    def _print_Pi(self, expr: Any) -> str:
        return "pi"

    def _print_BooleanTrue(self, expr: Any) -> str:
        return "true"

    def _print_BooleanFalse(self, expr: Any) -> str:
        return "false"

    def _print_log(self, expr: Any) -> str:
        return f"ln({self._print(expr.args[0])})"

    def _print_Abs(self, expr: Any) -> str:
        return f"abs({self._print(expr.args[0])})"

    def _print_sign(self, expr: Any) -> str:
        x = self._print(expr.args[0])
        return f"piecewise(1, gt({x}, 0), -1, lt({x}, 0), 0)"

    def _print_Heaviside(self, expr: Any) -> str:
        x = self._print(expr.args[0])
        return f"piecewise(1, gt({x}, 0), 0, lt({x}, 0), 0.5)"

    def _print_Piecewise(self, expr: Any) -> str:
        parts = []
        for value, cond in expr.args:
            parts.append(self._print(value))
            if cond != sp.true:
                parts.append(self._print(cond))
        return f"piecewise({', '.join(parts)})"

    def _print_Relational(self, expr: Any) -> str:
        return f"{self._relationals[expr.rel_op]}({self._print(expr.lhs)}, {self._print(expr.rhs)})"

    def _print_And(self, expr: Any) -> str:
        return f"and({', '.join(self._print(a) for a in expr.args)})"

    def _print_Or(self, expr: Any) -> str:
        return f"or({', '.join(self._print(a) for a in expr.args)})"

    def _print_Not(self, expr: Any) -> str:
        return f"not({self._print(expr.args[0])})"

    def _print_Max(self, expr: Any) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr: Any) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Function(self, expr: Any) -> str:
        name = type(expr).__name__
        allowed = {"exp", "sin", "cos", "tan", "sinh", "cosh", "tanh", "floor", "ceiling"}
        if name in allowed:
            return f"{name}({', '.join(self._print(a) for a in expr.args)})"
        names = {"asin": "arcsin", "acos": "arccos", "atan": "arctan"}
        if name in names:
            return f"{names[name]}({self._print(expr.args[0])})"
        raise Unsupported(f"function {name} in a derivative")

    def emptyPrinter(self, expr: Any) -> str:  # noqa: N802 - sympy's hook name
        raise Unsupported(f"cannot write {type(expr).__name__} as SBML math")


def _formula(expr: sp.Expr) -> libsbml.ASTNode:
    text = _L3Printer().doprint(expr)
    node = libsbml.parseL3Formula(text)
    if node is None:
        raise Unsupported(f"libsbml cannot parse {text[:200]}: {libsbml.getLastParseL3Error()}")
    return node


# --- the derivation --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Derivation:
    sbml: str
    columns: tuple[str, ...]  # ETA names, one sensitivity column each
    weights: dict[str, str]  # occasion ETA -> its weight parameter
    outputs: tuple[str, ...]  # selections: observables, then d observable / d column (column-major)


def _sid(text: str) -> str:
    return re.sub(r"\W", "_", text)


def derive(prepared_sbml: str, model: CompiledModel) -> _Derivation:
    """The prepared SBML with sensitivity states and observable derivatives added."""
    card = model.card
    doc = libsbml.readSBMLFromString(prepared_sbml)
    props = libsbml.ConversionProperties()
    props.addOption("expandFunctionDefinitions", True)
    if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise Unsupported("function definitions could not be expanded")
    m: libsbml.Model = doc.getModel()
    if m.getNumEvents():
        raise Unsupported("SBML events")
    if m.getConversionFactor() or any(s.getConversionFactor() for s in m.getListOfSpecies()):
        raise Unsupported("conversion factors")

    assigned: dict[str, sp.Expr] = {}
    rates: dict[str, sp.Expr] = {}
    for rule in m.getListOfRules():
        if rule.isAlgebraic():
            raise Unsupported("algebraic rules")
        if rule.isAssignment():
            assigned[rule.getVariable()] = _math(rule.getMath(), {})
        else:
            rates[rule.getVariable()] = _math(rule.getMath(), {})
    ruled = set(rates)
    for c in m.getListOfCompartments():
        if c.getId() in assigned or c.getId() in rates:
            raise Unsupported(f"compartment {c.getId()} changes with time")

    # Reactions: d(species value)/dt, the value as the math sees it (concentration unless
    # the species has only substance units).
    for rxn in m.getListOfReactions():
        law = rxn.getKineticLaw()
        if law is None:
            raise Unsupported(f"reaction {rxn.getId()} has no kinetic law")
        local = {p.getId(): sp.Float(p.getValue()) for p in law.getListOfLocalParameters()}
        local.update({p.getId(): sp.Float(p.getValue()) for p in law.getListOfParameters()})
        rate = _math(law.getMath(), local)
        for refs, sign in ((rxn.getListOfReactants(), -1), (rxn.getListOfProducts(), 1)):
            for ref in refs:
                s = m.getSpecies(ref.getSpecies())
                if s.getBoundaryCondition() or s.getConstant():
                    continue
                if ref.getId() and (ref.getId() in assigned or m.getInitialAssignment(ref.getId())):
                    raise Unsupported("variable stoichiometry")
                stoich = ref.getStoichiometry()
                stoich = 1.0 if math.isnan(stoich) else stoich
                term = sign * sp.Float(stoich) * rate
                if not s.getHasOnlySubstanceUnits():
                    term = term / _sym(s.getCompartment())
                if s.getId() in ruled:
                    raise Unsupported(f"species {s.getId()} has a rate rule and reactions")
                rates[s.getId()] = rates.get(s.getId(), sp.Integer(0)) + term
    states = sorted(rates)

    # Assignment rules substituted until only states, parameters and time remain.
    resolved: dict[str, sp.Expr] = {}
    rule_syms = {_sym(k): v for k, v in assigned.items()}
    for var, expr in assigned.items():
        for _ in range(len(assigned) + 1):
            nxt = expr.xreplace(rule_syms)
            if nxt == expr:
                break
            expr = nxt
        else:
            raise Unsupported(f"assignment rules for {var} are cyclic")
        resolved[var] = expr
    subs = {_sym(k): v for k, v in resolved.items()}

    def full(e: sp.Expr) -> sp.Expr:
        return e.xreplace(subs)

    eta_names = list(card.random_effects.etas)
    occ = [(o.parameter, e) for o in card.random_effects.occasions for e in o.etas]
    columns = [*eta_names, *occasion_etas(card)]
    targets: list[tuple[sp.Symbol, sp.Expr]] = [(_sym(e), sp.Integer(1)) for e in eta_names]
    weights = {e: f"_sw_{_sid(e)}" for _, e in occ}
    targets += [(_sym(p), _sym(weights[e])) for p, e in occ]
    q_syms = {q for q, _ in targets}
    for q, _ in targets:
        if q.name in assigned or q.name in rates:
            raise Unsupported(f"{q.name} is set by a rule")

    # Jumps at ETA-dependent times or of ETA-dependent size are not covered.
    for d in card.dosing:
        for ref in (d.bioavailability, d.lag_time_h, d.duration_parameter):
            if isinstance(ref, str) and full(_sym(ref)).free_symbols & q_syms:
                raise Unsupported(f"dose parameter {ref} depends on an ETA")
    for ia in m.getListOfInitialAssignments():
        if full(_math(ia.getMath(), {})).free_symbols & (q_syms | {_sym(k) for k in assigned}):
            raise Unsupported(f"the initial value of {ia.getSymbol()} depends on the ETAs")

    x_syms = [_sym(x) for x in states]
    f = [full(rates[x]) for x in states]
    sens = {(x, j): _sym(f"_sens_{_sid(x)}__{_sid(c)}") for x in states for j, c in enumerate(columns)}
    for sym in sens.values():
        if m.getElementBySId(sym.name) is not None:
            raise Unsupported(f"id {sym.name} is taken")

    def direction(expr: sp.Expr, j: int) -> sp.Expr:
        q, w = targets[j]
        out = sp.diff(expr, q) * w
        for x, xs in zip(states, x_syms, strict=True):
            d = sp.diff(expr, xs)
            if d != 0:
                out += d * sens[(x, j)]
        return out

    def add_parameter(pid: str) -> None:
        p = m.createParameter()
        p.setId(pid)
        p.setValue(0.0)
        p.setConstant(False)

    for w in weights.values():
        add_parameter(w)
    for i, x in enumerate(states):
        for j in range(len(columns)):
            pid = sens[(x, j)].name
            add_parameter(pid)
            rule = m.createRateRule()
            rule.setVariable(pid)
            if rule.setMath(_formula(direction(f[i], j))) != libsbml.LIBSBML_OPERATION_SUCCESS:
                raise Unsupported(f"could not set the sensitivity rule of {x}")
    outs = [observable_parameter(oid) for oid, _ in outputs(card)]
    for oid, _ in outputs(card):
        g = full(_sym(observable_parameter(oid)))
        for j, c in enumerate(columns):
            pid = f"_dobs_{_sid(oid)}__{_sid(c)}"
            add_parameter(pid)
            rule = m.createAssignmentRule()
            rule.setVariable(pid)
            if rule.setMath(_formula(direction(g, j))) != libsbml.LIBSBML_OPERATION_SUCCESS:
                raise Unsupported(f"could not set the derivative of observable {oid}")
            outs.append(pid)
    return _Derivation(str(libsbml.writeSBMLToString(doc)), tuple(columns), weights, tuple(outs))


@dataclass(frozen=True)
class SensitivityModel:
    """The compiled sensitivity system of a model: observables and their ETA derivatives."""

    compiled: CompiledModel
    columns: tuple[str, ...]
    weights: dict[str, str]
    outputs: tuple[str, ...]


def sensitivity_model(model: CompiledModel) -> SensitivityModel | None:
    """The model's compiled sensitivity system (built once), or None where it is not covered."""
    with model.lock:
        if model.sensitivity_checked:
            return model.sensitivity  # type: ignore[no-any-return]
        model.sensitivity_checked = True
        try:
            d = derive(model.prepared_sbml, model)
        except (Unsupported, sp.SympifyError, ET.ParseError, TypeError, ValueError, RecursionError) as exc:
            log.info("model %s: difference gradients (no sensitivity system: %s)", model.card.id, exc)
            return None
        try:
            runner = roadrunner.RoadRunner(d.sbml)
            integrator = runner.getIntegrator()
            integrator.setValue("relative_tolerance", SENS_RTOL)
            integrator.setValue("absolute_tolerance", SENS_ATOL)
            runner.timeCourseSelections = ["time", *d.outputs]
        except RuntimeError as exc:  # an optimisation only: the MAP keeps difference gradients
            log.warning("model %s: the sensitivity system did not compile (%s)", model.card.id, exc)
            return None
        defaults = dict(model.defaults)
        defaults.update({w: 0.0 for w in d.weights.values()})
        compiled = CompiledModel(
            sbml=d.sbml,
            card=model.card,
            runner=runner,
            sha256=model.sha256,
            parameter_ids=frozenset(runner.model.getGlobalParameterIds()),
            defaults=defaults,
            prepared_sbml=d.sbml,
        )
        model.sensitivity = SensitivityModel(compiled, d.columns, d.weights, d.outputs)
        return model.sensitivity  # type: ignore[no-any-return]


# The predictions and their derivatives are under the same error control (one ODE system) and
# no difference quotient amplifies the solver error, so the MAP needs less than RTOL/ATOL (which
# difference gradients need). Most of a run's cost is CVODE resolving each state to its own
# relative tolerance: an emptying depot after every dose is followed down to ATOL/RTOL of its
# size (~470 BDF steps per 24 h dosing interval at 1e-8 on the Michaelis-Menten bench model).
# Measured on that model (60 subjects of mapbayr 001's data, one start): relative 1e-7 with an
# absolute tolerance of SENS_ATOL_PER_DOSE (1e-9) times the subject's largest dose cut the total
# MAP time by ~40% (median per subject 35 -> 22 ms) with ETAs within 1.5e-5 of 1e-8's and no
# more restarts. Other settings were as fast per run but less robust: at 1e-6, or with 1e-10 or
# 1e-8 of the dose, 1-5 of the 60 subjects ended on a gradient at the noise level (BFGS "precision
# loss"), so the estimator's restarts from prior draws ran and the total time grew. Scaling to the
# dose keeps the choice independent of the units.
SENS_RTOL = max(RTOL, 1e-7)
SENS_ATOL = max(ATOL, 1e-10)  # the floor (and the value without doses)
SENS_ATOL_PER_DOSE = 1e-9


class SensitivityPredictor:
    """f(eta) and df/deta at a twin's observations from one run of the sensitivity system."""

    def __init__(self, sens: SensitivityModel, twin: Twin, observations: Sequence[LevelObservation]) -> None:
        self.sens = sens
        self.twin = twin
        self.times = np.array([o.time_h for o in observations], dtype=float)
        obs_ids = [oid for oid, _ in outputs(twin.card)]
        n_obs, n_col = len(obs_ids), len(sens.columns)
        self.rows = np.array([obs_ids.index(o.observable) for o in observations], dtype=int)
        self.cols = np.arange(len(observations))
        # rows of the output block holding d observable / d column, per observation
        self.jac_rows = n_obs + self.rows[:, None] * n_col + np.arange(n_col)[None, :]
        scale = max((abs(d.amount) for d in twin.doses), default=0.0)
        self.atol = max(SENS_ATOL_PER_DOSE * scale, SENS_ATOL)

    def __call__(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(predictions, Jacobian observations x ETAs)."""
        params = dict(zip(self.sens.columns, map(float, eta), strict=True))
        compiled = self.sens.compiled
        with compiled.lock:  # the runner is shared by every twin of the model
            integrator = compiled.runner.getIntegrator()
            if integrator.getValue("absolute_tolerance") != self.atol:
                integrator.setValue("absolute_tolerance", self.atol)
            out = run_segments(compiled, self.twin, self.times, params, self.sens.outputs, self.sens.weights)
        f = out[self.rows, self.cols]
        J = out[self.jac_rows, self.cols[:, None]]
        return f, J

    def predictions(self, eta: np.ndarray) -> np.ndarray:
        """Predictions only (rows of ETAs give rows of predictions), on the same solver settings."""
        if eta.ndim == 2:
            return np.stack([self(e)[0] for e in eta]) if len(eta) else np.empty((0, len(self.times)))
        return self(eta)[0]


def sensitivity_predictor(
    twin: Twin, observations: Sequence[LevelObservation]
) -> SensitivityPredictor | None:
    """The twin's sensitivity predictor, or None where the model is not covered (see the module)."""
    # State resets (EVID 3/4) need nothing more: states return to their ETA-free initial values
    # and sensitivities to 0 (run_segments resets rate-rule states too).
    sens = sensitivity_model(twin.model)
    return None if sens is None else SensitivityPredictor(sens, twin, observations)
