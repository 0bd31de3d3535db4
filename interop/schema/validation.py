"""Contract for cross-site evidence: a validation record holds aggregates, never patient rows."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from interop.schema.base import SCHEMA_VERSION, Frozen

__all__ = ["MLModelUse", "MetricValue", "ValidationRecord"]

Setting = Literal["a-priori", "a-posteriori", "iterative", "simulation"]


class MetricValue(Frozen):
    """One aggregate metric, with its bootstrap confidence interval where computed."""

    name: str = Field(description="e.g. mpe_percent, rmse_percent, within_20_percent, npde_mean")
    setting: Setting
    observable: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(ge=0, description="Number of levels (or patients) it aggregates")


class MLModelUse(Frozen):
    """An ML model version that took part in a hybrid twin (the mechanistic one is the record's)."""

    model_id: str
    model_version: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the ONNX bytes")
    role: str = Field(description="typical_value or correction")
    parameter: str = Field(description="SBML parameter it supplied")


class ValidationRecord(Frozen):
    """What a validating site sends back: the model's predictive performance on its cohort."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    model_id: str
    model_version: int = Field(ge=1)
    model_sha256: str = Field(description="SHA-256 of the model version's SBML")
    site: str = Field(min_length=1)
    software: str = Field(min_length=1, description="e.g. digphat-interop 0.1.0")
    created_at: AwareDatetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    dataset_fingerprint: str = Field(description="SHA-256 of the cohort's canonical content")
    n_patients: int = Field(ge=0)
    n_levels: int = Field(ge=0)
    n_excluded_patients: int = Field(default=0, ge=0)
    exclusions: dict[str, int] = Field(default_factory=dict, description="reason -> patients")
    metrics: tuple[MetricValue, ...] = ()
    ml_models: tuple[MLModelUse, ...] = Field(
        default=(), description="ML model versions of a hybrid twin (empty: mechanistic only)"
    )
    notes: str = ""

    @field_validator("model_sha256", "dataset_fingerprint")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("must be a SHA-256 in lower-case hex")
        return v
