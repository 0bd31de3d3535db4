"""HTTP routes for the twin: fit, forecast, recommend (FastAPI router factory).

The app (built elsewhere, with authentication) passes how to load a model version and the
dependency that admits readers; this module stays free of registry and auth details.
Compute runs in FastAPI's thread pool (sync endpoints); each compiled model has its own lock.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from interop.errors import InteropError, NotFoundError, PermissionDenied
from interop.schema import ModelCard, PatientRecord
from interop.schema.patient import Route
from interop.twin import bind_patient, estimate_map, load_model
from interop.twin.binding import Twin
from interop.twin.covariates import describe_covariates
from interop.twin.estimate import MapResult
from interop.twin.fhir_export import forecast_bundle, recommendation_bundle
from interop.twin.forecast import forecast
from interop.twin.recommend import RegimenOptions, Target, continue_regimen, recommend_dose

__all__ = ["make_router"]

ModelLoader = Callable[[str, int | None], tuple[str, ModelCard]]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Registry model id")
    version: int | None = Field(default=None, ge=1, description="Version (default: latest)")
    patient: PatientRecord
    starts: int = Field(default=3, ge=1, le=20)


class FitRequest(_Request):
    pass


class ForecastRequest(_Request):
    until_h: float | None = Field(default=None, gt=0)
    points: int = Field(default=200, ge=2, le=2000)
    n_draws: int = Field(default=500, ge=10, le=5000)
    fhir: bool = False
    continue_regimen: bool = Field(
        default=False, description="Continued therapy: repeat the last dose and interval past the last dose"
    )


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["trough", "peak", "auc", "time_above"]
    low: float = Field(default=0.0, description="Lower end (0: only a ceiling)")
    high: float | None = Field(default=None, description="Upper end (none: only a floor); AUC is AUC24")
    observable: str | None = None
    threshold: float | None = None
    window_start_h: float | None = Field(
        default=None, description="AUC24 from this hour after the first new dose (default: steady state)"
    )

    def build(self) -> Target:
        high = math.inf if self.high is None else self.high
        return Target(self.kind, self.low, high, self.observable, self.threshold, self.window_start_h)


def _as_route_gives() -> list[float | None]:
    return [None]


class RegimenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amounts: list[float] = Field(min_length=1, max_length=50)
    intervals_h: list[float] = Field(min_length=1, max_length=20)
    durations_h: list[float | None] = Field(default_factory=_as_route_gives, min_length=1, max_length=10)
    route: Route | None = None
    start_h: float | None = None
    n_doses: int = Field(default=8, ge=1, le=100)
    loading_amounts: list[float | None] = Field(default_factory=_as_route_gives, min_length=1, max_length=10)
    hold: bool = Field(
        default=False, description="Start once the predicted level is below the trough ceiling"
    )


class RecommendRequest(_Request):
    target: TargetIn
    also: list[TargetIn] = Field(
        default_factory=list, max_length=5, description="More targets, all to be met"
    )
    regimen: RegimenIn
    n_draws: int = Field(default=200, ge=10, le=2000)
    fhir: bool = False


def _http(exc: InteropError) -> HTTPException:
    if isinstance(exc, NotFoundError):
        return HTTPException(404, detail=str(exc))
    if isinstance(exc, PermissionDenied):
        return HTTPException(403, detail=str(exc))
    return HTTPException(422, detail=str(exc))


def make_router(load_model_version: ModelLoader, reader_dependency: Callable[..., Any]) -> APIRouter:
    """Routes ``POST /twin/fit``, ``/twin/forecast``, ``/twin/recommend`` for readers."""
    router = APIRouter(prefix="/twin", tags=["twin"], dependencies=[Depends(reader_dependency)])

    def fitted(req: _Request) -> tuple[Twin, MapResult]:
        sbml, card = load_model_version(req.model, req.version)
        twin = bind_patient(load_model(sbml, card), req.patient)
        return twin, estimate_map(twin, starts=req.starts)

    def header(twin: Twin) -> dict[str, Any]:
        return {
            "model": f"{twin.card.id}@{twin.card.version}",
            "model_sha256": twin.model.sha256,
            "patient_id": twin.patient_id,
            "origin": twin.origin.isoformat(),
            "notes": list(twin.notes),
            **describe_covariates(twin),
        }

    @router.post("/fit", summary="MAP individualisation from the patient's drug levels")
    def fit(req: FitRequest) -> dict[str, Any]:
        try:
            twin, result = fitted(req)
        except InteropError as exc:
            raise _http(exc) from exc
        return {**header(twin), "fit": result.to_dict()}

    @router.post("/forecast", summary="A posteriori forecast with a 90% interval")
    def forecast_route(req: ForecastRequest) -> dict[str, Any]:
        try:
            twin, result = fitted(req)
            last = max([*(d.time_h for d in twin.doses), *(o.time_h for o in twin.observations), 0.0])
            grid = np.linspace(0.0, req.until_h or last + 48.0, req.points)
            if req.continue_regimen:
                extended, assumed = continue_regimen(twin, float(grid[-1]))
                twin = dataclasses.replace(extended, notes=(*twin.notes, assumed))
            fc = forecast(twin, result, grid, n_draws=req.n_draws)
        except InteropError as exc:
            raise _http(exc) from exc
        out = {**header(twin), "fit": result.to_dict(), "forecast": fc.to_dict()}
        if req.fhir:
            out["fhir"] = forecast_bundle(twin, fc).model_dump(mode="json", exclude_none=True)
        return out

    @router.post("/recommend", summary="The regimen that best reaches an exposure target")
    def recommend(req: RecommendRequest) -> dict[str, Any]:
        try:
            targets = [t.build() for t in (req.target, *req.also)]
            options = RegimenOptions(
                tuple(req.regimen.amounts),
                tuple(req.regimen.intervals_h),
                tuple(req.regimen.durations_h),
                req.regimen.route,
                req.regimen.start_h,
                req.regimen.n_doses,
                tuple(req.regimen.loading_amounts),
                req.regimen.hold,
            )
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        try:
            twin, result = fitted(req)
            rec = recommend_dose(twin, result, targets, options, n_draws=req.n_draws)
            end = rec.start_h + rec.n_doses * rec.best.interval_h
            fc = forecast(rec.twin, result, np.linspace(0.0, end, 200), n_draws=req.n_draws)
        except InteropError as exc:
            raise _http(exc) from exc
        out = {**header(twin), "fit": result.to_dict(), "recommendation": rec.to_dict()}
        if req.fhir:
            out["fhir"] = recommendation_bundle(rec, fc, step=10).model_dump(mode="json", exclude_none=True)
        return out

    return router
