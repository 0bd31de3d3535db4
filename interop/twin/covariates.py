"""Covariates from the whole patient record: measurements, age and sex, pharmacogene calls,
conditions, co-medication and derived formulas, each with its timing rule and a report.

Timing. A value measured at a time is known from that time on: covariates from FHIR (any
source but a NONMEM event table) carry forward (last observation carried forward; before the
first record its value holds unless the card says ``before_first: missing``). Covariates read
from a NONMEM event table keep NONMEM's convention (a record's value holds back to the previous
record). ``auto`` picks by the records' provenance; a card can name the rule per covariate.
Conditions switch at onset and abatement, co-medication at each dose and when its window ends.
Derived covariates are recomputed at every change of an input.

Nothing silent: every covariate's binding names the records it came from; a value filled with
the card's reference (``missing: reference``) and a value outside the card's validity range are
reported, and the report travels with the twin into every output.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from interop.errors import SchemaError, TwinError
from interop.schema import Coding, Covariate, ModelCard, PatientRecord
from interop.schema.analytes import convert_analyte, same_analyte
from interop.schema.base import ATC, HasProvenance, Provenance
from interop.schema.formulas import derived_expression
from interop.schema.patient import Dose, Genotype
from interop.schema.units import UnitError, convert
from interop.twin.binding import CovariateSeries, Twin
from interop.twin.model import parameter_units

__all__ = [
    "CovariateBinding",
    "CovariateReport",
    "baseline_values",
    "bind_covariates",
    "complete_covariates",
    "definite_call",
    "dependency_order",
    "describe_covariates",
    "read_source",
]

log = logging.getLogger(__name__)
ACTIVE = {"active", "recurrence", "relapse"}
NOT_A_CALL = {"indeterminate", "unknown", "no call", "n/a", "not tested", ""}
Steps = tuple[float, list[tuple[float, float]]]  # initial value, (time, value from just after time)


@dataclass(frozen=True)
class CovariateBinding:
    """How one covariate was bound: values over time, the records, fallbacks and warnings."""

    name: str
    kind: str
    timing: str
    series: CovariateSeries
    unit: str | None
    records: tuple[str, ...] = ()  # item ids in the record
    sources: tuple[str, ...] = ()  # their provenance, short
    fallback: str | None = None  # why the reference value was used (None: it was not)
    notes: tuple[str, ...] = ()
    out_of_range: tuple[str, ...] = ()
    to_model: bool = True
    label: str | None = None  # the category behind the value (a phenotype, present/absent, a sex)

    @property
    def value_at_origin(self) -> float:
        return self.series.at(0.0)

    def changes(self) -> list[tuple[float, float]]:
        return self.series.changes()

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "source": self.kind,
            "timing": self.timing,
            "unit": self.unit,
            "value_at_origin": self.value_at_origin,
            "changes": [{"time_h": t, "value": v} for t, v in self.changes()],
            "records": list(self.records),
            "provenance": list(self.sources),
            "fell_back_to_reference": self.fallback is not None,
            "fallback_reason": self.fallback,
            "notes": list(self.notes),
            "out_of_range": list(self.out_of_range),
            "in_model": self.to_model,
            "label": self.label,
        }


@dataclass(frozen=True)
class CovariateReport:
    """Every covariate binding of one twin, in card order."""

    bindings: tuple[CovariateBinding, ...] = ()
    extra_warnings: tuple[str, ...] = field(default=())

    @property
    def series(self) -> dict[str, CovariateSeries]:
        """The series the model receives (covariates written to the SBML)."""
        return {b.name: b.series for b in self.bindings if b.to_model}

    @property
    def fell_back(self) -> list[str]:
        return [b.name for b in self.bindings if b.fallback is not None]

    @property
    def warnings(self) -> list[str]:
        out = [f"{b.name}: reference value used ({b.fallback})" for b in self.bindings if b.fallback]
        out += [f"{b.name}: {w}" for b in self.bindings for w in b.out_of_range]
        return out + list(self.extra_warnings)

    def to_dict(self) -> dict[str, object]:
        return {
            "covariates": [b.to_dict() for b in self.bindings],
            "fell_back_to_reference": self.fell_back,
            "warnings": self.warnings,
        }


# -- helpers -------------------------------------------------------------------------------------


def _hours(t: dt.datetime, origin: dt.datetime) -> float:
    return (t - origin).total_seconds() / 3600.0


def _describe(p: Provenance, item_id: str) -> str:
    where = " ".join(x for x in (p.resource_type, p.resource_id) if x)
    if p.source_line:
        where += f" line {p.source_line}"
    return f"{item_id}: {p.converter}" + (f" ({where.strip()})" if where.strip() else "")


def _from_steps(name: str, steps: Steps) -> CovariateSeries:
    """A series whose value changes just after each step time (last observation carried forward)."""
    initial, changes = steps
    changes = sorted(changes, key=lambda c: c[0])
    if not changes:
        return CovariateSeries(name, (0.0,), (float(initial),))
    # As a series (values[k] holds on (times[k-1], times[k]]): the initial value up to the first
    # time, each value up to the next time, the last time repeated for the last value.
    times = [float(t) for t, _ in changes]
    return CovariateSeries(name, (*times, times[-1]), (float(initial), *(float(v) for _, v in changes)))


def _constant(name: str, value: float) -> CovariateSeries:
    return CovariateSeries(name, (0.0,), (float(value),))


def _norm_call(text: str) -> str:
    t = " ".join(text.strip().lower().split())
    for suffix in (" metabolizer", " metaboliser", " function", " transporter function"):
        t = t.removesuffix(suffix)
    return t


def _norm_diplotype(text: str) -> str:
    return "/".join(sorted(h.strip() for h in text.split("/")))


def definite_call(g: Genotype, read: str) -> str | float | None:
    """The call's value to read, or None when the call is not definite (uncertain, indeterminate,
    not made, or marked by the caller as anything but a call)."""
    status = getattr(g, "call_status", None) or getattr(g, "status", None)
    if g.uncertain or (status is not None and str(status).lower() not in ("called", "definite", "final")):
        return None
    if read == "activity_score":
        return g.activity_score
    value = g.phenotype if read == "phenotype" else g.diplotype
    if value is None or _norm_call(value) in NOT_A_CALL:
        return None
    return value


def _atc_codes(dose: Dose) -> list[str]:
    return [c.code for c in dose.drug.codes if c.system == ATC]


# -- one source each ------------------------------------------------------------------------------


@dataclass
class _Ctx:
    card: ModelCard | None
    record: PatientRecord
    origin: dt.datetime
    bound: dict[str, CovariateBinding]


Found = tuple[CovariateSeries | None, str, Sequence[HasProvenance], list[str], str | None]
# series (None: missing), timing, items used, notes, reason when missing


def _measurement(cov: Covariate, ctx: _Ctx) -> Found:
    src = cov.source
    assert src.measurement is not None
    code: Coding = src.measurement
    # the same analyte under any of its codes (creatinine 2160-0 and 14682-9), in the card's unit
    rows = sorted((m for m in ctx.record.measurements if same_analyte(m.code, code)), key=lambda m: m.time)
    if not rows:
        return None, cov.timing, [], [], f"no {code.display or code.code} measurement"
    try:
        vals = [convert_analyte(m.value, m.unit, src.unit or m.unit, m.code) for m in rows]
    except UnitError as exc:
        raise TwinError(str(exc), source=rows[0].id, field="unit") from exc
    ts = [_hours(m.time, ctx.origin) for m in rows]
    timing = cov.timing
    if timing == "auto":
        nonmem = all(m.provenance.converter.startswith("converters.nonmem") for m in rows)
        timing = "nonmem" if nonmem else "locf"
    if not cov.time_varying or timing == "baseline":
        return _constant(cov.name, vals[0]), "baseline", rows[:1], [], None
    if timing == "nonmem":
        return CovariateSeries(cov.name, tuple(ts), tuple(vals)), timing, rows, [], None
    notes: list[str] = []
    initial = vals[0]
    if ts[0] > 0 and cov.before_first == "missing":
        if cov.missing != "reference" or cov.reference is None:
            raise TwinError(
                f"patient {ctx.record.patient.id}: covariate {cov.name} has no value before its first "
                f"record at {ts[0]:g} h and the card allows no reference",
                source=ctx.record.patient.id,
                field=cov.name,
            )
        initial = cov.reference
        notes.append(f"reference value {cov.reference:g} before the first record at {ts[0]:g} h")
    elif ts[0] > 0:
        notes.append(f"first value (at {ts[0]:g} h) also used before it")
    changes = [(t, v) for t, v in zip(ts, vals, strict=True)]
    partial = (
        f"before the first record at {ts[0]:g} h" if ts[0] > 0 and cov.before_first == "missing" else None
    )
    if initial == vals[0]:
        changes = changes[1:]
    return _from_steps(cov.name, (initial, changes)), timing, rows, notes, partial


def _patient_field(cov: Covariate, ctx: _Ctx) -> Found:
    patient = ctx.record.patient
    if cov.source.patient_field == "age_years":
        age = patient.age_years
        note = []
        if age is None and patient.birth_date is not None:
            age = (ctx.origin.date() - patient.birth_date).days / 365.25
            note.append("age at the twin's origin from the (possibly shifted) birth date")
        if age is None:
            return None, "baseline", [], [], "no age or birth date"
        return _constant(cov.name, age), "baseline", [], note, None
    value = cov.source.categories.get(patient.sex)
    if value is None:
        return None, "baseline", [], [], f"sex {patient.sex!r} has no category on the card"
    return _constant(cov.name, value), "baseline", [], [], None


def _genotype(cov: Covariate, ctx: _Ctx) -> Found:
    src = cov.source.genotype
    assert src is not None
    calls = [g for g in ctx.record.genotypes if g.gene == src.gene]
    if not calls:
        return None, "baseline", [], [], f"no {src.gene} call in the record (untested)"
    lookup: dict[str | float, float]
    if src.read == "diplotype":
        lookup = {_norm_diplotype(k): v for k, v in src.values.items()}
    elif src.read == "activity_score":
        lookup = {float(k): v for k, v in src.values.items()}
    else:
        lookup = {_norm_call(k): v for k, v in src.values.items()}
    found: dict[float, list[Genotype]] = {}
    reasons = []
    for g in calls:
        value = definite_call(g, src.read)
        if value is None:
            reasons.append(
                f"{src.gene} call {g.id} is not definite ({g.diplotype or '-'}, {g.phenotype or '-'})"
            )
            continue
        if isinstance(value, float) and not src.values:
            found.setdefault(value, []).append(g)
            continue
        key: str | float
        if isinstance(value, float):
            key = value
        else:
            key = _norm_diplotype(value) if src.read == "diplotype" else _norm_call(value)
        if key not in lookup:
            reasons.append(f"{src.gene} {src.read} {value!r} has no value on the card")
            continue
        found.setdefault(lookup[key], []).append(g)
    if len(found) > 1:
        raise TwinError(
            f"patient {ctx.record.patient.id}: {src.gene} calls disagree "
            f"({', '.join(g.id for gs in found.values() for g in gs)})",
            source=ctx.record.patient.id,
            field=cov.name,
        )
    if not found:
        return None, "baseline", calls, [], "; ".join(reasons)
    ((value, used),) = found.items()
    notes = [f"{src.gene} {src.read} {definite_call(used[0], src.read)}"] + [
        f"{g.id}: positions not in the data: {', '.join(g.missing_positions)}"
        for g in used
        if g.missing_positions
    ]
    return _constant(cov.name, value), "baseline", used, notes + reasons, None


def _interval_steps(intervals: Iterable[tuple[float, float, float]], origin_value: float) -> Steps:
    """Sum of weights of the half-open intervals [start, end) active at each time, as steps."""
    events: dict[float, float] = {}
    base = origin_value
    for start, end, w in intervals:
        if start == -math.inf:
            base += w
        else:
            events[start] = events.get(start, 0.0) + w
        if end != math.inf:
            events[end] = events.get(end, 0.0) - w
    total = base
    changes = []
    for t in sorted(events):
        total += events[t]
        changes.append((t, total))
    return base, changes


def _condition(cov: Covariate, ctx: _Ctx) -> Found:
    src = cov.source.condition
    assert src is not None
    items = [c for c in ctx.record.conditions if any(c.code.matches(k) for k in src.codes)]
    notes, spans = [], []
    for c in items:
        start = _hours(c.onset, ctx.origin) if c.onset else -math.inf
        if c.abatement is not None:
            end = _hours(c.abatement, ctx.origin)
        elif c.clinical_status in ACTIVE:
            end = math.inf
        else:
            notes.append(f"{c.id} is {c.clinical_status} without an abatement date: counted as absent")
            continue
        if c.onset is None and c.clinical_status not in ACTIVE and c.abatement is not None:
            notes.append(f"{c.id} has no onset: counted as present until its abatement")
        spans.append((start, end, 1.0))
    if not items:
        notes.append("no matching condition in the record: absent")
    initial, steps = _interval_steps(spans, 0.0)
    level = lambda n: src.present if n > 0 else src.absent  # noqa: E731 - tiny local mapping
    return (
        _from_steps(cov.name, (level(initial), [(t, level(n)) for t, n in steps])),
        "onset-abatement",
        items,
        notes,
        None,
    )


def _comedication(cov: Covariate, ctx: _Ctx) -> Found:
    src = cov.source.comedication
    assert src is not None

    def matches(d: Dose) -> bool:
        return any(d.drug.has_code(c) for c in src.codes) or any(
            a.startswith(p) for a in _atc_codes(d) for p in src.atc_prefixes
        )

    doses = [d for d in ctx.record.doses if d.status in src.statuses and matches(d)]
    spans = []
    for d in doses:
        weight = 1.0
        if src.mode == "dose":
            try:
                weight = convert(d.amount, d.unit, src.dose_unit or d.unit)
            except UnitError as exc:
                raise TwinError(str(exc), source=d.id, field="unit") from exc
        for when in d.occurrences():
            s = _hours(when, ctx.origin)
            spans.append((s, s + src.window_h, weight))
    notes = [] if doses else ["no matching co-medication in the record: absent"]
    initial, steps = _interval_steps(spans, 0.0)
    if src.mode == "indicator":
        initial, steps = float(initial > 0), [(t, float(n > 1e-12)) for t, n in steps]
    return _from_steps(cov.name, (initial, steps)), f"window {src.window_h:g} h", doses, notes, None


def _derived(cov: Covariate, ctx: _Ctx) -> Found:
    src = cov.source.derived
    assert src is not None
    expr, mapping = derived_expression(src)
    inputs = {var: ctx.bound[name] for var, name in mapping.items()}
    points = sorted({t for b in inputs.values() for t in b.series.times_h})
    probes = [*points, math.inf]

    def at(t: float) -> float:
        return expr.evaluate({var: b.series.at(t) for var, b in inputs.items()})

    try:
        values = [at(t) for t in probes]
    except SchemaError as exc:
        raise TwinError(f"covariate {cov.name}: {exc}", source=ctx.record.patient.id, field=cov.name) from exc
    series = _from_steps(cov.name, (values[0], list(zip(points, values[1:], strict=True))))
    if len(set(values)) == 1:
        series = _constant(cov.name, values[0])
    label = src.formula or src.expression or ""
    notes = [f"{label} of " + ", ".join(f"{v}={n}" for v, n in mapping.items())]
    fell = [b.name for b in inputs.values() if b.fallback]
    if fell:
        notes.append(f"computed from reference value(s) of {', '.join(fell)}")
    return series, "recomputed at input changes", [], notes, None


_SOURCES: dict[str, Callable[[Covariate, _Ctx], Found]] = {
    "measurement": _measurement,
    "age_years": _patient_field,
    "sex": _patient_field,
    "genotype": _genotype,
    "condition": _condition,
    "comedication": _comedication,
    "derived": _derived,
}


def read_source(
    cov: Covariate, record: PatientRecord, origin: dt.datetime, bound: dict[str, CovariateBinding]
) -> tuple[CovariateSeries | None, tuple[str, ...], tuple[str, ...], str | None]:
    """One source read from ``record`` as the card's covariates are (for ML features): the series
    (None when missing), the items it came from, notes, and why it is missing; ``bound`` holds the
    bindings a derived formula reads."""
    series, _timing, items, notes, missing = _SOURCES[cov.source.kind](cov, _Ctx(None, record, origin, bound))
    return series, tuple(_describe(i.provenance, i.id) for i in items), tuple(notes), missing


def dependency_order(covariates: Sequence[Covariate]) -> list[Covariate]:
    """Card order, derived covariates after their inputs."""
    return _order(covariates)


def _order(covariates: Sequence[Covariate]) -> list[Covariate]:
    """Card order, derived covariates after their inputs (the card rejects cycles)."""
    done: set[str] = set()
    out: list[Covariate] = []
    by_name = {c.name: c for c in covariates}

    def visit(c: Covariate) -> None:
        if c.name in done:
            return
        if c.source.derived is not None:
            _, mapping = derived_expression(c.source.derived)
            for n in mapping.values():
                visit(by_name[n])
        done.add(c.name)
        out.append(c)

    for c in covariates:
        visit(c)
    return out


def _range_warnings(card: ModelCard, name: str, series: CovariateSeries) -> tuple[str, ...]:
    rng = card.validity.covariate_ranges.get(name)
    if rng is None:
        return ()
    lo, hi = rng
    bad = sorted({v for v in series.values if not lo <= v <= hi})
    if not bad:
        return ()
    return (f"{', '.join(f'{v:g}' for v in bad[:3])} outside the model's validity range [{lo:g}, {hi:g}]",)


def _label(cov: Covariate, ctx: _Ctx, series: CovariateSeries, fallback: str | None) -> str | None:
    """The category of a categorical covariate at the origin, for subgroup analyses."""
    src, value = cov.source, series.at(0.0)
    categorical = src.genotype or src.condition or src.patient_field == "sex"
    if src.comedication is not None and src.comedication.mode == "indicator":
        categorical = True
    if not categorical:
        return None
    if fallback is not None:
        return "missing"
    if src.genotype is not None:
        calls = [
            definite_call(g, src.genotype.read) for g in ctx.record.genotypes if g.gene == src.genotype.gene
        ]
        found = [c for c in calls if c is not None]
        return f"{src.genotype.gene} {found[0]}" if found else None
    if src.condition is not None:
        return "present" if value == src.condition.present else "absent"
    if src.comedication is not None and src.comedication.mode == "indicator":
        return "with" if value else "without"
    if src.patient_field == "sex":
        return ctx.record.patient.sex
    return None


def bind_covariates(card: ModelCard, record: PatientRecord, origin: dt.datetime) -> CovariateReport:
    """Every card covariate of ``record``, in hours from ``origin``, with its report."""
    ctx = _Ctx(card, record, origin, {})
    pid = record.patient.id
    for cov in _order(card.covariates):
        kind = cov.source.kind
        series, timing, items, notes, missing = _SOURCES[kind](cov, ctx)
        fallback = missing if series is not None else None  # the reference used for part of the time
        if series is None:
            if cov.missing == "reference" and cov.reference is not None:
                series, fallback = _constant(cov.name, cov.reference), missing or "no value"
            else:
                raise TwinError(
                    f"patient {pid} has no value for covariate {cov.name} required by {card.id} ({missing})",
                    source=pid,
                    field=cov.name,
                )
        ctx.bound[cov.name] = CovariateBinding(
            name=cov.name,
            kind=kind,
            timing=timing,
            series=series,
            unit=cov.unit or cov.source.unit,
            records=tuple(i.id for i in items),
            sources=tuple(_describe(i.provenance, i.id) for i in items),
            fallback=fallback,
            notes=tuple(notes),
            out_of_range=_range_warnings(card, cov.name, series),
            to_model=cov.to_model,
            label=_label(cov, ctx, series, fallback),
        )
    report = CovariateReport(tuple(ctx.bound[c.name] for c in card.covariates))
    for w in report.warnings:
        log.warning("patient %s, model %s: %s", pid, card.id, w)
    return report


def complete_covariates(card: ModelCard, values: dict[str, float]) -> dict[str, float]:
    """``values`` with each derived covariate not given computed from the others (regimens, cohorts)."""
    out = dict(values)
    for cov in _order(card.covariates):
        if cov.source.derived is None or cov.name in out:
            continue
        expr, mapping = derived_expression(cov.source.derived)
        try:
            out[cov.name] = expr.evaluate({var: out[name] for var, name in mapping.items()})
        except KeyError as exc:
            raise TwinError(f"covariate {cov.name} needs {exc.args[0]}", field=cov.name) from exc
        except SchemaError as exc:
            raise TwinError(f"covariate {cov.name}: {exc}", field=cov.name) from exc
    return out


def baseline_values(card: ModelCard, record: PatientRecord) -> dict[str, float]:
    """Each covariate's value at the record's first dose (first event without doses)."""
    times = [d.start for d in record.doses] + [m.time for m in record.measurements]
    if not times:
        raise TwinError(f"patient {record.patient.id} has no dated item", source=record.patient.id)
    given = [d.start for d in record.administered_doses()]
    origin = min(given) if given else min(times)
    report = bind_covariates(card, record, origin)
    return {b.name: b.value_at_origin for b in report.bindings}


def describe_covariates(twin: Twin) -> dict[str, object]:
    """For every output (CLI JSON, API): the bound covariates with their records, those that fell
    back to reference values, the warnings (fallbacks, values outside the validity range), and the
    units of the model's parameters."""
    report = twin.covariate_report
    if report is None:  # a bare regimen: covariates given, not read from records
        report = CovariateReport(
            tuple(CovariateBinding(name, "given", "constant", s, None) for name, s in twin.covariates.items())
        )
    out = report.to_dict()
    out["parameter_units"] = parameter_units(twin.model.sbml, twin.card)
    if twin.card.ml_models:  # a hybrid twin: which ML model versions took part, and how
        out["ml_models"] = [c.to_dict() for c in twin.ml] or [
            {"model": link.model, "note": "not applied: no patient record (a bare regimen)"}
            for link in twin.card.ml_models
        ]
    return out
