"""The audit log: append-only and tamper-evident (a hash chain), paged and filtered reads.

Each entry stores ``prev_sha256`` (the previous entry's hash, 64 zeros for the first) and
``entry_sha256 = SHA-256(prev || canonical JSON of the entry)``. Changing, removing or
reordering an entry breaks every later link, which :func:`check_chain` reports (``registry
verify`` runs it). Appends are serialised so two writers never chain onto the same entry:
SQLite's writer transactions already are (BEGIN IMMEDIATE); PostgreSQL takes a transaction-level
advisory lock. The database also refuses UPDATE/DELETE (and TRUNCATE on PostgreSQL) by trigger.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker

from interop.errors import RegistryError
from registry.db import AuditRow
from registry.records import AuditEntry, AuditPage

__all__ = [
    "GENESIS",
    "AuditFilter",
    "append",
    "check_chain",
    "entry_hash",
    "filtered",
    "read_page",
    "utc_text",
]

GENESIS = "0" * 64
_PG_LOCK = 72537202


def utc_text(at: dt.datetime) -> str:
    """A timestamp as the naive-UTC ISO text both SQLite and PostgreSQL give back unchanged."""
    if at.tzinfo is not None:
        at = at.astimezone(dt.UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def entry_hash(
    prev: str,
    at: dt.datetime,
    actor: str,
    institution: str,
    action: str,
    model_id: str | None,
    version: int | None,
    detail: dict[str, Any],
) -> str:
    body = json.dumps(
        [utc_text(at), actor, institution, action, model_id, version, detail],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(prev.encode("ascii") + body.encode("ascii")).hexdigest()


def append(
    s: Session,
    actor: str,
    institution: str,
    action: str,
    model_id: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRow:
    """Add one chained entry (flushes; the caller's transaction commits)."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(_PG_LOCK)))
    last = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).first()
    prev = (last.entry_sha256 or GENESIS) if last is not None else GENESIS
    clean = json.loads(json.dumps(detail or {}, default=str))  # what the JSON column gives back
    at = dt.datetime.now(dt.UTC)
    row = AuditRow(
        at=at,
        actor=actor[:200],
        institution=institution[:200],
        action=action[:64],
        model_id=model_id,
        version=version,
        detail=clean,
        prev_sha256=prev,
        entry_sha256=entry_hash(
            prev, at, actor[:200], institution[:200], action[:64], model_id, version, clean
        ),
    )
    s.add(row)
    s.flush()
    return row


def check_chain(rows: Iterable[AuditRow]) -> list[str]:
    """Every broken link of the chain (rows in id order), as one-line faults."""
    faults: list[str] = []
    prev = GENESIS
    for r in rows:
        if r.prev_sha256 != prev:
            faults.append(
                f"audit entry {r.id}: previous-hash link broken (an entry before it changed or went)"
            )
        want = entry_hash(
            r.prev_sha256 or "", r.at, r.actor, r.institution, r.action, r.model_id, r.version, dict(r.detail)
        )
        if r.entry_sha256 != want:
            faults.append(f"audit entry {r.id}: its content does not match its hash")
        prev = r.entry_sha256 or ""
    return faults


@dataclass(frozen=True)
class AuditFilter:
    model_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def filtered(f: AuditFilter) -> Select[tuple[AuditRow]]:
    q = select(AuditRow)
    if f.model_id is not None:
        q = q.where(AuditRow.model_id == f.model_id)
    if f.actor is not None:
        q = q.where(AuditRow.actor == f.actor)
    if f.action is not None:
        q = q.where(AuditRow.action == f.action)
    if f.since is not None:
        q = q.where(AuditRow.at >= f.since)
    if f.until is not None:
        q = q.where(AuditRow.at < f.until)
    return q


def read_page(
    readers: sessionmaker[Session], f: AuditFilter, page: int = 1, per_page: int | None = 100
) -> AuditPage:
    """One page of entries (all of them when ``per_page`` is None), oldest first."""
    if page < 1 or page > 10**7 or (per_page is not None and not 1 <= per_page <= 1000):
        raise RegistryError("page must be 1..10000000 and per_page 1..1000", field="page")
    q = filtered(f)
    with readers() as s:
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        q = q.order_by(AuditRow.id)
        if per_page is not None:
            q = q.offset((page - 1) * per_page).limit(per_page)
        items = [
            AuditEntry(
                a.at,
                a.actor,
                a.institution,
                a.action,
                a.model_id,
                a.version,
                dict(a.detail),
                a.id,
                a.entry_sha256,
            )
            for a in s.scalars(q)
        ]
    return AuditPage(items, int(total), page, per_page or max(1, int(total)))
