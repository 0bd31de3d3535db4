"""Probability of target attainment: metrics against closed forms, the table against subject-by-subject
simulation of the same draws, Dask equal to one process, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from interop.cohort import Population
from interop.cohort.design import Design
from interop.cohort.population import draw_etas
from interop.cohort.pta import PtaStudy, PtaTarget, load_study, run_pta, write_pta
from interop.errors import SchemaError
from interop.schema import ModelCard
from interop.twin import bind_regimen, load_model, simulate
from interop.twin.recommend import exposure

STUDY = {
    "description": "gentamicin extended-interval dosing",
    "targets": [{"kind": "peak", "low": 16, "high": 1000}, {"kind": "trough", "low": 0, "high": 1}],
    "regimens": [
        {
            "name": "5 mg/kg q24h",
            "doses": [
                {
                    "route": "iv-infusion",
                    "amount": 5,
                    "per": "WT",
                    "duration_h": 0.5,
                    "interval_h": 24,
                    "additional": 3,
                }
            ],
        },
        {
            "name": "7 mg/kg q36h",
            "doses": [
                {
                    "route": "iv-infusion",
                    "amount": 7,
                    "per": "WT",
                    "duration_h": 0.5,
                    "interval_h": 36,
                    "additional": 2,
                }
            ],
        },
    ],
    "grid_points": 121,
}


def test_metrics_of_a_known_profile() -> None:
    """C(t) = 10 e^{-0.1 t} over 12 h: trough 10 e^-1.2, peak 10, AUC24 = 2 x 100 (1 - e^-1.2),
    time above 5 mg/L = ln(2)/0.1 h of 12 h."""
    grid = np.linspace(0, 12, 4001)
    values = (10 * np.exp(-0.1 * grid))[None, :]

    def metric(**target: object) -> float:
        return float(exposure(PtaTarget.model_validate(target).to_target(), grid, values)[0])

    assert metric(kind="trough", high=1) == pytest.approx(10 * np.exp(-1.2))
    assert metric(kind="peak", low=1) == pytest.approx(10)
    assert metric(kind="auc24", low=1) == pytest.approx(2 * 100 * (1 - np.exp(-1.2)), rel=1e-6)
    assert metric(kind="time_above", threshold=5.0, low=10, high=100) == pytest.approx(
        100 * np.log(2) / 0.1 / 12, rel=1e-3
    )


def test_table_equals_subject_by_subject_simulation(
    sbml: str, card: ModelCard, population: Population
) -> None:
    """The same draws (block 0 of seed 5), simulated one twin at a time, give the same PTA."""
    study = PtaStudy.model_validate(STUDY)
    n = 60
    result = run_pta(sbml, card, study, n, population, seed=5, block_size=n)
    rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(0,)))
    covs = population.draw_table(card, rng, n)
    etas = draw_etas(card, rng, size=n)
    model = load_model(sbml, card)
    for r, regimen in enumerate(study.regimens):
        lo, hi = regimen.window()
        grid = np.linspace(lo, hi, study.grid_points)
        met = np.ones(n, dtype=bool)
        for s in range(n):
            cov = {k: float(v[s]) for k, v in covs.items()}
            twin = bind_regimen(model, Design(doses=regimen.doses, sampling_h=(0.0,)).regimen(cov), cov)
            level = simulate(twin, grid, dict(zip(card.random_effects.etas, etas[s], strict=True))).values[
                "gentamicin"
            ]
            met[s] = 16 <= level.max() <= 1000 and 0 <= level[-1] <= 1
        assert result.table.loc[r, "PTA all targets"] == pytest.approx(met.mean())
    assert list(result.table["regimen"]) == ["5 mg/kg q24h", "7 mg/kg q36h"]
    assert list(result.table["window_h"]) == ["72-96", "72-108"]


@pytest.mark.slow
def test_local_cluster_equals_one_process(sbml: str, card: ModelCard, population: Population) -> None:
    study = PtaStudy.model_validate(STUDY)
    single = run_pta(sbml, card, study, 300, population, seed=2, block_size=100, scheduler="single")
    dask = run_pta(sbml, card, study, 300, population, seed=2, block_size=100, scheduler=None, workers=2)
    pd.testing.assert_frame_equal(single.table, dask.table)


def test_outputs_are_written_with_units(
    sbml: str, card: ModelCard, population: Population, tmp_path: Path
) -> None:
    result = run_pta(sbml, card, PtaStudy.model_validate(STUDY), 50, population)
    paths = write_pta(result, tmp_path)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads(paths["json"].read_text())
    assert payload["metric_units"] == {"peak": "mg/L", "trough": "mg/L"}
    assert payload["targets"][0]["label"] == "peak (last interval)"
    assert payload["n_subjects"] == 50
    assert len(pd.read_csv(paths["csv"])) == 2


def test_bad_study_file_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "study.yaml"
    bad.write_text("targets: [{kind: peak, low: 20, high: 10}]\nregimens: []\n")
    with pytest.raises(SchemaError) as err:
        load_study(bad)
    assert "study.yaml" in str(err.value)


def test_cli_on_a_registered_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`interop demo` registers the gentamicin model; `interop simulate pta` runs on it in-process."""
    from interop.cli import app

    monkeypatch.setenv("INTEROP_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    demo = runner.invoke(app, ["demo"])
    assert demo.exit_code == 0, demo.output
    study = tmp_path / "study.json"
    study.write_text(json.dumps(STUDY))
    cov = Path(__file__).resolve().parents[1] / "fixtures" / "cohort" / "covariates.yaml"
    out = tmp_path / "pta"
    res = runner.invoke(
        app,
        ["simulate", "pta", "--model", "gentamicin-1cmt", "--regimens", str(study), "--n", "200"]
        + ["--covariates", str(cov), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "7 mg/kg q36h: PTA" in res.output
    assert (out / "pta.png").exists()
    missing = runner.invoke(
        app, ["simulate", "pta", "--model", "gentamicin-1cmt", "--regimens", str(tmp_path / "nope.yaml")]
    )
    assert missing.exit_code == 1
    assert "nope.yaml" in missing.output


def test_ode_model_levels_from_ensembles_equal_subject_by_subject(
    sbml: str, card: ModelCard, population: Population, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gentamicin with saturable elimination (an ODE model): a block's levels from ensemble runs
    equal one run per subject."""
    import tellurium as te

    import interop.cohort.simulate as cohort_simulate
    from interop.cohort.pta import _levels

    antimony = te.sbmlToAntimony(sbml).replace("(CL/V)*A_central", "CL*Cc/(1 + Cc/9)")
    model = load_model(te.antimonyToSBML(antimony), card)  # not the cohort tests' model: no batch yet
    assert not model.ensembles
    regimen = PtaStudy.model_validate(STUDY).regimens[0]
    n = 10
    rng = np.random.default_rng(np.random.SeedSequence(2, spawn_key=(0,)))
    covs = population.draw_table(card, rng, n)
    etas = draw_etas(card, rng, size=n)
    params = {**covs, **{e: etas[:, j] for j, e in enumerate(card.random_effects.etas)}}
    grid = np.linspace(72, 96, 25)
    monkeypatch.setattr(cohort_simulate, "ENSEMBLE_FROM", 10**9)
    one_by_one = _levels(model, regimen, covs, params, grid, n)
    monkeypatch.setattr(cohort_simulate, "ENSEMBLE_FROM", 8)
    ensemble = _levels(model, regimen, covs, params, grid, n)
    assert model.ensembles  # the ensemble path ran (a compiled batch is kept on the model)
    np.testing.assert_allclose(ensemble, one_by_one, rtol=1e-7, atol=1e-9)
    assert np.ptp(one_by_one[:, 0, -1]) > 0  # subjects differ
