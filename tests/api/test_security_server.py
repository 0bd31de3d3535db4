"""Every attack of issue 11, driven against the REAL API server: uvicorn on 127.0.0.1 (a free
port, a thread of this process so the test can also look at the store), over a SQLite registry.

SSRF is checked from the other side too: a tiny HTTP server on 127.0.0.1 records every request,
and must have received none after the SPARQL attacks.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from interop.api import create_app
from interop.settings import Settings
from registry import Registry
from tests.api.conftest import make_users
from tests.data import BIOMD321_OMEX, GENTAMICIN_CARD, GENTAMICIN_SBML

M = "gentamicin-1cmt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    tokens: dict[str, str]
    app: Any

    def c(self, who: str | None = None, token: str | None = None) -> httpx.Client:
        tok = token or (self.tokens[who] if who else None)
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    @property
    def registry(self) -> Registry:
        from interop.api.deps import registry_for

        return registry_for(self.app)


def _serve(app: Any) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("sec") / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'registry.sqlite'}")
    tokens = make_users(settings)
    app = create_app(settings, max_upload_bytes=2_000_000, rate_per_minute=100_000)
    for url in _serve(app):
        s = Server(url, tokens, app)
        with s.c("alice") as c:
            card = GENTAMICIN_CARD.read_text()
            r = c.post(
                "/models", files={"file": ("g.xml", GENTAMICIN_SBML.read_bytes())}, data={"card": card}
            )
            assert r.status_code == 201, r.text
        yield s


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        _Recorder.hits.append(self.path)
        body = b"<http://evil/s> <http://evil/p> <http://evil/o> ."
        self.send_response(200)
        self.send_header("Content-Type", "text/turtle")
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def bait() -> Iterator[str]:
    """A loopback HTTP server that records every request it gets."""
    _Recorder.hits = []
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()


def _no_internals(r: httpx.Response) -> None:
    """A 4xx (or a documented 5xx) with a one-line JSON reason and no server internals."""
    body = r.text
    assert (
        "Traceback" not in body
        and "/tmp" not in body
        and "/work" not in body
        and "sqlite" not in body.lower()
    )
    assert "psycopg" not in body and "sqlalchemy" not in body.lower()
    assert "\n" not in r.json()["detail"]


# ------------------------------------------------------------------ finding 1: SSRF
@pytest.mark.parametrize(
    "query",
    [
        "SELECT ?s WHERE { SERVICE <{bait}> { ?s ?p ?o } }",
        "SELECT ?s WHERE { ?x ?y ?z . { SELECT ?s WHERE { SERVICE SILENT <{bait}> { ?s ?p ?o } } } }",
        "SELECT ?s FROM <{bait}> WHERE { ?s ?p ?o }",
        "SELECT ?s FROM NAMED <{bait}> WHERE { ?s ?p ?o }",
        "SELECT ?s FROM <file:///etc/passwd> WHERE { ?s ?p ?o }",
        "LOAD <{bait}>",
        "SELECT ?s WHERE { GRAPH ?g { ?s ?p ?o } }",
        "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_sparql_never_fetches_anything(srv: Server, bait: str, query: str) -> None:
    with srv.c("rita") as c:
        r = c.get("/sparql", params={"query": query.replace("{bait}", bait)})
    assert r.status_code == 400, r.text
    _no_internals(r)
    time.sleep(0.2)
    assert _Recorder.hits == [], "the registry made a request on a reader's behalf"


def test_sparql_still_answers_over_its_own_graph(srv: Server) -> None:
    with srv.c("rita") as c:
        r = c.get("/sparql", params={"query": "SELECT ?t WHERE { ?v <http://purl.org/dc/terms/title> ?t }"})
    assert r.status_code == 200 and r.json(), r.text


def test_sparql_time_and_size_limits(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry.sparql as sp

    monkeypatch.setattr(sp, "MAX_ROWS", 5)
    with srv.c("rita") as c:
        big = c.get("/sparql", params={"query": "SELECT * WHERE { ?s ?p ?o }"})
    # The deadline alone (a row limit out of reach): a deadline already passed stops the query at
    # its first triple read, whatever the machine's speed.
    monkeypatch.setattr(sp, "MAX_ROWS", 10**9)
    monkeypatch.setattr(sp, "QUERY_SECONDS", 0.0)
    with srv.c("rita") as c:
        slow = c.get(
            "/sparql", params={"query": "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } ORDER BY ?i"}
        )
    assert big.status_code == 400 and "more than 5 result rows" in big.json()["detail"]
    assert slow.status_code == 400 and "longer than" in slow.json()["detail"]


# ---------------------------------------------------------- finding 2: tokens
def _new_user(srv: Server, name: str, role: str = "reader", days: float = 90) -> str:
    with srv.c("carol") as c:
        r = c.post(
            "/users", json={"name": name, "institution": "uni-a", "role": role, "expires_in_days": days}
        )
    assert r.status_code == 201, r.text
    return r.json()["token"]  # type: ignore[no-any-return]


def test_revoked_rekeyed_deactivated_and_expired_tokens_get_401_at_once(srv: Server) -> None:
    tok = _new_user(srv, "tom")
    with srv.c(token=tok) as c:
        assert c.get("/models").status_code == 200
    with srv.c("carol") as c:
        assert c.post("/users/tom/revoke").json() == {"revoked": 1}
    with srv.c(token=tok) as c:
        assert c.get("/models").status_code == 401
    # Re-keying gives a new token and leaves the old one dead.
    tok2 = _new_user(srv, "tom")
    tok3 = _new_user(srv, "tom")
    with srv.c(token=tok2) as c:
        assert c.get("/models").status_code == 401
    with srv.c(token=tok3) as c:
        assert c.get("/models").status_code == 200
    with srv.c("carol") as c:
        assert c.post("/users/tom/deactivate").status_code == 204
        users = {u["name"]: u for u in c.get("/users").json()}
    assert users["tom"]["active"] is False and users["tom"]["active_tokens"] == 0
    with srv.c(token=tok3) as c:
        assert c.get("/models").status_code == 401
    short = _new_user(srv, "tim", days=1.5 / 86400)  # 1.5 seconds
    with srv.c(token=short) as c:
        assert c.get("/models").status_code == 200
        time.sleep(2)
        assert c.get("/models").status_code == 401
    # Default lifetime is 90 days.
    with srv.c("carol") as c:
        exp = dt.datetime.fromisoformat({u["name"]: u for u in c.get("/users").json()}["rita"]["expires_at"])
    days = (exp.replace(tzinfo=exp.tzinfo or dt.UTC) - dt.datetime.now(dt.UTC)).days
    assert 88 <= days <= 90


def test_only_token_hashes_are_stored(srv: Server) -> None:
    db = Path(srv.registry.database_url.removeprefix("sqlite:///")).read_bytes()
    for tok in srv.tokens.values():
        assert tok.encode() not in db


def test_users_api_is_for_curators_only(srv: Server) -> None:
    with srv.c("alice") as c:
        assert c.get("/users").status_code == 403
        assert c.post("/users/rita/revoke").status_code == 403


# ------------------------------------------------------------- finding 3: ids
BAD_IDS = ["../../../etc/passwd", "a/b", "<script>", "a\x00b", "has space", "x" * 100, "1abc", "-x", ""]


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
def test_bad_ids_refused_at_submit(srv: Server, bad: str) -> None:
    with srv.c("alice") as c:
        r = c.post("/models", files={"file": ("g.xml", GENTAMICIN_SBML.read_bytes())}, data={"model_id": bad})
    if bad == "":  # an empty form field means "no id": derived from the file name, a valid id
        assert r.status_code in (201, 400), r.text
        return
    assert r.status_code in (400, 422), r.text
    _no_internals(r)
    assert "^[A-Za-z][A-Za-z0-9._-]{0,63}$" in r.text
    ids = {v.model_id for v in srv.registry.search(per_page=1000).items}
    assert bad not in ids


@pytest.mark.parametrize(
    "path", ["/models/..%2F..%2Fetc/versions/1", "/models/%3Cscript%3E", "/models/a%00b"]
)
def test_bad_ids_refused_on_read(srv: Server, path: str) -> None:
    with srv.c("rita") as c:
        r = c.get(path)
    assert r.status_code in (404, 422), r.text


# ------------------------------------------------------- finding 9: leaks/crashes
@pytest.mark.parametrize(
    "path,params",
    [
        (f"/models/{M}/versions/99999999999999999999", {}),
        (f"/models/{M}/versions/2147483648", {}),
        ("/models", {"page": 10**30}),
        ("/models", {"page": 999999, "per_page": 1000}),
        ("/models", {"text": "a\x00b"}),
        ("/models", {"drug": "\x00"}),
        ("/audit", {"page": 10**12}),
        ("/sparql", {"query": "SELECT ?s WHERE { GRAPH <x:y> { ?s ?p ?o } }"}),
        ("/sparql", {"query": "SELECT ?s WHERE {"}),
        ("/sparql", {"query": "\x00"}),
    ],
)
def test_client_errors_are_4xx_one_line(srv: Server, path: str, params: dict[str, Any]) -> None:
    with srv.c("carol") as c:
        r = c.get(path, params=params)
    assert 400 <= r.status_code < 500 or (r.status_code == 200 and path == "/models"), r.text
    if r.status_code >= 400:
        _no_internals(r)


def test_tampered_blob_is_500_without_paths_and_audited(srv: Server) -> None:
    with srv.c("alice") as c:
        raw = GENTAMICIN_SBML.read_text().replace('id="gentamicin_1cmt"', 'id="tamper_me"')
        r = c.post("/models", files={"file": ("tamper-me.xml", raw.encode())})
        assert r.status_code == 201, r.text
    sha = r.json()["sbml_sha256"]
    p = srv.registry.blobs.path(sha)
    p.write_bytes(p.read_bytes().replace(b"tamper_me", b"tamper_it", 1))
    with srv.c("rita") as c:
        r = c.get("/models/tamper-me/versions/1/sbml")
    assert r.status_code == 500 and "hash" in r.json()["detail"]
    _no_internals(r)
    assert str(p) not in r.text
    assert any(e.action == "integrity-fault" and e.model_id == "tamper-me" for e in srv.registry.audit())
    p.write_bytes(raw.encode())  # put it back for the other tests


# -------------------------------------------------------------- finding 6: zip-slip
def _omex_with(entry: str) -> bytes:
    good = zipfile.ZipFile(io.BytesIO(BIOMD321_OMEX.read_bytes()))
    manifest = good.read("manifest.xml").decode()
    manifest = manifest.replace(
        "</omexManifest>", f'<content location="{entry}" format="text/plain"/></omexManifest>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info in good.infolist():
            if info.filename != "manifest.xml":
                z.writestr(info, good.read(info))
        z.writestr("manifest.xml", manifest)
        z.writestr(entry, b"evil")
    return buf.getvalue()


@pytest.mark.parametrize("entry", ["../../../../tmp/x", "..\\..\\evil.ant", "/etc/cron.d/x", "a/../../b"])
def test_zip_slip_entries_refused(srv: Server, entry: str) -> None:
    with srv.c("alice") as c:
        r = c.post("/models", files={"file": ("slip.omex", _omex_with(entry))}, data={"model_id": "slip"})
    assert r.status_code == 400 and "unsafe entry name" in r.json()["detail"], r.text
    assert "slip" not in {v.model_id for v in srv.registry.search(per_page=1000).items}


# ------------------------------------------------ finding 12: withdraw, rate, CORS
def test_withdrawn_version_leaves_search_and_binding(srv: Server) -> None:
    with srv.c("alice") as c:
        raw = GENTAMICIN_SBML.read_text().replace('id="gentamicin_1cmt"', 'id="gone"')
        assert c.post("/models", files={"file": ("gone.xml", raw.encode())}).status_code == 201
    with srv.c("alice") as c:
        assert c.post("/models/gone/versions/1/withdraw").status_code == 403
    with srv.c("carol") as c:
        assert c.post("/models/gone/versions/1/withdraw", params={"reason": "wrong data"}).status_code == 204
        assert [i for i in c.get("/models", params={"model_id": "gone"}).json()["items"]] == []
        assert c.get("/models/gone/versions/1/sbml").status_code == 410
        assert c.get("/models", params={"status": "withdrawn"}).json()["total"] >= 1
    sha = srv.registry.versions("gone")[0].sbml_sha256
    assert srv.registry.blobs.path(sha).exists(), "the bytes stay for audit"


def test_rate_limit_per_token(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    tokens = make_users(settings)
    for url in _serve(create_app(settings, rate_per_minute=5)):
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['rita']}"}) as c:
            codes = [c.get("/models").status_code for _ in range(8)]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['carol']}"}) as c:
            other = c.get("/models").status_code
    assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
    assert other == 200, "the limit is per token"


def test_cors_off_by_default_and_configurable(srv: Server, tmp_path: Path) -> None:
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    with srv.c() as c:
        r = c.options("/models", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'r.sqlite'}")
    for url in _serve(create_app(settings, cors_origins=["https://ok.example"])):
        with httpx.Client(base_url=url) as c:
            ok = c.options("/models", headers={**pre, "Origin": "https://ok.example"})
            bad = c.options("/models", headers=pre)
    assert ok.headers.get("access-control-allow-origin") == "https://ok.example"
    assert "access-control-allow-origin" not in bad.headers


# ------------------------------------------------------------ finding 11: audit
def test_audit_is_paged_filtered_and_records_denials(srv: Server) -> None:
    with srv.c(token="forged-token") as c:
        assert c.get("/models").status_code == 401
    with srv.c("rita") as c:
        assert c.get("/audit").status_code == 403
    with srv.c("carol") as c:
        page = c.get("/audit", params={"action": "denied", "per_page": 1}).json()
        assert page["per_page"] == 1 and len(page["items"]) == 1 and page["total"] >= 2
        mine = c.get("/audit", params={"action": "denied", "actor": "rita", "per_page": 1000}).json()["items"]
        assert mine and all(a["actor"] == "rita" for a in mine)
        assert c.get("/audit", params={"model_id": M, "action": "submit"}).json()["total"] == 1
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        assert c.get("/audit", params={"since": later}).json()["total"] == 0
    report = srv.registry.verify(actor="test")
    assert report.ok, report.faults


def test_openapi_documents_the_id_rule(srv: Server) -> None:
    doc = httpx.get(f"{srv.url}/openapi.json").json()
    params = doc["paths"]["/models/{model_id}"]["get"]["parameters"]
    assert any(p["schema"].get("pattern") == "^[A-Za-z][A-Za-z0-9._-]{0,63}$" for p in params)
    assert json.dumps(doc).count("/withdraw") == 1
