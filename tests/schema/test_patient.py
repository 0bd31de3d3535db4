"""The patient schema: JSON round trip, validation messages that name field and value."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from interop.errors import SchemaError
from interop.schema import (
    LOINC,
    RXNORM,
    Coding,
    Dose,
    Drug,
    DrugLevel,
    Genotype,
    Measurement,
    OmicsRef,
    Patient,
    PatientRecord,
    Provenance,
    parse,
    parse_json,
)

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
PROV = Provenance(source_system="test", converter="tests", converter_version="1")
GENTA = Drug(codes=(Coding(system=RXNORM, code="1596450", display="gentamicin"),), name="gentamicin")


def make_record() -> PatientRecord:
    level = Measurement(
        id="m2",
        code=Coding(system=LOINC, code="35668-3"),
        category="drug-level",
        value=0.3,
        unit="mg/L",
        time=T0 + dt.timedelta(hours=20),
        provenance=PROV,
        drug_level=DrugLevel(analyte=GENTA.codes[0], matrix="serum", lloq=0.3, below_lloq=True),
    )
    weight = Measurement(
        id="m1",
        code=Coding(system=LOINC, code="29463-7"),
        category="vital-sign",
        value=68,
        unit="kg",
        original_value=150,
        original_unit="[lb_av]",
        time=T0,
        provenance=PROV,
    )
    doses = (
        Dose(
            id="d1",
            drug=GENTA,
            amount=160,
            unit="mg",
            route="iv-bolus",
            start=T0,
            status="administered",
            provenance=PROV,
        ),
        Dose(
            id="d2",
            drug=GENTA,
            amount=320,
            unit="mg",
            route="iv-infusion",
            start=T0 + dt.timedelta(days=1),
            duration_h=0.5,
            rate=640,
            status="ordered",
            interval_h=24,
            additional=2,
            provenance=PROV,
        ),
    )
    geno = Genotype(
        id="g1",
        gene="CYP2C19",
        diplotype="*1/*2",
        phenotype="Intermediate Metabolizer",
        activity_score=1.0,
        caller="test 1.0",
        provenance=PROV,
    )
    omics = OmicsRef(
        id="o1",
        assay="rna-seq",
        feature_namespace="hgnc.symbol",
        scale="tpm",
        path="omics/s1.parquet",
        sha256="a" * 64,
        sample_id="S1",
        provenance=PROV,
    )
    return PatientRecord(
        patient=Patient(id="p" * 32, sex="female", birth_date=dt.date(1964, 3, 12), provenance=PROV),
        measurements=(weight, level),
        doses=doses,
        genotypes=(geno,),
        omics=(omics,),
    )


def test_json_round_trip_is_exact() -> None:
    rec = make_record()
    back = parse_json(PatientRecord, rec.model_dump_json())
    assert back == rec
    assert back.schema_version == "1.0"


def test_items_are_immutable_and_replace_revalidates() -> None:
    rec = make_record()
    with pytest.raises(ValidationError, match="frozen"):
        rec.patient.sex = "male"  # type: ignore[misc]
    dose = rec.doses[0]
    assert dose.replace(amount=200).amount == 200
    with pytest.raises(SchemaError, match="amount"):
        dose.replace(amount=-5)


def test_administered_and_drug_level_views() -> None:
    rec = make_record()
    assert [d.id for d in rec.administered_doses()] == ["d1"]  # the order is not mixed in
    assert [m.id for m in rec.drug_levels()] == ["m2"]
    assert rec.doses[1].occurrences()[-1] == T0 + dt.timedelta(days=3)


@pytest.mark.parametrize(
    ("cls", "data", "field", "shown"),
    [
        (Dose, {"amount": -1}, "amount", "-1"),
        (Dose, {"route": "intrathecal-ish"}, "route", "intrathecal-ish"),
        (Dose, {"status": "given"}, "status", "given"),
        (Measurement, {"unit": ""}, "unit", "''"),
        (Measurement, {"time": "2026-03-02T08:00:00"}, "time", "2026-03-02T08:00:00"),
        (Genotype, {"diplotype": "*1*2"}, "diplotype", "*1*2"),
        (OmicsRef, {"sha256": "xyz"}, "sha256", "xyz"),
    ],
)
def test_invalid_values_name_field_and_value(cls: type, data: dict, field: str, shown: str) -> None:
    rec = make_record()
    base = {
        Dose: rec.doses[0],
        Measurement: rec.measurements[0],
        Genotype: rec.genotypes[0],
        OmicsRef: rec.omics[0],
    }[cls]
    payload = base.model_dump(mode="json") | data
    with pytest.raises(SchemaError) as err:
        parse(cls, payload)
    assert field in str(err.value)
    assert shown in str(err.value)


def test_cross_field_rules() -> None:
    rec = make_record()
    level = rec.measurements[1].model_dump(mode="json")
    with pytest.raises(SchemaError, match="drug_level"):
        parse(Measurement, level | {"drug_level": None})
    infusion = rec.doses[1].model_dump(mode="json")
    with pytest.raises(SchemaError, match="duration_h or rate"):
        parse(Dose, infusion | {"duration_h": None, "rate": None})
    with pytest.raises(SchemaError, match="disagree"):
        parse(Dose, infusion | {"rate": 100})
    with pytest.raises(SchemaError, match="interval_h"):
        parse(Dose, infusion | {"interval_h": None})
    dup = rec.model_dump(mode="json")
    dup["doses"][1]["id"] = "d1"
    with pytest.raises(SchemaError, match="appears twice"):
        parse(PatientRecord, dup)


def test_no_direct_identifiers_allowed() -> None:
    data = make_record().patient.model_dump(mode="json") | {"name": "Dana Example"}
    with pytest.raises(SchemaError, match="name"):
        parse(Patient, data)
