"""Reproduce a card's reference outputs: the check every registered model must pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interop.twin.binding import bind_regimen
from interop.twin.model import CompiledModel
from interop.twin.simulate import simulate

__all__ = ["ReferenceCheck", "check_reference_outputs"]


@dataclass(frozen=True)
class ReferenceCheck:
    description: str
    observable: str
    max_relative_error: float
    rtol: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error <= self.rtol


def check_reference_outputs(model: CompiledModel) -> list[ReferenceCheck]:
    """Simulate each reference output of the card; the worst relative error of each.

    A reference output pointing at a SED-ML report whose values were not filled in (the registry
    fills them from its SED-ML run) cannot be checked: its error is NaN, which never passes.
    """
    checks = []
    for ref in model.card.reference_outputs:
        if not ref.resolved:
            where = f"SED-ML report {ref.sedml.report}" if ref.sedml else "no values"
            checks.append(ReferenceCheck(ref.description or f"{where} (not resolved)", ref.observable,
                                         float("nan"), ref.rtol))  # fmt: skip
            continue
        twin = bind_regimen(model, ref.doses, ref.covariates)
        pred = simulate(twin, ref.times_h).values[ref.observable]
        expected = np.asarray(ref.values)
        scale = np.maximum(np.abs(expected), 1e-12)
        err = float(np.max(np.abs(pred - expected) / scale))
        checks.append(ReferenceCheck(ref.description, ref.observable, err, ref.rtol))
    return checks
