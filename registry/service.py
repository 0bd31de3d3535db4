"""The registry's service layer: submit, read, validate, lifecycle, evidence, search, export.

Transactions live here (the repository only flushes); permission checks and domain errors
too. A version is immutable: new content makes a new version number; identical content
(same model id, SBML bytes and card) is recognised by its hash and returns the existing
version. Blobs are staged first and moved under their hash inside the transaction that records
them, so a committed row never points at a missing blob and a refused submission leaves nothing
behind; a submission killed in between leaves a temporary file that ``interop registry gc``
removes (never on open: no read-only command deletes anything).

Ids: every id follows ``interop.schema.model_id``'s rule. An id the submitter names (card,
``model_id``) gets a new version only from the owning institution or a curator; an id the
registry *derives* (from the file name, else the SBML id) never silently becomes a new version
of an existing model: identical content is recognised, anything else is refused with advice
to name the id. Withdrawn versions keep their bytes (audit) but leave search and binding.

Card-less versions (plain SBML or OMEX without ``model-card.json``) are stored: they validate
and simulate, but ``StoredModel.card`` raises ``ModelError`` (they cannot be bound to patients);
submitting a card later makes a new version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rdflib import Graph
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.orm import Session, sessionmaker

from interop.errors import IntegrityError, NotFoundError, RegistryError
from interop.schema import ModelCard, ValidationRecord, parse
from interop.schema.model_id import check_model_id, model_id_from
from registry import auditlog, evidence, maintenance
from registry import repository as repo
from registry.access import DEFAULT_TOKEN_LIFETIME, AccessService, UserInfo
from registry.annotations import Annotation, extract_metadata
from registry.auth import LOCAL, Principal, Role, require_owner, require_role
from registry.blobs import BlobStore, Staged
from registry.db import DrugRow, FileRow, ModelRow, ReportRow, VersionRow
from registry.db import make_engine as _make_engine
from registry.formats import ExtraFile, detect_format, get_format
from registry.formats.sbml import read_document
from registry.lifecycle import TRANSITIONS, VersionStatus, next_status
from registry.maintenance import GarbageReport, VerifyReport
from registry.metadata import build_graph
from registry.migrate import upgrade
from registry.paths import safe_entry, safe_name
from registry.rdf import serialise
from registry.records import AuditEntry, AuditPage, StoredFile, StoredModel
from registry.repository import WithdrawnError
from registry.safexml import check_xml
from registry.search import Page, SearchQuery, VersionSummary, run_search, summarise
from registry.sparql import run_select
from registry.validation import SimulateCheck, ValidationReport, validate_model

__all__ = ["AuditEntry", "Registry", "StoredFile", "StoredModel", "WithdrawnError", "open_registry"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_STORED_BYTES = 50 * 1024 * 1024  # what one submission may occupy on disk, all files together
MAX_VERSION = 2**31 - 1
_RETRIES = 20
SBML_MEDIA = "https://identifiers.org/combine.specifications:sbml"
SOURCE_MEDIA = {
    "antimony": "text/vnd.antimony",
    "omex": "https://identifiers.org/combine.specifications:omex",
    "pharmml": "https://identifiers.org/combine.specifications:pharmml",
}


def _canonical_card(card: ModelCard | None) -> Any:
    return None if card is None else json.loads(card.model_dump_json())


def content_hash(model_id: str, sbml: bytes, card: ModelCard | None) -> str:
    card_json = json.dumps(_canonical_card(card), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(model_id.encode() + b"\0" + sbml + b"\0" + card_json.encode()).hexdigest()


class Registry:
    """The model store. ``simulate_check`` powers the simulate/reproduce validation stages."""

    def __init__(
        self,
        database_url: str,
        blob_dir: Path,
        *,
        simulate_check: SimulateCheck | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_stored_bytes: int = MAX_STORED_BYTES,
    ) -> None:
        self.database_url = database_url
        self.engine = _make_engine(database_url)
        upgrade(self.engine)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads on SQLite use their own engine without BEGIN IMMEDIATE (WAL readers need no lock).
        self.read_engine = (
            _make_engine(database_url, immediate=False)
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )
        self.readers = sessionmaker(self.read_engine, expire_on_commit=False)
        self.blobs = BlobStore(blob_dir)
        self.simulate_check = simulate_check
        self.max_upload_bytes = max_upload_bytes
        self.max_stored_bytes = max_stored_bytes
        self.access = AccessService(self.sessions, self.readers)
        self.refresh_identity()
        if self.blobs.owner() is None and self.blobs.is_empty():
            self.blobs.claim(self.registry_id)  # a new store belongs to the database that made it

    def refresh_identity(self) -> None:
        """Read the database's registry id (after a restore it is the backed-up one)."""
        with self.readers() as s:
            self.registry_id = maintenance.registry_id(s)

    # ---------------------------------------------------------------- submit
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
        """Store a new version (or return the identical existing one) of an SBML model and its card.

        >>> import tempfile
        >>> from importlib.resources import files
        >>> from pathlib import Path
        >>> from interop.schema import ModelCard, parse_json
        >>> models, tmp = files("interop") / "data" / "models", tempfile.TemporaryDirectory()
        >>> home = Path(tmp.name)
        >>> card = parse_json(ModelCard, (models / "gentamicin_1cmt.card.json").read_text())
        >>> reg = open_registry(f"sqlite:///{home / 'registry.sqlite'}", home / "blobs")
        >>> stored = reg.submit((models / "gentamicin_1cmt.xml").read_text(), card)
        >>> stored.model_id, stored.version
        ('gentamicin-1cmt', 1)
        >>> reg.submit((models / "gentamicin_1cmt.xml").read_text(), card).version  # same content
        1
        >>> reg.close(); tmp.cleanup()
        """
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
        try:
            for attempt in range(_RETRIES):
                try:
                    with self.sessions.begin() as s:
                        return self._store(
                            s, who, mid, title, institution, digest, files, staged,
                            drugs, meta.annotations, card, fmt, text, sbml, derived,
                        )  # fmt: skip
                except (SAIntegrityError, DBAPIError) as exc:
                    # Two submitters raced for the same new model row or version number: go again.
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
        card: ModelCard | None,
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
            return self._stored(existing, sbml, dedup=True)
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
        return self._stored(row, sbml)

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

    # ------------------------------------------------------------------ read
    def get(self, model_id: str, version: int | None = None, *, withdrawn: bool = False) -> StoredModel:
        """A stored version (the latest not withdrawn when ``version`` is None), bytes verified
        against the hash; a withdrawn version raises ``WithdrawnError`` unless ``withdrawn``."""
        with self.readers() as s:
            row = repo.find_version(s, model_id, version, withdrawn=withdrawn)
            try:
                return self._stored(row)
            except IntegrityError:
                self._audit_fault(model_id, row.number)
                raise

    def list_models(self) -> list[StoredModel]:
        """Every version (without SBML text), by model id and version."""
        with self.readers() as s:
            rows = s.scalars(select(VersionRow).order_by(VersionRow.model_id, VersionRow.number)).all()
            return [self._stored(r, load=False) for r in rows]

    def versions(self, model_id: str) -> list[VersionSummary]:
        check_model_id(model_id)
        with self.readers() as s:
            rows = s.scalars(
                select(VersionRow).where(VersionRow.model_id == model_id).order_by(VersionRow.number)
            ).all()
            if not rows:
                raise NotFoundError(f"no model {model_id} in the registry", source=model_id)
            return [summarise(r) for r in rows]

    def files(self, model_id: str, version: int | None = None) -> list[StoredFile]:
        with self.readers() as s:
            row = repo.find_version(s, model_id, version)
            return [StoredFile(f.path, f.role, f.media_format, f.sha256, f.size) for f in row.files]

    def file_bytes(self, f: StoredFile) -> bytes:
        return self.blobs.get(f.sha256)

    def _audit_fault(self, model_id: str, version: int) -> None:
        """Record that a read found bytes that no longer match their hash."""
        with self.sessions.begin() as s:
            auditlog.append(s, "system", "", "integrity-fault", model_id, version)

    def _stored(
        self, row: VersionRow, sbml: str | None = None, load: bool = True, dedup: bool = False
    ) -> StoredModel:
        if sbml is None and load:
            sbml = self.blobs.get(row.sbml_sha256).decode("utf-8")
        card = (
            None
            if row.card is None
            else parse(ModelCard, row.card, source=f"registry {row.model_id}@{row.number}")
        )
        return StoredModel(
            row.model_id,
            row.number,
            sbml or "",
            card,
            row.sbml_sha256,
            row.status,
            row.format,
            row.institution,
            row.title,
            row.submitted_by,
            row.created_at,
            row.status_changed_by,
            row.status_changed_at,
            dedup,
        )

    # ------------------------------------------------------------ validation
    def validate(
        self,
        model_id: str,
        version: int | None = None,
        *,
        principal: Principal = LOCAL,
        simulate_check: SimulateCheck | None = None,
    ) -> ValidationReport:
        """Run the pipeline on a version, store the report; a passing version becomes ``validated``."""
        require_role(principal, TRANSITIONS["validate"].role, "validating a model")
        stored = self.get(model_id, version)
        require_owner(principal, stored.institution, model_id, "validating")
        report = validate_model(
            stored.sbml,
            stored.card_or_none,
            simulate_check=simulate_check or self.simulate_check,
            source=f"{model_id}@{stored.version}",
        )
        report = self._with_sedml(model_id, stored.version, report)
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, stored.version, lock=True)
            s.add(
                ReportRow(
                    version_id=row.id,
                    passed=report.is_valid,
                    stages=report.to_dicts(),
                    created_by=principal.name,
                )
            )
            if report.is_valid and row.status in TRANSITIONS["validate"].sources:
                self._set_status(
                    row, next_status("validate", row.status, f"{model_id}@{row.number}"), principal
                )
            repo.add_audit(
                s,
                principal,
                "validate",
                model_id,
                row.number,
                passed=report.is_valid,
                failed_stage=report.failed_stage.name if report.failed_stage else None,
            )
        return report

    def _with_sedml(self, model_id: str, version: int, report: ValidationReport) -> ValidationReport:
        """An archive's SED-ML experiments run with Tellurium as one more stage (issue 14)."""
        from registry.sedml_stage import sedml_stage

        if not report.is_valid:
            return report
        files = [(f.role, self.file_bytes(f)) for f in self.files(model_id, version)]
        stage = sedml_stage(files, self.blobs.put)
        return report if stage is None else ValidationReport((*report.stages, stage))

    def report(self, model_id: str, version: int | None = None) -> ValidationReport | None:
        """The latest stored validation report of a version (None before the first run)."""
        with self.readers() as s:
            row = repo.find_version(s, model_id, version)
            rep = repo.latest_report(s, row.id)
            return None if rep is None else ValidationReport.from_dicts(rep.stages)

    # ------------------------------------------------------------- lifecycle
    def publish(self, model_id: str, version: int, *, principal: Principal = LOCAL) -> StoredModel:
        """validated -> published (curators); only when the latest report has no failed stage."""
        require_role(principal, TRANSITIONS["publish"].role, "publishing")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            rep = repo.latest_report(s, row.id)
            if rep is None or not rep.passed:
                raise RegistryError(
                    f"{model_id}@{version} cannot be published: "
                    + ("never validated" if rep is None else "its validation has a failed stage"),
                    source=model_id,
                )
            self._set_status(row, next_status("publish", row.status, f"{model_id}@{version}"), principal)
            repo.add_audit(s, principal, "publish", model_id, version)
            return self._stored(row, load=False)

    def deprecate(
        self, model_id: str, version: int, *, principal: Principal = LOCAL, reason: str = ""
    ) -> StoredModel:
        """validated or published -> deprecated (curators)."""
        require_role(principal, TRANSITIONS["deprecate"].role, "deprecating")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            self._set_status(row, next_status("deprecate", row.status, f"{model_id}@{version}"), principal)
            repo.add_audit(s, principal, "deprecate", model_id, version, reason=reason)
            return self._stored(row, load=False)

    def withdraw(
        self, model_id: str, version: int, *, principal: Principal = LOCAL, reason: str = ""
    ) -> None:
        """Any status -> withdrawn (curators): the bytes stay for audit; the version leaves search,
        ``get`` of the latest and binding."""
        require_role(principal, TRANSITIONS["withdraw"].role, "withdrawing")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            self._set_status(row, next_status("withdraw", row.status, f"{model_id}@{version}"), principal)
            repo.add_audit(s, principal, "withdraw", model_id, version, reason=reason[:500])

    @staticmethod
    def _set_status(row: VersionRow, status: VersionStatus, who: Principal) -> None:
        row.status = status
        row.status_changed_by = who.name
        row.status_changed_at = dt.datetime.now(dt.UTC)

    # ------------------------------------------------------ site evidence
    def add_validation_record(
        self, record: ValidationRecord, *, submitted_by: str = "local", principal: Principal | None = None
    ) -> int:
        """Store a site's aggregate record beside the version whose SBML hash it names; its id."""
        who = principal or Principal(submitted_by, record.site, "curator", local=True)
        return evidence.add_record(self.sessions, record, who)

    def list_validation_records(self, model_id: str, version: int | None = None) -> list[ValidationRecord]:
        return evidence.list_records(self.readers, model_id, version)

    # ------------------------------------------------------------- search
    def search(self, query: SearchQuery | None = None, **criteria: Any) -> Page:
        q = query or SearchQuery(**criteria)
        with self.readers() as s:
            return run_search(s, q)

    def iter_search(self, query: SearchQuery) -> Iterator[VersionSummary]:
        """Every match, page after page (no cap)."""
        page = 1
        while True:
            res = self.search(SearchQuery(**{**query.__dict__, "page": page}))
            yield from res.items
            if page >= res.pages:
                return
            page += 1

    # ------------------------------------------------------------- metadata
    def metadata_graph(self, model_id: str | None = None, version: int | None = None) -> Graph:
        """RDF of one version (``model_id`` given) or of every version in the registry."""
        with self.readers() as s:
            return build_graph(s, self.blobs, model_id, version)

    def export_omex(self, model_id: str, version: int | None = None) -> bytes:
        """The version as a COMBINE/OMEX archive (manifest, SBML, card, metadata.rdf)."""
        from registry.export import export_omex

        return export_omex(self, model_id, version)

    def export_rdf(self, model_id: str, version: int | None = None, fmt: str = "turtle") -> str:
        """The version's metadata as Turtle or JSON-LD."""
        return serialise(self.metadata_graph(model_id, version), fmt)

    def sparql(self, query: str) -> list[dict[str, str]]:
        """Run a SPARQL SELECT/ASK over the registry's own metadata graph only (no SERVICE, FROM,
        GRAPH; time and row limits): see ``registry.sparql``."""
        return run_select(self.metadata_graph(), query)

    # --------------------------------------------------------------- audit
    def audit(self, model_id: str | None = None) -> list[AuditEntry]:
        """Every audit entry (of one model), oldest first."""
        return self.audit_page(auditlog.AuditFilter(model_id=model_id), per_page=None).items

    def audit_page(
        self, f: auditlog.AuditFilter = auditlog.AuditFilter(), page: int = 1, per_page: int | None = 100
    ) -> AuditPage:
        """One page of the audit log, oldest first, filtered by model, actor, action and time."""
        return auditlog.read_page(self.readers, f, page, per_page)

    def audit_denial(self, who: str, institution: str, action: str, reason: str) -> None:
        """Record a refused request (401/403) in the audit log."""
        with self.sessions.begin() as s:
            auditlog.append(
                s, who, institution, "denied", detail={"request": action[:200], "reason": reason[:300]}
            )

    # --------------------------------------------------------- users/tokens
    def create_user(
        self,
        name: str,
        institution: str,
        role: Role,
        *,
        principal: Principal = LOCAL,
        expires_in: dt.timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> str:
        """Create (or re-key, revoking earlier tokens) a user; returns a new token (shown once,
        stored hashed, expiring after ``expires_in``)."""
        return self.access.create_user(name, institution, role, principal=principal, expires_in=expires_in)

    def revoke_tokens(self, name: str, *, principal: Principal = LOCAL) -> int:
        return self.access.revoke(name, principal=principal)

    def deactivate_user(self, name: str, *, principal: Principal = LOCAL) -> None:
        self.access.deactivate(name, principal=principal)

    def list_users(self, *, principal: Principal = LOCAL) -> list[UserInfo]:
        return self.access.list_users(principal=principal)

    def authenticate(self, token: str) -> Principal | None:
        return self.access.authenticate(token)

    # ----------------------------------------------------------- housekeeping
    def collect_garbage(self, grace_s: float = 24 * 3600, *, dry_run: bool = False) -> GarbageReport:
        """Remove blobs no row names and stale temporary files (older than ``grace_s``); refused
        on a blob store another database owns. Only ``interop registry gc`` calls it."""
        return maintenance.collect_garbage(self, grace_s, dry_run=dry_run)

    def verify(self, *, actor: str = "local") -> VerifyReport:
        """Re-hash every blob against its rows, check the audit chain and the store's owner."""
        return maintenance.verify(self, actor=actor)

    def backup(self, target: Path) -> dict[str, int]:
        return maintenance.backup(self, target)

    def restore(self, source: Path) -> dict[str, int]:
        return maintenance.restore(self, source)

    def close(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, SAIntegrityError):
        return True
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)


def open_registry(database_url: str, blob_dir: Path, **options: Any) -> Registry:
    """Open (creating and migrating if needed) the registry at ``database_url``, blobs in ``blob_dir``."""
    try:
        return Registry(database_url, blob_dir, **options)
    except RegistryError:
        raise
    except Exception as exc:  # sqlalchemy/alembic raise many types on a bad URL or unreachable server
        where = database_url.rsplit("@", 1)[-1]  # never echo a password
        raise RegistryError(f"cannot open the registry database: {type(exc).__name__}", source=where) from exc
