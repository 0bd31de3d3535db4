"""Hybrid twins: ML models named by the card (``ml_models``) supply an SBML parameter per patient.

For each link the ML model's features are computed from the patient record at the twin's origin
(the first dose or level): measurements aggregated over their look-back window, every other
source read as the card's covariates are (:func:`interop.twin.covariates.read_source`). The
prediction is written to the link's parameter as a constant covariate series — replacing its
value, or multiplying the SBML's own value — and, for a typical value that replaces the covariate
model, the covariates it replaces are held at their reference value. MAP then individualises
on top through the card's ETAs; nothing else in the runtime changes.

Missing features (chosen, stated in docs/ml-models.md, tested): a feature the ML card allows to
impute takes its stated value (reported as imputed); any other missing feature either refuses
the patient (link ``on_missing: refuse``, a ``TwinError`` naming the feature) or keeps the
mechanistic value for that patient (``mechanistic``, the default), reported as a fallback. Every
output names the ML model version (id, version, SHA-256) that took part, or why none did.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from interop.errors import ModelError, SchemaError, TwinError
from interop.schema import Covariate, MLCard, MLLink, MLModelUse, ModelCard, PatientRecord, parse
from interop.schema.analytes import convert_analyte, same_analyte
from interop.schema.ml_card import MLFeature
from interop.schema.onnx_model import OnnxPredictor, predictor
from interop.schema.units import UnitError
from interop.twin.binding import CovariateSeries
from interop.twin.covariates import CovariateBinding, CovariateReport, dependency_order, read_source
from interop.twin.model import CompiledModel

__all__ = ["FeatureRow", "MLContribution", "apply_ml_models", "ml_features", "ml_model_uses", "ml_predictor"]

_AGGREGATE: dict[str, Callable[[Sequence[float]], float]] = {
    "last": lambda v: v[-1],
    "first": lambda v: v[0],
    "mean": statistics.fmean,
    "median": statistics.median,
    "min": min,
    "max": max,
}


@dataclass(frozen=True)
class FeatureRow:
    """One patient's features for one ML model: values (None: missing), with what was done."""

    values: dict[str, float | None]
    imputed: dict[str, str]  # feature -> why and with which rule
    missing: dict[str, str]  # feature -> why (not imputable)
    sources: dict[str, tuple[str, ...]]
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class MLContribution:
    """What one ML model did for one twin."""

    link: MLLink
    use: MLModelUse
    features: FeatureRow
    prediction: float | None  # None: fell back to the mechanistic value
    value: float  # written to the parameter
    fallback: str | None

    def to_dict(self) -> dict[str, object]:
        return {
            "model": f"{self.use.model_id}@{self.use.model_version}",
            "sha256": self.use.sha256,
            "role": self.use.role,
            "parameter": self.use.parameter,
            "mode": self.link.mode,
            "prediction": self.prediction,
            "value": self.value,
            "fell_back_to_mechanistic": self.fallback is not None,
            "fallback_reason": self.fallback,
            "replaced_covariates": list(self.link.replaces_covariates) if self.fallback is None else [],
            "features": self.features.values,
            "imputed": self.features.imputed,
            "feature_sources": {k: list(v) for k, v in self.features.sources.items()},
            "warnings": list(self.features.warnings),
        }


def _ml_card(link: MLLink) -> MLCard:
    if link.resolved is None:
        raise ModelError(
            f"ML model {link.model} is not loaded: load the card through the registry "
            "(interop resolves ml_models there) before binding patients",
            source=link.model,
            field="ml_models",
        )
    return parse(MLCard, link.resolved.card, source=link.model)


_BY_LINK: dict[int, tuple[object, OnnxPredictor]] = {}


def ml_predictor(link: MLLink) -> OnnxPredictor:
    """The (cached) onnxruntime predictor of a resolved link: parsed and hashed once per loaded
    card, not once per patient."""
    hit = _BY_LINK.get(id(link.resolved))
    if hit is not None and hit[0] is link.resolved:
        return hit[1]
    card = _ml_card(link)
    assert link.resolved is not None
    made = predictor(link.resolved.onnx_base64, card)
    if len(_BY_LINK) > 64:
        _BY_LINK.clear()
    _BY_LINK[id(link.resolved)] = (link.resolved, made)
    return made


def ml_model_uses(card: ModelCard) -> tuple[MLModelUse, ...]:
    """The ML model versions a (resolved) hybrid card brings into every twin, for records."""
    out = []
    for link in card.ml_models:
        if link.resolved is None:
            raise ModelError(f"ML model {link.model} is not loaded", source=card.id, field="ml_models")
        out.append(
            MLModelUse(
                model_id=link.model_id,
                model_version=link.resolved.version,
                sha256=link.resolved.sha256,
                role=link.role,
                parameter=link.parameter,
            )
        )
    return tuple(out)


def _measurement(
    f: MLFeature, record: PatientRecord, origin: dt.datetime
) -> tuple[float | None, tuple[str, ...], str]:
    src = f.source
    assert src.measurement is not None
    start = origin - dt.timedelta(hours=f.window_h)
    rows = sorted(
        (
            m
            for m in record.measurements
            if same_analyte(m.code, src.measurement) and start <= m.time <= origin
        ),
        key=lambda m: m.time,
    )
    if not rows:
        return (
            None,
            (),
            f"no {src.measurement.display or src.measurement.code} in the {f.window_h:g} h before",
        )
    try:
        vals = [convert_analyte(m.value, m.unit, f.unit or src.unit or m.unit, m.code) for m in rows]
    except UnitError as exc:
        raise TwinError(str(exc), source=rows[0].id, field=f.name) from exc
    return _AGGREGATE[f.aggregation](vals), tuple(m.id for m in rows), ""


def ml_features(card: MLCard, record: PatientRecord, origin: dt.datetime) -> FeatureRow:
    """The card's features of ``record`` at ``origin`` (see the module docstring for the rules)."""
    by_name = {f.name: f for f in card.features}
    values: dict[str, float | None] = {}
    imputed: dict[str, str] = {}
    missing: dict[str, str] = {}
    sources: dict[str, tuple[str, ...]] = {}
    bound: dict[str, CovariateBinding] = {}
    warnings = []
    for cov in _ordered_covariates(card):
        f = by_name[cov.name]
        value: float | None
        if f.source.measurement is not None:
            value, used, why = _measurement(f, record, origin)
        elif f.source.derived is not None and any(values.get(n) is None for n in _derived_inputs(f)):
            value, used, why = None, (), "an input is missing"
        else:
            try:
                series, used, _notes, why_missing = read_source(cov, record, origin, bound)
            except (TwinError, SchemaError) as exc:
                series, used, why_missing = None, (), exc.message
            value = None if series is None else series.at(0.0)
            why = why_missing or "no value"
        if value is None and f.missing == "impute" and f.impute is not None:
            value = f.impute
            imputed[f.name] = f"{why}: imputed {f.impute:g} ({f.impute_rule or 'the card states the value'})"
        elif value is None:
            missing[f.name] = why
        values[f.name] = value
        sources[f.name] = used
        if value is not None:
            bound[f.name] = CovariateBinding(
                f.name, cov.source.kind, "at origin", _const(f.name, value), f.unit
            )
            rng = f.training_range
            if rng is not None and not rng[0] <= value <= rng[1]:
                warnings.append(
                    f"feature {f.name} = {value:g} outside the training range [{rng[0]:g}, {rng[1]:g}]"
                )
    return FeatureRow(values, imputed, missing, sources, tuple(warnings))


_ORDERED: dict[int, tuple[MLCard, list[Covariate]]] = {}


def _ordered_covariates(card: MLCard) -> list[Covariate]:
    """The features as covariates, inputs before formulas: built once per card object."""
    hit = _ORDERED.get(id(card))
    if hit is not None and hit[0] is card:
        return hit[1]
    covs = dependency_order([f.as_covariate() for f in card.features])
    if len(_ORDERED) > 64:
        _ORDERED.clear()
    _ORDERED[id(card)] = (card, covs)
    return covs


def _derived_inputs(f: MLFeature) -> list[str]:
    """The features a derived feature's formula reads."""
    from interop.schema.formulas import derived_inputs

    assert f.source.derived is not None
    return sorted(derived_inputs(f.source.derived))


def _const(name: str, value: float) -> CovariateSeries:
    return CovariateSeries(name, (0.0,), (float(value),))


def apply_ml_models(
    model: CompiledModel, record: PatientRecord, origin: dt.datetime, report: CovariateReport
) -> tuple[CovariateReport, tuple[MLContribution, ...]]:
    """The covariate report with every ML link applied (its parameter bound, replaced covariates
    held at their reference) and what each ML model did; see the module docstring."""
    card = model.card
    bindings = list(report.bindings)
    extra: list[str] = list(report.extra_warnings)
    done: list[MLContribution] = []
    for link, use in zip(card.ml_models, ml_model_uses(card), strict=True):
        p = ml_predictor(link)
        row = ml_features(p.card, record, origin)
        mechanistic = model.defaults.get(link.parameter)
        if mechanistic is None:
            raise ModelError(
                f"ML model {link.model} writes {link.parameter!r}, which is not a settable SBML parameter",
                source=card.id,
                field="ml_models",
            )
        fallback = None
        prediction = None
        if not row.complete:
            reasons = "; ".join(f"{k}: {v}" for k, v in row.missing.items())
            if link.on_missing == "refuse":
                raise TwinError(
                    f"patient {record.patient.id}: ML model {link.model} lacks feature(s) ({reasons}) "
                    "and the card refuses the patient without them",
                    source=record.patient.id,
                    field=next(iter(row.missing)),
                )
            fallback = f"missing feature(s) {reasons}: mechanistic value kept"
            value = mechanistic
        else:
            prediction = p.predict_one({k: float(v) for k, v in row.values.items() if v is not None})
            value = prediction if link.mode == "replace" else mechanistic * prediction
        contribution = MLContribution(link, use, row, prediction, float(value), fallback)
        done.append(contribution)
        note = (
            f"{link.role} from ML model {link.model} (sha256 {use.sha256[:12]}…)"
            if fallback is None
            else f"ML model {link.model}: {fallback}"
        )
        bindings.append(
            CovariateBinding(
                name=link.parameter,
                kind="ml",
                timing="at origin",
                series=_const(link.parameter, value),
                unit=p.card.predicts.unit,
                records=tuple(r for rs in row.sources.values() for r in rs),
                sources=(f"{link.model} sha256 {use.sha256}",),
                notes=(note, *row.imputed.values()),
                out_of_range=row.warnings,
            )
        )
        if fallback is not None:
            extra.append(f"{link.parameter}: {fallback}")
            continue
        for name in link.replaces_covariates:
            k = next(i for i, b in enumerate(bindings) if b.name == name)
            ref = next(c.reference for c in card.covariates if c.name == name)
            assert ref is not None
            bindings[k] = replace(
                bindings[k],
                series=_const(name, ref),
                notes=(
                    *bindings[k].notes,
                    f"held at its reference {ref:g}: ML model {link.model} replaces it",
                ),
            )
    return CovariateReport(tuple(bindings), tuple(extra)), tuple(done)
