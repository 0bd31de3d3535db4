"""The twin workspace: pick a model and a patient (upload FHIR or an imported record), see how the
record binds, then fit + forecast or recommend a dose as a background job the page polls; the
result shows the MAP estimates, the interactive figure (PNG beside it) and the regimen table, with
the FHIR MedicationRequest proposal to download. The work is the twin workflows' (fit_patient,
forecast_patient, recommend_for_patient), the same the CLI and the API run."""

from __future__ import annotations

import math
import re
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from interop.errors import InteropError, TwinError
from interop.schema.model_id import parse_model_ref
from interop.twin.display import format_quantity
from interop.twin.model import parameter_units
from interop.twin.recommend import RegimenOptions, Target
from interop.web.deps import check_csrf, page_registry, render, require_role, session_of
from interop.web.figures import concentration_figure
from interop.web.jobs import Progress
from interop.workflows.twin import forecast_patient, recommend_for_patient
from interop.workflows.workspace import (
    binding_summary,
    import_upload,
    imported_records,
    load_imported,
    upload_folder,
)
from registry import SearchQuery

__all__ = ["router", "numbers"]

router = APIRouter()
Ref = Annotated[str | None, Query(max_length=80)]
SAFE = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")


def numbers(text: str, field: str, *, allow_none: bool = False) -> tuple[Any, ...]:
    """``"80, 120 160"`` -> (80.0, 120.0, 160.0); ``-`` or ``none`` for None when allowed."""
    out: list[float | None] = []
    for part in re.split(r"[,\s;]+", text.strip()):
        if not part:
            continue
        if allow_none and part.lower() in ("-", "none", "bolus"):
            out.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise TwinError(f"{field}: {part[:20]!r} is not a number", field=field) from None
        if not math.isfinite(value) or value <= 0:
            raise TwinError(f"{field}: {part[:20]!r} must be a positive number", field=field)
        out.append(value)
    if not out:
        raise TwinError(f"{field}: give at least one value", field=field)
    return tuple(out)


def _models(request: Request) -> list[Any]:
    page = page_registry(request).search(SearchQuery(latest_only=True, per_page=1000))
    return page.items


def workspace_url(model: str | None, patient: str | None, folder: str | None, job: str | None = None) -> str:
    q = {k: v for k, v in (("model", model), ("patient", patient), ("folder", folder), ("job", job)) if v}
    return "/twin" + ("?" + urlencode(q) if q else "")


@router.get("/twin", response_class=HTMLResponse)
def workspace(
    request: Request,
    model: Ref = None,
    patient: Annotated[str | None, Query(max_length=128)] = None,
    folder: Annotated[str | None, Query(max_length=200)] = None,
    job: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    user = require_role(request, "reader")
    folder = folder or upload_folder(user.institution)
    settings = request.app.state.settings
    binding = stored = None
    error = None
    if model and patient and folder:
        try:
            ref = parse_model_ref(model)
            stored = page_registry(request).get(ref.model_id, ref.version)
            record = load_imported(settings, patient, folder, user.institution)
            binding = binding_summary(stored.sbml, stored.card, record)
        except InteropError as exc:
            error = str(exc)
    running = request.app.state.jobs.get(job, session_of(request).owner) if job else None
    return render(
        request,
        "twin.html",
        models=_models(request),
        records=imported_records(settings, user.institution),
        model=model,
        patient=patient,
        folder=folder,
        stored=stored,
        binding=binding,
        error=error,
        job=running,
        fmt=format_quantity,
    )


@router.post("/twin/upload", dependencies=[Depends(check_csrf)])
async def upload(
    request: Request,
    file: Annotated[UploadFile, File()],
    model: Annotated[str | None, Form(max_length=80)] = None,
) -> RedirectResponse:
    user = require_role(request, "reader")
    settings = request.app.state.settings
    limit = request.app.state.api_app.state.api_settings.max_upload_bytes
    raw = await file.read(limit + 1)
    if len(raw) > limit:
        raise HTTPException(413, "upload exceeds the limit")
    records, report = await run_in_threadpool(
        import_upload, settings, raw, file.filename or "upload.json", user.institution
    )
    t = report.totals()
    top, more = report.top_rejections(3)
    reasons = "; ".join(f"{i.resource_type}: {i.reason}" for i in top) + (
        f"; {more} more" if more > 0 else ""
    )
    session_of(request).flash.append(
        f"Imported {len(records)} patient record(s): {t['read']} resources read, {t['converted']} converted, "
        f"{t['rejected']} rejected, {t['skipped']} skipped." + (f" Rejected: {reasons}." if top else "")
    )
    return RedirectResponse(
        workspace_url(model, records[0].patient.id, upload_folder(user.institution)), status_code=303
    )


def _result(outcome: Any, kind: str, target: tuple[float, float] | None, out_dir: Path) -> dict[str, Any]:
    twin, fit, fc, rec = outcome.twin, outcome.fit, outcome.forecast, outcome.recommendation
    card = twin.card
    units = dict(describe_units(twin))
    if rec is not None:
        fig = concentration_figure(
            rec.twin,
            fc,
            rec.observable,
            title=f"Recommended: {rec.summary_line().split(':')[0]}",
            target=target,
        )
        png, fhir = "recommendation.png", "recommendation.fhir.json"
    else:
        obs = card.observables[0].id
        fig = concentration_figure(twin, fc, obs, title=f"Forecast, {card.title}", target=target)
        png, fhir = "forecast.png", "forecast.fhir.json"
    result: dict[str, Any] = {
        "kind": kind,
        "out_dir": str(out_dir),
        "png": png,
        "fhir": fhir,
        "figure": fig,
        "fit": {
            "etas": fit.etas,
            "se": fit.standard_errors,
            "individual": fit.individual_parameters,
            "units": units,
            "ofv": fit.ofv,
            "converged": fit.converged,
            "n_observations": fit.n_observations,
        },
        "notes": list(twin.notes),
    }
    if rec is not None:
        result["recommendation"] = {
            "summary": rec.summary_line(),
            "targets": [
                {"label": t.label(), "unit": t.unit(rec.unit), "low": t.low, "high": t.high}
                for t in rec.targets
            ],
            "amount_unit": rec.amount_unit,
            "unit": rec.unit,
            "start_h": rec.start_h,
            "n_doses": rec.n_doses,
            "route": rec.route,
            "notes": list(rec.notes),
            "best": _candidate(rec.best),
            "candidates": [_candidate(c) for c in rec.candidates],
        }
    return result


def describe_units(twin: Any) -> dict[str, str]:
    return parameter_units(twin.model.sbml, twin.card)  # type: ignore[no-any-return]


def _candidate(c: Any) -> dict[str, Any]:
    return {
        "amount": c.amount,
        "interval_h": c.interval_h,
        "duration_h": c.duration_h,
        "loading": c.loading_amount,
        "exposure": c.exposure,
        "p05": c.exposure_p05,
        "p95": c.exposure_p95,
        "pta": c.probability,
        "in_range": c.in_range,
        "summary": dict(c.summary),
    }


@router.post("/twin/run", dependencies=[Depends(check_csrf)])
def run(
    request: Request,
    model: Annotated[str, Form(max_length=80)],
    patient: Annotated[str, Form(max_length=128)],
    folder: Annotated[str, Form(max_length=200)],
    kind: Annotated[str, Form(pattern="^(forecast|recommend)$")] = "forecast",
    target_kind: Annotated[str, Form(pattern="^(trough|peak|auc|time_above)$")] = "trough",
    target_low: Annotated[float | None, Form()] = None,
    target_high: Annotated[float | None, Form()] = None,
    threshold: Annotated[float | None, Form()] = None,
    amounts: Annotated[str, Form(max_length=500)] = "",
    intervals: Annotated[str, Form(max_length=200)] = "",
    durations: Annotated[str, Form(max_length=200)] = "-",
    n_doses: Annotated[int, Form(ge=1, le=100)] = 6,
) -> RedirectResponse:
    user = require_role(request, "reader")
    settings = request.app.state.settings
    ref = parse_model_ref(model)
    stored = page_registry(request).get(ref.model_id, ref.version)
    record = load_imported(settings, patient, folder, user.institution)
    target_range: tuple[float, float] | None = None
    if target_low is not None or target_high is not None:
        target_range = (target_low or 0.0, target_high if target_high is not None else math.inf)
    options = None
    target = None
    if kind == "recommend":
        if target_range is None:
            raise TwinError("a recommendation needs a target range (low and/or high)", field="target")
        try:
            target = Target(target_kind, target_range[0], target_range[1], None, threshold)  # type: ignore[arg-type]
            options = RegimenOptions(
                numbers(amounts, "amounts"),
                numbers(intervals, "intervals"),
                numbers(durations or "-", "durations", allow_none=True),
                n_doses=n_doses,
            )
        except ValueError as exc:
            raise TwinError(str(exc), field="target") from exc
    jobs = request.app.state.jobs
    out_dir: Path = settings.home / "web-jobs" / secrets.token_hex(12)

    def work(progress: Progress) -> dict[str, Any]:
        progress(0.1, "binding the patient and fitting (MAP)")
        if kind == "recommend":
            assert target is not None and options is not None
            progress(0.3, "fitting, then searching the regimens")
            outcome = recommend_for_patient(stored.sbml, stored.card, record, target, options, out_dir)
            band = target_range if target_kind in ("trough", "peak") else None
        else:
            outcome = forecast_patient(stored.sbml, stored.card, record, out_dir, target=target_range)
            band = target_range
        progress(0.9, "drawing the figures")
        return _result(outcome, kind, band, out_dir)

    job = jobs.submit(session_of(request).owner, "twin", work, workdir=out_dir)
    return RedirectResponse(workspace_url(model, patient, folder, job.id), status_code=303)


@router.get("/jobs/{job_id}")
def job_status(request: Request, job_id: str) -> JSONResponse:
    """Progress of one of this session's jobs (the pages poll it)."""
    job = request.app.state.jobs.get(job_id, session_of(request).owner)
    if job is None:
        raise HTTPException(404, "no such job in this session")
    return JSONResponse(job.to_dict())


@router.get("/twin/jobs/{job_id}/{name}")
def job_file(request: Request, job_id: str, name: str) -> FileResponse:
    """The PNG figure or the FHIR bundle a finished twin job wrote (only those two names)."""
    require_role(request, "reader")
    job = request.app.state.jobs.get(job_id, session_of(request).owner)
    if job is None or job.state != "done" or name not in (job.result["png"], job.result["fhir"]):
        raise HTTPException(404, "no such file for this job")
    path = Path(job.result["out_dir"]) / name
    media = "image/png" if name.endswith(".png") else "application/fhir+json"
    headers = {} if name.endswith(".png") else {"Content-Disposition": f'attachment; filename="{name}"'}
    return FileResponse(path, media_type=media, headers=headers)
