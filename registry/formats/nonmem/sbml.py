"""Write the converted model as SBML Level 3 Version 2 with libsbml.

As for PharmML: every quantity is an SBML parameter. Thetas, ETAs and covariates are constants
(covariates and occasion effects not constant: the twin sets them over time), $PK variables and
observables are assignment rules, compartment amounts ``A_<name>`` are parameters with rate rules
starting at 0, so a bolus adds an amount and no volume scaling is implied. When pharmpy's
compartmental system reproduces the ODEs as flows, amounts are species of a unit compartment and
the flows reactions instead (what the twin's closed-form linear path reads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libsbml
import sympy

from interop.errors import ModelError
from registry.formats.nonmem.formula import to_ast
from registry.formats.written import checked_sbml, xhtml_notes

__all__ = ["Flow", "SbmlParameter", "write_sbml"]


@dataclass(frozen=True)
class SbmlParameter:
    sid: str
    value: float | None = None
    constant: bool = True
    rule: sympy.Expr | None = None  # assignment rule
    rate: sympy.Expr | None = None  # rate rule (value is the initial amount)


def _ok(code: int, what: str) -> None:
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ModelError(f"libsbml could not {what}: {libsbml.OperationReturnValue_toString(code)}")


@dataclass(frozen=True)
class Flow:
    """A reaction ``source -> target`` (None: outside) at ``rate`` (amount per hour)."""

    source: str | None
    target: str | None
    rate: sympy.Expr


def write_sbml(
    model_id: str,
    name: str,
    params: list[SbmlParameter],
    notes: str,
    species: tuple[str, ...] = (),
    flows: tuple[Flow, ...] = (),
    initial: Mapping[str, sympy.Expr] | None = None,
) -> str:
    """SBML text; raises ModelError when libsbml finds the result inconsistent.

    ``species`` (amounts in a unit compartment) with ``flows`` as reactions is how linear
    compartmental models are written: the twin's closed-form path reads reactions, not rate rules.
    """
    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    _ok(model.setId(model_id), f"set model id {model_id!r}")
    model.setName(name)
    if species:
        comp = model.createCompartment()
        comp.setId("body")
        comp.setSize(1.0)
        comp.setConstant(True)
        comp.setSpatialDimensions(3)
    for sid in species:
        sp = model.createSpecies()
        _ok(sp.setId(sid), f"create species {sid!r}")
        sp.setCompartment("body")
        sp.setInitialAmount(0.0)
        sp.setHasOnlySubstanceUnits(True)
        sp.setBoundaryCondition(False)
        sp.setConstant(False)
    for k, f in enumerate(flows, start=1):
        rx = model.createReaction()
        rx.setId(f"flow_{k}")
        rx.setReversible(False)
        if f.source:
            ref = rx.createReactant()
            ref.setSpecies(f.source)
            ref.setStoichiometry(1.0)
            ref.setConstant(True)
        if f.target:
            ref = rx.createProduct()
            ref.setSpecies(f.target)
            ref.setStoichiometry(1.0)
            ref.setConstant(True)
        for s in sorted(x.name for x in f.rate.free_symbols):
            if s in species and s != f.source:
                rx.createModifier().setSpecies(s)
        law = rx.createKineticLaw()
        _ok(law.setMath(to_ast(f.rate, lambda n: n)), f"set the rate of flow {k}")
    for p in params:
        par = model.createParameter()
        _ok(par.setId(p.sid), f"create parameter {p.sid!r}")
        par.setConstant(p.constant and p.rule is None and p.rate is None)
        if p.value is not None:
            par.setValue(float(p.value))
        if p.rule is not None:
            rule = model.createAssignmentRule()
            rule.setVariable(p.sid)
            _ok(rule.setMath(to_ast(p.rule, lambda n: n)), f"set the rule of {p.sid!r}")
        if p.rate is not None:
            rule = model.createRateRule()
            rule.setVariable(p.sid)
            _ok(rule.setMath(to_ast(p.rate, lambda n: n)), f"set the rate of {p.sid!r}")
    for sid, expr in (initial or {}).items():  # A_0(n): amounts at time 0 (initial assignments)
        ia = model.createInitialAssignment()
        _ok(ia.setSymbol(sid), f"set the initial amount of {sid!r}")
        _ok(ia.setMath(to_ast(expr, lambda n: n)), f"set the initial amount of {sid!r}")
    _ok(model.setNotes(xhtml_notes(notes)), "set notes")
    return checked_sbml(doc, "the control stream")
