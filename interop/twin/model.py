"""A model version compiled once for libRoadRunner, with the card's dosing and observables wired in.

The SBML is prepared before compilation, with libsbml:
- for every dosing target, a parameter ``_in_<target>`` (amount per hour) and a reaction
  ``-> target`` at that rate (or a term added to the target's rate rule), so infusions and
  zero-order inputs are plain parameter changes during simulation;
- for every observable, a parameter ``_obs_<id>`` assigned the observable's expression, and for
  every residual error of the sbml form one more output, ``_obs__sd_<observable>``, assigned its
  SD quantity (:func:`outputs`): every prediction path simulates it beside the observables.

Compilation is cached by content hash: every subject and every objective evaluation reuses the
same roadrunner instance, resetting state and setting every global parameter it depends on
(``reset()`` does not restore global parameters).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

import libsbml
import roadrunner

from interop.errors import ModelError, roadrunner_errors
from interop.schema import ModelCard

__all__ = ["CompiledModel", "clear_model_cache", "load_model", "outputs", "parameter_units", "sd_output"]

RTOL = 1e-10
ATOL = 1e-12


def input_parameter(target: str) -> str:
    return f"_in_{target}"


def observable_parameter(observable_id: str) -> str:
    return f"_obs_{observable_id}"


def sd_output(observable_id: str) -> str:
    """The output id under which the twin simulates the SD quantity of an sbml-form error."""
    return f"_sd_{observable_id}"


def outputs(card: ModelCard) -> tuple[tuple[str, str], ...]:
    """What the twin simulates, in order: (id, SBML expression) of every observable, then the SD
    quantity of every residual error of the sbml form (id :func:`sd_output`)."""
    obs = tuple((o.id, o.sbml) for o in card.observables)
    sds = tuple((sd_output(r.observable), r.sd_parameter) for r in card.residual_error if r.sd_parameter)
    return obs + sds


def _check(code: int, what: str) -> None:
    if code != libsbml.LIBSBML_OPERATION_SUCCESS:
        raise ModelError(f"libsbml could not {what}: {libsbml.OperationReturnValue_toString(code)}")


def _add_parameter(model: libsbml.Model, pid: str, value: float, constant: bool) -> None:
    p = model.createParameter()
    _check(p.setId(pid), f"create parameter {pid}")
    p.setValue(value)
    p.setConstant(constant)


def prepare_sbml(sbml: str, card: ModelCard) -> str:
    """SBML text with the card's input parameters and observable rules added."""
    doc = libsbml.readSBMLFromString(sbml)
    if doc.getModel() is None:
        errors = doc.getErrorLog().toString().strip()
        raise ModelError(f"not a readable SBML model: {errors or 'no <model> element'}")
    model: libsbml.Model = doc.getModel()
    if doc.getLevel() < 3:
        # L2 models: convert so that reactions without compartments and rate rules behave alike.
        props = libsbml.ConversionProperties()
        props.addOption("setLevelAndVersion", True)
        props.addOption("strict", False)
        props.setTargetNamespaces(libsbml.SBMLNamespaces(3, 2))
        if doc.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            raise ModelError("could not convert the SBML to Level 3")
        model = doc.getModel()

    for target in sorted({d.target for d in card.dosing}):
        pid = input_parameter(target)
        _add_parameter(model, pid, 0.0, constant=False)
        species = model.getSpecies(target)
        rule = model.getRateRule(target)
        if rule is not None:
            term = pid
            if species is not None and not species.getHasOnlySubstanceUnits():
                term = f"{pid} / {species.getCompartment()}"
            math = libsbml.parseL3Formula(f"({libsbml.formulaToL3String(rule.getMath())}) + {term}")
            _check(rule.setMath(math), f"extend the rate rule of {target}")
        elif species is not None:
            if species.getBoundaryCondition() or species.getConstant():
                raise ModelError(f"dosing target {target!r} is a boundary or constant species")
            rxn = model.createReaction()
            rxn.setId(f"_dose_{target}")
            rxn.setReversible(False)
            ref = rxn.createProduct()
            ref.setSpecies(target)
            ref.setStoichiometry(1.0)
            ref.setConstant(True)
            law = rxn.createKineticLaw()
            _check(law.setMath(libsbml.parseL3Formula(pid)), f"set the input law of {target}")
        else:
            raise ModelError(f"dosing target {target!r} is neither a species nor a variable with a rate rule")

    for oid, expr in outputs(card):
        pid = observable_parameter(oid)
        _add_parameter(model, pid, 0.0, constant=False)
        math = libsbml.parseL3Formula(expr)
        if math is None:
            raise ModelError(f"observable {oid!r}: cannot parse {expr!r}: {libsbml.getLastParseL3Error()}")
        rule = model.createAssignmentRule()
        rule.setVariable(pid)
        _check(rule.setMath(math), f"set observable {oid}")
    return str(libsbml.writeSBMLToString(doc))


@dataclass
class CompiledModel:
    """One compiled roadrunner instance for a (SBML, card) pair. Not thread-safe: use ``lock``."""

    sbml: str
    card: ModelCard
    runner: Any
    sha256: str
    parameter_ids: frozenset[str]
    defaults: dict[str, float]
    prepared_sbml: str = ""
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    linear: Any = field(default=None, repr=False)  # interop.twin.linear.LinearSystem, found on first use
    linear_checked: bool = False
    sensitivity: Any = field(default=None, repr=False)  # interop.twin.sensitivity.SensitivityModel
    sensitivity_checked: bool = False
    ensembles: dict[int, Any] = field(default_factory=dict, repr=False)  # interop.twin.ensemble, by size

    @property
    def observable_selections(self) -> list[str]:
        return [observable_parameter(oid) for oid, _ in outputs(self.card)]

    def reset(self, parameters: dict[str, float]) -> None:
        """Fresh state at t=0 and every global parameter set: defaults overlaid by ``parameters``."""
        r = self.runner
        r.reset()
        set_value = r.model.setValue  # same effect as RoadRunner.setValue here, a third of the cost
        for pid, value in self.defaults.items():
            set_value(pid, parameters.get(pid, value))
        for pid, value in parameters.items():
            if pid not in self.defaults:
                set_value(pid, value)
        # Initial values that depend on parameters (initial assignments) follow them.
        r.reset()


_BASE_UNITS = {
    "litre": "L",
    "second": "s",
    "gram": "g",
    "dimensionless": "1",
    "mole": "mol",
    "kilogram": "kg",
}


def parameter_units(sbml: str, card: ModelCard | None = None) -> dict[str, str]:
    """Units of the model's parameters: the card's parameter table where it states one, else the
    SBML's ``units`` attribute (unit definition name or id, e.g. ``L/h``); others are absent."""
    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    out = {}
    for p in model.getListOfParameters() if model is not None else ():
        uid = p.getUnits()
        if not uid:
            continue
        ud = model.getUnitDefinition(uid)
        out[p.getId()] = (ud.getName() or ud.getId()) if ud is not None else _BASE_UNITS.get(uid, uid)
    if card is not None:
        out.update({row.id: row.unit for row in card.parameters})
    return out


_CACHE: dict[str, CompiledModel] = {}
_CACHE_LOCK = threading.Lock()


def load_model(sbml: str, card: ModelCard) -> CompiledModel:
    """Compile (or fetch from the cache) the model for ``sbml`` bound to ``card``."""
    key = hashlib.sha256(sbml.encode() + b"\0" + card.model_dump_json().encode()).hexdigest()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    prepared = prepare_sbml(sbml, card)
    with roadrunner_errors(source=f"model {card.id}@{card.version}"):
        runner = roadrunner.RoadRunner(prepared)
        integrator = runner.getIntegrator()
        integrator.setValue("relative_tolerance", RTOL)
        integrator.setValue("absolute_tolerance", ATOL)
        runner.timeCourseSelections = ["time", *[observable_parameter(oid) for oid, _ in outputs(card)]]
    missing = sorted(i for i in card.sbml_ids() if not _has_id(runner, i))
    if missing:
        raise ModelError(
            f"the card names ids the SBML lacks: {', '.join(missing)}",
            source=f"model {card.id}@{card.version}",
        )
    rules = set(runner.getAssignmentRuleIds())
    writable = [
        p for p in runner.model.getGlobalParameterIds() if p not in rules and not p.startswith("_obs_")
    ]
    defaults = {p: float(runner.getValue(p)) for p in writable}
    compiled = CompiledModel(
        sbml=sbml,
        card=card,
        runner=runner,
        sha256=hashlib.sha256(sbml.encode()).hexdigest(),
        parameter_ids=frozenset(runner.model.getGlobalParameterIds()),
        defaults=defaults,
        prepared_sbml=prepared,
    )
    with _CACHE_LOCK:
        _CACHE[key] = compiled
    return compiled


def _has_id(runner: Any, sid: str) -> bool:
    m = runner.model
    return sid in set(m.getGlobalParameterIds()) | set(m.getFloatingSpeciesIds()) | set(
        m.getBoundarySpeciesIds()
    ) | set(m.getCompartmentIds())


def clear_model_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
