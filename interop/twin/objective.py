"""The MAP objective of DESIGN.md (NONMEM FOCE-I POSTHOC, mapbayr), and its Laplace terms.

    objective(eta) = sum_i [log var_i + (y_i - f_i)^2 / var_i]  (quantified levels)
                   - 2 sum_j log Phi((LLOQ_j - f_j) / sd_j)     (below-limit levels, M3)
                   + eta' Omega^-1 eta

with ``var_i`` the residual variance at the individual prediction
(:func:`interop.schema.residual_error.residual_variance`: the proportional and power parts use 1
in place of ``f`` where ``f`` is exactly 0, as NONMEM does; an sbml-form error takes the SD the
twin simulated for it). Exponential errors work on the log scale. NONMEM's subject OBJ adds
``log det Omega + log det(Omega^-1 + sum J'J/var + 1/2 sum D'D/var^2)`` with ``J = df/deta`` and
``D = dvar/deta`` at the mode (no n log 2 pi).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from interop.errors import TwinError
from interop.schema import ModelCard
from interop.schema.residual_error import residual_variance, residual_variance_df
from interop.twin.binding import LevelObservation
from interop.twin.model import sd_output

__all__ = [
    "ResidualTerms",
    "laplace_information",
    "objective_gradient",
    "objective_rows",
    "objective_value",
    "residual_terms",
    "sd_observations",
]

_VAR_FLOOR = 1e-300  # a prediction that underflows must not make log(var) -inf
_PENALTY = 1e12  # objective where a prediction is unusable (f <= 0 with an exponential error)


@dataclass(frozen=True)
class ResidualTerms:
    """Per-observation residual error description, vectorised.

    Predictions passed with it hold the observations first, then (for observations whose error
    is of the sbml form) the simulated SD quantities: ``sd_index`` is the position of each
    observation's SD among them (-1: none); :func:`sd_observations` lists what to predict there.
    """

    y: np.ndarray
    kind: np.ndarray  # ResidualError.code: 0 additive, 1 proportional, ..., 3 exponential, ... 6 simulated SD
    a: np.ndarray  # additive SD
    b: np.ndarray  # proportional (or log-scale) SD
    c: np.ndarray  # power exponent
    blq: np.ndarray  # bool: below the limit (M3)
    lloq: np.ndarray
    sd_index: np.ndarray  # position of the observation's simulated SD in the predictions, or -1
    log: np.ndarray  # bool: the error model works on the log scale (exponential)

    @property
    def exponential(self) -> np.ndarray:
        return self.log

    @property
    def var_const(self) -> np.ndarray:
        """Variance part independent of the prediction (the forms 0-3; exponential: log scale)."""
        return np.where(
            (self.kind == 3) | (self.kind == 1), np.where(self.kind == 3, self.b**2, 0.0), self.a**2
        )

    @property
    def var_prop(self) -> np.ndarray:
        """Coefficient of f^2 in the variance (the forms 0-3)."""
        return np.where((self.kind == 1) | (self.kind == 2), self.b**2, 0.0)

    def subset(self, k: int) -> ResidualTerms:
        """The terms of the first ``k`` observations (their SDs renumbered after them)."""
        idx = self.sd_index[:k]
        keep = np.sort(idx[idx >= 0])
        new = np.where(idx >= 0, k + np.searchsorted(keep, idx), -1)
        return ResidualTerms(
            self.y[:k], self.kind[:k], self.a[:k], self.b[:k], self.c[:k], self.blq[:k], self.lloq[:k], new,
            self.log[:k],
        )  # fmt: skip


def sd_observations(card: ModelCard, observations: Sequence[LevelObservation]) -> list[LevelObservation]:
    """The simulated SD quantities :class:`ResidualTerms` expects after the observations: one
    pseudo-observation (the output :func:`interop.twin.model.sd_output` at the same time) for each
    observation whose error is of the sbml form, in order."""
    out = []
    for o in observations:
        err = card.error_for(o.observable)
        if err is not None and err.needs_sd:
            out.append(
                LevelObservation(o.time_h, sd_output(o.observable), 0.0, False, None, o.measurement_id)
            )
    return out


def residual_terms(card: ModelCard, observations: Sequence[LevelObservation]) -> ResidualTerms:
    """The residual error of each observation from the card (an error if the card has none)."""
    n = len(observations)
    kind = np.zeros(n, dtype=int)
    a = np.zeros(n)
    b = np.zeros(n)
    c = np.zeros(n)
    y = np.zeros(n)
    blq = np.zeros(n, dtype=bool)
    lloq = np.full(n, np.nan)
    sd_index = np.full(n, -1, dtype=int)
    log = np.zeros(n, dtype=bool)
    extra = n
    for i, o in enumerate(observations):
        err = card.error_for(o.observable)
        if err is None:
            raise TwinError(
                f"model {card.id} has no residual error for observable {o.observable}", field="residual_error"
            )
        kind[i] = err.code
        log[i] = err.form == "exponential"
        a[i] = err.additive_sd
        b[i] = err.proportional_sd
        c[i] = err.exponent or 0.0
        if err.needs_sd:
            sd_index[i] = extra
            extra += 1
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
        elif log[i] and o.value <= 0:
            raise TwinError(
                "an exponential error needs positive levels", source=o.measurement_id, field="value"
            )
    return ResidualTerms(y, kind, a, b, c, blq, lloq, sd_index, log)


def _cached(r: ResidualTerms) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """(constant variance, f^2 coefficient, needs the general path, any below-limit level)."""
    cached = r.__dict__.get("_c")
    if cached is None:
        general = bool((r.kind >= 3).any() or r.log.any())
        cached = (r.var_const, r.var_prop, general, bool(r.blq.any()))
        object.__setattr__(r, "_c", cached)
    return cached


def _split(r: ResidualTerms, f: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions at the observations, and the simulated SD of each (None: none simulated)."""
    n = len(r.y)
    if len(f) == n:  # no simulated SD follows the levels
        return f, None
    return f[:n], np.take(f, np.maximum(r.sd_index, 0))


def _variance(r: ResidualTerms, f: np.ndarray, sd: np.ndarray | None) -> np.ndarray:
    return np.maximum(residual_variance(r.kind, r.a, r.b, r.c, f, sd), _VAR_FLOOR)


def _log_scale(r: ResidualTerms, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions, levels and limits on the scale of the error model (log for exponential)."""
    expo = r.exponential
    if not expo.any():
        return f, r.y, r.lloq
    F = np.where(expo, np.log(np.where(expo, f, 1.0)), f)
    y = np.where(expo & ~r.blq, np.log(np.where(expo & ~r.blq, r.y, 1.0)), r.y)
    lloq = np.where(expo & r.blq, np.log(np.where(expo & r.blq, r.lloq, 1.0)), r.lloq)
    return F, y, lloq


def objective_value(r: ResidualTerms, f: np.ndarray, eta: np.ndarray, omega_inv: np.ndarray) -> float:
    """The MAP objective at predictions ``f`` (then the simulated SDs, see :class:`ResidualTerms`)
    and random effects ``eta``."""
    prior = float(eta @ omega_inv @ eta)
    vc, vp, general, any_blq = _cached(r)
    f, sd = _split(r, f)
    if not general and not any_blq:  # the common case, kept lean for the optimiser
        fz = np.where(f == 0, 1.0, f)
        var = np.maximum(vc + vp * fz * fz, _VAR_FLOOR)
        return float(np.sum(np.log(var) + (r.y - f) ** 2 / var)) + prior
    expo = r.exponential
    if expo.any() and np.any(f[expo] <= 0):
        return _PENALTY + prior
    F, y, lloq = _log_scale(r, f)
    var = _variance(r, F, sd)
    q = ~r.blq
    total = float(np.sum(np.log(var[q]) + (y[q] - F[q]) ** 2 / var[q]))
    if r.blq.any():
        z = (lloq[r.blq] - F[r.blq]) / np.sqrt(var[r.blq])
        total -= 2.0 * float(np.sum(log_ndtr(z)))
    return total + prior


def _derivatives(
    r: ResidualTerms, f: np.ndarray, jac: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(F, y, lloq, variance, dF/deta, dvariance/deta) on the error model's scale, from the
    predictions and their Jacobian (rows as in :class:`ResidualTerms`)."""
    f, sd = _split(r, f)
    n = len(r.y)
    J = jac[:n]
    F, y, lloq = _log_scale(r, f)
    expo = r.exponential
    JF = J / np.where(expo, f, 1.0)[:, None] if expo.any() else J  # d log f = J / f
    var = _variance(r, F, sd)
    dvar = np.where(var > _VAR_FLOOR, residual_variance_df(r.kind, r.a, r.b, r.c, F), 0.0)
    D = JF * dvar[:, None]
    if sd is not None:  # the sbml form: d sd^2 = 2 sd d sd
        own = r.sd_index >= 0
        Js = jac[np.maximum(r.sd_index, 0)]
        D = np.where(own[:, None] & (var > _VAR_FLOOR)[:, None], 2.0 * sd[:, None] * Js, D)
    return F, y, lloq, var, JF, D


def objective_gradient(
    r: ResidualTerms, f: np.ndarray, jac: np.ndarray, eta: np.ndarray, omega_inv: np.ndarray
) -> np.ndarray:
    """d :func:`objective_value` / d eta from the predictions ``f`` and their Jacobian ``jac``
    (predictions x etas), as forward sensitivities give them: exact, no difference step."""
    grad = 2.0 * omega_inv @ eta
    n = len(r.y)
    if not n:
        return grad
    expo = r.exponential
    if expo.any() and np.any(f[:n][expo] <= 0):  # the penalty region of objective_value: flat
        return grad
    F, y, lloq, var, JF, D = _derivatives(r, f, jac)
    res = y - F
    alpha = np.where(r.blq, 0.0, -2.0 * res / var)  # coefficient of dF
    beta = np.where(r.blq, 0.0, 1.0 / var - res * res / var**2)  # coefficient of dvar
    if r.blq.any():  # -2 log Phi(z), z = (LLOQ - F) / sd
        b = r.blq
        sd = np.sqrt(var[b])
        z = (lloq[b] - F[b]) / sd
        mills = np.exp(-0.5 * z * z - 0.5 * np.log(2 * np.pi) - log_ndtr(z))  # phi(z) / Phi(z)
        alpha[b] = 2.0 * mills / sd
        beta[b] = mills * (lloq[b] - F[b]) / sd**3
    return grad + JF.T @ alpha + D.T @ beta


def objective_rows(r: ResidualTerms, F: np.ndarray, E: np.ndarray, omega_inv: np.ndarray) -> np.ndarray:
    """:func:`objective_value` for each row of predictions ``F`` and random effects ``E``."""
    vc, vp, general, any_blq = _cached(r)
    if general or any_blq:
        return np.array([objective_value(r, f, e, omega_inv) for f, e in zip(F, E, strict=True)])
    F = F[:, : len(r.y)]
    fz = np.where(F == 0, 1.0, F)
    var = np.maximum(vc + vp * fz * fz, _VAR_FLOOR)
    prior = np.einsum("mi,ij,mj->m", E, omega_inv, E)
    return np.sum(np.log(var) + (r.y - F) ** 2 / var, axis=1) + prior


def laplace_information(
    r: ResidualTerms, f: np.ndarray, jac: np.ndarray, omega_inv: np.ndarray
) -> np.ndarray:
    """Omega^-1 + sum J'J/var + 1/2 sum D'D/var^2 over quantified levels (NONMEM's FOCE-I term).

    ``jac`` is df/deta (predictions x etas), ``D`` = dvar/deta. Its inverse is the posterior
    covariance of the ETAs under the Laplace approximation (NONMEM's ETC).
    """
    q = ~r.blq
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        _, _, _, var, JF, D = _derivatives(r, f, jac)
        Jq, Dq, vq = JF[q], D[q], var[q]
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
