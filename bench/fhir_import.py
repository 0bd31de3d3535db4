"""Benchmark: FHIR Bulk NDJSON -> patient records + Parquet cohort, beside validation alone.

Generates a synthetic Bulk export (``interop synth fhir`` logic, levels simulated from the
bundled gentamicin model) of at least ``--resources`` resources, then in the same process:

* baseline: read every NDJSON line and validate it with its fhir.resources (R4B) model, nothing else;
* pipeline: the full import (validate, map codes and units, pseudonymise, resolve references,
  spool, write ``records/*.json``, the Parquet cohort and the report).

Prints resources/s for both, the ratio (goal >= 0.5) and peak memory (``ru_maxrss``; goal < 1 GB).
Run: ``PYTHONPATH=. python bench/fhir_import.py [--resources 200000]``
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from converters.fhir import SpoolSink, convert_paths
from converters.fhir.output import write_import
from converters.fhir.sources import open_stream
from converters.fhir.versions import model_class
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=200_000)
    ap.add_argument("--keep", type=Path, default=None, help="Keep the feed and output here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    feed, out = work / "feed", work / "out"
    try:
        n_patients = -(-args.resources // PER_PATIENT)
        t0 = time.perf_counter()
        sbml, card, label = load_synth_model(Settings(home=work, database_url="sqlite://"), None)
        synth = write_synthetic_feed(
            feed, n_patients, sbml=sbml, card=card, label=label, fmt="ndjson", days=DAYS, seed=42
        )
        t_gen = time.perf_counter() - t0
        print(
            f"feed: {synth.resources:,} resources, {n_patients:,} patients, "
            f"{sum(f.stat().st_size for f in feed.iterdir()) / 1e6:.0f} MB NDJSON "
            f"(generated in {t_gen:.0f} s)"
        )
        model_class("R4", "Observation")  # import the models before timing either run
        mem0 = peak_mb()

        t0 = time.perf_counter()
        n_base = baseline(feed)
        t_base = time.perf_counter() - t0
        mem_base = peak_mb()

        t0 = time.perf_counter()
        sink = SpoolSink(work)
        try:
            report, _ = convert_paths([feed], b"benchmark-key-0123456789abcdef", sink=sink)
            t_conv = time.perf_counter() - t0
            mem_conv = peak_mb()
            written = write_import(sink.records(), report, out)
        finally:
            sink.close()
        t_pipe = time.perf_counter() - t0
        mem_pipe = peak_mb()
        n_pipe = sum(report.read.values())
        assert report.balanced() and n_pipe == n_base == synth.resources

        base_rate, pipe_rate = n_base / t_base, n_pipe / t_pipe
        print(
            f"baseline (validate each line with fhir.resources): {base_rate:10,.0f} resources/s "
            f"({t_base:.1f} s)"
        )
        print(
            f"pipeline (NDJSON -> records + Parquet cohort):     {pipe_rate:10,.0f} resources/s "
            f"({t_pipe:.1f} s; conversion {t_conv:.1f} s, writing {t_pipe - t_conv:.1f} s)"
        )
        print(f"ratio pipeline / baseline: {pipe_rate / base_rate:.2f}x (goal >= 0.5x)")
        print(
            f"peak memory (ru_maxrss): before {mem0:.0f} MB, after baseline {mem_base:.0f} MB, "
            f"after conversion {mem_conv:.0f} MB, after writing {mem_pipe:.0f} MB (goal < 1024 MB)"
        )
        tot = report.totals()
        print(
            f"converted {tot['converted']:,}, rejected {tot['rejected']:,}, skipped {tot['skipped']:,}; "
            f"{written.patients:,} records"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
