"""Named paths to the test data: the project's own fixtures, the public data shipped in
``tests/data/`` (permissive licences, see its README) and the external data with no stated licence.

External data (``mapbayr/``, ``pharmml/``, ``sbml/absorption_first_order.xml``) is found through one
setting, ``INTEROP_TEST_DATA`` (default: ``shared/data`` beside the checkout or beside one of its
parent folders). A test that needs a missing external file is skipped with the reason, or fails when
``CI=true`` (CI must never pass by skipping). The rule is applied once, by ``require_external``:

- inside a test, ``shared_data("mapbayr/run001.mod")`` returns the path or skips/fails;
- ``mapbayr_data``/``mapbayr_phi`` go through ``shared_data``;
- the root conftest calls ``check_external_paths`` before every test: a test whose code (or a
  fixture's) names an external path constant of this module, or whose parameters are external
  paths, needs those paths.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "interop" / "data" / "models"
DEMO = ROOT / "interop" / "data" / "demo"
PUBLIC = ROOT / "tests" / "data"  # shipped, permissively licensed (tests/data/README.md)


def _external_data() -> Path:
    env = os.environ.get("INTEROP_TEST_DATA")
    if env:
        return Path(env).expanduser().resolve()
    for parent in ROOT.parents:  # shared/data beside the checkout (or beside a parent folder)
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "data"


EXTERNAL = _external_data()
SHARED = EXTERNAL  # the name older tests use


def under_ci() -> bool:
    """True when running under CI (``CI=true``), where missing external data is a failure."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_external(*paths: Path) -> None:
    """Skip the running test (fail under CI) when any of the external ``paths`` is absent."""
    missing = [p for p in paths if not p.exists()]
    if not missing:
        return
    reason = (
        f"external test data {missing[0]} is absent (no licence to ship it): "
        "set INTEROP_TEST_DATA to the folder holding mapbayr/, pharmml/ and sbml/"
    )
    if under_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_postgres(available: bool) -> None:
    """Skip the running test (fail under CI, which starts the server) when PostgreSQL is unreachable."""
    if available:
        return
    reason = "PostgreSQL at 127.0.0.1:5432 is not reachable"
    if under_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def shared_data(relpath: str) -> Path:
    """The external file or folder ``relpath`` (e.g. ``"pharmml/UseCase1_0.8.1.xml"``); inside a
    test only: skips the test, or fails it under CI, when it is absent."""
    path = EXTERNAL / relpath
    require_external(path)
    return path


FHIR_SYNTHEA = PUBLIC / "fhir" / "synthea"
FHIR_R4_SPEC = PUBLIC / "fhir" / "r4-spec"
PGX = PUBLIC / "pgx"
SBML = PUBLIC / "sbml"
PHARMML = EXTERNAL / "pharmml"
MAPBAYR = EXTERNAL / "mapbayr"

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
# An optional corpus: a checkout of the pharmml/pharmml-example repository (PharmML with NM-TRAN
# twins, no licence). Neither the project nor CI's test data holds it, so a test needing it skips,
# under CI too (``require_corpus``); point INTEROP_PHARMML_CORPUS at a checkout to run those tests.
PHARMML_CORPUS = Path(os.environ.get("INTEROP_PHARMML_CORPUS", "") or PHARMML / "pharmml-example")
PHARMML_NMTRAN_TWINS = PHARMML_CORPUS / "mdl-to-pharmml-to-nmtran_9December"
# A second optional corpus: the DDMoRe Model Repository's public models as scraped from
# repository.ddmore.eu before it closed (dpastoor/ddmore_scraping: one folder per DDMODEL number,
# with the PharmML, MDL, NM-TRAN and MLXTRAN files and NONMEM's outputs; no licence stated).
# INTEROP_DDMORE_CORPUS names a checkout; tests needing it skip otherwise, under CI too.
DDMORE_CORPUS = Path(os.environ.get("INTEROP_DDMORE_CORPUS", "") or PHARMML / "ddmore-repository")
OPTIONAL_CORPORA = (PHARMML_CORPUS, DDMORE_CORPUS)
_CORPUS_SETTINGS = {PHARMML_CORPUS: "INTEROP_PHARMML_CORPUS", DDMORE_CORPUS: "INTEROP_DDMORE_CORPUS"}
PHARMML_ONECMT_IV = PHARMML_FIXTURES / "onecmt_iv_0.8.xml"
PHARMML_ORAL_EFFECT = PHARMML_FIXTURES / "pkmacros_oral_effect_0.8.xml"
PHARMML_IV_TWO_TARGETS = PHARMML_FIXTURES / "iv_two_targets_0.8.xml"  # one route, two places (adm 1, 2)
PHARMML_IV_TWO_TARGETS_REGIMEN = PHARMML_FIXTURES / "iv_two_targets_regimen_0.8.xml"  # a dose by each adm
PHARMML_ONECMT_DATASET = PHARMML_FIXTURES / "onecmt_iv_dataset_0.8.xml"  # WT only in its inline dataset
PHARMML_ODE_CMT_PIECEWISE = PHARMML_FIXTURES / "ode_cmt_piecewise_0.8.xml"  # AMT -> A1/A2 by CMT
PHARMML_DOSE_COLUMN = PHARMML_FIXTURES / "closed_form_dose_column_0.8.xml"  # DOSE typed a regressor

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
ABSORPTION_SBML = EXTERNAL / "sbml" / "absorption_first_order.xml"
BIOMD321_OMEX = SBML / "BIOMD0000000321.omex"
GENTAMICIN_ANTIMONY = MODELS / "gentamicin_1cmt.ant"
POSTGRES_URL = os.environ.get("INTEROP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

MAPBAYR_MODELS = ("001", "006", "301", "401")


def mapbayr_sbml(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.xml"


def mapbayr_card(model: str) -> Path:
    return MODELS / f"mapbayr_{model}.card.json"


def mapbayr_data(model: str) -> Path:
    """The mapbayr study's simulated TDM data for ``model`` (external: skips when absent)."""
    return shared_data(f"mapbayr/data_to_fit{model}.csv")


def mapbayr_phi(model: str) -> Path:
    """NONMEM's POSTHOC estimates for ``model`` (external: skips when absent)."""
    return shared_data(f"mapbayr/nonmem_posthoc{model}.phi")


# Which tests need external data (called by the root conftest before each test).


def _is_external(value: object) -> bool:
    if not isinstance(value, Path) or any(value.is_relative_to(c) for c in OPTIONAL_CORPORA):
        return False
    return value.is_relative_to(EXTERNAL) and value != EXTERNAL


def require_corpus(path: Path) -> None:
    """Skip the running test when ``path`` of an optional corpus (``OPTIONAL_CORPORA``) is absent.

    Unlike ``require_external`` this skips under CI too: CI's test data does not hold these corpora,
    and the skip names the setting that runs the test."""
    if not path.exists():
        setting = next(
            (name for root, name in _CORPUS_SETTINGS.items() if path.is_relative_to(root)),
            "INTEROP_PHARMML_CORPUS or INTEROP_DDMORE_CORPUS",
        )
        pytest.skip(f"optional corpus file {path} is absent: set {setting} to a checkout")


def _external_constants() -> dict[str, Path]:
    return {name: value for name, value in globals().items() if name.isupper() and _is_external(value)}


def _names(code: CodeType) -> Iterator[str]:
    """Every global and local name a function's code (and its nested functions) uses."""
    yield from code.co_names
    yield from code.co_varnames
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _names(const)


def external_paths_of(functions: Iterable[Any], params: dict[str, object]) -> list[Path]:
    """The external paths that a test's functions name (as constants of this module) or receive as
    parameters."""
    constants = _external_constants()
    needed = [v for v in params.values() if isinstance(v, Path) and _is_external(v)]
    for fn in functions:
        code = getattr(fn, "__code__", None)
        if code is not None:
            needed += [constants[n] for n in set(_names(code)) if n in constants]
    return needed


def check_external_paths(item: pytest.Item) -> None:
    """Skip (or under CI fail) ``item`` when an external path it needs is absent."""
    functions: list[Any] = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    for defs in info.name2fixturedefs.values() if info is not None else ():
        functions += [d.func for d in defs]
    callspec = getattr(item, "callspec", None)
    params = dict(callspec.params) if callspec is not None else {}
    require_external(*sorted(set(external_paths_of(functions, params))))
