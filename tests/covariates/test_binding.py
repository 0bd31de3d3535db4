"""Each covariate source against hand-computed values, the timing rules, and the report."""

from __future__ import annotations

import pytest

from interop.errors import SchemaError, TwinError
from interop.schema import ModelCard
from interop.twin.covariates import bind_covariates, complete_covariates
from tests.covariates.records import (
    NONMEM,
    RIFAMPICIN,
    SCR,
    T0,
    WT,
    Dose,
    at,
    card_with,
    condition,
    genotype,
    measurement,
    record,
)

SCR_COV = {"name": "SCR", "source": {"measurement": SCR.model_dump(), "unit": "mg/dL"}}


def test_fhir_laboratory_values_carry_forward_nonmem_values_apply_backwards() -> None:
    rows = (measurement("s1", SCR, 1.0, "mg/dL", -2), measurement("s2", SCR, 2.0, "mg/dL", 36))
    fhir = bind_covariates(card_with([SCR_COV]), record(measurements=rows), T0).bindings[0]
    assert fhir.timing == "locf"
    assert [fhir.series.at(t) for t in (0, 12, 35.9, 36.1, 100)] == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert fhir.changes() == [(36.0, 2.0)]
    assert fhir.records == ("s1", "s2")
    assert "converters.fhir (Observation abc123)" in fhir.sources[0]

    nm_rows = tuple(r.replace(provenance=NONMEM.model_dump()) for r in rows)
    nm = bind_covariates(card_with([SCR_COV]), record(measurements=nm_rows), T0).bindings[0]
    assert nm.timing == "nonmem"  # the value at 36 h holds back to the previous record (-2 h)
    assert [nm.series.at(t) for t in (0, 12, 36, 100)] == [2.0, 2.0, 2.0, 2.0]
    assert "line 3" in nm.sources[0]

    # The card states the rule: NONMEM convention for FHIR data, or the first value throughout.
    forced = bind_covariates(card_with([{**SCR_COV, "timing": "nonmem"}]), record(measurements=rows), T0)
    assert forced.bindings[0].series.at(12) == 2.0
    base = bind_covariates(card_with([{**SCR_COV, "timing": "baseline"}]), record(measurements=rows), T0)
    assert base.bindings[0].series.at(100) == 1.0


def test_before_the_first_value() -> None:
    rows = (measurement("s1", SCR, 1.5, "mg/dL", 10),)
    first = bind_covariates(card_with([SCR_COV]), record(measurements=rows), T0).bindings[0]
    assert first.series.at(0) == 1.5 and "also used before it" in first.notes[0]
    cov = {**SCR_COV, "before_first": "missing", "missing": "reference", "reference": 0.9}
    ref = bind_covariates(card_with([cov]), record(measurements=rows), T0).bindings[0]
    assert (ref.series.at(0), ref.series.at(10), ref.series.at(11)) == (0.9, 0.9, 1.5)
    assert ref.fallback == "before the first record at 10 h"  # reported, like a full fallback
    with pytest.raises(TwinError, match="before its first"):
        bind_covariates(card_with([{**SCR_COV, "before_first": "missing"}]), record(measurements=rows), T0)


def test_units_convert_and_reference_fallback_is_reported() -> None:
    rows = (measurement("s1", SCR, 88.42, "umol/L", 0),)
    # creatinine umol/L -> mg/dL through the analyte table's molar mass (113.12 g/mol)
    bound = bind_covariates(card_with([SCR_COV]), record(measurements=rows), T0).bindings[0]
    assert bound.series.at(0) == pytest.approx(88.42 * 113.12 / 10_000, rel=1e-4)
    cov = {**SCR_COV, "missing": "reference", "reference": 1.0}
    report = bind_covariates(card_with([cov]), record(), T0)
    b = report.bindings[0]
    assert b.fallback == "no Creatinine measurement" and b.series.at(0) == 1.0
    assert report.fell_back == ["SCR"]
    assert report.to_dict()["warnings"] == ["SCR: reference value used (no Creatinine measurement)"]
    with pytest.raises(TwinError, match="no value for covariate SCR"):
        bind_covariates(card_with([SCR_COV]), record(), T0)


CYP2C19 = {
    "name": "CYP2C19",
    "source": {
        "genotype": {
            "gene": "CYP2C19",
            "read": "phenotype",
            "values": {"Poor": 1, "Intermediate": 0.5, "Normal": 0, "Rapid": -0.3, "Ultrarapid": -0.5},
        }
    },
    "missing": "reference",
    "reference": 0,
}


def test_genotype_phenotype_maps_and_uncertain_calls_are_missing_not_reference() -> None:
    rec = record(genotypes=(genotype("g1", "CYP2C19", "*2/*17", "Intermediate Metabolizer"),))
    b = bind_covariates(card_with([CYP2C19]), rec, T0).bindings[0]
    assert b.series.at(0) == 0.5 and b.fallback is None and b.records == ("g1",)
    # Uncertain -> the missing rule (here: reference), reported as a fallback, never silently 0.
    rec = record(genotypes=(genotype("g1", "CYP2C19", "*2/*17", "Intermediate Metabolizer", uncertain=True),))
    report = bind_covariates(card_with([CYP2C19]), rec, T0)
    assert report.bindings[0].fallback is not None and "not definite" in report.bindings[0].fallback
    assert report.fell_back == ["CYP2C19"]
    # Indeterminate, unmapped and untested calls too; with missing=error they stop the binding.
    for calls, why in (
        ((genotype("g1", "CYP2C19", "*1/*40", "Indeterminate"),), "not definite"),
        ((genotype("g1", "CYP2C19", "*1/*4", "Likely Poor Metabolizer"),), "has no value on the card"),
        ((), "untested"),
    ):
        report = bind_covariates(card_with([CYP2C19]), record(genotypes=calls), T0)
        assert why in (report.bindings[0].fallback or "")
        strict = {**CYP2C19, "missing": "error"}
        with pytest.raises(TwinError, match=why):
            bind_covariates(card_with([strict]), record(genotypes=calls), T0)


def test_genotype_diplotype_activity_score_and_conflicts() -> None:
    cov = {
        "name": "EXPR",
        "source": {"genotype": {"gene": "CYP3A5", "read": "diplotype", "values": {"*1/*3": 1}}},
    }
    rec = record(genotypes=(genotype("g1", "CYP3A5", "*3/*1", "Intermediate Metabolizer"),))
    assert bind_covariates(card_with([cov]), rec, T0).bindings[0].series.at(0) == 1  # order-free
    score = {"name": "AS", "source": {"genotype": {"gene": "DPYD", "read": "activity_score"}}}
    g = genotype("g2", "DPYD", "*1/*2A", "Intermediate Metabolizer").replace(activity_score=1.0)
    assert bind_covariates(card_with([score]), record(genotypes=(g,)), T0).bindings[0].series.at(0) == 1.0
    two = (
        genotype("g1", "CYP2C19", "*2/*2", "Poor Metabolizer"),
        genotype("g2", "CYP2C19", "*1/*1", "Normal Metabolizer"),
    )
    with pytest.raises(TwinError, match="disagree"):
        bind_covariates(card_with([CYP2C19]), record(genotypes=two), T0)


DIALYSIS = {
    "name": "HD",
    "source": {
        "condition": {
            "codes": [
                {"system": "http://snomed.info/sct", "code": "302497006"},
                {"system": "http://hl7.org/fhir/sid/icd-10", "code": "Z99.2"},
            ]
        }
    },
}


def test_condition_active_between_onset_and_abatement() -> None:
    rec = record(conditions=(condition("c1", "302497006", 12, 48), condition("c2", "123", -100, None)))
    b = bind_covariates(card_with([DIALYSIS]), rec, T0).bindings[0]
    assert [b.series.at(t) for t in (0, 12, 12.5, 47.9, 48.5)] == [0, 0, 1, 1, 0]
    assert b.records == ("c1",)
    always = record(conditions=(condition("c1", "302497006", None, None),))
    assert bind_covariates(card_with([DIALYSIS]), always, T0).bindings[0].series.at(0) == 1
    resolved = record(conditions=(condition("c1", "302497006", -500, None, status="resolved"),))
    r = bind_covariates(card_with([DIALYSIS]), resolved, T0).bindings[0]
    assert r.series.at(0) == 0 and "without an abatement date" in r.notes[0]
    none = bind_covariates(card_with([DIALYSIS]), record(), T0).bindings[0]
    assert none.series.at(0) == 0 and "absent" in none.notes[0]


def rifampicin(did: str, hours: float, amount: float = 600, status: str = "administered") -> Dose:
    return Dose(
        id=did,
        drug=RIFAMPICIN,
        amount=amount,
        unit="mg",
        route="oral",
        start=at(hours),
        interval_h=24,
        additional=2,
        status=status,  # type: ignore[arg-type]
        provenance=NONMEM,
    )


def test_comedication_within_a_window_indicator_and_dose() -> None:
    cov = {"name": "IND", "source": {"comedication": {"atc_prefixes": ["J04AB"], "window_h": 36}}}
    doses = (rifampicin("r1", 10),)  # at 10, 34, 58 h; each counts for 36 h
    b = bind_covariates(card_with([cov]), record(doses=(*record().doses, *doses)), T0).bindings[0]
    assert [b.series.at(t) for t in (0, 10, 11, 60, 94, 95)] == [0, 0, 1, 1, 1, 0]
    dose = {
        "name": "RIFDOSE",
        "source": {
            "comedication": {
                "codes": [RIFAMPICIN.codes[0].model_dump()],
                "window_h": 36,
                "mode": "dose",
                "dose_unit": "g",
            }
        },
    }
    d = bind_covariates(card_with([dose]), record(doses=(*record().doses, *doses)), T0).bindings[0]
    # amount in the 36 h before t: 0.6 g from 10 h; 1.2 g once the 34 h dose comes; 0.6 g after 46 h.
    assert [d.series.at(t) for t in (5, 20, 40, 50, 70, 100)] == pytest.approx([0, 0.6, 1.2, 0.6, 1.2, 0])
    ordered = (rifampicin("r1", 10, status="ordered"),)
    o = bind_covariates(card_with([cov]), record(doses=(*record().doses, *ordered)), T0).bindings[0]
    assert o.series.at(20) == 0  # orders do not count unless the card lists them


CRCL = {
    "name": "CRCL",
    "source": {
        "derived": {
            "formula": "cockcroft_gault",
            "inputs": {"age": "AGE", "weight": "WT", "scr": "SCR", "female": "FEMALE"},
        }
    },
    "unit": "mL/min",
}
INPUTS = [
    {**SCR_COV, "to_model": False},
    {"name": "WT", "source": {"measurement": WT.model_dump(), "unit": "kg"}, "to_model": False},
    {"name": "AGE", "source": {"patient_field": "age_years"}, "to_model": False},
    {
        "name": "FEMALE",
        "source": {"patient_field": "sex", "categories": {"female": 1, "male": 0}},
        "to_model": False,
    },
]


def test_derived_covariate_recomputed_at_every_input_change() -> None:
    rows = (
        measurement("w1", WT, 70, "kg", -1),
        measurement("s1", SCR, 1.0, "mg/dL", -1),
        measurement("s2", SCR, 2.0, "mg/dL", 24),
        measurement("w2", WT, 60, "kg", 48),
    )
    report = bind_covariates(card_with([*INPUTS, CRCL]), record(measurements=rows), T0)
    crcl = next(b for b in report.bindings if b.name == "CRCL")
    # female, 60 y: (140-60) * WT / (72 * SCR) * 0.85
    assert crcl.series.at(0) == pytest.approx(80 * 70 / 72 * 0.85)
    assert crcl.series.at(30) == pytest.approx(80 * 70 / (72 * 2) * 0.85)
    assert crcl.series.at(50) == pytest.approx(80 * 60 / (72 * 2) * 0.85)
    assert [t for t, _ in crcl.changes()] == [24.0, 48.0]
    assert set(report.series) == {"CRCL"}  # inputs only feed the formula, they are not SBML parameters
    assert complete_covariates(card_with([*INPUTS, CRCL]), {"AGE": 60, "WT": 70, "SCR": 1, "FEMALE": 1})[
        "CRCL"
    ] == pytest.approx(80 * 70 / 72 * 0.85)


def test_own_expression_and_card_checks() -> None:
    own = {"name": "CLF", "source": {"derived": {"expression": "min(SCR * 2, 3)"}}}
    rows = (measurement("s1", SCR, 2.0, "mg/dL", 0),)
    assert (
        bind_covariates(card_with([SCR_COV, own]), record(measurements=rows), T0).bindings[1].series.at(1)
        == 3
    )
    with pytest.raises(SchemaError, match="unknown covariate"):
        card_with([{"name": "X", "source": {"derived": {"expression": "Y * 2"}}}])
    with pytest.raises(SchemaError, match="cycle"):
        card_with(
            [
                {"name": "X", "source": {"derived": {"expression": "Y * 2"}}},
                {"name": "Y", "source": {"derived": {"expression": "X * 2"}}},
            ]
        )
    with pytest.raises(SchemaError, match="not allowed"):
        card_with([{"name": "X", "source": {"derived": {"expression": "__import__('os')"}}}])
    with pytest.raises(SchemaError, match="missing female"):
        card_with(
            [
                *INPUTS,
                {
                    **CRCL,
                    "source": {
                        "derived": {
                            "formula": "cockcroft_gault",
                            "inputs": {"age": "AGE", "weight": "WT", "scr": "SCR"},
                        }
                    },
                },
            ]
        )
    with pytest.raises(SchemaError, match="exactly one of"):
        card_with(
            [
                {
                    "name": "X",
                    "source": {"measurement": SCR.model_dump(), "unit": "mg/dL", "patient_field": "sex"},
                }
            ]
        )


def test_out_of_range_values_warn() -> None:
    rows = (measurement("s1", SCR, 1.0, "mg/dL", 0), measurement("s2", SCR, 6.0, "mg/dL", 30))
    card = card_with([SCR_COV], validity={"covariate_ranges": {"SCR": [0.5, 4.0]}})
    report = bind_covariates(card, record(measurements=rows), T0)
    assert report.warnings == ["SCR: 6 outside the model's validity range [0.5, 4]"]


def test_old_cards_still_parse() -> None:
    from tests.data import GENTAMICIN_CARD

    card = ModelCard.model_validate_json(GENTAMICIN_CARD.read_text())
    assert card.schema_version == "1.0"
    assert ModelCard.model_validate({**card.model_dump(), "schema_version": "1.1"}).schema_version == "1.1"


def test_a_late_laboratory_value_does_not_change_earlier_predictions() -> None:
    """The issue's vancomycin story on the gentamicin model: creatinine measured at 36 h must not
    move the clearance of the first 36 h when it comes from FHIR; NONMEM data keep their convention."""
    from interop.schema import parse_json
    from interop.twin import bind_patient, load_model, simulate
    from tests.covariates.records import gentamicin_dose
    from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML

    model = load_model(GENTAMICIN_SBML.read_text(), parse_json(ModelCard, GENTAMICIN_CARD.read_text()))
    base = (measurement("w1", WT, 70, "kg", -1), measurement("s1", SCR, 1.0, "mg/dL", -1))
    late = measurement("s2", SCR, 2.0, "mg/dL", 36)
    doses = (gentamicin_dose("d1", 0), gentamicin_dose("d2", 24), gentamicin_dose("d3", 48))
    times = [12.0, 30.0, 47.0]
    obs = model.card.observables[0].id
    only_first = simulate(bind_patient(model, record(measurements=base, doses=doses)), times).values[obs]
    fhir = simulate(bind_patient(model, record(measurements=(*base, late), doses=doses)), times).values[obs]
    assert fhir[:2] == pytest.approx(only_first[:2], rel=1e-9)  # before 36 h: unchanged
    assert fhir[2] > only_first[2] * 1.05  # after 36 h: halved clearance raises the level
    nm_rows = tuple(m.replace(provenance=NONMEM.model_dump()) for m in (*base, late))
    nm = simulate(bind_patient(model, record(measurements=nm_rows, doses=doses)), times).values[obs]
    assert nm[0] > only_first[0] * 1.05  # NONMEM: the 36 h value applies back to the start
