"""Routes for models, versions, lifecycle, validation reports and site validation records.

Thin: each route checks the role through its dependency, calls one registry method and
shapes the answer; ownership and lifecycle rules live in the registry's service.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Path, Query, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from interop.api.deps import RegistryDep, SettingsDep, require_contributor, require_curator, require_reader
from interop.api.schemas import (
    PageOut,
    ReportOut,
    SiteRecordOut,
    VersionDetail,
    page_out,
    report_out,
    site_record_out,
    version_detail,
)
from interop.schema import ModelCard, ValidationRecord, parse_json
from interop.schema.model_id import MODEL_ID_RULE
from registry import SearchQuery
from registry.auditlog import AuditFilter
from registry.evidence import MAX_IMAGE_BYTES, MAX_IMAGES

__all__ = ["router"]

router = APIRouter()
ModelIdPath = Annotated[str, Path(pattern=MODEL_ID_RULE, max_length=64, description="model id")]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Term = Annotated[str | None, Query(max_length=500)]


@router.get("/models", response_model=PageOut, summary="Search model versions (paginated)")
def search_models(
    registry: RegistryDep,
    user: require_reader,
    text: Term = None,
    drug: Term = None,
    atc: Term = None,
    rxnorm: Term = None,
    annotation: Term = None,
    format: Term = None,
    institution: Term = None,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    model_id: Term = None,
    predicts: Term = None,
    feature: Term = None,
    latest_only: bool = False,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> PageOut:
    q = SearchQuery(
        text=text,
        drug=drug,
        atc=atc,
        rxnorm=rxnorm,
        annotation=annotation,
        format=format,
        institution=institution,
        status=status_,
        model_id=model_id,
        predicts=predicts,
        feature=feature,
        latest_only=latest_only,
        page=page,
        per_page=per_page,
    )
    return page_out(registry.search(q))


@router.post(
    "/models",
    response_model=VersionDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a model file (SBML, Antimony, OMEX, PharmML) with an optional card",
)
async def submit_model(
    registry: RegistryDep,
    settings: SettingsDep,
    user: require_contributor,
    file: Annotated[UploadFile, File(description="the model file")],
    card: Annotated[str | None, Form(description="model card JSON", max_length=1_000_000)] = None,
    model_id: Annotated[str | None, Form(max_length=200)] = None,
    format: Annotated[str | None, Form(max_length=32)] = None,
    set_values: Annotated[
        list[str] | None, Form(alias="set", description="PharmML values NAME=NUMBER", max_length=200)
    ] = None,
    unit: Annotated[
        list[str] | None, Form(description="units OBSERVABLE=UNIT or dose=UNIT", max_length=200)
    ] = None,
    drug: Annotated[str | None, Form(description="RxNorm code of the drug [=NAME]", max_length=200)] = None,
) -> VersionDetail:
    raw = await file.read(settings.max_upload_bytes + 1)
    if len(raw) > settings.max_upload_bytes:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "upload exceeds the limit")
    parsed = parse_json(ModelCard, card, source="card") if card else None
    from registry.formats.options import conversion_options

    options = conversion_options(set_values or (), unit or (), drug)

    def store() -> VersionDetail:
        stored = registry.submit_file(
            raw,
            filename=file.filename,
            fmt=format or None,
            card=parsed,
            model_id=model_id or None,
            principal=user,
            options=options or None,
        )
        return version_detail(stored, registry.files(stored.model_id, stored.version))

    return await run_in_threadpool(store)


@router.get("/models/{model_id}", response_model=list[VersionDetail], summary="Every version of a model")
def model_versions(model_id: ModelIdPath, registry: RegistryDep, user: require_reader) -> list[VersionDetail]:
    out = []
    for v in registry.versions(model_id):
        out.append(version_detail(registry.get(model_id, v.version), registry.files(model_id, v.version)))
    return out


@router.get("/models/{model_id}/versions/{version}", response_model=VersionDetail)
def get_version(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_reader
) -> VersionDetail:
    return version_detail(registry.get(model_id, version), registry.files(model_id, version))


@router.get(
    "/models/{model_id}/versions/{version}/sbml",
    response_class=Response,
    responses={200: {"content": {"application/sbml+xml": {}}}},
)
def get_sbml(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_reader
) -> Response:
    stored = registry.get(model_id, version)
    return Response(
        stored.sbml, media_type="application/sbml+xml", headers={"X-SBML-SHA256": stored.sbml_sha256}
    )


@router.get("/models/{model_id}/versions/{version}/report", response_model=ReportOut)
def get_report(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_reader
) -> ReportOut:
    rep = registry.report(model_id, version)
    if rep is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{model_id}@{version} has not been validated")
    return report_out(model_id, version, rep)


@router.post("/models/{model_id}/versions/{version}/validate", response_model=ReportOut)
def validate(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_contributor
) -> ReportOut:
    return report_out(model_id, version, registry.validate(model_id, version, principal=user))


@router.post("/models/{model_id}/versions/{version}/publish", response_model=VersionDetail)
def publish(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_curator
) -> VersionDetail:
    registry.publish(model_id, version, principal=user)
    return version_detail(registry.get(model_id, version), registry.files(model_id, version))


@router.post("/models/{model_id}/versions/{version}/deprecate", response_model=VersionDetail)
def deprecate(
    model_id: ModelIdPath,
    version: VersionPath,
    registry: RegistryDep,
    user: require_curator,
    reason: str = "",
) -> VersionDetail:
    registry.deprecate(model_id, version, principal=user, reason=reason)
    return version_detail(registry.get(model_id, version), registry.files(model_id, version))


@router.get(
    "/models/{model_id}/versions/{version}/export",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}, "text/turtle": {}, "application/ld+json": {}}}},
)
def export(
    model_id: ModelIdPath,
    version: VersionPath,
    registry: RegistryDep,
    user: require_reader,
    format: Literal["omex", "turtle", "json-ld"] = "omex",
) -> Response:
    if format == "omex":
        return Response(
            registry.export_omex(model_id, version),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{model_id}-{version}.omex"'},
        )
    media = "text/turtle" if format == "turtle" else "application/ld+json"
    return Response(registry.export_rdf(model_id, version, format), media_type=media)


@router.post(
    "/models/{model_id}/versions/{version}/validation-records",
    status_code=status.HTTP_201_CREATED,
    summary="A site's aggregate validation record for this version",
)
def add_record(
    model_id: ModelIdPath,
    version: VersionPath,
    record: ValidationRecord,
    registry: RegistryDep,
    user: require_contributor,
) -> dict[str, Any]:
    if (record.model_id, record.model_version) != (model_id, version):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the record is for {record.model_id}@{record.model_version}, not {model_id}@{version}",
        )
    return {"id": registry.add_validation_record(record, principal=user)}


@router.get("/models/{model_id}/versions/{version}/validation-records", response_model=list[ValidationRecord])
def list_records(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_reader
) -> list[ValidationRecord]:
    registry.get(model_id, version)  # 404 for an unknown version
    return registry.list_validation_records(model_id, version)


@router.post(
    "/models/{model_id}/versions/{version}/validation-records/with-images",
    status_code=status.HTTP_201_CREATED,
    summary="A site's aggregate validation record with its VPC/NPDE PNG images (multipart)",
)
async def add_record_with_images(
    model_id: ModelIdPath,
    version: VersionPath,
    registry: RegistryDep,
    user: require_contributor,
    record: Annotated[str, Form(description="the ValidationRecord JSON", max_length=1_000_000)],
    images: Annotated[list[UploadFile], File(description="PNG images (VPC, NPDE)")],
    titles: Annotated[list[str], Form(description="one title per image, in order", max_length=64)],
) -> dict[str, Any]:
    parsed = parse_json(ValidationRecord, record, source="record")
    if (parsed.model_id, parsed.model_version) != (model_id, version):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the record is for {parsed.model_id}@{parsed.model_version}, not {model_id}@{version}",
        )
    if len(titles) != len(images):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{len(images)} images but {len(titles)} titles"
        )
    if len(images) > MAX_IMAGES:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"at most {MAX_IMAGES} images")
    pngs: list[tuple[str, bytes]] = []
    for title, f in zip(titles, images, strict=True):
        data = await f.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise HTTPException(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                f"image {title[:80]!r} exceeds {MAX_IMAGE_BYTES} bytes",
            )
        pngs.append((title, data))

    def store() -> int:
        return registry.add_validation_record(parsed, principal=user, images=pngs)

    return {"id": await run_in_threadpool(store), "images": len(pngs)}


@router.get(
    "/models/{model_id}/versions/{version}/validation-records/with-images",
    response_model=list[SiteRecordOut],
    summary="Site records of this version with their ids and images (where to fetch each)",
)
def list_records_with_images(
    model_id: ModelIdPath, version: VersionPath, registry: RegistryDep, user: require_reader
) -> list[SiteRecordOut]:
    registry.get(model_id, version)  # 404 for an unknown version
    return [site_record_out(model_id, version, r) for r in registry.validation_records(model_id, version)]


@router.get(
    "/models/{model_id}/versions/{version}/validation-records/{record_id}/images/{position}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="One PNG image sent with a site record",
)
def get_record_image(
    model_id: ModelIdPath,
    version: VersionPath,
    record_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    position: Annotated[int, Path(ge=0, le=MAX_IMAGES)],
    registry: RegistryDep,
    user: require_reader,
) -> Response:
    image, data = registry.record_image(model_id, version, record_id, position)
    return Response(data, media_type="image/png", headers={"ETag": f'"{image.sha256}"'})


@router.post("/models/{model_id}/versions/{version}/withdraw", status_code=status.HTTP_204_NO_CONTENT)
def withdraw(
    model_id: ModelIdPath,
    version: VersionPath,
    registry: RegistryDep,
    user: require_curator,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Withdraw a version (curators): bytes kept for audit, gone from search and binding."""
    registry.withdraw(model_id, version, principal=user, reason=reason)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _audit_out(p: Any) -> dict[str, Any]:
    return {
        "items": [{**e.__dict__, "at": e.at.isoformat()} for e in p.items],
        "total": p.total,
        "page": p.page,
        "per_page": p.per_page,
    }


Page = Annotated[int, Query(ge=1, le=1_000_000)]
PerPage = Annotated[int, Query(ge=1, le=1000)]


@router.get("/models/{model_id}/audit", summary="Audit log of one model (paged)")
def model_audit(
    model_id: ModelIdPath,
    registry: RegistryDep,
    user: require_reader,
    page: Page = 1,
    per_page: PerPage = 100,
) -> dict[str, Any]:
    return _audit_out(registry.audit_page(AuditFilter(model_id=model_id), page, per_page))


@router.get("/audit", summary="The whole audit log (curators), paged and filtered")
def audit(
    registry: RegistryDep,
    user: require_curator,
    model_id: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    page: Page = 1,
    per_page: PerPage = 100,
) -> dict[str, Any]:
    f = AuditFilter(model_id, actor, action, _utc(since), _utc(until))
    return _audit_out(registry.audit_page(f, page, per_page))


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


@router.get("/sparql", summary="SPARQL SELECT/ASK over the registry's own metadata graph")
def sparql(
    query: Annotated[str, Query(max_length=20_000)], registry: RegistryDep, user: require_reader
) -> list[dict[str, str]]:
    return registry.sparql(query)
