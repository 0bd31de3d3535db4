"""Site evidence: aggregate validation records sent by validating sites, stored beside the
version whose SBML hash they name (a record for other bytes is refused), with the PNG images
(VPC, NPDE: aggregate plots) a site sends along, kept as content-addressed blobs.

Images are checked for their structure only (PNG signature, every chunk's length and CRC, one
IHDR first with bounded dimensions, nothing after IEND), never decoded: the registry has no
image library, and a check that reads no pixel cannot be made to inflate a decompression bomb.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from interop.errors import NotFoundError, PermissionDenied, RegistryError
from interop.schema import ValidationRecord, check_model_id, parse
from registry import repository as repo
from registry.auth import Principal, require_role
from registry.blobs import BlobStore, Staged
from registry.db import ModelRow, RecordImageRow, RecordRow
from registry.records import RecordImage, StoredRecord

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "add_record",
    "check_png",
    "list_records",
    "record_image",
    "stored_records",
]

MAX_IMAGES = 16  # a record's images (VPC and NPDE plots of each observable)
MAX_IMAGE_BYTES = 2 * 1024 * 1024  # one image
MAX_IMAGE_PIXELS = 8000  # width and height
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(data: bytes, source: str) -> None:
    """Refuse bytes that are not one well-formed, bounded PNG (``RegistryError`` naming ``source``)."""

    def bad(why: str) -> RegistryError:
        return RegistryError(f"not an accepted PNG image: {why}", source=source, field="images")

    if len(data) > MAX_IMAGE_BYTES:
        raise bad(f"{len(data)} bytes, more than the {MAX_IMAGE_BYTES} allowed")
    if not data.startswith(PNG_SIGNATURE):
        raise bad("no PNG signature")
    at, first = len(PNG_SIGNATURE), True
    while True:
        if at + 12 > len(data):
            raise bad("truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        end = at + 12 + length
        if end > len(data):
            raise bad(f"chunk {kind!r} runs past the end")
        body = data[at + 8 : at + 8 + length]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise bad(f"chunk {kind!r} fails its CRC")
        if first:
            if kind != b"IHDR" or length != 13:
                raise bad("the first chunk is not IHDR")
            width, height = struct.unpack(">II", body[:8])
            if not (0 < width <= MAX_IMAGE_PIXELS and 0 < height <= MAX_IMAGE_PIXELS):
                raise bad(f"{width}x{height} pixels (at most {MAX_IMAGE_PIXELS} each way)")
            first = False
        at = end
        if kind == b"IEND":
            if at != len(data):
                raise bad("bytes after the IEND chunk")
            return


def _check_images(images: Sequence[tuple[str, bytes]], record: ValidationRecord) -> None:
    where = f"record of {record.site} for {record.model_id}@{record.model_version}"
    if len(images) > MAX_IMAGES:
        raise RegistryError(
            f"{len(images)} images, at most {MAX_IMAGES} per record", source=where, field="images"
        )
    for k, (title, data) in enumerate(images):
        if not title.strip() or len(title) > 200 or not title.isprintable():
            raise RegistryError(
                f"image {k}: a title is 1 to 200 printable characters", source=where, field="images"
            )
        check_png(data, f"{where}, image {k} ({title})")


def add_record(
    sessions: sessionmaker[Session],
    record: ValidationRecord,
    who: Principal,
    images: Sequence[tuple[str, bytes]] = (),
    blobs: BlobStore | None = None,
) -> int:
    """Store ``record`` (contributors for their own site, curators for any) with its ``(title,
    PNG bytes)`` images as blobs of ``blobs``; returns its id. A refused record stores no blob."""
    require_role(who, "contributor", "sending a validation record")
    if not (who.local or who.role == "curator") and who.institution != record.site:
        raise PermissionDenied(
            f"{who.name} of {who.institution!r} cannot send records for site {record.site!r}"
        )
    _check_images(images, record)
    if images and blobs is None:
        raise ValueError("images need the registry's blob store")
    staged: list[Staged] = []
    try:
        if blobs is not None:
            for _, data in images:
                staged.append(blobs.stage(data))
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
            for k, ((title, _), st) in enumerate(zip(images, staged, strict=True)):
                s.add(
                    RecordImageRow(record_id=rec.id, position=k, title=title, sha256=st.digest, size=st.size)
                )
            repo.add_audit(
                s,
                who,
                "add-validation-record",
                record.model_id,
                record.model_version,
                site=record.site,
                record_id=rec.id,
                **({"images": [st.digest for st in staged]} if staged else {}),
            )
            s.flush()
            if blobs is not None:  # under their hash just before commit (see registry.blobs)
                for st in staged:
                    blobs.publish(st)
            return rec.id
    finally:
        for st in staged:
            BlobStore.discard(st)  # no-op for published ones


def _stored(r: RecordRow) -> StoredRecord:
    return StoredRecord(
        id=r.id,
        record=parse(ValidationRecord, r.record, source=f"record {r.id}"),
        submitted_by=r.submitted_by,
        created_at=r.created_at,
        images=tuple(RecordImage(i.position, i.title, i.sha256, i.size) for i in r.images),
    )


def stored_records(readers: sessionmaker[Session], model_id: str, version: int | None) -> list[StoredRecord]:
    """Every record of a model (of one version when ``version`` is given) with its id and images,
    oldest first."""
    check_model_id(model_id)
    with readers() as s:
        if s.get(ModelRow, model_id) is None:
            raise NotFoundError(f"no model {model_id} in the registry", source=model_id)
        return [_stored(r) for r in repo.records_for(s, model_id, version)]


def list_records(
    readers: sessionmaker[Session], model_id: str, version: int | None
) -> list[ValidationRecord]:
    """Every record of a model (of one version when ``version`` is given), oldest first."""
    return [r.record for r in stored_records(readers, model_id, version)]


def record_image(
    readers: sessionmaker[Session],
    blobs: BlobStore,
    model_id: str,
    version: int,
    record_id: int,
    position: int,
) -> tuple[RecordImage, bytes]:
    """Image ``position`` of record ``record_id`` of ``model_id@version`` and its verified bytes."""
    found = next((r for r in stored_records(readers, model_id, version) if r.id == record_id), None)
    if found is None:
        raise NotFoundError(f"no validation record {record_id} for {model_id}@{version}", source=model_id)
    image = next((i for i in found.images if i.position == position), None)
    if image is None:
        raise NotFoundError(f"validation record {record_id} has no image {position}", source=model_id)
    return image, blobs.get(image.sha256)
