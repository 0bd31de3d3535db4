"""Named paths to the test data: the project's own fixtures and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "interop" / "data" / "models"
DEMO = ROOT / "interop" / "data" / "demo"


def _shared_data() -> Path:
    env = os.environ.get("INTEROP_SHARED_DATA")
    if env:
        return Path(env)
    for parent in ROOT.parents:  # ../shared/data beside the checkout (CI and developers)
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data"


SHARED = _shared_data()
FHIR_SYNTHEA = SHARED / "fhir" / "synthea"
FHIR_R4_SPEC = SHARED / "fhir" / "r4-spec"
PGX = SHARED / "pgx"
PHARMML = SHARED / "pharmml"
SBML = SHARED / "sbml"
MAPBAYR = SHARED / "mapbayr"

PGX_EXAMPLE_VCF = PGX / "pharmcat.example.vcf"
PGX_PHENOTYPE_JSON = PGX / "pharmcat.example.phenotype.json"
PGX_REPORT_TSV = PGX / "pharmcat.example.report.tsv"
PGX_OUTSIDE_CALL = PGX / "pharmcat.example.outsideCall.tsv"
FHIR_TPMT_DIPLOTYPE = FHIR_R4_SPEC / "Observation-example-TPMT-diplotype.json"
FHIR_CYP2C9_DIPLOTYPE = FHIR_R4_SPEC / "Observation-example-diplotype1.json"
OMICS_FIXTURES = ROOT / "tests" / "omics" / "fixtures"
PGX_EXAMPLE2_VCF = OMICS_FIXTURES / "pharmcat.example2.vcf"
PGX_EXAMPLE2_REPORT_TSV = OMICS_FIXTURES / "pharmcat.example2.report.tsv"
PGX_EXAMPLE2_REPORT_JSON = OMICS_FIXTURES / "pharmcat.example2.report.trimmed.json"

GENTAMICIN_SBML = MODELS / "gentamicin_1cmt.xml"
GENTAMICIN_CARD = MODELS / "gentamicin_1cmt.card.json"

# Virtual cohorts and validation (issue 8)
FIXTURES = ROOT / "tests" / "fixtures"
COHORT_DESIGN = FIXTURES / "cohort" / "design_7day.yaml"
COHORT_DESIGN_SHORT = FIXTURES / "cohort" / "design_short.json"
COHORT_COVARIATES = FIXTURES / "cohort" / "covariates.yaml"
GENTAMICIN_ANT = MODELS / "gentamicin_1cmt.ant"

PHARMML_FIXTURES = ROOT / "tests" / "pharmml" / "fixtures"
PHARMML_USECASE1 = PHARMML / "UseCase1_0.8.1.xml"
PHARMML_USECASE3 = PHARMML / "UseCase3_0.8.1.xml"
PHARMML_ADVAN1 = PHARMML / "PKmacros_advan1_0.8.1.xml"
PHARMML_ADVAN4 = PHARMML / "PKmacros_advan4_0.8.1.xml"
PHARMML_ONECMT_IV = PHARMML_FIXTURES / "onecmt_iv_0.8.xml"
PHARMML_ORAL_EFFECT = PHARMML_FIXTURES / "pkmacros_oral_effect_0.8.xml"

# FHIR converter (issue 3)
FHIR_SYNTHEA_BUNDLES = sorted(FHIR_SYNTHEA.glob("*.json"))
FHIR_MEDADMIN = {
    n: FHIR_R4_SPEC / f"MedicationAdministration-medadmin{n}.json"
    for n in ("0301", "0302", "0303", "0304", "0305", "0306", "0307")
}
FHIR_PATIENT_EXAMPLE = FHIR_R4_SPEC / "Patient-example.json"
FHIR_WEIGHT_LB = FHIR_R4_SPEC / "Observation-example.json"
FHIR_HEIGHT_IN = FHIR_R4_SPEC / "Observation-body-height.json"
FHIR_SEARCHSET = FHIR_R4_SPEC / "Bundle-bundle-example.json"
FHIR_DEMO_BUNDLE = DEMO / "gentamicin_patient.json"

# Registry (issue 5)
ABSORPTION_SBML = SBML / "absorption_first_order.xml"
BIOMD321_OMEX = SBML / "BIOMD0000000321.omex"
GENTAMICIN_ANTIMONY = MODELS / "gentamicin_1cmt.ant"
POSTGRES_URL = os.environ.get("INTEROP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

MAPBAYR_MODELS = ("001", "006", "301", "401")


def mapbayr_sbml(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.xml"


def mapbayr_card(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.card.json"


def mapbayr_data(model: str) -> Path:
    return MAPBAYR / f"data_to_fit{model}.csv"


def mapbayr_phi(model: str) -> Path:
    return MAPBAYR / f"nonmem_posthoc{model}.phi"
