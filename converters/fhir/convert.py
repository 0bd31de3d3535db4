"""FHIR feeds -> ``PatientRecord``: the conversion loop, its report, and the public entry points.

Each resource read is validated with fhir.resources (R4/R4B with the R4B models, R5 with the
root package), then converted by its type's handler, or reported with a reason: the report's
counts always satisfy ``read == converted + rejected + skipped`` per resource type. A
resource whose Patient or Medication has not been seen yet (an unordered feed), and every
per-kg dose (it needs all body weights), is spooled to a temporary file and retried once the
whole feed is read; what still does not resolve is rejected naming the missing reference.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from converters.fhir.clinical import convert_condition, convert_patient, index_encounter, index_specimen
from converters.fhir.codes import CodeTables, load_code_tables
from converters.fhir.context import CONVERTER, Context, Defer, Reject
from converters.fhir.medication import (
    convert_administration,
    convert_request,
    convert_statement,
    index_medication,
)
from converters.fhir.observation import convert_observation
from converters.fhir.rest import iter_search
from converters.fhir.sink import ItemSink, MemorySink
from converters.fhir.sources import Entry, FeedInfo, is_url, iter_entries, iter_json_document
from converters.fhir.versions import FhirVersion, validate_resource
from converters.report import ImportReport, Outcome
from interop.errors import InteropError
from interop.schema import Condition, Dose, Measurement, PatientRecord
from interop.schema.analytes import ANALYTES_VERSION

__all__ = [
    "CONVERTER",
    "ConversionResult",
    "FhirConverter",
    "convert_bundle",
    "convert_bundle_file",
    "convert_paths",
    "entry_from_json",
    "entry_json",
    "patient_field",
]

log = logging.getLogger(__name__)

# A handler turns one resource (its JSON, its validated fhir.resources model, the conversion context,
# where it came from, its patient id) into one item of the patient schema, or raises Reject/Defer.
ItemHandler = Callable[[dict[str, Any], Any, Context, Entry, str], Measurement | Condition | Dose]

ITEM_HANDLERS: dict[str, ItemHandler] = {
    "Observation": convert_observation,
    "Condition": convert_condition,
    "MedicationAdministration": convert_administration,
    "MedicationRequest": convert_request,
    "MedicationStatement": convert_statement,
}


@dataclass(frozen=True)
class ConversionResult:
    records: tuple[PatientRecord, ...]
    report: ImportReport


def _first_error(exc: ValidationError) -> str:
    """The validation problems by field and message, without the offending values (they may identify)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:3]]
    text = f"{exc.title}: " + "; ".join(parts)
    return text if len(text) < 400 else text[:397] + "..."


class FhirConverter:
    """One conversion: feed it entries (:meth:`add`), then :meth:`finish`; items go to ``sink``."""

    def __init__(
        self,
        key: bytes,
        *,
        tables: CodeTables | None = None,
        version: FhirVersion | None = None,
        date_shift: bool = True,
        export_time: dt.datetime | None = None,
        sink: ItemSink | None = None,
        info: FeedInfo | None = None,
    ) -> None:
        self.report = ImportReport()
        self.ctx = Context(
            key=key,
            tables=tables or load_code_tables(),
            report=self.report,
            version=version,
            date_shift=date_shift,
            export_time=export_time or dt.datetime.now(dt.UTC),  # later is impossible
        )
        self.sink: ItemSink = sink if sink is not None else MemorySink()
        self.info = info or FeedInfo(version=version)
        self._spool = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._deferred = 0

    # -- input ------------------------------------------------------------------------------
    def add(self, entry: Entry) -> None:
        if entry.error is not None or entry.resource is None:
            rtype = entry.resource_type or "(unreadable)"
            self.report.read[rtype] += 1
            self.report.add(
                entry.outcome, rtype, entry.error or "no resource", source=entry.source, line=entry.line
            )
            return
        found = entry.resource.get("resourceType")
        rtype = found if isinstance(found, str) and found else "(no resourceType)"
        self.report.read[rtype] += 1
        rid = entry.resource.get("id")
        if rid is not None and f"{rtype}/{rid}" in self.info.deleted:
            self._issue("skipped", rtype, entry, "listed as deleted by the export")
            return
        self._process(entry, rtype)

    def _issue(
        self, outcome: Outcome, rtype: str, entry: Entry, reason: str, field: str | None = None
    ) -> None:
        res = entry.resource or {}
        self.report.add(
            outcome,
            rtype,
            reason,
            source=entry.source,
            line=entry.line,
            resource_id=self.ctx.resource_token(rtype, res) if isinstance(res, dict) else None,
            field=field,
        )

    def _process(self, entry: Entry, rtype: str) -> None:
        res = entry.resource
        assert res is not None
        if rtype == "(no resourceType)":
            self._issue("rejected", rtype, entry, "not a FHIR resource: no resourceType", "resourceType")
            return
        try:
            model, version = validate_resource(res, self.ctx.version or entry.version or self.info.version)
        except KeyError:
            self._issue("rejected", rtype, entry, f"unknown resourceType {rtype!r}", "resourceType")
            return
        except ValidationError as exc:
            self._issue("rejected", rtype, entry, _first_error(exc))
            return
        except (ValueError, TypeError, RecursionError) as exc:  # fhir.resources raises some of these raw
            self._issue("rejected", rtype, entry, f"invalid resource: {exc}")
            return
        try:
            converted = self._convert(res, model, rtype, entry)
        except Reject as rej:
            self._issue(rej.outcome, rtype, entry, rej.reason, rej.field)
            return
        except Defer:
            self._spool.write(entry_json(entry, version) + "\n")
            self._deferred += 1
            return
        except ValidationError as exc:
            self._issue("rejected", rtype, entry, _first_error(exc))
            return
        except InteropError as exc:
            self._issue("rejected", rtype, entry, exc.message, exc.field)
            return
        except (ValueError, TypeError, ArithmeticError, AttributeError, KeyError) as exc:
            log.debug("unexpected %s converting %s", type(exc).__name__, rtype, exc_info=True)
            self._issue("rejected", rtype, entry, f"cannot convert: {type(exc).__name__}: {exc}")
            return
        if converted:
            self.report.converted[rtype] += 1
        else:
            self._issue("skipped", rtype, entry, "duplicate: an item with the same id was already converted")

    def _convert(self, res: dict[str, Any], model: Any, rtype: str, entry: Entry) -> bool:
        ctx = self.ctx
        if rtype == "Patient":
            patient = convert_patient(res, model, ctx, entry)
            self.sink.add_patient(patient)  # the same person from two feeds: one record
            return True
        if rtype == "Medication":
            index_medication(res, ctx, entry)
            return True
        if rtype == "Encounter":
            index_encounter(res, ctx, entry)
            return True
        if rtype == "Specimen":
            index_specimen(res, model, ctx, entry)
            return True
        handler = ITEM_HANDLERS.get(rtype)
        if handler is None:
            raise Reject("resource type not used by the patient schema", None, "skipped")
        pid = ctx.patient_of(res, patient_field(rtype, res))
        item = handler(res, model, ctx, entry, pid)
        return self.sink.add(pid, item)

    # -- end ----------------------------------------------------------------------------------
    def deferred(self) -> Iterator[str]:
        """The resources that waited for context, in the order they were read (:func:`entry_json`)."""
        self._spool.flush()
        self._spool.seek(0)
        yield from (line.rstrip("\n") for line in self._spool)

    def retry(self, entry: Entry) -> None:
        """Convert a resource that waited, with the context complete (``ctx.final_pass``)."""
        assert entry.resource is not None
        self._process(entry, str(entry.resource.get("resourceType")))

    def close(self) -> None:
        """Drop the spool of waiting resources (when :meth:`finish` is not called)."""
        self._spool.close()

    def finish(self) -> ImportReport:
        """Retry what waited for context, then close the report's counts."""
        self.ctx.final_pass = True
        for line in self.deferred():
            self.retry(entry_from_json(line))
        self._spool.close()
        self.report.versions = (*self.ctx.tables.versions, ANALYTES_VERSION)
        return self.report


def patient_field(rtype: str, res: dict[str, Any]) -> str:
    """The field naming an item's Patient: ``subject``, or ``patient`` on an R4 Condition without one."""
    return "patient" if rtype == "Condition" and "subject" not in res else "subject"


def entry_json(entry: Entry, version: FhirVersion | None = None) -> str:
    """An entry with a resource as one JSON line (the spool of resources waiting for context)."""
    return json.dumps(
        {
            "r": entry.resource,
            "s": entry.source,
            "l": entry.line,
            "u": entry.full_url,
            "a": list(entry.aliases),
            "v": version or entry.version,
        }
    )


def entry_from_json(line: str) -> Entry:
    d = json.loads(line)
    return Entry(d["r"], d["s"], d["l"], full_url=d["u"], aliases=tuple(d["a"]), version=d["v"])


def iter_inputs(inputs: Iterable[Path | str], info: FeedInfo, *, token: str | None = None) -> Iterator[Entry]:
    """Entries of files, folders (Bulk exports) and FHIR REST search URLs, in the order given."""
    for item in inputs:
        if isinstance(item, str) and is_url(item):
            yield from iter_search(item, info, token=token)
        else:
            yield from iter_entries([Path(item)], info)


def convert_paths(
    paths: Iterable[Path | str],
    key: bytes,
    *,
    tables: CodeTables | None = None,
    version: FhirVersion | None = None,
    date_shift: bool = True,
    sink: ItemSink | None = None,
    token: str | None = None,
    on_entry: Callable[[Entry], None] | None = None,
) -> tuple[ImportReport, ItemSink]:
    """Convert every resource of files, folders (Bundles, NDJSON, Bulk exports) and REST URLs."""
    info = FeedInfo(version=version)
    conv = FhirConverter(key, tables=tables, version=version, date_shift=date_shift, sink=sink, info=info)
    for entry in iter_inputs(paths, info, token=token):
        if info.transaction_time is not None and conv.ctx.export_time != info.transaction_time:
            conv.ctx.export_time = info.transaction_time  # a Bulk export: its transactionTime is the limit
        conv.add(entry)
        if on_entry is not None:
            on_entry(entry)
    return conv.finish(), conv.sink


def convert_bundle(
    bundle: dict[str, Any],
    key: bytes,
    *,
    source: str = "<bundle>",
    tables: CodeTables | None = None,
    version: FhirVersion | None = None,
    date_shift: bool = True,
) -> ConversionResult:
    """Convert a Bundle or single resource (as parsed JSON) into one ``PatientRecord`` per Patient.

    >>> import json
    >>> from importlib.resources import files
    >>> path = files("interop") / "data" / "demo" / "gentamicin_patient.json"
    >>> result = convert_bundle(json.loads(path.read_text()), b"secret key")
    >>> [len(r.measurements) for r in result.records], result.report.balanced()
    ([8], True)
    >>> "MRN-0042-DEMO" in result.records[0].model_dump_json()  # pseudonymised
    False
    """
    info = FeedInfo(version=version)
    conv = FhirConverter(key, tables=tables, version=version, date_shift=date_shift, info=info)
    for entry in iter_json_document(bundle, source, info):
        conv.add(entry)
    report = conv.finish()
    return ConversionResult(tuple(conv.sink.records()), report)


def convert_bundle_file(
    path: Path,
    key: bytes,
    *,
    extra_tables: tuple[Path, ...] = (),
    version: FhirVersion | None = None,
    date_shift: bool = True,
) -> ConversionResult:
    """Read a FHIR JSON file (Bundle or single resource, plain or gzip), NDJSON file or folder."""
    report, sink = convert_paths(
        [Path(path)],
        key,
        tables=load_code_tables(tuple(extra_tables)),
        version=version,
        date_shift=date_shift,
    )
    try:
        return ConversionResult(tuple(sink.records()), report)
    finally:
        sink.close()
