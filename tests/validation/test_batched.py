"""The batched validation path against the per-patient (reference) path on the same cohort.

Everything that does not depend on a MAP fit (a priori predictions, replicates, NPDE,
prediction intervals, VPC) must agree to 1e-9. MAP-based columns agree to the reference
optimiser's own precision: BFGS stops at its gradient tolerance, up to ~1e-5 from the mode in
ETA, where the batched Newton fits land on the mode (tests/twin/test_batch_map.py).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from interop.cohort.simulate import compile_spec
from interop.schema import ModelCard, PatientRecord
from interop.twin.batch_map import batchable
from interop.validation import ValidationSpec, screen_patient, validate_batch
from interop.validation.summary import summarise
from tests.validation.conftest import make_bad_records


def _time_varying(rec: PatientRecord) -> PatientRecord:
    """A creatinine that rises 20 h after the first: covariates change after time 0, which the
    batched path does not cover (the patient goes the per-patient way inside a batched run)."""
    extra = next(m for m in rec.measurements if m.id == "cov-SCR").model_dump()
    extra.update(id="cov-SCR-2", value=extra["value"] * 1.5, time=extra["time"] + dt.timedelta(hours=20))
    return rec.replace(
        patient={**rec.patient.model_dump(), "id": rec.patient.id + "-tv"},
        measurements=[*(m.model_dump() for m in rec.measurements), extra],
    )


@pytest.fixture(scope="module")
def both(
    sbml: str, card: ModelCard, truth_records: list[PatientRecord]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    cohort = [
        *truth_records[:14],
        _time_varying(truth_records[20]),
        *make_bad_records(truth_records).values(),
    ]
    records = tuple(r.model_dump_json() for r in cohort)
    spec = ValidationSpec(sbml, card.model_dump_json(), seed=3, n_sim=120)
    reference = validate_batch(ValidationSpec(**{**spec.__dict__, "batched": False}), records)
    return reference, validate_batch(spec, records)


def _close(a: pd.Series, b: pd.Series, rel: float) -> None:
    x, y = a.to_numpy(float), b.to_numpy(float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    ok = ~np.isnan(x)
    assert np.allclose(x[ok], y[ok], rtol=rel, atol=0)


def test_patients_and_exclusions_are_the_same(both: tuple[dict, dict]) -> None:
    ref, new = both[0]["patients"], both[1]["patients"]
    cols = ["patient_id", "status", "reason", "detail", "n_levels", "n_used", "map_converged", "subgroups"]
    pd.testing.assert_frame_equal(ref[cols], new[cols])
    assert (ref.status == "excluded").sum() == 5 and (ref.status == "included").sum() == 15
    _close(ref.ofv, new.ofv, 1e-6)


def test_levels_agree_to_1e_9_where_no_map_fit_enters(both: tuple[dict, dict]) -> None:
    ref, new = both[0]["levels"], both[1]["levels"]
    pd.testing.assert_frame_equal(
        ref[["patient_id", "k", "time_h", "used"]], new[["patient_id", "k", "time_h", "used"]]
    )
    for col in ("dv", "tad_h", "pred", "npde", "pi_low", "pi_high"):
        _close(ref[col], new[col], 1e-9)
    assert np.allclose(np.vstack(ref.sims), np.vstack(new.sims), rtol=1e-6, atol=0)  # stored as float32
    for col in ("ipred", "iter_pred"):
        _close(ref[col], new[col], 1e-4)


def test_metrics_agree(both: tuple[dict, dict]) -> None:
    a = summarise(both[0]["levels"], both[0]["patients"], n_boot=200, seed=1)
    b = summarise(both[1]["levels"], both[1]["patients"], n_boot=200, seed=1)
    prior = a.metrics.setting == "a-priori"
    for col in ("value", "ci_low", "ci_high"):
        _close(a.metrics[col][prior], b.metrics[col][prior], 1e-9)
        _close(a.metrics[col][~prior], b.metrics[col][~prior], 1e-3)
    for obs_id, table in a.vpc.items():
        pd.testing.assert_frame_equal(table, b.vpc[obs_id], rtol=1e-9)


def test_a_patient_the_batch_does_not_cover_takes_the_per_patient_path(
    both: tuple[dict, dict], sbml: str, card: ModelCard, truth_records: list[PatientRecord]
) -> None:
    rec = _time_varying(truth_records[20])
    model = compile_spec(sbml, card.model_dump_json())
    assert not batchable(model, screen_patient(model, rec))
    pid = rec.patient.id
    ref, new = (b["levels"][b["levels"].patient_id == pid].drop(columns="sims") for b in both)
    assert len(ref) == 4
    pd.testing.assert_frame_equal(ref, new)  # the same code path: identical
