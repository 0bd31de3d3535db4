"""Virtual subjects as ``PatientRecord``s: validation datasets with a known truth.

Covariates go where the card's binding will look for them (a measurement with the card's code
and unit at the first dose, the patient's age or sex); doses and levels follow the design.
The truth (ETAs, individual predictions) stays in the flat tables, never in the records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd

from interop import __version__
from interop.cohort.design import Design
from interop.errors import SchemaError
from interop.schema import (
    Coding,
    Condition,
    Covariate,
    Dose,
    Drug,
    DrugLevel,
    Genotype,
    Measurement,
    ModelCard,
    Patient,
    PatientRecord,
    Provenance,
)

__all__ = ["ORIGIN", "to_records"]

ORIGIN = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)


def _prov() -> Provenance:
    return Provenance(
        source_system="interop simulate cohort",
        resource_type="virtual-subject",
        converter="interop.cohort",
        converter_version=__version__,
    )


def _at(hours: float) -> dt.datetime:
    return ORIGIN + dt.timedelta(hours=float(hours))


def to_records(
    card: ModelCard, design: Design, subjects: pd.DataFrame, levels: pd.DataFrame
) -> Iterator[PatientRecord]:
    """One record per subject that simulated without error."""
    prov = _prov()
    obs_id = design.observable or card.observables[0].id
    observable = next(o for o in card.observables if o.id == obs_id)
    code = observable.measurement_codes[0] if observable.measurement_codes else observable.analyte
    drug = Drug(codes=card.drugs, name=card.drugs[0].display)
    by_patient = {pid: g for pid, g in levels.groupby("patient_id", sort=False)}
    for row in subjects.itertuples(index=False):
        if row.status != "ok":
            continue
        covs = {c.name: float(getattr(row, f"cov_{c.name}")) for c in card.covariates}
        sex, age = "unknown", None
        measurements: list[Measurement] = []
        extra: dict[str, list] = {"genotypes": [], "conditions": [], "doses": []}
        last_h = max(design.sampling_h)
        for c in card.covariates:
            src = c.source
            if src.derived is not None:
                continue  # recomputed from its inputs by the binding
            if src.genotype or src.condition or src.comedication:
                _record_item(c, covs[c.name], prov, last_h, extra)
            elif src.patient_field == "age_years":
                age = covs[c.name]
            elif src.patient_field == "sex":
                sex = next((k for k, v in src.categories.items() if v == covs[c.name]), "unknown")
            elif src.measurement is not None:
                measurements.append(
                    Measurement(
                        id=f"cov-{c.name}",
                        code=src.measurement,
                        category="vital-sign" if c.name.upper() in ("WT", "HT", "BW") else "laboratory",
                        value=covs[c.name],
                        unit=src.unit or "1",
                        time=ORIGIN,
                        provenance=prov,
                    )
                )
        for k, lv in enumerate(by_patient[row.patient_id].itertuples(index=False)):
            below = bool(lv.below_lloq)
            measurements.append(
                Measurement(
                    id=f"level-{k + 1}",
                    code=code,
                    category="drug-level",
                    value=max(float(lv.dv), 0.0) if below else float(lv.dv),
                    unit=observable.unit,
                    time=_at(lv.time_h),
                    provenance=prov,
                    drug_level=DrugLevel(
                        analyte=Coding(**observable.analyte.model_dump()), lloq=design.lloq, below_lloq=below
                    ),
                )
            )
        doses = [
            Dose(
                id=f"dose-{k + 1}",
                drug=drug,
                amount=d.amount,
                unit=_unit(card, d.route),
                route=d.route,
                start=_at(d.time_h),
                duration_h=d.duration_h,
                status="administered",
                provenance=prov,
            )
            for k, d in enumerate(design.regimen(covs))
        ]
        yield PatientRecord(
            patient=Patient(id=row.patient_id, sex=sex, age_years=age, provenance=prov),
            measurements=tuple(measurements),
            doses=tuple(doses + extra["doses"]),
            genotypes=tuple(extra["genotypes"]),
            conditions=tuple(extra["conditions"]),
        )


def _record_item(cov: Covariate, value: float, prov: Provenance, last_h: float, out: dict[str, list]) -> None:
    """The record item a twin binds back to ``value``: a genotype call, a condition active over the
    whole design, or a co-medication given often enough to be in its window at every time."""
    src = cov.source
    if src.genotype is not None:
        g = src.genotype
        call = next((k for k, v in g.values.items() if v == value), None)
        if g.read != "activity_score" and call is None:
            raise SchemaError(f"{cov.name}: no call on the card has the value {value:g}")
        out["genotypes"].append(
            Genotype(
                id=f"cov-{cov.name}",
                gene=g.gene,
                phenotype=call if g.read == "phenotype" else None,
                diplotype=call if g.read == "diplotype" else None,
                activity_score=value if g.read == "activity_score" and call is None else None,
                caller="interop simulate cohort (drawn)",
                provenance=prov,
            )
        )
    elif src.condition is not None:
        if value == src.condition.present:
            out["conditions"].append(
                Condition(
                    id=f"cov-{cov.name}",
                    code=src.condition.codes[0],
                    onset=ORIGIN - dt.timedelta(days=1),
                    clinical_status="active",
                    provenance=prov,
                )
            )
    elif src.comedication is not None and value > 0:
        cm = src.comedication
        if not cm.codes:
            raise SchemaError(f"{cov.name}: a co-medication given by ATC prefix only cannot be written")
        step = cm.window_h / 2  # two doses in every window: the indicator holds throughout
        out["doses"].append(
            Dose(
                id=f"cov-{cov.name}",
                drug=Drug(codes=(cm.codes[0],)),
                amount=value / 2 if cm.mode == "dose" else 1.0,
                unit=cm.dose_unit or "mg",
                route="oral",
                start=ORIGIN - dt.timedelta(hours=cm.window_h),
                interval_h=step,
                additional=int((last_h + cm.window_h) // step) + 1,
                status=cm.statuses[0],
                provenance=prov,
            )
        )


def _unit(card: ModelCard, route: str) -> str:
    inputs = card.dosing_for(route)
    return inputs[0].amount_unit if inputs else "mg"
