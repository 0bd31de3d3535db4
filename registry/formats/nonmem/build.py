"""From pharmpy's parsed model to the SBML rules and the model card (see convert.py for decisions)."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy

from interop.errors import SchemaError
from interop.schema import Coding, ModelCard, ReferenceOutput, parse
from registry.formats.nonmem.errormodel import classify_error
from registry.formats.nonmem.formula import Unprintable
from registry.formats.nonmem.sbml import Flow, SbmlParameter, write_sbml
from registry.formats.nonmem.statements import Rule, StatementGraph, mtime_id, safe_id
from registry.formats.nonmem.stream import NonmemError, Problems, line_of, record_lines
from registry.formats.pharmml.card import covariate_source

__all__ = ["RESERVED_ITEMS", "build_conversion"]

COVARIATE_SYSTEM = "urn:digphat:nonmem-covariate"
RESERVED_ITEMS = {
    "ID", "L1", "L2", "TIME", "DATE", "DAT1", "DAT2", "DAT3", "EVID", "AMT", "CMT", "RATE", "II",
    "ADDL", "SS", "MDV", "DV", "PCMT", "CALL", "CONT", "MRG_", "RAW_", "RPT_", "XVID1", "XVID2",
    "XVID3", "XVID4", "XVID5", "LDV", "BLQ", "LLOQ",
}  # fmt: skip
_ORAL = re.compile(r"(DEPOT|GUT|ABS|TRANSIT)", re.I)
_TIME = sympy.Symbol("time")


@dataclass
class _Context:
    model: Any
    text: str
    problems: Problems
    warnings: list[str] = field(default_factory=list)
    thetas: dict[str, tuple[str, float, float, float]] = field(
        default_factory=dict
    )  # name -> id, init, lo, hi
    columns: list[str] = field(default_factory=list)
    graph: StatementGraph = field(default_factory=StatementGraph)
    record_line: dict[str, int] = field(default_factory=dict)
    stage: tuple[int | None, str] = (None, "control stream")  # what is being converted, for errors

    def line(self, record: str, pattern: str | None = None) -> int | None:
        start = self.record_line.get(record)
        if pattern is None or start is None:
            return start
        return line_of(self.text, pattern, after=start) or start


def _normalise(expr: object, ctx: _Context) -> sympy.Expr:
    """sympy form with states as symbols, TIME/t as time, MPAST(n) as a step, THETA ids canonical."""
    e = _with_default(sympy.sympify(expr))
    repl: dict[sympy.Basic, sympy.Basic] = {}
    for f in e.atoms(sympy.core.function.AppliedUndef):
        name = type(f).__name__
        if name == "MPAST" and len(f.args) == 1:
            repl[f] = sympy.Piecewise((1, _TIME >= sympy.Symbol(mtime_id(int(f.args[0])))), (0, True))
        elif name == "MTIME" and len(f.args) == 1:
            repl[f] = sympy.Symbol(mtime_id(int(f.args[0])))
        elif len(f.args) == 1 and f.args[0] == sympy.Symbol("t"):
            repl[f] = sympy.Symbol(safe_id(name))
    for s in e.free_symbols:
        if s.name in ("t", "TIME", "T"):
            repl[s] = _TIME
        elif s.name in ctx.thetas:
            repl[s] = sympy.Symbol(ctx.thetas[s.name][0])
    return e.xreplace(repl) if repl else e


def _with_default(e: sympy.Basic) -> sympy.Basic:
    """Every IF without ELSE completed with NONMEM's value of a variable never assigned, 0.

    sympy cannot put a Piecewise without a default into a condition (``IF (W.EQ.0) W = 1`` after
    ``IF (FLAG.EQ.5) W = ...``); the printer writes the same 0 (formula.py).
    """
    if not e.has(sympy.Piecewise):
        return e

    def complete(p: sympy.Piecewise) -> sympy.Basic:
        if any(c is sympy.true for _v, c in p.args):
            return p
        return sympy.Piecewise(*p.args, (0, True))

    return e.replace(lambda x: isinstance(x, sympy.Piecewise), complete)


def _values(ctx: _Context) -> dict[sympy.Symbol, float]:
    return {sympy.Symbol(sid): init for sid, init, _lo, _hi in ctx.thetas.values()}


def _constant(ctx: _Context, expr: sympy.Expr, depth: int = 0) -> float | None:
    """The number ``expr`` is when it depends on thetas only (through $PK rules), else None."""
    values = _values(ctx)
    for _ in range(50):
        pending = {s for s in expr.free_symbols if s not in values}
        if not pending:
            break
        repl = {}
        for s in pending:
            rule = ctx.graph.rules.get(s.name)
            if rule is None:
                return None
            repl[s] = rule.expr
        expr = sympy.sympify(expr).xreplace(repl)
    try:
        value = float(sympy.sympify(sympy.sympify(expr).xreplace(values)).evalf())
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def build_conversion(
    model: Any,
    text: str,
    problems: Problems,
    *,
    model_id: str,
    title: str,
    drug: Coding,
    institution: str,
    units: dict[str, str],
    reference_outputs: tuple[ReferenceOutput, ...],
    source: str | None,
) -> tuple[str, ModelCard, list[str]]:
    ctx = _Context(model=model, text=text, problems=problems)
    for name, line, _body in record_lines(text):
        ctx.record_line.setdefault(name, line)
    try:
        return _build(ctx, model_id, title, drug, institution, units, reference_outputs, source)
    except NonmemError:
        raise
    except _INTERNAL as exc:  # pharmpy/sympy on a construct not foreseen: a refusal, not a crash
        at, construct = ctx.stage
        message = (str(exc).strip().splitlines() or [""])[0][:160] or type(exc).__name__
        problems.add(at, construct, f"cannot be converted ({type(exc).__name__}: {message})")
        problems.raise_if_any()
        raise


_INTERNAL = (ValueError, TypeError, AttributeError, AssertionError, NotImplementedError, KeyError,
             IndexError, ZeroDivisionError, RecursionError)  # fmt: skip


def _build(ctx: _Context, model_id: str, title: str, drug: Coding, institution: str, units: dict[str, str],
           reference_outputs: tuple[ReferenceOutput, ...], source: str | None,
           ) -> tuple[str, ModelCard, list[str]]:  # fmt: skip
    model, problems = ctx.model, ctx.problems
    ctx.stage = (ctx.line("INPUT"), "$INPUT")
    ctx.columns = [c.name for c in model.datainfo if not c.drop]
    n_theta = sum(len(r.inits) for r in model.internals.control_stream.get_records("THETA"))
    params = list(model.parameters)
    theta_notes = []
    for k, p in enumerate(params[:n_theta], start=1):
        ctx.thetas[p.name] = (f"THETA_{k}", float(p.init), float(p.lower), float(p.upper))
        theta_notes.append(f"THETA({k}) = {p.init:g} in [{p.lower:g}, {p.upper:g}]{' FIX' if p.fix else ''}")
    ctx.stage = (ctx.line("PK"), "$PK")
    statements = model.statements
    cs = statements.ode_system
    if cs is None:
        problems.add(ctx.line("PRED"), "$PRED", "no compartmental system (ADVAN) in the model")
        problems.raise_if_any()
    pk = []
    initial: list[tuple[str, sympy.Expr, int | None]] = []  # A_0(n): the amount at time 0
    for st in statements.before_odes:
        if not hasattr(st, "symbol"):
            continue
        name = str(st.symbol)
        target = sympy.sympify(st.symbol)
        if isinstance(target, sympy.core.function.AppliedUndef) and target.args == (0,):
            line = ctx.line("PK", r"\bA_0\s*\(")
            initial.append((safe_id(type(target).__name__), _normalise(st.expression, ctx), line))
            continue
        pk.append(
            (
                sympy.sympify(st.symbol),
                _normalise(st.expression, ctx),
                ctx.line("PK", rf"\b{re.escape(name)}\s*="),
            )
        )
    ctx.graph = StatementGraph.build(pk)
    graph = ctx.graph
    # the rules as they stand at the end of $PK (NONMEM sets A_0 after $PK has run)
    initial_amounts = {sid: graph.rename(e) for sid, e, _line in initial}
    comp_map = {k: v for k, v in model.internals.compartment_map.items() if k != "OUTPUT"}
    by_number = {v: k for k, v in comp_map.items()}
    states: dict[str, sympy.Expr] = {}
    ctx.stage = (ctx.line("DES") or ctx.line("MODEL") or ctx.line("SUBROUTINES"), "compartmental system")
    for eq in cs.eqs:
        eq = sympy.sympify(eq)
        fn = eq.lhs.args[0]
        states[safe_id(type(fn).__name__)] = graph.rename(_normalise(eq.rhs, ctx))
    for n, cname in sorted(by_number.items()):
        if safe_id(f"A_{cname}") not in states:
            problems.add(ctx.line("MODEL"), f"compartment {n}", f"{cname} has no equation")
    rvs = model.random_variables
    eps_var = _epsilon_variances(ctx, rvs)
    ctx.stage = (ctx.line("ERROR"), "$ERROR")
    y_expr, f_states = _error_expression(ctx, statements)
    observables = _observables(ctx, y_expr, f_states, comp_map, eps_var)
    ctx.stage = (ctx.line("OMEGA"), "$OMEGA (occasions)")
    occasions, occasion_items = _occasions(ctx, rvs)
    observed = {n for o in observables for n in o["cmts"]}
    ctx.stage = (ctx.line("PK"), "doses")
    doses = _doses(ctx, cs, by_number, observed)
    problems.raise_if_any()

    # SBML: everything the ODEs, doses and observables need
    extra_rules = [Rule(o["sid"], o["sid"], o["sbml_expr"]) for o in observables]
    extra_rules += [
        Rule(o["sd_sid"], o["sd_sid"], o["shape"].sd) for o in observables if o["shape"].sd is not None
    ]
    extra_rules += [Rule(sid, sid, e) for sid, e in doses["rules"].items()]
    roots = set()
    for e in [*states.values(), *(r.expr for r in extra_rules)]:
        roots |= {s.name for s in e.free_symbols}
    for sid, e in initial_amounts.items():
        if sid not in states:
            problems.add(next(ln for i, _e, ln in initial if i == sid), "A_0", f"{sid} is not a compartment")
        roots |= {x.name for x in e.free_symbols}
    roots |= set(doses["ids"])
    rules = graph.needed(roots)
    used: set[str] = set()
    for e in [*states.values(), *initial_amounts.values(), *(r.expr for r in [*rules, *extra_rules])]:
        used |= {s.name for s in e.free_symbols}
    eta_names = list(rvs.etas.names)
    theta_ids = {sid for sid, *_ in ctx.thetas.values()}
    occasion_params = {o["parameter"] for o in occasions}
    covariates = []
    for name in sorted(used - set(graph.rules) - set(states) - theta_ids - {"time"} - set(eta_names)):
        if name in occasion_params:
            continue
        if name in ctx.columns and name not in RESERVED_ITEMS and name not in occasion_items:
            covariates.append(name)
        elif name in ctx.columns:
            why = f"the model uses data item {name}, which a twin's dosing history does not supply"
            problems.add(ctx.line("PK", rf"\b{name}\b"), name, why)
        else:
            problems.add(ctx.line("PK", rf"\b{name}\b"), name, "used but neither defined nor a $INPUT item")
    problems.raise_if_any()
    covariates += sorted(occasion_items - set(covariates))  # OCC: read like a covariate, switches occasions

    sbml_params = [SbmlParameter(sid, value=v) for sid, v, _lo, _hi in ctx.thetas.values()]
    sbml_params += [SbmlParameter(safe_id(e), value=0.0) for e in eta_names]
    sbml_params += [SbmlParameter(c, value=0.0, constant=False) for c in covariates]
    sbml_params += [SbmlParameter(p, value=0.0, constant=False) for p in sorted(occasion_params)]
    sbml_params += [SbmlParameter(r.sid, rule=r.expr) for r in [*rules, *extra_rules]]
    ctx.stage = (ctx.line("PK"), "SBML")
    # the twin's closed-form path starts every amount at 0: with A_0, rate rules (the ODE path)
    flows = _flows(ctx, cs, states) if not initial_amounts else None
    if flows is None:
        sbml_params += [SbmlParameter(sid, value=0.0, rate=rhs) for sid, rhs in states.items()]
    try:
        sbml = write_sbml(
            re.sub(r"[^A-Za-z0-9_]", "_", model_id if model_id[0].isalpha() else f"m_{model_id}"),
            title,
            sbml_params,
            "Converted from a NONMEM control stream by digphat-interop (pharmpy). " + "; ".join(theta_notes),
            species=tuple(states) if flows is not None else (),
            flows=tuple(flows or ()),
            initial=initial_amounts,
        )
    except Unprintable as exc:
        problems.add(ctx.line("PK"), "expression", str(exc))
        problems.raise_if_any()
        raise
    card = _card(ctx, model_id, title, drug, institution, units, reference_outputs, source,
                 doses, observables, covariates, rvs, occasions, sorted(occasion_items))  # fmt: skip
    return sbml, card, ctx.warnings


def _flows(ctx: _Context, cs: Any, states: dict[str, sympy.Expr]) -> list[Flow] | None:
    """pharmpy's compartment flows as reactions, if they add up to the ODEs exactly (else None)."""
    out: list[Flow] = []
    try:
        for cname in cs.compartment_names:
            comp = cs.find_compartment(cname)
            source = safe_id(f"A_{cname}")
            for to, rate in cs.get_compartment_outflows(comp):
                target = (
                    safe_id(f"A_{to.name}")
                    if hasattr(to, "name") and to.name in cs.compartment_names
                    else None
                )
                law = ctx.graph.rename(_normalise(rate, ctx)) * sympy.Symbol(source)
                out.append(Flow(source, target, sympy.simplify(law)))
            inp = ctx.graph.rename(_normalise(comp.input, ctx))
            if inp != 0:
                out.append(Flow(None, source, inp))
    except (AttributeError, TypeError, ValueError):
        return None
    for sid, rhs in states.items():
        net = sum((f.rate for f in out if f.target == sid), sympy.Integer(0)) - sum(
            (f.rate for f in out if f.source == sid), sympy.Integer(0)
        )
        if sympy.simplify(net - rhs) != 0:
            return None
    return out


def _epsilon_variances(ctx: _Context, rvs: Any) -> dict[str, float]:
    inits = ctx.model.parameters.inits
    names = list(rvs.epsilons.names)
    cov = sympy.Matrix(rvs.epsilons.covariance_matrix).xreplace(
        {sympy.Symbol(k): v for k, v in inits.items()}
    )
    m = np.array(cov.tolist(), dtype=float)
    if np.any(np.abs(m - np.diag(np.diag(m))) > 0):
        ctx.problems.add(ctx.line("SIGMA"), "$SIGMA BLOCK", "correlated residual errors are not supported")
    return {n: float(m[i, i]) for i, n in enumerate(names)}


def _error_expression(ctx: _Context, statements: Any) -> tuple[sympy.Expr, set[str]]:
    """Y after substituting every $ERROR statement; F stays a symbol (per-compartment below)."""
    env: dict[sympy.Symbol, sympy.Expr] = {}
    f_states: set[str] = set()
    after = [s for s in statements.after_odes if hasattr(s, "symbol")]
    if after and str(after[0].symbol) == "F":
        f_states = {safe_id(type(a).__name__) for a in sympy.sympify(after[0].expression).atoms(
            sympy.core.function.AppliedUndef)}  # fmt: skip
        after = after[1:]
    for st in after:
        e = _normalise(st.expression, ctx).xreplace(env)
        env[sympy.Symbol(str(st.symbol))] = ctx.graph.rename(e)
    y = env.get(sympy.Symbol("Y"))
    split = len(getattr(ctx.model, "dependent_variables", {}) or {}) > 1  # pharmpy's one Y per DVID value
    if y is None or split:
        if split or any(re.fullmatch(r"Y_?\d+", k.name) for k in env):
            why = ("Y is chosen by data item DVID in an IF/ELSE block (pharmpy reads the ELSE as DVID 2); "
                   "the card routes observations by the values the code names: write IF (DVID.EQ.n) for "
                   "each type")  # fmt: skip
            ctx.problems.add(ctx.line("ERROR", r"\bDVID\b"), "Y", why)
        else:
            ctx.problems.add(ctx.line("ERROR"), "$ERROR", "Y is never assigned")
        return sympy.Integer(0), f_states
    once = {k for k, n in Counter(sympy.Symbol(str(st.symbol)) for st in after).items() if n == 1}
    for _ in range(10):  # pharmpy merges an IF/ELSE block and may put a use before its definition
        late = {s: env[s] for s in y.free_symbols & once}
        if not late:
            break
        y = y.xreplace(late)
    flag = env.get(sympy.Symbol("F_FLAG"))
    if flag is not None and flag != 0:
        y = _uncensored(ctx, y, flag)
    return y, f_states


def _uncensored(ctx: _Context, y: sympy.Expr, flag: sympy.Expr) -> sympy.Expr:
    """Y where ``F_FLAG`` is 0: the continuous observation of an M3/likelihood ``$ERROR``.

    NONMEM reads Y as a likelihood where F_FLAG is 1 (a level below the LOQ, ``Y = PHI(...)``)
    or 2. The conditions on data items that set F_FLAG are tried true and false; the setting
    where F_FLAG is 0 and Y still has an EPS is the card's observation (a warning says what
    was dropped). No such setting: every record is a likelihood, which the card cannot hold.
    """
    line = ctx.line("ERROR", r"\bF_FLAG\s*=")
    items = set(ctx.columns) - {"CMT"}
    relational = sympy.core.relational.Relational
    chosen = {s.name for a in flag.atoms(relational) for s in a.free_symbols} & items
    atoms = sorted(  # the conditions on those items, in F_FLAG and in Y (written apart by pharmpy)
        {
            a
            for a in (flag.atoms(relational) | y.atoms(relational))
            if {s.name for s in a.free_symbols} & chosen
        },
        key=str,
    )
    eps = {sympy.Symbol(n) for n in ctx.model.random_variables.epsilons.names}
    if 0 < len(atoms) <= 6:
        for truth in itertools.product((True, False), repeat=len(atoms)):
            setting = {a: sympy.true if t else sympy.false for a, t in zip(atoms, truth, strict=True)}
            if sympy.simplify(sympy.piecewise_fold(flag.xreplace(setting))) != 0:
                continue
            candidate = sympy.piecewise_fold(y.xreplace(setting))
            if candidate.free_symbols & eps:
                kept = " and ".join(str(a) if t else f"not {a}" for a, t in zip(atoms, truth, strict=True))
                ctx.warnings.append(
                    f"F_FLAG: the card observes Y where {kept} (F_FLAG=0); the other records are "
                    "a likelihood (M3 censoring below the LOQ) the card does not hold"
                )
                return candidate
    why = (
        "Y is a likelihood (F_FLAG) with no continuous branch chosen by data items: count, "
        "categorical and time-to-event data are not continuous levels"
    )
    ctx.problems.add(line, "F_FLAG", why)
    return y


def _observables(
    ctx: _Context, y: sympy.Expr, f_states: set[str], comp_map: dict[str, int], eps_var: dict[str, float]
) -> list[dict[str, Any]]:
    cmt = sympy.Symbol("CMT")
    tested = {int(a.args[1]) for a in y.atoms(sympy.Eq) if a.args[0] == cmt and a.args[1].is_Number}
    candidates = []
    for cname, n in sorted(comp_map.items(), key=lambda kv: kv[1]):
        if safe_id(f"A_{cname}") in f_states or f"S{n}" in ctx.graph.final or n in tested:
            candidates.append((n, cname))
    out: list[dict[str, Any]] = []
    eps_syms = [sympy.Symbol(e) for e in eps_var]
    err_line = ctx.line("ERROR", r"^\s*Y\s*=")
    for n, cname in candidates:
        s_id = ctx.graph.final.get(f"S{n}")
        fc = (
            sympy.Symbol(safe_id(f"A_{cname}")) / sympy.Symbol(s_id)
            if s_id
            else sympy.Symbol(safe_id(f"A_{cname}"))
        )
        y_n = y.subs({cmt: n, sympy.Symbol("MDV"): 0, sympy.Symbol("EVID"): 0})
        zero = {e: 0 for e in eps_syms}
        at_zero = y_n.xreplace(zero)  # the prediction: the error may use items
        chosen = {s.name for a in at_zero.atoms(sympy.core.relational.Relational) for s in a.free_symbols}
        chosen &= set(ctx.columns) - {"CMT", "MDV", "EVID"}
        branches: list[tuple[str | None, float | None, sympy.Expr]] = [(None, None, y_n)]
        if chosen:
            branches = _item_branches(ctx, y_n, chosen, eps_syms, err_line)
        for item, value, y_b in branches:
            uses_f = sympy.Symbol("F") in y_b.free_symbols
            yc = _unguarded(y_b.xreplace({sympy.Symbol("F"): fc}))
            pred = sympy.simplify(yc.xreplace(zero))
            terms = {e.name: sympy.diff(yc, e).xreplace(zero) for e in eps_syms if eps_var[e.name] > 0}
            terms = {k: sd for k, sd in terms.items() if sd != 0}
            sds = [(sd, eps_var[k]) for k, sd in terms.items()]
            if not sds:
                if item is None and (n in tested or f"S{n}" in ctx.graph.final):
                    ctx.warnings.append(
                        f"compartment {n} ({cname}) has no residual error in Y: not an observable"
                    )
                continue
            bad = {s.name for s in yc.free_symbols} & (RESERVED_ITEMS - {"CMT", "MDV", "EVID"})
            if bad:
                ctx.problems.add(err_line, "Y", f"Y depends on data item(s) {', '.join(sorted(bad))}")
                continue
            used_states = sorted(x.name for x in pred.free_symbols if x.name.startswith("A_"))
            obs_n, obs_name = n, cname
            if n not in tested and len(used_states) == 1 and used_states[0] != safe_id(f"A_{cname}"):
                # Y names a compartment's amount itself (A(2)/V, not F): that compartment is observed
                obs_name = next((c for c in comp_map if safe_id(f"A_{c}") == used_states[0]), cname)
                obs_n = comp_map[obs_name]
            level = None if item is None else (n if uses_f else None, value)
            same = next((o for o in out if sympy.simplify(o["pred"] - pred) == 0), None)
            if same is not None and item is None:
                if obs_n not in same["cmts"]:
                    same["cmts"].append(obs_n)
                continue
            if same is not None and level in same["levels"]:
                continue  # the same branch reached from another compartment (Y without F)
            if same is not None:
                if not _same_error(same["terms"], terms):
                    pair = " and ".join("other values" if v is None else f"{v:g}" for v in
                                        (same["levels"][0][1], value))  # fmt: skip
                    why = (f"Y's error model is chosen by data item {item} for one prediction ({item} "
                           f"{pair}: replicates or occasions with their own EPS); the card has one "
                           "error model per observable")  # fmt: skip
                    ctx.problems.add(err_line, "Y", why)
                else:
                    same["levels"].append(level)
                continue
            try:
                shape = classify_error(pred, sds, _values(ctx))
            except ValueError as exc:
                ctx.problems.add(err_line, "$ERROR", f"compartment {n}: {exc}")
                continue
            except (TypeError, AttributeError) as exc:  # sympy on IF/ELSE it cannot fold
                why = f"compartment {n}: the residual variance of Y cannot be analysed ({exc})"
                ctx.problems.add(err_line, "$ERROR", why)
                continue
            expr = pred.args[0] if shape.model == "exponential" else pred
            name = (
                safe_id(obs_name)
                if item is None
                else safe_id(f"{item}_{'other' if value is None else f'{value:g}'}")
            )
            oid = name.lower()
            out.append({"id": oid, "sid": f"PRED_{name}", "pred": pred, "sbml_expr": expr, "shape": shape,
                        "cmts": [obs_n], "sd_sid": f"SD_{name}", "item": item, "terms": terms,
                        "levels": [] if level is None else [level]})  # fmt: skip
            if shape.note:
                ctx.warnings.append(f"{oid}: {shape.note}")
    items = {o["item"] for o in out}
    if len(items) > 1:
        why = "Y is chosen by CMT for some observations and by a data item for others"
        ctx.problems.add(err_line, "Y", why)
    if not out:
        ctx.problems.add(
            err_line, "$ERROR", "no compartment is observed with a residual error (Y = F + ...EPS)"
        )
    return out


def _item_branches(
    ctx: _Context, y: sympy.Expr, chosen: set[str], eps: list[sympy.Symbol], line: int | None
) -> list[tuple[str | None, float | None, sympy.Expr]]:
    """Y per value of the one data item its conditions test (``IF (DVID.EQ.2) Y = ...``).

    Every condition on the item must compare it with a constant (.EQ./.NE.), else a refusal (and
    no branch). The branch no named value reaches (Y before the IFs, ELSE) is value None: the rows
    whose item is any other value, when it has a residual error.
    """
    relational = sympy.core.relational.Relational
    item = next(iter(chosen))
    sym = sympy.Symbol(item)
    atoms = {a for a in y.atoms(relational) if sym in a.free_symbols}
    ok = len(chosen) == 1 and all(
        isinstance(a, (sympy.Eq, sympy.Ne)) and sym in a.args and any(x.is_Number for x in a.args)
        for a in atoms
    )
    if not ok:
        why = (f"Y is chosen by data item(s) {', '.join(sorted(chosen))} other than by one item compared "
               "with constants (IF (DVID.EQ.1) Y = ...); the card routes observations by one item's "
               "values")  # fmt: skip
        ctx.problems.add(line, "Y", why)
        return []
    values = sorted({float(next(x for x in a.args if x.is_Number)) for a in atoms})
    other = y.subs(sym, min(values) - 1000.5)  # a value no condition names: the ELSE branch
    out: list[tuple[str | None, float | None, sympy.Expr]] = [(item, v, y.subs(sym, v)) for v in values]
    return out + ([(item, None, other)] if set(eps) & other.free_symbols else [])


def _unguarded(e: sympy.Expr) -> sympy.Expr:
    """``e`` without guards against an amount of exactly 0 (``IF (A(1).EQ.0) DEL = 1`` before
    ``LOG(A(1) + DEL)``): a Piecewise whose conditions only test amounts for 0 is its otherwise
    value, as the card's predictions treat F = 0 already (errormodel.py)."""

    def zero_test(c: sympy.Basic) -> bool:
        eqs = c.atoms(sympy.core.relational.Relational)
        return bool(eqs) and all(
            isinstance(a, sympy.Eq) and a.args[1] == 0 and isinstance(a.args[0], sympy.Symbol)
            and a.args[0].name.startswith("A_") for a in eqs
        )  # fmt: skip

    def drop(p: sympy.Piecewise) -> sympy.Basic:
        rest = [(v, c) for v, c in p.args if c is not sympy.true]
        default = next((v for v, c in p.args if c is sympy.true), None)
        return default if default is not None and all(zero_test(c) for _v, c in rest) else p

    if not e.has(sympy.Piecewise):
        return e
    return e.replace(lambda x: isinstance(x, sympy.Piecewise), drop)


def _same_error(a: dict[str, sympy.Expr], b: dict[str, sympy.Expr]) -> bool:
    """The same residual error terms (dY/dEPS_k, EPS by EPS)."""
    return a.keys() == b.keys() and all(sympy.simplify(a[k] - b[k]) == 0 for k in a)


def _occasions(ctx: _Context, rvs: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """IOV: a rule ``P = ETA(a) if OCC == 1 else ETA(b)...`` becomes an occasion parameter P."""
    inits = ctx.model.parameters.inits
    iov = {n: d for d in rvs.etas if d.level == "IOV" for n in d.names}
    if not iov:
        return [], set()
    out, items = [], set()
    iov_syms = {sympy.Symbol(n) for n in iov}
    finals = set(ctx.graph.final.values())
    for sid, rule in list(ctx.graph.rules.items()):
        if sid not in finals:
            continue  # earlier versions are inlined into the last one below
        e = _flatten(_inline_versions(ctx, rule))
        used = e.free_symbols & iov_syms
        if not used:
            continue
        ok = isinstance(e, sympy.Piecewise) and all(v in iov_syms or v == 0 for v, _c in e.args)
        cond_items = {s.name for _v, c in (e.args if ok else ()) for s in sympy.sympify(c).free_symbols}
        variances = {str(iov[s.name].variance) for s in used}
        if not ok or len(cond_items) != 1 or len(variances) != 1:
            ctx.problems.add(rule.line, rule.name, "inter-occasion ETAs must be chosen by one occasion item: "
                             "IF (OCC.EQ.1) P = ETA(n) ... with $OMEGA ... SAME")  # fmt: skip
            continue
        if not cond_items <= set(ctx.columns):
            why = f"the occasion item {cond_items.pop()} is not a $INPUT data item"
            ctx.problems.add(rule.line, rule.name, why)
            continue

        def occasion(pair: tuple[sympy.Expr, sympy.Basic]) -> float:
            cond = pair[1]
            if isinstance(cond, sympy.Eq) and cond.args[1].is_Number:
                return float(cond.args[1])
            return math.inf

        etas = tuple(safe_id(str(v)) for v, _c in sorted(e.args, key=occasion) if v != 0)
        variance = float(sympy.sympify(next(iter(variances))).xreplace(
            {sympy.Symbol(k): v for k, v in inits.items()}))  # fmt: skip
        out.append({"parameter": sid, "etas": etas, "variance": variance})
        items |= cond_items
        del ctx.graph.rules[sid]
    if len(items) > 1:
        why = f"occasions chosen by several items ({', '.join(sorted(items))})"
        ctx.problems.add(ctx.line("PK"), "occasions", why)
    return out, items


def _inline_versions(ctx: _Context, rule: Rule) -> sympy.Expr:
    """``rule``'s expression with earlier versions of the same name substituted (IF after IF)."""
    e = rule.expr
    for _ in range(100):
        repl = {s: ctx.graph.rules[s.name].expr for s in e.free_symbols
                if s.name.startswith(f"{rule.sid}__") and s.name in ctx.graph.rules}  # fmt: skip
        if not repl:
            return e
        e = e.xreplace(repl)
    return e


def _flatten(e: sympy.Expr) -> sympy.Expr:
    """A Piecewise whose otherwise-branch is a Piecewise, as one Piecewise."""
    if not isinstance(e, sympy.Piecewise):
        return e
    pairs = []
    for value, cond in e.args:
        if cond is sympy.true and isinstance(value, sympy.Piecewise):
            pairs += list(_flatten(value).args)
            break
        pairs.append((value, cond))
    return sympy.Piecewise(*pairs)


def _doses(ctx: _Context, cs: Any, by_number: dict[int, str],
           observed: set[int]):  # type: ignore[no-untyped-def]  # fmt: skip
    final = ctx.graph.final
    comps = {n: cs.find_compartment(cname) for n, cname in by_number.items()}  # None: no equation
    numbers = {n for n, comp in comps.items() if comp is not None and comp.doses}
    for n in by_number:
        if any(f"{p}{n}" in final for p in ("F", "ALAG", "D", "R")):
            numbers.add(n)
    depot_n = _depot(cs, by_number, numbers, observed)
    has_rate = "RATE" in ctx.columns
    inputs: list[dict[str, Any]] = []
    for n in sorted(numbers):
        cname = by_number[n]
        if f"R{n}" in final:
            why = "a modelled infusion rate (RATE=-1) is not supported; model the duration with D"
            ctx.problems.add(ctx.line("PK", rf"^\s*R{n}\s*="), f"R{n}", why)
        d_id = final.get(f"D{n}")
        if d_id and not has_rate:
            ctx.warnings.append(f"D{n} has no effect: $INPUT has no RATE")
            d_id = None
        base = {
            "cmt": n,
            "target": safe_id(f"A_{cname}"),
            "f": final.get(f"F{n}"),
            "lag": final.get(f"ALAG{n}"),
        }
        if n == depot_n or (depot_n is None and _ORAL.search(cname)):
            inputs.append({**base, "route": "oral", "rate_code": None, "duration": None})
        elif d_id and depot_n is not None:
            inputs.append({**base, "route": "oral", "rate_code": -2, "duration": d_id})
        else:
            inputs.append({**base, "route": "iv-bolus", "rate_code": None, "duration": None})
            inputs.append(
                {**base, "route": "iv-infusion", "rate_code": -2 if d_id else None, "duration": d_id}
            )
    rules: dict[str, sympy.Expr] = {}
    ids: list[str] = []
    for route in dict.fromkeys(i["route"] for i in inputs):
        group = [i for i in inputs if i["route"] == route]
        if len(group) == 1:
            group[0]["fraction"], group[0]["bio"] = 1.0, group[0]["f"] or 1.0
        else:
            values = [1.0 if i["f"] is None else _constant(ctx, sympy.Symbol(i["f"])) for i in group]
            known = [v for v in values if v is not None and v > 0]
            if len(known) == len(values) and sum(known) <= 1 + 1e-9:
                for i, v in zip(group, values, strict=True):
                    i["fraction"], i["bio"] = v, 1.0
            else:
                k = len(group)
                for i in group:
                    sid = f"BIO_{i['cmt']}"
                    rules[sid] = k * (sympy.Symbol(i["f"]) if i["f"] else sympy.Integer(1))
                    i["fraction"], i["bio"] = 1.0 / k, sid
        for i in group:
            ids += [x for x in (i["f"], i["lag"], i["duration"]) if x]
    return {"inputs": inputs, "rules": rules, "ids": ids}


def _depot(cs: Any, by_number: dict[int, str], numbers: set[int], observed: set[int]) -> int | None:
    """The oral entry: a dosed, unobserved compartment nothing flows into, emptying into one other.

    pharmpy's ``find_depot`` asserts on compartments with three outflows and needs a central
    compartment; general ($MODEL) systems have neither guarantee.
    """
    names = set(cs.compartment_names)
    for n in sorted(numbers):
        comp = cs.find_compartment(by_number[n])
        if comp is None:
            continue
        outs = [to for to, _rate in cs.get_compartment_outflows(comp)]
        if n in observed or cs.get_compartment_inflows(comp) or len(outs) != 1:
            continue
        if getattr(outs[0], "name", None) in names:
            return n
    return None


def _card(ctx, model_id, title, drug, institution, units, reference_outputs, source, doses, observables,
          covariates, rvs, occasions, occasion_items) -> ModelCard:  # type: ignore[no-untyped-def]  # fmt: skip
    inits = ctx.model.parameters.inits
    eta_names = [n for d in rvs.etas if d.level == "IIV" for n in d.names]
    cov = sympy.Matrix(rvs.etas.covariance_matrix).xreplace({sympy.Symbol(k): v for k, v in inits.items()})
    allnames = list(rvs.etas.names)
    idx = [allnames.index(n) for n in eta_names]
    omega = np.array(cov.tolist(), dtype=float)[np.ix_(idx, idx)] if idx else np.zeros((0, 0))
    keep = [i for i in range(len(eta_names)) if omega[i, i] > 0]
    for i in range(len(eta_names)):
        if i not in keep:
            ctx.warnings.append(f"{eta_names[i]} has variance 0 (fixed): kept at 0 in the SBML, not in Omega")
    omega = omega[np.ix_(keep, keep)]
    amount_unit = units.get("dose", "mg")
    if "dose" not in units:
        ctx.warnings.append("NONMEM has no units: AMT is taken as mg and predictions as mg/L (give --unit)")
    obs_cards, errors, levels = [], [], []
    for k, o in enumerate(observables):
        analyte = drug if k == 0 else Coding(system=drug.system, code=f"{drug.code}-{o['id']}",
                                             display=f"{drug.display or drug.code} ({o['id']})")  # fmt: skip
        obs_cards.append({"id": o["id"], "sbml": o["sid"], "unit": units.get(o["id"], "mg/L"),
                          "analyte": analyte.model_dump()})  # fmt: skip
        s = o["shape"]
        errors.append(s.card(o["id"], o["sd_sid"]))
        if o["item"] is None:
            levels += [{"cmt": n, "observable": o["id"]} for n in o["cmts"]]
        else:
            levels += [{"cmt": n, "value": v, "observable": o["id"]} for n, v in o["levels"]]
    dosing = [
        {"route": i["route"], "fraction": i["fraction"], "target": i["target"], "amount_unit": amount_unit,
         "bioavailability": i["bio"], "lag_time_h": i["lag"], "duration_parameter": i["duration"]}
        for i in doses["inputs"]
    ]  # fmt: skip
    dose_cmts = [{"cmt": i["cmt"], "route": i["route"], "rate_code": i["rate_code"]} for i in doses["inputs"]
                 if not (i["route"] == "iv-infusion" and i["rate_code"] is None)]  # fmt: skip
    cov_cards = []
    for name in covariates:
        src = covariate_source(name, system=COVARIATE_SYSTEM)
        ref = _covariate_reference(ctx.text, name)
        if ref is None and name not in occasion_items:
            ctx.warnings.append(f"covariate {name} has no reference value (no ({name}/value) in the code)")
        cov_cards.append({"name": name, "source": src.model_dump(), "reference": ref, "missing": "error",
                          "time_varying": True})  # fmt: skip
    description = " ".join(filter(None, [
        "Converted from a NONMEM control stream by digphat-interop (parsed with pharmpy); time in hours.",
        ("Notes: " + "; ".join(ctx.warnings) + ".") if ctx.warnings else "",
    ]))  # fmt: skip
    try:
        return parse(ModelCard, {
            "id": model_id, "title": title, "description": description, "drugs": [drug.model_dump()],
            "institution": institution, "dosing": dosing, "observables": obs_cards, "covariates": cov_cards,
            "random_effects": {
                "etas": [safe_id(eta_names[i]) for i in keep],
                "omega": omega.tolist(),
                "occasions": [{"parameter": o["parameter"], "etas": o["etas"], "variance": o["variance"]}
                              for o in occasions],
                "occasion_covariate": occasion_items[0] if occasion_items else None,
            },
            "residual_error": errors,
            "reference_outputs": [r.model_dump() for r in reference_outputs],
            "compartments": {"doses": dose_cmts, "levels": levels,
                             "observation_item": next((o["item"] for o in observables), None)},
        }, source=source)  # fmt: skip
    except SchemaError as exc:
        ctx.problems.add(None, "model card", exc.message)
        ctx.problems.raise_if_any()
        raise


def _covariate_reference(text: str, name: str) -> float | None:
    """The value a covariate is normalised by in the code, ``(WT/70)`` -> 70, if there is one."""
    m = re.search(rf"\(\s*{re.escape(name)}\s*/\s*([0-9]+(?:\.[0-9]*)?(?:E[+-]?[0-9]+)?)\s*\)", text, re.I)
    return float(m[1]) if m else None
