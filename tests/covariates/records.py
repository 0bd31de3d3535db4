"""Small patient records and cards for the covariate tests (built in code: each test states its
own numbers)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from interop.schema import (
    Coding,
    Condition,
    Dose,
    Drug,
    DrugLevel,
    Genotype,
    Measurement,
    ModelCard,
    Patient,
    PatientRecord,
    Provenance,
    parse,
)
from tests.data import GENTAMICIN_CARD

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
FHIR = Provenance(
    source_system="bundle.json",
    resource_type="Observation",
    resource_id="abc123",
    converter="converters.fhir",
    converter_version="1",
)
NONMEM = Provenance(
    source_system="nonmem-event-table",
    resource_type="covariate",
    source_file="data.csv",
    source_line=3,
    converter="converters.nonmem",
    converter_version="1",
)
LOINC = "http://loinc.org"
SCR = Coding(system=LOINC, code="2160-0", display="Creatinine")
WT = Coding(system=LOINC, code="29463-7", display="Body weight")
GENTA = Coding(system="http://www.nlm.nih.gov/research/umls/rxnorm", code="1596450", display="gentamicin")
RIFAMPICIN = Drug(
    codes=(
        Coding(system="http://www.nlm.nih.gov/research/umls/rxnorm", code="9384"),
        Coding(system="http://www.whocc.no/atc", code="J04AB02"),
    ),
    name="rifampicin",
)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def measurement(
    mid: str, code: Coding, value: float, unit: str, hours: float, prov: Provenance = FHIR
) -> Measurement:
    return Measurement(
        id=mid, code=code, category="laboratory", value=value, unit=unit, time=at(hours), provenance=prov
    )


def level(mid: str, value: float, hours: float) -> Measurement:
    return Measurement(
        id=mid,
        code=Coding(system=LOINC, code="35668-1"),
        category="drug-level",
        value=value,
        unit="mg/L",
        time=at(hours),
        drug_level=DrugLevel(analyte=GENTA),
        provenance=FHIR,
    )


def gentamicin_dose(did: str, hours: float, amount: float = 400) -> Dose:
    return Dose(
        id=did,
        drug=Drug(codes=(GENTA,)),
        amount=amount,
        unit="mg",
        route="iv-infusion",
        start=at(hours),
        duration_h=0.5,
        status="administered",
        provenance=FHIR,
    )


def genotype(
    gid: str, gene: str, diplotype: str | None, phenotype: str | None, uncertain: bool = False
) -> Genotype:
    return Genotype(
        id=gid,
        gene=gene,
        diplotype=diplotype,
        phenotype=phenotype,
        caller="test caller 1",
        uncertain=uncertain,
        provenance=FHIR,
    )


def condition(
    cid: str, code: str, onset_h: float | None, abate_h: float | None, status: str = "active"
) -> Condition:
    return Condition(
        id=cid,
        code=Coding(system="http://snomed.info/sct", code=code),
        onset=at(onset_h) if onset_h is not None else None,
        abatement=at(abate_h) if abate_h is not None else None,
        clinical_status=status,  # type: ignore[arg-type]
        provenance=FHIR,
    )


def record(**items: Any) -> PatientRecord:
    patient = Patient(id="patient-0001", sex="female", age_years=60, provenance=FHIR)
    items.setdefault("doses", (gentamicin_dose("d1", 0),))
    return PatientRecord(patient=patient, **items)


def card_with(covariates: list[dict[str, Any]], **extra: Any) -> ModelCard:
    """The gentamicin card with other covariates (binding needs only the card, not the SBML)."""
    data = json.loads(GENTAMICIN_CARD.read_text())
    data["covariates"] = covariates
    data.update(extra)
    return parse(ModelCard, data)
