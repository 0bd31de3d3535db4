"""Dataset fingerprint: SHA-256 of a cohort's canonical content.

Canonical: patients sorted by id; within a record every list of items sorted by item id; each
record serialised as JSON with sorted keys and no white space (``mode="json"``, so datetimes
are ISO 8601); one record per line. The same patients give the same fingerprint whatever the
order of files, rows or items, and any changed value changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from interop.schema import PatientRecord

__all__ = ["canonical_record", "dataset_fingerprint"]


def canonical_record(record: PatientRecord) -> str:
    data: dict[str, Any] = record.model_dump(mode="json")
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and "id" in value[0]:
            data[key] = sorted(value, key=lambda item: item["id"])
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dataset_fingerprint(records: Iterable[PatientRecord]) -> str:
    h = hashlib.sha256()
    for line in sorted((r.patient.id, canonical_record(r)) for r in records):
        h.update(line[1].encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
