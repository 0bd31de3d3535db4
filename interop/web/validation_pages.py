"""The validation dashboard: run ``validate`` of a registered model on an imported cohort as a
background job with progress, show its HTML report inline, and submit the aggregate record (never a
patient row) with its VPC and NPDE images (aggregate plots) to the registry as the signed-in site."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from interop.schema.model_id import parse_model_ref
from interop.validation.report import SHARED_PLOTS, shared_images
from interop.web.deps import check_csrf, page_registry, render, require_role, session_of
from interop.web.jobs import Job, Progress
from interop.workflows.validate import validate_cohort
from interop.workflows.workspace import cohort_folders, cohort_path
from registry import SearchQuery

__all__ = ["router"]

router = APIRouter()


@router.get("/validation", response_class=HTMLResponse)
def dashboard(
    request: Request,
    model: Annotated[str | None, Query(max_length=80)] = None,
    cohort: Annotated[str | None, Query(max_length=200)] = None,
    job: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    user = require_role(request, "reader")
    models = page_registry(request).search(SearchQuery(latest_only=True, per_page=1000)).items
    running = request.app.state.jobs.get(job, session_of(request).owner) if job else None
    return render(
        request,
        "validation.html",
        models=models,
        cohorts=cohort_folders(request.app.state.settings, user.institution),
        model=model,
        cohort=cohort,
        job=running,
    )


@router.post("/validation/run", dependencies=[Depends(check_csrf)])
def run(
    request: Request,
    model: Annotated[str, Form(max_length=80)],
    cohort: Annotated[str, Form(max_length=200)],
    n_sim: Annotated[int, Form(ge=20, le=1000)] = 100,
    iterative: Annotated[bool, Form()] = False,
) -> RedirectResponse:
    user = require_role(request, "reader")
    settings = request.app.state.settings
    ref = parse_model_ref(model)
    page_registry(request).get(ref.model_id, ref.version)  # 404 now, not in the job
    folder = cohort_path(settings, cohort, user.institution)
    out_dir = settings.home / "web-jobs" / secrets.token_hex(12)
    scheduler = request.app.state.validation_scheduler

    def work(progress: Progress) -> dict[str, Any]:
        progress(0.02, "loading the model and the cohort")

        def tick(done: int, total: int) -> None:
            progress(0.05 + 0.9 * done / max(total, 1), f"validated {done} of {total} batches")

        stored, outcome = validate_cohort(
            settings,
            model,
            folder,
            out_dir,
            site=user.institution or user.name,
            n_sim=n_sim,
            iterative=iterative,
            batch_size=5,
            scheduler=scheduler,
            workers=1,
            n_boot=200,
            progress=tick,
        )
        return {
            "model": f"{stored.model_id}@{stored.version}",
            "report": str(outcome.report_path),
            "record": outcome.record.model_dump_json(),
            "metrics": [m.model_dump() for m in outcome.record.metrics],
            "images": {t: str(p) for t, p in outcome.plots.items() if t.startswith(SHARED_PLOTS)},
            "submitted": None,
        }

    job = request.app.state.jobs.submit(session_of(request).owner, "validation", work, workdir=out_dir)
    q = urlencode({"model": model, "cohort": cohort, "job": job.id})
    return RedirectResponse(f"/validation?{q}", status_code=303)


def _finished(request: Request, job_id: str) -> Job:
    job = request.app.state.jobs.get(job_id, session_of(request).owner)
    if job is None or job.state != "done" or job.kind != "validation":
        raise HTTPException(404, "no finished validation job of that id in this session")
    return job  # type: ignore[no-any-return]


@router.get("/validation/jobs/{job_id}/report.html")
def report(request: Request, job_id: str) -> FileResponse:
    """The run's self-contained HTML report (shown inline in a frame)."""
    require_role(request, "reader")
    return FileResponse(Path(_finished(request, job_id).result["report"]), media_type="text/html")


@router.post("/validation/jobs/{job_id}/submit", dependencies=[Depends(check_csrf)])
def submit(request: Request, job_id: str) -> RedirectResponse:
    """Send the aggregate record to the registry as this user's site (contributors)."""
    from interop.schema import ValidationRecord, parse_json

    user = require_role(request, "contributor")
    job = _finished(request, job_id)
    record = parse_json(ValidationRecord, job.result["record"], source="validation record")
    images = shared_images({t: Path(p) for t, p in job.result.get("images", {}).items()})
    rid = page_registry(request).add_validation_record(record, principal=user, images=images)
    job.result["submitted"] = rid
    session_of(request).flash.append(
        f"Submitted validation record {rid} for {record.model_id}@{record.model_version}"
        + (f" with {len(images)} VPC/NPDE images." if images else ".")
    )
    return RedirectResponse(
        f"/models/{record.model_id}?version={record.model_version}#site-records", status_code=303
    )
