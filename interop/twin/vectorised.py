"""Many subjects at once: the closed-form path of :mod:`interop.twin.linear` as one array program.

A virtual trial or a probability-of-target-attainment study simulates 10^5-10^6 subjects per
regimen. Per subject, the linear path still asks roadrunner for the system matrices (about
75 us for a one-compartment model) and walks its segments in Python; here both happen for a
whole block of subjects in numpy:

1. the model's assignment rules and rate laws (from the prepared SBML, function definitions
   expanded by libsbml) are compiled once to numpy closures and evaluated for every subject's
   parameter vector at the zero state and at each unit state, which gives ``A``, ``g0``,
   ``C`` and ``c0`` for all subjects (``subjects x states x states`` ...);
2. one batched eigendecomposition, then superposition of every dose (bolus or rate step) at
   every output time: ``subjects x times x events x states`` in blocks that bound memory.

Why hand-written: no library evaluates SBML maths over arrays of parameter sets (roadrunner
and libsbml evaluate one point at a time). The evaluator covers the MathML subset popPK models
use; anything else raises :class:`Unsupported` at set-up and the caller falls back to the
per-subject path. Results equal that path to 1e-10 relative (``tests/twin/test_vectorised.py``).

Scope: subjects whose covariates are constant in time and whose card has no occasions (every
virtual subject of :mod:`interop.cohort`); dosing histories may differ in length (padded with
zero doses). Initial states are zero, as on the per-subject linear path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import libsbml
import numpy as np

from interop.errors import TwinError
from interop.schema import ReferenceDose
from interop.twin.linear import LinearSystem, linear_system
from interop.twin.model import CompiledModel, input_parameter

__all__ = [
    "BatchSchedule",
    "Unsupported",
    "VectorisedSystem",
    "schedule_for",
    "simulate_many",
    "solve_inputs",
    "vectorised_system",
]

Env = dict[str, np.ndarray | float]
Fn = Callable[[Env], np.ndarray | float]

_CONDITION_LIMIT = 1e8
_BLOCK_ELEMENTS = 4_000_000  # subjects x times x events x states per block (~32 MB of float64)


class Unsupported(TwinError):
    """The model uses maths or structure the vectorised path does not cover (use the per-subject path)."""


def _compile(node: libsbml.ASTNode) -> Fn:
    """A numpy closure for one MathML expression (classified by is*/getName, never getType())."""
    kids = [_compile(node.getChild(i)) for i in range(node.getNumChildren())]
    if node.isNumber():
        value = float(node.getValue())
        return lambda env: value
    if node.isName() and not node.isConstant():
        name = node.getName()
        if name == "time":
            raise Unsupported("time in the model's maths")

        def var(env: Env) -> np.ndarray | float:
            return env[name]

        return var
    if node.isConstant():
        const = {"exponentiale": math.e, "pi": math.pi, "true": 1.0, "false": 0.0}.get(node.getName())
        if const is None:
            raise Unsupported(f"constant {node.getName()}")
        return lambda env: const
    if node.isOperator():
        op = node.getCharacter()
        if op == "+":
            return lambda env: sum((k(env) for k in kids), 0.0)  # type: ignore[return-value]
        if op == "-":
            if len(kids) == 1:
                return lambda env: -kids[0](env)  # type: ignore[operator]
            return lambda env: kids[0](env) - kids[1](env)  # type: ignore[operator]
        if op == "*":

            def prod(env: Env) -> np.ndarray | float:
                out: np.ndarray | float = 1.0
                for k in kids:
                    out = out * k(env)
                return out

            return prod
        if op == "/":
            return lambda env: kids[0](env) / kids[1](env)  # type: ignore[operator]
        if op == "^":
            return lambda env: np.power(kids[0](env), kids[1](env))
        raise Unsupported(f"operator {op!r}")
    name = node.getName() or ""
    if node.isPiecewise():
        pairs = [(kids[i], kids[i + 1]) for i in range(0, len(kids) - 1, 2)]
        other = kids[-1] if len(kids) % 2 else (lambda env: np.nan)

        def piecewise(env: Env) -> np.ndarray | float:
            out = np.asarray(other(env), dtype=float)
            for value, cond in reversed(pairs):
                out = np.where(np.asarray(cond(env), dtype=bool), value(env), out)
            return out

        return piecewise
    if node.isRelational() or node.isLogical():
        rel: dict[str, Callable[..., np.ndarray]] = {
            "gt": np.greater,
            "geq": np.greater_equal,
            "lt": np.less,
            "leq": np.less_equal,
            "eq": np.equal,
            "neq": np.not_equal,
        }
        if name in rel and len(kids) == 2:
            f2 = rel[name]
            return lambda env: f2(kids[0](env), kids[1](env))
        logic: dict[str, Callable[..., np.ndarray]] = {
            "and": np.logical_and,
            "or": np.logical_or,
            "xor": np.logical_xor,
        }
        if name in logic:
            fl = logic[name]

            def fold(env: Env) -> np.ndarray:
                out = np.asarray(kids[0](env), dtype=bool)
                for k in kids[1:]:
                    out = fl(out, np.asarray(k(env), dtype=bool))
                return out

            return fold
        if name == "not" and len(kids) == 1:
            return lambda env: np.logical_not(kids[0](env))
        raise Unsupported(f"relation {name!r}")
    unary: dict[str, Callable[[np.ndarray | float], np.ndarray | float]] = {
        "exp": np.exp,
        "ln": np.log,
        "abs": np.abs,
        "floor": np.floor,
        "ceiling": np.ceil,
    }
    if name in unary and len(kids) == 1:
        fu = unary[name]
        return lambda env: fu(kids[0](env))
    if name in ("log10", "log") and len(kids) == 2:  # first child: the base (log10 has base 10)
        return lambda env: np.log(kids[1](env)) / np.log(kids[0](env))
    if name == "log" and len(kids) == 1:
        return lambda env: np.log10(kids[0](env))
    if name in ("sqrt", "root") and len(kids) == 2:  # first child: the degree
        return lambda env: np.power(kids[1](env), 1.0 / np.asarray(kids[0](env)))
    if name in ("sqrt", "root") and len(kids) == 1:
        return lambda env: np.sqrt(kids[0](env))
    if name in ("power", "pow") and len(kids) == 2:
        return lambda env: np.power(kids[0](env), kids[1](env))
    if name in ("max", "min") and kids:
        fm = np.maximum if name == "max" else np.minimum

        def extreme(env: Env) -> np.ndarray | float:
            out = kids[0](env)
            for k in kids[1:]:
                out = fm(out, k(env))
            return out

        return extreme
    raise Unsupported(f"function {name!r}")


def _math(node: libsbml.ASTNode | None, what: str) -> Fn:
    if node is None:
        raise Unsupported(f"{what} has no maths")
    return _compile(node)


@dataclass(frozen=True)
class _Rule:
    variable: str
    fn: Fn


class VectorisedSystem:
    """The matrices of a state-linear model for many parameter sets, evaluated in numpy."""

    def __init__(self, lin: LinearSystem) -> None:
        self.lin = lin
        doc = libsbml.readSBMLFromString(lin.model.prepared_sbml)
        props = libsbml.ConversionProperties()
        props.addOption("expandFunctionDefinitions", True)
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise Unsupported("function definitions could not be expanded")
        model = doc.getModel()
        runner_model = lin.model.runner.model
        sizes = dict(zip(runner_model.getCompartmentIds(), runner_model.getCompartmentVolumes(), strict=True))
        self.constants: dict[str, float] = {}
        for i in range(model.getNumCompartments()):
            cid = model.getCompartment(i).getId()
            if model.getRule(cid) is not None:
                raise Unsupported(f"compartment {cid} has a rule")
            self.constants[cid] = float(sizes[cid])
        # Species symbols in maths: amount, or amount / compartment size (concentration).
        self.species_scale: dict[str, tuple[int, float]] = {}
        for k, sid in enumerate(lin.species):
            sp = model.getSpecies(sid)
            scale = 1.0 if sp.getHasOnlySubstanceUnits() else 1.0 / self.constants[sp.getCompartment()]
            self.species_scale[sid] = (k, scale)
        for i in range(model.getNumSpecies()):
            sp = model.getSpecies(i)
            if sp.getId() not in self.species_scale:  # boundary or constant species: fixed values
                self.constants[sp.getId()] = float(runner_model[sp.getId()])
        assigned = {}
        for i in range(model.getNumRules()):
            rule = model.getRule(i)
            if not rule.isAssignment():
                raise Unsupported(f"rule for {rule.getVariable()} is not an assignment rule")
            assigned[rule.getVariable()] = rule
        self.rules = [
            _Rule(v, _math(assigned[v].getMath(), f"rule {v}")) for v in _rule_order(assigned, model)
        ]
        rxns = [model.getReaction(i) for i in range(model.getNumReactions())]
        keep_ids = [rxns[i].getId() for i in lin.keep]
        self.rates = []
        for rid in keep_ids:
            law = model.getReaction(rid).getKineticLaw()
            if law is None or law.getNumLocalParameters():
                raise Unsupported(f"reaction {rid}: no kinetic law, or local parameters")
            self.rates.append(_math(law.getMath(), f"reaction {rid}"))
        self.obs_ids = [lin.gids[i] for i in lin.obs_index]

    def _evaluate(self, values: np.ndarray, state: int | None) -> tuple[np.ndarray, np.ndarray, Env]:
        """Rates (subjects x reactions) and observables at the zero state or unit state ``state``.

        Non-finite results (a weight of 0, say) are data: the caller rejects those subjects, so
        numpy's divide/overflow warnings are silenced here rather than printed once per block."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._evaluate_raw(values, state)

    def _evaluate_raw(self, values: np.ndarray, state: int | None) -> tuple[np.ndarray, np.ndarray, Env]:
        lin = self.lin
        m = values.shape[0]
        env: Env = dict(self.constants)
        for j, g in enumerate(lin.gids):
            env[g] = values[:, j]
        for sid, (k, scale) in self.species_scale.items():
            env[sid] = scale if k == state else 0.0
        for rule in self.rules:
            env[rule.variable] = np.broadcast_to(np.asarray(rule.fn(env), dtype=float), (m,))
        rates = np.stack([np.broadcast_to(np.asarray(f(env), dtype=float), (m,)) for f in self.rates], axis=1)
        obs = np.stack([np.broadcast_to(np.asarray(env[o], dtype=float), (m,)) for o in self.obs_ids], axis=1)
        return rates, obs, env

    def matrices(
        self, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``A`` (m,n,n), ``g0`` (m,n), ``C`` (m,o,n), ``c0`` (m,o) and every global parameter (m,P).

        ``values`` holds each subject's settable parameters in ``lin.gids`` order (as
        :meth:`LinearSystem.values_for` builds them); dose inputs are zeroed, as on the
        per-subject path, because doses enter through ``B``.
        """
        lin = self.lin
        values = np.array(values, dtype=float, copy=True)
        for t in lin.B:
            values[:, lin.index[input_parameter(t)]] = 0.0
        v0, c0, env = self._evaluate(values, None)
        allv = np.stack(
            [np.broadcast_to(np.asarray(env[g], dtype=float), (len(values),)) for g in lin.gids], axis=1
        )
        m, n = len(values), lin.n
        K = np.empty((m, len(self.rates), n))
        C = np.empty((m, len(self.obs_ids), n))
        for j in range(n):
            rj, oj, _ = self._evaluate(values, j)
            K[:, :, j] = rj - v0
            C[:, :, j] = oj - c0
        Nk = lin.N[:, lin.keep]
        A = np.einsum("sr,mrj->msj", Nk, K)
        g0 = v0 @ Nk.T
        return A, g0, C, c0, allv


def _rule_order(assigned: Mapping[str, libsbml.Rule], model: libsbml.Model) -> list[str]:
    """Assignment rules in dependency order (SBML allows any order in the file)."""
    deps: dict[str, set[str]] = {}
    for var, rule in assigned.items():
        names: set[str] = set()
        stack = [rule.getMath()]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if node.isName():
                names.add(node.getName())
            stack.extend(node.getChild(i) for i in range(node.getNumChildren()))
        deps[var] = names & set(assigned)
    order: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(v: str) -> None:
        if v in done:
            return
        if v in visiting:
            raise Unsupported(f"assignment rules form a cycle through {v}")
        visiting.add(v)
        for d in sorted(deps[v]):
            visit(d)
        visiting.discard(v)
        done.add(v)
        order.append(v)

    for v in sorted(assigned):
        visit(v)
    return order


@dataclass(frozen=True)
class BatchSchedule:
    """Every subject's dose events, padded to one length: times, amounts and durations (m, K).

    ``route_of`` names the card route of each of the K columns; a padded column has amount 0.
    """

    time_h: np.ndarray
    amount: np.ndarray
    duration_h: np.ndarray  # 0 or NaN: bolus (or the model's duration parameter when it has one)
    route: tuple[str, ...]


def schedule_for(regimens: Sequence[Sequence[ReferenceDose]]) -> BatchSchedule:
    """A padded schedule from one regimen per subject (doses of different counts and routes).

    Column k holds, for each subject, its k-th dose of the route that column carries: subjects
    are grouped so that one column always has one route.
    """
    routes = sorted({d.route for reg in regimens for d in reg})
    per_route = {r: max(sum(1 for d in reg if d.route == r) for reg in regimens) for r in routes}
    cols = [(r, k) for r in routes for k in range(per_route[r])]
    m, kk = len(regimens), len(cols)
    t = np.zeros((m, kk))
    a = np.zeros((m, kk))
    dur = np.full((m, kk), np.nan)
    start = {r: i for i, (r2, k) in enumerate(cols) if k == 0 for r in [r2]}
    for s, reg in enumerate(regimens):
        seen: dict[str, int] = {}
        for d in sorted(reg, key=lambda x: x.time_h):
            k = seen.get(d.route, 0)
            seen[d.route] = k + 1
            c = start[d.route] + k
            t[s, c], a[s, c] = d.time_h, d.amount
            if d.duration_h is not None:
                dur[s, c] = d.duration_h
    return BatchSchedule(t, a, dur, tuple(r for r, _ in cols))


def vectorised_system(model: CompiledModel) -> VectorisedSystem | None:
    """The model's vectorised matrices, or None when it is not linear or its maths is not covered
    (cached on the compiled model)."""
    lin = linear_system(model)
    if lin is None:
        return None
    cached = getattr(model, "_vectorised", None)
    if cached is not None:
        return cached if isinstance(cached, VectorisedSystem) else None
    try:
        vs: VectorisedSystem | bool = VectorisedSystem(lin)
    except Unsupported:
        vs = False
    object.__setattr__(model, "_vectorised", vs)
    return vs if isinstance(vs, VectorisedSystem) else None


def simulate_many(
    model: CompiledModel,
    schedule: BatchSchedule,
    parameters: Mapping[str, np.ndarray | float],
    times_h: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Observables (subjects x observables x times) for many subjects of one model.

    ``parameters`` maps SBML parameter ids (covariates, ETAs, anything settable) to one value
    per subject or one value for all; the rest take the model's defaults. Outputs at a dose
    time are pre-dose, as everywhere in the twin. Raises :class:`Unsupported` when the model
    is not on the closed-form path or uses maths this module does not evaluate.
    """
    if model.card.random_effects.occasions:
        raise Unsupported("occasions (inter-occasion variability) need the per-subject path")
    vs = vectorised_system(model)
    if vs is None:
        raise Unsupported(f"model {model.card.id} has no vectorised closed-form path")
    lin = vs.lin
    times = np.asarray(times_h, dtype=float)
    m = schedule.time_h.shape[0]
    values = np.tile(lin.defaults, (m, 1))
    given = dict(parameters)
    for cov in model.card.covariates:  # as bind_regimen: a covariate not given takes the card's reference
        if cov.name not in given and cov.reference is not None:
            given[cov.name] = float(cov.reference)
    for name, v in given.items():
        j = lin.index.get(name)
        if j is None:
            raise TwinError(f"unknown model parameter {name!r}")
        values[:, j] = v
    out = np.empty((m, len(vs.obs_ids), len(times)))
    per_subject = max(1, len(times) * max(1, schedule.time_h.shape[1] * 2) * lin.n)
    block = max(1, _BLOCK_ELEMENTS // per_subject)
    for lo in range(0, m, block):
        hi = min(m, lo + block)
        out[lo:hi] = _simulate_block(vs, model, schedule, values[lo:hi], times, slice(lo, hi))
    if not np.all(np.isfinite(out)):
        raise TwinError(f"simulation produced {int(np.sum(~np.isfinite(out)))} non-finite prediction(s)")
    return out


def _events(
    vs: VectorisedSystem, model: CompiledModel, schedule: BatchSchedule, allv: np.ndarray, rows: slice
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input start times (m,E), state vectors (m,E,n; amount or rate) and durations (m,E; 0: bolus)
    after bioavailability, lag and the model's duration parameter."""
    lin = vs.lin
    card = model.card
    times, vecs, durs = [], [], []
    for c, route in enumerate(schedule.route):
        t = schedule.time_h[rows, c]
        amount = schedule.amount[rows, c]
        given = schedule.duration_h[rows, c]
        for inp in card.dosing_for(route):  # type: ignore[arg-type]
            f = _param(lin, allv, inp.bioavailability, 1.0)
            lag = _param(lin, allv, inp.lag_time_h, 0.0)
            dur = given
            if inp.duration_parameter:
                dur = np.where(np.isnan(given), _param(lin, allv, inp.duration_parameter, 0.0), given)
            dur = np.where(np.isnan(dur) | (dur < 0), 0.0, dur)
            dose = amount * inp.fraction * f
            per = np.where(dur > 0, dose / np.where(dur > 0, dur, 1.0), dose)  # rate, or bolus amount
            times.append(t + lag)
            vecs.append(per[:, None] * lin.B[inp.target][None, :])
            durs.append(dur)
    et = np.stack(times, axis=1)
    if np.any(et < 0):
        raise TwinError("a dose falls before the twin's origin")
    return et, np.stack(vecs, axis=1), np.stack(durs, axis=1)


def _param(lin: LinearSystem, allv: np.ndarray, ref: float | str | None, default: float) -> np.ndarray:
    if ref is None:
        return np.full(allv.shape[0], default)
    if isinstance(ref, str):
        return allv[:, lin.index[ref]]
    return np.full(allv.shape[0], float(ref))


def _phi(lam: np.ndarray, h: np.ndarray) -> np.ndarray:
    """integral_0^h e^{lam s} ds, elementwise (h where lam h is ~0)."""
    lh = lam * h
    small = np.abs(lh) < 1e-12
    safe = np.where(lam == 0, 1.0, lam)
    return np.where(small, h, np.expm1(lh) / safe)


def _simulate_block(
    vs: VectorisedSystem,
    model: CompiledModel,
    schedule: BatchSchedule,
    values: np.ndarray,
    times: np.ndarray,
    rows: slice,
) -> np.ndarray:
    A, g0, C, c0, allv = vs.matrices(values)
    et, ev, dur = _events(vs, model, schedule, allv, rows)
    bad = ~(np.isfinite(A).all(axis=(1, 2)) & np.isfinite(C).all(axis=(1, 2)) & np.isfinite(allv).all(axis=1))
    if bad.any():
        raise TwinError(f"{int(bad.sum())} subject(s) have non-finite model parameters")
    return solve_inputs(A, g0, C, c0, et, ev, dur, times)


def solve_inputs(
    A: np.ndarray,
    g0: np.ndarray,
    C: np.ndarray,
    c0: np.ndarray,
    et: np.ndarray,
    ev: np.ndarray,
    dur: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Observables (m, o, T) of m linear systems (``A`` ... ``c0`` as :meth:`VectorisedSystem.matrices`)
    from zero states, with inputs starting at ``et`` (m,E), state vectors ``ev`` (m,E,n; amount,
    or rate while ``dur`` (m,E) > 0), at ``times``: (T,) for all systems or (m,T) each its own."""
    if A.shape[1] == 1:  # one state: the eigendecomposition is A itself (LAPACK per 1x1 costs more)
        lam, V = A[:, :, 0].copy(), np.ones_like(A)
        W = V
    else:
        try:
            lam, V = np.linalg.eig(A)
            W = np.linalg.inv(V)
        except np.linalg.LinAlgError as exc:
            raise Unsupported(f"eigendecomposition failed ({exc})") from exc
    cond = np.abs(V).max(axis=(1, 2)) * np.abs(W).max(axis=(1, 2)) * A.shape[1]
    if np.iscomplexobj(lam) or not np.all(np.isfinite(W)) or np.any(cond >= _CONDITION_LIMIT):
        if not (np.iscomplexobj(lam) and np.all(lam.imag == 0) and np.all(V.imag == 0)):
            raise Unsupported("complex or ill-conditioned eigenbasis (use the per-subject path)")
        lam, V, W = lam.real, V.real, W.real
    wv = np.einsum("mij,mej->mei", W, ev)  # inputs in each subject's eigenbasis (m, E, n)
    wg = np.einsum("mij,mj->mi", W, g0)  # constant input (zero-state rates) in the eigenbasis
    if times.ndim == 1 and np.all(et == et[:1]) and np.all(dur == dur[:1]):
        z = _sweep(lam, wv, wg, et[0], dur[0], times)
    else:
        z = _superpose(lam, wv, wg, et, dur, times)
    x = np.einsum("mtn,mjn->mtj", z, V)
    return np.asarray(np.einsum("mtj,moj->mot", x, C) + c0[:, :, None])


def _sweep(
    lam: np.ndarray, wv: np.ndarray, wg: np.ndarray, et: np.ndarray, dur: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Eigen-coordinates at ``times`` (m,T,n) when every subject's inputs start at the same times:
    one exact propagation step per breakpoint for all subjects together, O(m (T + E) n)."""
    m, n = wg.shape
    ends = et + dur
    points = np.unique(np.concatenate([times, et, ends[dur > 0]]))
    out = np.empty((m, len(times), n))
    z = np.zeros((m, n))
    running = np.zeros(len(et), dtype=bool)
    u = wg.copy()
    tc = 0.0
    for p in points:
        h = p - tc
        if h > 0:
            z = np.exp(lam * h) * z + _phi(lam, np.full_like(lam, h)) * u
            tc = p
        hit = times == p
        if hit.any():  # outputs at an input time are pre-input
            out[:, hit, :] = z[:, None, :]
        bolus = (et == p) & (dur <= 0)
        if bolus.any():
            z = z + wv[:, bolus, :].sum(axis=1)
        changed = ((et == p) & (dur > 0)) | ((ends == p) & (dur > 0))
        if changed.any():
            running = (et <= p) & (ends > p) & (dur > 0)
            u = wg + wv[:, running, :].sum(axis=1)  # rebuilt, not incremented: no drift after an end
    return out


def _superpose(
    lam: np.ndarray, wv: np.ndarray, wg: np.ndarray, et: np.ndarray, dur: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """Eigen-coordinates at ``times`` (m,T,n) for subject-specific input times, by superposition;
    ``times`` is (T,) for all subjects or (m,T), each subject's own."""
    tt = times if times.ndim == 2 else times[None, :]
    h0 = np.maximum(tt, 0.0)[:, :, None]
    z = _phi(lam[:, None, :], h0) * wg[:, None, :]
    d = (tt[:, :, None] - et[:, None, :])[..., None]  # time since each input started (m,T,E,1)
    D = dur[:, None, :, None]
    lam4 = lam[:, None, None, :]
    # A bolus: e^{lam d} once given (strictly after: an output at a dose time is pre-dose). An
    # infusion of length D: phi(d) while it runs, e^{lam (d - D)} phi(D) after it ends -- one
    # term, not the difference of two rate steps, which cancels badly once levels have decayed.
    running = np.minimum(np.maximum(d, 0.0), D)
    after = np.maximum(d - D, 0.0)
    kernel = np.where(
        D > 0,
        np.exp(lam4 * after) * _phi(lam4, running),
        np.where(d > 0, np.exp(lam4 * np.maximum(d, 0.0)), 0.0),
    )
    return np.asarray(z + np.einsum("mten,men->mtn", kernel, wv))
