"""Bulk FHIR on Dask: one import split over worker processes, giving the one-process result.

The inputs are walked as :func:`converters.fhir.convert_paths` walks them (folders, Bulk
manifests, context types first) into an ordered list of partitions: a whole file, or a byte
range of a large plain NDJSON file. A line belongs to the range its first byte is in, so a line
that straddles a boundary is read exactly once. Then three steps run on the workers:

1. **index** (per partition): the context resources (Patient, Medication, Encounter, Specimen)
   as reference key -> pseudonym / medication / encounter / collection time. They need no
   context themselves, so a partition holding nothing else (a Bulk export's ``Patient.ndjson``)
   is converted here for good; in any other, lines without a context type's name are skipped
   unparsed. (A range's first line number is counted by the plan: one pass over the bytes.)
2. **convert** (each other partition): every resource, with the context one process would have had at
   that point: the indices of all earlier partitions merged in order, then the partition's own
   as it is read. Items go to the partition's :class:`PartSpool` (shared storage) tagged with
   their patient's bucket; resources waiting for context (per-kg doses, a patient not yet seen)
   and body weights are kept there for step 3.
3. **reduce** (per bucket of patients): the bucket's patients and items from every partition in
   reading order (an item id seen again is a duplicate, as in one process), then the waiting
   resources of the bucket's patients with the whole context and all their weights; records are
   merged into the :class:`RecordStore` and the bucket's Parquet part files written.

The reports of all steps are merged in reading order, so the counts are those of one process.
The key travels inside :class:`SecretKey` (hidden from logs and reprs); task keys name the step
and a number only, partitions print without their path. Dask reruns the tasks of a worker that
died; each task rewrites its own files, so a rerun changes nothing, and a task that keeps
killing workers stops the import with an error: nothing is lost silently.

Written here rather than with ``dask.bag.read_text(blocksize=...)``: that splits on line
boundaries too, but loses the line numbers the report must name and cannot carry the
context that flows from earlier partitions to later ones.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from converters.fhir.codes import CodeTables, load_code_tables
from converters.fhir.context import Context, MedicationInfo, patient_ref_key
from converters.fhir.convert import FhirConverter, entry_from_json, patient_field
from converters.fhir.output import ImportOutput
from converters.fhir.rest import iter_search
from converters.fhir.sink import CLASSES, PartSpool, SpoolSink, bucket_of
from converters.fhir.sources import (
    Entry,
    FeedInfo,
    ManifestKind,
    folder_contents,
    is_manifest,
    is_ndjson,
    is_url,
    iter_ndjson,
    iter_ndjson_lines,
    iter_path,
    load_small_json,
    manifest_entries,
    manifest_files,
    open_stream,
)
from converters.fhir.versions import FhirVersion, detect_version
from converters.pseudonym import SecretKey, source_token
from converters.report import ImportReport, Issue, write_report
from interop.errors import ConversionError
from interop.schema.analytes import ANALYTES_VERSION
from interop.schema.cohort import write_cohort
from interop.schema.record_store import RecordStore

__all__ = ["Part", "RunSpec", "convert_parallel", "first_lines", "part_entries", "plan_parts", "range_lines"]

CONTEXT_TYPES = frozenset({"Patient", "Medication", "Encounter", "Specimen"})
# A line can hold a context resource only if it has one of these (its resourceType value),
# or a \u escape (which could spell one): every other line is counted, never parsed, in step 1.
_CONTEXT_MARKS = (*(f'"{t}"'.encode() for t in sorted(CONTEXT_TYPES)), b"\\u")
MIN_CHUNK = 1 << 20
DUPLICATE = "duplicate: an item with the same id was already converted"

PartKind = Literal["ndjson", "document", "url", "entry"]
Step = Callable[[str], None]


@dataclass(frozen=True, repr=False)
class Part:
    """One partition of the inputs, in reading order (``index``)."""

    index: int
    kind: PartKind
    path: str  # the file as read (reports name it) or the URL
    start: int = 0
    end: int | None = None  # a byte range [start, end) of a plain NDJSON file; None: the whole file
    manifest_kind: ManifestKind = "output"
    type_hint: str | None = None
    version: FhirVersion | None = None
    transaction_time: dt.datetime | None = None
    deleted: frozenset[str] = frozenset()
    entry: Entry | None = None  # kind "entry": an input that is an error in itself (an XML file)
    first_line: int = 1  # the file's line number of the range's first line

    def __repr__(self) -> str:  # Dask logs a failed task's arguments: never the path (it may name a patient)
        span = "" if self.end is None else f", bytes {self.start}-{self.end}"
        return f"Part({self.index}, {self.kind}{span})"


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def plan_parts(inputs: Iterable[Path | str], info: FeedInfo, *, chunk_bytes: int) -> list[Part]:
    """The inputs as ordered partitions; plain NDJSON files over ``chunk_bytes`` split in byte ranges.

    Reads what one process reads before any resource: folder listings, manifests, and the
    ``deleted`` files of Bulk manifests (the ids they list are skipped everywhere after).
    """
    parts: list[Part] = []
    deleted: frozenset[str] = frozenset()

    def add(kind: PartKind, path: str, **kw: Any) -> None:
        nonlocal deleted
        if len(deleted) != len(info.deleted):
            deleted = frozenset(info.deleted)
        parts.append(
            Part(
                len(parts),
                kind,
                path,
                version=info.version,
                transaction_time=info.transaction_time,
                deleted=deleted,
                **kw,
            )
        )

    def ndjson(path: Path, kind: ManifestKind, rtype: str | None) -> None:
        try:
            size = path.stat().st_size
            gz = _is_gzip(path)
        except OSError as exc:
            raise ConversionError(f"cannot read: {exc}", source=str(path)) from exc
        if kind == "output" and not gz and size > chunk_bytes:
            starts = list(range(0, size, chunk_bytes))
            for start, first in zip(starts, first_lines(path, starts), strict=True):
                end = min(start + chunk_bytes, size)
                add("ndjson", str(path), start=start, end=end, type_hint=rtype, first_line=first)
            return
        add("ndjson", str(path), manifest_kind=kind, type_hint=rtype)
        if kind == "deleted":
            for _ in manifest_entries(kind, iter_ndjson(path, type_hint=rtype, version=info.version), info):
                pass  # fills info.deleted

    def manifest(obj: dict[str, Any], base: Path, source: str) -> None:
        for kind, path, rtype in manifest_files(obj, base, source, info):
            ndjson(path, kind, rtype)

    def walk(path: Path) -> None:
        if path.is_dir():
            manifests, xml, files = folder_contents(path)
            for m in manifests:
                manifest(load_small_json(m), m.parent, str(m))
            for e in xml:
                add("entry", e.source, entry=e)
            for f in files:
                walk(f)
        elif not path.exists():
            raise ConversionError("no such file or folder", source=str(path))
        elif is_ndjson(path):
            ndjson(path, "output", None)
        else:
            obj = load_small_json(path)
            if is_manifest(obj):
                manifest(obj, path.parent, str(path))
            else:
                add("document", str(path))  # a Bundle or resource: read whole, as JSON must be

    for item in inputs:
        if isinstance(item, str) and is_url(item):
            add("url", item)
        else:
            walk(Path(item))
    return parts


def first_lines(path: Path, starts: list[int]) -> list[int]:
    """The line number of the first line of each range starting at ``starts`` (ascending).

    A line starts at byte 0 and after every newline; the range at ``start`` begins with the
    first line starting at or after it, so its number is one more than the lines starting
    before ``start``: 1 (the line at byte 0) + the newlines in ``[0, start - 1)``.
    """
    out: list[int] = []
    newlines, pos = 0, 0
    with path.open("rb") as fh:
        for start in starts:
            while pos < start - 1:
                block = fh.read(min(1 << 24, start - 1 - pos))
                if not block:
                    break
                newlines += block.count(b"\n")
                pos += len(block)
            out.append(1 if start == 0 else 2 + newlines)
    return out


def range_lines(path: Path, start: int, end: int) -> Iterator[bytes]:
    """The lines of ``path`` whose first byte lies in ``[start, end)``, with their newline.

    A line that begins before ``start`` belongs to the range before (it is skipped here), a line
    that begins before ``end`` and runs past it belongs to this range (it is read whole).
    """
    with path.open("rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            fh.readline()  # the end of the line the previous range owns (just b"\n" at a line start)
        pos = fh.tell()
        while pos < end:
            line = fh.readline()
            if not line:
                return
            yield line
            pos += len(line)


# -- what travels to the workers ----------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """Everything a task needs besides its partition: sent once to every worker (scattered)."""

    key: SecretKey
    tables: CodeTables
    version: FhirVersion | None
    date_shift: bool
    export_time: dt.datetime  # the limit before a Bulk manifest names its transactionTime
    final_export_time: dt.datetime  # the limit when the waiting resources are converted
    buckets: int
    token: SecretKey | None = None
    sources: dict[str, str] = field(default_factory=dict)  # keyed token -> the file as read

    def converter(self, info: FeedInfo, sink: Any, export_time: dt.datetime | None = None) -> FhirConverter:
        return FhirConverter(
            self.key.reveal(),
            tables=self.tables,
            version=self.version,
            date_shift=self.date_shift,
            export_time=export_time or self.export_time,
            sink=sink,
            info=info,
        )


@dataclass
class PartIndex:
    """Step 1's result for one partition: its context resources by reference key, and its report
    when the partition held only context resources (then it is converted, and step 2 skips it)."""

    report: ImportReport | None = None
    patients: dict[str, str] = field(default_factory=dict)
    medications: dict[str, MedicationInfo] = field(default_factory=dict)
    encounters: dict[str, str] = field(default_factory=dict)
    specimens: dict[str, dt.datetime] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.patients or self.medications or self.encounters or self.specimens)

    def seed(self, ctx: Context) -> None:
        """Add this partition's context to ``ctx`` (later partitions win, as later lines do)."""
        ctx.patients.update(self.patients)
        ctx.medications.update(self.medications)
        ctx.encounters.update(self.encounters)
        ctx.specimens.update(self.specimens)


def _info(part: Part) -> FeedInfo:
    return FeedInfo(transaction_time=part.transaction_time, version=part.version, deleted=set(part.deleted))


def part_entries(part: Part, info: FeedInfo, token: SecretKey | None = None) -> Iterator[Entry]:
    """The entries of one partition, with the line numbers of its file."""
    if part.kind == "entry":
        assert part.entry is not None
        yield part.entry
    elif part.kind == "url":
        yield from iter_search(part.path, info, token=token.reveal().decode() if token else None)
    elif part.kind == "document":
        yield from iter_path(Path(part.path), info)
    else:
        path = Path(part.path)
        if part.end is None:
            entries = iter_ndjson(path, type_hint=part.type_hint, version=part.version)
        else:
            lines = range_lines(path, part.start, part.end)
            entries = iter_ndjson_lines(
                lines, part.path, type_hint=part.type_hint, version=part.version, first_line=part.first_line
            )
        yield from manifest_entries(part.manifest_kind, entries, info)


def _raw_lines(part: Part) -> Iterator[bytes]:
    if part.end is not None:
        yield from range_lines(Path(part.path), part.start, part.end)
        return
    with open_stream(Path(part.path)) as fh:
        yield from fh


def index_part(part: Part, run: RunSpec, spool: str) -> PartIndex:
    """Step 1: the partition's context resources; converted for good if it holds nothing else."""
    info = _info(part)
    sink = PartSpool(Path(spool), run.buckets)
    conv = run.converter(info, sink, part.transaction_time)
    only_context = part.kind == "ndjson" and part.manifest_kind == "output"
    try:
        if only_context:
            try:
                for n, raw in enumerate(_raw_lines(part), start=part.first_line):
                    if not raw.strip():
                        continue
                    if not any(m in raw for m in _CONTEXT_MARKS):
                        only_context = False  # an item (or a bad line): step 2 converts this partition
                        continue
                    try:
                        obj = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        only_context = False
                        continue
                    if isinstance(obj, dict) and obj.get("resourceType") in CONTEXT_TYPES:
                        conv.add(Entry(obj, part.path, n, version=part.version or detect_version(obj)))
                    else:
                        only_context = False
            except (OSError, EOFError, gzip.BadGzipFile):
                only_context = False  # step 2 reports the corrupt file
        else:
            for entry in part_entries(part, info, run.token):
                if entry.resource is not None and entry.resource.get("resourceType") in CONTEXT_TYPES:
                    conv.add(entry)
        if only_context:
            sink.commit()
    finally:
        conv.close()
        sink.close()
    ctx = conv.ctx
    return PartIndex(
        conv.report if only_context else None, ctx.patients, ctx.medications, ctx.encounters, ctx.specimens
    )


def _meta(index: PartIndex) -> tuple[bool, bool]:
    return index.empty, index.report is not None


def convert_part(part: Part, run: RunSpec, spool: str, own: PartIndex, *seeds: PartIndex) -> ImportReport:
    """Step 2: convert the partition's resources into its spool; its report."""
    if own.report is not None:
        return own.report  # converted in step 1
    info = _info(part)
    sink = PartSpool(Path(spool), run.buckets)
    conv = run.converter(info, sink, part.transaction_time)
    for index in seeds:
        index.seed(conv.ctx)
    try:
        for entry in part_entries(part, info, run.token):
            if info.transaction_time is not None and conv.ctx.export_time != info.transaction_time:
                conv.ctx.export_time = info.transaction_time
            conv.add(entry)
        for line in conv.deferred():
            res = json.loads(line)["r"]
            sink.add_deferred(patient_ref_key(res, patient_field(str(res.get("resourceType")), res)), line)
        sink.add_weights(conv.ctx.weights)
        sink.commit()
    finally:
        conv.close()
        sink.close()
    return conv.report


def reduce_bucket(
    bucket: int, run: RunSpec, spools: list[str], out: str, stage: str, *indices: PartIndex
) -> tuple[ImportReport, ImportReport, int]:
    """Step 3: one bucket's records (merged into the store) and Parquet part files.

    Returns the duplicates found across partitions (as a report adjusting their counts), the
    report of the resources that waited for context, and the number of records written.
    """
    dups = ImportReport()
    sink = SpoolSink(Path(stage))
    conv = run.converter(FeedInfo(version=run.version), sink, run.final_export_time)
    for index in indices:
        index.seed(conv.ctx)
    conv.ctx.final_pass = True
    parts = [PartSpool(Path(p), run.buckets, create=False) for p in spools]
    try:
        for spool in parts:
            for pid, text in spool.patients(bucket):
                sink.add_patient_json(pid, text)  # the same person twice: the first one is kept
            for pid, kind, item_id, text in spool.items(bucket):
                if not sink.add_json(pid, kind, item_id, text):
                    prov = CLASSES[kind].model_validate_json(text).provenance
                    dups.converted[prov.resource_type] -= 1
                    dups.add(
                        "skipped",
                        prov.resource_type,
                        DUPLICATE,
                        source=run.sources.get(prov.source_file or "", prov.source_file),
                        line=prov.source_line,
                        resource_id=prov.resource_id,
                        field=None,
                    )
            for pid, when, kg in spool.weights(bucket):
                conv.ctx.add_weight(pid, when, kg)
        for spool in parts:
            for ref, line in spool.deferred():
                owner = conv.ctx.patients.get(ref) if ref else None  # none: rejected by bucket 0
                if (bucket_of(owner, run.buckets) if owner is not None else 0) == bucket:
                    conv.retry(entry_from_json(line))
        written = _write_bucket(bucket, sink, Path(out), Path(stage), run.buckets)
    finally:
        for spool in parts:
            spool.close()
        conv.close()
        sink.close()
    return dups, conv.report, written


def _write_bucket(bucket: int, sink: SpoolSink, out: Path, stage: Path, buckets: int) -> int:
    store = RecordStore(out)
    written: set[str] = set()

    def every_record() -> Iterator[Any]:
        for rec in store.merge_all(sink.records()):
            written.add(rec.patient.id)
            yield rec
        for pid in store.ids():  # records of other imports into the same folder, in their bucket
            if bucket_of(pid, buckets) == bucket and pid not in written:
                old = store.load(pid)
                if old is not None:
                    yield old

    tables = write_cohort(every_record(), stage / f"bucket-{bucket:05d}")
    for name, path in tables.items():
        target = stage / "cohort" / f"{name}.parquet"
        target.mkdir(parents=True, exist_ok=True)
        path.replace(target / f"part-{bucket:05d}.parquet")
    return len(written)


# -- the client's side ------------------------------------------------------------------------------
def _issue_order(ranks: dict[str, int]) -> Callable[[Issue], tuple[int, int]]:
    return lambda i: (ranks.get(i.source or "", len(ranks)), i.line or 0)


def _install_cohort(staged: Path, cohort: Path) -> None:
    """Replace the cohort's tables by the staged part-file folders (``<kind>.parquet/part-*.parquet``)."""
    cohort.mkdir(parents=True, exist_ok=True)
    for old in cohort.glob("*.parquet"):
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    if staged.is_dir():
        for table in sorted(staged.iterdir()):
            table.replace(cohort / table.name)


def convert_parallel(
    client: Any,
    inputs: Iterable[Path | str],
    key: bytes,
    out: Path,
    *,
    hide: Callable[[str], str],
    tables: CodeTables | None = None,
    version: FhirVersion | None = None,
    date_shift: bool = True,
    token: str | None = None,
    chunk_bytes: int | None = None,
    buckets: int | None = None,
    on_step: Step | None = None,
) -> tuple[ImportReport, ImportOutput]:
    """Import ``inputs`` into ``out`` on the Dask cluster of ``client`` (see the module docstring).

    ``out`` (and the inputs) must be readable and writable at the same path on every worker.
    """
    from distributed import KilledWorker  # the 'cluster' extra: the caller made a client with it

    step = on_step or (lambda _: None)
    inputs = list(inputs)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    now = dt.datetime.now(dt.UTC)
    info = FeedInfo(version=version)
    if chunk_bytes is None:
        plain = [Path(i) for i in inputs if not (isinstance(i, str) and is_url(i))]
        total = sum(_ndjson_bytes(p) for p in plain)
        chunk_bytes = max(MIN_CHUNK, -(-total // (8 * n_workers)))  # small enough to even out the tail
    parts = plan_parts(inputs, info, chunk_bytes=chunk_bytes)
    n_buckets = buckets or 2 * n_workers
    ranks: dict[str, int] = {}
    for p in parts:
        ranks.setdefault(p.path, len(ranks))
    run = RunSpec(
        key=SecretKey(key),
        tables=tables or load_code_tables(),
        version=version,
        date_shift=date_shift,
        export_time=now,
        final_export_time=info.transaction_time or now,
        buckets=n_buckets,
        token=SecretKey(token.encode()) if token else None,
        sources={source_token(key, p.path): p.path for p in parts},
    )
    out.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:12]
    stage = out / f".parallel-{tag}"
    stage.mkdir(mode=0o700)  # resources waiting for context are kept there as read: the owner only
    futures: list[Any] = []
    try:
        run_f = client.scatter(run, broadcast=True, hash=False)
        futures.append(run_f)
        step(f"index: {len(parts)} partition(s) on {n_workers} worker(s)")
        spools = [str(stage / f"part-{p.index:06d}.sqlite") for p in parts]
        idx = [  # step 1 writes its own spool: a rerun of it (a worker died) never touches step 2's
            client.submit(
                index_part,
                p,
                run_f,
                f"{spools[p.index]}.index",
                key=f"fhir-index-{tag}-{p.index}",
                pure=False,
            )
            for p in parts
        ]
        futures += idx
        metas = client.gather(
            [client.submit(_meta, f, key=f"fhir-meta-{tag}-{i}", pure=False) for i, f in enumerate(idx)]
        )
        empty = [e for e, _ in metas]
        spools = [f"{s}.index" if done else s for s, (_, done) in zip(spools, metas, strict=True)]
        context = [f for f, e in zip(idx, empty, strict=True) if not e]
        step(f"convert: {len(parts)} partition(s)")
        converted = [
            client.submit(
                convert_part,
                p,
                run_f,
                spools[p.index],
                idx[p.index],
                *(f for f, e, q in zip(idx, empty, parts, strict=True) if not e and q.index < p.index),
                key=f"fhir-convert-{tag}-{p.index}",
                pure=False,
            )
            for p in parts
        ]
        futures += converted
        part_reports = client.gather(converted)
        step(f"reduce: {n_buckets} bucket(s) of patients")
        reduced = [
            client.submit(
                reduce_bucket,
                b,
                run_f,
                spools,
                str(out),
                str(stage),
                *context,
                key=f"fhir-reduce-{tag}-{b}",
                pure=False,
            )
            for b in range(n_buckets)
        ]
        futures += reduced
        results = client.gather(reduced)
        report = ImportReport()
        order = _issue_order(ranks)
        for r in part_reports:
            report.merge(r, order)
        for dups, waited, _ in results:
            report.merge(dups, order)
            report.merge(waited, order)
        report.versions = (*run.tables.versions, ANALYTES_VERSION)
        _install_cohort(stage / "cohort", out / "cohort")
        report_json, report_txt = write_report(report, out, hide)
    except KilledWorker as exc:
        raise ConversionError(
            f"Dask workers died running {exc.args[0] if exc.args else 'a task'} again and again: "
            "import stopped, the output folder is incomplete (run the import again)",
            source=str(out),
        ) from exc
    finally:
        for f in futures:
            f.release()
        shutil.rmtree(stage, ignore_errors=True)
    patients = sum(n for _, _, n in results)
    return report, ImportOutput(RecordStore(out).directory, out / "cohort", report_json, report_txt, patients)


def _ndjson_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(_ndjson_bytes(p) for p in path.iterdir())
    return path.stat().st_size if path.is_file() and is_ndjson(path) else 0
