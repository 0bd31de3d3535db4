"""The registry's service layer, behind one facade (:class:`Registry`): read, validate, lifecycle,
search, export here; submission (:mod:`registry.submission`), users and tokens
(:mod:`registry.access`), evidence (:mod:`registry.evidence`), the audit log
(:mod:`registry.auditlog`) and maintenance (:mod:`registry.maintenance`) in their own modules.

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
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rdflib import Graph
from sqlalchemy import select, tuple_
from sqlalchemy.orm import sessionmaker

from interop.errors import IntegrityError, NotFoundError, RegistryError
from interop.schema import ModelCard, ValidationRecord
from interop.schema.model_id import check_model_id
from registry import auditlog, evidence, maintenance
from registry import repository as repo
from registry.access import DEFAULT_TOKEN_LIFETIME, AccessService, UserInfo
from registry.auth import LOCAL, Principal, Role, require_owner, require_role
from registry.blobs import BlobStore
from registry.db import ReportRow, VersionRow
from registry.db import make_engine as _make_engine
from registry.formats import ExtraFile
from registry.lifecycle import TRANSITIONS, VersionStatus, next_status
from registry.maintenance import GarbageReport, VerifyReport
from registry.metadata import build_graph
from registry.migrate import upgrade
from registry.rdf import serialise
from registry.records import AuditEntry, AuditPage, RecordImage, StoredFile, StoredModel, StoredRecord
from registry.repository import WithdrawnError
from registry.search import Page, SearchQuery, VersionSummary, run_search, summarise
from registry.sparql import run_select
from registry.submission import MAX_STORED_BYTES, MAX_UPLOAD_BYTES, SubmissionService, stored_model
from registry.validation import Issue, SimulateCheck, StageResult, ValidationReport, validate_model

__all__ = ["AuditEntry", "Registry", "StoredFile", "StoredModel", "WithdrawnError", "open_registry"]

log = logging.getLogger(__name__)


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
        self.submissions = SubmissionService(
            self.sessions,
            self.readers,
            self.blobs,
            max_upload_bytes=max_upload_bytes,
            max_stored_bytes=max_stored_bytes,
        )
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
        """Store a new version (or return the identical existing one) of an SBML model and its card
        (:class:`registry.submission.SubmissionService`).

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
        return self.submissions.submit(
            sbml,
            card,
            submitted_by=submitted_by,
            fmt=fmt,
            principal=principal,
            model_id=model_id,
            source=source,
            extra_files=extra_files,
            filename=filename,
        )

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
        """Store an upload in any format plug-in's format (detected when ``fmt`` is None)."""
        return self.submissions.submit_file(
            raw,
            filename=filename,
            fmt=fmt,
            card=card,
            model_id=model_id,
            principal=principal,
            submitted_by=submitted_by,
            options=options,
        )

    # ------------------------------------------------------------------ read
    def get(self, model_id: str, version: int | None = None, *, withdrawn: bool = False) -> StoredModel:
        """A stored version (the latest not withdrawn when ``version`` is None), bytes verified
        against the hash; a withdrawn version raises ``WithdrawnError`` unless ``withdrawn``."""
        with self.readers() as s:
            row = repo.find_version(s, model_id, version, withdrawn=withdrawn)
            try:
                return stored_model(self.blobs, row)
            except IntegrityError:
                self._audit_fault(model_id, row.number)
                raise

    def list_models(self) -> list[VersionSummary]:
        """Every version as a summary (id, version, status, title, institution; no SBML), in order."""
        with self.readers() as s:
            rows = s.scalars(select(VersionRow).order_by(VersionRow.model_id, VersionRow.number)).all()
            return [summarise(r) for r in rows]

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
        if stored.ml_card is not None and stored.artefact is not None:  # an ML model (ONNX)
            from registry.ml_validation import validate_ml

            report = validate_ml(stored.artefact, stored.ml_card, source=f"{model_id}@{stored.version}")
        else:
            card, sed, problems = self._sedml_references(model_id, stored.version, stored.card_or_none)
            report = validate_model(
                stored.sbml,
                card,
                simulate_check=simulate_check or self.simulate_check,
                source=f"{model_id}@{stored.version}",
            )
            report = _with_reference_problems(report, problems)
            report = self._with_sedml(model_id, stored.version, report, sed)
            if card is not None and card.ml_models:
                report = ValidationReport((*report.stages, self._ml_links_stage(card)))
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

    def _ml_links_stage(self, card: ModelCard) -> StageResult:
        """A hybrid card's ML models exist here, are ML models, and are validated or published."""
        issues = []
        for link in card.ml_models:
            try:
                ml = self.get(link.model_id, link.model_version)
            except RegistryError as exc:
                issues.append(Issue("error", f"{link.model}: {exc.message}", "ml-models"))
                continue
            if ml.ml_card is None:
                issues.append(Issue("error", f"{link.model} is not an ML model ({ml.format})", "ml-models"))
            elif ml.status not in ("validated", "published"):
                issues.append(Issue("error", f"{link.model} is {ml.status}, not validated", "ml-models"))
            else:
                p = ml.ml_card.predicts
                issues.append(
                    Issue(
                        "info", f"{link.model} predicts {p.name} ({p.unit}) for {link.parameter}", "ml-models"
                    )
                )
        failed = any(i.severity == "error" for i in issues)
        return StageResult("ml-models", "failed" if failed else "passed", tuple(issues))

    def _sedml_references(
        self, model_id: str, version: int, card: ModelCard | None
    ) -> tuple[ModelCard | None, StageResult | None, list[str]]:
        """When the card's reference outputs point at SED-ML reports: run the archive's SED-ML
        first and fill them from its data sets (the card, the SED-ML stage, what could not be filled)."""
        from registry.sedml_stage import resolve_reference_outputs, sedml_run_stage

        if card is None or not any(r.sedml is not None for r in card.reference_outputs):
            return card, None, []
        files = [(f.role, self.file_bytes(f)) for f in self.files(model_id, version)]
        done = sedml_run_stage(files, self.blobs.put)
        stage, run, omex = done if done is not None else (None, None, None)
        card, problems = resolve_reference_outputs(card, run, omex)
        return card, stage, problems

    def _with_sedml(
        self, model_id: str, version: int, report: ValidationReport, stage: StageResult | None = None
    ) -> ValidationReport:
        """An archive's SED-ML experiments run with Tellurium as one more stage (issue 14)."""
        from registry.sedml_stage import sedml_stage

        if stage is None:
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

    def latest_reports(self, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], ValidationReport]:
        """The latest report of each ``(model id, version)`` that has one, in one query (a page of
        search results shows each row's validation badge)."""
        if not keys:
            return {}
        with self.readers() as s:
            rows = s.execute(
                select(VersionRow.model_id, VersionRow.number, ReportRow.stages)
                .join(ReportRow, ReportRow.version_id == VersionRow.id)
                .where(tuple_(VersionRow.model_id, VersionRow.number).in_(list(keys)))
                .order_by(ReportRow.id)
            ).all()
        return {(m, n): ValidationReport.from_dicts(stages) for m, n, stages in rows}  # the latest wins

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
            return stored_model(self.blobs, row, load=False)

    def deprecate(
        self, model_id: str, version: int, *, principal: Principal = LOCAL, reason: str = ""
    ) -> StoredModel:
        """validated or published -> deprecated (curators)."""
        require_role(principal, TRANSITIONS["deprecate"].role, "deprecating")
        with self.sessions.begin() as s:
            row = repo.find_version(s, model_id, version, lock=True)
            self._set_status(row, next_status("deprecate", row.status, f"{model_id}@{version}"), principal)
            repo.add_audit(s, principal, "deprecate", model_id, version, reason=reason)
            return stored_model(self.blobs, row, load=False)

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
        self,
        record: ValidationRecord,
        *,
        submitted_by: str = "local",
        principal: Principal | None = None,
        images: Sequence[tuple[str, bytes]] = (),
    ) -> int:
        """Store a site's aggregate record beside the version whose SBML hash it names, with its
        ``(title, PNG bytes)`` images (VPC, NPDE) as blobs; its id."""
        who = principal or Principal(submitted_by, record.site, "curator", local=True)
        return evidence.add_record(self.sessions, record, who, images, self.blobs)

    def list_validation_records(self, model_id: str, version: int | None = None) -> list[ValidationRecord]:
        return evidence.list_records(self.readers, model_id, version)

    def validation_records(self, model_id: str, version: int | None = None) -> list[StoredRecord]:
        """The site records with their ids, senders and images (oldest first)."""
        return evidence.stored_records(self.readers, model_id, version)

    def record_image(
        self, model_id: str, version: int, record_id: int, position: int
    ) -> tuple[RecordImage, bytes]:
        """One image of a site record and its bytes (verified against their hash)."""
        return evidence.record_image(self.readers, self.blobs, model_id, version, record_id, position)

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


def open_registry(database_url: str, blob_dir: Path, **options: Any) -> Registry:
    """Open (creating and migrating if needed) the registry at ``database_url``, blobs in ``blob_dir``."""
    try:
        return Registry(database_url, blob_dir, **options)
    except RegistryError:
        raise
    except Exception as exc:  # sqlalchemy/alembic raise many types on a bad URL or unreachable server
        where = database_url.rsplit("@", 1)[-1]  # never echo a password
        raise RegistryError(f"cannot open the registry database: {type(exc).__name__}", source=where) from exc


def _with_reference_problems(report: ValidationReport, problems: list[str]) -> ValidationReport:
    """The reproduce stage failed with each SED-ML reference output that could not be filled."""
    if not problems:
        return report
    extra = tuple(Issue("error", p, "sedml") for p in problems)
    stages = tuple(
        StageResult(s.name, "failed", (*s.issues, *extra), s.seconds) if s.name == "reproduce" else s
        for s in report.stages
    )
    return ValidationReport(stages)
