"""Registry pages: search, a model version's page (card tables, annotations, history, validation
evidence, site records, downloads) and the lifecycle forms (submit, validate, publish, deprecate,
withdraw). Each page calls the same registry methods as the JSON API route behind it; the registry
service enforces roles and institution ownership (PermissionDenied -> 403), the guards here refuse
early with the API's answers."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from interop.schema import ModelCard, parse_json
from interop.schema.model_id import MODEL_ID_RULE
from interop.web.deps import check_csrf, page_registry, render, require_role
from interop.web.figures import stage_figure, stage_png
from interop.workflows.stage_plots import StagePlot, stage_plots
from interop.workflows.workspace import parameter_table
from registry import SearchQuery, StoredRecord, ValidationReport, available_formats
from registry.auditlog import AuditFilter
from registry.rdf import BQBIOL, BQMODEL

__all__ = ["router", "identifiers_link", "report_view"]

router = APIRouter()
ModelId = Annotated[str, Query(pattern=MODEL_ID_RULE, max_length=64)]
Term = Annotated[str | None, Query(max_length=500)]
FILTERS = ("text", "drug", "atc", "rxnorm", "annotation", "institution", "status", "format")
STATUSES = ("submitted", "validated", "published", "deprecated", "withdrawn")
PER_PAGE = 20
_PLOT = re.compile(r"^plot (?P<name>\S+) sha256 (?P<sha>[0-9a-f]{64})$")
_RXNORM_PURL = re.compile(r"^https?://purl\.bioontology\.org/ontology/RXNORM/(\d+)$")
_MIRIAM = re.compile(r"^urn:miriam:(?P<ns>[^:]+):(?P<id>.+)$")


def identifiers_link(uri: str) -> str | None:
    """A resolvable identifiers.org URL for an annotation URI (``urn:miriam:...`` or already one)."""
    if uri.startswith(("https://identifiers.org/", "http://identifiers.org/")):
        return "https://" + uri.split("://", 1)[1]
    rxnorm = _RXNORM_PURL.match(uri)
    if rxnorm:
        return f"https://identifiers.org/rxnorm:{rxnorm[1]}"
    m = _MIRIAM.match(uri)
    if m:
        ident = m["id"].replace("%3A", ":")
        return (
            f"https://identifiers.org/{ident}"
            if ":" in ident
            else f"https://identifiers.org/{m['ns']}:{ident}"
        )
    return uri if uri.startswith("https://") else None


def _drug_link(system: str, code: str) -> str | None:
    if system.endswith("rxnorm"):
        return f"https://identifiers.org/rxnorm:{quote(code)}"
    if "atc" in system.lower():
        return f"https://identifiers.org/atc:{quote(code)}"
    return None


def report_view(report: ValidationReport | None) -> list[dict[str, Any]]:
    """Stages with their issues; SED-ML plots named by their evidence blob's hash."""
    if report is None:
        return []
    out = []
    for stage in report.stages:
        plots = []
        issues = []
        for issue in stage.issues:
            m = _PLOT.match(issue.message)
            if m:
                plots.append({"name": m["name"], "sha": m["sha"]})
            issues.append(issue)
        out.append(
            {
                "name": stage.name,
                "status": stage.status,
                "seconds": stage.seconds,
                "issues": issues,
                "plots": plots,
            }
        )
    return out


def _badge(report: ValidationReport | None) -> str:
    if report is None:
        return "not validated"
    return "passed" if report.is_valid else f"failed at {report.failed_stage.name}"  # type: ignore[union-attr]


@router.get("/models", response_class=HTMLResponse)
def search_page(
    request: Request,
    text: Term = None,
    drug: Term = None,
    atc: Term = None,
    rxnorm: Term = None,
    annotation: Term = None,
    institution: Term = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    format: Term = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = PER_PAGE,
) -> HTMLResponse:
    require_role(request, "reader")
    terms = {
        k: v
        for k, v in zip(
            FILTERS, (text, drug, atc, rxnorm, annotation, institution, status, format), strict=True
        )
        if v
    }
    registry = page_registry(request)
    result = registry.search(SearchQuery(**terms, page=page, per_page=per_page))  # type: ignore[arg-type]
    reports = registry.latest_reports([(i.model_id, i.version) for i in result.items])
    rows = [(item, _badge(reports.get((item.model_id, item.version)))) for item in result.items]

    def link(p: int) -> str:
        return "/models?" + urlencode({**terms, "page": p, "per_page": per_page})

    return render(
        request,
        "search.html",
        terms=terms,
        result=result,
        rows=rows,
        statuses=STATUSES,
        formats=sorted(available_formats()),
        prev_url=link(page - 1) if page > 1 else None,
        next_url=link(page + 1) if page < result.pages else None,
    )


def _annotations(registry: Any, model_id: str, version: int) -> list[dict[str, str | None]]:
    graph = registry.metadata_graph(model_id, version)
    rows = []
    for s, p, o in graph:
        ps = str(p)
        if ps.startswith((str(BQBIOL), str(BQMODEL))) and str(o).startswith(("http", "urn:miriam")):
            qualifier = ("bqbiol:" if ps.startswith(str(BQBIOL)) else "bqmodel:") + ps.rsplit("/", 1)[-1]
            tail = str(s).rsplit("/", 1)[-1].rsplit("#", 1)[-1]
            subject = "the model" if tail == str(version) else tail
            rows.append(
                {"subject": subject, "qualifier": qualifier, "uri": str(o), "link": identifiers_link(str(o))}
            )
    return sorted(rows, key=lambda r: (r["subject"] or "", r["qualifier"] or "", r["uri"] or ""))


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(
    request: Request,
    model_id: str,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> HTMLResponse:
    user = require_role(request, "reader")
    if not re.fullmatch(MODEL_ID_RULE, model_id):
        raise HTTPException(404, f"no model {model_id[:64]!r}")
    registry = page_registry(request)
    stored = registry.get(model_id, version)
    report = registry.report(model_id, stored.version)
    versions = registry.versions(model_id)
    history = registry.audit_page(AuditFilter(model_id=model_id), 1, 200).items
    card = stored.card_or_none
    drugs = (
        []
        if card is None
        else [
            {"system": d.system, "code": d.code, "display": d.display, "link": _drug_link(d.system, d.code)}
            for d in card.drugs
        ]
    )
    records = registry.validation_records(model_id, stored.version)
    may_change = user.at_least("contributor") and (
        user.role == "curator" or user.institution == stored.institution
    )
    return render(
        request,
        "model.html",
        stored=stored,
        card=card,
        drugs=drugs,
        versions=versions,
        history=history,
        report=report_view(report),
        badge=_badge(report),
        records=[r.record for r in records],
        comparison=_comparison([r.record for r in records]),
        site_images=_site_images(records),
        files=registry.files(model_id, stored.version),
        annotations=_annotations(registry, model_id, stored.version),
        parameters=parameter_table(stored.sbml, card),
        may_change=may_change,
        is_curator=user.at_least("curator"),
        simulated=report is not None
        and any(s.name == "simulate" and s.status == "passed" for s in report.stages)
        and card is not None,
    )


def _comparison(records: list[Any]) -> list[dict[str, Any]]:
    """One row per metric (name, setting, observable), one cell per site record, in record order."""
    rows: dict[tuple[str, str, str], list[str]] = {}
    for k, record in enumerate(records):
        for m in record.metrics:
            cells = rows.setdefault((m.name, m.setting, m.observable), [""] * len(records))
            ci = (
                f" ({m.ci_low:.3g} – {m.ci_high:.3g})"
                if m.ci_low is not None and m.ci_high is not None
                else ""
            )
            cells[k] = f"{m.value:.3g}{ci}"
    return [{"name": n, "setting": s, "observable": o, "cells": c} for (n, s, o), c in rows.items()]


def _site_images(records: list[StoredRecord]) -> list[dict[str, Any]]:
    """One row per image title (e.g. "VPC and pcVPC (tac)"), one cell per site record in record
    order: the record id and image position, or None where that site sent no such image."""
    rows: dict[str, list[dict[str, int] | None]] = {}
    for k, r in enumerate(records):
        for i in r.images:
            rows.setdefault(i.title, [None] * len(records))[k] = {"record": r.id, "position": i.position}
    return [{"title": t, "cells": c} for t, c in rows.items()]


@router.get("/models/{model_id}/versions/{version}/site-records/{record_id}/images/{position}.png")
def site_record_image(
    request: Request,
    model_id: str,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    record_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    position: Annotated[int, Path(ge=0, le=1000)],
) -> Response:
    """An image a site sent with its validation record (readers, as the records themselves)."""
    require_role(request, "reader")
    if not re.fullmatch(MODEL_ID_RULE, model_id):
        raise HTTPException(404, f"no model {model_id[:64]!r}")
    _, data = page_registry(request).record_image(model_id, version, record_id, position)
    return Response(data, media_type="image/png")


@router.get("/models/{model_id}/versions/{version}/evidence/{sha}")
def evidence(request: Request, model_id: str, version: int, sha: str) -> Response:
    """A plot the validation report lists as evidence of this version (only those: no blob by hash)."""
    require_role(request, "reader")
    registry = page_registry(request)
    stages = report_view(registry.report(model_id, version))
    if not any(p["sha"] == sha for s in stages for p in s["plots"]):
        raise HTTPException(404, "no such evidence in this version's report")
    return Response(registry.blobs.get(sha), media_type="image/png")


def _stage_plots(request: Request, model_id: str, version: int) -> list[StagePlot]:
    """The simulate/reproduce stages' curves of a version whose simulate stage ran."""
    require_role(request, "reader")
    registry = page_registry(request)
    stored = registry.get(model_id, version)
    report = registry.report(model_id, version)
    ran = report is not None and any(s.name == "simulate" and s.status == "passed" for s in report.stages)
    if not ran or stored.card_or_none is None:
        raise HTTPException(404, "no simulate stage passed for this version")
    return stage_plots(stored.sbml, stored.card)


@router.get("/models/{model_id}/versions/{version}/stage-plots.json")
def stage_plots_json(request: Request, model_id: str, version: int) -> JSONResponse:
    """Plotly figures of the simulate and reproduce stages (the model page loads them)."""
    plots = _stage_plots(request, model_id, version)
    return JSONResponse([stage_figure(p) for p in plots])


@router.get("/models/{model_id}/versions/{version}/stage-plots/{k}.png")
def stage_plot_png(request: Request, model_id: str, version: int, k: int) -> Response:
    plots = _stage_plots(request, model_id, version)
    if not 0 <= k < len(plots):
        raise HTTPException(404, f"no stage plot {k}")
    return Response(stage_png(plots[k]), media_type="image/png")


DOWNLOADS = {
    "sbml": ("application/sbml+xml", "{id}-{v}.xml"),
    "card": ("application/json", "{id}-{v}.card.json"),
    "omex": ("application/zip", "{id}-{v}.omex"),
    "turtle": ("text/turtle", "{id}-{v}.ttl"),
    "json-ld": ("application/ld+json", "{id}-{v}.jsonld"),
    "original": ("application/octet-stream", "{name}"),
}


@router.get("/models/{model_id}/versions/{version}/download/{kind}")
def download(request: Request, model_id: str, version: int, kind: str) -> Response:
    require_role(request, "reader")
    if kind not in DOWNLOADS:
        raise HTTPException(404, f"no download {kind[:20]!r}")
    registry = page_registry(request)
    stored = registry.get(model_id, version)
    media, name = DOWNLOADS[kind]
    fname = name.format(id=model_id, v=version, name="")
    if kind == "sbml":
        body: bytes = stored.sbml.encode()
    elif kind == "card":
        body = stored.card.model_dump_json(indent=2, exclude_none=True).encode()
    elif kind == "omex":
        body = registry.export_omex(model_id, version)
    elif kind in ("turtle", "json-ld"):
        body = registry.export_rdf(model_id, version, kind).encode()
    else:
        source = next((f for f in registry.files(model_id, version) if f.role == "source"), None)
        if source is None:
            raise HTTPException(404, "this version was submitted as SBML: download the SBML")
        body, fname = registry.file_bytes(source), source.path.rsplit("/", 1)[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", fname) or "download"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{safe}"'})


@router.post("/models/submit", dependencies=[Depends(check_csrf)])
async def submit(
    request: Request,
    file: Annotated[UploadFile, File()],
    card_file: Annotated[UploadFile | None, File()] = None,
    model_id: Annotated[str | None, Form(max_length=200)] = None,
) -> RedirectResponse:
    user = require_role(request, "contributor")
    settings = request.app.state.api_app.state.api_settings
    raw = await file.read(settings.max_upload_bytes + 1)
    if len(raw) > settings.max_upload_bytes:
        raise HTTPException(413, "upload exceeds the limit")
    card = None
    if card_file is not None and card_file.filename:
        text = (await card_file.read(1_000_001)).decode("utf-8", "replace")
        card = parse_json(ModelCard, text, source=card_file.filename)
    registry = page_registry(request)
    stored = await run_in_threadpool(
        lambda: registry.submit_file(
            raw, filename=file.filename, card=card, model_id=model_id or None, principal=user
        )
    )
    request.state.session.flash.append(f"Submitted {stored.model_id} version {stored.version}.")
    return RedirectResponse(f"/models/{stored.model_id}?version={stored.version}", status_code=303)


@router.post("/models/{model_id}/versions/{version}/{action}", dependencies=[Depends(check_csrf)])
def lifecycle(
    request: Request,
    model_id: str,
    version: int,
    action: str,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> RedirectResponse:
    """validate (contributors of the owning institution, curators); publish, deprecate, withdraw
    (curators)."""
    roles = {"validate": "contributor", "publish": "curator", "deprecate": "curator", "withdraw": "curator"}
    if action not in roles:
        raise HTTPException(404, f"no action {action[:20]!r}")
    user = require_role(request, roles[action])  # type: ignore[arg-type]
    registry = page_registry(request)
    if action == "validate":
        report = registry.validate(model_id, version, principal=user)
        message = f"Validation {'passed' if report.is_valid else 'failed'}."
    elif action == "publish":
        registry.publish(model_id, version, principal=user)
        message = "Published."
    elif action == "deprecate":
        registry.deprecate(model_id, version, principal=user, reason=reason)
        message = "Deprecated."
    else:
        registry.withdraw(model_id, version, principal=user, reason=reason)
        request.state.session.flash.append(f"Withdrew {model_id} version {version}.")
        return RedirectResponse("/models", status_code=303)
    request.state.session.flash.append(f"{model_id} version {version}: {message}")
    return RedirectResponse(f"/models/{model_id}?version={version}", status_code=303)
