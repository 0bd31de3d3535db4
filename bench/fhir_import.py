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

``--workers N`` adds, in the same process after the one-process pipeline, the same import on a
Dask ``LocalCluster`` of N worker processes (:mod:`converters.fhir.parallel`), checks that its
records, sorted cohort rows and report equal the one-process run's (``sorted_outputs``), and
prints the speed-up (goal with 2 workers on 2 idle cores: >= 1.6x) and the workers' peak memory.
The machine's load average is printed with each figure: on a busy machine the speed-up is low.
Run: ``PYTHONPATH=. python bench/fhir_import.py [--resources 200000 | --sizes 1000 10000 100000]
[--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from converters.fhir import SpoolSink, convert_paths
from converters.fhir.output import sorted_outputs, write_import
from converters.fhir.sources import open_stream
from converters.fhir.versions import model_class
from converters.pseudonym import source_token
from interop.settings import Settings
from interop.workflows.synth import load_synth_model, write_synthetic_feed

DAYS = 14
PER_PATIENT = 4 + 6 * DAYS  # resources per synthetic patient with DAYS days of dosing


def cpu_s() -> float:
    """CPU seconds this process has used (user + system): unlike wall time, hardly moved by load."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


def warm_feed(feed: Path, work: Path) -> Path:
    """A small copy of the feed (its first 20 lines per file) to warm a process up before timing:
    the first conversion of each resource type imports its fhir.resources models (seconds)."""
    small = work / "warm"
    small.mkdir(exist_ok=True)
    for f in feed.glob("*.ndjson"):
        with f.open("rb") as fh:
            (small / f.name).write_bytes(b"".join(line for _, line in zip(range(20), fh, strict=False)))
    return small


def warm_up(small: str) -> float:
    """Convert the small feed here (in a worker: the same); seconds taken."""
    t0 = time.perf_counter()
    convert_paths([Path(small)], b"warm-up-key-0123456789")
    return time.perf_counter() - t0


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


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def run_sizes(sizes: list[int], every: int, baseline_too: bool, workers: int) -> None:
    """Each size in a fresh process (``ru_maxrss`` is per process); one summary line per size."""
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--resources", str(n), "--bad-every", str(every), "--json"]
        if not baseline_too:
            cmd.append("--no-baseline")
        if workers:
            cmd += ["--workers", str(workers)]
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
    if workers:
        print(
            f"\none process vs Dask ({workers} workers), same outputs checked at every size:\n"
            "  resources   one process: s  res/s   peak MB  |  Dask: s  res/s   speed-up (CPU est.)  "
            "worker peak MB (each)  client MB  same  load average at the end"
        )
        for r in rows:
            d = r["dask"]
            print(
                f"{r['read']:>11,}  {r['t_pipe']:>14.1f}  {r['pipeline_rate']:>6,.0f}  "
                f"{r['mem_pipe_mb']:>7.0f}"
                f"  |  {d['t']:>7.1f}  {d['rate']:>6,.0f}  {d['speedup']:>7.2f}x ({d['cpu_speedup']:.2f}x)  "
                f"{'/'.join(f'{m:.0f}' for m in d['worker_peak_mb']):>21}  {d['client_mb']:>9.0f}  "
                f"{'yes' if d['same'] else 'NO':>4}  {d['load']}"
            )


def run_dask(
    feed: Path, out: Path, key: bytes, workers: int, one_out: Path, one: tuple[float, float], small: Path
) -> dict[str, Any]:
    """``one``: the one-process run's wall and CPU seconds."""
    t_one, c_one = one
    """The same import on a LocalCluster of ``workers`` processes; its figures and the comparison."""
    from converters.fhir.parallel import convert_parallel
    from interop.cohort.scale import dask_client

    with dask_client(None, workers) as client:
        t_warm = time.perf_counter()
        client.run(warm_up, str(small))  # every worker imports its models before timing
        print(f"Dask cold start (not timed below): {time.perf_counter() - t_warm:.1f} s to warm the workers")
        before = load()
        cpu0, client0 = client.run(cpu_s), cpu_s()
        t0 = time.perf_counter()
        marks: list[tuple[float, str]] = []
        report, _ = convert_parallel(
            client,
            [feed],
            key,
            out,
            hide=lambda s: source_token(key, s),
            on_step=lambda text: marks.append((time.perf_counter(), text)),
        )
        t = time.perf_counter() - t0
        marks.append((t0 + t, "end"))
        cpu1, client_cpu = client.run(cpu_s), cpu_s() - client0
        worker_cpu = [cpu1[w] - cpu0[w] for w in cpu1 if w in cpu0]
        after = load()
        peaks = client.run(peak_mb)
    client_mb = peak_mb()  # before the comparison below reads both outputs into memory
    same = sorted_outputs(out) == sorted_outputs(one_out)
    n = sum(report.read.values())
    print(
        f"Dask ({workers} workers): {n / t:10,.0f} resources/s ({t:.1f} s); speed-up {t_one / t:.2f}x "
        f"(goal >= 1.6x on 2 idle cores); same outputs as one process: {'yes' if same else 'NO'}"
    )
    print(
        f"  workers' peak memory: {', '.join(f'{m:.0f} MB' for m in peaks.values())}; "
        f"client {client_mb:.0f} MB (includes the one-process run); {before} before, {after} after"
    )
    # What idle cores would give: the busiest worker's CPU time plus the client's (plan, merge).
    est = c_one / (max(worker_cpu) + client_cpu)
    print(
        f"  CPU seconds: one process {c_one:.1f}; Dask workers {', '.join(f'{c:.1f}' for c in worker_cpu)}, "
        f"client {client_cpu:.1f} -> speed-up on {workers} idle cores estimated from CPU time: {est:.2f}x"
    )
    steps = [(b[0] - a[0], a[1]) for a, b in zip(marks, marks[1:], strict=False)]
    print("  steps: " + "; ".join(f"{text} {dt_s:.1f} s" for dt_s, text in steps))
    assert same, "Dask outputs differ from the one-process run"
    return {
        "t": t,
        "rate": n / t,
        "speedup": t_one / t,
        "cpu_speedup": est,
        "worker_peak_mb": list(peaks.values()),
        "client_mb": client_mb,
        "same": same,
        "load": after,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resources", type=int, default=200_000)
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="Several sizes, one process each")
    ap.add_argument("--bad-every", type=int, default=10, help="One rejected resource per N (0: none)")
    ap.add_argument("--no-baseline", action="store_true", help="Skip validation-only baseline")
    ap.add_argument("--json", action="store_true", help="Last line: the figures as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="Keep the feed and output here")
    ap.add_argument("--workers", type=int, default=0, help="Also run on a Dask LocalCluster of N workers")
    args = ap.parse_args()
    if args.sizes:
        run_sizes(args.sizes, args.bad_every, not args.no_baseline, args.workers)
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
        print(load())
        print(
            f"feed: {synth.resources + n_bad:,} resources ({n_bad:,} impossible), {n_patients:,} patients, "
            f"{sum(f.stat().st_size for f in feed.iterdir()) / 1e6:.0f} MB NDJSON "
            f"(generated in {t_gen:.0f} s)"
        )
        small = warm_feed(feed, work)
        print(f"one process cold start (not timed below): {warm_up(str(small)):.1f} s")
        mem0 = peak_mb()

        t0 = time.perf_counter()
        n_base = 0 if args.no_baseline else baseline(feed)
        t_base = time.perf_counter() - t0
        mem_base = peak_mb()

        key = b"benchmark-key-0123456789abcdef"
        t0, c0 = time.perf_counter(), cpu_s()
        sink = SpoolSink(work)
        try:
            report, _ = convert_paths([feed], key, sink=sink)
            t_conv = time.perf_counter() - t0
            mem_conv = peak_mb()
            written = write_import(sink.records(), report, out, lambda s: source_token(key, s))
        finally:
            sink.close()
        t_pipe = time.perf_counter() - t0
        c_pipe = cpu_s() - c0
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
        dask = (
            run_dask(feed, work / "out-dask", key, args.workers, out, (t_pipe, c_pipe), small)
            if args.workers
            else None
        )
        if args.json:
            figures = {
                "t_pipe": t_pipe,
                "dask": dask,
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
