"""Write the flat model as SBML Level 3 Version 2 with libsbml.

Every PharmML symbol is an SBML parameter: population values and covariates are constants with
values, random effects are constants at 0, individual parameters and variables are assignment
rules, derivative variables (and PK-macro amounts) are parameters with rate rules and initial
values or initial assignments. Amounts as rate-rule parameters keep the dose arithmetic plain (a
bolus adds an amount; no compartment-volume scaling of species concentrations).
"""

from __future__ import annotations

import libsbml

from interop.errors import ModelError
from registry.formats.pharmml.flatmodel import Parameter
from registry.formats.pharmml.maths import to_ast
from registry.formats.written import checked_sbml, xhtml_notes

__all__ = ["write_sbml"]


def _ok(code: int, what: str) -> None:
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ModelError(f"libsbml could not {what}: {libsbml.OperationReturnValue_toString(code)}")


def write_sbml(model_id: str, name: str, params: list[Parameter], notes: str) -> str:
    """SBML text for ``params``; raises ModelError if libsbml finds the result inconsistent."""
    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    _ok(model.setId(model_id), f"set model id {model_id!r}")
    model.setName(name)
    for p in params:
        par = model.createParameter()
        _ok(par.setId(p.id), f"create parameter {p.id!r}")
        dynamic = p.rule is not None or p.rate is not None
        par.setConstant(not dynamic)
        if p.rule is None and p.value is not None:
            par.setValue(float(p.value))
        if p.rule is not None:
            rule = model.createAssignmentRule()
            rule.setVariable(p.id)
            _ok(rule.setMath(to_ast(p.rule)), f"set the rule of {p.id!r}")
        if p.rate is not None:
            rule = model.createRateRule()
            rule.setVariable(p.id)
            _ok(rule.setMath(to_ast(p.rate)), f"set the rate of {p.id!r}")
            if p.initial is not None:
                init = model.createInitialAssignment()
                init.setSymbol(p.id)
                _ok(init.setMath(to_ast(p.initial)), f"set the initial value of {p.id!r}")
    _ok(model.setNotes(xhtml_notes(notes)), "set notes")
    return checked_sbml(doc, "PharmML")
