"""Reading FHIR inputs as a stream of resources: Bundles, single resources, NDJSON, Bulk exports.

Every resource (or unreadable line) comes out as one :class:`Entry` naming its file and line,
so the converter can report it precisely. NDJSON is streamed line by line (plain or gzip,
detected by magic bytes) and never loaded whole; a JSON file (Bundle or single resource) is
read whole, as JSON must be. A Bulk Data export is a folder of per-type NDJSON files or its
manifest (``output``, ``error`` and ``deleted`` lists, ``transactionTime``); the files are
yielded in an order that puts context (Patient, Medication, Encounter, Specimen) first.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from converters.fhir.versions import FhirVersion, detect_version
from interop.errors import ConversionError

__all__ = [
    "Entry",
    "FeedInfo",
    "folder_contents",
    "is_manifest",
    "is_ndjson",
    "iter_entries",
    "iter_ndjson",
    "iter_ndjson_lines",
    "load_small_json",
    "manifest_entries",
    "manifest_files",
    "open_stream",
    "type_priority",
]

Outcome = Literal["rejected", "skipped"]
_ORDER = (
    "Patient",
    "Medication",
    "Encounter",
    "Specimen",
    "Observation",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
)
_TYPE_FROM_NAME = re.compile(r"^([A-Z][A-Za-z]+)")
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
XML_NOT_SUPPORTED = "FHIR XML is not supported, convert to JSON"


def type_priority(resource_type: str | None) -> int:
    """Sort key: context resources before the items that reference them."""
    try:
        return _ORDER.index(resource_type or "")
    except ValueError:
        return len(_ORDER)


@dataclass(frozen=True)
class Entry:
    """One resource read from an input, or one line that could not be read (``error``)."""

    resource: dict[str, Any] | None
    source: str
    line: int | None = None  # NDJSON line, or 1-based entry number in a Bundle
    full_url: str | None = None
    aliases: tuple[str, ...] = ()  # conditional references that name this resource
    error: str | None = None
    outcome: Outcome = "rejected"
    resource_type: str | None = None  # for errors: the type the file or manifest says
    version: FhirVersion | None = None


@dataclass
class FeedInfo:
    """What the inputs say about themselves, filled while reading."""

    transaction_time: dt.datetime | None = None
    version: FhirVersion | None = None
    deleted: set[str] = field(default_factory=set)  # "Type/id" listed as deleted by a Bulk export


def open_stream(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with the gzip magic number."""
    raw = path.open("rb")
    head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def is_ndjson(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(NDJSON_SUFFIXES)


def iter_ndjson_lines(
    lines: Iterable[bytes],
    source: str,
    *,
    type_hint: str | None = None,
    version: FhirVersion | None = None,
    first_line: int = 1,
) -> Iterator[Entry]:
    """One entry per non-blank line; invalid JSON becomes an error entry naming the line.

    ``first_line`` is the file's line number of the first of ``lines`` (a byte range of a file).
    """
    for n, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            xml = raw.lstrip(b"\xef\xbb\xbf \t").startswith(b"<")
            error = XML_NOT_SUPPORTED if xml else f"invalid JSON: {exc}"
            yield Entry(None, source, n, error=error, resource_type=type_hint)
            continue
        if not isinstance(obj, dict):
            yield Entry(
                None,
                source,
                n,
                error=f"a line must hold a JSON object, got {type(obj).__name__}",
                resource_type=type_hint,
            )
            continue
        yield Entry(obj, source, n, version=version or detect_version(obj))


def iter_ndjson(
    path: Path, *, type_hint: str | None = None, version: FhirVersion | None = None, source: str | None = None
) -> Iterator[Entry]:
    """Stream an NDJSON file (plain or gzip) line by line."""
    try:
        stream = open_stream(path)
    except OSError as exc:
        raise ConversionError(f"cannot read: {exc}", source=str(path)) from exc
    with stream:
        try:
            yield from iter_ndjson_lines(stream, source or str(path), type_hint=type_hint, version=version)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            yield Entry(
                None,
                source or str(path),
                None,
                error=f"file truncated or corrupt: {exc}",
                resource_type=type_hint,
            )


def iter_json_document(obj: Any, source: str, info: FeedInfo) -> Iterator[Entry]:
    """A parsed JSON document: a Bundle (entries, nested Bundles expanded), a manifest or a resource."""
    if not isinstance(obj, dict):
        yield Entry(None, source, error=f"expected a JSON object, got {type(obj).__name__}")
        return
    if obj.get("resourceType") == "Bundle":
        yield from _bundle_entries(obj, source, info)
        return
    yield Entry(obj, source, version=detect_version(obj) or info.version)


def _bundle_entries(bundle: dict[str, Any], source: str, info: FeedInfo) -> Iterator[Entry]:
    version = detect_version(bundle) or info.version
    entries = bundle.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        yield Entry(None, source, error="Bundle.entry is not a list", resource_type="Bundle")
        return
    out: list[Entry] = []
    for n, e in enumerate(entries, start=1):
        if not isinstance(e, dict):
            out.append(Entry(None, source, n, error="Bundle entry is not an object", resource_type="Bundle"))
            continue
        res = e.get("resource")
        request: dict[str, Any] = e["request"] if isinstance(e.get("request"), dict) else {}
        if res is None:
            method = request.get("method") if isinstance(request, dict) else None
            url = request.get("url") if isinstance(request, dict) else None
            rtype = str(url).split("/")[0].split("?")[0] if url else "Bundle"
            out.append(
                Entry(
                    None,
                    source,
                    n,
                    error=f"entry without resource ({method or 'no request'} {rtype or 'Bundle'})",
                    outcome="skipped",
                    resource_type=rtype or "Bundle",
                )
            )
            continue
        if not isinstance(res, dict):
            out.append(
                Entry(None, source, n, error="entry.resource is not an object", resource_type="Bundle")
            )
            continue
        if res.get("resourceType") == "Bundle":
            out.extend(_bundle_entries(res, source, info))
            continue
        aliases = tuple(
            str(u)
            for u in (
                request.get("url") if request.get("method") == "PUT" else None,
                request.get("ifNoneExist") and f"{res.get('resourceType')}?{request.get('ifNoneExist')}",
            )
            if u
        )
        full_url = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None
        out.append(
            Entry(res, source, n, full_url=full_url, aliases=aliases, version=detect_version(res) or version)
        )
    out.sort(key=lambda x: type_priority((x.resource or {}).get("resourceType") if x.resource else None))
    yield from out


def _parse_instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _manifest_path(base: Path, url: str) -> Path:
    if url.startswith("file://"):
        return Path(url[len("file://") :])
    if "://" in url:
        raise ConversionError("manifest URL is remote: import it with the REST client", source=url)
    p = Path(url)
    return p if p.is_absolute() else base / p


ManifestKind = Literal["deleted", "output", "error"]


def manifest_files(
    manifest: dict[str, Any], base: Path, source: str, info: FeedInfo
) -> Iterator[tuple[ManifestKind, Path, str | None]]:
    """A Bulk Data manifest's files as (kind, path, type): ``deleted`` first (so those ids are
    honoured), then outputs (context types first), then errors; fills ``info`` from the manifest."""
    info.transaction_time = _parse_instant(manifest.get("transactionTime")) or info.transaction_time
    info.version = detect_version(manifest) or info.version
    kinds: tuple[ManifestKind, ...] = ("deleted", "output", "error")
    for kind in kinds:
        items = manifest.get(kind) or []
        if not isinstance(items, list):
            raise ConversionError(f"manifest {kind!r} is not a list", source=source, field=kind)
        items = sorted((i for i in items if isinstance(i, dict)), key=lambda i: type_priority(i.get("type")))
        for item in items:
            url = item.get("url")
            if not isinstance(url, str):
                raise ConversionError("manifest item without url", source=source, field=kind)
            rtype = item.get("type")
            yield kind, _manifest_path(base, url), rtype if isinstance(rtype, str) else None


def manifest_entries(kind: ManifestKind, entries: Iterable[Entry], info: FeedInfo) -> Iterator[Entry]:
    """The entries of one manifest file as its kind reads them (deleted ids, export errors, resources)."""
    if kind == "deleted":
        return _deleted_entries(entries, info)
    if kind == "error":
        return _error_entries(entries)
    return iter(entries)


def iter_manifest(manifest: dict[str, Any], base: Path, source: str, info: FeedInfo) -> Iterator[Entry]:
    """Every entry of a Bulk Data manifest's files, in :func:`manifest_files` order."""
    for kind, path, rtype in manifest_files(manifest, base, source, info):
        yield from manifest_entries(kind, iter_ndjson(path, type_hint=rtype, version=info.version), info)


def _deleted_entries(entries: Iterable[Entry], info: FeedInfo) -> Iterator[Entry]:
    for e in entries:
        if e.resource is None:
            yield e
            continue
        for be in e.resource.get("entry") or []:
            url = (be.get("request") or {}).get("url") if isinstance(be, dict) else None
            ref = str(url or "")
            rtype = ref.split("/")[0] or "Bundle"
            info.deleted.add(ref)
            yield Entry(
                None,
                e.source,
                e.line,
                error="deleted in source (Bulk export deleted list)",
                outcome="skipped",
                resource_type=rtype,
            )


def _error_entries(entries: Iterable[Entry]) -> Iterator[Entry]:
    for e in entries:
        if e.resource is None:
            yield e
            continue
        texts = [
            str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
            for i in e.resource.get("issue") or []
            if isinstance(i, dict)
        ]
        yield Entry(
            None,
            e.source,
            e.line,
            error="export error reported by the server: " + "; ".join(texts),
            outcome="skipped",
            resource_type="OperationOutcome",
        )


def is_manifest(obj: Any) -> bool:
    return isinstance(obj, dict) and "output" in obj and "resourceType" not in obj


def _file_type(path: Path) -> str | None:
    m = _TYPE_FROM_NAME.match(path.name)
    return m.group(1) if m else None


def iter_path(path: Path, info: FeedInfo) -> Iterator[Entry]:
    """Every entry of a file or folder (a Bulk export folder, with or without its manifest)."""
    if path.is_dir():
        manifests, xml, files = folder_contents(path)
        for m in manifests:
            yield from iter_manifest(load_small_json(m), m.parent, str(m), info)
        yield from xml
        for f in files:
            yield from iter_path(f, info)
        return
    if not path.exists():
        raise ConversionError("no such file or folder", source=str(path))
    if is_ndjson(path):
        yield from iter_ndjson(path, version=info.version)
        return
    try:
        with open_stream(path) as fh:
            obj = json.load(fh)
    except (OSError, EOFError) as exc:
        raise ConversionError(f"cannot read: {exc}", source=str(path)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        yield Entry(
            None,
            str(path),
            getattr(exc, "lineno", None),
            error=XML_NOT_SUPPORTED if _looks_like_xml(path) else f"invalid JSON: {exc}",
            resource_type=_file_type(path),
        )
        return
    if is_manifest(obj):
        yield from iter_manifest(obj, path.parent, str(path), info)
        return
    yield from iter_json_document(obj, str(path), info)


def folder_contents(path: Path) -> tuple[list[Path], list[Entry], list[Path]]:
    """A folder as read: its Bulk manifests (then nothing else is read), else an error entry per
    XML file and the JSON/NDJSON files in context-first order."""
    manifests = [p for p in sorted(path.glob("*.json")) if is_manifest(load_small_json(p))]
    if manifests:
        return manifests, [], []
    files = [
        p
        for p in sorted(path.iterdir())
        if p.is_file() and (is_ndjson(p) or p.name.lower().endswith((".json", ".json.gz")))
    ]
    files.sort(key=lambda p: type_priority(_file_type(p)))
    xml = [
        Entry(None, str(f), error=XML_NOT_SUPPORTED, resource_type=_file_type(f))
        for f in sorted(path.iterdir())
        if f.is_file() and f.name.lower().endswith((".xml", ".xml.gz"))
    ]
    return [], xml, files


def _looks_like_xml(path: Path) -> bool:
    """Whether the file (plain or gzip) starts with ``<`` after white space and a byte-order mark."""
    try:
        with open_stream(path) as fh:
            head = fh.read(512)
    except (OSError, EOFError):
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def load_small_json(path: Path) -> Any:
    if path.stat().st_size > 10_000_000:  # a manifest is small; a big JSON file is data
        return None
    try:
        return json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def iter_entries(paths: Iterable[Path], info: FeedInfo) -> Iterator[Entry]:
    """Every entry of every input path, in order."""
    for p in paths:
        yield from iter_path(Path(p), info)


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))
