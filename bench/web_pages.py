"""Web page cost: each page's render time minus the JSON API call(s) behind it, at 10, 100 and
1000 models (20 versions each, generated as in bench/registry_search.py), on SQLite.

The issue's bound: no page takes longer than the API call behind it plus 50 ms. Both go through the
same in-process ASGI stack (starlette's TestClient over the real app, registry and templates), so the
difference is what the page adds: session lookup, the validation badge of each row, the template.

    PYTHONPATH=$PWD python bench/web_pages.py [--sizes 10 100 1000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from interop.schema import ModelCard, parse_json  # noqa: E402
from interop.settings import Settings  # noqa: E402
from interop.web import create_web_app  # noqa: E402
from interop.workflows.registry_validation import twin_simulate_check  # noqa: E402
from registry import open_registry  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_registry", ROOT / "bench" / "registry_search.py")
assert _spec is not None and _spec.loader is not None
bench_registry = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_registry)
PER_MODEL = 20


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    xs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    return statistics.median(xs)


def get(client: TestClient, url: str, **kw: object) -> Callable[[], object]:
    def run() -> object:
        r = client.get(url, **kw)  # type: ignore[arg-type]
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
        return r

    return run


def bench_size(n_models: int, repeat: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        url = f"sqlite:///{home / 'registry.sqlite'}"
        bench_registry.generate(url, home / "blobs", n_models * PER_MODEL)
        reg = open_registry(url, home / "blobs")
        token = reg.create_user("bench", "hub", "curator")
        models = ROOT / "interop" / "data" / "models"  # one real model (the generated rows have no blobs)
        card = parse_json(ModelCard, (models / "gentamicin_1cmt.card.json").read_text())
        real = reg.submit((models / "gentamicin_1cmt.xml").read_text(), card, submitted_by="bench")
        reg.validate(real.model_id, real.version, simulate_check=twin_simulate_check)
        reg.close()
        app = create_web_app(Settings(home=home, database_url=url), rate_per_minute=0)
        auth = {"headers": {"Authorization": f"Bearer {token}"}}
        rows = []
        with TestClient(app) as client:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)[1]  # type: ignore[index]
            client.post("/signin", data={"token": token, "csrf_token": csrf})
            mid, v = real.model_id, real.version
            cases = [
                ("search, first page", "/api/models?per_page=20", "/models?per_page=20"),
                ("search by drug", "/api/models?drug=vancomycin", "/models?drug=vancomycin&per_page=50"),
                ("search, text, page 3", "/api/models?text=renal&page=3&per_page=20",
                 "/models?text=renal&page=3&per_page=20"),
            ]  # fmt: skip
            for label, api_url, page_url in cases:
                api = median_ms(get(client, api_url, **auth), repeat)
                page = median_ms(get(client, page_url), repeat)
                rows.append((label, api, page))
            # The model page shows the versions, the report, the audit, the records and the annotations (RDF).
            version = f"/api/models/{mid}/versions/{v}"
            behind = [f"/api/models/{mid}", f"{version}/report", f"/api/models/{mid}/audit?per_page=200",
                      f"{version}/validation-records", f"{version}/export?format=turtle"]  # fmt: skip
            calls = [get(client, u, **auth) for u in behind]
            api = median_ms(lambda: [c() for c in calls], repeat)
            page = median_ms(get(client, f"/models/{mid}?version={v}"), repeat)
            rows.append(("model page (5 API calls)", api, page))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (medians are noisy under load)")
    print(f"{'models':>7} {'page':28} {'API ms':>8} {'page ms':>8} {'page-API ms':>11} {'ratio':>6}")
    worst = 0.0
    for n in args.sizes:
        for label, api, page in bench_size(n, args.repeat):
            worst = max(worst, page - api)
            print(f"{n:>7} {label:28} {api:8.1f} {page:8.1f} {page - api:11.1f} {page / api:6.2f}")
    print(f"worst page overhead over its API call(s): {worst:.1f} ms (bound: 50 ms)")


if __name__ == "__main__":
    main()
