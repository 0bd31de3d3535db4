"""Event-time ETAs: which ETAs move lag times and infusion ends, and where the objective breaks.

The breakpoints are checked against hand-derived values: with ALAG = exp(ETA_LAG) (TVLAG 1 h) a
dose at t_d arrives at a sample s when ETA_LAG = log(s - t_d); with D2 = TVD2 exp(ETA_D2) the
zero-order input ends at s when ETA_D2 = log((s - t_d) / TVD2).
"""

from __future__ import annotations

import numpy as np
import pytest
import tellurium as te

from interop.schema import ModelCard, ReferenceDose, parse_json
from interop.twin import bind_regimen, load_model
from interop.twin.event_times import event_parameters, event_time_etas, event_times, segment_midpoints
from tests.data import mapbayr_card, mapbayr_sbml
from tests.twin.test_kinks import LAG_MODEL

NAMES = ["ETA_CL", "ETA_V", "ETA_KA", "ETA_LAG"]
OMEGA = np.diag([0.2, 0.2, 0.2, 0.2])


@pytest.fixture(scope="module")
def lag_model():  # type: ignore[no-untyped-def]
    card = parse_json(ModelCard, mapbayr_card("001").read_text()).model_dump()
    card["id"] = "lag-test"
    card["dosing"][0]["lag_time_h"] = "ALAG"
    card["random_effects"]["etas"] = NAMES
    card["random_effects"]["omega"] = OMEGA.tolist()
    return load_model(te.antimonyToSBML(LAG_MODEL), ModelCard.model_validate(card))


def _oral(model, times: tuple[float, ...]):  # type: ignore[no-untyped-def]
    doses = tuple(ReferenceDose(route="oral", amount=100.0, time_h=t) for t in times)
    return bind_regimen(model, doses, {}, patient_id="p")


def test_only_the_lag_eta_moves_event_times(lag_model) -> None:  # type: ignore[no-untyped-def]
    twin = _oral(lag_model, (0.0, 12.0))
    assert event_parameters(lag_model.card) == ("ALAG",)
    assert event_time_etas(twin, NAMES, OMEGA) == [3]
    times = event_times(twin, NAMES, np.array([[0.3, 0.1, 0.0, np.log(1.5)]]))
    np.testing.assert_allclose(times, [[1.5, 13.5]], rtol=1e-12)


def test_a_model_without_event_time_parameters_pays_nothing() -> None:
    card = parse_json(ModelCard, mapbayr_card("001").read_text())
    model = load_model(mapbayr_sbml("001").read_text(), card)
    twin = _oral(model, (0.0,))
    assert event_parameters(card) == ()
    assert event_time_etas(twin, list(card.random_effects.etas), card.random_effects.omega_matrix()) == []


def test_breakpoints_where_a_dose_arrives_at_a_sample(lag_model) -> None:  # type: ignore[no-untyped-def]
    twin = _oral(lag_model, (0.0, 12.0))
    half = 3 * np.sqrt(0.2)  # breakpoints within |eta| <= 3 omega only: log(12.5) lies outside
    samples = [1.5, 12.5, 13.2, 20.0]
    breaks = sorted([np.log(1.5), np.log(0.5), np.log(1.2)])
    edges = np.array([-half, *breaks, half])
    mids = (edges[:-1] + edges[1:]) / 2
    got = segment_midpoints(twin, NAMES, OMEGA, np.zeros(4), 3, samples)
    # ETA_LAG = 0 lies in (log 0.5, log 1.2): that piece has been searched already and is left out
    np.testing.assert_allclose(got, np.delete(mids, 1), atol=1e-3)
    at_mode = segment_midpoints(twin, NAMES, OMEGA, np.array([0, 0, 0, 1.0]), 3, samples)
    np.testing.assert_allclose(at_mode, np.delete(mids, 3), atol=1e-3)
    assert len(segment_midpoints(twin, NAMES, OMEGA, np.zeros(4), 3, [30.0])) == 0  # no crossing


def test_the_end_of_a_modelled_zero_order_input_is_an_event_time() -> None:
    card = parse_json(ModelCard, mapbayr_card("006").read_text())
    model = load_model(mapbayr_sbml("006").read_text(), card)
    names = list(card.random_effects.etas)
    twin = _oral(model, (0.0,))
    assert event_time_etas(twin, names, card.random_effects.omega_matrix()) == [names.index("ETA_D2")]
    k = names.index("ETA_D2")
    eta = np.zeros(len(names))
    d2 = event_times(twin, names, eta)[0, -1]  # the arrivals (lag 0) and the end of the input
    eta[k] = 0.3
    assert event_times(twin, names, eta)[0, -1] == pytest.approx(d2 * np.exp(0.3), rel=1e-9)
    mids = segment_midpoints(
        twin, names, card.random_effects.omega_matrix(), np.zeros(len(names)), k, [d2 * 1.5]
    )
    half = 3 * np.sqrt(card.random_effects.omega_matrix()[k, k])
    b = np.log(1.5)
    np.testing.assert_allclose(mids, [(b + half) / 2], atol=1e-3)  # the piece beyond the crossing
