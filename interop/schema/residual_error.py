"""The model card's residual error of one observable, and the one formula of its variance.

Every user of a residual error (the MAP objective and its batched form, forecasts, virtual cohorts,
validation replicates) computes the variance with :func:`residual_variance` (and its derivative in
the prediction with :func:`residual_variance_df`), vectorised over observations of mixed forms.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from interop.schema.base import Frozen

__all__ = ["FORM_CODES", "ResidualError", "residual_variance", "residual_variance_df"]

ErrorForm = Literal[
    "additive", "proportional", "combined", "combined-variance", "combined-sd", "exponential", "power", "sbml"
]
# Vectorised code of each explicit form (``combined`` is ``combined-variance``).
FORM_CODES = {
    "additive": 0,
    "proportional": 1,
    "combined-variance": 2,
    "exponential": 3,
    "combined-sd": 4,
    "power": 5,
    "sbml": 6,
}
_SBML_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ADDED = ("exponent", "sd_parameter")  # fields after card 1.2: left out of dumps when unset


class ResidualError(Frozen):
    """Residual error of one observable. SDs, not variances (NONMEM's SIGMA is a variance).

    Forms (f: the individual prediction, a: ``additive_sd``, b: ``proportional_sd``, c: ``exponent``):
    - ``additive``: SD = a;  ``proportional``: SD = b*f;
    - ``combined-variance`` (alias ``combined``, its meaning since version 1): variance = a^2 + (b*f)^2,
      NONMEM's ``Y = F + F*EPS(1) + EPS(2)`` or ``W = SQRT(A**2 + B**2*F**2)``;
    - ``combined-sd``: SD = a + b*f (Monolix's ``combined1``, posologyr, the published vancomycin models);
    - ``exponential``: log(y) = log(f) + eps with SD(eps) = ``proportional_sd`` (on the log scale;
      NONMEM's ``Y = LOG(F) + EPS(1)`` in log-transformed data, about a CV of that size when small),
      or the simulated value of ``sd_parameter`` when one is named (an SD that varies on the log scale);
    - ``power``: variance = a^2 + (b*|f|^c)^2 (a may be 0: SD = b*f^c; c = 1 is ``combined-variance``);
    - ``sbml``: SD = the value of the SBML quantity ``sd_parameter`` at the observation (an
      assignment rule that may use individual parameters, covariates and the prediction; the twin
      simulates it with the prediction).

    Where f is exactly 0, the proportional and power parts use 1 (NONMEM's convention).
    """

    observable: str
    model: ErrorForm
    additive_sd: float = Field(default=0.0, ge=0)
    proportional_sd: float = Field(default=0.0, ge=0)
    exponent: float | None = Field(default=None, description="power: the exponent c of SD = b*f^c")
    sd_parameter: str | None = Field(
        default=None,
        description="sbml (or exponential, on the log scale): SBML id whose value is the residual SD "
        "at the observation",
    )

    @model_validator(mode="after")
    def _sds(self) -> Self:
        need = {
            "additive": ("additive_sd",),
            "proportional": ("proportional_sd",),
            "exponential": ("proportional_sd",),
            "combined": ("additive_sd", "proportional_sd"),
            "combined-variance": ("additive_sd", "proportional_sd"),
            "combined-sd": ("additive_sd", "proportional_sd"),
            "power": ("proportional_sd",),
            "sbml": (),
        }[self.model]
        if self.sd_parameter is not None:
            need = ()
        for name in need:
            if getattr(self, name) <= 0:
                raise ValueError(f"a {self.model} error model needs {name} > 0")
        if (self.model == "power") != (self.exponent is not None):
            raise ValueError("exponent is given exactly for a power error model")
        if self.exponent is not None and not math.isfinite(self.exponent):
            raise ValueError(f"the exponent must be finite (got {self.exponent})")
        if self.model == "sbml" and self.sd_parameter is None:
            raise ValueError("an sbml error model needs sd_parameter")
        if self.sd_parameter is not None and self.model not in ("sbml", "exponential"):
            raise ValueError("sd_parameter is given for an sbml or exponential error model only")
        if self.sd_parameter is not None:
            if not _SBML_ID.match(self.sd_parameter):
                raise ValueError(f"{self.sd_parameter!r} is not an SBML identifier")
            if self.additive_sd or self.proportional_sd:
                raise ValueError(f"an {self.model} error model with sd_parameter takes its SD from it alone")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Unset new fields stay out of dumps: cards written before them dump (and hash) as before."""
        out: dict[str, Any] = handler(self)
        for name in _ADDED:
            if out.get(name) is None:
                out.pop(name, None)
        return out

    @property
    def form(self) -> str:
        """The explicit name of the model (``combined`` is ``combined-variance``)."""
        return "combined-variance" if self.model == "combined" else self.model

    @property
    def needs_sd(self) -> bool:
        """True when the SD is a simulated SBML quantity (pass it to :meth:`variance`)."""
        return self.sd_parameter is not None

    @property
    def code(self) -> int:
        """The form's code for :func:`residual_variance` (an SD simulated from the model: 6)."""
        return FORM_CODES["sbml"] if self.needs_sd else FORM_CODES[self.form]

    def variance(
        self, prediction: float | np.ndarray, sd: float | np.ndarray | None = None
    ) -> float | np.ndarray:
        """Residual variance at an individual prediction (exponential: on the log scale); ``sd``: the
        simulated value of ``sd_parameter`` at the same points (forms that name one)."""
        v = residual_variance(
            self.code,
            self.additive_sd,
            self.proportional_sd,
            self.exponent or 0.0,
            prediction,
            sd,
        )
        return float(v) if np.ndim(v) == 0 else v

    def sd(self, prediction: float | np.ndarray, sd: float | np.ndarray | None = None) -> float | np.ndarray:
        """Residual SD at an individual prediction (exponential: on the log scale)."""
        v = np.sqrt(self.variance(prediction, sd))
        return float(v) if np.ndim(v) == 0 else v

    def observe(self, prediction: np.ndarray, eps: np.ndarray, sd: np.ndarray | None = None) -> np.ndarray:
        """Measured levels from predictions and standard-normal draws ``eps`` (same shape)."""
        f = np.asarray(prediction, dtype=float)
        scale = np.sqrt(self.variance(f, sd))
        if self.form == "exponential":
            return np.asarray(f * np.exp(scale * eps))
        return np.asarray(f + scale * eps)


def residual_variance(
    kind: int | np.ndarray,
    a: float | np.ndarray,
    b: float | np.ndarray,
    c: float | np.ndarray,
    f: float | np.ndarray,
    sd: float | np.ndarray | None = None,
) -> np.ndarray:
    """The residual variance of forms ``kind`` (:data:`FORM_CODES`) with additive SD ``a``,
    proportional SD ``b``, exponent ``c``, at predictions ``f`` (log scale for exponential) and,
    for the sbml form, its simulated SD ``sd``; every argument broadcasts."""
    kind = np.asarray(kind)
    f = np.asarray(f, dtype=float)
    a, b, c = (np.asarray(x, dtype=float) for x in (a, b, c))
    if sd is None:
        if np.any(kind == 6):
            raise ValueError("an sbml error model needs the simulated SD of its sd_parameter")
        s = np.zeros(())
    else:
        s = np.asarray(sd, dtype=float)
    fz = np.abs(np.where(f == 0, 1.0, f))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = (b * fz ** np.where(kind == 5, c, 1.0)) ** 2
        return np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5],
            [
                a * a + 0 * f,
                (b * fz) ** 2,
                a * a + (b * fz) ** 2,
                b * b + 0 * f,
                (a + b * np.abs(f)) ** 2,
                a * a + power,
            ],  # fmt: skip
            s * s + 0 * f,
        )


def residual_variance_df(
    kind: int | np.ndarray,
    a: float | np.ndarray,
    b: float | np.ndarray,
    c: float | np.ndarray,
    f: float | np.ndarray,
) -> np.ndarray:
    """d :func:`residual_variance` / d f (0 where NONMEM's F = 0 convention applies; 0 for the
    sbml form, whose SD's own derivative the caller adds)."""
    kind = np.asarray(kind)
    f = np.asarray(f, dtype=float)
    a, b, c = (np.asarray(x, dtype=float) for x in (a, b, c))
    fz = np.where(f == 0, 1.0, f)
    sign = np.sign(f)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cp = np.where(kind == 5, c, 1.0)
        power = 2.0 * cp * b * b * np.abs(fz) ** (2.0 * cp - 1.0) * sign
        d = np.select(
            [(kind == 1) | (kind == 2), kind == 4, kind == 5],
            [2.0 * b * b * fz, 2.0 * (a + b * np.abs(f)) * b * sign, power],
            0.0 * f,
        )
    return np.where((f == 0) & (kind != 4), 0.0, d)
