"""Hostile uploads are refused in bounded time and memory: XML bombs, external entities,
over-deep nesting, oversized files, zip bombs."""

from __future__ import annotations

import io
import resource
import time
import zipfile

import pytest

from interop.errors import RegistryError
from registry import Registry
from registry.safexml import UnsafeXmlError, XmlLimits, check_xml

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
<model id="m" name="&lol9;"/></sbml>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE sbml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2">
<model id="m" name="&xxe;"/></sbml>"""

XXE_NET = b"""<?xml version="1.0"?>
<!DOCTYPE sbml SYSTEM "http://203.0.113.1/sbml.dtd">
<sbml xmlns="http://www.sbml.org/sbml/level3/version2/core" level="3" version="2"><model id="m"/></sbml>"""


def _bounded(fn) -> float:  # type: ignore[no-untyped-def]
    """Run ``fn``; assert it raised RegistryError; return the seconds it took."""
    t0 = time.perf_counter()
    with pytest.raises(RegistryError):
        fn()
    return time.perf_counter() - t0


@pytest.mark.parametrize("raw", [BOMB, XXE, XXE_NET], ids=["billion-laughs", "external-file", "external-dtd"])
def test_dtds_and_entities_refused(store: Registry, raw: bytes) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnsafeXmlError, match="refused"):
        check_xml(raw)
    # Through the whole submit path too (format detection sees SBML, the loader refuses).
    _bounded(lambda: store.submit_file(raw, filename="hostile.xml"))
    assert store.list_models() == []
    # No expansion happened: peak memory grew by far less than a billion "lol"s (3 GB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


def test_deep_nesting_refused() -> None:
    deep = (
        b"<sbml xmlns='http://www.sbml.org/sbml/level3/version2/core'>"
        + b"<a>" * 100_000
        + b"</a>" * 100_000
        + b"</sbml>"
    )
    with pytest.raises(UnsafeXmlError, match="deeper than 256"):
        check_xml(deep)


def test_oversized_upload_refused_before_parsing(tmp_path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    from registry import open_registry

    reg = open_registry(db_url, tmp_path / "b", max_upload_bytes=1000)
    try:
        with pytest.raises(RegistryError, match="exceeds"):
            reg.submit_file(b"<sbml>" + b" " * 5000 + b"</sbml>", filename="big.xml")
    finally:
        reg.close()
    with pytest.raises(UnsafeXmlError, match="exceeds the limit"):
        check_xml(b"<a/>" + b" " * 100, limits=XmlLimits(max_bytes=50))


def test_zip_bomb_refused_from_the_central_directory(store: Registry) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "manifest.xml",
            b'<omexManifest xmlns="http://identifiers.org/combine.specifications/omex-manifest"/>',
        )
        z.writestr("big.xml", b"\0" * (60 * 1024 * 1024))  # 60 MB of zeros, ~60 kB compressed
    raw = buf.getvalue()
    assert len(raw) < 1_000_000
    _bounded(lambda: store.submit_file(raw, filename="bomb.omex"))


def test_library_submit_checks_xml_too(store: Registry) -> None:
    """``Registry.submit(sbml_text, card)`` (no format plug-in) still refuses entities."""
    with pytest.raises(UnsafeXmlError):
        store.submit(BOMB.decode(), None, model_id="bomb")
