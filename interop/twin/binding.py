"""Bind a patient to a compiled model through its card: doses, observations, covariates.

A hybrid card's ML models (``ml_models``) supply parameters from the record's features
(:mod:`interop.twin.hybrid`); the twin records what each one did (``Twin.ml``).

Times become hours from the twin's origin (the first dose or first level, whichever is
earlier). Covariates are piecewise constant; how a record's value holds over time (carried
forward for FHIR data, backwards NONMEM-style for event tables) is decided per covariate in
:mod:`interop.twin.covariates`, which also reports where each value came from.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from interop.errors import TwinError
from interop.schema import DosingInput, ModelCard, PatientRecord, ReferenceDose
from interop.schema.patient import STATE_RESET
from interop.schema.units import UnitError, convert
from interop.twin.model import CompiledModel

if TYPE_CHECKING:
    from interop.twin.covariates import CovariateReport
    from interop.twin.hybrid import MLContribution

__all__ = ["CovariateSeries", "DoseEvent", "LevelObservation", "Twin", "bind_patient", "bind_regimen"]


@dataclass(frozen=True)
class DoseEvent:
    """One dose into one model input (a split dose gives one event per input)."""

    time_h: float
    amount: float  # in the input's amount unit, before bioavailability
    input: DosingInput
    duration_h: float | None  # None: bolus (or a modelled duration, see input.duration_parameter)
    dose_id: str


@dataclass(frozen=True)
class LevelObservation:
    time_h: float
    observable: str
    value: float  # in the observable's unit
    below_lloq: bool
    lloq: float | None
    measurement_id: str


@dataclass(frozen=True)
class CovariateSeries:
    """Piecewise-constant covariate: ``values[k]`` holds on (times[k-1], times[k]], the last value
    after the last time (carried-forward series repeat their last time: see interop.twin.covariates)."""

    name: str
    times_h: tuple[float, ...]
    values: tuple[float, ...]

    def at(self, t: float) -> float:
        k = bisect.bisect_left(self.times_h, t)
        return self.values[min(k, len(self.values) - 1)]

    def changes(self) -> list[tuple[float, float]]:
        """(time, new value): the value switches just after each record time."""
        out = []
        for k in range(len(self.times_h) - 1):
            if self.values[k + 1] != self.values[k]:
                out.append((self.times_h[k], self.values[k + 1]))
        return out


@dataclass(frozen=True)
class Twin:
    model: CompiledModel
    patient_id: str
    origin: dt.datetime
    doses: tuple[DoseEvent, ...]
    observations: tuple[LevelObservation, ...]
    covariates: dict[str, CovariateSeries]
    notes: tuple[str, ...] = field(default=())
    resets: tuple[float, ...] = ()  # times at which every state returns to its initial value
    covariate_report: CovariateReport | None = None  # how each covariate was bound (records, fallbacks)
    ml: tuple[MLContribution, ...] = ()  # hybrid twins: what each ML model supplied (interop.twin.hybrid)

    @property
    def card(self) -> ModelCard:
        return self.model.card

    def hours(self, when: dt.datetime) -> float:
        return (when - self.origin).total_seconds() / 3600.0


def _drug_matches(card: ModelCard, codes: tuple) -> bool:
    return any(c.matches(d) for c in codes for d in card.drugs)


def _inputs(card: ModelCard, route: str, adm: int | None, source: str | None) -> tuple[DosingInput, ...]:
    """The inputs a dose by ``route`` (naming administration ``adm``, or none) feeds; TwinError if none."""
    inputs = card.dosing_for(route, adm)
    if inputs:
        return inputs
    if adm is not None and card.dosing_for(route):
        known = ", ".join(map(str, card.administrations(route)))
        raise TwinError(
            f"model {card.id} has no {route} administration {adm} (it has {known})",
            source=source,
            field="adm",
        )
    raise TwinError(f"model {card.id} takes no {route} dose", source=source, field="route")


def bind_patient(model: CompiledModel, record: PatientRecord) -> Twin:
    """A twin of ``record`` on ``model``: doses, levels and covariates in model time and units.

    With the gentamicin model and demo patient shipped in ``interop/data``:

    >>> import json
    >>> from importlib.resources import files
    >>> from converters import convert_bundle
    >>> from interop.schema import ModelCard, parse_json
    >>> from interop.twin import load_model
    >>> data = files("interop") / "data"
    >>> card = parse_json(ModelCard, (data / "models/gentamicin_1cmt.card.json").read_text())
    >>> model = load_model((data / "models/gentamicin_1cmt.xml").read_text(), card)
    >>> bundle = json.loads((data / "demo/gentamicin_patient.json").read_text())
    >>> twin = bind_patient(model, convert_bundle(bundle, b"secret key").records[0])
    >>> len(twin.doses), len(twin.observations)
    (2, 4)
    """
    card = model.card
    pid = record.patient.id
    notes: list[str] = []
    given = [d for d in record.administered_doses() if _drug_matches(card, d.drug.codes)]
    skipped = len(record.administered_doses()) - len(given)
    if skipped:
        notes.append(f"{skipped} administered dose(s) of other drugs ignored")
    if not given:
        raise TwinError(
            f"patient {pid} has no administered dose of {card.drugs[0].display or card.id}",
            source=pid,
            field="doses",
        )
    obs_meas = []
    for m in record.drug_levels():
        for o in card.observables:
            if (m.drug_level and m.drug_level.analyte.matches(o.analyte)) or any(
                m.code.matches(c) for c in o.measurement_codes
            ):
                obs_meas.append((m, o))
                break
    times = [d.start for d in given] + [m.time for m, _ in obs_meas]
    origin = min(times)

    def hours(t: dt.datetime) -> float:
        return (t - origin).total_seconds() / 3600.0

    events: list[DoseEvent] = []
    for d in given:
        inputs = _inputs(card, d.route, d.adm, d.id)
        for inp in inputs:
            try:
                amount = convert(d.amount, d.unit, inp.amount_unit)
            except UnitError as exc:
                raise TwinError(str(exc), source=d.id, field="unit") from exc
            for start in d.occurrences():
                events.append(DoseEvent(hours(start), amount * inp.fraction, inp, d.infusion_hours, d.id))
    events.sort(key=lambda e: e.time_h)

    observations = []
    for m, o in obs_meas:
        try:
            value = convert(m.value, m.unit, o.unit)
            lloq = m.drug_level.lloq if m.drug_level else None
            lloq = convert(lloq, m.unit, o.unit) if lloq is not None else None
        except UnitError as exc:
            raise TwinError(str(exc), source=m.id, field="unit") from exc
        below = bool(m.drug_level and m.drug_level.below_lloq)
        observations.append(LevelObservation(hours(m.time), o.id, value, below, lloq, m.id))
    first_dose = events[0].time_h
    early = [o for o in observations if o.time_h < first_dose]
    if early:
        notes.append(f"{len(early)} level(s) before the first dose")

    from interop.twin.covariates import bind_covariates  # it builds on CovariateSeries above

    report = bind_covariates(card, record, origin)
    ml: tuple[MLContribution, ...] = ()
    if card.ml_models:  # a hybrid twin: ML models supply parameters (interop.twin.hybrid)
        from interop.twin.hybrid import apply_ml_models

        report, ml = apply_ml_models(model, record, origin, report)
    return Twin(
        model=model,
        patient_id=pid,
        origin=origin,
        doses=tuple(events),
        observations=tuple(observations),
        covariates=report.series,
        notes=tuple(notes),
        resets=tuple(sorted({hours(m.time) for m in record.measurements if m.code.matches(STATE_RESET)})),
        covariate_report=report,
        ml=ml,
    )


def bind_regimen(
    model: CompiledModel,
    doses: tuple[ReferenceDose, ...],
    covariates: dict[str, float],
    patient_id: str = "regimen",
) -> Twin:
    """A twin from a bare regimen (hours from 0) and fixed covariates: no patient record.

    Used for reference outputs, virtual subjects and dose recommendation. A covariate not given
    takes the card's reference value, else the value the SBML itself assigns it.
    """
    card = model.card
    events = []
    for i, d in enumerate(doses):
        inputs = _inputs(card, d.route, d.adm, f"dose{i}")
        for inp in inputs:
            events.append(DoseEvent(d.time_h, d.amount * inp.fraction, inp, d.duration_h, f"dose{i}"))
    from interop.twin.covariates import complete_covariates

    covariates = complete_covariates(card, covariates)
    series = {}
    defaulted = []
    for cov in card.covariates:
        if not cov.to_model:
            continue
        value = covariates.get(cov.name, cov.reference)
        if value is None:  # no reference on the card: the SBML's own value of that parameter
            value = model.defaults.get(cov.name)
            if value is not None:
                defaulted.append(f"{cov.name}={value:g}")
        if value is None:
            raise TwinError(f"no value for covariate {cov.name}", field=cov.name)
        series[cov.name] = CovariateSeries(cov.name, (0.0,), (float(value),))
    notes = (
        (f"covariates without a value or a reference take the SBML's own: {', '.join(defaulted)}",)
        if defaulted
        else ()
    )
    return Twin(
        model=model,
        patient_id=patient_id,
        origin=dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        doses=tuple(sorted(events, key=lambda e: e.time_h)),
        observations=(),
        covariates=series,
        notes=notes,
    )
