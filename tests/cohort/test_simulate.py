"""Virtual cohorts: truth, records that bind back to the model, failures recorded, resume."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from interop.cohort import Population, load_design, simulate_cohort
from interop.cohort.simulate import CohortSpec, simulate_batch
from interop.schema import ModelCard
from interop.schema.cohort import read_cohort
from interop.twin import bind_patient, load_model, simulate_observations
from tests.data import COHORT_DESIGN_SHORT


def _read(p: Path) -> pd.DataFrame:
    return pd.read_parquet(p, use_threads=False)


def test_cohort_tables_and_records_agree_with_the_model(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    design = load_design(COHORT_DESIGN_SHORT)
    res = simulate_cohort(
        sbml,
        card,
        design,
        12,
        tmp_path,
        population=population,
        seed=5,
        batch_size=5,
        scheduler="single",
        records=True,
    )
    assert (res.n_subjects, res.n_failed, res.n_levels) == (12, 0, 48)
    levels, subjects = _read(res.levels_path), _read(res.subjects_path)
    assert set(subjects.columns) >= {"cov_WT", "cov_SCR", "eta_ETA_CL", "eta_ETA_V", "status"}
    # The records bind back: the model's individual prediction with the true ETAs is the stored IPRED.
    model = load_model(sbml, card)
    assert res.cohort_dir is not None
    records = {r.patient.id: r for r in read_cohort(res.cohort_dir)}
    assert len(records) == 12
    for row in subjects.head(4).itertuples():
        twin = bind_patient(model, records[row.patient_id])
        assert twin.covariates["WT"].values[0] == pytest.approx(row.cov_WT)
        ipred = simulate_observations(twin, {"ETA_CL": row.eta_ETA_CL, "ETA_V": row.eta_ETA_V})
        stored = levels[levels.patient_id == row.patient_id].sort_values("time_h")
        np.testing.assert_allclose(ipred, stored["ipred"], rtol=1e-6)
        observed = [o.value for o in twin.observations]
        np.testing.assert_allclose(observed, np.maximum(stored["dv"], 0), rtol=1e-9)


def test_residual_error_has_the_cards_size(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    design = load_design(COHORT_DESIGN_SHORT)
    res = simulate_cohort(sbml, card, design, 150, tmp_path, population=population, scheduler="single")
    lv = _read(res.levels_path)
    err = card.error_for("gentamicin")
    assert err is not None
    sd = np.sqrt(err.additive_sd**2 + (err.proportional_sd * lv["ipred"]) ** 2)
    z = (lv["dv"] - lv["ipred"]) / sd
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.08


def test_an_ode_failure_is_recorded_not_fatal(sbml: str, card: ModelCard, tmp_path: Path) -> None:
    """A weight of 0 makes V = 0 and concentrations infinite: that subject fails, the others run."""
    from interop.cohort import CovariateDistribution, Design

    design = Design.model_validate({"doses": [{"route": "iv-bolus", "amount": 100}], "sampling_h": [1, 4]})
    pop = Population({"WT": CovariateDistribution(dist="categorical", values={"70": 0.7, "0": 0.3})})
    out = simulate_batch(CohortSpec(sbml, card.model_dump_json(), design, pop, 2), 0, 20)
    subjects = out["subjects"]
    failed = subjects[subjects.status == "failed"]
    assert 0 < len(failed) < 20
    assert failed["error"].str.len().min() > 0
    assert set(out["levels"].patient_id) == set(subjects[subjects.status == "ok"].patient_id)


def test_interrupted_run_resumes_without_recomputing(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    design = load_design(COHORT_DESIGN_SHORT)
    seen: list[tuple[int, int]] = []

    def stop_after_two(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate_cohort(
            sbml,
            card,
            design,
            20,
            tmp_path,
            population=population,
            batch_size=5,
            scheduler="single",
            progress=stop_after_two,
        )
    ckpt = next((tmp_path / "checkpoints").iterdir())
    done_files = sorted(ckpt.glob("*.done"))
    assert len(done_files) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in ckpt.glob("batch-*.parquet")}

    resumed: list[tuple[int, int]] = []
    res = simulate_cohort(
        sbml,
        card,
        design,
        20,
        tmp_path,
        population=population,
        batch_size=5,
        scheduler="single",
        progress=lambda d, t: resumed.append((d, t)),
    )
    assert resumed[0] == (2, 4) and resumed[-1] == (4, 4)  # started from the 2 finished batches
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())  # not rewritten
    fresh = simulate_cohort(
        sbml, card, design, 20, tmp_path / "fresh", population=population, batch_size=5, scheduler="single"
    )
    pd.testing.assert_frame_equal(_read(res.levels_path), _read(fresh.levels_path))
