"""Inter-occasion variability: an IOV parameter switched at each dosing occasion."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tellurium as te

from interop.errors import TwinError
from interop.schema import ModelCard, ReferenceDose
from interop.twin import LevelObservation, bind_regimen, estimate_map, load_model, simulate

ANTIMONY = """
model iov_1cmt
  compartment body = 1
  substanceOnly species A in body = 0
  elim: A -> ; CL / V * A
  TVCL = 5; TVV = 20; ETA_CL = 0; ETA_V = 0
  IOV_CL = 0; KAPPA_CL_1 = 0; KAPPA_CL_2 = 0
  CL := TVCL * exp(ETA_CL + IOV_CL)
  V := TVV * exp(ETA_V)
  Cc := A / V
end
"""
DRUG = {"system": "urn:test", "code": "drug"}


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    card = ModelCard.model_validate(
        {
            "id": "iov-test",
            "title": "IOV test model",
            "drugs": [DRUG],
            "institution": "test",
            "dosing": [{"route": "iv-bolus", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG}],
            "random_effects": {
                "etas": ["ETA_CL", "ETA_V"],
                "omega": [[0.09, 0.0], [0.0, 0.04]],
                "occasions": [
                    {"parameter": "IOV_CL", "etas": ["KAPPA_CL_1", "KAPPA_CL_2"], "variance": 0.04}
                ],
            },
            "residual_error": [{"observable": "drug", "model": "proportional", "proportional_sd": 0.1}],
        }
    )
    return load_model(te.antimonyToSBML(ANTIMONY), card)


def regimen(model, levels):  # type: ignore[no-untyped-def]
    doses = tuple(ReferenceDose(route="iv-bolus", amount=100, time_h=t) for t in (0.0, 24.0, 48.0))
    twin = bind_regimen(model, doses, {}, patient_id="iov-subject")
    return dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, "drug", v, False, None, f"m{i}") for i, (t, v) in enumerate(levels)
        ),
    )


def test_clearance_switches_per_occasion(model) -> None:  # type: ignore[no-untyped-def]
    twin = regimen(model, [])
    etas = {"KAPPA_CL_1": 0.3, "KAPPA_CL_2": -0.4}
    times = np.array([2.0, 23.0, 26.0, 47.0, 50.0, 70.0])
    fast = simulate(twin, times, etas).values["drug"]
    slow = simulate(twin, times, etas, method="roadrunner").values["drug"]
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    k1, k2, k3 = 5 * np.exp(0.3) / 20, 5 * np.exp(-0.4) / 20, 5 / 20  # the third occasion has no KAPPA: 0
    c24 = 5 * np.exp(-k1 * 24)
    c48 = (c24 + 5) * np.exp(-k2 * 24)
    expected = [
        5 * np.exp(-k1 * 2),
        5 * np.exp(-k1 * 23),
        (c24 + 5) * np.exp(-k2 * 2),
        (c24 + 5) * np.exp(-k2 * 23),
        (c48 + 5) * np.exp(-k3 * 2),
        (c48 + 5) * np.exp(-k3 * 22),
    ]
    np.testing.assert_allclose(fast, expected, rtol=1e-9)


def test_map_estimates_the_occasion_effects(model) -> None:  # type: ignore[no-untyped-def]
    truth = {"ETA_CL": 0.1, "KAPPA_CL_1": 0.25, "KAPPA_CL_2": -0.25}
    times = [1.0, 12.0, 23.0, 25.0, 36.0, 47.0]
    clean = simulate(regimen(model, []), times, truth).values["drug"]
    fit = estimate_map(regimen(model, list(zip(times, clean, strict=True))), starts=2)
    assert set(fit.etas) == {"ETA_CL", "ETA_V", "KAPPA_CL_1", "KAPPA_CL_2"}
    assert fit.etas["KAPPA_CL_1"] > fit.etas["KAPPA_CL_2"] + 0.2
    assert fit.covariance.shape == (4, 4) and fit.converged
    # the occasion effects are shrunk towards 0 and the rest goes to ETA_CL: their sums are identified
    for k in (1, 2):
        assert fit.etas["ETA_CL"] + fit.etas[f"KAPPA_CL_{k}"] == pytest.approx(
            truth["ETA_CL"] + truth[f"KAPPA_CL_{k}"], abs=0.01
        )


def test_occasion_parameter_must_exist(model) -> None:  # type: ignore[no-untyped-def]
    card = model.card.replace(
        random_effects={
            **model.card.random_effects.model_dump(),
            "occasions": [{"parameter": "NOT_THERE", "etas": ["KAPPA_CL_1"], "variance": 0.04}],
        }
    )
    bad = load_model(model.sbml, card)
    with pytest.raises(TwinError, match="occasion parameter"):
        simulate(regimen(bad, []), [1.0])


OCC_ANTIMONY = ANTIMONY.replace("IOV_CL = 0;", "IOV_CL = 0; OCC = 1;")


def _occ_model(extra: dict[str, object]):  # type: ignore[no-untyped-def]
    covariates = []
    if extra.get("occasion_covariate"):
        source = {"measurement": {"system": "urn:digphat:nonmem-covariate", "code": "OCC"}, "unit": "1"}
        covariates = [{"name": "OCC", "source": source}]
    card = ModelCard.model_validate(
        {
            "id": "iov-occ-test",
            "title": "IOV by occasion column or dose groups",
            "drugs": [DRUG],
            "institution": "test",
            "dosing": [{"route": "iv-bolus", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG}],
            "covariates": covariates,
            "random_effects": {
                "etas": ["ETA_CL", "ETA_V"],
                "omega": [[0.09, 0.0], [0.0, 0.04]],
                "occasions": [
                    {"parameter": "IOV_CL", "etas": ["KAPPA_CL_1", "KAPPA_CL_2"], "variance": 0.04}
                ],
                **extra,
            },
            "residual_error": [{"observable": "drug", "model": "proportional", "proportional_sd": 0.1}],
        }
    )
    return load_model(te.antimonyToSBML(OCC_ANTIMONY), card)


def _four_doses(model, covariates=None):  # type: ignore[no-untyped-def]
    doses = tuple(ReferenceDose(route="iv-bolus", amount=100, time_h=t) for t in (0.0, 24.0, 48.0, 72.0))
    twin = bind_regimen(model, doses, {}, patient_id="occ-subject")
    return twin if covariates is None else dataclasses.replace(twin, covariates=covariates)


def _two_occasions_by_hand(switch_h: float, times: np.ndarray) -> np.ndarray:
    """Bolus 100 mg every 24 h into V = 20 L; CL = 5 exp(0.3) before ``switch_h``, 5 exp(-0.4) after."""
    k1, k2 = 5 * np.exp(0.3) / 20, 5 * np.exp(-0.4) / 20
    out = []
    for t in times:
        c = 0.0
        for td in (0.0, 24.0, 48.0, 72.0):
            if td < t:
                before = max(0.0, min(t, switch_h) - td)
                after = t - td - before
                c += 5 * np.exp(-k1 * before - k2 * after)
        out.append(c)
    return np.array(out)


@pytest.mark.parametrize("method", ["auto", "roadrunner"])
def test_occasions_by_dose_groups(method: str) -> None:
    twin = _four_doses(_occ_model({"doses_per_occasion": 2}))  # a cycle of two doses per occasion
    times = np.array([2.0, 30.0, 47.0, 50.0, 80.0])
    got = simulate(twin, times, {"KAPPA_CL_1": 0.3, "KAPPA_CL_2": -0.4}, method=method).values["drug"]  # type: ignore[arg-type]
    np.testing.assert_allclose(got, _two_occasions_by_hand(48.0, times), rtol=1e-7)


@pytest.mark.parametrize("method", ["auto", "roadrunner"])
def test_occasions_from_an_occ_column(method: str) -> None:
    """OCC rows (0: 1, 24: 1, 40: 1, 48: 2): NONMEM applies the 48 h row's value from the 40 h row on."""
    from interop.twin import CovariateSeries

    series = CovariateSeries("OCC", (0.0, 24.0, 40.0, 48.0), (1.0, 1.0, 1.0, 2.0))
    twin = _four_doses(_occ_model({"occasion_covariate": "OCC"}), {"OCC": series})
    times = np.array([2.0, 30.0, 40.0, 44.0, 50.0, 80.0])
    got = simulate(twin, times, {"KAPPA_CL_1": 0.3, "KAPPA_CL_2": -0.4}, method=method).values["drug"]  # type: ignore[arg-type]
    np.testing.assert_allclose(got, _two_occasions_by_hand(40.0, times), rtol=1e-7)


def test_nonmem_eta_order_is_between_subject_then_by_occasion() -> None:
    from interop.schema.model_card import Occasion
    from interop.twin.occasions import nonmem_eta_order

    card = _occ_model({}).card.model_copy(
        update={
            "random_effects": _occ_model({}).card.random_effects.model_copy(
                update={
                    "occasions": (
                        *_occ_model({}).card.random_effects.occasions,
                        Occasion(parameter="IOV_V", etas=("KV1", "KV2"), variance=0.01),
                    )
                }
            )
        }
    )
    assert nonmem_eta_order(card) == ["ETA_CL", "ETA_V", "KAPPA_CL_1", "KV1", "KAPPA_CL_2", "KV2"]
