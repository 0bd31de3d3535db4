"""Sample ids -> pseudonymous patient ids: a mapping file, a keyed hash, or both.

The key rule is the one every importer follows: the CLI loads the key the same way for every
command (``--pseudonymise-key-file`` or ``$INTEROP_PSEUDONYM_KEY``) and refuses to run without
one, so a raw sample id never becomes a patient id. Without a key (library use only) the ids
are taken as already pseudonymous.

The mapping file (CSV or TSV with a header) has columns ``sample_id`` and ``patient_id``.
With a key, the patient id (from the mapping, else the sample id itself) is a source
identifier and is replaced by its keyed HMAC-SHA256 pseudonym (``converters.pseudonym``, the
same function the FHIR converter uses); without a key it is taken as already pseudonymous.
Written as ``SYSTEM|VALUE`` (e.g. ``urn:oid:2.999.1.1.1|MRN-0042``), it gets exactly the
pseudonym the FHIR converter gives a Patient whose first identifier has that system and value,
so omics and clinical data merge into one record. A sample missing from a given mapping
resolves to None (the caller
reports it); it never falls back to its own id.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from converters.pseudonym import pseudonymise as _keyed_hash
from converters.pseudonym import source_token
from interop.errors import ConversionError

__all__ = ["PatientIds", "pseudonymise", "read_mapping"]

SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


def pseudonymise(key: str | bytes, source_id: str) -> str:
    """The keyed pseudonym of ``source_id`` (``SYSTEM|VALUE`` or a bare value)."""
    system, _, value = source_id.rpartition("|")
    return _keyed_hash(key.encode("utf-8") if isinstance(key, str) else key, system, value)


def read_mapping(path: Path) -> dict[str, str]:
    """``sample_id -> patient_id`` from a CSV/TSV file with those two columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConversionError(f"cannot read the sample mapping: {exc}", source=str(path)) from exc
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise ConversionError("the sample mapping is empty", source=str(path))
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    fields = set(reader.fieldnames or ())
    if not {"sample_id", "patient_id"} <= fields:
        raise ConversionError(
            f"needs columns sample_id and patient_id (found {sorted(fields)})",
            source=str(path),
            line=1,
        )
    mapping: dict[str, str] = {}
    for n, row in enumerate(reader, start=2):
        sample, patient = (
            (row.get("sample_id") or "").strip(),
            (row.get("patient_id") or "").strip(),
        )
        if not sample or not patient:
            raise ConversionError("empty sample_id or patient_id", source=str(path), line=n)
        if mapping.get(sample, patient) != patient:
            raise ConversionError(f"sample {sample!r} mapped to two patients", source=str(path), line=n)
        mapping[sample] = patient
    return mapping


@dataclass
class PatientIds:
    """Resolves source sample (or subject) ids to the pseudonymous ids records are stored under."""

    key: str | bytes | None = None
    mapping: dict[str, str] | None = None

    @property
    def pseudonymising(self) -> bool:
        return self.key is not None

    def patient_id(self, sample_id: str) -> str | None:
        """Pseudonymous patient id of ``sample_id``; None when the mapping does not list it."""
        if self.mapping is not None:
            source = self.mapping.get(sample_id)
            if source is None:
                return None
        else:
            source = sample_id
        pid = pseudonymise(self.key, source) if self.key is not None else source
        if not SAFE_ID.match(pid):
            raise ConversionError(
                f"patient id {pid!r} is not 8-128 characters of A-Z a-z 0-9 . _ - "
                "(give a mapping file or a pseudonymisation key)",
                field="patient_id",
            )
        return pid

    def source_name(self, path: Path | str) -> str:
        """How outputs name an input file: its keyed token under a key (file names may identify)."""
        if self.key is None:
            return Path(path).name
        return source_token(self.key.encode("utf-8") if isinstance(self.key, str) else self.key, str(path))

    def source_ref(self, sample_id: str) -> str:
        """How provenance names the sample: hashed too when pseudonymising."""
        return pseudonymise(self.key, sample_id)[:16] if self.key is not None else sample_id
