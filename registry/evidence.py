"""Site evidence: aggregate validation records sent by validating sites, stored beside the
version whose SBML hash they name (a record for other bytes is refused)."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from interop.errors import NotFoundError, PermissionDenied, RegistryError
from interop.schema import ValidationRecord, check_model_id, parse
from registry import repository as repo
from registry.auth import Principal, require_role
from registry.db import ModelRow, RecordRow

__all__ = ["add_record", "list_records"]


def add_record(sessions: sessionmaker[Session], record: ValidationRecord, who: Principal) -> int:
    """Store ``record`` (contributors for their own site, curators for any); returns its id."""
    require_role(who, "contributor", "sending a validation record")
    if not (who.local or who.role == "curator") and who.institution != record.site:
        raise PermissionDenied(
            f"{who.name} of {who.institution!r} cannot send records for site {record.site!r}"
        )
    with sessions.begin() as s:
        row = repo.find_version(s, record.model_id, record.model_version)
        if row.sbml_sha256 != record.model_sha256:
            raise RegistryError(
                f"the record names SBML {record.model_sha256[:12]}…, but "
                f"{record.model_id}@{record.model_version} is {row.sbml_sha256[:12]}…",
                source=record.model_id,
                field="model_sha256",
            )
        rec = RecordRow(
            version_id=row.id,
            site=record.site,
            record=json.loads(record.model_dump_json()),
            submitted_by=who.name,
        )
        s.add(rec)
        s.flush()
        repo.add_audit(
            s,
            who,
            "add-validation-record",
            record.model_id,
            record.model_version,
            site=record.site,
            record_id=rec.id,
        )
        return rec.id


def list_records(
    readers: sessionmaker[Session], model_id: str, version: int | None
) -> list[ValidationRecord]:
    """Every record of a model (of one version when ``version`` is given), oldest first."""
    check_model_id(model_id)
    with readers() as s:
        if s.get(ModelRow, model_id) is None:
            raise NotFoundError(f"no model {model_id} in the registry", source=model_id)
        return [
            parse(ValidationRecord, r.record, source=f"record {r.id}")
            for r in repo.records_for(s, model_id, version)
        ]
