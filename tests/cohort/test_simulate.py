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


def test_ode_batches_run_as_ensembles_with_the_same_levels(
    sbml: str, card: ModelCard, population: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ODE model (gentamicin with saturable elimination): the ensemble path gives the levels,
    DV draws and statuses of the subject-by-subject path."""
    import tellurium as te

    import interop.cohort.simulate as cohort_simulate

    antimony = te.sbmlToAntimony(sbml).replace("(CL/V)*A_central", "CL*Cc/(1 + Cc/8)")
    assert antimony.count("CL*Cc/(1 + Cc/8)") == 1
    spec = CohortSpec(
        te.antimonyToSBML(antimony), card.model_dump_json(), load_design(COHORT_DESIGN_SHORT), population, 3
    )
    ran: list[int] = []
    original = cohort_simulate._levels_ensemble

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        ran.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cohort_simulate, "_levels_ensemble", counted)
    monkeypatch.setattr(cohort_simulate, "ENSEMBLE_FROM", 10**9)
    one_by_one = simulate_batch(spec, 0, 12)
    assert not ran
    monkeypatch.setattr(cohort_simulate, "ENSEMBLE_FROM", 8)
    ensemble = simulate_batch(spec, 0, 12)
    assert ran
    a, b = one_by_one["levels"], ensemble["levels"]
    assert list(a.patient_id) == list(b.patient_id) and len(a) == 12 * len(spec.design.sampling_h)
    for col in ("pred", "ipred", "dv"):
        np.testing.assert_allclose(b[col], a[col], rtol=1e-7, atol=1e-9)
    assert list(a.below_lloq) == list(b.below_lloq)
    assert list(ensemble["subjects"].status) == ["ok"] * 12


def test_an_sbml_form_error_draws_with_the_simulated_sd(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    """SD = the SBML quantity Cc (the prediction itself): the ensemble path simulates it per subject."""
    sd_card = card.replace(
        residual_error=[{"observable": "gentamicin", "model": "sbml", "sd_parameter": "Cc"}]
    )
    design = load_design(COHORT_DESIGN_SHORT)
    res = simulate_cohort(sbml, sd_card, design, 150, tmp_path, population=population, scheduler="single")
    lv = _read(res.levels_path)
    z = (lv["dv"] - lv["ipred"]) / lv["ipred"]
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.08
