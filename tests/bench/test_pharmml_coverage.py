"""The PharmML coverage bench's covariates: a covariate without a reference on the card takes the first
subject's value in the model's own dataset (inline rows, or the external file next to the PharmML)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from registry.formats.pharmml import convert
from tests.data import DDMORE_CORPUS, PHARMML_ONECMT_DATASET, ROOT, require_corpus


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/pharmml_coverage.py (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("pharmml_coverage", ROOT / "bench" / "pharmml_coverage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_inline_dataset_gives_the_first_subjects_first_value(bench: ModuleType) -> None:
    raw = PHARMML_ONECMT_DATASET.read_bytes()
    conv = convert(raw)
    assert [(c.name, c.reference) for c in conv.card.covariates] == [("WT", None)]
    # subject 7's first row has no WT ("."): its next row's 82, not subject 8's 55
    assert bench.dataset_covariates(PHARMML_ONECMT_DATASET, raw, conv.column_mappings, {"WT"}) == {"WT": 82.0}
    assert bench.dataset_covariates(PHARMML_ONECMT_DATASET, raw, conv.column_mappings, set()) == {}
    result = bench.try_file(PHARMML_ONECMT_DATASET, "continuous")
    assert (result.status, result.note) == ("ok", bench.DATASET_COVARIATES)


def test_external_dataset_next_to_the_file(bench: ModuleType, tmp_path: Path) -> None:
    """DDMoRe's Friberg model (186): CLI, V1I and V2I are columns of its CSV only; without the CSV
    next to it the bench leaves them at the SBML's 0 and the simulation fails at t = 0."""
    folder = DDMORE_CORPUS / "186"
    path = folder / "Executable_Myelosuppression.xml"
    require_corpus(path)
    raw = path.read_bytes()
    conv = convert(raw)
    wanted = {"CLI", "V1I", "V2I"}
    found = bench.dataset_covariates(path, raw, conv.column_mappings, wanted)
    assert found == {"V2I": 909.0, "V1I": 545.0, "CLI": 471.0}  # subject 1's first record
    assert bench.try_file(path, "continuous").note == bench.DATASET_COVARIATES
    alone = tmp_path / path.name
    shutil.copyfile(path, alone)
    assert bench.dataset_covariates(alone, raw, conv.column_mappings, wanted) == {}
    assert bench.try_file(alone, "continuous").status == "simulate-failed"
