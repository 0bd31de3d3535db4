"""Benchmark: FHIR Bulk NDJSON -> patient records + Parquet cohort, beside validation alone.

Generates a synthetic Bulk export (``interop synth fhir`` logic, levels simulated from the
bundled gentamicin model) of at least ``--resources`` resources, then in the same process:

* baseline: read every NDJSON line and validate it with its fhir.resources (R4B) model, nothing else;
* pipeline: the full import (validate, map codes and units, pseudonymise, resolve references,
  spool, write ``records/*.json``, the Parquet cohort and the report).

One resource in ``--bad`` (default 1 in 10) is an extra Observation with an impossible value,
each with its own reason text, so the report's bounded memory (counts per reason, a few
examples each) is exercised as well as the row-group Parquet writing.

Prints resources/s for both, the ratio (goal >= 0.5) and peak memory (``ru_maxrss``; goal < 1 GB).
``--sizes 100000 1000000`` runs each size in a fresh child process (peak memory is per process)
and prints one line per size, so flat memory shows as the same peak at every size.
Run: ``PYTHONPATH=. python bench/fhir_import.py [--resources 200000 | --sizes 100000 1000000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from converters.fhir import SpoolSink, convert_paths
from converters.fhir.output import write_import
from converters.fhir.sources import open_stream
from converters.fhir.versions import model_class
from converters.pseudonym import source_token
from interop.settings import Settings
from interop.workflows.synth import load_synth_model, write_synthetic_feed

DAYS = 14
PER_PATIENT = 4 + 6 * DAYS  # resources per synthetic patient with DAYS days of dosing


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def baseline(feed: Path) -> int:
    n = 0
    for f in sorted(feed.glob("*.ndjson")):
        with open_stream(f) as fh:
            for line in fh:
                if line.strip():
                    rtype = json.loads(line)["resourceType"]
                    model_class("R4", rtype).model_validate_json(line)
                    n += 1
    return n


def add_bad_lines(feed: Path, every: int) -> int:
    """Append one impossible Observation per ``every`` resources, each with a different value."""
    obs = feed / "Observation.ndjson"
    good = json.loads(obs.open(encoding="utf-8").readline())
    n_total = sum(1 for f in feed.glob("*.ndjson") for line in f.open("rb") if line.strip())
    n_bad = n_total // every if every > 0 else 0
    with obs.open("a", encoding="utf-8") as fh:
        for i in range(n_bad):
            bad = dict(good, id=f"bad-{i}")
            bad["valueQuantity"] = dict(good["valueQuantity"], value=100_000 + i)
            fh.write(json.dumps(bad) + "\n")
    return n_bad


def run_sizes(sizes: list[int], every: int, baseline_too: bool) -> None:
    """Each size in a fresh process (``ru_maxrss`` is per process); one summary line per size."""
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--resources", str(n), "--bad-every", str(every), "--json"]
        if not baseline_too:
            cmd.append("--no-baseline")
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        print(done.stdout, end="")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("\nsize (resources read)  pipeline res/s  ratio  peak after conversion  peak after writing")
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") else "  -  "
        print(
            f"{r['read']:>21,}  {r['pipeline_rate']:>14,.0f}  {ratio:>5}  "
            f"{r['mem_conv_mb']:>18.0f} MB  {r['mem_pipe_mb']:>15.0f} MB"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=200_000)
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="Several sizes, one process each")
    ap.add_argument("--bad-every", type=int, default=10, help="One rejected resource per N (0: none)")
    ap.add_argument("--no-baseline", action="store_true", help="Skip validation-only baseline")
    ap.add_argument("--json", action="store_true", help="Last line: the figures as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the feed and output here")
    args = ap.parse_args()
    if args.sizes:
        run_sizes(args.sizes, args.bad_every, not args.no_baseline)
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    feed, out = work / "feed", work / "out"
    try:
        n_patients = -(-args.resources // PER_PATIENT)
        t0 = time.perf_counter()
        sbml, card, label = load_synth_model(Settings(home=work, database_url="sqlite://"), None)
        synth = write_synthetic_feed(
            feed, n_patients, sbml=sbml, card=card, label=label, fmt="ndjson", days=DAYS, seed=42
        )
        n_bad = add_bad_lines(feed, args.bad_every)
        t_gen = time.perf_counter() - t0
        print(
            f"feed: {synth.resources + n_bad:,} resources ({n_bad:,} impossible), {n_patients:,} patients, "
            f"{sum(f.stat().st_size for f in feed.iterdir()) / 1e6:.0f} MB NDJSON "
            f"(generated in {t_gen:.0f} s)"
        )
        model_class("R4", "Observation")  # import the models before timing either run
        mem0 = peak_mb()

        t0 = time.perf_counter()
        n_base = 0 if args.no_baseline else baseline(feed)
        t_base = time.perf_counter() - t0
        mem_base = peak_mb()

        key = b"benchmark-key-0123456789abcdef"
        t0 = time.perf_counter()
        sink = SpoolSink(work)
        try:
            report, _ = convert_paths([feed], key, sink=sink)
            t_conv = time.perf_counter() - t0
            mem_conv = peak_mb()
            written = write_import(sink.records(), report, out, lambda s: source_token(key, s))
        finally:
            sink.close()
        t_pipe = time.perf_counter() - t0
        mem_pipe = peak_mb()
        n_pipe = sum(report.read.values())
        assert report.balanced() and n_pipe == synth.resources + n_bad
        assert args.no_baseline or n_base == n_pipe
        assert report.count("rejected", "Observation") >= n_bad
        assert all(len(shown) <= report.max_examples for shown in report.examples.values())

        base_rate, pipe_rate = (n_base / t_base if n_base else 0.0), n_pipe / t_pipe
        print(
            f"baseline (validate each line with fhir.resources): {base_rate:10,.0f} resources/s "
            f"({t_base:.1f} s)"
        )
        print(
            f"pipeline (NDJSON -> records + Parquet cohort):     {pipe_rate:10,.0f} resources/s "
            f"({t_pipe:.1f} s; conversion {t_conv:.1f} s, writing {t_pipe - t_conv:.1f} s)"
        )
        ratio = pipe_rate / base_rate if base_rate else None
        print(f"ratio pipeline / baseline: {f'{ratio:.2f}x' if ratio else '-'} (goal >= 0.5x)")
        print(
            f"peak memory (ru_maxrss): before {mem0:.0f} MB, after baseline {mem_base:.0f} MB, "
            f"after conversion {mem_conv:.0f} MB, after writing {mem_pipe:.0f} MB (goal < 1024 MB)"
        )
        tot = report.totals()
        print(
            f"converted {tot['converted']:,}, rejected {tot['rejected']:,}, skipped {tot['skipped']:,}; "
            f"{written.patients:,} records; {len(report.reason_counts):,} distinct reasons kept, "
            f"{sum(len(v) for v in report.examples.values()):,} examples"
        )
        if args.json:
            figures = {
                "read": n_pipe,
                "pipeline_rate": pipe_rate,
                "baseline_rate": base_rate,
                "ratio": ratio,
                "mem_before_mb": mem0,
                "mem_conv_mb": mem_conv,
                "mem_pipe_mb": mem_pipe,
            }
            print(json.dumps(figures))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
