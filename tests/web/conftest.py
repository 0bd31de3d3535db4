"""Fixtures: the web app over a fresh SQLite registry holding the demo's model and patient, with a
user of each role (tests/api's USERS); an in-process client and a real uvicorn server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from interop.settings import Settings
from interop.web import create_web_app
from interop.workflows.demo import DemoResult, run_demo
from tests.api.conftest import make_users


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so a fixture can see that the test failed (the
    browser tests' screenshot on failure)."""
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


@dataclass
class Hub:
    settings: Settings
    tokens: dict[str, str]
    demo: DemoResult


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    home = tmp_path_factory.mktemp("webhub") / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'registry.sqlite'}")
    tokens = make_users(settings)
    demo = run_demo(settings)
    from interop.workflows.registry_validation import open_validating_registry
    from tests.data import MODELS
    from tests.sedml.archive import sedml_archive

    reg = open_validating_registry(settings)
    try:  # a second drug to search for, and an archive whose SED-ML plots are validation evidence
        card = (MODELS / "tacrolimus_hao2018.card.json").read_text()
        from interop.schema import ModelCard, parse_json

        reg.submit(
            (MODELS / "tacrolimus_hao2018.xml").read_text(), parse_json(ModelCard, card), submitted_by="setup"
        )
        reg.validate(demo.model_id, demo.model_version)
        stored = reg.submit_file(sedml_archive(), filename="experiment.omex", model_id="sedml-example")
        reg.validate(stored.model_id, stored.version)
    finally:
        reg.close()
    return Hub(settings, tokens, demo)


@dataclass
class Web:
    client: TestClient
    app: FastAPI
    hub: Hub

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of this client's session, read from a page's form."""
        m = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get(path).text)
        assert m, "no CSRF token on the page"
        return m[1]

    def sign_in(self, who: str) -> None:
        r = self.client.post(
            "/signin", data={"token": self.hub.tokens[who], "csrf_token": self.csrf("/signin"), "next": "/"}
        )
        assert r.status_code == 200 and who in r.text, r.text[:500]


@pytest.fixture
def web(hub: Hub) -> Iterator[Web]:
    app = create_web_app(hub.settings, rate_per_minute=0)
    with TestClient(app) as client:
        yield Web(client, app, hub)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    hub: Hub


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[Server]:
    """The real app under uvicorn on a free 127.0.0.1 port, in a thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        create_web_app(hub.settings, rate_per_minute=0), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", hub)
    srv.should_exit = True
    thread.join(10)


def demo_model_ref(hub: Hub) -> str:
    return f"{hub.demo.model_id}@{hub.demo.model_version}"


def demo_bundle() -> Path:
    from tests.data import DEMO

    return DEMO / "gentamicin_patient.json"
