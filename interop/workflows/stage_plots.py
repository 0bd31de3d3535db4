"""What the simulate and reproduce validation stages computed, as curves to plot on a model page:
the simulate stage's scenario (the first reference output's doses, else one unit dose over 24 h)
and, for each reference output of the card, the model's curve beside the stated values.

The stages themselves store only their verdicts (``registry`` keeps no arrays); this recomputes the
same simulations on demand with the compiled-model cache, so a page shows the evidence without the
registry storing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from interop.schema import ModelCard, ReferenceDose
from interop.twin import bind_regimen, load_model, simulate

__all__ = ["StagePlot", "stage_plots"]


@dataclass(frozen=True)
class StagePlot:
    stage: str  # "simulate" or "reproduce"
    title: str
    unit: str
    times_h: list[float]
    curves: dict[str, list[float]]  # observable -> simulated values on times_h
    points_h: list[float] = field(default_factory=list)  # reference values (reproduce)
    points: list[float] = field(default_factory=list)
    observable: str = ""


def stage_plots(sbml: str, card: ModelCard, n: int = 200) -> list[StagePlot]:
    """The simulate stage's curves, then one plot per reference output."""
    model = load_model(sbml, card)
    units = {o.id: o.unit for o in card.observables}
    if card.reference_outputs:
        ref = card.reference_outputs[0]
        doses, covs = ref.doses, ref.covariates
        end = max(max(r.times_h) for r in card.reference_outputs)
        scenario = ref.description or "the first reference output's doses"
    else:
        d = card.dosing[0]
        duration = 1.0 if d.route == "iv-infusion" else None
        doses, covs, end = (
            (ReferenceDose(route=d.route, amount=1.0, time_h=0, duration_h=duration),),
            {},
            24.0,
        )
        scenario = f"one dose of 1 {d.amount_unit} ({d.route})"
    grid = np.linspace(0.0, end, n)
    pred = simulate(bind_regimen(model, doses, covs), grid)
    first = card.observables[0].id
    out = [
        StagePlot(
            "simulate",
            f"simulate stage: {scenario}",
            units[first],
            grid.tolist(),
            {k: np.asarray(v, dtype=float).tolist() for k, v in pred.values.items()},
        )
    ]
    for k, ref in enumerate(card.reference_outputs):
        g = np.linspace(0.0, max(ref.times_h), n)
        curve = simulate(bind_regimen(model, ref.doses, ref.covariates), g).values[ref.observable]
        out.append(
            StagePlot(
                "reproduce",
                f"reproduce stage: {ref.description or f'reference output {k + 1}'} (rtol {ref.rtol:g})",
                units[ref.observable],
                g.tolist(),
                {ref.observable: np.asarray(curve, dtype=float).tolist()},
                list(ref.times_h),
                list(ref.values),
                ref.observable,
            )
        )
    return out
