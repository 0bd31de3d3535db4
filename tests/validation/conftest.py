"""A virtual cohort with a known truth (simulated from the gentamicin demo model), plus patients
with each kind of bad input the validation must report and leave out."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.cohort import Population, load_design, load_distributions, simulate_cohort
from interop.schema import Coding, ModelCard, PatientRecord, parse_json
from interop.schema.cohort import read_cohort
from tests.data import COHORT_COVARIATES, COHORT_DESIGN_SHORT, GENTAMICIN_CARD, GENTAMICIN_SBML

VANCOMYCIN = Coding(system="http://www.nlm.nih.gov/research/umls/rxnorm", code="11124", display="vancomycin")


@pytest.fixture(scope="session")
def card() -> ModelCard:
    return parse_json(ModelCard, GENTAMICIN_CARD.read_text())


@pytest.fixture(scope="session")
def sbml() -> str:
    return GENTAMICIN_SBML.read_text()


@pytest.fixture(scope="session")
def truth_cohort(tmp_path_factory: pytest.TempPathFactory, card: ModelCard, sbml: str) -> Path:
    """40 virtual patients (four levels each) with known ETAs: ``<dir>/cohort`` and the truth tables."""
    out = tmp_path_factory.mktemp("truth")
    simulate_cohort(
        sbml,
        card,
        load_design(COHORT_DESIGN_SHORT),
        40,
        out,
        seed=2024,
        population=Population(load_distributions(COHORT_COVARIATES, card)),
        scheduler="single",
        records=True,
    )
    return out


def _bad(rec: PatientRecord, suffix: str) -> PatientRecord:
    return rec.replace(patient={**rec.patient.model_dump(), "id": rec.patient.id + suffix})


def make_bad_records(good: list[PatientRecord]) -> dict[str, PatientRecord]:
    """One patient per screening reason, derived from good ones."""
    a, b, c, d, e = good[:5]
    other = [m.model_dump() for m in a.measurements]
    for m in other:
        if m["category"] == "drug-level":
            m["drug_level"]["analyte"] = VANCOMYCIN.model_dump()
            m["code"] = {"system": "http://loinc.org", "code": "20578-1", "display": "Vancomycin"}
    drug = {"codes": [VANCOMYCIN.model_dump()], "name": "vancomycin"}
    bad_units = [{**x.model_dump(), "unit": "mL"} for x in b.doses]
    no_levels = [m.model_dump() for m in c.measurements if m.category != "drug-level"]
    heavy = [
        {**m.model_dump(), "value": 150.0} if m.id == "cov-WT" else m.model_dump() for m in d.measurements
    ]
    blq = [m.model_dump() for m in e.measurements]
    for m in blq:
        if m["category"] == "drug-level":
            m["drug_level"]["below_lloq"] = True
    return {
        "drug-mismatch": _bad(a, "-drug").replace(
            measurements=other, doses=[{**x.model_dump(), "drug": drug} for x in a.doses]
        ),
        "unit-mismatch": _bad(b, "-unit").replace(doses=bad_units),
        "no-levels": _bad(c, "-nolevels").replace(measurements=no_levels),
        "covariate-outside-domain": _bad(d, "-heavy").replace(measurements=heavy),
        "all-below-limit": _bad(e, "-blq").replace(measurements=blq),
    }


@pytest.fixture(scope="session")
def truth_records(truth_cohort: Path) -> list[PatientRecord]:
    return read_cohort(truth_cohort / "cohort")
