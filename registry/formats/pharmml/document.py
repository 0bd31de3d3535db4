"""Reading a PharmML document safely, naming its version, and pointing at its elements.

lxml parses with entity resolution, DTD loading and network access off (a PharmML file never
needs them), so an external-entity or billion-laughs file cannot reach the disk, the network or
unbounded memory. Every problem found later is reported against an element's XML path (local
names with their ``symbId``/``blkId``/``oid``) and its line, collected in one
:class:`PharmMLError` so the user sees every unsupported element at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from interop.errors import ModelError

__all__ = [
    "MAX_BYTES",
    "SUPPORTED_VERSIONS",
    "Document",
    "Problem",
    "Problems",
    "PharmMLError",
    "child",
    "children",
    "local",
    "parse_document",
    "xml_path",
]

MAX_BYTES = 20 * 1024 * 1024
SUPPORTED_VERSIONS = ("0.6", "0.7", "0.8", "0.9")
_PHARMML_NS = re.compile(r"^http://www\.pharmml\.org/pharmml/(\d+\.\d+)/([A-Za-z]+)$")
# PharmML 0.6 files may still use the pre-0.6 CommonTypes namespace for a few elements.
_LEGACY_NS = {"http://www.pharmml.org/2013/03/CommonTypes"}
# PharmML before 0.6 (the WP1 examples, 0.2-0.5) used dated namespaces such as .../2013/03/PharmML.
_OLD_PHARMML_NS = re.compile(r"^http://www\.pharmml\.org/20\d\d/\d\d/PharmML$")


def _old_version(root: etree._Element) -> str | None:
    """The written version of a pre-0.6 PharmML root (``0.3`` if it does not say), else None."""
    ns = etree.QName(root).namespace or ""
    if local(root) != "PharmML":
        return None
    if _OLD_PHARMML_NS.match(ns):
        return root.get("writtenVersion") or "0.3"
    m = _PHARMML_NS.match(ns)
    if m is not None and m.group(1) in ("0.2", "0.3", "0.4", "0.5"):
        return m.group(1)
    return None


@dataclass(frozen=True)
class Problem:
    """One thing that cannot be converted, with where it is."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path} (line {self.line})" if self.line else self.path
        return f"{where}: {self.message}"


class PharmMLError(ModelError):
    """A PharmML document cannot be converted; ``problems`` lists each reason with its XML path."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], *, source: str | None = None):
        self.problems = tuple(problems)
        count = len(self.problems)
        head = "cannot convert PharmML" + (f" ({count} problems)" if count > 1 else "")
        body = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{head}: {body}", source=source)


@dataclass
class Problems:
    """Collects problems during a conversion; :meth:`raise_if_any` ends it with one error."""

    source: str | None = None
    items: list[Problem] = field(default_factory=list)

    def add(self, element: etree._Element | None, message: str) -> None:
        if element is None:
            self.items.append(Problem("/PharmML", None, message))
        else:
            self.items.append(Problem(xml_path(element), element.sourceline, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise PharmMLError(self.items, source=self.source)


def local(element: etree._Element) -> str:
    """Local name of an element (``''`` for comments and processing instructions)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element: etree._Element, name: str | None = None) -> list[etree._Element]:
    """Element children, optionally only those with local name ``name`` (any namespace)."""
    return [c for c in element if isinstance(c.tag, str) and (name is None or local(c) == name)]


def child(element: etree._Element, name: str) -> etree._Element | None:
    found = children(element, name)
    return found[0] if found else None


def xml_path(element: etree._Element) -> str:
    """``/PharmML/ModelDefinition/ObservationModel[@blkId='om1']/...`` for ``element``."""
    parts = []
    node: etree._Element | None = element
    while node is not None:
        name = local(node)
        pred = ""
        for attr in ("symbId", "blkId", "oid"):
            if node.get(attr):
                pred = f"[@{attr}='{node.get(attr)}']"
                break
        parent = node.getparent()
        if not pred and parent is not None:
            same = children(parent, name)
            if len(same) > 1:
                pred = f"[{same.index(node) + 1}]"
        parts.append(name + pred)
        node = parent
    return "/" + "/".join(reversed(parts))


@dataclass(frozen=True)
class Document:
    root: etree._Element
    version: str  # namespace version: "0.6" to "0.9"
    written_version: str  # the root's writtenVersion attribute, e.g. "0.8.1"

    def iter(self) -> Iterator[etree._Element]:
        return (e for e in self.root.iter() if isinstance(e.tag, str))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def namespace_version(raw: bytes) -> str | None:
    """The PharmML namespace version of the root element, or None when it is not PharmML."""
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError:
        return None
    old = _old_version(root)
    if old is not None:
        return old  # detected, so that load can say it is not supported
    match = _PHARMML_NS.match(etree.QName(root).namespace or "")
    if local(root) != "PharmML" or match is None or match.group(2) != "PharmML":
        return None
    return match.group(1)


def parse_document(raw: bytes, *, source: str | None = None) -> Document:
    """Parse ``raw`` safely and check its namespaces name one supported PharmML version."""
    problems = Problems(source)
    if len(raw) > MAX_BYTES:
        raise PharmMLError([Problem("/", None, f"file larger than {MAX_BYTES} bytes")], source=source)
    try:
        root = etree.fromstring(raw, _parser())
    except etree.XMLSyntaxError as exc:
        raise PharmMLError(
            [Problem("/", getattr(exc, "lineno", None), f"not well-formed XML: {exc}")],
            source=source,
        ) from exc
    if root.getroottree().docinfo.internalDTD is not None:
        problems.add(root, "a DOCTYPE with an internal subset is not allowed in PharmML")
        problems.raise_if_any()
    ns = etree.QName(root).namespace or ""
    old = _old_version(root)
    if old is not None:
        problems.add(root, f"PharmML {old} is not supported (0.6\u20130.9 are)")
        problems.raise_if_any()
    match = _PHARMML_NS.match(ns)
    if local(root) != "PharmML" or match is None:
        problems.add(root, f"root element is {{{ns}}}{local(root)}, not a PharmML document")
        problems.raise_if_any()
    assert match is not None
    version = match.group(1)
    if version not in SUPPORTED_VERSIONS:
        problems.add(
            root,
            f"unknown PharmML namespace version {version} ({ns}); supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
        problems.raise_if_any()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        ens = etree.QName(element).namespace or ""
        m = _PHARMML_NS.match(ens)
        if m is not None and m.group(1) != version:
            problems.add(
                element,
                f"namespace {ens} is PharmML {m.group(1)} inside a PharmML {version} document",
            )
        elif m is None and ens in _LEGACY_NS and version != "0.6":
            problems.add(element, f"legacy namespace {ens} outside PharmML 0.6")
    problems.raise_if_any()
    written = root.get("writtenVersion", version)
    return Document(root=root, version=version, written_version=written)
