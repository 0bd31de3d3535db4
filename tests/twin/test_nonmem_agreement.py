"""The MAP estimator against NONMEM's POSTHOC answers for the four mapbayr models (100 subjects each).

Acceptance (issue 7): ETAs within 0.001 for >= 95% of all ETA values and within 0.1 for >= 99.5%;
subject OBJ within 0.01. The agreement table is printed (run pytest with -s to see it).
"""

from __future__ import annotations

import numpy as np
import pytest

from converters.nonmem import read_event_table, read_phi
from interop.schema import ModelCard, parse_json
from interop.twin import bind_patient, estimate_map
from interop.twin.event_times import event_parameters
from interop.workflows.twin import compare_with_nonmem, event_table_mapping
from tests.data import MAPBAYR_MODELS, mapbayr_card, mapbayr_data, mapbayr_phi, mapbayr_sbml


def print_table(model: str, agreement: object) -> None:
    from interop.twin.agreement import Agreement

    assert isinstance(agreement, Agreement)
    print(f"\nmapbayr {model}: agreement with NONMEM over {agreement.n_subjects} subjects")
    print(f"{'ETA':>10} {'n':>4} {'excellent':>10} {'acceptable':>11} {'discordant':>11} {'max|diff|':>10}")
    for r in (*agreement.rows, agreement.total):
        print(
            f"{r.eta:>10} {r.n:>4} {r.excellent:>10} {r.acceptable:>11} {r.discordant:>11} "
            f"{r.max_difference:>10.2e}"
        )
    print(
        f"OBJ within {agreement.ofv_tolerance}: {agreement.ofv_within}/{agreement.n_subjects}, "
        f"max |diff| {agreement.max_ofv_difference:.2e}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", MAPBAYR_MODELS)
def test_etas_and_obj_agree_with_nonmem(model: str) -> None:
    card = parse_json(ModelCard, mapbayr_card(model).read_text())
    agreement = compare_with_nonmem(
        mapbayr_sbml(model).read_text(), card, mapbayr_data(model), mapbayr_phi(model), starts=1
    )
    print_table(model, agreement)
    assert agreement.n_subjects == 100
    assert agreement.total.n == 100 * len(card.random_effects.etas)
    assert agreement.worse_mode == 0
    # Where our mode's objective is lower than at NONMEM's ETAs by more than the tolerance we found
    # a better mode (model 006: the search over the pieces of ETA_D2, whose input end crosses
    # sampling times, finds one on 11 subjects); every other subject agrees with NONMEM.
    better = agreement.better_subjects
    assert len(better) == agreement.better_mode
    same = agreement.same_mode()
    assert agreement.passes(0.95, 0.995, 1.0)
    assert same.share_excellent >= 0.95
    assert same.share_within_acceptable >= 0.995
    assert same.ofv_within == same.n_subjects  # every such subject's OBJ within 0.01
    assert not better or event_parameters(card)  # only where event times move with an ETA
    assert all(s.converged for s in agreement.subjects)


@pytest.mark.parametrize("model", ["001", "401"])
def test_laplace_covariance_matches_nonmem_etc(model: str) -> None:
    """Our posterior covariance (inverse FOCE-I information) is NONMEM's ETC."""
    card = parse_json(ModelCard, mapbayr_card(model).read_text())
    from interop.twin import load_model

    m = load_model(mapbayr_sbml(model).read_text(), card)
    records = read_event_table(
        mapbayr_data(model), event_table_mapping(card), ignore=("s2_sampling",)
    ).records
    phi = read_phi(mapbayr_phi(model))
    for record in records[:10]:
        fit = estimate_map(bind_patient(m, record), starts=1)
        etc = phi[record.patient.id.removeprefix("nonmem-")].etc
        np.testing.assert_allclose(fit.covariance, etc, rtol=1e-3, atol=1e-5)
        se = np.sqrt(np.diag(etc))
        np.testing.assert_allclose(list(fit.standard_errors.values()), se, rtol=1e-3)


def test_population_shrinkage_from_the_fits() -> None:
    from interop.twin import load_model
    from interop.twin.estimate import calculate_eta_shrinkage

    card = parse_json(ModelCard, mapbayr_card("001").read_text())
    m = load_model(mapbayr_sbml("001").read_text(), card)
    records = read_event_table(
        mapbayr_data("001"), event_table_mapping(card), ignore=("s2_sampling",)
    ).records
    fits = [estimate_map(bind_patient(m, r), starts=1) for r in records[:40]]
    shrink = calculate_eta_shrinkage(fits, card.random_effects.omega_matrix())
    assert set(shrink) == {"ETA_CL", "ETA_V", "ETA_KA"}
    assert all(-0.5 < s < 1 for s in shrink.values())
    # KA is poorly informed by sparse TDM levels: it shrinks more than CL
    assert shrink["ETA_KA"] > shrink["ETA_CL"]
    per_subject = np.mean([f.variance_ratio["ETA_KA"] for f in fits])
    assert per_subject > np.mean([f.variance_ratio["ETA_CL"] for f in fits])
