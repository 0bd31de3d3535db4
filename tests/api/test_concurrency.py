"""20 concurrent submitters through the HTTP API (a real uvicorn server on 127.0.0.1) against
PostgreSQL: exactly the expected versions, no duplicate numbers, no lost audit entries. The
same server refuses an oversized chunked upload (no Content-Length) in bounded time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from interop.settings import Settings
from tests.api.conftest import make_users
from tests.clirun import CliRun, invoke
from tests.data import GENTAMICIN_CARD, GENTAMICIN_SBML, POSTGRES_URL, ROOT, require_postgres
from tests.registry.conftest import PG

N = 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], int]]:
    """One uvicorn server for the module, on a fresh PostgreSQL schema (dropped afterwards)."""
    require_postgres(PG)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield from _serve(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", tmp_path_factory.mktemp("srv"))
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _serve(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    settings = Settings(home=tmp_path / "home", database_url=pg_url)
    tokens = make_users(settings)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "INTEROP_HOME": str(settings.home),
        "INTEROP_DATABASE_URL": pg_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop", "registry", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield url, tokens, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.postgres
def test_twenty_concurrent_submitters(server: tuple[str, dict[str, str], int]) -> None:
    url, tokens, _ = server
    base = json.loads(GENTAMICIN_CARD.read_text())
    sbml = GENTAMICIN_SBML.read_bytes()

    def submit(i: int) -> list[tuple[int, bool]]:
        who = "alice"
        out = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens[who]}"}, timeout=120) as c:
            for description in (f"variant {i}", "shared variant"):
                card = {**base, "description": description}
                r = c.post("/models", files={"file": ("g.xml", sbml)}, data={"card": json.dumps(card)})
                assert r.status_code == 201, r.text
                out.append((r.json()["version"], r.json()["deduplicated"]))
        return out

    with ThreadPoolExecutor(N) as pool:
        results = [r for rs in pool.map(submit, range(N)) for r in rs]

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tokens['carol']}"}, timeout=60) as c:
        versions = c.get("/models/gentamicin-1cmt").json()
        audit = c.get("/audit", params={"per_page": 1000}).json()["items"]
    numbers = [v["version"] for v in versions]
    assert numbers == list(range(1, N + 2)), "N unique variants + 1 shared: contiguous, no duplicates"
    descriptions = sorted(v["card"]["description"] for v in versions)
    assert descriptions == sorted([f"variant {i}" for i in range(N)] + ["shared variant"])
    shared = results[1::2]  # each submitter's second submission: the shared content
    assert len({v for v, _ in shared}) == 1, "every submitter of the shared content got the same version"
    assert sum(1 for _, dedup in shared if dedup) == N - 1
    assert not any(dedup for _, dedup in results[0::2])
    submits = [
        a
        for a in audit
        if a["action"] in ("submit", "submit-identical") and a["model_id"] == "gentamicin-1cmt"
    ]
    assert len(submits) == 2 * N, "one audit entry per submission"
    assert sorted(a["version"] for a in submits if a["action"] == "submit") == list(range(1, N + 2))


@pytest.mark.postgres
def test_oversized_chunked_upload_refused(server: tuple[str, dict[str, str], int]) -> None:
    url, tokens, pid = server
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.xml"\r\n\r\n<sbml>'
        chunk = b"<!-- " + b"x" * (1024 * 1024) + b" -->"
        for _ in range(200):  # 200 MB if the server kept reading
            sent += len(chunk)
            yield chunk

    def peak_kib() -> int:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))

    before = peak_kib()
    t0 = time.perf_counter()
    r = httpx.post(
        f"{url}/models",
        content=body(),
        timeout=120,
        headers={
            "Authorization": f"Bearer {tokens['alice']}",
            "Content-Type": "multipart/form-data; boundary=x",
        },
    )
    assert r.status_code == 413 and "upload limit" in r.json()["detail"]
    # httpx sends the whole body before reading the answer; the server discarded it as it came:
    # its peak memory grew by far less than the 200 MB sent.
    assert sent > 200 * 1024 * 1024
    assert peak_kib() - before < 50 * 1024
    assert time.perf_counter() - t0 < 120


@pytest.mark.postgres
def test_cli_against_the_api(server: tuple[str, dict[str, str], int], tmp_path: Path) -> None:
    url, tokens, _ = server
    env: dict[str, str | None] = {
        "INTEROP_HOME": str(tmp_path / "client-home"),
        "INTEROP_API": url,
        "INTEROP_TOKEN": tokens["alice"],
    }

    def run(*args: str) -> CliRun:
        return invoke(["registry", *args], env=env)  # in-process (typer's CliRunner)

    card = json.loads(GENTAMICIN_CARD.read_text())
    card["id"] = "cli-model"
    (tmp_path / "cli.card.json").write_text(json.dumps(card))
    r = run("submit", str(GENTAMICIN_SBML), "--card", str(tmp_path / "cli.card.json"))
    assert r.returncode == 0, r.stderr
    assert "Stored cli-model@1" in r.stdout and "reproduce" in r.stdout
    r = run("show", "cli-model", "--validation")
    assert r.returncode == 0 and "no validation records" in r.stdout and "validated" in r.stdout
    env["INTEROP_TOKEN"] = tokens["rita"]  # a reader cannot publish
    r = run("publish", "cli-model", "1")
    assert r.returncode == 1 and "HTTP 403" in r.stderr
    assert not (tmp_path / "client-home").exists(), "--api mode never opens a local registry"
