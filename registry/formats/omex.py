"""COMBINE/OMEX archives in (manifest parsed with python-libcombine) and out.

Format URIs come in two spellings: the old ``http://identifiers.org/combine.specifications/sbml``
and the new ``https://identifiers.org/combine.specifications:sbml`` (BioModels writes the new
one, libcombine's ``KnownFormats`` only knows the old): both are normalised to the old before
asking libcombine. The model is the master SBML entry, else the first SBML entry; SED-ML,
metadata and further SBML files are kept as extra files; a ``model-card.json`` (what our export
writes) becomes the card. Zip bombs are refused from the central directory before extraction.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from collections.abc import Iterable

import libcombine

from interop.schema import ModelCard, parse_json
from registry.formats import ExtraFile
from registry.formats.sbml import InvalidModelError
from registry.formats.sbml import load as load_sbml
from registry.paths import safe_entry
from registry.safexml import MAX_BYTES, check_xml

__all__ = ["CARD_LOCATION", "check_zip", "detect", "extra_files", "load", "normalise_format", "write_archive"]

CARD_LOCATION = "model-card.json"
MAX_ENTRIES = 1000
_NEW = "https://identifiers.org/combine.specifications:"
_OLD = "http://identifiers.org/combine.specifications/"
SBML_FORMAT = _NEW + "sbml"
SEDML_FORMAT = _NEW + "sed-ml"
METADATA_FORMAT = _NEW + "omex-metadata"
JSON_FORMAT = "http://purl.org/NET/mediatypes/application/json"
TEXT_FORMAT = "http://purl.org/NET/mediatypes/text/plain"


def detect(raw: bytes) -> bool:
    if not raw.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            return any(n.lstrip("./") == "manifest.xml" for n in zf.namelist())
    except zipfile.BadZipFile:
        return False


def normalise_format(uri: str) -> str:
    """The old spelling of a COMBINE format URI (what libcombine's KnownFormats knows)."""
    uri = uri.strip()
    if uri.startswith(_NEW):
        return _OLD + uri[len(_NEW) :]
    if uri.startswith("https://identifiers.org/combine.specifications/"):
        return "http://" + uri[len("https://") :]
    return uri


def kind_of(uri: str) -> str:
    """sbml | sedml | metadata | manifest | archive | other, for either spelling of the URI."""
    old = normalise_format(uri)
    if not old.startswith(_OLD):
        return "other"
    tail = old[len(_OLD) :]
    for prefix, kind in (
        ("sbml", "sbml"),
        ("sed-ml", "sedml"),
        ("sedml", "sedml"),
        ("omex-metadata", "metadata"),
        ("omex-manifest", "manifest"),
        ("omex", "archive"),
    ):
        if tail.startswith(prefix):
            return kind
    return "other"


def check_zip(raw: bytes, source: str | None) -> None:
    """Refuse a zip bomb from its central directory: entry count and expanded size bounded."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidModelError(f"not a zip archive: {exc}", source=source) from exc
    if len(infos) > MAX_ENTRIES:
        raise InvalidModelError(f"archive has {len(infos)} entries (limit {MAX_ENTRIES})", source=source)
    total = sum(i.file_size for i in infos)
    if total > MAX_BYTES:
        raise InvalidModelError(f"archive expands to {total} bytes (limit {MAX_BYTES})", source=source)


def _entries(raw: bytes, source: str | None) -> list[tuple[str, str, bool, bytes]]:
    """(location, format, master, bytes) of every manifest entry except the archive itself."""
    check_zip(raw, source)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        names = {n.lstrip("./"): n for n in zf.namelist()}
        if "manifest.xml" not in names:
            raise InvalidModelError("OMEX archive without manifest.xml", source=source)
        check_xml(zf.read(names["manifest.xml"]), source=f"{source or 'archive'}:manifest.xml")
    fd, path = tempfile.mkstemp(suffix=".omex")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        archive = libcombine.CombineArchive()
        if not archive.initializeFromArchive(path):
            raise InvalidModelError("libcombine cannot read the archive", source=source)
        manifest = archive.getManifest()
        out = []
        for i in range(manifest.getNumContents()):
            c = manifest.getContent(i)
            loc = c.getLocation()
            if kind_of(c.getFormat()) in ("archive", "manifest") or loc in (".", "./"):
                continue
            name = safe_entry(loc, source=source)  # zip-slip names are refused, never stored
            out.append((name, c.getFormat(), c.getMaster(), _read(raw, name)))
        archive.cleanUp()
        return out
    finally:
        os.unlink(path)


def _read(raw: bytes, location: str) -> bytes:
    # libcombine's extractEntryToString decodes as text; read the bytes from the zip instead.
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return zf.read(location)


def _model_entry(entries: list[tuple[str, str, bool, bytes]], source: str | None) -> tuple[str, bytes]:
    sbml = [e for e in entries if kind_of(e[1]) == "sbml"]
    if not sbml:
        raise InvalidModelError("OMEX archive has no SBML model in its manifest", source=source)
    master = [e for e in sbml if e[2]]
    loc, _fmt, _m, data = (master or sbml)[0]
    return loc, data


def load(raw: bytes, *, source: str | None = None) -> tuple[str, ModelCard | None]:
    entries = _entries(raw, source)
    loc, data = _model_entry(entries, source)
    sbml, _ = load_sbml(data, source=f"{source or 'archive'}:{loc}")
    card = None
    for eloc, _fmt, _m, edata in entries:
        if eloc.rsplit("/", 1)[-1] == CARD_LOCATION:
            card = parse_json(ModelCard, edata, source=f"{source or 'archive'}:{eloc}")
    return sbml, card


def extra_files(raw: bytes) -> list[ExtraFile]:
    """Every manifest entry but the model itself (SED-ML, metadata, other SBML files...)."""
    entries = _entries(raw, None)
    model_loc, _ = _model_entry(entries, None)
    out = []
    for loc, fmt, _m, data in entries:
        if loc == model_loc or loc.rsplit("/", 1)[-1] == CARD_LOCATION:
            continue
        role = {"sbml": "model", "sedml": "sedml", "metadata": "metadata"}.get(kind_of(fmt), "other")
        out.append(ExtraFile(loc, role, fmt, data))
    return out


def write_archive(entries: Iterable[tuple[str, str, bytes, bool]], metadata_rdf: str | None = None) -> bytes:
    """An OMEX archive of ``(location, format, data, master)`` entries plus ``metadata.rdf``."""
    archive = libcombine.CombineArchive()
    tmpdir = tempfile.mkdtemp(prefix="omex-")
    try:
        for i, (loc, fmt, data, master) in enumerate(entries):
            # addFile copies from disk: bytes stay bytes (addFileFromString would go through str).
            local = os.path.join(tmpdir, f"entry{i}")
            with open(local, "wb") as fh:
                fh.write(data)
            archive.addFile(local, "./" + safe_entry(loc), fmt, master)  # never emit an unsafe name
        if metadata_rdf is not None:
            local = os.path.join(tmpdir, "metadata.rdf")
            with open(local, "w", encoding="utf-8") as fh:
                fh.write(metadata_rdf)
            archive.addFile(local, "./metadata.rdf", METADATA_FORMAT, False)
        target = os.path.join(tmpdir, "out.omex")
        if not archive.writeToFile(target):
            raise InvalidModelError("libcombine could not write the archive")
        with open(target, "rb") as fh:
            return fh.read()
    finally:
        archive.cleanUp()
        for name in os.listdir(tmpdir):
            os.unlink(os.path.join(tmpdir, name))
        os.rmdir(tmpdir)
