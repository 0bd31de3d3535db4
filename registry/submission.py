"""Submitting a model: one new immutable version (or the identical existing one), its blobs and rows.

Part of the registry's service layer (:class:`registry.service.Registry` is the facade). A version
is immutable: new content makes a new version number; identical content (same model id, SBML bytes
and card) is recognised by its hash and returns the existing version. Blobs are staged first and
moved under their hash inside the transaction that records them, so a committed row never points
at a missing blob and a refused submission leaves nothing behind. An id the submitter names gets a
new version only from the owning institution or a curator; an id the registry *derives* never
silently becomes a new version of an existing model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session, sessionmaker

from interop.errors import RegistryError
from interop.schema import MLCard, ModelCard, parse
from interop.schema.model_id import check_model_id, model_id_from
from registry import repository as repo
from registry.annotations import Annotation, extract_metadata, ml_annotations
from registry.auth import Principal, require_owner, require_role
from registry.blobs import BlobStore, Staged
from registry.db import DrugRow, FileRow, ModelRow, VersionRow
from registry.formats import ML_FORMATS, ExtraFile, detect_format, get_format, get_ml_format
from registry.formats.sbml import read_document
from registry.paths import safe_entry, safe_name
from registry.records import StoredModel
from registry.safexml import check_xml

__all__ = ["MAX_STORED_BYTES", "MAX_UPLOAD_BYTES", "SubmissionService", "content_hash", "stored_model"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_STORED_BYTES = 50 * 1024 * 1024  # what one submission may occupy on disk, all files together
MAX_VERSION = 2**31 - 1
_RETRIES = 20
SBML_MEDIA = "https://identifiers.org/combine.specifications:sbml"
SOURCE_MEDIA = {
    "onnx": "application/zip",
    "antimony": "text/vnd.antimony",
    "omex": "https://identifiers.org/combine.specifications:omex",
    "pharmml": "https://identifiers.org/combine.specifications:pharmml",
}


def _canonical_card(card: ModelCard | MLCard | None) -> Any:
    if card is None:
        return None
    out = json.loads(card.model_dump_json())
    if isinstance(card, ModelCard) and not card.ml_models:
        del out["ml_models"]  # card 1.2's field, absent before: content hashes of other cards unchanged
    if isinstance(card, ModelCard):  # card 1.3's administration ids, likewise, when not used
        doses = [d for ref in out["reference_outputs"] for d in ref["doses"]]
        for item in out["dosing"] + ((out.get("compartments") or {}).get("doses") or []) + doses:
            if item.get("adm") is None:
                item.pop("adm", None)
        cmts = out.get("compartments") or {}  # an observation item's routing (NONMEM DVID), likewise
        if cmts and cmts.get("observation_item") is None:
            cmts.pop("observation_item", None)
            for lv in cmts.get("levels") or []:
                lv.pop("value", None)
    return out


def content_hash(model_id: str, sbml: bytes, card: ModelCard | MLCard | None) -> str:
    card_json = json.dumps(_canonical_card(card), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(model_id.encode() + b"\0" + sbml + b"\0" + card_json.encode()).hexdigest()


def stored_model(
    blobs: BlobStore, row: VersionRow, sbml: str | None = None, load: bool = True, dedup: bool = False
) -> StoredModel:
    """The stored version of ``row``: its SBML read (and re-hashed) from the blob store unless given;
    an ML version (format onnx) with its ONNX bytes and ML card instead."""
    where = f"registry {row.model_id}@{row.number}"
    stored = partial(
        StoredModel,
        model_id=row.model_id,
        version=row.number,
        sbml_sha256=row.sbml_sha256,
        status=row.status,
        format=row.format,
        institution=row.institution,
        title=row.title,
        submitted_by=row.submitted_by,
        created_at=row.created_at,
        status_changed_by=row.status_changed_by,
        status_changed_at=row.status_changed_at,
        deduplicated=dedup,
    )
    if row.format in ML_FORMATS:
        return stored(
            sbml="",
            card_or_none=None,
            ml_card=parse(MLCard, row.card, source=where),
            artefact=blobs.get(row.sbml_sha256) if load else None,
        )
    if sbml is None and load:
        sbml = blobs.get(row.sbml_sha256).decode("utf-8")
    card = None if row.card is None else parse(ModelCard, row.card, source=where)
    return stored(sbml=sbml or "", card_or_none=card)


class SubmissionService:
    """Stores submissions: bounds, ids, ownership, dedup by content hash, staged blobs, audit."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        readers: sessionmaker[Session],
        blobs: BlobStore,
        *,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_stored_bytes: int = MAX_STORED_BYTES,
    ) -> None:
        self.sessions = sessions
        self.readers = readers
        self.blobs = blobs
        self.max_upload_bytes = max_upload_bytes
        self.max_stored_bytes = max_stored_bytes

    def submit(
        self,
        sbml: str,
        card: ModelCard | None,
        *,
        submitted_by: str = "local",
        fmt: str = "sbml",
        principal: Principal | None = None,
        model_id: str | None = None,
        source: bytes | None = None,
        extra_files: Sequence[ExtraFile] = (),
        filename: str | None = None,
    ) -> StoredModel:
        """Store a new version (or return the identical existing one) of an SBML model and its card
        (the example is on :meth:`registry.Registry.submit`)."""
        who = principal or Principal(submitted_by, card.institution if card else "", "curator", local=True)
        require_role(who, "contributor", "submitting a model")
        shown = safe_name(filename) if filename else None
        data = sbml.encode("utf-8")
        if len(data) > self.max_upload_bytes:
            raise RegistryError(f"model of {len(data)} bytes exceeds {self.max_upload_bytes}", source=shown)
        if model_id is not None:
            check_model_id(model_id, source=shown)
        total = len(data) + len(source or b"") + sum(len(ef.data) for ef in extra_files)
        if total > self.max_stored_bytes:
            raise RegistryError(
                f"the submission would occupy {total} bytes on disk (limit {self.max_stored_bytes})",
                source=shown,
            )
        check_xml(data, source=shown)  # before libsbml, which would expand entities
        doc = read_document(sbml, source=shown)
        meta = extract_metadata(doc)
        if card is not None and model_id is not None and model_id != card.id:
            raise RegistryError(f"model id {model_id!r} differs from the card's id {card.id!r}", source=shown)
        if card is not None and any(m.resolved is not None for m in card.ml_models):
            raise RegistryError(
                "the card carries loaded ML models (ml_models.resolved): submit it as ID@VERSION links only",
                source=shown,
                field="ml_models",
            )
        named = card.id if card is not None else model_id
        derived = named is None
        stem = Path(safe_name(filename)).stem if filename else ""
        mid = named if named is not None else model_id_from(stem or meta.model_id or "model")
        check_model_id(mid, source=shown)
        title = card.title if card is not None else (meta.name or meta.model_id or mid)
        institution = who.institution or (card.institution if card is not None else "local")
        digest = content_hash(mid, data, card)
        self._precheck(who, mid, digest, derived)  # refusals before any byte reaches the disk
        paths = ["model.xml"]
        blobs = [data]
        roles = [("model", SBML_MEDIA)]
        if source is not None and fmt != "sbml":
            paths.append(f"source/{safe_name(filename) if filename else f'source.{fmt}'}")
            blobs.append(source)
            roles.append(("source", SOURCE_MEDIA.get(fmt, fmt)))
        for ef in extra_files:
            paths.append(f"files/{safe_entry(ef.path)}")
            blobs.append(ef.data)
            roles.append((ef.role, ef.media_format))
        staged = [self.blobs.stage(b) for b in blobs]
        files = [
            FileRow(path=p, role=r, media_format=m, sha256=st.digest, size=st.size)
            for p, (r, m), st in zip(paths, roles, staged, strict=True)
        ]
        drugs = (
            []
            if card is None
            else [
                DrugRow(system=d.system, code=d.code, display=(d.display or "").lower()) for d in card.drugs
            ]
        )
        text = " ".join([title, card.description if card else "", meta.name]).lower()
        return self._store_retrying(
            mid, staged, lambda s: self._store(
                s, who, mid, title, institution, digest, files, staged,
                drugs, meta.annotations, card, fmt, text, sbml, derived,
            ),
        )  # fmt: skip

    def submit_ml(
        self,
        onnx: bytes,
        card: MLCard,
        *,
        fmt: str = "onnx",
        principal: Principal | None = None,
        submitted_by: str = "local",
        model_id: str | None = None,
        source: bytes | None = None,
        filename: str | None = None,
    ) -> StoredModel:
        """Store a new version (or return the identical one) of an ML model: the checked,
        self-contained ONNX bytes (``registry.formats.onnx.load_ml``) and its card; the archive
        is kept as the source. Same ids, ownership, dedup and staging as SBML models."""
        from registry.formats.onnx import MEDIA_TYPE

        who = principal or Principal(submitted_by, card.institution, "curator", local=True)
        require_role(who, "contributor", "submitting a model")
        shown = safe_name(filename) if filename else None
        total = len(onnx) + len(source or b"")
        if len(onnx) > self.max_upload_bytes or total > self.max_stored_bytes:
            raise RegistryError(
                f"the ML model would occupy {total} bytes (limit {self.max_stored_bytes})", source=shown
            )
        if model_id is not None and model_id != card.id:
            raise RegistryError(f"model id {model_id!r} differs from the card's id {card.id!r}", source=shown)
        mid = check_model_id(card.id, source=shown)
        institution = who.institution or card.institution
        digest = content_hash(mid, onnx, card)
        self._precheck(who, mid, digest, False)
        paths, blobs, roles = ["model.onnx"], [onnx], [("model", MEDIA_TYPE)]
        if source is not None:
            paths.append(f"source/{safe_name(filename) if filename else 'model.zip'}")
            blobs.append(source)
            roles.append(("source", SOURCE_MEDIA[fmt]))
        staged = [self.blobs.stage(b) for b in blobs]
        files = [
            FileRow(path=p, role=r, media_format=m, sha256=st.digest, size=st.size)
            for p, (r, m), st in zip(paths, roles, staged, strict=True)
        ]
        drugs = [DrugRow(system=d.system, code=d.code, display=(d.display or "").lower()) for d in card.drugs]
        text = " ".join(
            [card.title, card.description, card.predicts.name, card.predicts.kind, card.intended_use]
        ).lower()
        return self._store_retrying(
            mid, staged, lambda s: self._store(
                s, who, mid, card.title, institution, digest, files, staged,
                drugs, ml_annotations(card), card, fmt, text, "", False,
            ),
        )  # fmt: skip

    def _store_retrying(
        self, mid: str, staged: list[Staged], store: Callable[[Session], StoredModel]
    ) -> StoredModel:
        """``store`` in a transaction, again when two submitters raced for the same new row."""
        try:
            for attempt in range(_RETRIES):
                try:
                    with self.sessions.begin() as s:
                        return store(s)
                except (SAIntegrityError, DBAPIError) as exc:
                    if attempt == _RETRIES - 1 or not _retryable(exc):
                        log.error("storing %s failed: %s", mid, exc.orig)
                        raise RegistryError(f"could not store {mid} (database error)", source=mid) from None
                    time.sleep(0.01 * (attempt + 1))
            raise AssertionError("unreachable")
        finally:
            for st in staged:
                self.blobs.discard(st)  # published ones were moved already; the rest go now

    def _precheck(self, who: Principal, mid: str, digest: str, derived: bool) -> None:
        with self.readers() as s:
            model = s.get(ModelRow, mid)
            if model is None:
                return
            same = s.scalars(
                select(VersionRow.id).where(VersionRow.model_id == mid, VersionRow.content_sha256 == digest)
            ).first()
            self._check_new_version(who, model, mid, derived, same is not None)

    @staticmethod
    def _check_new_version(who: Principal, model: ModelRow, mid: str, derived: bool, identical: bool) -> None:
        require_owner(who, model.institution, mid, "adding a version")
        if derived and not identical:
            raise RegistryError(
                f"a model {mid!r} already exists and this upload names no id: to add a version to it "
                f"pass the id explicitly (--id {mid}), else give this model its own id",
                source=mid,
                field="model_id",
            )

    def _store(
        self,
        s: Session,
        who: Principal,
        mid: str,
        title: str,
        institution: str,
        digest: str,
        files: list[FileRow],
        staged: list[Staged],
        drugs: list[DrugRow],
        annotations: Sequence[Annotation],
        card: ModelCard | MLCard | None,
        fmt: str,
        text: str,
        sbml: str,
        derived: bool,
    ) -> StoredModel:
        model = repo.lock_model(s, mid)
        existing = s.scalars(
            select(VersionRow).where(VersionRow.model_id == mid, VersionRow.content_sha256 == digest)
        ).first()
        if model is None:
            repo.ensure_institution(s, institution)
            model = ModelRow(id=mid, title=title, institution=institution)
            s.add(model)
            s.flush()
        else:
            self._check_new_version(who, model, mid, derived, existing is not None)
        if existing is not None:
            repo.add_audit(s, who, "submit-identical", mid, existing.number, sha256=existing.sbml_sha256)
            return stored_model(self.blobs, existing, sbml, dedup=True)
        number = repo.next_number(s, mid)
        row = VersionRow(
            model_id=mid,
            number=number,
            sbml_sha256=files[0].sha256,
            content_sha256=digest,
            format=fmt,
            card=_canonical_card(card),
            title=title,
            search_text=text,
            institution=model.institution,
            submitted_by=who.name,
            status_changed_by=who.name,
        )
        repo.add_version_rows(
            s,
            row,
            [
                FileRow(path=f.path, role=f.role, media_format=f.media_format, sha256=f.sha256, size=f.size)
                for f in files
            ],
            drugs,
            annotations,
        )
        repo.add_audit(s, who, "submit", mid, number, sha256=row.sbml_sha256, format=fmt)
        for st in staged:
            self.blobs.publish(st)  # last step before commit: the rows now name existing blobs
        return stored_model(self.blobs, row, sbml)

    def submit_file(
        self,
        raw: bytes,
        *,
        filename: str | None = None,
        fmt: str | None = None,
        card: ModelCard | None = None,
        model_id: str | None = None,
        principal: Principal | None = None,
        submitted_by: str = "local",
        options: dict[str, Any] | None = None,
    ) -> StoredModel:
        """Store an upload in any format plug-in's format (detected when ``fmt`` is None);
        ``options`` (values, units, drug) go to the plug-in's load (see registry.formats.options)."""
        shown = safe_name(filename) if filename else None
        if len(raw) > self.max_upload_bytes:
            raise RegistryError(f"upload of {len(raw)} bytes exceeds {self.max_upload_bytes}", source=shown)
        if model_id is not None:
            check_model_id(model_id, source=shown)
        name = fmt or detect_format(raw, source=shown)
        if name in ML_FORMATS:
            if card is not None or options:
                raise RegistryError("an ML archive carries its own card and takes no options", source=shown)
            package = get_ml_format(name).load_ml(raw, source=shown)
            return self.submit_ml(
                package.onnx,
                package.card,
                fmt=name,
                principal=principal,
                model_id=model_id,
                source=raw,
                filename=filename,
                submitted_by=submitted_by,
            )
        plugin = get_format(name)
        if options:
            from registry.formats.options import check_options

            check_options(name, options)
        sbml, carried = plugin.load(raw, source=shown, **(options or {}))
        extras = plugin.extra_files(raw) if hasattr(plugin, "extra_files") else []
        return self.submit(
            sbml,
            card or carried,
            fmt=name,
            principal=principal,
            model_id=model_id,
            source=raw,
            extra_files=extras,
            filename=filename,
            submitted_by=submitted_by,
        )


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, SAIntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)
