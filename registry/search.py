"""Search over model versions: drug (name, ATC, RxNorm), free text, annotation term, format,
institution and status, and for ML models the predicted quantity and the features; paginated
with an exact total and no cap on how many match.

Free text is a case-insensitive substring match of every term over title + description
(``LIKE`` on a lower-cased column: portable between SQLite and PostgreSQL; a full-text
index would rank but differs per database, and ids/codes need substring matching anyway).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from interop.errors import RegistryError
from interop.schema import ATC, RXNORM
from registry.db import AnnotationRow, DrugRow, VersionRow

__all__ = ["MAX_PER_PAGE", "Page", "SearchQuery", "VersionSummary", "run_search"]

MAX_PER_PAGE = 1000
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class SearchQuery:
    text: str | None = None
    drug: str | None = None  # name (substring) or any code (exact)
    atc: str | None = None  # code or prefix (J01G finds J01GB03)
    rxnorm: str | None = None
    annotation: str | None = None  # substring of an annotation URI, e.g. CHEBI:27882, taxonomy:9606
    format: str | None = None
    institution: str | None = None
    status: str | None = None
    model_id: str | None = None
    predicts: str | None = None  # ML models: substring of the predicted quantity (kind, name or code)
    feature: str | None = None  # ML models: substring of a feature's code URI (LOINC code, gene, ...)
    latest_only: bool = False
    page: int = 1
    per_page: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.page <= MAX_PAGE:
            raise RegistryError(f"page must be 1..{MAX_PAGE}", field="page")
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise RegistryError(f"per_page must be 1..{MAX_PER_PAGE}", field="per_page")
        for name in (
            "text",
            "drug",
            "atc",
            "rxnorm",
            "annotation",
            "format",
            "institution",
            "status",
            "model_id",
            "predicts",
            "feature",
        ):
            v = getattr(self, name)
            if v is not None and (len(v) > 500 or not v.isprintable()):
                raise RegistryError("search terms must be at most 500 printable characters", field=name)


@dataclass(frozen=True)
class VersionSummary:
    model_id: str
    version: int
    title: str
    institution: str
    format: str
    status: str
    sbml_sha256: str
    submitted_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Page:
    items: list[VersionSummary]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", max(1, math.ceil(self.total / self.per_page)))


def _like(term: str) -> str:
    esc = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def _filtered(q: SearchQuery) -> Select[tuple[VersionRow]]:
    stmt = select(VersionRow)
    for term in (q.text or "").split():
        stmt = stmt.where(VersionRow.search_text.like(_like(term), escape="\\"))
    if q.drug:
        stmt = stmt.where(
            exists()
            .where(DrugRow.version_id == VersionRow.id)
            .where((DrugRow.display.like(_like(q.drug), escape="\\")) | (DrugRow.code == q.drug.strip()))
        )
    if q.atc:
        stmt = stmt.where(
            exists().where(
                DrugRow.version_id == VersionRow.id,
                DrugRow.system == ATC,
                DrugRow.code.like(q.atc.strip().upper() + "%"),
            )
        )
    if q.rxnorm:
        stmt = stmt.where(
            exists().where(
                DrugRow.version_id == VersionRow.id,
                DrugRow.system == RXNORM,
                DrugRow.code == q.rxnorm.strip(),
            )
        )
    if q.annotation:
        stmt = stmt.where(
            exists().where(
                AnnotationRow.version_id == VersionRow.id,
                func.lower(AnnotationRow.uri).like(_like(q.annotation), escape="\\"),
            )
        )
    for qualifier, wanted in (("reg:predicts", q.predicts), ("reg:feature", q.feature)):
        if wanted:
            stmt = stmt.where(
                exists().where(
                    AnnotationRow.version_id == VersionRow.id,
                    AnnotationRow.qualifier == qualifier,
                    func.lower(AnnotationRow.uri).like(_like(wanted), escape="\\"),
                )
            )
    if q.format:
        stmt = stmt.where(VersionRow.format == q.format)
    if q.institution:
        stmt = stmt.where(VersionRow.institution == q.institution)
    if q.status:
        stmt = stmt.where(VersionRow.status == q.status)
    else:  # withdrawn versions leave search unless asked for by status
        stmt = stmt.where(VersionRow.status != "withdrawn")
    if q.model_id:
        stmt = stmt.where(VersionRow.model_id == q.model_id)
    if q.latest_only:
        v2 = VersionRow.__table__.alias("v3")
        latest = select(func.max(v2.c.number)).where(v2.c.model_id == VersionRow.model_id).scalar_subquery()
        stmt = stmt.where(VersionRow.number == latest)
    return stmt


def summarise(row: VersionRow) -> VersionSummary:
    return VersionSummary(
        row.model_id,
        row.number,
        row.title,
        row.institution,
        row.format,
        row.status,
        row.sbml_sha256,
        row.submitted_by,
        row.created_at,
    )


def run_search(session: Session, q: SearchQuery) -> Page:
    stmt = _filtered(q)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(VersionRow.model_id, VersionRow.number)
        .offset((q.page - 1) * q.per_page)
        .limit(q.per_page)
    ).all()
    return Page([summarise(r) for r in rows], int(total), q.page, q.per_page)
