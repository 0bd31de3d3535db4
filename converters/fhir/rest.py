"""A FHIR server's REST API as a source: search pages followed through ``link[next]``, bearer token.

httpx is used directly (fhirpy would add an async client and its own resource classes for what is
a GET loop here). The server's version comes from its CapabilityStatement (``/metadata``) unless
the caller gives one. HTTP failures become ``ConversionError`` naming the URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx

from converters.fhir.sources import Entry, FeedInfo, iter_json_document
from converters.fhir.versions import FhirVersion, detect_version
from interop.errors import ConversionError

__all__ = ["TOKEN_ENV", "fetch_json", "iter_search", "server_version"]

TOKEN_ENV = "INTEROP_FHIR_TOKEN"
ACCEPT = "application/fhir+json, application/json;q=0.9"


def _headers(token: str | None) -> dict[str, str]:
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    headers = {"Accept": ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def fetch_json(client: httpx.Client, url: str, token: str | None) -> Any:
    """GET ``url`` as FHIR JSON; any transport, status or JSON failure is a ``ConversionError``."""
    try:
        resp = client.get(url, headers=_headers(token))
    except httpx.HTTPError as exc:
        raise ConversionError(f"HTTP request failed: {exc}", source=url) from exc
    if resp.status_code == 401 or resp.status_code == 403:
        raise ConversionError(
            f"HTTP {resp.status_code}: not authorised (bearer token from --token or ${TOKEN_ENV})", source=url
        )
    if resp.status_code >= 400:
        raise ConversionError(f"HTTP {resp.status_code}: {resp.text[:200]}", source=url)
    try:
        return resp.json()
    except ValueError as exc:
        raise ConversionError(f"response is not JSON: {exc}", source=url) from exc


def server_version(client: httpx.Client, base: str, token: str | None) -> FhirVersion | None:
    """The FHIR version of the server's CapabilityStatement, if it answers ``/metadata``."""
    try:
        cap = fetch_json(client, base.rstrip("/") + "/metadata", token)
    except ConversionError:
        return None
    return detect_version(cap) if isinstance(cap, dict) else None


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def iter_search(
    url: str,
    info: FeedInfo,
    *,
    token: str | None = None,
    client: httpx.Client | None = None,
    max_pages: int = 100_000,
) -> Iterator[Entry]:
    """Every entry of a search (or a single resource read) at ``url``, page after page."""
    own = client is None
    http = client or httpx.Client(timeout=60.0, follow_redirects=True)
    try:
        if info.version is None:
            base = url.split("?")[0].rsplit("/", 1)[0]
            info.version = server_version(http, base, token)
        seen: set[str] = set()
        page: str | None = url
        n = 0
        while page is not None and n < max_pages:
            if page in seen:
                raise ConversionError("paging loops back to a page already read", source=page)
            seen.add(page)
            doc = fetch_json(http, page, token)
            yield from iter_json_document(doc, page, info)
            page = _next_link(doc) if isinstance(doc, dict) else None
            n += 1
    finally:
        if own:
            http.close()
