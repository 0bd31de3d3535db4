"""Versions, dedupe, hash verification, lifecycle with audit, ownership (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from interop.errors import IntegrityError, ModelError, NotFoundError, PermissionDenied, RegistryError
from interop.schema import ModelCard
from registry import Principal, Registry
from registry.service import WithdrawnError
from tests.data import ABSORPTION_SBML

ALICE = Principal("alice", "uni-a", "contributor")
BOB = Principal("bob", "uni-b", "contributor")
CAROL = Principal("carol", "hub", "curator")
READER = Principal("rita", "uni-a", "reader")


def test_new_content_new_version_identical_content_deduplicated(
    store: Registry, gentamicin: tuple[str, ModelCard]
) -> None:
    sbml, card = gentamicin
    v1 = store.submit(sbml, card, submitted_by="demo")
    again = store.submit(sbml, card, submitted_by="demo")
    assert (v1.version, again.version, again.deduplicated) == (1, 1, True)
    v2 = store.submit(sbml, card.replace(description="second wording"))
    assert v2.version == 2
    v3 = store.submit(sbml.replace('value="5"', 'value="6"', 1), card)
    assert v3.version == 3 and v3.sbml_sha256 != v1.sbml_sha256
    assert [m.version for m in store.list_models()] == [1, 2, 3]
    got = store.get(card.id, 1)
    assert got.sbml == sbml and got.card == card and got.status == "submitted" and got.format == "sbml"
    assert store.get(card.id).version == 3
    # Same SBML bytes stored once as a blob, although two versions name them.
    assert len({f.sha256 for v in (1, 2) for f in store.files(card.id, v)}) == 1


def test_bytes_are_verified_on_every_read(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    s = store.submit(sbml, card)
    path = store.blobs.path(s.sbml_sha256)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"TVCL", b"TVCX", 1))
    with pytest.raises(IntegrityError, match="does not match its hash"):
        store.get(card.id, 1)
    path.unlink()
    with pytest.raises(NotFoundError):
        store.get(card.id, 1)


def test_unknown_model_is_not_found(store: Registry) -> None:
    with pytest.raises(NotFoundError, match="nope@3"):
        store.get("nope", 3)


def test_cardless_sbml_is_stored_but_cannot_bind(store: Registry) -> None:
    s = store.submit_file(ABSORPTION_SBML.read_bytes(), filename=ABSORPTION_SBML.name)
    assert s.model_id == "absorption_first_order" and not s.has_card
    assert s.title == "Absorption model with first order kinetics"
    with pytest.raises(ModelError, match="no model card"):
        _ = s.card


def test_lifecycle_with_who_and_when_in_the_audit_log(
    validating_store: Registry, gentamicin: tuple[str, ModelCard]
) -> None:
    reg = validating_store
    sbml, card = gentamicin
    s = reg.submit(sbml, card, principal=ALICE)
    assert s.institution == "uni-a"
    with pytest.raises(RegistryError, match="never validated"):
        reg.publish(card.id, 1, principal=CAROL)
    with pytest.raises(PermissionDenied):
        reg.validate(card.id, 1, principal=BOB)  # another institution
    assert reg.validate(card.id, 1, principal=ALICE).is_valid
    with pytest.raises(PermissionDenied, match="curator"):
        reg.publish(card.id, 1, principal=ALICE)
    published = reg.publish(card.id, 1, principal=CAROL)
    assert published.status == "published" and published.status_changed_by == "carol"
    with pytest.raises(RegistryError, match="publish applies to a validated version"):
        reg.publish(card.id, 1, principal=CAROL)
    assert reg.deprecate(card.id, 1, principal=CAROL, reason="superseded").status == "deprecated"
    with pytest.raises(PermissionDenied, match="curator"):
        reg.withdraw(card.id, 1, principal=ALICE)
    reg.withdraw(card.id, 1, principal=CAROL, reason="wrong data")
    with pytest.raises(RegistryError, match="is withdrawn; withdraw applies to"):
        reg.withdraw(card.id, 1, principal=CAROL)
    with pytest.raises(WithdrawnError):
        reg.get(card.id, 1)  # gone from binding...
    assert reg.get(card.id, 1, withdrawn=True).sbml == sbml  # ...but the bytes stay for audit
    assert reg.search().total == 0
    log = reg.audit(card.id)
    assert [(e.action, e.actor) for e in log] == [
        ("submit", "alice"),
        ("validate", "alice"),
        ("publish", "carol"),
        ("deprecate", "carol"),
        ("withdraw", "carol"),
    ]
    assert all(e.at is not None for e in log) and log[-2].detail == {"reason": "superseded"}


def test_audit_log_is_append_only_in_the_database(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    store.submit(*gentamicin)
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(stmt))
    assert [e.actor for e in store.audit()] == ["local"]


def test_ownership_roles(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    sbml, card = gentamicin
    store.submit(sbml, card, principal=ALICE)
    with pytest.raises(PermissionDenied, match="belongs to 'uni-a'"):
        store.submit(sbml, card.replace(title="hijacked"), principal=BOB)
    with pytest.raises(PermissionDenied, match="contributor"):
        store.submit(sbml, card.replace(title="x"), principal=READER)
    assert store.submit(sbml, card.replace(title="curated"), principal=CAROL).version == 2
    assert store.submit(sbml, card.replace(title="mine"), principal=ALICE).version == 3


def test_tokens(store: Registry) -> None:
    token = store.create_user("alice", "uni-a", "contributor")
    p = store.authenticate(token)
    assert p is not None and (p.name, p.institution, p.role) == ("alice", "uni-a", "contributor")
    assert store.authenticate(token + "x") is None
    with pytest.raises(PermissionDenied):
        store.create_user("eve", "uni-a", "curator", principal=ALICE)


def test_skeleton_database_is_refused_with_a_clear_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    from registry import open_registry

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE model_versions (id INTEGER PRIMARY KEY)"))
    eng.dispose()
    with pytest.raises(RegistryError, match="pre-migration registry skeleton"):
        open_registry(url, tmp_path / "b")
