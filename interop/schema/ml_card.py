"""Contract 2b: the ML model card — what an ONNX model predicts and from which patient features.

An ML model in the registry is an ONNX graph with one float input of shape ``[N, n_features]``
(features in card order) and an output holding the prediction. The card says what it predicts
(a PK parameter, a covariate, a concentration correction or a probability) in which unit, how
each feature is computed from a ``PatientRecord`` (the covariate sources of the mechanistic card:
a LOINC/UCUM measurement with an aggregation rule and a look-back window, age or sex, a
pharmacogene call, a condition, co-medication or a formula over other features), what to do
when a feature is missing, the training data, the intended use and limits, and reference
inputs with expected outputs that the registry reproduces to 1e-6.

A mechanistic card names an ML model through :class:`interop.schema.model_card.MLLink`
(``ml_models``); docs/ml-models.md describes both.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from interop.schema.base import Coding, Frozen
from interop.schema.model_card import (
    Covariate,
    CovariateSource,
    Person,
    Publication,
    _check_derived,
)
from interop.schema.model_id import MODEL_ID, MODEL_ID_RULE

__all__ = [
    "ML_CARD_SCHEMA_VERSION",
    "MLCard",
    "MLFeature",
    "MLOutput",
    "Predicted",
    "ReferenceCase",
    "TrainingData",
]

ML_CARD_SCHEMA_VERSION: Literal["1.0"] = "1.0"
FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Aggregation = Literal["last", "first", "mean", "median", "min", "max"]
PredictedKind = Literal["pk_parameter", "covariate", "concentration_correction", "probability"]


class Predicted(Frozen):
    """What the model predicts, in which unit."""

    kind: PredictedKind
    name: str = Field(min_length=1, description="e.g. CL (clearance), CRCL, correction factor")
    unit: str = Field(min_length=1, description="UCUM unit of the prediction ('1' if none)")
    code: Coding | None = Field(default=None, description="A code for the quantity, when one exists")
    description: str = ""


class MLFeature(Frozen):
    """One input column: where its value comes from in the patient schema, and when it is missing.

    Measurements are aggregated over the look-back window ``[t - window_h, t]`` before the
    prediction time ``t`` (the twin's origin: the first dose); other sources are read at ``t``
    with the covariate rules of :mod:`interop.twin.covariates`.
    """

    name: str = Field(description="Feature name (column of the ONNX input, in card order)")
    source: CovariateSource
    unit: str | None = Field(default=None, description="UCUM unit of the value the model takes")
    aggregation: Aggregation = Field(
        default="last", description="Measurements: how the window's values combine"
    )
    window_h: float = Field(default=168.0, gt=0, description="Measurements: look-back window, hours")
    missing: Literal["refuse", "impute"] = Field(
        default="refuse", description="refuse: no prediction without it; impute: use ``impute``"
    )
    impute: float | None = Field(default=None, description="Value used when missing (missing: impute)")
    impute_rule: str = Field(default="", description="How the imputed value was chosen, e.g. training median")
    training_range: tuple[float, float] | None = Field(
        default=None, description="[low, high] seen in training (warned outside)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not FEATURE_NAME.match(v):
            raise ValueError(f"{v!r} is not a feature name (letters, digits, _)")
        return v

    @model_validator(mode="after")
    def _impute(self) -> Self:
        if self.missing == "impute" and (self.impute is None or not math.isfinite(self.impute)):
            raise ValueError(f"feature {self.name}: missing 'impute' needs a finite impute value")
        return self

    def as_covariate(self) -> Covariate:
        """The same source as a covariate (for the shared binding code)."""
        return Covariate(
            name=self.name,
            source=self.source,
            unit=self.unit or self.source.unit,
            missing="reference" if self.impute is not None else "error",
            reference=self.impute,
            timing="locf",
            to_model=False,
        )


class TrainingData(Frozen):
    population: str = Field(min_length=1, description="Who the training patients were")
    n_subjects: int = Field(ge=1)
    n_samples: int | None = Field(default=None, ge=1, description="Rows, when more than one per subject")
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    sites: tuple[str, ...] = Field(min_length=1, description="Where the data came from")
    description: str = ""


class MLOutput(Frozen):
    """Which ONNX output (and column) holds the prediction, and its transform."""

    name: str | None = Field(default=None, description="ONNX output name (None: the first output)")
    column: int = Field(default=0, ge=0, description="Column of a [N, k] output (a class probability)")
    transform: Literal["identity", "exp"] = Field(
        default="identity", description="exp: the model predicts the natural log of the quantity"
    )


class ReferenceCase(Frozen):
    """One input row and the prediction any correct runtime must give (after the transform)."""

    inputs: dict[str, float]
    expected: float
    tolerance: float = Field(
        default=1e-6, gt=0, description="|got - expected| <= tolerance * max(1, |expected|)"
    )

    @model_validator(mode="after")
    def _finite(self) -> Self:
        if not math.isfinite(self.expected) or any(not math.isfinite(v) for v in self.inputs.values()):
            raise ValueError("reference inputs and outputs must be finite")
        return self


class MLCard(Frozen):
    """What a registered ML model promises and how a patient's features are computed."""

    schema_version: Literal["1.0"] = ML_CARD_SCHEMA_VERSION
    kind: Literal["ml"] = "ml"
    id: str = Field(description="Registry id: lower case, digits, . _ -")
    version: str = Field(default="1", min_length=1)
    title: str = Field(min_length=1)
    description: str = ""
    drugs: tuple[Coding, ...] = Field(default=(), description="Drugs the prediction is for (none: any)")
    publications: tuple[Publication, ...] = ()
    contributors: tuple[Person, ...] = ()
    institution: str = Field(min_length=1)
    licence: str = Field(default="CC-BY-4.0", min_length=1)
    artefact: str = Field(default="model.onnx", description="The ONNX file's name in the archive")
    input_name: str | None = Field(default=None, description="ONNX input name (None: the only input)")
    predicts: Predicted
    output: MLOutput = MLOutput()
    features: tuple[MLFeature, ...] = Field(min_length=1)
    training: TrainingData
    intended_use: str = Field(min_length=1)
    limits: tuple[str, ...] = Field(
        default=(), description="Known limits: populations, ranges, failure modes"
    )
    reference_cases: tuple[ReferenceCase, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not MODEL_ID.match(v):
            raise ValueError(f"breaks the model id rule {MODEL_ID_RULE}")
        return v

    @field_validator("artefact")
    @classmethod
    def _artefact(cls, v: str) -> str:
        if v.startswith("/") or ".." in v.split("/") or not v.endswith(".onnx"):
            raise ValueError(f"{v!r} must be a relative path inside the archive ending in .onnx")
        return v

    @model_validator(mode="after")
    def _features(self) -> Self:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        for f in self.features:
            if f.source.measurement is not None and f.source.unit and f.unit and f.unit != f.source.unit:
                raise ValueError(
                    f"feature {f.name}: unit {f.unit!r} differs from its source's {f.source.unit!r}"
                )
        _check_derived(tuple(f.as_covariate() for f in self.features))
        for k, case in enumerate(self.reference_cases):
            if set(case.inputs) != set(names):
                raise ValueError(
                    f"reference case {k}: inputs must name every feature ({', '.join(names)}), "
                    f"got {', '.join(sorted(case.inputs))}"
                )
        if self.predicts.kind == "probability" and self.output.transform != "identity":
            raise ValueError("a probability is predicted as is (transform identity)")
        return self

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"
