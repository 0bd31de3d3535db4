"""Dask distributed: a real 2-worker LocalCluster gives exactly the single-process result."""

from pathlib import Path

import pandas as pd
import pytest

from interop.cohort import Population, load_design, simulate_cohort
from interop.cohort.scale import BatchRunner
from interop.errors import InteropError
from interop.schema import ModelCard
from tests.data import COHORT_DESIGN_SHORT


@pytest.mark.slow
def test_local_cluster_equals_single_process(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    design = load_design(COHORT_DESIGN_SHORT)
    single = simulate_cohort(
        sbml,
        card,
        design,
        60,
        tmp_path / "single",
        population=population,
        seed=11,
        batch_size=60,
        scheduler="single",
    )
    progress: list[tuple[int, int]] = []
    dask = simulate_cohort(
        sbml,
        card,
        design,
        60,
        tmp_path / "dask",
        population=population,
        seed=11,
        batch_size=7,
        scheduler=None,
        workers=2,
        progress=lambda d, t: progress.append((d, t)),
    )
    for a, b in ((single.levels_path, dask.levels_path), (single.subjects_path, dask.subjects_path)):
        pd.testing.assert_frame_equal(
            pd.read_parquet(a, use_threads=False), pd.read_parquet(b, use_threads=False)
        )
    assert progress[-1] == (9, 9)


def test_bad_scheduler_address_is_a_clear_error() -> None:
    with pytest.raises(InteropError, match="scheduler"):
        BatchRunner("http://nowhere:1")
