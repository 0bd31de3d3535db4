"""The card's residual error from NONMEM's ``Y``: what the residual variance is at a prediction.

NONMEM (FOCE with INTERACTION, and the twin) uses the first-order residual variance
``sum_k (dY/dEPS_k)^2 * SIGMA_kk`` at EPS = 0. It is evaluated at a few predictions ``f`` and
recognised as additive (constant), proportional (``b f``), combined (``a^2 + b^2 f^2``, NONMEM's
usual ``W = SQRT(THETA^2 + (THETA*F)^2)``) or, when ``Y`` is ``LOG(prediction) + EPS``,
exponential (the card's log-scale model). ``Y = F*EXP(EPS)`` is proportional to first order,
which is how NONMEM's FOCE treats it. The ``F = 0`` guard (``W = F + DEL``, ``DEL = 1`` when
``F = 0``) is the card's convention already and is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import sympy

__all__ = ["ErrorShape", "classify_error"]


class ErrorShape:
    """model: additive | proportional | combined | exponential, with SDs (not variances)."""

    def __init__(self, model: str, additive_sd: float, proportional_sd: float, note: str = ""):
        self.model = model
        self.additive_sd = additive_sd
        self.proportional_sd = proportional_sd
        self.note = note


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)


def classify_error(
    prediction: sympy.Expr,
    sds: Sequence[tuple[sympy.Expr, float]],
    values: Mapping[sympy.Symbol, float],
) -> ErrorShape:
    """``sds``: (dY/dEPS_k at EPS=0, SIGMA_kk) per epsilon; ``values``: numbers of constants.

    Raises ValueError naming what the variance depends on when it is not a function of the
    prediction alone, or when its shape is none of the card's four.
    """
    log_scale = isinstance(prediction, sympy.log)
    inner = prediction.args[0] if log_scale else prediction
    states = sorted(
        (s for s in inner.free_symbols if s.name.startswith("A_")), key=lambda s: s.name
    )  # states are A_<compartment>
    f = sympy.Symbol("__f", positive=True)
    variance = sum((sd**2 * sigma for sd, sigma in sds), sympy.Integer(0))
    variance = sympy.sympify(variance).xreplace(dict(values))
    if states:
        try:
            solved = sympy.solve(sympy.Eq(prediction.xreplace(dict(values)), f), states[0])
        except NotImplementedError:
            solved = []
        if len(solved) != 1:
            raise ValueError(f"the prediction {prediction} cannot be solved for {states[0]}")
        variance = variance.xreplace({states[0]: solved[0]})
    else:
        variance = variance.xreplace({prediction: f}) if prediction.free_symbols else variance
    variance = sympy.simplify(variance)
    left = variance.free_symbols - {f}
    if left:
        names = ", ".join(sorted(s.name for s in left))
        raise ValueError(f"the residual variance depends on {names}, not only on the prediction")
    points = (0.5, 1.0, 2.0, 4.0, 8.0)
    v = [float(variance.xreplace({f: p}).evalf()) for p in points]
    if any(not math.isfinite(x) or x < 0 for x in v):
        raise ValueError("the residual variance is not finite and non-negative")
    if log_scale:
        if not all(_close(x, v[0]) for x in v):
            raise ValueError("Y = LOG(prediction) + error needs a constant error SD")
        return ErrorShape("exponential", 0.0, math.sqrt(v[0]), "Y = LOG(prediction) + EPS (log scale)")
    # variance = a^2 + b^2 f^2 covers additive (b = 0) and proportional (a = 0)
    b2 = (v[2] - v[1]) / (points[2] ** 2 - points[1] ** 2)
    a2 = v[1] - b2 * points[1] ** 2
    if all(_close(a2 + b2 * p * p, x) for p, x in zip(points, v, strict=True)):
        a2 = 0.0 if abs(a2) < 1e-14 * max(1.0, abs(v[1])) else a2
        b2 = 0.0 if abs(b2) < 1e-14 * max(1.0, abs(v[1])) else b2
        if a2 < 0 or b2 < 0:
            raise ValueError("the residual variance is not of the form a^2 + b^2 f^2")
        a, b = math.sqrt(a2), math.sqrt(b2)
        model = "combined" if a > 0 and b > 0 else ("additive" if a > 0 else "proportional")
        return ErrorShape(model, a, b)
    raise ValueError(
        "the residual error is neither additive, proportional, combined (a^2 + b^2 f^2) nor "
        "exponential; e.g. SDs that add (a + b f) or a power model"
    )
