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

GENTAMICIN_SBML = MODELS / "gentamicin_1cmt.xml"
GENTAMICIN_CARD = MODELS / "gentamicin_1cmt.card.json"

# Registry (issue 5)
ABSORPTION_SBML = SBML / "absorption_first_order.xml"
BIOMD321_OMEX = SBML / "BIOMD0000000321.omex"
GENTAMICIN_ANTIMONY = MODELS / "gentamicin_1cmt.ant"
POSTGRES_URL = os.environ.get("INTEROP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Virtual cohorts and validation (issue 8)
FIXTURES = ROOT / "tests" / "fixtures"
COHORT_DESIGN = FIXTURES / "cohort" / "design_7day.yaml"
COHORT_DESIGN_SHORT = FIXTURES / "cohort" / "design_short.json"
COHORT_COVARIATES = FIXTURES / "cohort" / "covariates.yaml"

MAPBAYR_MODELS = ("001", "006", "301", "401")


def mapbayr_sbml(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.xml"


def mapbayr_card(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.card.json"


def mapbayr_data(model: str) -> Path:
    return MAPBAYR / f"data_to_fit{model}.csv"


def mapbayr_phi(model: str) -> Path:
    return MAPBAYR / f"nonmem_posthoc{model}.phi"
