"""The web app in-process (TestClient over the real app, registry and twin): sessions, CSRF, roles,
the API under /api, and ``interop demo --serve``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interop.settings import Settings
from interop.web import create_web_app
from tests.clirun import invoke
from tests.web.conftest import Hub, Web, demo_model_ref


def test_the_api_is_mounted_under_api_with_its_openapi_document(web: Web) -> None:
    assert "/models" in web.client.get("/api/openapi.json").json()["paths"]
    r = web.client.get("/api/models", headers={"Authorization": f"Bearer {web.hub.tokens['rita']}"})
    assert r.status_code == 200 and r.json()["total"] >= 1
    assert web.client.get("/api/models").status_code == 401  # the page session never authorises the API


def test_session_cookie_flags_and_secure_behind_tls(hub: Hub) -> None:
    app = create_web_app(hub.settings, rate_per_minute=0)
    with TestClient(app, base_url="https://hub.example") as client:
        cookie = client.get("/signin").headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    with TestClient(app) as client:
        assert "secure" not in client.get("/signin").headers["set-cookie"].lower()


def test_sign_in_rotates_the_session_id(web: Web) -> None:
    web.client.get("/signin")
    before = web.client.cookies.get("interop_session")
    web.sign_in("rita")
    assert web.client.cookies.get("interop_session") not in (None, before)


def test_reader_forged_posts_get_403_and_change_nothing(web: Web) -> None:
    web.sign_in("rita")
    hub = web.hub
    base = f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}"
    for action in ("publish", "deprecate", "withdraw", "validate"):
        r = web.client.post(f"{base}/{action}", data={"csrf_token": web.csrf()})
        assert r.status_code == 403, action
    assert "status-withdrawn" not in web.client.get(f"/models/{hub.demo.model_id}").text


def test_a_contributor_of_another_institution_cannot_validate(web: Web) -> None:
    web.sign_in("bob")  # uni-b; the demo model belongs to the demo card's institution
    hub = web.hub
    r = web.client.post(
        f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}/validate",
        data={"csrf_token": web.csrf()},
    )
    assert r.status_code == 403


def test_csrf_token_is_required_and_tied_to_the_session(web: Web, hub: Hub) -> None:
    web.sign_in("carol")
    other = Web(TestClient(create_web_app(hub.settings, rate_per_minute=0)), web.app, hub)
    foreign = other.csrf("/signin")  # a valid token of another session
    base = f"/models/{hub.demo.model_id}/versions/{hub.demo.model_version}"
    assert web.client.post(f"{base}/deprecate", data={}).status_code == 403
    assert web.client.post(f"{base}/deprecate", data={"csrf_token": foreign}).status_code == 403
    assert web.client.post("/signout", data={}).status_code == 403
    # the refusals are in the audit log of the registry the pages share with the API
    from interop.workflows.registry_session import registry_session

    with registry_session(hub.settings) as reg:
        denied = [e.detail for e in reg.audit() if e.action == "denied" and "CSRF" in e.detail["reason"]]
    assert any(d["request"] == f"POST {base}/deprecate" for d in denied), denied


def test_a_revoked_token_ends_the_session(web: Web, hub: Hub) -> None:
    from tests.api.conftest import make_users

    web.sign_in("rita")
    assert web.client.get("/models").status_code == 200
    fresh = make_users(hub.settings)  # re-keys every user: rita's old token is revoked
    try:
        r = web.client.get("/models", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    finally:
        hub.tokens.update(fresh)


def test_sign_in_never_redirects_off_site(web: Web) -> None:
    r = web.client.post(
        "/signin",
        data={"token": web.hub.tokens["rita"], "csrf_token": web.csrf("/signin"), "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_jobs_belong_to_their_session(web: Web, hub: Hub) -> None:
    web.sign_in("rita")
    r = web.client.post(
        "/twin/run",
        data={
            "csrf_token": web.csrf(),
            "model": demo_model_ref(hub),
            "patient": hub.demo.patient_id,
            "folder": "demo",
        },
        follow_redirects=False,
    )
    job = re.search(r"job=([\w-]+)", r.headers["location"])[1]  # type: ignore[index]
    assert web.client.get(f"/jobs/{job}").status_code == 200
    with TestClient(web.app) as other:
        assert other.get(f"/jobs/{job}").status_code == 404


def test_bad_regimen_input_is_a_clear_error(web: Web, hub: Hub) -> None:
    web.sign_in("rita")
    r = web.client.post(
        "/twin/run",
        data={
            "csrf_token": web.csrf(),
            "model": demo_model_ref(hub),
            "patient": hub.demo.patient_id,
            "folder": "demo",
            "kind": "recommend",
            "target_high": "2",
            "amounts": "240, lots",
            "intervals": "24",
        },
    )
    assert r.status_code == 400 and "amounts: &#39;lots&#39; is not a number" in r.text


def test_cohort_folders_are_only_those_listed(web: Web) -> None:
    web.sign_in("alice")
    r = web.client.post(
        "/validation/run",
        data={"csrf_token": web.csrf(), "model": demo_model_ref(web.hub), "cohort": "../../etc"},
    )
    assert r.status_code == 404


def test_demo_serve_prints_the_workspace_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    # The server loop blocks until interrupted: record the app it would serve instead, then open the URL.
    monkeypatch.setattr(
        "interop.cli.serve.run_server", lambda app, host, port: served.append((app, host, port))
    )
    home = tmp_path / "home"
    r = invoke(
        ["demo", "--serve", "--port", "8765"], env={"INTEROP_HOME": str(home), "INTEROP_DATABASE_URL": None}
    )
    assert r.returncode == 0, r.stderr
    url = re.search(r"http://127\.0\.0\.1:8765(/twin\?\S+)", " ".join(r.stdout.split()))
    assert url and served and served[0][1:] == ("127.0.0.1", 8765)
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'registry.sqlite'}")
    from tests.api.conftest import make_users

    tokens = make_users(settings)
    web = Web(TestClient(served[0][0]), served[0][0], Hub(settings, tokens, None))  # type: ignore[arg-type]
    with web.client:
        web.sign_in("rita")
        page = web.client.get(url[1]).text
    assert 'id="binding"' in page and "gentamicin" in page


def test_latest_reports_in_one_query_equal_each_report(web: Web) -> None:
    from interop.api.deps import registry_for

    registry = registry_for(web.app.state.api_app)
    keys = [(i.model_id, i.version) for i in registry.search(per_page=1000).items]
    batched = registry.latest_reports(keys)
    for key in keys:
        one = registry.report(*key)
        assert (one is None and key not in batched) or batched[key] == one
    assert batched, "the hub's fixture validates its models"


def test_search_rows_show_the_validation_badge(web: Web) -> None:
    web.sign_in("rita")
    tacrolimus = web.client.get("/models?drug=tacrolimus").text  # submitted, never validated
    assert tacrolimus.count('badge-not">not validated<') == 1 and "badge-passed" not in tacrolimus
    demo = web.client.get(f"/models?text={web.hub.demo.model_id.split('-')[0]}&institution=").text
    assert 'badge-passed">passed<' in demo


def test_serve_command_builds_the_web_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    # The server loop blocks until interrupted: record what it would serve instead.
    monkeypatch.setattr(
        "interop.cli.serve.run_server", lambda app, host, port: served.append((app, host, port))
    )
    r = invoke(
        ["serve", "--port", "8123"],
        env={"INTEROP_HOME": str(tmp_path / "home"), "INTEROP_DATABASE_URL": None},
    )
    assert r.returncode == 0, r.stderr
    assert "http://127.0.0.1:8123/api" in r.stdout and served[0][1:] == ("127.0.0.1", 8123)
    with TestClient(served[0][0]) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/openapi.json").status_code == 200


def test_the_remote_client_works_against_api_under_a_prefix(server: Any) -> None:
    from interop.workflows.remote import RemoteRegistry

    remote = RemoteRegistry(f"{server.url}/api", server.hub.tokens["rita"], timeout=30)
    try:
        found = remote.search(drug="gentamicin")
        assert found["total"] >= 1
        assert remote.sbml(server.hub.demo.model_id, server.hub.demo.model_version).startswith("<?xml")
    finally:
        remote.close()


def test_uploads_are_seen_only_by_their_institution(web: Web) -> None:
    from tests.web.conftest import demo_bundle

    web.sign_in("alice")  # uni-a
    r = web.client.post(
        "/twin/upload",
        data={"csrf_token": web.csrf()},
        files={"file": ("bundle.json", demo_bundle().read_bytes(), "application/json")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "folder=web%2Funi-a" in r.headers["location"]
    pid = re.search(r"patient=(\w+)", r.headers["location"])[1]  # type: ignore[index]
    assert pid in web.client.get("/twin").text
    web.client.post("/signout", data={"csrf_token": web.csrf()})
    web.sign_in("bob")  # uni-b: neither listed nor loadable
    assert "web/uni-a" not in web.client.get("/twin").text
    page = web.client.get(f"/twin?model={demo_model_ref(web.hub)}&patient={pid}&folder=web/uni-a").text
    assert 'id="binding"' not in page and "no imported record" in page


def test_finished_jobs_take_their_folder_with_them(tmp_path: Path) -> None:
    import time

    from interop.web.jobs import KEEP_S, MAX_JOBS, JobRunner

    runner = JobRunner(1)
    first = tmp_path / "job0"
    first.mkdir()
    jobs = [runner.submit("me", "t", lambda progress: 1, workdir=first)]
    while jobs[0].state != "done":
        time.sleep(0.01)
    jobs[0].finished_at = time.monotonic() - KEEP_S - 1  # finished long ago
    jobs.append(runner.submit("me", "t", lambda progress: 2))  # submitting prunes the stale job
    assert not first.exists() and runner.get(jobs[0].id, "me") is None
    assert runner.get(jobs[1].id, "other") is None and MAX_JOBS > 1
    runner.shutdown()


def test_an_oversized_upload_is_refused_before_it_is_read(hub: Hub) -> None:
    app = create_web_app(hub.settings, rate_per_minute=0, max_upload_bytes=10_000)
    with TestClient(app) as client:
        web = Web(client, app, hub)
        web.sign_in("rita")
        r = client.post(
            "/twin/upload", data={"csrf_token": web.csrf()}, files={"file": ("big.json", b"x" * 200_000)}
        )
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("uri", "link"),
    [
        ("urn:miriam:chebi:CHEBI%3A27882", "https://identifiers.org/CHEBI:27882"),
        ("urn:miriam:taxonomy:9606", "https://identifiers.org/taxonomy:9606"),
        ("http://identifiers.org/atc:J01GB03", "https://identifiers.org/atc:J01GB03"),
        ("http://purl.bioontology.org/ontology/RXNORM/1596450", "https://identifiers.org/rxnorm:1596450"),
        ("ftp://example.org/x", None),
    ],
)
def test_annotations_link_to_identifiers_org(uri: str, link: str | None) -> None:
    from interop.web.registry_pages import identifiers_link

    assert identifiers_link(uri) == link


def test_model_page_links_its_annotations(web: Web) -> None:
    web.sign_in("rita")
    page = web.client.get(f"/models/{web.hub.demo.model_id}").text
    table = page[page.index('id="annotations"') : page.index("</table>", page.index('id="annotations"'))]
    assert 'href="https://identifiers.org/atc:J01GB03"' in table
    assert 'href="https://identifiers.org/rxnorm:' in table and "<td>the model</td>" in table


def test_site_records_side_by_side(web: Web) -> None:
    from interop.api.deps import registry_for
    from interop.schema import ValidationRecord
    from interop.schema.validation import MetricValue

    registry = registry_for(web.app.state.api_app)
    model = registry.search(drug="tacrolimus").items[0]
    for site, bias, low in (("site-north", 4.2, 1.5), ("site-south", -7.5, None)):
        high = None if low is None else 6.1
        metrics = (
            MetricValue(
                name="mpe_percent",
                setting="a-priori",
                observable="tac",
                value=bias,
                ci_low=low,
                ci_high=high,
                n=4,
            ),
            MetricValue(name=f"only_{site}", setting="a-posteriori", observable="tac", value=1.0, n=4),
        )
        registry.add_validation_record(
            ValidationRecord(
                model_id=model.model_id,
                model_version=model.version,
                model_sha256=model.sbml_sha256,
                site=site,
                software="test",
                dataset_fingerprint="0" * 64,
                n_patients=12,
                n_levels=40,
                metrics=metrics,
            )
        )
    web.sign_in("rita")
    page = web.client.get(f"/models/{model.model_id}?version={model.version}").text
    table = page[
        page.index('id="site-comparison"') : page.index("</table>", page.index('id="site-comparison"'))
    ]
    assert table.index("site-north") < table.index("site-south")
    row = next(r for r in table.split("<tr>") if "mpe_percent" in r)
    assert re.findall(r'<td class="num">([^<]*)</td>', row) == ["4.2 (1.5 – 6.1)", "-7.5"]
    only = next(r for r in table.split("<tr>") if "only_site-south" in r)
    assert re.findall(r'<td class="num">([^<]*)</td>', only) == ["", "1"]


def test_site_images_side_by_side_under_the_metrics(web: Web) -> None:
    """Each site's VPC/NPDE images, one row per plot, one column per site; a site record without
    images (sent before images existed) still shows its metrics and an empty cell."""
    from interop.api.deps import registry_for
    from interop.schema import ValidationRecord
    from interop.schema.validation import MetricValue
    from tests.registry.test_site_images import png

    registry = registry_for(web.app.state.api_app)
    model = registry.get("sedml-example")
    vpc_a, vpc_b, qq_b = png("VPC a"), png("VPC b"), png("QQ b")
    sent: dict[str, int] = {}
    for site, images in (
        ("site-old", []),
        ("site-a", [("VPC and pcVPC (y)", vpc_a)]),
        ("site-b", [("NPDE QQ plot (y)", qq_b), ("VPC and pcVPC (y)", vpc_b)]),
    ):
        sent[site] = registry.add_validation_record(
            ValidationRecord(
                model_id=model.model_id,
                model_version=model.version,
                model_sha256=model.sbml_sha256,
                site=site,
                software="test",
                dataset_fingerprint="0" * 64,
                n_patients=5,
                n_levels=20,
                metrics=(
                    MetricValue(name="mpe_percent", setting="a-priori", observable="y", value=1.5, n=20),
                ),
            ),
            images=images,
        )
    web.sign_in("rita")
    page = web.client.get(f"/models/{model.model_id}?version={model.version}").text
    section = page[
        page.index('id="site-records"') : page.index("</section>", page.index('id="site-records"'))
    ]
    assert section.index('id="site-comparison"') < section.index('id="site-images"')  # under the metrics
    rows = section.split('class="site-image-row"')[1:]
    assert len(rows) == 2 and "VPC and pcVPC (y)" in rows[0] and "NPDE QQ plot (y)" in rows[1]
    base = f"/models/{model.model_id}/versions/{model.version}/site-records"
    srcs = [re.findall(r'<img src="([^"]+)"', r) for r in rows]
    assert srcs == [
        [f"{base}/{sent['site-a']}/images/0.png", f"{base}/{sent['site-b']}/images/1.png"],
        [f"{base}/{sent['site-b']}/images/0.png"],
    ]
    assert rows[0].count("<figure") == 3 and rows[0].count("No image from this site") == 1  # site-old
    assert 'alt="VPC and pcVPC (y) at site-a"' in rows[0]
    for src, data in ((srcs[0][0], vpc_a), (srcs[0][1], vpc_b), (srcs[1][0], qq_b)):
        r = web.client.get(src)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == data
    assert web.client.get(f"{base}/{sent['site-old']}/images/0.png").status_code == 404
    assert (
        web.client.get(
            f"/models/{web.hub.demo.model_id}/versions/1/site-records/{sent['site-a']}/images/0.png"
        ).status_code
        == 404
    )
    web.client.post("/signout", data={"csrf_token": web.csrf()})
    anon = web.client.get(srcs[0][0], follow_redirects=False)
    assert anon.status_code in (303, 401) and anon.content != vpc_a


def test_a_model_whose_records_have_no_images_still_shows_them(web: Web) -> None:
    from interop.api.deps import registry_for
    from interop.schema import ValidationRecord

    registry = registry_for(web.app.state.api_app)
    model = registry.get(web.hub.demo.model_id)
    registry.add_validation_record(
        ValidationRecord(
            model_id=model.model_id,
            model_version=model.version,
            model_sha256=model.sbml_sha256,
            site="site-plain",
            software="test",
            dataset_fingerprint="0" * 64,
            n_patients=5,
            n_levels=20,
        )
    )
    web.sign_in("rita")
    r = web.client.get(f"/models/{model.model_id}?version={model.version}")
    assert r.status_code == 200 and "site-plain" in r.text
    assert 'id="no-site-images"' in r.text and 'id="site-images"' not in r.text


def test_unknown_pages_are_404_pages(web: Web) -> None:
    r = web.client.get("/no-such-page")
    assert (
        r.status_code == 404 and "Not found" in r.text and r.headers["content-type"].startswith("text/html")
    )
    web.sign_in("rita")
    r = web.client.get("/models/no-such-model")
    assert r.status_code == 404 and "no-such-model" in r.text


def test_an_ndjson_upload_imports_its_patient(web: Web) -> None:
    import json

    from tests.web.conftest import demo_bundle

    bundle = json.loads(demo_bundle().read_text())
    text = json.dumps(bundle)  # NDJSON has no Bundle: its references name Type/id, not the entries' urn:uuid
    for e in bundle["entry"]:
        text = text.replace(f'"{e["fullUrl"]}"', f'"{e["resource"]["resourceType"]}/{e["resource"]["id"]}"')
    ndjson = "\n".join(json.dumps(e["resource"]) for e in json.loads(text)["entry"]).encode()
    web.sign_in("rita")
    r = web.client.post(
        "/twin/upload",
        data={"csrf_token": web.csrf(), "model": demo_model_ref(web.hub)},
        files={"file": ("export.ndjson", ndjson, "application/fhir+ndjson")},
    )
    assert r.status_code == 200 and "Imported 1 patient record" in r.text and "0 rejected" in r.text
    assert 'id="binding"' in r.text and r.text.count("<td>gentamicin</td>") == 4  # its four levels
