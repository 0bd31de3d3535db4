"""The MAP objective of DESIGN.md (NONMEM FOCE-I POSTHOC, mapbayr), and its Laplace terms.

    objective(eta) = sum_i [log var_i + (y_i - f_i)^2 / var_i]  (quantified levels)
                   - 2 sum_j log Phi((LLOQ_j - f_j) / sd_j)     (below-limit levels, M3)
                   + eta' Omega^-1 eta

with ``var_i`` the residual variance at the individual prediction (proportional part uses 1
in place of ``f`` where ``f`` is exactly 0, as NONMEM does). Exponential errors work on the
log scale. NONMEM's subject OBJ adds ``log det Omega + log det(Omega^-1 + sum J'J/var +
1/2 sum D'D/var^2)`` with ``J = df/deta`` and ``D = dvar/deta`` at the mode (no n log 2 pi).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from interop.errors import TwinError
from interop.schema import ModelCard
from interop.twin.binding import LevelObservation

__all__ = [
    "ResidualTerms",
    "laplace_information",
    "objective_gradient",
    "objective_rows",
    "objective_value",
    "residual_terms",
]

_KINDS = {"additive": 0, "proportional": 1, "combined-variance": 2, "exponential": 3, "combined-sd": 4}
_VAR_FLOOR = 1e-300  # a prediction that underflows must not make log(var) -inf
_PENALTY = 1e12  # objective where a prediction is unusable (f <= 0 with an exponential error)


@dataclass(frozen=True)
class ResidualTerms:
    """Per-observation residual error description, vectorised."""

    y: np.ndarray
    kind: np.ndarray  # 0 additive, 1 proportional, 2 combined-variance, 3 exponential, 4 combined-sd
    a2: np.ndarray  # additive variance
    b2: np.ndarray  # proportional (or log-scale) variance
    blq: np.ndarray  # bool: below the limit (M3)
    lloq: np.ndarray

    @property
    def exponential(self) -> np.ndarray:
        return self.kind == 3

    @property
    def var_const(self) -> np.ndarray:
        """Variance part independent of the prediction (exponential: the log-scale variance)."""
        return np.where(self.kind == 3, self.b2, np.where(self.kind == 1, 0.0, self.a2))

    @property
    def var_prop(self) -> np.ndarray:
        """Coefficient of f^2 in the variance."""
        return np.where((self.kind == 1) | (self.kind == 2), self.b2, 0.0)


def residual_terms(card: ModelCard, observations: Sequence[LevelObservation]) -> ResidualTerms:
    """The residual error of each observation from the card (an error if the card has none)."""
    n = len(observations)
    kind = np.zeros(n, dtype=int)
    a2 = np.zeros(n)
    b2 = np.zeros(n)
    y = np.zeros(n)
    blq = np.zeros(n, dtype=bool)
    lloq = np.full(n, np.nan)
    for i, o in enumerate(observations):
        err = card.error_for(o.observable)
        if err is None:
            raise TwinError(
                f"model {card.id} has no residual error for observable {o.observable}", field="residual_error"
            )
        kind[i] = _KINDS[err.form]
        a2[i] = err.additive_sd**2
        b2[i] = err.proportional_sd**2
        y[i] = o.value
        if o.below_lloq:
            if o.lloq is None:
                raise TwinError(
                    "a below-limit level needs its limit of quantification (M3)",
                    source=o.measurement_id,
                    field="lloq",
                )
            blq[i] = True
            lloq[i] = o.lloq
        elif o.value < 0:
            raise TwinError(f"negative concentration {o.value}", source=o.measurement_id, field="value")
        elif kind[i] == 3 and o.value <= 0:
            raise TwinError(
                "an exponential error needs positive levels", source=o.measurement_id, field="value"
            )
    return ResidualTerms(y, kind, a2, b2, blq, lloq)


def _cached(r: ResidualTerms) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """(constant variance, f^2 coefficient, needs the general path, any below-limit level)."""
    c = r.__dict__.get("_c")
    if c is None:
        general = bool(r.exponential.any()) or bool((r.kind == 4).any())
        c = (r.var_const, r.var_prop, general, bool(r.blq.any()))
        object.__setattr__(r, "_c", c)
    return c


def _variance(r: ResidualTerms, f: np.ndarray) -> np.ndarray:
    fz = np.where(f == 0, 1.0, f)
    var = r.var_const + r.var_prop * fz * fz
    sd_form = r.kind == 4
    if sd_form.any():  # SD = a + b*f
        var = np.where(sd_form, (np.sqrt(r.a2) + np.sqrt(r.b2) * np.abs(f)) ** 2, var)
    return np.maximum(var, _VAR_FLOOR)


def _dvar_df(r: ResidualTerms, f: np.ndarray) -> np.ndarray:
    """d variance / d f for each observation (0 where NONMEM's F=0 convention applies)."""
    fz = np.where(f == 0, 1.0, f)
    d = np.where((r.kind == 1) | (r.kind == 2), 2.0 * r.b2 * fz, 0.0)
    d = np.where(f == 0, 0.0, d)
    b = np.sqrt(r.b2)
    return np.where(r.kind == 4, 2.0 * (np.sqrt(r.a2) + b * np.abs(f)) * b * np.sign(f), d)


def objective_value(r: ResidualTerms, f: np.ndarray, eta: np.ndarray, omega_inv: np.ndarray) -> float:
    """The MAP objective at predictions ``f`` and random effects ``eta``."""
    prior = float(eta @ omega_inv @ eta)
    vc, vp, general, any_blq = _cached(r)
    if not general and not any_blq:  # the common case, kept lean for the optimiser
        fz = np.where(f == 0, 1.0, f)
        var = np.maximum(vc + vp * fz * fz, _VAR_FLOOR)
        return float(np.sum(np.log(var) + (r.y - f) ** 2 / var)) + prior
    expo = r.exponential
    if expo.any():
        if np.any(f[expo] <= 0):
            return _PENALTY + prior
        f = np.where(expo, np.log(np.where(expo, f, 1.0)), f)
        y = np.where(expo & ~r.blq, np.log(np.where(expo & ~r.blq, r.y, 1.0)), r.y)
        lloq = np.where(expo & r.blq, np.log(np.where(expo & r.blq, r.lloq, 1.0)), r.lloq)
    else:
        y, lloq = r.y, r.lloq
    var = _variance(r, f)
    q = ~r.blq
    total = float(np.sum(np.log(var[q]) + (y[q] - f[q]) ** 2 / var[q]))
    if r.blq.any():
        z = (lloq[r.blq] - f[r.blq]) / np.sqrt(var[r.blq])
        total -= 2.0 * float(np.sum(log_ndtr(z)))
    return total + prior


def objective_gradient(
    r: ResidualTerms, f: np.ndarray, jac: np.ndarray, eta: np.ndarray, omega_inv: np.ndarray
) -> np.ndarray:
    """d :func:`objective_value` / d eta from the predictions ``f`` and their Jacobian ``jac``
    (observations x etas), as forward sensitivities give them: exact, no difference step."""
    grad = 2.0 * omega_inv @ eta
    if not len(f):
        return grad
    expo = r.exponential
    if expo.any() and np.any(f[expo] <= 0):  # the penalty region of objective_value: flat
        return grad
    dF = np.ones_like(f)  # d (scale of the error model) / d f
    F, y, lloq = f, r.y, r.lloq
    if expo.any():
        F = np.where(expo, np.log(np.where(expo, f, 1.0)), f)
        dF = np.where(expo, 1.0 / np.where(expo, f, 1.0), 1.0)
        y = np.where(expo & ~r.blq, np.log(np.where(expo & ~r.blq, r.y, 1.0)), r.y)
        lloq = np.where(expo & r.blq, np.log(np.where(expo & r.blq, r.lloq, 1.0)), r.lloq)
    var = _variance(r, F)
    dvar = np.where(var > _VAR_FLOOR, _dvar_df(r, F), 0.0)
    res = y - F
    d = np.where(r.blq, 0.0, dvar / var - 2.0 * res / var - res * res * dvar / var**2)
    if r.blq.any():  # -2 log Phi(z), z = (LLOQ - F) / sd
        b = r.blq
        sd = np.sqrt(var[b])
        z = (lloq[b] - F[b]) / sd
        dz = -1.0 / sd - (lloq[b] - F[b]) * dvar[b] / (2.0 * sd**3)
        mills = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - log_ndtr(z))  # phi(z) / Phi(z)
        d[b] = -2.0 * mills * dz
    return grad + jac.T @ (d * dF)


def objective_rows(r: ResidualTerms, F: np.ndarray, E: np.ndarray, omega_inv: np.ndarray) -> np.ndarray:
    """:func:`objective_value` for each row of predictions ``F`` and random effects ``E``."""
    vc, vp, general, any_blq = _cached(r)
    if general or any_blq:
        return np.array([objective_value(r, f, e, omega_inv) for f, e in zip(F, E, strict=True)])
    fz = np.where(F == 0, 1.0, F)
    var = np.maximum(vc + vp * fz * fz, _VAR_FLOOR)
    prior = np.einsum("mi,ij,mj->m", E, omega_inv, E)
    return np.sum(np.log(var) + (r.y - F) ** 2 / var, axis=1) + prior


def laplace_information(
    r: ResidualTerms, f: np.ndarray, jac: np.ndarray, omega_inv: np.ndarray
) -> np.ndarray:
    """Omega^-1 + sum J'J/var + 1/2 sum D'D/var^2 over quantified levels (NONMEM's FOCE-I term).

    ``jac`` is df/deta (observations x etas). Its inverse is the posterior covariance of the
    ETAs under the Laplace approximation (NONMEM's ETC).
    """
    q = ~r.blq
    expo = r.exponential
    fq = f.copy()
    J = jac.copy()
    if expo.any():  # log scale: d log f = J / f
        J[expo] = J[expo] / f[expo, None]
        fq = np.where(expo, np.log(np.where(expo, f, 1.0)), f)
    var = _variance(r, fq)
    D = J * _dvar_df(r, fq)[:, None]
    Jq, Dq, vq = J[q], D[q], var[q]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        Js = Jq / np.sqrt(vq)[:, None]
        Ds = Dq / vq[:, None]
        info = omega_inv + Js.T @ Js + 0.5 * Ds.T @ Ds
    if not np.all(np.isfinite(info)):  # a prediction underflowed: fall back to the prior
        return omega_inv.copy()
    return info


def numeric_jacobian(
    predict: Callable[[np.ndarray], np.ndarray], eta: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """df/deta by central differences (observations x etas)."""
    cols = []
    for j in range(len(eta)):
        e = np.zeros(len(eta))
        e[j] = step
        cols.append((predict(eta + e) - predict(eta - e)) / (2 * step))
    return np.column_stack(cols) if cols else np.zeros((0, 0))
