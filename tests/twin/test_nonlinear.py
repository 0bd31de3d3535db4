"""A model that is not linear in its states (Michaelis-Menten) takes the roadrunner path."""

from __future__ import annotations

import dataclasses

import numpy as np
import tellurium as te

from interop.schema import ModelCard, ReferenceDose
from interop.twin import LevelObservation, bind_regimen, estimate_map, load_model, simulate
from interop.twin.linear import linear_system

ANTIMONY = """
model mm
  compartment body = 1
  substanceOnly species A in body = 0
  elim: A -> ; VMAX * (A / V) / (KM + A / V)
  TVVMAX = 40; TVV = 30; KM = 3; ETA_VMAX = 0; ETA_V = 0
  VMAX := TVVMAX * exp(ETA_VMAX)
  V := TVV * exp(ETA_V)
  Cc := A / V
end
"""
DRUG = {"system": "urn:test", "code": "mm-drug"}


def test_michaelis_menten_map() -> None:
    card = ModelCard.model_validate(
        {
            "id": "mm-test",
            "title": "MM test model",
            "drugs": [DRUG],
            "institution": "test",
            "dosing": [{"route": "iv-infusion", "target": "A"}],
            "observables": [{"id": "drug", "sbml": "Cc", "unit": "mg/L", "analyte": DRUG}],
            "random_effects": {"etas": ["ETA_VMAX", "ETA_V"], "omega": [[0.1, 0.02], [0.02, 0.05]]},
            "residual_error": [
                {"observable": "drug", "model": "combined", "additive_sd": 0.1, "proportional_sd": 0.1}
            ],
        }
    )
    model = load_model(te.antimonyToSBML(ANTIMONY), card)
    assert linear_system(model) is None
    doses = (ReferenceDose(route="iv-infusion", amount=600, time_h=0, duration_h=1.0),)
    twin = bind_regimen(model, doses, {}, patient_id="mm-subject")
    truth = {"ETA_VMAX": -0.3, "ETA_V": 0.1}
    times = [1.0, 4.0, 8.0, 12.0]
    y = simulate(twin, times, truth).values["drug"]
    twin = dataclasses.replace(
        twin,
        observations=tuple(
            LevelObservation(t, "drug", float(v), False, None, f"m{i}")
            for i, (t, v) in enumerate(zip(times, y, strict=True))
        ),
    )
    fit = estimate_map(twin, starts=1)
    assert fit.converged
    ipred = simulate(twin, times, fit.etas).values["drug"]
    assert np.max(np.abs(ipred - y) / y) < 0.05  # close to the data it was fitted to
    assert fit.etas["ETA_VMAX"] < -0.15
