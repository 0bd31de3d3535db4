"""TrialDesign and ModellingSteps: parameter values, administrations, dataset column mappings.

PharmML keeps the numbers of a model (typical values, variances, residual error sizes) in the
modelling steps: ``InitialEstimate`` of an ``EstimationStep`` or ``VariableAssignment`` of a
``SimulationStep``. Doses are ``Bolus`` / ``Infusion`` administrations (amount, dosing times,
duration or rate) or, for a model fitted to an external dataset, the ``ColumnMapping`` that sends
the dose column (``AMT``) or the administration column (``ADM``) to a model variable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lxml import etree

from registry.formats.pharmml.document import Document, Problems, child, children, local, xml_path
from registry.formats.pharmml.maths import Num, Unsupported, evaluate
from registry.formats.pharmml.symbols import SymbolTable, first_expression

__all__ = ["ColumnMapping", "TrialDose", "read_column_mappings", "read_trial_doses", "read_values"]


@dataclass(frozen=True)
class TrialDose:
    """One administration of the TrialDesign: into ``target`` (an SBML id) or macro ``adm``."""

    amount: float | None  # None: not a reference dose (computed amount, steady state)
    times_h: tuple[float, ...]
    target: str | None = None
    adm: int | None = None
    duration_h: float | None = None
    path: str = ""
    time_symbol: str | None = None  # the model variable DosingTimes names (a dose-time variable)


_DOSE_COLUMNS = {"AMT", "DOSE"}
_DOSE_TIME_COLUMNS = {"TDOSE", "DOSETIME", "TD", "DT", "TDOS"}


@dataclass
class ColumnMapping:
    column: str
    column_type: str | None
    symbols: list[str] = field(default_factory=list)  # SBML ids the column maps to
    adms: list[int] = field(default_factory=list)  # PK-macro administration numbers
    levels: list[tuple[str, str]] = field(default_factory=list)  # (block, level) the ID/OCC columns name
    # symbol -> the administration id (the CMT/ADM column's value) that selects it as a dose target
    symbol_adms: dict[str, int] = field(default_factory=dict)
    # the dataset's CMT/ADM value -> the PK-macro administration it doses (TargetMapping)
    data_adms: dict[int, int] = field(default_factory=dict)

    @property
    def carries_doses(self) -> bool:
        """The dose column: typed ``dose``, or named AMT/DOSE whatever its type (NONMEM datasets
        often type the dose a regressor)."""
        return self.column_type == "dose" or self.column.upper() in _DOSE_COLUMNS

    @property
    def carries_dose_times(self) -> bool:
        """A column of the time of the last dose (TDOSE, DOSETIME, TD, DT): not a regressor."""
        return self.column.upper() in _DOSE_TIME_COLUMNS


def _number(element: etree._Element, table: SymbolTable) -> float:
    inner = element if local(element) in ("Int", "Real") else first_expression(element)
    if inner is None:
        raise Unsupported(element, "expected a number")
    expr = table.scope(None).parse(inner)
    if not isinstance(expr, Num):
        try:
            return evaluate(expr, {})
        except (KeyError, ValueError):
            raise Unsupported(element, "expected a constant number") from None
    return expr.value


def read_values(doc: Document, table: SymbolTable, problems: Problems) -> dict[str, float]:
    """SBML id -> value from the modelling steps (initial estimates, simulation assignments); a
    ``Vector`` value gives the cells of a vector-valued parameter (``THETA_1``, ...)."""
    values: dict[str, float] = {}
    steps = child(doc.root, "ModellingSteps")
    if steps is None:
        return values
    for est in steps.iter("{*}ParameterEstimation", "{*}VariableAssignment"):
        ref = child(est, "SymbRef")
        holder = (
            child(est, "InitialEstimate") if local(est) == "ParameterEstimation" else child(est, "Assign")
        )
        if ref is None or holder is None:
            continue
        inner = first_expression(holder)
        if inner is not None and local(inner) == "Matrix":
            continue  # a covariance parameter's matrix: read where its distribution uses it
        try:
            decl = table.lookup(ref, None)
            vector = next(holder.iter("{*}Vector"), None)
            if vector is None:
                values.setdefault(decl.sbml, _number(holder, table))
                continue
            elements = child(vector, "VectorElements")  # a vector-valued parameter, by cell
            for k, cell in enumerate(children(elements) if elements is not None else [], start=1):
                values.setdefault(f"{decl.sbml}_{k}", _number(cell, table))
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    return values


def _assign(element: etree._Element) -> etree._Element:
    """The ``ct:Assign`` inside ``element``, or ``element`` itself (lxml elements are falsy
    when they have no children, so never ``child(...) or element``)."""
    found = child(element, "Assign")
    return found if found is not None else element


def _times(element: etree._Element, table: SymbolTable) -> tuple[float, ...]:
    holder = _assign(element)
    sequence = next((v for v in holder.iter("{*}Sequence")), None)
    if sequence is not None:  # Begin, StepSize and End (or Repetitions)
        parts = {local(c): c for c in children(sequence)}
        if not {"Begin", "StepSize"} <= parts.keys() or not ({"End", "Repetitions"} & parts.keys()):
            raise Unsupported(sequence, "a Sequence needs Begin, StepSize and End or Repetitions")
        begin, step = _number(parts["Begin"], table), _number(parts["StepSize"], table)
        if step <= 0:
            raise Unsupported(sequence, "a Sequence needs a positive StepSize")
        if "Repetitions" in parts:
            count = int(_number(parts["Repetitions"], table))
        else:
            count = int(math.floor((_number(parts["End"], table) - begin) / step + 1e-9)) + 1
        return tuple(begin + i * step for i in range(max(count, 0)))
    vector = next((v for v in holder.iter("{*}Vector")), None)
    if vector is None:
        return (_number(holder, table),)
    elements = child(vector, "VectorElements")
    items = children(elements) if elements is not None else children(vector)
    return tuple(_number(i, table) for i in items)


def _dose_target(amount: etree._Element, table: SymbolTable) -> tuple[str | None, int | None]:
    ref = child(amount, "SymbRef")
    if ref is not None:
        return table.lookup(ref, None).sbml, None
    mapping = child(amount, "TargetMapping")
    if mapping is not None:
        maps = children(mapping, "Map")
        if len(maps) != 1:
            raise Unsupported(mapping, "a dose TargetMapping must hold one Map")
        m = maps[0]
        if m.get("admNumber"):
            return None, int(m.get("admNumber", "0"))
        name = m.get("modelSymbol")
        if name:
            block = mapping.get("blkIdRef")
            decl = table.declarations.get((block or "", name)) if block else None
            if decl is None:
                found = [d for (b, n), d in table.declarations.items() if n == name]
                if len(found) != 1:
                    raise Unsupported(m, f"dangling reference: no model symbol {name!r}")
                decl = found[0]
            return decl.sbml, None
    raise Unsupported(amount, "a DoseAmount must name its target")


def read_trial_doses(
    doc: Document, table: SymbolTable, problems: Problems, warnings: list[str] | None = None
) -> list[TrialDose]:
    """The bolus and infusion administrations of the TrialDesign.

    The twin's doses come from the patient's dosing history; the TrialDesign's give the dose
    targets and the card's reference doses. An administration whose amount is computed (from
    covariates, mg/kg) or that is at steady state still names its target, and is left out of the
    reference doses with a warning (``warnings``; refused without it).
    """
    design = child(doc.root, "TrialDesign")
    if design is None:
        return []
    out = []
    for admin in design.iter("{*}Bolus", "{*}Infusion"):
        try:
            out += _trial_dose(admin, table, warnings)
        except Unsupported as exc:
            problems.add(exc.element, exc.message)
    return out


def _trial_dose(admin: etree._Element, table: SymbolTable, warnings: list[str] | None) -> list[TrialDose]:
    reference_only: list[str] = []
    for part in children(admin):
        if local(part) == "SteadyState":
            reference_only.append("at steady state")
        elif local(part) not in ("DoseAmount", "DosingTimes", "Duration", "Rate"):
            raise Unsupported(part, f"<{local(part)}> in a dose is not supported")
    amount_el = child(admin, "DoseAmount")
    if amount_el is None:
        raise Unsupported(admin, "administration without DoseAmount")
    target, adm = _dose_target(amount_el, table)
    try:
        amount = _number(_assign(amount_el), table)
    except Unsupported:
        amount = 1.0
        reference_only.append("computed from covariates")
    if reference_only:
        if warnings is None:
            raise Unsupported(admin, f"a dose {' and '.join(reference_only)} is not supported")
        warnings.append(
            f"{xml_path(admin)}: a dose {' and '.join(reference_only)} is not a reference dose "
            "(its target is a dosing input; the twin takes doses from the dosing history)"
        )
        return [TrialDose(None, (), target, adm, None, xml_path(admin))]
    times_el = child(admin, "DosingTimes")
    times = _times(times_el, table) if times_el is not None else (0.0,)
    duration = None
    if local(admin) == "Infusion":
        dur, rate = child(admin, "Duration"), child(admin, "Rate")
        if dur is not None:
            duration = _number(_assign(dur), table)
        elif rate is not None:
            duration = amount / _number(_assign(rate), table)
        else:
            raise Unsupported(admin, "an infusion needs Duration or Rate")
    if amount < 0 or any(t < 0 for t in times):
        raise Unsupported(admin, "dose amounts must not be negative, nor dose times")
    if amount == 0:  # a placebo (control) arm: its target is a dosing input, it gives no dose
        if warnings is not None:
            warnings.append(f"{xml_path(admin)}: a dose of 0 (a control arm) is not a reference dose")
        return [TrialDose(None, (), target, adm, None, xml_path(admin))]
    time_ref = child(times_el, "SymbRef") if times_el is not None else None
    time_symbol = table.lookup(time_ref, None).sbml if time_ref is not None else None
    return [TrialDose(amount, times, target, adm, duration, xml_path(admin), time_symbol)]


def read_column_mappings(doc: Document, table: SymbolTable, problems: Problems) -> list[ColumnMapping]:
    """Column -> model symbols (or administrations) of every external dataset."""
    design = child(doc.root, "TrialDesign")
    steps = child(doc.root, "ModellingSteps")  # PharmML 0.6 kept the dataset here
    holders = [h for h in (design, steps) if h is not None]
    out: list[ColumnMapping] = []
    for holder in holders:
        for ds in holder.iter("{*}ExternalDataSet"):
            types = {
                c.get("columnId", ""): c.get("columnType") for c in ds.iter("{*}Column") if c.get("columnId")
            }
            for cm in children(ds, "ColumnMapping") + children(ds, "MultipleDVMapping"):
                col = child(cm, "ColumnRef")
                if col is None:
                    continue
                name = col.get("columnIdRef", "")
                mapping = ColumnMapping(name, types.get(name))
                try:
                    _fill_mapping(cm, mapping, table, types)
                except Unsupported as exc:
                    problems.add(exc.element, exc.message)
                out.append(mapping)
    return out


_ADM_COLUMNS = {"cmt", "adm"}


def _selecting_adm(condition: etree._Element | None, types: dict[str, str | None]) -> int | None:
    """The integer a CMT/ADM column must equal for ``condition`` to hold (``CMT == 2 and AMT > 0``)."""
    if condition is None:
        return None
    for op in condition.iter("{*}LogicBinop"):
        if op.get("op") != "eq":
            continue
        parts = children(op)
        cols = [p for p in parts if local(p) == "ColumnRef"]
        ints = [p for p in parts if local(p) == "Int"]
        if len(cols) == 1 and len(ints) == 1 and types.get(cols[0].get("columnIdRef", "")) in _ADM_COLUMNS:
            text = (ints[0].text or "").strip()
            if text.lstrip("-").isdigit():
                return int(text)
    return None


def _fill_mapping(
    cm: etree._Element, mapping: ColumnMapping, table: SymbolTable, types: dict[str, str | None]
) -> None:
    for part in children(cm):
        name = local(part)
        if name == "SymbRef":
            if part.get("symbIdRef") == table.time_symbol and part.get("blkIdRef") is None:
                continue
            decl = table.lookup(part, None)
            if decl.kind == "level":  # the ID/occasion columns name variability levels
                mapping.levels.append((decl.block, decl.name))
            else:
                mapping.symbols.append(decl.sbml)
        elif name == "Piecewise":
            for piece in children(part, "Piece"):
                value = children(piece)[0] if children(piece) else None
                if value is not None and local(value) == "SymbRef":
                    sbml = table.lookup(value, None).sbml
                    mapping.symbols.append(sbml)
                    adm = _selecting_adm(child(piece, "Condition"), types)
                    if adm is not None:
                        mapping.symbol_adms.setdefault(sbml, adm)
        elif name == "TargetMapping":
            for m in children(part, "Map"):
                if m.get("admNumber"):
                    mapping.adms.append(int(m.get("admNumber", "0")))
                    if (m.get("dataSymbol") or "").strip().isdigit():
                        mapping.data_adms[int(m.get("dataSymbol", "0"))] = int(m.get("admNumber", "0"))
                elif m.get("modelSymbol"):
                    found = [d for (b, n), d in table.declarations.items() if n == m.get("modelSymbol")]
                    if len(found) != 1:
                        raise Unsupported(m, f"dangling reference: no model symbol {m.get('modelSymbol')!r}")
                    mapping.symbols.append(found[0].sbml)
                    if (m.get("dataSymbol") or "").strip().isdigit():
                        mapping.symbol_adms.setdefault(found[0].sbml, int(m.get("dataSymbol", "0")))
