"""SBML + card -> NONMEM control stream, for linear compartmental models ($DES with ADVAN13).

The model's reactions must be first order in their reactant (``k * A``) with ``k`` free of
species: the SBML assignment rules become ``$PK`` code in dependency order, each reaction a term
of ``DADT``, the card's ETAs ``ETA(n)`` with Omega as ``$OMEGA BLOCK``, each observable's residual
error ``$ERROR`` code with ``$SIGMA 1 FIX`` and the SDs as ``$THETA``. What is outside that subset
(rate rules, events, nonlinear rates, several routes into one compartment) raises ModelError
naming the element; pharmpy parses the result back in the tests.
"""

from __future__ import annotations

import re

import libsbml

from interop.errors import ModelError
from interop.schema import ModelCard, ResidualError

__all__ = ["export_control_stream"]


def _formula(ast: libsbml.ASTNode, names: dict[str, str]) -> str:
    text = libsbml.formulaToL3String(ast)
    text = re.sub(r"\b([A-Za-z_]\w*)\b", lambda m: names.get(m[1], m[1]), text)
    text = text.replace("^", "**")
    if re.search(r"\b(piecewise|time|ln|log10|abs)\b", text):
        if "piecewise" in text or re.search(r"\btime\b", text):
            raise ModelError(f"expression {text!r} uses piecewise or time: not in the linear subset")
        text = re.sub(r"\bln\(", "LOG(", text)
        text = re.sub(r"\babs\(", "ABS(", text)
    return re.sub(r"\bexp\(", "EXP(", re.sub(r"\bsqrt\(", "SQRT(", text))


def _ordered_rules(model: libsbml.Model) -> list[libsbml.AssignmentRule]:
    rules = [model.getRule(i) for i in range(model.getNumRules())]
    if any(r.isRate() for r in rules):
        raise ModelError("the model has rate rules: export needs species and reactions")
    assigned = {r.getVariable(): r for r in rules if r.isAssignment()}
    done: list[libsbml.AssignmentRule] = []
    seen: set[str] = set()

    def visit(var: str, stack: tuple[str, ...]) -> None:
        if var in seen:
            return
        if var in stack:
            raise ModelError(f"assignment rules are circular at {var}")
        rule = assigned[var]
        for name in _names(rule.getMath()):
            if name in assigned:
                visit(name, (*stack, var))
        seen.add(var)
        done.append(rule)

    for var in assigned:
        visit(var, ())
    return done


def _names(ast: libsbml.ASTNode) -> set[str]:
    out = set()
    nodes = [ast]
    while nodes:
        n = nodes.pop()
        if n.getType() == libsbml.AST_NAME:
            out.add(n.getName())
        nodes += [n.getChild(i) for i in range(n.getNumChildren())]
    return out


def export_control_stream(sbml: str, card: ModelCard, *, data_file: str = "data.csv") -> str:
    """A control stream computing what ``sbml`` + ``card`` compute (linear compartmental subset)."""
    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    if model is None:
        raise ModelError("not an SBML model")
    if model.getNumEvents():
        raise ModelError("the model has events: not in the linear compartmental subset")
    species = [model.getSpecies(i).getId() for i in range(model.getNumSpecies())]
    if not species:
        raise ModelError("the model has no species: export needs compartments as species")
    cmt = {s: k for k, s in enumerate(species, start=1)}
    etas = list(card.random_effects.etas)
    names = {e: f"ETA({k})" for k, e in enumerate(etas, start=1)}
    names.update({s: f"A({cmt[s]})" for s in species})
    consts = [
        model.getParameter(i)
        for i in range(model.getNumParameters())
        if model.getParameter(i).getConstant() and model.getParameter(i).getId() not in names
    ]
    covariates = [c.name for c in card.covariates]
    thetas = [p for p in consts if p.getId() not in covariates]
    for k, p in enumerate(thetas, start=1):
        names[p.getId()] = f"THETA({k})"
    for p in (model.getParameter(i) for i in range(model.getNumParameters())):
        if not p.getConstant() and p.getId() not in {r.getVariable() for r in _ordered_rules(model)}:
            if p.getId() not in covariates:
                raise ModelError(f"parameter {p.getId()} is set at run time but is not a covariate")
    pk, des = [], []
    rules = _ordered_rules(model)
    species_rules: set[str] = set()
    for r in rules:
        if _names(r.getMath()) & set(species) or _names(r.getMath()) & species_rules:
            species_rules.add(r.getVariable())
    for r in rules:
        if r.getVariable() not in species_rules:
            pk.append(f"{r.getVariable()} = {_formula(r.getMath(), names)}")
    terms: dict[str, list[str]] = {s: [] for s in species}
    for i in range(model.getNumReactions()):
        rx = model.getReaction(i)
        law = rx.getKineticLaw()
        if law is None or rx.getNumReactants() > 1 or rx.getNumProducts() > 1:
            raise ModelError(f"reaction {rx.getId()} is not a single first-order flow")
        rate = _formula(law.getMath(), names)
        src = rx.getReactant(0).getSpecies() if rx.getNumReactants() else None
        dst = rx.getProduct(0).getSpecies() if rx.getNumProducts() else None
        if src:
            terms[src].append(f"-({rate})")
        if dst:
            terms[dst].append(f"+({rate})")
    for s in species:
        des.append(f"DADT({cmt[s]}) = {' '.join(terms[s]) or '0'}")
    doses = []
    for d in card.dosing:
        if d.target not in cmt:
            raise ModelError(f"dose target {d.target} is not a species")
        n = cmt[d.target]
        if d.fraction != 1:
            raise ModelError(f"dose into {d.target} is a split (fraction {d.fraction:g}): not exported")
        if d.bioavailability != 1.0:
            doses.append(f"F{n} = {names.get(str(d.bioavailability), d.bioavailability)}")
        if d.lag_time_h is not None:
            doses.append(f"ALAG{n} = {names.get(str(d.lag_time_h), d.lag_time_h)}")
        if d.duration_parameter:
            doses.append(f"D{n} = {d.duration_parameter}")
    error, sigma_thetas = [], []
    theta_k = len(thetas)
    for o in card.observables:
        obs_cmt = next((cmt[s] for s in species if re.search(rf"\b{s}\b", _obs_formula(model, o.sbml))), None)
        if obs_cmt is None:
            raise ModelError(f"observable {o.id} depends on no species")
        pred = _obs_formula(model, o.sbml)
        if re.search(r"\bA_", pred) is None and o.sbml not in species_rules:
            raise ModelError(f"observable {o.id} must be an SBML rule over species")
        err = card.error_for(o.id)
        if err is None:
            raise ModelError(f"observable {o.id} has no residual error in the card")
        a, b = theta_k + 1, theta_k + 2
        theta_k += 2
        sigma_thetas += [
            f"{err.additive_sd:.10g} FIX ; {o.id} additive SD",
            f"{err.proportional_sd:.10g} FIX ; {o.id} proportional SD",
        ]
        cond = f"IF (CMT.EQ.{obs_cmt}) " if len(card.observables) > 1 else ""
        body = _obs_formula(model, o.sbml, names, species_rules, rules)
        if err.model == "exponential":
            error.append(f"{cond}Y = LOG({body}) + THETA({b})*EPS(1)")
        else:
            error.append(f"{cond}Y = ({body}) + {_error_sd(err, o.id, a, b, body)}*EPS(1)")
    inputs = "ID TIME EVID AMT CMT RATE II ADDL MDV DV " + " ".join(covariates)
    theta_lines = [f"{p.getValue():.10g} ; {p.getId()}" for p in thetas] + sigma_thetas
    omega = card.random_effects.omega_matrix()
    n = len(etas)
    omega_lines = [" ".join(f"{omega[i, j]:.10g}" for j in range(i + 1)) for i in range(n)]
    comps = " ".join(f"COMP=({s})" for s in species)
    out = [
        f"$PROBLEM {card.title} (exported by digphat-interop from {card.id}@{card.version})",
        f"$INPUT {inputs.strip()}",
        f"$DATA {data_file} IGNORE=@",
        "$SUBROUTINES ADVAN13 TOL=9",
        f"$MODEL {comps}",
        "$PK",
        *pk,
        *doses,
        "$DES",
        *des,
        "$ERROR",
        *error,
        "$THETA",
        *theta_lines,
        *([f"$OMEGA BLOCK({n})", *omega_lines] if n else []),
        "$SIGMA 1 FIX",
    ]
    return "\n".join(out) + "\n"


def _error_sd(err: ResidualError, observable: str, a: int, b: int, body: str) -> str:
    """NM-TRAN for the residual SD of the card's error form (THETA(a) additive, THETA(b) proportional)."""
    if err.form == "combined-sd":
        return f"(THETA({a}) + THETA({b})*ABS({body}))"
    if err.form == "power":
        return f"SQRT(THETA({a})**2 + (THETA({b})*ABS({body})**{err.exponent:.10g})**2)"
    if err.form == "sbml":
        raise ModelError(f"observable {observable}: an sbml-form residual error has no NONMEM export")
    return f"SQRT(THETA({a})**2 + (THETA({b})*({body}))**2)"


def _obs_formula(model, sbml, names=None, species_rules=None, rules=None):  # type: ignore[no-untyped-def]
    """The observable as code; rules over species are inlined (they cannot live in $PK)."""
    names = names or {}
    rule = model.getAssignmentRule(sbml)
    text = _formula(rule.getMath(), {}) if rule is not None else sbml
    if species_rules:
        for _ in range(10):
            hit = False
            for r in reversed(rules or []):
                if r.getVariable() in species_rules and re.search(rf"\b{r.getVariable()}\b", text):
                    text = re.sub(rf"\b{r.getVariable()}\b", f"({_formula(r.getMath(), {})})", text)
                    hit = True
            if not hit:
                break
    return re.sub(r"\b([A-Za-z_]\w*)\b", lambda m: names.get(m[1], m[1]), text) if names else text
