"""Inter-occasion variability: which random effect holds in which dosing occasion.

Convention (the card's ``Occasion`` names the SBML parameter that carries the current
occasion's effect, e.g. ``IOV_CL`` in ``CL := TVCL * exp(ETA_CL + IOV_CL)``, and one SBML id per
occasion whose value is that occasion's effect): occasion k starts at the k-th distinct dose
time and lasts until the next one; levels before the first dose belong to occasion 1. Occasions
beyond those the card defines get the prior mean, 0 (future doses in a forecast, say).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interop.schema import ModelCard
from interop.twin.binding import Twin

__all__ = ["OccasionSwitch", "occasion_etas", "occasion_omega", "occasion_switches"]


@dataclass(frozen=True)
class OccasionSwitch:
    time_h: float  # 0 for the first occasion
    parameter: str
    eta: str | None  # None: beyond the card's occasions, the effect is 0


def occasion_switches(twin: Twin) -> list[OccasionSwitch]:
    """Every switch of every IOV parameter, the first (occasion 1) at time 0."""
    occasions = twin.card.random_effects.occasions
    if not occasions:
        return []
    starts = sorted({d.time_h for d in twin.doses}) or [0.0]
    out = []
    for occ in occasions:
        for k, t in enumerate(starts):
            out.append(
                OccasionSwitch(
                    0.0 if k == 0 else t, occ.parameter, occ.etas[k] if k < len(occ.etas) else None
                )
            )
    return out


def occasion_etas(card: ModelCard) -> list[str]:
    return [e for occ in card.random_effects.occasions for e in occ.etas]


def occasion_omega(card: ModelCard) -> np.ndarray:
    """The joint prior covariance: between-subject Omega, then one variance per occasion effect."""
    re = card.random_effects
    bsv = re.omega_matrix()
    iov = [occ.variance for occ in re.occasions for _ in occ.etas]
    n, m = bsv.shape[0], len(iov)
    out = np.zeros((n + m, n + m))
    out[:n, :n] = bsv
    out[n:, n:] = np.diag(iov)
    return out
