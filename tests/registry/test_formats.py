"""Formats in and out: SBML, Antimony (source kept), OMEX (both URI spellings; export round trip)."""

from __future__ import annotations

import io
import zipfile

import libcombine
import pytest

from interop.schema import ModelCard
from registry import Registry, UnknownFormatError, detect_format
from registry.formats import FORMATS, available_formats, get_format
from registry.formats import omex as omex_fmt
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_ANTIMONY, GENTAMICIN_SBML, PHARMML_ONECMT_IV


def test_detection() -> None:
    assert detect_format(ABSORPTION_SBML.read_bytes()) == "sbml"
    assert detect_format(BIOMD321_OMEX.read_bytes()) == "omex"
    assert detect_format(GENTAMICIN_ANTIMONY.read_bytes()) == "antimony"
    with pytest.raises(UnknownFormatError):
        detect_format(b"\x00\x01binary")
    assert {"sbml", "antimony", "omex"} <= set(available_formats()) and "pharmml" in FORMATS


def test_pharmml_plugs_in_by_name() -> None:
    mod = get_format("pharmml")
    pharmml = PHARMML_ONECMT_IV.read_bytes()
    assert mod.detect(pharmml) and not mod.detect(GENTAMICIN_SBML.read_bytes())
    assert detect_format(pharmml) == "pharmml"
    sbml, card = mod.load(pharmml, source=PHARMML_ONECMT_IV.name)
    assert "<sbml" in sbml and card is not None


def test_antimony_in_keeps_its_source(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    raw = GENTAMICIN_ANTIMONY.read_bytes()
    s = store.submit_file(raw, filename=GENTAMICIN_ANTIMONY.name, card=gentamicin[1])
    assert s.format == "antimony" and "<sbml" in s.sbml
    files = {f.role: f for f in store.files(s.model_id, s.version)}
    assert store.file_bytes(files["source"]) == raw and files["source"].path.endswith(".ant")


def test_broken_antimony_is_refused_with_antimonys_message(store: Registry) -> None:
    with pytest.raises(Exception, match="Antimony"):
        store.submit_file(b"model m\n  x -> y; k*\nend\n", fmt="antimony")


def test_omex_in_manifest_model_and_extras(store: Registry) -> None:
    s = store.submit_file(BIOMD321_OMEX.read_bytes(), filename=BIOMD321_OMEX.name)
    assert (s.format, s.model_id) == ("omex", "biomd0000000321")
    assert "dopa" in s.title.lower()
    roles = sorted((f.role, f.path) for f in store.files(s.model_id, s.version))
    assert ("model", "files/BIOMD0000000321_urn.xml") in roles and (
        "source",
        "source/BIOMD0000000321.omex",
    ) in roles


def _rewrite_manifest(raw: bytes, old_uris: bool) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("manifest.xml") and old_uris:
                data = data.replace(
                    b"https://identifiers.org/combine.specifications:",
                    b"http://identifiers.org/combine.specifications/",
                )
                data = data.replace(b"specifications/sbml", b"specifications/sbml.level-3.version-1")
            zout.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize("old", [False, True], ids=["new-uris", "old-uris"])
def test_omex_format_uris_both_spellings(old: bool) -> None:
    raw = _rewrite_manifest(BIOMD321_OMEX.read_bytes(), old)
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        manifest = z.read("manifest.xml")
    assert (b"http://identifiers.org/combine.specifications/sbml.level-3" in manifest) == old
    sbml, card = omex_fmt.load(raw)
    assert card is None and "BIOMD0000000321" in sbml


def test_omex_out_round_trip(store: Registry, gentamicin: tuple[str, ModelCard]) -> None:
    s = store.submit(*gentamicin)
    raw = store.export_omex(s.model_id, s.version)
    archive = libcombine.CombineArchive()
    path = store.blobs.root.parent / "out.omex"
    path.write_bytes(raw)
    assert archive.initializeFromArchive(str(path))
    manifest = archive.getManifest()
    entries = {
        manifest.getContent(i).getLocation(): manifest.getContent(i) for i in range(manifest.getNumContents())
    }
    assert entries["./model.xml"].getMaster()
    assert set(entries) >= {"./model.xml", "./model-card.json", "./metadata.rdf"}
    assert "omex-metadata" in entries["./metadata.rdf"].getFormat()
    archive.cleanUp()
    # Submitting the exported archive gives back the same content: the identical version.
    back = store.submit_file(raw, filename="out.omex")
    assert back.model_id == s.model_id and back.card == s.card and back.sbml == s.sbml
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        rdf = z.read("metadata.rdf").decode()
    assert "identifiers.org/atc:J01GB03" in rdf and "http://purl.org/dc/terms/" in rdf


def test_omex_sedml_and_metadata_are_kept(store: Registry) -> None:
    """An archive written with old-style URIs, SED-ML and metadata: all kept, roles from the manifest."""
    sbml = ABSORPTION_SBML.read_bytes()
    sedml = b'<sedML xmlns="http://sed-ml.org/sed-ml/level1/version3" level="1" version="3"/>'
    meta = b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>'
    old = "http://identifiers.org/combine.specifications/"
    raw = omex_fmt.write_archive(
        [
            ("model/abs.xml", old + "sbml.level-3.version-1", sbml, True),
            ("sim.sedml", old + "sed-ml.level-1.version-3", sedml, False),
            ("extra-metadata.rdf", old + "omex-metadata", meta, False),
        ]
    )
    s = store.submit_file(raw, filename="abs.omex")
    assert s.sbml.encode() == sbml
    kept = {f.path: (f.role, store.file_bytes(f)) for f in store.files(s.model_id, s.version)}
    assert kept["files/sim.sedml"] == ("sedml", sedml)
    assert kept["files/extra-metadata.rdf"] == ("metadata", meta)
    # metadata.rdf written by write_archive itself is absent here (no metadata passed): only ours.
    assert sorted(r for r, _ in kept.values()) == ["metadata", "model", "sedml", "source"]
