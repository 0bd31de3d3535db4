"""A site's VPC/NPDE images travel with its validation record: stored as content-addressed blobs
beside the record (PNG structure checked, bounded), listed with it, served verified, kept by GC,
verify and backup; a refused record leaves no blob. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from interop.errors import NotFoundError, PermissionDenied, RegistryError  # noqa: E402
from interop.schema import MetricValue, ModelCard, ValidationRecord  # noqa: E402
from registry import Principal, Registry, open_registry  # noqa: E402
from registry.evidence import MAX_IMAGE_BYTES, MAX_IMAGES, check_png  # noqa: E402


def png(label: str, size: tuple[float, float] = (3, 2)) -> bytes:
    """A real PNG made by matplotlib (as the validation run makes them)."""
    fig, ax = plt.subplots(figsize=size)
    ax.plot([0, 1, 2], [1, 3, 2])
    ax.set_title(label)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    plt.close(fig)
    return buf.getvalue()


def record(reg: Registry, site: str = "site-a", value: float = 3.0) -> ValidationRecord:
    stored = reg.get("gentamicin-1cmt", 1)
    return ValidationRecord(
        model_id=stored.model_id,
        model_version=stored.version,
        model_sha256=stored.sbml_sha256,
        site=site,
        software="t 1",
        dataset_fingerprint="0" * 64,
        n_patients=4,
        n_levels=16,
        metrics=(
            MetricValue(name="mpe_percent", setting="a-priori", observable="gentamicin", value=value, n=16),
        ),
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "REGISTRY-ID")


def test_images_are_stored_beside_the_record_and_served_verified(
    store: Registry, gentamicin: tuple[str, ModelCard], tmp_path: Path
) -> None:
    store.submit(*gentamicin)
    vpc, hist = png("VPC"), png("NPDE histogram")
    old = store.add_validation_record(record(store, "site-old"))  # a record without images
    rid = store.add_validation_record(
        record(store, "site-a"),
        images=[("VPC and pcVPC (gentamicin)", vpc), ("NPDE histogram (gentamicin)", hist)],
    )
    # A second site sending the same bytes shares the blob (content-addressed).
    rid2 = store.add_validation_record(
        record(store, "site-b", -2.0), images=[("VPC and pcVPC (gentamicin)", vpc)]
    )
    got = store.validation_records("gentamicin-1cmt", 1)
    assert [(r.id, r.record.site) for r in got] == [(old, "site-old"), (rid, "site-a"), (rid2, "site-b")]
    assert got[0].images == ()
    assert [(i.position, i.title, i.size) for i in got[1].images] == [
        (0, "VPC and pcVPC (gentamicin)", len(vpc)),
        (1, "NPDE histogram (gentamicin)", len(hist)),
    ]
    assert got[1].images[0].sha256 == got[2].images[0].sha256
    assert store.record_image("gentamicin-1cmt", 1, rid, 1)[1] == hist
    assert store.record_image("gentamicin-1cmt", 1, rid2, 0)[1] == vpc
    assert len(_files(tmp_path / "blobs")) == 1 + 2  # the SBML, two distinct images
    # The plain list of records is unchanged (aggregates only).
    assert [r.site for r in store.list_validation_records("gentamicin-1cmt", 1)] == [
        "site-old",
        "site-a",
        "site-b",
    ]
    for missing in ((rid, 2), (old, 0), (9999, 0)):
        with pytest.raises(NotFoundError):
            store.record_image("gentamicin-1cmt", 1, *missing)
    add = next(
        e for e in store.audit() if e.action == "add-validation-record" and e.detail["record_id"] == rid
    )
    assert len(add.detail["images"]) == 2
    # Garbage collection keeps them; verify re-hashes them and names a damaged one.
    assert store.collect_garbage(grace_s=0).removed_blobs == []
    assert store.record_image("gentamicin-1cmt", 1, rid, 0)[1] == vpc
    assert store.verify().ok
    blob = store.blobs.path(got[1].images[1].sha256)
    blob.write_bytes(hist[:-1] + b"\x00")
    faults = store.verify().faults
    assert any(f"images of site records {rid}" in f for f in faults), faults


def test_backup_and_restore_keep_the_images(
    db_url: str, tmp_path: Path, gentamicin: tuple[str, ModelCard]
) -> None:
    src = open_registry(f"sqlite:///{tmp_path / 'src.sqlite'}", tmp_path / "src-blobs")
    try:
        src.submit(*gentamicin)
        qq = png("NPDE QQ plot")
        rid = src.add_validation_record(record(src), images=[("NPDE QQ plot (gentamicin)", qq)])
        src.backup(tmp_path / "bk")
    finally:
        src.close()
    dst = open_registry(db_url, tmp_path / "dst-blobs")
    try:
        dst.restore(tmp_path / "bk")
        assert dst.record_image("gentamicin-1cmt", 1, rid, 0)[1] == qq
        assert dst.verify().ok
    finally:
        dst.close()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b"GIF89a" + b[6:], "no PNG signature"),
        (lambda b: b[:-5], "truncated|runs past"),
        (lambda b: b + b"trailing", "after the IEND"),
        (lambda b: b[:40] + bytes([b[40] ^ 0xFF]) + b[41:], "CRC"),
        (
            lambda b: b[:8] + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 10, 8, 2, 0, 0, 0)) + b[33:],
            "pixels",
        ),
        (lambda b: b[:8] + _chunk(b"tEXt", b"k\x00v") + b[8:], "first chunk is not IHDR"),
    ],
)
def test_check_png_refuses_malformed_images(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    good = png("x")
    check_png(good, "test")
    with pytest.raises(RegistryError, match=why) as e:
        check_png(mutate(good), "site-a image 0")
    assert e.value.source == "site-a image 0" and e.value.field == "images"


def test_refused_records_store_no_blob_and_no_row(
    store: Registry, gentamicin: tuple[str, ModelCard], tmp_path: Path
) -> None:
    store.submit(*gentamicin)
    before = _files(tmp_path / "blobs")
    good = png("VPC")
    cases: list[tuple[ValidationRecord, list[tuple[str, bytes]], Principal | None, type[Exception], str]] = [
        (record(store), [("VPC", b"not a png")], None, RegistryError, "no PNG signature"),
        (record(store), [("VPC", good)] * (MAX_IMAGES + 1), None, RegistryError, "at most"),
        (record(store), [("", good)], None, RegistryError, "title"),
        (record(store), [("VPC\x00", good)], None, RegistryError, "title"),
        (record(store), [("VPC", good + b"\x00" * MAX_IMAGE_BYTES)], None, RegistryError, "bytes"),
        # A record for other SBML bytes: refused inside the transaction, after staging.
        (
            record(store).model_copy(update={"model_sha256": "b" * 64}),
            [("VPC", good)],
            None,
            RegistryError,
            "names SBML",
        ),
        # Another site's contributor.
        (
            record(store),
            [("VPC", good)],
            Principal("bob", "site-b", "contributor"),
            PermissionDenied,
            "site-b",
        ),
    ]
    for rec, images, who, exc, match in cases:
        with pytest.raises(exc, match=match):
            store.add_validation_record(rec, images=images, principal=who)
    assert store.validation_records("gentamicin-1cmt", 1) == []
    assert _files(tmp_path / "blobs") == before  # no published blob, no staged temporary file left


def test_a_registry_from_before_images_upgrades_and_shows_its_records(
    db_url: str, tmp_path: Path, gentamicin: tuple[str, ModelCard]
) -> None:
    """A record stored at revision 0002 (no image table) reads back after the upgrade to 0003,
    with no image, and new records with images sit beside it."""
    from alembic import command

    from registry.db import make_engine
    from registry.migrate import _config

    reg = open_registry(db_url, tmp_path / "blobs")
    try:
        reg.submit(*gentamicin)
        old = reg.add_validation_record(record(reg, "site-old"))
    finally:
        reg.close()
    engine = make_engine(db_url)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")  # as the database was before this feature
    engine.dispose()
    reg = open_registry(db_url, tmp_path / "blobs")  # upgrades to head on open
    try:
        (got,) = reg.validation_records("gentamicin-1cmt", 1)
        assert (got.id, got.record.site, got.images) == (old, "site-old", ())
        new = reg.add_validation_record(record(reg, "site-new"), images=[("VPC and pcVPC (g)", png("v"))])
        assert [len(r.images) for r in reg.validation_records("gentamicin-1cmt", 1)] == [0, 1]
        assert reg.record_image("gentamicin-1cmt", 1, new, 0)[0].title == "VPC and pcVPC (g)"
    finally:
        reg.close()
