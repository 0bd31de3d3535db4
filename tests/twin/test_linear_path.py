"""The closed-form linear path against libRoadRunner's integrator (the reference)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from converters.nonmem import read_event_table
from interop.errors import TwinError
from interop.schema import ReferenceDose
from interop.twin import CompiledModel, bind_patient, bind_regimen, check_reference_outputs, simulate
from interop.twin.linear import linear_system
from interop.workflows.twin import event_table_mapping
from tests.data import MAPBAYR_MODELS, mapbayr_data


@pytest.mark.parametrize("model", MAPBAYR_MODELS)
def test_mapbayr_subjects_linear_equals_roadrunner(
    model: str, mapbayr: Callable[[str], CompiledModel]
) -> None:
    m = mapbayr(model)
    assert linear_system(m) is not None
    records = read_event_table(
        mapbayr_data(model), event_table_mapping(m.card), ignore=("s2_sampling",)
    ).records
    rng = np.random.default_rng(7)
    for record in records[:3]:
        twin = bind_patient(m, record)
        etas = dict(
            zip(m.card.random_effects.etas, rng.normal(0, 0.4, len(m.card.random_effects.etas)), strict=True)
        )
        times = np.concatenate([np.linspace(0, 260, 131), [o.time_h for o in twin.observations]])
        fast = simulate(twin, times, etas)
        slow = simulate(twin, times, etas, method="roadrunner")
        for obs in fast.values:
            np.testing.assert_allclose(fast.values[obs], slow.values[obs], rtol=1e-6, atol=1e-9)


def test_infusions_and_boluses_with_covariates(gentamicin: CompiledModel) -> None:
    doses = (
        ReferenceDose(route="iv-infusion", amount=200, time_h=0, duration_h=0.5),
        ReferenceDose(route="iv-bolus", amount=100, time_h=8),
        ReferenceDose(route="iv-infusion", amount=150, time_h=16, duration_h=2.0),
    )
    twin = bind_regimen(gentamicin, doses, {"WT": 82, "SCR": 1.3, "AGE": 61, "SEX": 1})
    times = np.array([0, 0.25, 0.5, 1, 7.99, 8, 8.01, 12, 16, 17, 18, 24, 30])
    etas = {"ETA_CL": 0.3, "ETA_V": -0.2}
    fast = simulate(twin, times, etas).values["gentamicin"]
    slow = simulate(twin, times, etas, method="roadrunner").values["gentamicin"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-9)
    assert fast[0] == 0.0
    assert fast[5] < fast[6]  # the level at a dose time is the pre-dose level


def test_reference_outputs_reproduce(gentamicin: CompiledModel) -> None:
    checks = check_reference_outputs(gentamicin)
    assert checks and all(c.passed for c in checks)


def test_linear_only_method_refuses_nothing_silently(gentamicin: CompiledModel) -> None:
    twin = bind_regimen(gentamicin, (ReferenceDose(route="iv-bolus", amount=100, time_h=0),), {})
    with pytest.raises(ValueError):
        simulate(twin, [np.nan])
    out = simulate(twin, [1.0, 2.0], method="linear")
    assert np.all(np.isfinite(out.values["gentamicin"]))
    with pytest.raises(TwinError):
        simulate(twin, [1.0], parameters={"NOT_A_PARAMETER": 1.0}, method="linear")


def test_oral_with_lag_and_bioavailability(gentamicin: CompiledModel) -> None:
    from interop.twin import load_model
    from tests.data import GENTAMICIN_SBML

    dosing = [
        *(d.model_dump() for d in gentamicin.card.dosing),
        {"route": "oral", "target": "A_central", "bioavailability": 0.6, "lag_time_h": 0.75},
    ]
    model = load_model(GENTAMICIN_SBML.read_text(), gentamicin.card.replace(dosing=dosing))
    doses = (
        ReferenceDose(route="oral", amount=500, time_h=0),
        ReferenceDose(route="oral", amount=500, time_h=12),
    )
    twin = bind_regimen(model, doses, {"WT": 70, "SCR": 1.0, "AGE": 50, "SEX": 0})
    times = np.array([0.5, 0.75, 0.76, 6, 12.5, 12.75, 12.8, 20])
    fast = simulate(twin, times).values["gentamicin"]
    slow = simulate(twin, times, method="roadrunner").values["gentamicin"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6, atol=1e-9)
    assert fast[0] == 0 and fast[1] == 0 and fast[2] > 0  # nothing before the lag; the lag time is pre-dose
    k = 5 * ((140 - 50) * 70 / 72 / 100) / 20  # CL/V: Cockcroft-Gault at 70 kg, 50 years, creatinine 1
    assert fast[2] == pytest.approx(0.6 * 500 / 20 * np.exp(-k * 0.01), rel=1e-9)


def test_equal_rate_constants_fall_back_to_matrix_exponentials(
    mapbayr: Callable[[str], CompiledModel],
) -> None:
    """KA == CL/V makes A defective (no eigenbasis): the path must still be exact."""
    m = mapbayr("001")
    twin = bind_regimen(m, tuple(ReferenceDose(route="oral", amount=1000, time_h=t) for t in (0, 24)), {})
    etas = {"ETA_KA": float(np.log(4 / 70))}
    times = np.array([1.0, 5.0, 23.0, 30.0, 60.0])
    fast = simulate(twin, times, etas).values["parent"]
    slow = simulate(twin, times, etas, method="roadrunner").values["parent"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    k = 4 / 70
    np.testing.assert_allclose(fast[:3], 1000 / 70 * k * times[:3] * np.exp(-k * times[:3]), rtol=1e-8)
