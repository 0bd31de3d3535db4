"""SPARQL over the registry's own metadata graph, and nothing else.

rdflib's engine follows ``SERVICE <url>`` (a federated call to any host, the registry's own
network included) and may load ``FROM``/``FROM NAMED`` graphs from URLs or files. A query a
reader sends must not make the server fetch anything, so before it runs the query is parsed
with rdflib's own parser and refused when its parse tree holds a ``SERVICE`` pattern, a dataset
clause (``FROM``, ``FROM NAMED``) or a ``GRAPH`` pattern (the registry has one default graph);
only SELECT and ASK are run (updates such as ``LOAD`` do not parse as queries).

Cost is bounded three ways: the query text's length, a wall-clock deadline checked every time
the engine reads triples (every join and path step does), and the number of result rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pyparsing import ParseException, ParseResults
from rdflib import Graph
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery
from rdflib.plugins.sparql.parserutils import CompValue

from interop.errors import RegistryError

__all__ = ["MAX_QUERY_CHARS", "MAX_ROWS", "QUERY_SECONDS", "SparqlRefused", "run_select"]

MAX_QUERY_CHARS = 20_000
MAX_ROWS = 10_000
QUERY_SECONDS = 10.0
_REFUSED = {
    "ServiceGraphPattern": "SERVICE (federated queries) is not allowed",
    "DatasetClause": "FROM / FROM NAMED is not allowed: queries run over the registry's graph only",
    "GraphGraphPattern": "GRAPH is not supported: the registry has one default graph",
    "Load": "LOAD is not allowed",
}


class SparqlRefused(RegistryError):
    """The query is malformed, uses a refused feature, or exceeds a limit (a client error)."""


class _Timeout(Exception):
    pass


class _BoundedGraph(Graph):
    """A graph whose triple reads stop the query once its deadline has passed."""

    deadline: float = float("inf")

    def triples(self, triple: Any) -> Iterator[Any]:  # type: ignore[override]
        if time.monotonic() > self.deadline:
            raise _Timeout
        for i, t in enumerate(super().triples(triple)):
            if i % 256 == 0 and time.monotonic() > self.deadline:
                raise _Timeout
            yield t


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, CompValue):
        yield node.name
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, ParseResults | list | tuple):
        for v in node:
            yield from _walk(v)


def _check(query: str) -> Any:
    if len(query) > MAX_QUERY_CHARS:
        raise SparqlRefused(f"SPARQL: query of {len(query)} characters exceeds {MAX_QUERY_CHARS}")
    if "\x00" in query:
        raise SparqlRefused("SPARQL: NUL character in the query")
    try:
        parsed = parseQuery(query)
    except ParseException as exc:
        raise SparqlRefused(f"SPARQL syntax error at line {exc.lineno}, column {exc.col}") from None
    except Exception:  # rdflib raises assorted types for odd input
        raise SparqlRefused("SPARQL: the query cannot be parsed") from None
    for name in _walk(parsed):
        if name in _REFUSED:
            raise SparqlRefused(f"SPARQL: {_REFUSED[name]}")
    kind = parsed[1].name if len(parsed) > 1 and isinstance(parsed[1], CompValue) else ""
    if kind not in ("SelectQuery", "AskQuery"):
        raise SparqlRefused("SPARQL: only SELECT and ASK queries are run")
    try:
        return translateQuery(parsed)
    except Exception:
        raise SparqlRefused(
            "SPARQL: the query cannot be translated (check its variables and functions)"
        ) from None


def run_select(
    graph: Graph, query: str, *, max_rows: int | None = None, seconds: float | None = None
) -> list[dict[str, str]]:
    """Rows of a SELECT (an ASK gives one row ``{"ask": "true"|"false"}``) over ``graph`` only
    (limits default to the module's ``MAX_ROWS`` and ``QUERY_SECONDS``)."""
    max_rows = MAX_ROWS if max_rows is None else max_rows
    seconds = QUERY_SECONDS if seconds is None else seconds
    prepared = _check(query)
    bounded = _BoundedGraph(
        store=graph.store, identifier=graph.identifier, namespace_manager=graph.namespace_manager
    )
    bounded.deadline = time.monotonic() + seconds
    rows: list[dict[str, str]] = []
    try:
        result = bounded.query(prepared)
        if result.type == "ASK":
            return [{"ask": "true" if result.askAnswer else "false"}]
        for row in result:
            if len(rows) >= max_rows:
                raise SparqlRefused(f"SPARQL: more than {max_rows} result rows; add a LIMIT")
            rows.append({str(k): str(v) for k, v in row.asdict().items()})  # type: ignore[union-attr]
    except _Timeout:
        raise SparqlRefused(f"SPARQL: the query ran longer than {seconds:g} s; narrow it") from None
    except SparqlRefused:
        raise
    except Exception as exc:  # evaluation errors (type errors in FILTERs, ...): the query's fault
        raise SparqlRefused(f"SPARQL: the query failed while running ({type(exc).__name__})") from None
    return rows
