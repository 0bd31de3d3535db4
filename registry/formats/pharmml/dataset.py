"""What a PharmML model leaves to the dataset, made model quantities: dose-amount and dose-time
variables, regressors (time-varying covariates) and the occasions of inter-occasion random effects
(issue 14)."""

from __future__ import annotations

import re

from registry.formats.pharmml.design import ColumnMapping, TrialDose
from registry.formats.pharmml.document import Document
from registry.formats.pharmml.flatmodel import Covariate, Eta, Parameter, ReadModel
from registry.formats.pharmml.maths import Expr, Num, Op, Sym, Time, symbols

__all__ = ["DEFAULT_OCCASIONS", "dataset_variables", "dose_variable_route", "occasion_effects"]

DEFAULT_OCCASIONS = 4
# column types that are never model inputs (identifiers, observations, dosing bookkeeping)
_NOT_REGRESSORS = {"id", "dv", "dvid", "mdv", "evid", "cmt", "adm", "rate", "ss", "ii", "addl", "occasion",
                   "censoring", "limit", "dose", "idv"}  # fmt: skip


def _occasion_count(doc: Document) -> int | None:
    """Distinct values of the occasion column in an inline dataset (None without one)."""
    for ds in doc.root.iter("{*}DataSet"):
        nums = [c.get("columnNum") for c in ds.iter("{*}Column") if c.get("columnType") == "occasion"]
        if not nums or not (nums[0] or "").isdigit():
            continue
        k = int(nums[0] or 0) - 1
        values = set()
        for row in ds.iter("{*}Row"):
            cells = [c for c in row if isinstance(c.tag, str)]
            if 0 <= k < len(cells):
                values.add((cells[k].text or "").strip())
        if values:
            return len(values)
    return None


def occasion_effects(
    doc: Document, model: ReadModel, mappings: list[ColumnMapping], warnings: list[str]
) -> tuple[list[tuple[Eta, tuple[str, ...]]], str | None]:
    """Each inter-occasion random effect with one SBML parameter (at 0) per occasion, and the card
    covariate that says which occasion holds (None: occasions follow the doses).

    When the dataset maps a column to the occasion level (or has a column of type ``occasion``),
    that column switches the occasions, as NONMEM's OCC does: it becomes a card covariate (the
    card's ``occasion_covariate``; 1, the first occasion, in the SBML). Without one, the card's
    default holds: occasion k from the k-th dose, warned. There are as many occasions as the
    inline dataset has (else ``DEFAULT_OCCASIONS``; later occasions take the prior mean, 0).
    """
    if not model.occasion_etas:
        return [], None
    n = _occasion_count(doc)
    if n is None:
        n = DEFAULT_OCCASIONS
        warnings.append(f"the dataset's occasions are not in the file: the card defines {n} occasions")
    found = _occasion_column(model, mappings)
    covariate = None
    if found is None:
        warnings.append("inter-occasion effects switch at each dose time (the card's convention): the "
                        "dataset maps no column to the occasion level")  # fmt: skip
    else:
        column, covariate = found
        element = model.occasion_etas[0].element
        model.add(Parameter(covariate, "covariate", element, value=1.0))
        model.covariates.append(Covariate(covariate, column, element))
        warnings.append(f"the dataset's column {column} (the occasion, 1, 2, ...) switches the "
                        f"inter-occasion effects: covariate {covariate}")  # fmt: skip
    out = []
    for eta in model.occasion_etas:
        ids = tuple(f"{eta.id}_occ{k}" for k in range(1, n + 1))
        for pid in ids:
            model.add(Parameter(pid, "eta", eta.element, value=0.0))
        out.append((eta, ids))
    return out, covariate


def _occasion_column(model: ReadModel, mappings: list[ColumnMapping]) -> tuple[str, str] | None:
    """(column, SBML id for it) of the dataset column mapped to an occasion level (the level's id:
    a level is no SBML quantity), else of the column of type ``occasion``."""
    for m in mappings:
        for block, name in m.levels:
            if model.levels.get((block, name)) == "occasion":
                return m.column, model.table.declarations[(block, name)].sbml
    column = next((m.column for m in mappings if m.column_type == "occasion"), None)
    return (column, model.table.fresh(column)) if column is not None else None


_KA_NAME = re.compile(r"^(pop_?)?k_?a(_pop)?$", re.I)


def dataset_variables(
    model: ReadModel, mappings: list[ColumnMapping], trial: list[TrialDose], warnings: list[str]
) -> dict[str, str]:
    """Variables without a definition that the dataset supplies, made model quantities; returns
    the dose targets redirected (dose variable -> the state it initialises).

    A dose-amount variable (the dose column, or a TrialDesign dose, names it) that only gives a
    derivative variable its initial condition (``init = D``) hands its doses to that state, which
    starts at 0: exact for any doses. Used in equations (``D`` in a closed-form model) it becomes an
    amount that receives the twin's doses and never changes otherwise. A dose-time variable (the
    time column maps to it on dose records, ``DT``/``tD``) is 0, the time of the twin's first dose.
    Both are exact for one dose at time 0 (the closed forms that use them are single-dose formulas)
    and warned. A variable another column maps to (a regressor) is a time-varying covariate.
    """
    dose_vars = {d.target for d in trial if d.target is not None}
    time_vars = {d.time_symbol for d in trial if d.time_symbol is not None}
    regressors: set[str] = set()
    for m in mappings:
        if m.carries_doses:
            dose_vars.update(m.symbols)
        elif m.column_type == "idv" or m.column.upper() == "TIME" or m.carries_dose_times:
            time_vars.update(m.symbols)
        elif m.column_type not in _NOT_REGRESSORS:
            regressors.update(m.symbols)
    if dose_vars:  # a variable the model only subtracts from time (t - tD) is the dose time
        mapped = {s for m in mappings for s in m.symbols}
        time_vars |= {p.id for p in model.params.values() if p.id not in mapped and _time_offset(model, p)}
    for pid in sorted(regressors - dose_vars - time_vars):
        p = model.params.get(pid)
        if p is None or p.kind != "variable" or p.rule is not None:
            continue
        decl = next(d for d in model.table.declarations.values() if d.sbml == pid)
        p.kind, p.value = "covariate", 0.0
        model.covariates.append(Covariate(pid, decl.name, p.element))
        warnings.append(f"{pid} (a dataset column, a regressor) is a time-varying covariate of the card")
    redirect = _initialised_states(model, dose_vars, warnings)
    for pid in sorted(dose_vars - set(redirect)):
        p = model.params.get(pid)
        if p is None or p.kind != "variable" or p.rule is not None:
            continue
        p.kind, p.rate, p.initial, p.value = "state", Num(0.0), None, 0.0
        warnings.append(
            f"{pid} (the dataset's dose amount) holds the sum of the doses given: the model's use of it "
            "is exact for one dose"
        )
    for pid in sorted(time_vars):
        p = model.params.get(pid)
        if p is None or p.kind != "variable" or p.rule is not None:
            continue
        p.rule = Num(0.0)
        warnings.append(f"{pid} (the dataset's dose time) is 0, the first dose's time: exact for one dose")
    return redirect


def _initialised_states(model: ReadModel, dose_vars: set[str], warnings: list[str]) -> dict[str, str]:
    """Dose variables used only as one state's initial condition (``init = D``) -> that state."""
    out: dict[str, str] = {}
    for pid in sorted(dose_vars):
        p = model.params.get(pid)
        if p is None or p.kind != "variable" or p.rule is not None:
            continue
        users = [q for q in model.params.values() if q.id != pid and pid in _used_by(q)]
        states = [q for q in users if q.kind == "state" and q.initial == Sym(pid)]
        if len(states) != 1 or len(users) != 1 or any(pid in symbols(o.output) for o in model.observations):
            continue
        state = states[0]
        state.initial, state.value = None, 0.0
        p.rule = Num(0.0)
        out[pid] = state.id
        warnings.append(f"{state.id} = {pid} at the start: {pid}'s doses go into {state.id}")
    return out


def _time_offset(model: ReadModel, p: Parameter) -> bool:
    """``p`` is a variable without definition used, and only used, as ``time - p``."""
    if p.kind != "variable" or p.rule is not None:
        return False
    uses: list[bool] = []

    def walk(e: Expr) -> None:
        if isinstance(e, Op):
            if (
                e.op == "minus"
                and len(e.args) == 2
                and isinstance(e.args[0], Time)
                and e.args[1] == Sym(p.id)
            ):
                uses.append(True)
                return
            for a in e.args:
                walk(a)
        elif e == Sym(p.id):
            uses.append(False)

    for q in model.params.values():
        for e in (q.rule, q.rate, q.initial):
            if e is not None:
                walk(e)
    for o in model.observations:
        walk(o.output)
    return bool(uses) and all(uses)


def _used_by(p: Parameter) -> set[str]:
    return set().union(*(symbols(e) for e in (p.rule, p.rate, p.initial) if e is not None))


def dose_variable_route(model: ReadModel) -> str:
    """A dose-amount variable's route: oral when the model has an absorption rate (ka), else a bolus."""
    names = {d.name for d in model.table.declarations.values()}
    return "oral" if any(_KA_NAME.match(n) for n in names) else "iv-bolus"
