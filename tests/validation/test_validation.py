"""End to end on a virtual cohort with a known truth, with the real MAP estimator and roadrunner."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from interop.schema import ModelCard, PatientRecord, ValidationRecord
from interop.validation import ValidationOutcome, run_validation
from tests.validation.conftest import make_bad_records


@pytest.fixture(scope="session")
def outcome(
    tmp_path_factory: pytest.TempPathFactory, sbml: str, card: ModelCard, truth_records: list[PatientRecord]
) -> ValidationOutcome:
    bad = make_bad_records(truth_records)
    out = tmp_path_factory.mktemp("validation")
    return run_validation(
        sbml,
        card,
        [*truth_records, *bad.values()],
        out,
        model_version=1,
        site="site-b",
        seed=7,
        n_sim=150,
        n_boot=300,
        scheduler="single",
        batch_size=10,
    )


def _metric(o: ValidationOutcome, setting: str, name: str) -> pd.Series:
    m = o.summary.metrics
    return m[(m.setting == setting) & (m.name == name)].iloc[0]


def test_counts_add_up_and_bad_input_is_reported_per_patient(outcome: ValidationOutcome) -> None:
    s = outcome.summary
    assert s.n_read == 45 and s.n_included == 40
    assert s.exclusions == {
        "covariate-outside-domain": 1,
        "drug-mismatch": 1,
        "no-levels": 2,
        "unit-mismatch": 1,
    }
    excluded = outcome.patients[outcome.patients.status == "excluded"].set_index("patient_id")
    assert excluded.loc[[i for i in excluded.index if i.endswith("-heavy")][0], "detail"].startswith("WT=150")
    assert "above the limit" in excluded.loc[[i for i in excluded.index if i.endswith("-blq")][0], "detail"]
    # Excluded patients have no level in the metrics.
    assert not outcome.levels.patient_id.str.contains("-drug|-unit|-heavy|-blq|-nolevels").any()
    assert s.n_levels + s.n_levels_unused == len(outcome.levels)


def test_a_posteriori_is_unbiased_and_better_than_a_priori_on_data_from_the_model(
    outcome: ValidationOutcome,
) -> None:
    post_bias = _metric(outcome, "a-posteriori", "mdpe_percent")
    assert abs(post_bias.value) < 5
    assert abs(_metric(outcome, "a-posteriori", "mpe_percent").value) < 8
    for name in ("mape_percent", "rrmse_percent"):
        assert _metric(outcome, "a-posteriori", name).value < 0.6 * _metric(outcome, "a-priori", name).value
    assert (
        _metric(outcome, "a-posteriori", "within_20_percent").value
        > _metric(outcome, "a-priori", "within_20_percent").value + 20
    )
    # Iterative forecasting sits between: it uses fewer levels than a posteriori, more than a priori.
    it = _metric(outcome, "iterative", "mape_percent").value
    assert (
        _metric(outcome, "a-posteriori", "mape_percent").value
        < it
        < _metric(outcome, "a-priori", "mape_percent").value
    )
    used = outcome.levels[outcome.levels.used]
    assert _metric(outcome, "iterative", "mape_percent").n == (used.k > 0).sum()  # a first level has no prior
    assert _metric(outcome, "a-posteriori", "mape_percent").n == len(used) >= 40 * 3


def test_map_recovers_the_true_etas(outcome: ValidationOutcome, truth_cohort: Path) -> None:
    truth = pd.read_parquet(truth_cohort / "subjects.parquet", use_threads=False).set_index("patient_id")
    inc = outcome.patients[outcome.patients.status == "included"]
    est = np.array([json.loads(e)["ETA_CL"] for e in inc.etas])
    true = truth.loc[inc.patient_id, "eta_ETA_CL"].to_numpy()
    assert np.corrcoef(est, true)[0, 1] > 0.8


def test_npde_and_vpc_coverage_are_nominal(outcome: ValidationOutcome) -> None:
    n = outcome.summary.npde["gentamicin"]
    assert abs(n["mean"]) < 0.2 and abs(n["variance"] - 1) < 0.3
    assert 82 <= outcome.summary.coverage_90["gentamicin"] <= 97
    vpc = outcome.summary.vpc["gentamicin"]
    inside = (vpc.sim_p50_lo <= vpc.obs_p50) & (vpc.obs_p50 <= vpc.sim_p50_hi)
    assert inside.mean() >= 0.75


def test_report_is_one_self_contained_file_with_pngs_beside(outcome: ValidationOutcome) -> None:
    html = outcome.report_path.read_text()
    out = outcome.out_dir
    for png in ("obs_vs_pred.png", "residuals_vs_time.png", "vpc.png", "npde_hist.png", "npde_qq.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count("data:image/png;base64,") == 5
    assert not re.search(r"""(src|href)=['"](?!data:)""", html)  # nothing outside the file
    assert "unit-mismatch" in html and "covariate-outside-domain" in html
    assert outcome.summary.metrics.shape[0] == 21


def test_validation_record_holds_aggregates_only(outcome: ValidationOutcome, sbml: str) -> None:
    rec = ValidationRecord.model_validate_json(outcome.record_path.read_text())
    assert (rec.n_patients, rec.n_excluded_patients, rec.site) == (40, 5, "site-b")
    assert sum(rec.exclusions.values()) == rec.n_excluded_patients
    assert {m.setting for m in rec.metrics} == {"a-priori", "a-posteriori", "iterative", "simulation"}
    text = outcome.record_path.read_text()
    assert not any(pid in text for pid in outcome.patients.patient_id)
    import hashlib

    assert rec.model_sha256 == hashlib.sha256(sbml.encode()).hexdigest()


@pytest.mark.slow
def test_dask_run_equals_single_process(
    sbml: str, card: ModelCard, truth_records: list[PatientRecord], tmp_path: Path
) -> None:
    recs = truth_records[:6]
    kw: dict[str, Any] = dict(model_version=1, site="s", seed=3, n_sim=50, n_boot=50)
    a = run_validation(sbml, card, recs, tmp_path / "a", scheduler="single", batch_size=6, **kw)
    b = run_validation(sbml, card, recs, tmp_path / "b", scheduler=None, workers=2, batch_size=2, **kw)
    pd.testing.assert_frame_equal(a.levels.drop(columns="sims"), b.levels.drop(columns="sims"))
    pd.testing.assert_frame_equal(a.summary.metrics, b.summary.metrics)
    assert a.record.dataset_fingerprint == b.record.dataset_fingerprint


def test_a_cohort_with_no_usable_patient_still_reports(
    sbml: str, card: ModelCard, truth_records: list[PatientRecord], tmp_path: Path
) -> None:
    bad = list(make_bad_records(truth_records).values())
    res = run_validation(
        sbml, card, bad, tmp_path, model_version=1, site="s", n_sim=30, n_boot=10, scheduler="single"
    )
    assert res.summary.n_included == 0 and sum(res.summary.exclusions.values()) == 5
    assert res.record.n_patients == 0 and res.record.metrics == ()
    assert "no-levels" in res.report_path.read_text()


@pytest.mark.slow
def test_a_patient_whose_model_cannot_be_simulated_is_recorded_not_fatal(
    sbml: str, card: ModelCard, truth_records: list[PatientRecord], tmp_path: Path
) -> None:
    """Without a validity domain, a weight of 0 reaches the ODEs (V = 0): that patient fails alone."""
    open_card = card.replace(validity={"population": "", "covariate_ranges": {}})
    rec = truth_records[0]
    zero = rec.replace(
        patient={**rec.patient.model_dump(), "id": rec.patient.id + "-zero"},
        measurements=[
            {**m.model_dump(), "value": 0.0} if m.id == "cov-WT" else m.model_dump() for m in rec.measurements
        ],
    )
    res = run_validation(
        sbml,
        open_card,
        [zero, *truth_records[1:3]],
        tmp_path,
        model_version=1,
        site="s",
        n_sim=30,
        n_boot=10,
        scheduler="single",
        iterative=False,
    )
    assert res.summary.exclusions == {"ode-failure": 1} and res.summary.n_included == 2
    row = res.patients.set_index("patient_id").loc[zero.patient.id]
    assert "non-finite" in row["detail"]


def test_shared_images_are_the_vpc_and_npde_plots_and_name_no_patient(
    outcome: ValidationOutcome, card: ModelCard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a site sends beside its record: only VPC and NPDE PNGs, whose every drawn text (titles,
    labels, ticks, legends) and PNG metadata name no patient. A spy on ``savefig`` reads each
    figure's texts before the real save (the pixels themselves cannot be read back as text)."""
    import matplotlib.figure
    import matplotlib.text

    from interop.validation import shared_images
    from interop.validation.report import write_plots

    texts: dict[str, list[str]] = {}
    real = matplotlib.figure.Figure.savefig

    def spy(fig: matplotlib.figure.Figure, path: Any, *a: Any, **k: Any) -> None:
        fig.canvas.draw()
        texts[Path(path).name] = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        real(fig, path, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    plots = write_plots(outcome.levels, outcome.summary, {o.id: o.unit for o in card.observables}, tmp_path)
    images = shared_images(plots)
    assert [t for t, _ in images] == [t for t in plots if t.startswith(("VPC", "NPDE"))] and len(
        images
    ) == 3  # VPC/pcVPC, NPDE histogram, NPDE QQ plot of the one observable
    assert all(data == plots[t].read_bytes() and data.startswith(b"\x89PNG") for t, data in images)
    ids = [str(p) for p in outcome.patients.patient_id]
    assert len(ids) == 45 and all(len(p) >= 4 for p in ids), ids[:5]  # ids long enough to search for
    shared = {plots[t].name for t, _ in images}
    drawn = [s for name in shared for s in texts[name]]
    assert any("NPDE" in s for s in drawn) and any("VPC" in s for s in drawn)  # the spy saw them
    assert not [(p, s) for p in ids for s in drawn if p in s]
    assert not any(p.encode() in data for p in ids for _, data in images)


def _with_sd_rule(sbml: str) -> str:
    """The model with W = sqrt(0.2^2 + (0.1*Cc)^2), the card's combined error as an SBML quantity."""
    import libsbml

    doc = libsbml.readSBMLFromString(sbml)
    model = doc.getModel()
    p = model.createParameter()
    p.setId("W")
    p.setConstant(False)
    rule = model.createAssignmentRule()
    rule.setVariable("W")
    rule.setMath(libsbml.parseL3Formula("sqrt(0.2^2 + (0.1*Cc)^2)"))
    return str(libsbml.writeSBMLToString(doc))


def test_an_sbml_form_error_validates_as_the_same_closed_form(
    sbml: str, card: ModelCard, truth_records: list[PatientRecord], tmp_path: Path
) -> None:
    """The combined error written as an SBML quantity (simulated beside the levels, per-patient
    path) gives the closed-form card's predictions, NPDE and intervals (batched path)."""
    err = card.residual_error[0]
    assert (err.form, err.additive_sd, err.proportional_sd) == ("combined-variance", 0.2, 0.1)
    sd_card = card.replace(
        residual_error=[{"observable": err.observable, "model": "sbml", "sd_parameter": "W"}]
    )
    kw: dict[str, Any] = dict(
        model_version=1, site="s", n_sim=40, n_boot=10, scheduler="single", iterative=False
    )
    recs = truth_records[:3]
    a = run_validation(sbml, card, recs, tmp_path / "a", **kw)
    b = run_validation(_with_sd_rule(sbml), sd_card, recs, tmp_path / "b", **kw)
    assert b.summary.n_included == a.summary.n_included == 3
    cols = ["pred", "ipred", "npde", "pi_low", "pi_high"]
    la, lb = (o.levels.sort_values(["patient_id", "k"]).reset_index(drop=True) for o in (a, b))
    np.testing.assert_allclose(lb[cols].to_numpy(float), la[cols].to_numpy(float), rtol=1e-4, atol=1e-6)
