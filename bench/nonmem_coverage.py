"""NONMEM coverage of a corpus: which control streams convert and simulate, and why the others are refused.

Run: PYTHONPATH=. python bench/nonmem_coverage.py DIR... [--list]

Walks every control stream (``*.mod``, ``*.ctl``, any case) under each DIR (the DDMoRe Model
Repository scrape, ``INTEROP_DDMORE_CORPUS``, is the corpus the issue measures), classifies each
file, converts the continuous-observation ones with ``registry.formats.nonmem.convert`` and
simulates each converted model for 24 h after a 100-unit dose on each of the card's routes
(covariates at the median of their ``$DATA`` column when the data file is beside the stream, else
the card's reference, else the SBML's value). Kinds:

- ``continuous``: Y is a continuous observation (the denominator of the share);
- ``non-continuous``: a likelihood written in the code (``F_FLAG`` switching Y to a likelihood
  for every record, ``$EST ... LIKE``/``-2LL``) or ``$PRED`` with ``LIKE``/``-2LL`` (counts,
  categories, time to event): converted too, every one must be refused with a typed error.

Prints a table of refusal reasons (how many files each reason stops, the first problem of a file
counted as its primary reason), the files whose conversion crashed (an uncaught exception: a
bug), then the share of continuous files that convert and simulate. Not a timing benchmark.
"""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout, when not installed

import numpy as np  # noqa: E402

from bench.pharmml_coverage import print_reasons, reason_class  # noqa: E402
from interop.schema import ReferenceDose  # noqa: E402
from interop.twin import bind_regimen, load_model, simulate  # noqa: E402
from registry.formats.nonmem import NonmemError, convert  # noqa: E402
from registry.formats.nonmem.stream import record_lines  # noqa: E402

TIMES = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
_STREAM = re.compile(r"\.(mod|ctl)$", re.I)
LIMIT_S = 240  # per file, for conversion and again for simulation


@dataclass
class Result:
    path: Path
    kind: str  # continuous | non-continuous
    status: str = "skipped"  # ok | refused | crashed | simulate-failed
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0


def classify(text: str) -> str:
    """continuous, or non-continuous when the code writes its own likelihood for every record."""
    records = record_lines(text)
    est = " ".join(body for name, _l, body in records if name == "ESTIMATION")
    if re.search(r"(?<![\w-])(LIKE|-2LL|LIKELIHOOD)\b", est, re.I):
        return "non-continuous"
    code = "\n".join(body for name, _l, body in records if name in ("PRED", "ERROR"))
    if re.search(r"\bF_FLAG\s*=\s*1\b", code, re.I) and not re.search(r"\bF_FLAG\s*=\s*0\b", code, re.I):
        return "non-continuous"
    return "continuous"


class _Timeout(BaseException):  # sympy catches Exception in places
    """A file took longer than its limit (a pathological case worth a look)."""


def _timeout(signum, frame):  # type: ignore[no-untyped-def]
    raise _Timeout("over the time limit")


def _data_medians(path: Path, text: str) -> dict[str, float]:
    """Median of each $INPUT item over the subjects of the $DATA file beside the stream (first record).

    Reads CSV and NONMEM table files (``TABLE NO. 1`` and a header line) alike: rows of numbers
    split at commas or blanks, taken in $INPUT order; other lines are skipped.
    """
    records = record_lines(text)
    data = next((body for name, _l, body in records if name == "DATA"), "")
    items = " ".join(body for name, _l, body in records if name == "INPUT").split()[1:]
    m = re.match(r"\s*\$DATA\s+(\"[^\"]+\"|'[^']+'|\S+)", data, re.I)
    if not m:
        return {}
    file = path.parent / Path(m[1].strip("'\"").replace("\\", "/")).name
    if not file.exists():
        return {}
    columns = [n.split("=")[0].upper() for n in items]
    first: dict[float, list[float]] = {}
    for line in file.read_text(encoding="latin-1").splitlines():
        try:
            row = [float(x) for x in re.split(r"[,\s]+", line.strip()) if x]
        except ValueError:
            continue
        if len(row) >= len(columns):
            key = row[columns.index("ID")] if "ID" in columns else len(first)
            first.setdefault(key, row)
    out = {}
    for k, name in enumerate(columns):
        values = [r[k] for r in first.values()]
        if values:
            out[name] = float(statistics.median(values))
    return out


def try_file(path: Path, kind: str) -> Result:
    """Convert, then simulate 24 h after one dose per route; the reasons when either fails."""
    result = Result(path, kind)
    raw = path.read_bytes()
    t0 = time.perf_counter()
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(LIMIT_S)
    try:
        conv = convert(raw, source=str(path))
    except _Timeout:
        result.status = "crashed"
        result.reasons = (f"TIMEOUT: conversion took over {LIMIT_S} s",)
        result.seconds = time.perf_counter() - t0
        return result
    except NonmemError as exc:
        result.status = "refused"
        result.reasons = tuple(f"{p.construct}: {reason_class(p.message)}" for p in exc.problems)
        result.seconds = time.perf_counter() - t0
        return result
    except Exception as exc:  # noqa: BLE001 - a crash is a finding of the coverage run
        result.status = "crashed"
        result.reasons = (f"CRASH {type(exc).__name__}: {reason_class(str(exc))}",)
        result.seconds = time.perf_counter() - t0
        return result
    finally:
        signal.alarm(0)
    doses = [
        ReferenceDose(route=r, amount=100.0, time_h=0.0, duration_h=1.0 if "infusion" in r else None)
        for r in dict.fromkeys(i.route for i in conv.card.dosing)
    ]
    medians = _data_medians(path, raw.decode("latin-1"))
    covariates = {c.name: medians[c.name] for c in conv.card.covariates if c.name in medians}
    signal.alarm(LIMIT_S)
    try:
        model = load_model(conv.sbml, conv.card)
        regimens: list[tuple[ReferenceDose, ...]] = [(d,) for d in doses] or [()]
        for regimen in regimens:
            twin = bind_regimen(model, regimen, covariates)
            pred = simulate(twin, TIMES)
            bad = [k for k, v in pred.values.items() if not np.all(np.isfinite(v))]
            if bad:
                raise ValueError(
                    f"non-finite predictions for {bad} after a {regimen[0].route if regimen else 'no'} dose"
                )
        result.status = "ok"
    except (Exception, _Timeout) as exc:  # noqa: BLE001
        result.status = "simulate-failed"
        result.reasons = (f"SIMULATE {type(exc).__name__}: {reason_class(str(exc))}",)
    finally:
        signal.alarm(0)
    result.seconds = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--list", action="store_true", help="print each file's outcome")
    args = parser.parse_args(argv)
    files = sorted(p for d in args.dirs for p in d.rglob("*") if p.is_file() and _STREAM.search(p.name))
    results = []
    for p in files:
        r = try_file(p, classify(p.read_bytes().decode("latin-1")))
        results.append(r)
        if args.list:
            first = r.reasons[0] if r.reasons else ""
            where = f"{r.path.parent.name}/{r.path.name}"
            print(f"  {r.kind[:5]} {r.status:15} {r.seconds:6.2f}s {where[:58]:58} {first[:120]}", flush=True)
    kinds = Counter(r.kind for r in results)
    print("\nfiles by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print_reasons([r.reasons for r in results])
    crashed = [r for r in results if r.status == "crashed"]
    print(f"\ncrashed (uncaught exceptions): {len(crashed)}")
    other = [r for r in results if r.kind == "non-continuous"]
    print(f"non-continuous: {len(other)}, refused {sum(r.status == 'refused' for r in other)}, "
          f"converted {sum(r.status in ('ok', 'simulate-failed') for r in other)}")  # fmt: skip
    tried = [r for r in results if r.kind == "continuous"]
    ok = sum(r.status == "ok" for r in tried)
    converted = sum(r.status in ("ok", "simulate-failed") for r in tried)
    share = 100.0 * ok / len(tried) if tried else 0.0
    print(f"continuous: convert {converted}, convert + simulate {ok} of {len(tried)} ({share:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
