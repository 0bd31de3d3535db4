"""Operator tasks on a whole registry: garbage collection, integrity verification, backup and
restore. None of them runs implicitly: opening a registry (any read-only command) deletes
nothing; ``interop registry gc`` / ``verify`` / ``backup`` / ``restore`` run them on purpose.

Backup writes one JSON-lines file per table (every row, the audit chain included), the blobs
and a manifest naming the registry id and row counts; restore loads them into an *empty*
database (SQLite or PostgreSQL: rows keep their ids, sequences are moved past them) and an
empty blob folder, then claims the folder with the backed-up registry id.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import DateTime, Integer, LargeBinary, func, insert, select, text
from sqlalchemy.orm import Session

from interop.errors import RegistryError
from registry import auditlog
from registry.db import AuditRow, Base, FileRow, MetaRow, RecordImageRow, ReportRow

if TYPE_CHECKING:
    from registry.service import Registry

__all__ = ["GarbageReport", "VerifyReport", "backup", "collect_garbage", "registry_id", "restore", "verify"]

FORMAT = "digphat-registry-backup/1"


@dataclass(frozen=True)
class GarbageReport:
    removed_blobs: list[str]
    removed_temp_files: list[str]
    dry_run: bool = False


@dataclass(frozen=True)
class VerifyReport:
    blobs_checked: int
    audit_entries: int
    faults: list[str]

    @property
    def ok(self) -> bool:
        return not self.faults


def registry_id(s: Session) -> str:
    row = s.get(MetaRow, "registry_id")
    if row is None:
        raise RegistryError("the database has no registry id (run the migrations)")
    return row.value


def _report_evidence(s: Session) -> set[str]:
    """The evidence blobs (SED-ML data sets and plots) that stored validation reports list."""
    from registry.sedml_stage import evidence_digests

    return set().union(*(evidence_digests(stages) for stages in s.scalars(select(ReportRow.stages))))


def blob_digests(s: Session) -> list[str]:
    """Every blob a row names: version files, the images sent with site records and the evidence
    that validation reports list."""
    files = set(s.scalars(select(FileRow.sha256))) | set(s.scalars(select(RecordImageRow.sha256)))
    return sorted(files | _report_evidence(s))


def collect_garbage(reg: Registry, grace_s: float = 24 * 3600, *, dry_run: bool = False) -> GarbageReport:
    """Remove blobs no row names and stale temporary files older than ``grace_s`` (never a blob
    any row references; refused on a blob store another database owns)."""

    def referenced(candidates: set[str]) -> set[str]:
        with reg.readers() as s:
            out: set[str] = candidates & _report_evidence(s)
            ordered = sorted(candidates)
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                out |= set(s.scalars(select(FileRow.sha256).where(FileRow.sha256.in_(chunk))))
                out |= set(s.scalars(select(RecordImageRow.sha256).where(RecordImageRow.sha256.in_(chunk))))
            return out

    removed, temps = reg.blobs.sweep(referenced, grace_s, registry_id=reg.registry_id, dry_run=dry_run)
    with reg.sessions.begin() as s:
        auditlog.append(
            s,
            "local",
            "",
            "gc",
            detail={"removed": len(removed), "temp_files": len(temps), "dry_run": dry_run},
        )
    return GarbageReport(removed, temps, dry_run)


def verify(reg: Registry, *, actor: str = "local") -> VerifyReport:
    """Every blob re-hashed against its row, every row has its blob, the store's owner is this
    registry, and the audit chain is unbroken. The outcome is itself audited."""
    faults: list[str] = []
    owner = reg.blobs.owner()
    if owner != reg.registry_id:
        faults.append(f"blob store owner is {owner or 'unset'}, not this registry ({reg.registry_id})")
    with reg.readers() as s:
        digests = blob_digests(s)
        for d in digests:
            fault = reg.blobs.check(d)
            if fault:
                users = s.execute(select(FileRow.version_id, FileRow.path).where(FileRow.sha256 == d)).all()
                images = s.scalars(select(RecordImageRow.record_id).where(RecordImageRow.sha256 == d)).all()
                faults.append(
                    f"{fault} (version rows {', '.join(f'{v}:{p}' for v, p in users[:5])}"
                    + (f"; images of site records {', '.join(map(str, images[:5]))}" if images else "")
                    + ")"
                )
        rows = list(s.scalars(select(AuditRow).order_by(AuditRow.id)))
        faults += auditlog.check_chain(rows)
    with reg.sessions.begin() as s:
        auditlog.append(
            s, actor, "", "verify", detail={"blobs": len(digests), "faults": len(faults), "first": faults[:3]}
        )
    return VerifyReport(len(digests), len(rows), faults)


# ---------------------------------------------------------------- backup
def _encode(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return {"$dt": auditlog.utc_text(v)}
    if isinstance(v, bytes):
        return {"$b64": base64.b64encode(v).decode()}
    return v


def _decode(v: Any, column: Any) -> Any:
    if isinstance(v, dict) and "$dt" in v and isinstance(column.type, DateTime):
        return dt.datetime.fromisoformat(v["$dt"]).replace(tzinfo=dt.UTC)
    if isinstance(v, dict) and "$b64" in v and isinstance(column.type, LargeBinary):
        return base64.b64decode(v["$b64"])
    return v


def backup(reg: Registry, target: Path) -> dict[str, int]:
    """Write the whole registry (rows, blobs, audit chain) to the empty or new folder ``target``."""
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise RegistryError("the backup folder must be new or empty", source=str(target))
    (target / "tables").mkdir(parents=True)
    with reg.sessions.begin() as s:  # first, so the backup holds its own entry and the chain ends on it
        auditlog.append(s, "local", "", "backup", detail={"to": target.name})
    counts: dict[str, int] = {}
    with reg.readers() as s:  # one snapshot (PostgreSQL: REPEATABLE READ is not needed for a quiet store)
        for table in Base.metadata.sorted_tables:
            n = 0
            with open(target / "tables" / f"{table.name}.jsonl", "w", encoding="utf-8") as fh:
                for row in s.execute(select(table).order_by(*table.primary_key.columns)).mappings():
                    fh.write(json.dumps({k: _encode(v) for k, v in row.items()}, sort_keys=True) + "\n")
                    n += 1
            counts[table.name] = n
        digests = blob_digests(s)
        rid = registry_id(s)
    for d in digests:
        data = reg.blobs.get(d)  # verified on the way out
        dest = target / "blobs" / d[:2] / d[2:4] / d
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    counts["blobs"] = len(digests)
    manifest = {
        "format": FORMAT,
        "registry_id": rid,
        "counts": counts,
        "at": auditlog.utc_text(dt.datetime.now(dt.UTC)),
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return counts


def restore(reg: Registry, source: Path) -> dict[str, int]:
    """Load a backup into this registry, whose database and blob folder must be empty."""
    source = Path(source)
    try:
        manifest = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"not a registry backup: {exc}", source=str(source)) from exc
    if manifest.get("format") != FORMAT:
        raise RegistryError(f"not a registry backup (format {manifest.get('format')!r})", source=str(source))
    with reg.readers() as s:
        busy = [
            t.name
            for t in Base.metadata.sorted_tables
            if t.name != "registry_meta" and s.scalar(select(func.count()).select_from(t))
        ]
    if busy or not reg.blobs.is_empty():
        raise RegistryError(
            "restore needs an empty registry: "
            + (f"tables {', '.join(busy)} have rows" if busy else "the blob folder is not empty"),
            source=reg.database_url.split("@")[-1],
        )
    counts: dict[str, int] = {}
    with reg.sessions.begin() as s:
        for table in Base.metadata.sorted_tables:
            path = source / "tables" / f"{table.name}.jsonl"
            rows = []
            if path.exists():
                with open(path, encoding="utf-8") as fh:
                    rows = [
                        {k: _decode(v, table.c[k]) for k, v in json.loads(line).items() if k in table.c}
                        for line in fh
                        if line.strip()
                    ]
            if table.name == "registry_meta":
                s.execute(table.delete())  # the fresh database's own id gives way to the backed-up one
            for i in range(0, len(rows), 500):
                s.execute(insert(table), rows[i : i + 500])
            counts[table.name] = len(rows)
            serial = "id" in table.c and isinstance(table.c["id"].type, Integer)
            if s.get_bind().dialect.name == "postgresql" and serial and rows:
                s.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), :n)"),
                    {"n": max(r["id"] for r in rows)},
                )
    n = 0
    blob_root = source / "blobs"
    for p in sorted(blob_root.rglob("*")) if blob_root.exists() else []:
        if p.is_file() and len(p.name) == 64:
            reg.blobs.put(p.read_bytes())
            n += 1
    counts["blobs"] = n
    reg.refresh_identity()
    reg.blobs.claim(reg.registry_id)
    with reg.sessions.begin() as s:
        auditlog.append(
            s, "local", "", "restore", detail={"counts": counts, "from": manifest.get("registry_id")}
        )
    return counts
