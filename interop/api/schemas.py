"""Response bodies of the HTTP API (pydantic, so they appear in the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel

from interop.schema import ValidationRecord
from registry import Page, StoredFile, StoredModel, StoredRecord, ValidationReport, VersionSummary

__all__ = [
    "FileOut",
    "PageOut",
    "RecordImageOut",
    "ReportOut",
    "SiteRecordOut",
    "VersionDetail",
    "VersionOut",
    "page_out",
    "site_record_out",
    "version_detail",
]


class VersionOut(BaseModel):
    model_id: str
    version: int
    title: str
    institution: str
    format: str
    status: str
    sbml_sha256: str
    submitted_by: str
    created_at: dt.datetime | None


class FileOut(BaseModel):
    path: str
    role: str
    media_format: str
    sha256: str
    size: int


class VersionDetail(VersionOut):
    status_changed_by: str
    status_changed_at: dt.datetime | None
    deduplicated: bool = False
    card: dict[str, Any] | None
    files: list[FileOut] = []


class PageOut(BaseModel):
    items: list[VersionOut]
    total: int
    page: int
    per_page: int
    pages: int


class ReportOut(BaseModel):
    model_id: str
    version: int
    passed: bool
    stages: list[dict[str, Any]]


def version_out(s: VersionSummary) -> VersionOut:
    return VersionOut(**s.__dict__)


def page_out(p: Page) -> PageOut:
    return PageOut(
        items=[version_out(i) for i in p.items],
        total=p.total,
        page=p.page,
        per_page=p.per_page,
        pages=p.pages,
    )


def version_detail(s: StoredModel, files: list[StoredFile]) -> VersionDetail:
    shown = s.ml_card or s.card_or_none  # an ML version (ONNX) shows its ML card
    card = None if shown is None else shown.model_dump(mode="json")
    return VersionDetail(
        model_id=s.model_id,
        version=s.version,
        title=s.title,
        institution=s.institution,
        format=s.format,
        status=s.status,
        sbml_sha256=s.sbml_sha256,
        submitted_by=s.submitted_by,
        created_at=s.created_at,
        status_changed_by=s.status_changed_by,
        status_changed_at=s.status_changed_at,
        deduplicated=s.deduplicated,
        card=card,
        files=[FileOut(**f.__dict__) for f in files],
    )


def report_out(model_id: str, version: int, r: ValidationReport) -> ReportOut:
    return ReportOut(model_id=model_id, version=version, passed=r.is_valid, stages=r.to_dicts())


class RecordImageOut(BaseModel):
    position: int
    title: str
    sha256: str
    size: int
    url: str


class SiteRecordOut(BaseModel):
    """A stored site record: its id, sender, time, the record and its images (where to fetch them)."""

    id: int
    submitted_by: str
    created_at: dt.datetime
    record: ValidationRecord
    images: list[RecordImageOut] = []


def site_record_out(model_id: str, version: int, r: StoredRecord) -> SiteRecordOut:
    base = f"/models/{model_id}/versions/{version}/validation-records/{r.id}/images"
    return SiteRecordOut(
        id=r.id,
        submitted_by=r.submitted_by,
        created_at=r.created_at,
        record=r.record,
        images=[
            RecordImageOut(
                position=i.position, title=i.title, sha256=i.sha256, size=i.size, url=f"{base}/{i.position}"
            )
            for i in r.images
        ],
    )
