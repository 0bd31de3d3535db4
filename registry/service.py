"""The registry's service layer: submit, read, validate, lifecycle, evidence, search, export.

Transactions live here (the repository only flushes); permission checks and domain errors
too. A version is immutable: new content makes a new version number; identical content
(same model id, SBML bytes and card) is recognised by its hash and returns the existing
version. Blobs are written before the rows that name them, so a committed row never points at
a missing blob; a submission killed between the two leaves an unreferenced blob that no read
path can reach and that :meth:`Registry.collect_garbage` removes (run on every open with a
grace period, so a concurrent submission's fresh blob is left alone).

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

from interop.errors import NotFoundError, PermissionDenied, RegistryError
from interop.schema import ModelCard, ValidationRecord, parse
from registry import repository as repo
from registry.annotations import Annotation, extract_metadata, model_id_from
from registry.auth import LOCAL, ROLES, Principal, Role, hash_token, new_token, require_owner, require_role
from registry.blobs import BlobStore
from registry.db import (
    AuditRow,
    DrugRow,
    FileRow,
    ModelRow,
    RecordRow,
    ReportRow,
    TokenRow,
    UserRow,
    VersionRow,
)
from registry.db import make_engine as _make_engine
from registry.formats import ExtraFile, detect_format, get_format
from registry.formats.sbml import read_document
from registry.metadata import build_graph
from registry.migrate import upgrade
from registry.rdf import serialise
from registry.records import AuditEntry, GarbageReport, StoredFile, StoredModel
from registry.safexml import check_xml
from registry.search import Page, SearchQuery, VersionSummary, run_search, summarise
from registry.validation import SimulateCheck, ValidationReport, validate_model

__all__ = ["AuditEntry", "Registry", "StoredFile", "StoredModel", "open_registry"]

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
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
        gc_grace_s: float = 24 * 3600,
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
        self.collect_garbage(grace_s=gc_grace_s)

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
        """Store a new version (or return the identical existing one) of an SBML model and its card."""
        who = principal or Principal(submitted_by, card.institution if card else "", "curator", local=True)
        require_role(who, "contributor", "submitting a model")
        data = sbml.encode("utf-8")
        if len(data) > self.max_upload_bytes:
            raise RegistryError(
                f"model of {len(data)} bytes exceeds {self.max_upload_bytes}", source=filename
            )
        check_xml(data, source=filename)  # before libsbml, which would expand entities
        doc = read_document(sbml, source=filename)
        meta = extract_metadata(doc)
        if card is not None and model_id is not None and model_id != card.id:
            raise RegistryError(
                f"model id {model_id!r} differs from the card's id {card.id!r}", source=filename
            )
        mid = (
            card.id
            if card is not None
            else (model_id or model_id_from(meta.model_id or (Path(filename).stem if filename else "model")))
        )
        title = card.title if card is not None else (meta.name or meta.model_id or mid)
        institution = who.institution or (card.institution if card is not None else "local")
        digest = content_hash(mid, data, card)
        # Blobs first (idempotent, atomic rename): a committed row never names a missing blob.
        files = [
            FileRow(
                path="model.xml",
                role="model",
                media_format=SBML_MEDIA,
                sha256=self.blobs.put(data),
                size=len(data),
            )
        ]
        if source is not None and fmt != "sbml":
            name = filename.rsplit("/", 1)[-1] if filename else f"source.{fmt}"
            files.append(
                FileRow(
                    path=f"source/{name}",
                    role="source",
                    media_format=SOURCE_MEDIA.get(fmt, fmt),
                    sha256=self.blobs.put(source),
                    size=len(source),
                )
            )
        for ef in extra_files:
            files.append(
                FileRow(
                    path=f"files/{ef.path}",
                    role=ef.role,
                    media_format=ef.media_format,
                    sha256=self.blobs.put(ef.data),
                    size=len(ef.data),
                )
            )
        drugs = (
            []
            if card is None
            else [
                DrugRow(system=d.system, code=d.code, display=(d.display or "").lower()) for d in card.drugs
            ]
        )
        text = " ".join([title, card.description if card else "", meta.name]).lower()
        for attempt in range(_RETRIES):
            try:
                with self.sessions.begin() as s:
                    return self._store(
                        s,
                        who,
                        mid,
                        title,
                        institution,
                        digest,
                        files,
                        drugs,
                        meta.annotations,
                        card,
                        fmt,
                        text,
                        sbml,
                    )
            except (SAIntegrityError, DBAPIError) as exc:
                # Two submitters raced for the same new model row or version number: go again.
                if attempt == _RETRIES - 1 or not _retryable(exc):
                    raise RegistryError(f"could not store {mid}: {exc.orig}", source=mid) from exc
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    def _store(
        self,
        s: Session,
        who: Principal,
        mid: str,
        title: str,
        institution: str,
        digest: str,
        files: list[FileRow],
        drugs: list[DrugRow],
        annotations: Sequence[Annotation],
        card: ModelCard | None,
        fmt: str,
        text: str,
        sbml: str,
    ) -> StoredModel:
        model = repo.lock_model(s, mid)
        if model is None:
            repo.ensure_institution(s, institution)
            model = ModelRow(id=mid, title=title, institution=institution)
            s.add(model)
            s.flush()
        else:
            require_owner(who, model.institution, mid, "adding a version")
        existing = s.scalars(
            select(VersionRow).where(VersionRow.model_id == mid, VersionRow.content_sha256 == digest)
        ).first()
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
        if len(raw) > self.max_upload_bytes:
            raise RegistryError(
                f"upload of {len(raw)} bytes exceeds {self.max_upload_bytes}", source=filename
            )
        name = fmt or detect_format(raw, source=filename)
        plugin = get_format(name)
        if options:
            from registry.formats.options import check_options

            check_options(name, options)
        sbml, carried = plugin.load(raw, source=filename, **(options or {}))
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
    def get(self, model_id: str, version: int | None = None) -> StoredModel:
        """A stored version (the latest when ``version`` is None), bytes verified against the hash."""
        with self.readers() as s:
            return self._stored(repo.find_version(s, model_id, version))

    def list_models(self) -> list[StoredModel]:
        """Every version (without SBML text), by model id and version."""
        with self.readers() as s:
            rows = s.scalars(select(VersionRow).order_by(VersionRow.model_id, VersionRow.number)).all()
            return [self._stored(r, load=False) for r in rows]

    def versions(self, model_id: str) -> list[VersionSummary]:
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
        require_role(principal, "contributor", "validating a model")
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
            if report.is_valid and row.status == "submitted":
                self._set_status(row, "validated", principal)
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
        require_role(principal, "curator", "publishing")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            rep = repo.latest_report(s, row.id)
            if rep is None or not rep.passed:
                raise RegistryError(
                    f"{model_id}@{version} cannot be published: "
                    + ("never validated" if rep is None else "its validation has a failed stage"),
                    source=model_id,
                )
            if row.status != "validated":
                raise RegistryError(
                    f"{model_id}@{version} is {row.status}; only a validated version is published",
                    source=model_id,
                )
            self._set_status(row, "published", principal)
            repo.add_audit(s, principal, "publish", model_id, version)
            return self._stored(row, load=False)

    def deprecate(
        self, model_id: str, version: int, *, principal: Principal = LOCAL, reason: str = ""
    ) -> StoredModel:
        """validated or published -> deprecated (curators)."""
        require_role(principal, "curator", "deprecating")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            if row.status == "deprecated":
                raise RegistryError(f"{model_id}@{version} is already deprecated", source=model_id)
            self._set_status(row, "deprecated", principal)
            repo.add_audit(s, principal, "deprecate", model_id, version, reason=reason)
            return self._stored(row, load=False)

    @staticmethod
    def _set_status(row: VersionRow, status: str, who: Principal) -> None:
        row.status = status
        row.status_changed_by = who.name
        row.status_changed_at = dt.datetime.now(dt.UTC)

    # ------------------------------------------------------ site evidence
    def add_validation_record(
        self, record: ValidationRecord, *, submitted_by: str = "local", principal: Principal | None = None
    ) -> int:
        """Store a site's aggregate record beside the version whose SBML hash it names; its id."""
        who = principal or Principal(submitted_by, record.site, "curator", local=True)
        require_role(who, "contributor", "sending a validation record")
        if not (who.local or who.role == "curator") and who.institution != record.site:
            raise PermissionDenied(
                f"{who.name} of {who.institution!r} cannot send records for site {record.site!r}"
            )
        with self.sessions.begin() as s:
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

    def list_validation_records(self, model_id: str, version: int | None = None) -> list[ValidationRecord]:
        with self.readers() as s:
            if s.get(ModelRow, model_id) is None:
                raise NotFoundError(f"no model {model_id} in the registry", source=model_id)
            return [
                parse(ValidationRecord, r.record, source=f"record {r.id}")
                for r in repo.records_for(s, model_id, version)
            ]

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
        """Run a SPARQL SELECT over the whole registry's metadata graph."""
        try:
            result = self.metadata_graph().query(query)
        except Exception as exc:  # pyparsing / rdflib raise many types for a bad query
            raise RegistryError(f"SPARQL: {exc}") from exc
        return [{str(k): str(v) for k, v in row.asdict().items()} for row in result]  # type: ignore[union-attr]

    # --------------------------------------------------------------- audit
    def audit(self, model_id: str | None = None) -> list[AuditEntry]:
        with self.readers() as s:
            q = select(AuditRow).order_by(AuditRow.id)
            if model_id is not None:
                q = q.where(AuditRow.model_id == model_id)
            return [
                AuditEntry(a.at, a.actor, a.institution, a.action, a.model_id, a.version, dict(a.detail))
                for a in s.scalars(q)
            ]

    # --------------------------------------------------------- users/tokens
    def create_user(self, name: str, institution: str, role: Role, *, principal: Principal = LOCAL) -> str:
        """Create (or re-key) a user; returns a new bearer token (shown once, stored hashed)."""
        require_role(principal, "curator", "managing users")
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        token = new_token()
        with self.sessions.begin() as s:
            repo.ensure_institution(s, institution)
            user = s.scalars(select(UserRow).where(UserRow.name == name)).first()
            if user is None:
                user = UserRow(name=name, institution_id=institution, role=role)
                s.add(user)
                s.flush()
            else:
                user.role, user.institution_id = role, institution
            s.add(TokenRow(token_sha256=hash_token(token), user_id=user.id))
            repo.add_audit(
                s, principal, "create-token", None, None, user=name, role=role, institution=institution
            )
        return token

    def authenticate(self, token: str) -> Principal | None:
        with self.readers() as s:
            user = repo.user_for_token(s, hash_token(token))
            if user is None:
                return None
            return Principal(user.name, user.institution_id, user.role)  # type: ignore[arg-type]

    # ----------------------------------------------------------- housekeeping
    def collect_garbage(self, grace_s: float = 24 * 3600) -> GarbageReport:
        """Remove blobs no row names and stale temporary files (older than ``grace_s``)."""
        with self.readers() as s:
            referenced = set(s.scalars(select(FileRow.sha256)))
        removed, temps = self.blobs.sweep(referenced, grace_s)
        if removed or temps:
            log.info("removed %d unreferenced blobs and %d temporary files", len(removed), len(temps))
        return GarbageReport(removed, temps)

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
        raise RegistryError(f"cannot open the registry database: {exc}", source=database_url) from exc
