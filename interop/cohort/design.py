"""A dosing and sampling design for virtual subjects, read from a JSON or YAML file.

Example (YAML)::

    description: gentamicin 5 mg/kg once daily for 7 days, peak and trough
    doses:
      - {route: iv-infusion, amount: 5, per: WT, time_h: 0, duration_h: 0.5, interval_h: 24, additional: 6}
    sampling_h: [1, 23.9, 145, 167.9]
    lloq: 0.1

``per`` scales the amount by a covariate (mg/kg times body weight); ``additional`` repeats
the dose every ``interval_h`` like NONMEM's ADDL/II. An optional ``covariates`` block holds the
virtual population in the format of a distribution file (``interop.cohort.population``):
distributions, genotype frequencies by population, condition prevalences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, model_validator

from interop.errors import SchemaError
from interop.schema import ReferenceDose, parse
from interop.schema.base import Frozen
from interop.schema.patient import Route

__all__ = ["Design", "DesignDose", "load_design", "read_structured_file"]


class DesignDose(Frozen):
    route: Route
    amount: float = Field(gt=0, description="Per dose, in the model input's amount unit")
    per: str | None = Field(default=None, description="Covariate the amount is multiplied by (mg/kg)")
    time_h: float = Field(default=0.0, ge=0)
    duration_h: float | None = Field(default=None, gt=0)
    interval_h: float | None = Field(default=None, gt=0)
    additional: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _repeat(self) -> Self:
        if self.additional and self.interval_h is None:
            raise ValueError("additional doses need interval_h")
        return self


class Design(Frozen):
    """Doses and sample times (hours from the first dose) shared by every virtual subject."""

    description: str = ""
    doses: tuple[DesignDose, ...] = Field(min_length=1)
    sampling_h: tuple[float, ...] = Field(min_length=1)
    observable: str | None = Field(default=None, description="Observable sampled (default: the first)")
    lloq: float | None = Field(default=None, ge=0, description="Levels below it are flagged below-limit")
    covariates: dict[str, Any] = Field(
        default_factory=dict, description="Virtual population, as a distribution file (used without one)"
    )

    @model_validator(mode="after")
    def _times(self) -> Self:
        if any(t < 0 for t in self.sampling_h):
            raise ValueError("sampling times must be >= 0")
        if list(self.sampling_h) != sorted(self.sampling_h):
            raise ValueError("sampling times must be in increasing order")
        return self

    def regimen(self, covariates: dict[str, float]) -> tuple[ReferenceDose, ...]:
        """Every single dose of the design for one subject (amounts scaled by ``per``)."""
        out = []
        for d in self.doses:
            amount = d.amount * (covariates[d.per] if d.per else 1.0)
            for k in range(d.additional + 1):
                out.append(
                    ReferenceDose(
                        route=d.route,
                        amount=amount,
                        time_h=d.time_h + k * (d.interval_h or 0.0),
                        duration_h=d.duration_h,
                    )
                )
        return tuple(sorted(out, key=lambda x: x.time_h))


def read_structured_file(path: Path) -> Any:
    """JSON or YAML (by suffix; YAML also reads JSON) as plain data, errors naming the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SchemaError(f"cannot read: {exc.strerror}", source=str(path)) from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"not valid JSON: {exc.msg}", source=str(path), line=exc.lineno) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SchemaError(
            f"not valid YAML: {exc}", source=str(path), line=mark.line + 1 if mark else None
        ) from exc


def load_design(path: Path) -> Design:
    """The design in ``path`` (JSON or YAML), validated."""
    return parse(Design, read_structured_file(path), source=str(path))
