"""An independent simulation of the demo model for tests: Antimony events and piecewise inputs
written from a dose list, run on a fresh roadrunner — none of the twin's event machinery."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tellurium as te

from tests.data import GENTAMICIN_ANT


def direct_concentrations(
    doses: Sequence[dict],
    covariates: dict[str, float],
    etas: dict[str, float],
    times: Sequence[float],
    changes: Sequence[tuple[float, str, float]] = (),
) -> np.ndarray:
    """Cc at ``times`` for doses given as {time_h, amount, duration_h (None for a bolus)};
    ``changes`` are covariate changes (time, name, new value) from that time on."""
    lines = [f"  C{i}: at (time >= {t}), t0=false: {name} = {v}" for i, (t, name, v) in enumerate(changes)]
    for i, d in enumerate(doses):
        t, amt, dur = float(d["time_h"]), float(d["amount"]), d.get("duration_h")
        if dur:
            window = f"time >= {t} && time < {t + dur}"
            lines.append(f"  inf{i}: -> A_central; piecewise({amt / dur}, {window}, 0)")
        else:
            lines.append(f"  E{i}: at (time >= {t}), t0=false: A_central = A_central + {amt}")
    ant = GENTAMICIN_ANT.read_text().replace("end", "\n".join(lines) + "\nend")
    r = te.loada(ant)
    integ = r.getIntegrator()
    integ.setValue("relative_tolerance", 1e-10)
    integ.setValue("absolute_tolerance", 1e-12)
    integ.setValue("maximum_time_step", 0.01)
    for k, v in {**covariates, **etas}.items():
        r[k] = v
    grid = sorted({0.0, *map(float, times)})
    res = r.simulate(times=grid, selections=["time", "Cc"])
    lookup = dict(zip(res[:, 0], res[:, 1], strict=True))
    return np.array([lookup[float(t)] for t in times])
