"""Data access for the registry: functions over a Session that add and flush, never commit
(the service owns transactions; after polar's ``repository.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from interop.errors import NotFoundError
from interop.schema.model_id import check_model_id
from registry import auditlog
from registry.annotations import Annotation
from registry.auth import Principal
from registry.db import (
    AnnotationRow,
    DrugRow,
    FileRow,
    InstitutionRow,
    ModelRow,
    RecordRow,
    ReportRow,
    VersionRow,
)

__all__ = [
    "add_audit",
    "add_version_rows",
    "ensure_institution",
    "find_version",
    "latest_report",
    "next_number",
    "WithdrawnError",
]


def ensure_institution(s: Session, institution: str) -> None:
    if institution and s.get(InstitutionRow, institution) is None:
        s.add(InstitutionRow(id=institution, name=institution))
        s.flush()


def add_audit(
    s: Session,
    who: Principal,
    action: str,
    model_id: str | None = None,
    version: int | None = None,
    **detail: Any,
) -> None:
    auditlog.append(s, who.name, who.institution, action, model_id, version, detail)


class WithdrawnError(NotFoundError):
    """The version was withdrawn by a curator: kept for audit, gone from search and binding."""


def find_version(
    s: Session, model_id: str, version: int | None, *, lock: bool = False, withdrawn: bool = True
) -> VersionRow:
    """The version (the latest not withdrawn when ``version`` is None); ``withdrawn=False`` refuses
    a withdrawn one with ``WithdrawnError``."""
    check_model_id(model_id)
    if version is not None and not 1 <= version <= 2**31 - 1:
        raise NotFoundError(f"no model version {model_id}@{version} in the registry", source=model_id)
    q = select(VersionRow).where(VersionRow.model_id == model_id)
    if version is not None:
        q = q.where(VersionRow.number == version)
    else:
        q = q.where(VersionRow.status != "withdrawn").order_by(VersionRow.number.desc())
    if lock:
        q = q.with_for_update()
    row = s.scalars(q.limit(1)).first()
    if row is None:
        what = f"{model_id}@{version}" if version is not None else model_id
        raise NotFoundError(f"no model version {what} in the registry", source=model_id)
    if not withdrawn and row.status == "withdrawn":
        raise WithdrawnError(f"{model_id}@{row.number} was withdrawn", source=model_id)
    return row


def next_number(s: Session, model_id: str) -> int:
    return (s.scalar(select(func.max(VersionRow.number)).where(VersionRow.model_id == model_id)) or 0) + 1


def lock_model(s: Session, model_id: str) -> ModelRow | None:
    return s.scalars(select(ModelRow).where(ModelRow.id == model_id).with_for_update()).first()


def add_version_rows(
    s: Session,
    row: VersionRow,
    files: Iterable[FileRow],
    drugs: Iterable[DrugRow],
    annotations: Iterable[Annotation],
) -> None:
    s.add(row)
    s.flush()
    for f in files:
        f.version_id = row.id
        s.add(f)
    for d in drugs:
        d.version_id = row.id
        s.add(d)
    s.add_all(
        AnnotationRow(version_id=row.id, element=a.element[:200], qualifier=a.qualifier[:64], uri=a.uri[:500])
        for a in annotations
    )
    s.flush()


def latest_report(s: Session, version_id: int) -> ReportRow | None:
    return s.scalars(
        select(ReportRow).where(ReportRow.version_id == version_id).order_by(ReportRow.id.desc()).limit(1)
    ).first()


def records_for(s: Session, model_id: str, version: int | None) -> list[RecordRow]:
    q = (
        select(RecordRow)
        .join(VersionRow, RecordRow.version_id == VersionRow.id)
        .where(VersionRow.model_id == model_id)
    )
    if version is not None:
        q = q.where(VersionRow.number == version)
    return list(s.scalars(q.order_by(RecordRow.id).options(selectinload(RecordRow.images))).all())
