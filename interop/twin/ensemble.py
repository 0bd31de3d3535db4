"""Many subjects of one model in one roadrunner run: the model copied N times into one SBML.

A roadrunner run pays a CVODE restart at every dose and a Python call per segment, and per
subject that is most of the cost of simulating a regimen (the integration itself is short).
Here N copies of the prepared model (every compartment, species, parameter, reaction and rule
renamed ``<id>__<k>``) are compiled once per (model, N) and integrated together, so a block of
subjects pays those costs once. Each copy gets its own parameters, ETAs, covariates, doses,
occasions and resets (the same plan as :func:`interop.twin.simulate.run_segments`), and the
segments are cut at the union of every copy's breakpoints.

Accuracy: CVODE's error test is a weighted RMS over all states, so one copy's local error may
exceed the tolerance by up to sqrt(N); at the model's tolerances (1e-10 relative) that stays far
below any output's needs (``tests/twin/test_ensemble.py`` compares every copy with the per-subject
path). The batch integrates with Adams' method (no Jacobian: a dense Newton solve over N copies
costs O(N^3)); should that fail on a stiff model, the block is run again with BDF.

Why by hand: libRoadRunner has no ensemble integration of one model with different
parameters (its ``ensemble`` helpers loop over instances), and libsbml's comp flattening needs a
comp model per copy for the same renaming.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import libsbml
import numpy as np
import roadrunner

from interop.errors import TwinError, roadrunner_errors
from interop.twin.binding import Twin
from interop.twin.model import ATOL, RTOL, CompiledModel, observable_parameter, outputs
from interop.twin.simulate import (
    Action,
    Prediction,
    as_prediction,
    initial_parameters,
    integrate_segments,
    twin_actions,
)

__all__ = ["simulate_ensemble"]

# Subjects per run. Measured on mapbayr 001 (14 doses, 169 outputs): 1500/s at 8, 1900 at 16,
# 2200 at 32, 2600 at 64 subjects/s; compiling a batch takes ~20 ms per copy, once per size.
BLOCK = 32


class _Unsupported(TwinError):
    """The model cannot be copied (events, local parameters shadowing global ids, ...)."""


def _suffix(sid: str, k: int) -> str:
    return f"{sid}__{k}"


def _renamed_copy(prepared: str, k: int) -> libsbml.SBMLDocument:
    doc = libsbml.readSBMLFromString(prepared)
    m: libsbml.Model = doc.getModel()
    if m.getNumEvents() or m.getNumConstraints():
        raise _Unsupported("a model with events or constraints is simulated subject by subject")
    ids = [
        x.getId()
        for group in (
            m.getListOfCompartments(),
            m.getListOfSpecies(),
            m.getListOfParameters(),
            m.getListOfReactions(),
        )
        for x in group
    ]
    idset = set(ids)
    maths = [x.getMath() for x in m.getListOfRules()] + [x.getMath() for x in m.getListOfInitialAssignments()]
    for rxn in m.getListOfReactions():
        law = rxn.getKineticLaw()
        if law is not None:
            local = {p.getId() for p in law.getListOfLocalParameters()} | {
                p.getId() for p in law.getListOfParameters()
            }
            if local & idset:
                raise _Unsupported(f"reaction {rxn.getId()} has a local parameter shadowing a global id")
            maths.append(law.getMath())
        for ref in [*rxn.getListOfReactants(), *rxn.getListOfProducts(), *rxn.getListOfModifiers()]:
            if ref.isSetId():
                raise _Unsupported("species references with ids (variable stoichiometry)")
            ref.setSpecies(_suffix(ref.getSpecies(), k))
        if rxn.isSetCompartment():
            rxn.setCompartment(_suffix(rxn.getCompartment(), k))
    for math in maths:
        if math is not None:
            for sid in ids:
                math.renameSIdRefs(sid, _suffix(sid, k))
    for rule in m.getListOfRules():
        if rule.getVariable() in idset:
            rule.setVariable(_suffix(rule.getVariable(), k))
    for ia in m.getListOfInitialAssignments():
        if ia.getSymbol() in idset:
            ia.setSymbol(_suffix(ia.getSymbol(), k))
    for s in m.getListOfSpecies():
        s.setCompartment(_suffix(s.getCompartment(), k))
    for sid in ids:
        m.getElementBySId(sid).setId(_suffix(sid, k))
    return doc


def replicate_sbml(prepared: str, n: int) -> str:
    """The prepared SBML with its ids copied ``n`` times (``<id>__0`` ... ``<id>__<n-1>``)."""
    doc = _renamed_copy(prepared, 0)
    out = doc.getModel()
    for k in range(1, n):
        m = _renamed_copy(prepared, k).getModel()
        for group, add in (
            (m.getListOfCompartments(), out.addCompartment),
            (m.getListOfSpecies(), out.addSpecies),
            (m.getListOfParameters(), out.addParameter),
            (m.getListOfInitialAssignments(), out.addInitialAssignment),
            (m.getListOfRules(), out.addRule),
            (m.getListOfReactions(), out.addReaction),
        ):
            for x in group:
                if add(x) != libsbml.LIBSBML_OPERATION_SUCCESS:
                    raise _Unsupported(f"could not copy {x.getId() or x.getElementName()} into the batch")
    return str(libsbml.writeSBMLToString(doc))


@dataclass
class _Batch:
    runner: Any
    size: int
    stiff: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


def _batch(model: CompiledModel, n: int) -> _Batch:
    """The compiled batch of ``n`` copies, kept on the model (freed with it)."""
    with model.lock:
        hit = model.ensembles.get(n)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    with roadrunner_errors(source=f"model {model.card.id}@{model.card.version} (batch of {n})"):
        runner = roadrunner.RoadRunner(replicate_sbml(model.prepared_sbml, n))
        integrator = runner.getIntegrator()
        integrator.setValue("relative_tolerance", RTOL)
        integrator.setValue("absolute_tolerance", ATOL)
        integrator.setValue("stiff", False)
    batch = _Batch(runner, n)
    with model.lock:
        return model.ensembles.setdefault(n, batch)  # type: ignore[no-any-return]


def simulate_ensemble(
    twins: Sequence[Twin],
    times_h: Sequence[float] | np.ndarray,
    etas: Sequence[Mapping[str, float] | None] | None = None,
    *,
    block: int = BLOCK,
) -> list[Prediction]:
    """:func:`interop.twin.simulate` on roadrunner for many twins of one model, ``block`` per run.

    Same results as one run per twin (to the solver's tolerance), at a fraction of the cost for
    cohorts and regimen studies on ODE models. The last block is padded with repeats of its
    last twin, so every run uses the same compiled batch.
    """
    if not twins:
        return []
    model = twins[0].model
    if any(t.model is not model for t in twins):
        raise ValueError("simulate_ensemble needs twins of one compiled model")
    if etas is not None and len(etas) != len(twins):
        raise ValueError("etas needs one entry (or None) per twin")
    times = np.asarray(times_h, dtype=float)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError("times_h must be a 1-D array of finite numbers")
    n = 1
    while n < min(block, len(twins)):  # sizes in powers of two: few distinct batches to compile
        n *= 2
    n = min(n, max(1, block))
    batch = _batch(model, n)
    order = np.argsort(times, kind="stable")
    out: list[Prediction] = []
    for lo in range(0, len(twins), n):
        chunk = list(twins[lo : lo + n])
        chunk_etas = list(etas[lo : lo + n]) if etas is not None else [None] * len(chunk)
        chunk += [chunk[-1]] * (n - len(chunk))
        chunk_etas += [chunk_etas[-1]] * (n - len(chunk_etas))
        values = _run_block(model, batch, chunk, chunk_etas, times[order].tolist())
        for k in range(len(twins[lo : lo + n])):
            v = np.full((len(outputs(model.card)), len(times)), np.nan)
            v[:, order] = values[:, k, :]
            if not np.all(np.isfinite(v)):
                raise TwinError("simulation produced non-finite predictions", source=chunk[k].patient_id)
            out.append(as_prediction(model.card, times, v))
    return out


def _copy_value(m: Any, k: int, sid: str) -> float:
    return float(m.getValue(_suffix(sid, k)))


def _run_block(
    model: CompiledModel,
    batch: _Batch,
    twins: list[Twin],
    etas: list[Mapping[str, float] | None],
    ts: list[float],
) -> np.ndarray:
    """(observables x copies x sorted times) for one block."""
    base = model.runner
    states = [*base.model.getFloatingSpeciesIds(), *base.getRateRuleIds()]
    selections = [
        _suffix(observable_parameter(oid), k) for oid, _ in outputs(model.card) for k in range(batch.size)
    ]
    with batch.lock, roadrunner_errors(source=f"batch of {batch.size} twins of model {model.card.id}"):
        r = batch.runner
        m = r.model
        for attempt in range(2):
            r.reset()
            plans = []
            for k, (twin, e) in enumerate(zip(twins, etas, strict=True)):
                initial, switch = initial_parameters(twin, dict(e or {}))
                for pid, value in model.defaults.items():
                    m.setValue(_suffix(pid, k), initial.get(pid, value))
                for pid, value in initial.items():
                    if pid not in model.defaults:
                        m.setValue(_suffix(pid, k), value)
                plans.append(switch)
            r.reset()  # initial values that depend on parameters follow them
            actions: dict[float, list[Action]] = defaultdict(list)
            for k, (twin, switch) in enumerate(zip(twins, plans, strict=True)):
                own = twin_actions(twin, functools.partial(_copy_value, m, k), states, switch)
                for t, acts in own.items():
                    actions[t] += [(kind, _suffix(target, k), v) for kind, target, v in acts]
            try:
                res = integrate_segments(r, ts, actions, selections)
                break
            except RuntimeError:
                if attempt or batch.stiff:  # BDF failed too: the caller sees roadrunner's error
                    raise
                batch.stiff = True  # a stiff model: Adams' method gave up; BDF from now on
                r.getIntegrator().setValue("stiff", True)
    n_obs = len(outputs(model.card))
    return res.T.reshape(n_obs, batch.size, len(ts))
