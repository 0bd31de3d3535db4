"""Database schema of the registry (SQLAlchemy 2, typed mappings).

A ``MetaData`` naming convention keeps constraint names stable across SQLite and PostgreSQL
(and for the Alembic migrations in ``registry/migrations``). The tables:

- ``institutions``, ``users`` (role: reader, contributor, curator), ``tokens`` (SHA-256 of the
  bearer token, never the token itself);
- ``models`` (owned by one institution), ``model_versions`` (immutable content: SBML hash,
  content hash, card JSON, lifecycle status), ``version_files`` (every file of a version:
  the SBML, the original upload, OMEX extras), ``version_drugs`` and ``annotations``
  (denormalised for search);
- ``validation_reports`` (one per pipeline run, stages as JSON), ``validation_records``
  (aggregate evidence sent by sites) and ``validation_record_images`` (their VPC/NPDE PNGs, blobs);
- ``audit_log``: append-only (no code path updates or deletes it; a trigger refuses it on
  PostgreSQL and SQLite, TRUNCATE too on PostgreSQL) and hash-chained (each entry carries the
  hash of the previous one);
- ``registry_meta``: the registry's identity (``registry_id``), also written into its blob store.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from interop.errors import MissingExtraError

__all__ = [
    "AuditRow",
    "Base",
    "DrugRow",
    "AnnotationRow",
    "FileRow",
    "InstitutionRow",
    "MetaRow",
    "ModelRow",
    "RecordImageRow",
    "RecordRow",
    "ReportRow",
    "TokenRow",
    "UserRow",
    "VersionRow",
    "make_engine",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class InstitutionRow(Base):
    __tablename__ = "institutions"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    user: Mapped[UserRow] = relationship()


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    institution: Mapped[str] = mapped_column(String(200), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    versions: Mapped[list[VersionRow]] = relationship(back_populates="model", order_by="VersionRow.number")


class VersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        UniqueConstraint("model_id", "content_sha256"),
        Index("ix_model_versions_status", "status"),
        Index("ix_model_versions_format", "format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    number: Mapped[int] = mapped_column(Integer)
    sbml_sha256: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(64), doc="hash of SBML + card")
    format: Mapped[str] = mapped_column(String(32), default="sbml")
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="", doc="lower-cased title + description")
    institution: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    submitted_by: Mapped[str] = mapped_column(String(200), default="local")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_changed_by: Mapped[str] = mapped_column(String(200), default="local")
    status_changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    model: Mapped[ModelRow] = relationship(back_populates="versions")
    files: Mapped[list[FileRow]] = relationship(order_by="FileRow.id")


class FileRow(Base):
    __tablename__ = "version_files"
    __table_args__ = (UniqueConstraint("version_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    role: Mapped[str] = mapped_column(String(32), doc="model | source | sedml | metadata | other")
    media_format: Mapped[str] = mapped_column(String(300), default="")
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)


class DrugRow(Base):
    __tablename__ = "version_drugs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    system: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(100), index=True)
    display: Mapped[str] = mapped_column(String(300), default="", doc="lower-cased")


class AnnotationRow(Base):
    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    element: Mapped[str] = mapped_column(String(200), default="", doc="SBML id or metaid, '' for the model")
    qualifier: Mapped[str] = mapped_column(String(64), doc="e.g. bqbiol:is, bqmodel:isDescribedBy")
    uri: Mapped[str] = mapped_column(String(500), index=True)


class ReportRow(Base):
    __tablename__ = "validation_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordRow(Base):
    __tablename__ = "validation_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    site: Mapped[str] = mapped_column(String(200))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    images: Mapped[list[RecordImageRow]] = relationship(order_by="RecordImageRow.position")


class RecordImageRow(Base):
    """A PNG sent with a site's record (VPC, NPDE: aggregate plots), its bytes a blob."""

    __tablename__ = "validation_record_images"
    __table_args__ = (UniqueConstraint("record_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("validation_records.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    institution: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    entry_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class MetaRow(Base):
    """Facts about the registry itself, e.g. ``registry_id`` (the identity its blob store carries)."""

    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


def make_engine(url: str, *, immediate: bool = True, **kwargs: Any) -> Engine:
    """An engine; SQLite gets foreign keys, WAL, a busy timeout and (``immediate``) transactions
    that take the write lock at BEGIN."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # Writers take the lock up front: two deferred transactions upgrading at once deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True, **kwargs)
    except ImportError as exc:  # psycopg, the driver of postgresql+psycopg URLs: the 'postgres' extra
        if not url.startswith("postgresql"):
            raise
        raise MissingExtraError(
            exc.name or "psycopg", extra="postgres", purpose="a PostgreSQL registry"
        ) from exc
