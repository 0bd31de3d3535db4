"""Data safety against operator mistakes (issue 11): garbage collection across databases,
verify, the audit chain and TRUNCATE, backup/restore, storage bounds, id derivation, unknown
RDF qualifiers, and the CLI's exit codes. SQLite and PostgreSQL where the database matters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from interop.errors import PermissionDenied, RegistryError, SchemaError
from interop.schema import ModelCard
from registry import Principal, Registry, open_registry
from tests.data import ABSORPTION_SBML, GENTAMICIN_CARD, GENTAMICIN_SBML, ROOT


def _blobs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "REGISTRY-ID")


# ------------------------------------------------------------------- finding 5: GC
@pytest.mark.postgres
def test_sqlite_registry_on_the_same_home_never_deletes_a_postgres_registrys_blobs(
    pg_url: str, tmp_path: Path, gentamicin: tuple[str, ModelCard]
) -> None:
    """The reported data loss: a PostgreSQL registry's blobs, then the SQLite default on the same
    INTEROP_HOME runs `list` (and even `gc`): every PostgreSQL blob survives."""
    blobs = tmp_path / "home" / "blobs"
    pg = open_registry(pg_url, blobs)
    try:
        s = pg.submit(*gentamicin)
    finally:
        pg.close()
    before = _blobs(blobs)
    assert before
    for p in before:  # make them "old", past any grace period
        os.utime(p, (1, 1))
    sqlite_url = f"sqlite:///{tmp_path / 'home' / 'registry.sqlite'}"
    lite = open_registry(sqlite_url, blobs)  # what every read-only command does
    try:
        assert lite.search().total == 0
        assert _blobs(blobs) == before, "opening a registry deleted blobs"
        with pytest.raises(RegistryError, match="belongs to registry"):
            lite.collect_garbage(grace_s=0)
        assert _blobs(blobs) == before
        assert not lite.verify().ok  # the store's owner is another database: reported, not "fixed"
    finally:
        lite.close()
    pg = open_registry(pg_url, blobs)
    try:
        assert pg.get(s.model_id, 1).sbml == gentamicin[0]
        assert pg.verify().ok
    finally:
        pg.close()


def test_gc_removes_only_unreferenced_blobs_and_dry_run_removes_nothing(
    store: Registry, gentamicin: tuple[str, ModelCard]
) -> None:
    store.submit(*gentamicin)
    orphan = store.blobs.put(b"nobody references me")
    for p in _blobs(store.blobs.root):
        os.utime(p, (1, 1))
    dry = store.collect_garbage(grace_s=0, dry_run=True)
    assert dry.removed_blobs == [orphan] and store.blobs.path(orphan).exists()
    done = store.collect_garbage(grace_s=0)
    assert done.removed_blobs == [orphan] and not store.blobs.path(orphan).exists()
    assert store.get(gentamicin[1].id, 1).sbml == gentamicin[0]
    assert [e.action for e in store.audit()][-2:] == ["gc", "gc"]


def test_unmarked_store_is_refused(tmp_path: Path, gentamicin: tuple[str, ModelCard]) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / "aa").mkdir()  # someone else's files, no marker
    reg = open_registry(f"sqlite:///{tmp_path / 'r.sqlite'}", blobs)
    try:
        with pytest.raises(RegistryError, match="unmarked"):
            reg.collect_garbage(grace_s=0)
    finally:
        reg.close()


# ------------------------------------------------------- finding 8, 11: verify, audit
def test_verify_finds_tampered_and_missing_blobs_and_a_broken_audit_chain(
    store: Registry, gentamicin: tuple[str, ModelCard]
) -> None:
    s = store.submit(*gentamicin)
    other = store.submit_file(ABSORPTION_SBML.read_bytes(), filename=ABSORPTION_SBML.name)
    assert store.verify().ok
    p = store.blobs.path(s.sbml_sha256)
    p.write_bytes(p.read_bytes() + b" ")
    store.blobs.path(other.sbml_sha256).unlink()
    faults = store.verify().faults
    assert any("does not match its hash" in f for f in faults) and any("is missing" in f for f in faults)
    assert store.audit()[-1].action == "verify" and store.audit()[-1].detail["faults"] == 2
    # Tamper with the audit log behind the triggers' back: the chain shows it.
    with store.engine.begin() as c:
        if store.engine.dialect.name == "postgresql":
            c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            c.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE action = 'submit'"))
            c.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        else:
            c.execute(text("DROP TRIGGER audit_log_no_update"))
            c.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE action = 'submit'"))
    assert any("does not match its hash" in f and "audit entry" in f for f in store.verify().faults)


@pytest.mark.postgres
def test_truncate_of_the_audit_log_is_refused_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    reg = open_registry(pg_url, tmp_path / "b")
    try:
        reg.create_user("x", "uni", "reader")
        with pytest.raises(Exception, match="append-only"), reg.engine.begin() as c:
            c.execute(text("TRUNCATE audit_log"))
        assert len(reg.audit()) == 1
    finally:
        reg.close()


# ------------------------------------------------------------ finding 12: backup/restore
def test_backup_and_restore_into_an_empty_registry(
    db_url: str, tmp_path: Path, gentamicin: tuple[str, ModelCard]
) -> None:
    src = open_registry(f"sqlite:///{tmp_path / 'src.sqlite'}", tmp_path / "src-blobs")
    try:
        s = src.submit(*gentamicin)
        src.submit_file(ABSORPTION_SBML.read_bytes(), filename=ABSORPTION_SBML.name)
        src.create_user("rita", "uni-a", "reader")
        src.backup(tmp_path / "bk")
        n_audit = len(src.audit())
    finally:
        src.close()
    dst = open_registry(db_url, tmp_path / "dst-blobs")  # SQLite or PostgreSQL, empty
    try:
        counts = dst.restore(tmp_path / "bk")
        assert counts["model_versions"] == 2 and counts["blobs"] >= 2
        assert dst.get(s.model_id, 1).sbml == gentamicin[0]
        assert len(dst.audit()) == n_audit + 1  # + the restore itself, chained on
        report = dst.verify()
        assert report.ok, report.faults
        dst.submit(gentamicin[0], gentamicin[1].model_copy(update={"title": "after restore"}))  # ids continue
        with pytest.raises(RegistryError, match="empty registry"):
            dst.restore(tmp_path / "bk")
    finally:
        dst.close()


# --------------------------------------------------------- finding 7: amplification
def test_submission_bounded_on_disk_and_refusals_leave_no_blobs(tmp_path: Path) -> None:
    reg = open_registry(f"sqlite:///{tmp_path / 'r.sqlite'}", tmp_path / "b", max_stored_bytes=30_000)
    try:
        raw = GENTAMICIN_SBML.read_bytes()
        big = raw.replace(b"</model>", b"<!--" + b"x" * 20_000 + b"--></model>")
        with pytest.raises(RegistryError, match="would occupy"):
            reg.submit_file(big, filename="big.xml")
        bob = Principal("bob", "uni-b", "contributor")
        s = reg.submit_file(ABSORPTION_SBML.read_bytes(), filename="abs.xml", model_id="abs")
        before = _blobs(tmp_path / "b")
        changed = ABSORPTION_SBML.read_bytes().replace(b"Absorption model", b"Other model")
        with pytest.raises(PermissionDenied):
            reg.submit_file(changed, filename="abs.xml", model_id=s.model_id, principal=bob)
        assert _blobs(tmp_path / "b") == before, "a refused submission left blobs behind"
        assert [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".tmp-")] == []
    finally:
        reg.close()


# --------------------------------------------------- findings 3, 4: ids, squatting
def test_ids_follow_one_rule_and_derived_ids_never_merge(store: Registry) -> None:
    for bad in ("../x", "a/b", "<s>", "a b", "x" * 65, "9lives"):
        with pytest.raises(SchemaError, match="id rule"):
            store.submit_file(ABSORPTION_SBML.read_bytes(), filename="a.xml", model_id=bad)
    raw = ABSORPTION_SBML.read_bytes()
    # Two unrelated archives whose SBML ids are the same: their ids come from the file names.
    a = store.submit_file(raw, filename="BIOMD0000000001.xml")
    b = store.submit_file(
        raw.replace(b"Absorption model", b"Unrelated model"), filename="BIOMD0000000002.xml"
    )
    assert (a.model_id, b.model_id) == ("biomd0000000001", "biomd0000000002")
    # Same file name, different content, no id given: refused instead of silently merged.
    with pytest.raises(RegistryError, match="already exists"):
        store.submit_file(raw.replace(b"Absorption model", b"Third model"), filename="BIOMD0000000001.xml")
    # The identical file again is recognised; naming the id explicitly adds a version.
    assert store.submit_file(raw, filename="BIOMD0000000001.xml").deduplicated
    v2 = store.submit_file(raw.replace(b"Absorption model", b"Third"), filename="x.xml", model_id=a.model_id)
    assert v2.version == 2


def test_unknown_rdf_qualifier_is_kept_as_plain_rdf(store: Registry) -> None:
    raw = ABSORPTION_SBML.read_text().replace("bqbiol:is>", "bqmodel:hasProperty>", 2)
    s = store.submit_file(raw.encode(), filename="prop.xml")
    ttl = store.export_rdf(s.model_id, 1)
    assert "hasProperty" in ttl


# ------------------------------------------------------------- finding 10: exit codes
def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INTEROP_HOME": str(home), "COLUMNS": "200"}
    env.pop("INTEROP_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "interop", "registry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_submit_exits_3_on_a_failed_stage_and_verify_exits_1_on_a_fault(tmp_path: Path) -> None:
    home = tmp_path / "home"
    broken = GENTAMICIN_SBML.read_text().replace(
        'compartment="body" initialAmount', 'compartment="nowhere" initialAmount', 1
    )
    (tmp_path / "broken.xml").write_text(broken)
    r = _cli(home, "submit", str(tmp_path / "broken.xml"))
    assert r.returncode == 3, r.stderr
    assert "broken@1 is stored, but the consistency stage failed" in r.stderr
    r = _cli(home, "submit", str(GENTAMICIN_SBML), "--card", str(GENTAMICIN_CARD))
    assert r.returncode == 0, r.stderr
    r = _cli(home, "verify")
    assert r.returncode == 0 and "0 fault(s)" in r.stdout, r.stdout
    blob = next(p for p in _blobs(home / "blobs"))
    blob.write_bytes(b"tampered")
    r = _cli(home, "verify")
    assert r.returncode == 1 and "does not match its hash" in r.stdout and "Traceback" not in r.stderr
    r = _cli(home, "gc", "--dry-run")
    assert r.returncode == 0 and "would remove 0 blob(s)" in r.stdout


# ------------------------------------------------------------- migration 0002
def test_migration_chains_existing_audit_entries_and_expires_old_tokens(db_url: str, tmp_path: Path) -> None:
    """A registry made at revision 0001 (unchained audit, tokens without expiry) is upgraded."""
    from registry.db import make_engine
    from registry.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as c:
        c.execute(
            text("INSERT INTO institutions (id, name, created_at) VALUES ('u', 'u', :t)"), {"t": "2026-01-01"}
        )
        c.execute(
            text(
                "INSERT INTO users (name, institution_id, role, active, created_at) "
                "VALUES ('old', 'u', 'reader', true, :t)"
            ),
            {"t": "2026-01-01"},
        )
        c.execute(
            text("INSERT INTO tokens (token_sha256, user_id, created_at, revoked) VALUES (:h, 1, :t, false)"),
            {"h": "a" * 64, "t": "2026-01-01 00:00:00"},
        )
        for i in range(3):
            c.execute(
                text(
                    "INSERT INTO audit_log (at, actor, institution, action, detail) "
                    "VALUES (:t, 'local', '', 'create-token', :d)"
                ),
                {"t": f"2026-01-0{i + 1} 00:00:00", "d": '{"user": "old"}'},
            )
    engine.dispose()
    reg = open_registry(db_url, tmp_path / "b")
    try:
        assert [u.active_tokens for u in reg.list_users()] == [0], (
            "an old token expired 90 days after creation"
        )
        assert len(reg.audit()) == 3
        report = reg.verify()
        assert report.ok, report.faults
    finally:
        reg.close()


def test_cli_user_management(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = _cli(
        home, "user", "add", "ann", "--institution", "uni-a", "--role", "contributor", "--expires-in", "7"
    )
    assert r.returncode == 0 and len(r.stdout.strip()) >= 40, r.stderr
    r = _cli(home, "user", "list")
    assert "ann" in r.stdout and "1 token(s)" in r.stdout and "active" in r.stdout, r.stdout
    r = _cli(home, "user", "revoke", "ann")
    assert r.returncode == 0 and "revoked 1 token(s) of ann" in r.stdout
    r = _cli(home, "user", "deactivate", "ann")
    assert r.returncode == 0
    r = _cli(home, "user", "list")
    assert "inactive" in r.stdout and "0 token(s)" in r.stdout
    r = _cli(home, "user", "revoke", "nobody")
    assert r.returncode == 1 and "no user 'nobody'" in r.stderr and "Traceback" not in r.stderr
    r = _cli(home, "audit", "--action", "revoke-tokens", "--per-page", "1")
    assert "revoke-tokens" in r.stdout and "1 entr(y/ies); page 1 of 1" in r.stdout, r.stdout


def test_export_never_emits_an_unsafe_entry_name(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    """A row stored before the rule with a zip-slip path is exported under a safe name."""
    import io
    import zipfile

    from registry.db import FileRow

    s = store.submit(*gentamicin)
    with store.sessions.begin() as ses:
        vid = ses.execute(text("SELECT id FROM model_versions")).scalar_one()
        ses.add(FileRow(version_id=vid, path="../../../../tmp/x", role="other", sha256=s.sbml_sha256, size=1))
    names = zipfile.ZipFile(io.BytesIO(store.export_omex(s.model_id, 1))).namelist()
    assert names and all(".." not in n and not n.startswith("/") for n in names), names
    assert "files/x" in names
