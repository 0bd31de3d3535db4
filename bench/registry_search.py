"""Registry benchmark: submit + validate time for the shared SBML models, and search latency
(median, p95) over 10,000 generated model versions on SQLite and PostgreSQL.

Baselines, run in the same process:
- submit + validate: the irreducible work on the same file, done directly with the libraries
  (libsbml read + consistency check, libRoadRunner load + simulate) without the registry;
- search: a naive registry that loads every version with its drugs and annotations and filters
  in Python (what a list-then-filter client would do).

    PYTHONPATH=$PWD python bench/registry_search.py [--versions 10000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import libsbml  # noqa: E402
import roadrunner  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from interop.schema import ATC, RXNORM, ModelCard, parse_json  # noqa: E402
from interop.workflows.registry_validation import twin_simulate_check  # noqa: E402
from registry import SearchQuery, open_registry  # noqa: E402
from registry.db import AnnotationRow, DrugRow, ModelRow, VersionRow  # noqa: E402
from registry.formats import detect_format, get_format  # noqa: E402
from tests.data import ABSORPTION_SBML, BIOMD321_OMEX, GENTAMICIN_CARD, GENTAMICIN_SBML, POSTGRES_URL  # noqa: E402

DRUGS = [
    ("gentamicin", "J01GB03", "1596450"),
    ("vancomycin", "J01XA01", "11124"),
    ("amikacin", "J01GB06", "641"),
    ("tobramycin", "J01GB01", "10627"),
    ("warfarin", "B01AA03", "11289"),
    ("tacrolimus", "L04AD02", "42316"),
    ("ciclosporin", "L04AD01", "3008"),
    ("busulfan", "L01AB01", "1828"),
    ("meropenem", "J01DH02", "29561"),
    ("piperacillin", "J01CA12", "8339"),
    ("levodopa", "N04BA01", "6375"),
    ("phenytoin", "N03AB02", "8183"),
    ("valproate", "N03AG01", "11118"),
    ("lithium", "N05AN01", "6448"),
    ("digoxin", "C01AA05", "3407"),
    ("theophylline", "R03DA04", "10438"),
    ("methotrexate", "L01BA01", "6851"),
    ("voriconazole", "J02AC03", "121243"),
]
WORDS = (
    "one compartment two three oral intravenous infusion renal hepatic paediatric neonatal adult obese "
    "critically ill population pharmacokinetic covariate clearance volume absorption allometric"
).split()


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# --------------------------------------------------------------- submit + validate
def baseline_direct(raw: bytes, name: str) -> None:
    fmt = detect_format(raw, source=name)
    sbml, _ = get_format(fmt).load(raw, source=name)
    doc = libsbml.readSBMLFromString(sbml)
    doc.checkConsistency()
    r = roadrunner.RoadRunner(sbml)
    r.simulate(0, 12, 50)


def bench_submit(url: str, blob_dir: Path, label: str) -> None:
    card = parse_json(ModelCard, GENTAMICIN_CARD.read_text())
    files = [
        (ABSORPTION_SBML.name, ABSORPTION_SBML.read_bytes(), None),
        (BIOMD321_OMEX.name, BIOMD321_OMEX.read_bytes(), None),
        (GENTAMICIN_SBML.name, GENTAMICIN_SBML.read_bytes(), card),
    ]
    reg = open_registry(url, blob_dir, simulate_check=twin_simulate_check)
    print(f"\n== submit + validate ({label}) ==")
    print(f"{'model':<30} {'registry s':>11} {'direct s':>9} {'ratio':>6}")
    try:
        for i, (name, raw, c) in enumerate(files):
            base = statistics.median(timed(lambda raw=raw, name=name: baseline_direct(raw, name), 3))
            times = []
            for k in range(3):  # new content each round so nothing is deduplicated
                variant = c.replace(description=f"bench {k}") if c else None
                mid = None if c else f"bench-{i}-{k}"
                t0 = time.perf_counter()
                s = reg.submit_file(raw, filename=name, card=variant, model_id=mid)
                rep = reg.validate(s.model_id, s.version)
                times.append(time.perf_counter() - t0)
                assert rep.is_valid, rep.failed_stage
            ours = statistics.median(times)
            print(f"{name:<30} {ours:>11.3f} {base:>9.3f} {ours / base:>6.2f}")
    finally:
        reg.close()


# ----------------------------------------------------------------------- search
def generate(url: str, blob_dir: Path, n_versions: int, seed: int = 7) -> None:
    reg = open_registry(url, blob_dir)  # creates the schema through the migrations
    reg.close()
    rng = random.Random(seed)
    eng = create_engine(url)
    per_model = 20
    models, versions, drugs, anns = [], [], [], []
    vid = 0
    for m in range(n_versions // per_model):
        drug = DRUGS[m % len(DRUGS)]
        inst = f"inst-{m % 12}"
        mid = f"{drug[0]}-model-{m:05d}"
        models.append({"id": mid, "title": f"{drug[0]} model {m}", "institution": inst})
        for n in range(1, per_model + 1):
            vid += 1
            words = " ".join(rng.sample(WORDS, 6))
            title = f"{drug[0].capitalize()} {words} model {m} v{n}"
            versions.append(
                {
                    "id": vid,
                    "model_id": mid,
                    "number": n,
                    "sbml_sha256": uuid.uuid4().hex * 2,
                    "content_sha256": uuid.uuid4().hex * 2,
                    "format": rng.choice(["sbml", "omex", "antimony"]),
                    "card": None,
                    "title": title,
                    "search_text": (title + " " + words).lower(),
                    "institution": inst,
                    "status": rng.choice(["submitted", "validated", "published"]),
                    "submitted_by": "bench",
                    "status_changed_by": "bench",
                }
            )
            drugs += [
                {"version_id": vid, "system": ATC, "code": drug[1], "display": drug[0]},
                {"version_id": vid, "system": RXNORM, "code": drug[2], "display": drug[0]},
            ]
            anns += [
                {
                    "version_id": vid,
                    "element": f"s{j}",
                    "qualifier": "bqbiol:is",
                    "uri": f"http://identifiers.org/CHEBI:{rng.randint(1, 90000)}",
                }
                for j in range(4)
            ]
            anns.append(
                {
                    "version_id": vid,
                    "element": "",
                    "qualifier": "bqbiol:hasTaxon",
                    "uri": "http://identifiers.org/taxonomy/9606",
                }
            )
    with eng.begin() as c:
        c.execute(insert(ModelRow), models)
        for chunk in range(0, len(versions), 2000):
            c.execute(insert(VersionRow), versions[chunk : chunk + 2000])
        c.execute(insert(DrugRow), drugs)
        c.execute(insert(AnnotationRow), anns)
        if url.startswith("postgresql"):
            c.execute(text("ANALYZE"))
    eng.dispose()


QUERIES = {
    "drug name": SearchQuery(drug="vancomycin"),
    "ATC prefix": SearchQuery(atc="J01GB"),
    "RxNorm": SearchQuery(rxnorm="11289"),
    "free text (2 terms)": SearchQuery(text="renal paediatric"),
    "annotation": SearchQuery(annotation="CHEBI:4242"),
    "institution+status": SearchQuery(institution="inst-3", status="published"),
    "format, page 20": SearchQuery(format="omex", page=20, per_page=50),
}


def naive(url: str) -> Callable[[SearchQuery], list[tuple[str, int]]]:
    eng = create_engine(url)

    def run(q: SearchQuery) -> list[tuple[str, int]]:
        with eng.connect() as c:
            vs = c.execute(select(VersionRow.__table__)).mappings().all()
            ds: dict[int, list] = {}
            for d in c.execute(select(DrugRow.__table__)).mappings():
                ds.setdefault(d["version_id"], []).append(d)
            an: dict[int, list] = {}
            for a in c.execute(select(AnnotationRow.__table__)).mappings():
                an.setdefault(a["version_id"], []).append(a["uri"].lower())
        out = []
        for v in vs:
            if q.text and not all(t in v["search_text"] for t in q.text.lower().split()):
                continue
            dd = ds.get(v["id"], [])
            if q.drug and not any(q.drug in d["display"] or d["code"] == q.drug for d in dd):
                continue
            if q.atc and not any(d["system"] == ATC and d["code"].startswith(q.atc) for d in dd):
                continue
            if q.rxnorm and not any(d["system"] == RXNORM and d["code"] == q.rxnorm for d in dd):
                continue
            if q.annotation and not any(q.annotation.lower() in u for u in an.get(v["id"], [])):
                continue
            if (
                (q.format and v["format"] != q.format)
                or (q.institution and v["institution"] != q.institution)
                or (q.status and v["status"] != q.status)
            ):
                continue
            out.append((v["model_id"], v["number"]))
        out.sort()
        return out[(q.page - 1) * q.per_page : q.page * q.per_page]

    return run


def bench_search(url: str, blob_dir: Path, label: str, n_versions: int, repeat: int) -> None:
    t0 = time.perf_counter()
    generate(url, blob_dir, n_versions)
    print(
        f"\n== search over {n_versions} versions ({label}); generated in {time.perf_counter() - t0:.1f} s =="
    )
    reg = open_registry(url, blob_dir)
    base = naive(url)
    print(
        f"{'query':<22} {'hits':>6} {'median ms':>10} {'p95 ms':>8} {'naive median ms':>16} {'speed-up':>9}"
    )
    try:
        for name, q in QUERIES.items():
            page = reg.search(q)
            ours_ids = [(i.model_id, i.version) for i in page.items]
            assert ours_ids == base(q), f"{name}: registry and naive baseline disagree"
            ours = timed(lambda q=q: reg.search(q), repeat)
            naive_t = timed(lambda q=q: base(q), max(3, repeat // 10))
            med, p95, nmed = statistics.median(ours), pct(ours, 0.95), statistics.median(naive_t)
            print(
                f"{name:<22} {page.total:>6} {med * 1e3:>10.2f} {p95 * 1e3:>8.2f} {nmed * 1e3:>16.1f} "
                f"{nmed / med:>8.1f}x"
            )
    finally:
        reg.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        bench_submit(f"sqlite:///{tmpd / 'submit.sqlite'}", tmpd / "blobs", "SQLite")
        bench_search(
            f"sqlite:///{tmpd / 'search.sqlite'}", tmpd / "blobs2", "SQLite", args.versions, args.repeat
        )
        if not args.no_postgres:
            with pg_schema() as url:
                bench_submit(url, tmpd / "blobs3", "PostgreSQL")
            with pg_schema() as url:
                bench_search(url, tmpd / "blobs4", "PostgreSQL", args.versions, args.repeat)


@contextmanager
def pg_schema() -> Iterator[str]:
    """A URL onto a fresh PostgreSQL schema, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
