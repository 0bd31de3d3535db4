"""The web application in a real browser: Debian's Chromium driven by Playwright against the app
served by uvicorn on a free 127.0.0.1 port (``pytest -m browser``). Without /usr/bin/chromium the
tests skip, or fail under CI=true. A failing test leaves a screenshot in ``test-screenshots/``.

Accessibility is checked with axe-core (tests/web/vendor/axe.min.js, MPL-2.0, vendored unchanged):
no serious or critical violation on any page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.data import ROOT, under_ci
from tests.web.conftest import Server, demo_bundle, demo_model_ref

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "test-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if under_ci():
            pytest.fail("/usr/bin/chromium is missing under CI=true (apt-get install chromium)")
        pytest.skip("Debian's chromium (/usr/bin/chromium) is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the server; a screenshot when the test fails."""
    context = browser.new_context(base_url=server.url)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / (re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name) + ".png")
        pg.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    context.close()


def sign_in(page: Any, server: Server, who: str) -> None:
    page.goto("/signin")
    page.get_by_label("Registry token").fill(server.hub.tokens[who])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious or critical axe-core findings on the current page. axe is served from the page's own
    origin (a routed URL), so the app's Content-Security-Policy stays in force."""
    page.route(
        "**/__axe.min.js", lambda route: route.fulfill(body=AXE.read_text(), content_type="text/javascript")
    )
    page.add_script_tag(url="/__axe.min.js")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_sign_in_and_out_with_a_session_cookie(page: Any, server: Server) -> None:
    sign_in(page, server, "carol")
    assert "carol · curator · hub" in page.locator("#whoami").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "interop_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http here
    assert server.hub.tokens["carol"] not in json.dumps(page.context.cookies())
    page.get_by_role("button", name="Sign out").click()
    assert page.locator("#whoami").count() == 0
    page.goto("/models")
    assert "/signin" in page.url


def test_a_wrong_token_is_refused(page: Any, server: Server) -> None:
    page.goto("/signin")
    page.get_by_label("Registry token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert "That token is not valid" in page.locator("[role=alert]").inner_text()


def test_search_filters_and_shareable_urls(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    page.goto("/models")
    page.get_by_label("Drug name or code").fill("tacrolimus")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#results tbody tr")
    assert rows.count() == 1 and "tacrolimus" in rows.first.inner_text().lower()
    shared = page.url
    assert "drug=tacrolimus" in shared
    page.goto("/models?institution=nobody")
    assert "0 versions found" in page.locator("#count").inner_text()
    page.goto(shared)  # the URL alone gives the same rows
    assert page.locator("#results tbody tr").count() == 1
    page.goto("/models?per_page=1")
    assert "page 1 of" in page.locator("#count").inner_text()
    page.get_by_role("link", name="Next page").click()
    assert "page=2" in page.url and "page 2 of" in page.locator("#count").inner_text()


def test_model_page_card_history_and_validation_evidence(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    hub = server.hub
    page.goto(f"/models/{hub.demo.model_id}")
    assert page.locator("#parameters tbody tr").count() >= 2
    assert "ETA_CL" in page.locator("#random-effects").inner_text()
    assert "mg/L" in page.locator("#observables").inner_text()
    assert page.locator("#badge").inner_text() == "passed"
    assert "simulate" in page.locator("#validation").inner_text()
    assert "validate" in page.locator("#history").inner_text()
    assert page.locator("#btn-publish").count() == 0  # a reader: no curation buttons
    page.locator("#stage-plots[data-ready]").wait_for()
    assert int(page.locator("#stage-plots").get_attribute("data-ready")) >= 2  # simulate + a reference output
    assert "reproduce stage" in page.locator("#stage-plots").inner_text()
    png = page.request.get(page.locator("#stage-png").get_attribute("href"))
    assert png.status == 200 and png.body()[:4] == b"\x89PNG"
    page.goto("/models/sedml-example")
    img = page.locator("img.evidence").first
    img.wait_for()
    assert page.evaluate("(i) => i.complete && i.naturalWidth > 0", img.element_handle())
    with page.expect_download() as dl:
        page.get_by_role("link", name="COMBINE archive (OMEX)").click()
    assert dl.value.suggested_filename.endswith(".omex")


def test_curator_submits_validates_and_publishes(page: Any, server: Server, tmp_path: Path) -> None:
    sign_in(page, server, "carol")
    page.goto("/models")
    src = ROOT / "interop" / "data" / "models"
    page.get_by_label("Model file (SBML, Antimony, OMEX, PharmML)").set_input_files(
        str(src / "mapbayr_001.xml")
    )
    page.get_by_label("Model card (JSON, optional)").set_input_files(str(src / "mapbayr_001.card.json"))
    page.get_by_role("button", name="Submit", exact=True).click()
    assert page.locator("#status").inner_text() == "submitted"
    page.locator("#btn-validate").click()
    assert page.locator("#status").inner_text() == "validated"
    assert page.locator("#badge").inner_text() == "passed"
    page.locator("#btn-publish").click()
    assert page.locator("#status").inner_text() == "published"
    assert "publish" in page.locator("#history").inner_text()


def test_a_reader_sees_no_curation_and_a_forged_post_gets_403(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    hub = server.hub
    page.goto(f"/models/{hub.demo.model_id}")
    assert page.locator("#actions").count() == 0 and page.locator("#submit-form").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(
        f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}/publish", form={"csrf_token": csrf}
    )
    assert r.status == 403 and "needs the curator role" in r.text()


def test_a_post_without_the_csrf_token_is_refused(page: Any, server: Server) -> None:
    sign_in(page, server, "carol")
    hub = server.hub
    r = page.request.post(f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}/deprecate", form={})
    assert r.status == 403 and "CSRF" in r.text()
    r = page.request.post(
        f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}/deprecate",
        form={"csrf_token": "forged"},
    )
    assert r.status == 403
    page.goto(f"/models/{hub.demo.model_id}")
    assert page.locator("#status").inner_text() != "deprecated"


def test_twin_workspace_from_a_fhir_upload_to_a_recommendation(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    page.goto(f"/twin?model={demo_model_ref(server.hub)}")
    page.get_by_label("Or upload a FHIR Bundle or NDJSON file").set_input_files(str(demo_bundle()))
    page.get_by_role("button", name="Upload and import").click()
    assert "Imported 1 patient record" in page.locator(".flash").first.inner_text()
    assert page.locator("#doses tbody tr").count() == 2
    assert "WT" in page.locator("#bound-covariates").inner_text()
    assert page.locator("#levels tbody tr").count() == 4
    page.get_by_label("Target type").select_option("trough")
    page.get_by_label("Low", exact=True).fill("0")
    page.get_by_label("High", exact=True).fill("1")
    page.get_by_label("Amounts (comma-separated)").fill("240, 320, 400")
    page.get_by_label("Intervals in hours").fill("24, 36")
    page.get_by_label("Infusion durations in hours (“-” for as the route gives)").fill("0.5")
    page.get_by_role("button", name="Recommend a regimen").click()
    page.locator("#result").wait_for(timeout=120_000)
    assert page.locator("#etas tbody tr").count() == 2
    chosen = page.locator("#regimens tr.chosen")
    assert chosen.count() == 1 and "(chosen)" in chosen.inner_text()
    assert "probability of meeting all targets" in page.locator("#summary").inner_text()
    page.locator("#figure[data-ready='1']").wait_for()
    assert page.locator("#figure .scatterlayer .trace").count() >= 4  # interval, a priori, MAP, observed
    png = page.request.get(page.locator("#png-link").get_attribute("href"))
    assert png.status == 200 and png.body()[:8] == b"\x89PNG\r\n\x1a\n"
    bundle = page.request.get(page.locator("#fhir-link").get_attribute("href")).json()
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert "MedicationRequest" in kinds
    found = axe_violations(page)  # the result page, with its plot, passes too
    assert found == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]


def test_twin_forecast_from_an_imported_record(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    hub = server.hub
    page.goto(f"/twin?model={demo_model_ref(hub)}&patient={hub.demo.patient_id}&folder=demo")
    page.get_by_role("button", name="Fit and forecast").click()
    page.locator("#result").wait_for(timeout=120_000)
    assert page.locator("#regimens").count() == 0
    page.locator("#figure[data-ready='1']").wait_for()
    names = page.evaluate("() => document.getElementById('figure').data.map(t => t.name)")
    assert {"a priori (population)", "individual (MAP)", "observed"} <= set(names)


def test_validation_dashboard_runs_shows_the_report_and_submits(page: Any, server: Server) -> None:
    sign_in(page, server, "alice")  # a contributor of uni-a
    hub = server.hub
    page.goto("/validation")
    page.get_by_label("Model", exact=True).select_option(demo_model_ref(hub))
    page.get_by_label("Imported cohort").select_option("demo")
    page.get_by_label("Simulations per patient").fill("20")
    page.get_by_role("button", name="Run validation").click()
    page.locator("#validation-result").wait_for(timeout=240_000)
    assert page.locator("#metrics tbody tr").count() > 0
    frame = page.frame_locator("#report-frame")
    assert frame.locator("body").inner_text()
    found = axe_violations(page)
    assert found == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]
    page.locator("#btn-submit-record").click()
    assert "#site-records" in page.url
    assert "uni-a" in page.locator("#site-records").inner_text()
    # The run's VPC and NPDE images came with the record and load on the model page, under the metrics.
    images = page.locator("#site-images img")
    assert images.count() == 3
    for k in range(3):
        images.nth(k).scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=images.nth(k).element_handle()
        )
    assert "uni-a: VPC and pcVPC" in page.locator("#site-images").inner_text()
    found = axe_violations(page)
    assert found == [], [(v["id"], [n["target"] for n in v["nodes"]]) for v in found]


def test_pages_pass_axe_core(page: Any, server: Server) -> None:
    hub = server.hub
    page.goto("/signin")
    assert axe_violations(page) == []
    sign_in(page, server, "carol")
    for path in ("/", "/models", f"/models/{hub.demo.model_id}", "/models/sedml-example", "/validation",
                 f"/twin?model={demo_model_ref(hub)}&patient={hub.demo.patient_id}&folder=demo"):  # fmt: skip
        page.goto(path)
        found = axe_violations(page)
        assert found == [], (path, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in found])


def test_keyboard_reaches_the_skip_link_and_the_search(page: Any, server: Server) -> None:
    sign_in(page, server, "rita")
    page.goto("/models")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.locator("#f-drug").focus()
    page.keyboard.type("gentamicin")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("drug=gentamicin"))
    assert page.locator("#results tbody tr").count() == 1


def test_api_is_served_under_api(page: Any, server: Server) -> None:
    doc = page.request.get("/api/openapi.json").json()
    assert "/models" in doc["paths"]
    r = page.request.get("/api/models", headers={"Authorization": f"Bearer {server.hub.tokens['rita']}"})
    assert r.status == 200 and r.json()["total"] >= 2
