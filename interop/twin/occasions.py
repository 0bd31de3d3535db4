"""Inter-occasion variability: which random effect holds in which dosing occasion.

Convention (the card's ``Occasion`` names the SBML parameter that carries the current
occasion's effect, e.g. ``IOV_CL`` in ``CL := TVCL * exp(ETA_CL + IOV_CL)``, and one SBML id per
occasion whose value is that occasion's effect). Which occasion holds when:
- by an occasion covariate (``random_effects.occasion_covariate``, NONMEM's OCC column): where its
  value is k, occasion k holds; the value switches as every covariate does (a record's value holds
  from the previous record up to that record, as NONMEM applies it);
- else by dose groups: occasion k starts at the ((k-1) * ``doses_per_occasion`` + 1)-th distinct
  dose time and lasts until the next group (1 per occasion by default; 3 for cycles of 3 doses);
  levels before the first dose belong to occasion 1.
Occasions beyond those the card defines get the prior mean, 0 (future doses in a forecast, say).
NONMEM numbers the ETAs between-subject first, then occasion by occasion: :func:`nonmem_eta_order`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interop.errors import TwinError
from interop.schema import ModelCard
from interop.twin.binding import Twin

__all__ = ["OccasionSwitch", "nonmem_eta_order", "occasion_etas", "occasion_omega", "occasion_switches"]


@dataclass(frozen=True)
class OccasionSwitch:
    time_h: float  # 0 for the first occasion
    parameter: str
    eta: str | None  # None: beyond the card's occasions, the effect is 0


def occasion_switches(twin: Twin) -> list[OccasionSwitch]:
    """Every switch of every IOV parameter, the first (occasion 1) at time 0."""
    re = twin.card.random_effects
    if not re.occasions:
        return []
    starts: list[tuple[float, int]]  # (time, 0-based occasion index)
    if re.occasion_covariate is not None:
        series = twin.covariates.get(re.occasion_covariate)
        if series is None:
            raise TwinError(
                f"no value for the occasion covariate {re.occasion_covariate}",
                source=twin.patient_id,
                field=re.occasion_covariate,
            )
        first = series.at(0.0)
        for t, v in series.changes():
            if t <= 0:  # a switch right after time 0 is the first occasion's value
                first = v
        starts = [(0.0, _occasion_index(first, twin))]
        starts += [(t, _occasion_index(v, twin)) for t, v in series.changes() if t > 0]
    else:
        times = sorted({d.time_h for d in twin.doses}) or [0.0]
        starts = [
            (t, k // re.doses_per_occasion) for k, t in enumerate(times) if k % re.doses_per_occasion == 0
        ]
    out = []
    for occ in re.occasions:
        for t, k in starts:
            out.append(
                OccasionSwitch(
                    0.0 if t <= 0 else t, occ.parameter, occ.etas[k] if k < len(occ.etas) else None
                )
            )
    return out


def _occasion_index(value: float, twin: Twin) -> int:
    if value < 1 or value != int(value):
        raise TwinError(f"occasion value {value:g} is not 1, 2, ...", source=twin.patient_id, field="OCC")
    return int(value) - 1


def nonmem_eta_order(card: ModelCard) -> list[str]:
    """ETA names in NONMEM's order: between-subject, then occasion 1's effects, occasion 2's, ..."""
    re = card.random_effects
    n = max((len(o.etas) for o in re.occasions), default=0)
    return [*re.etas, *(o.etas[k] for k in range(n) for o in re.occasions if k < len(o.etas))]


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
