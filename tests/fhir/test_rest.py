"""The REST client against a real HTTP server on 127.0.0.1 serving pages of the shared data.

The server is Python's own ``http.server`` in a thread: real sockets and HTTP, no mock.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from converters.fhir import convert_paths
from interop.errors import ConversionError
from tests import data
from tests.fhir.conftest import KEY, load

TOKEN = "s3cret-token"


def _pages() -> list[list[dict]]:
    entries = []
    for path in data.FHIR_SYNTHEA_BUNDLES:
        entries += [{"fullUrl": e["fullUrl"], "resource": e["resource"]} for e in load(path)["entry"]]
    size = 150
    return [entries[i : i + size] for i in range(0, len(entries), size)]


@pytest.fixture(scope="module")
def server():
    pages = _pages()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, code: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            seen.append(self.path)
            if url.path == "/fhir/metadata":
                return self._send(
                    200,
                    {
                        "resourceType": "CapabilityStatement",
                        "fhirVersion": "4.0.1",
                        "status": "active",
                        "kind": "instance",
                        "format": ["json"],
                        "date": "2026-01-01",
                    },
                )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, {"resourceType": "OperationOutcome"})
            page = int(parse_qs(url.query).get("page", ["0"])[0])
            base = f"http://127.0.0.1:{self.server.server_address[1]}/fhir/everything"
            body = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": pages[page],
                "link": [{"relation": "self", "url": f"{base}?page={page}"}],
            }
            if page + 1 < len(pages):
                body["link"].append({"relation": "next", "url": f"{base}?page={page + 1}"})
            return self._send(200, body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fhir", len(pages), sum(len(p) for p in pages), seen
    httpd.shutdown()
    httpd.server_close()


def test_search_pages_through_link_next_with_a_bearer_token(server):
    base, n_pages, n_entries, seen = server
    report, sink = convert_paths([f"{base}/everything?page=0"], KEY, token=TOKEN)
    records = list(sink.records())
    assert n_pages > 3
    assert sum(report.read.values()) == n_entries
    assert report.balanced()
    assert len(records) == len(data.FHIR_SYNTHEA_BUNDLES)
    assert sum(1 for p in seen if "everything" in p) >= n_pages
    assert any(p.endswith("/metadata") for p in seen)  # version from the CapabilityStatement


def test_missing_token_is_a_clear_error(server):
    base, *_ = server
    with pytest.raises(ConversionError) as err:
        convert_paths([f"{base}/everything?page=0"], KEY, token="")
    assert "401" in str(err.value) and "everything" in str(err.value)
