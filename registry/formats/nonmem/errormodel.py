"""The card's residual error from NONMEM's ``Y``: what the residual variance is at a prediction.

NONMEM (FOCE with INTERACTION, and the twin) uses the first-order residual variance
``sum_k (dY/dEPS_k)^2 * SIGMA_kk`` at EPS = 0. It is evaluated at a few predictions ``f`` and
recognised as additive (constant), proportional (``b f``), combined (``a^2 + b^2 f^2``, NONMEM's
usual ``W = SQRT(THETA^2 + (THETA*F)^2)``), combined-sd (``(a + b f)^2``), power
(``a^2 + b^2 f^(2c)``, ``W = SQRT(THETA(5)**2 + (THETA(6)*IPRED**THETA(7))**2)``) or, when ``Y`` is
``LOG(prediction) + EPS``, exponential (the card's log-scale model; with an SBML rule for an
SD that varies there). Any other variance (one that
depends on covariates, individual parameters or other states, or another function of the
prediction) is the card's sbml form: its square root becomes an SBML rule the twin simulates.
``Y = F*EXP(EPS)`` is proportional to first order, which is how NONMEM's FOCE treats it. The
``F = 0`` guard (``W = F + DEL``, ``DEL = 1`` when ``F = 0``) is the card's convention already and
is ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import sympy

__all__ = ["ErrorShape", "classify_error"]


class ErrorShape:
    """model: a card form (additive ... power, sbml), with SDs (not variances); ``exponent`` for
    power, ``sd`` (the residual SD as an expression of the model's symbols) for sbml."""

    def __init__(
        self,
        model: str,
        additive_sd: float,
        proportional_sd: float,
        note: str = "",
        exponent: float | None = None,
        sd: sympy.Expr | None = None,
    ):
        self.model = model
        self.additive_sd = additive_sd
        self.proportional_sd = proportional_sd
        self.note = note
        self.exponent = exponent
        self.sd = sd

    def card(self, observable: str, sd_parameter: str | None = None) -> dict[str, object]:
        """The card's residual_error entry (``sd_parameter``: the SBML id of :attr:`sd`)."""
        out: dict[str, object] = {"observable": observable, "model": self.model}
        out.update(additive_sd=self.additive_sd, proportional_sd=self.proportional_sd)
        if self.exponent is not None:
            out["exponent"] = self.exponent
        if self.sd is not None:
            out["sd_parameter"] = sd_parameter
        return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-7, abs_tol=1e-12)


def classify_error(
    prediction: sympy.Expr,
    sds: Sequence[tuple[sympy.Expr, float]],
    values: Mapping[sympy.Symbol, float],
) -> ErrorShape:
    """``sds``: (dY/dEPS_k at EPS=0, SIGMA_kk) per epsilon; ``values``: numbers of constants.

    Raises ValueError when the variance is not finite and non-negative.
    """
    log_scale = isinstance(prediction, sympy.log)
    inner = prediction.args[0] if log_scale else prediction
    states = sorted(
        (s for s in inner.free_symbols if s.name.startswith("A_")), key=lambda s: s.name
    )  # states are A_<compartment>
    f = sympy.Symbol("__f", positive=True)
    variance = sum((sd**2 * sigma for sd, sigma in sds), sympy.Integer(0))
    variance = sympy.sympify(variance).xreplace(dict(values))
    general = variance
    if variance.free_symbols - sympy.sympify(prediction).xreplace(dict(values)).free_symbols:
        return _sbml(general, log_scale)  # symbols solving for a state cannot remove (ETA, items)
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
        return _sbml(general, log_scale)
    points = (0.5, 1.0, 2.0, 4.0, 8.0)
    v = [float(variance.xreplace({f: p}).evalf()) for p in points]
    if any(not math.isfinite(x) or x < 0 for x in v):
        raise ValueError("the residual variance is not finite and non-negative")
    if log_scale:
        if not all(_close(x, v[0]) for x in v):
            return _sbml(general, log_scale)
        return ErrorShape("exponential", 0.0, math.sqrt(v[0]), "Y = LOG(prediction) + EPS (log scale)")
    # variance = a^2 + b^2 f^2 covers additive (b = 0) and proportional (a = 0)
    b2 = (v[2] - v[1]) / (points[2] ** 2 - points[1] ** 2)
    a2 = v[1] - b2 * points[1] ** 2
    if all(_close(a2 + b2 * p * p, x) for p, x in zip(points, v, strict=True)):
        a2 = 0.0 if abs(a2) < 1e-14 * max(1.0, abs(v[1])) else a2
        b2 = 0.0 if abs(b2) < 1e-14 * max(1.0, abs(v[1])) else b2
        if a2 < 0 or b2 < 0:
            return _sbml(general)
        a, b = math.sqrt(a2), math.sqrt(b2)
        model = "combined" if a > 0 and b > 0 else ("additive" if a > 0 else "proportional")
        return ErrorShape(model, a, b)
    sd = [math.sqrt(x) for x in v]  # SD = a + b f: the SDs add
    b = (sd[2] - sd[1]) / (points[2] - points[1])
    a = sd[1] - b * points[1]
    if a > 0 and b > 0 and all(_close(a + b * p, x) for p, x in zip(points, sd, strict=True)):
        return ErrorShape("combined-sd", a, b)
    power = _power(variance, f, points, v)
    return power if power is not None else _sbml(general)


def _power(
    variance: sympy.Expr, f: sympy.Symbol, points: Sequence[float], v: list[float]
) -> ErrorShape | None:
    """variance = a^2 + b^2 f^(2c) (c > 0), or None."""
    try:
        a2 = float(sympy.limit(variance, f, 0, "+"))
    except (TypeError, ValueError, NotImplementedError):
        return None
    if not math.isfinite(a2) or a2 < 0:
        return None
    h = [x - a2 for x in v]
    if h[0] <= 0 or h[1] <= 0:
        return None
    two_c = math.log(h[1] / h[0]) / math.log(points[1] / points[0])
    if two_c <= 0 or not all(
        _close(h[1] * (p / points[1]) ** two_c, x) for p, x in zip(points, h, strict=True)
    ):
        return None
    a = math.sqrt(a2) if a2 > 1e-14 * max(1.0, v[1]) else 0.0
    return ErrorShape("power", a, math.sqrt(h[1]), exponent=round(two_c / 2, 12))


def _sbml(variance: sympy.Expr, log_scale: bool = False) -> ErrorShape:
    """SD = sqrt(variance), an expression of the model's symbols: the sbml form (on the log scale:
    the exponential form with that SD)."""
    model = "exponential" if log_scale else "sbml"
    return ErrorShape(model, 0.0, 0.0, "the residual SD is an SBML rule", sd=sympy.sqrt(variance))
