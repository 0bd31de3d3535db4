"""PharmML coverage of a corpus: which files convert and simulate, and why the others are refused.

Run: PYTHONPATH=. python bench/pharmml_coverage.py [DIR ...] [--all] [--list]

Walks every ``*.xml`` under each DIR (default: the test-data setting's ``pharmml/`` folder; the
pharmml-example repository's ``examples_0_9`` folder is the corpus the issue measures), classifies
each file (continuous observations, other observations, no model, unsupported PharmML version),
converts the files with continuous observations (``--all``: every PharmML file) and simulates each
converted model for 24 h after a 100-unit dose on each of the card's routes. Covariates take the
card's reference; those without one take the first subject's values in the model's own dataset (its
inline rows, or the ExternalDataSet file next to it) when it has them, and the file is listed as
simulating with the dataset's covariates. Prints a table of
refusal reasons (how many files each reason stops, the first problem of a file counted as its
primary reason), then the share that converts and simulates. Not a timing benchmark: the per-file
cost is printed only to spot a pathological case.
"""

from __future__ import annotations

import argparse
import csv
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout, when not installed

import numpy as np  # noqa: E402
from lxml import etree  # noqa: E402

from interop.schema import ReferenceDose  # noqa: E402
from interop.twin import bind_regimen, load_model, simulate  # noqa: E402
from registry.formats.pharmml import PharmMLError, convert, detect  # noqa: E402
from tests.data import EXTERNAL  # noqa: E402

TIMES = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0])
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")
_DELIMITERS = {"COMMA": ",", "SEMICOLON": ";", "TAB": "\t", "SPACE": " "}
DATASET_COVARIATES = "simulates with the dataset's covariates"


@dataclass
class Result:
    path: Path
    kind: str  # continuous | other-observations | no-model | old-version | not-pharmml
    status: str = "skipped"  # ok | refused | simulate-failed | skipped
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0
    note: str = ""


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""  # type: ignore[arg-type]


def classify(raw: bytes) -> str:
    """The file's kind, from its ObservationModel (continuous data or not)."""
    if not detect(raw):
        return "not-pharmml"
    try:
        root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return "not-pharmml"
    ns = etree.QName(root).namespace or ""
    if not re.search(r"/0\.[6-9]/", ns):
        return "old-version"
    names = {_local(el.tag) for el in root.iter()}
    if "ObservationModel" not in names:
        return "no-model"
    if "ContinuousData" in names or ("Standard" in names and "Discrete" not in names):
        return "continuous"
    return "other-observations"


def reason_class(message: str) -> str:
    """A refusal message with its names and numbers blanked, so like reasons count together."""
    text = _QUOTED.sub("'…'", message)
    return _NUMBER.sub("N", text)[:110]


def _number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # NONMEM's "." and other missing-value marks
        return None


def _dataset_rows(dataset: etree._Element, folder: Path) -> list[list[str]]:
    """A PharmML DataSet's rows as text cells: its inline ``Row``s, else the ``ExternalFile`` in
    ``folder`` (header lines, whose first cell is not a number, left out); [] when neither is there."""
    rows = [[(c.text or "").strip() for c in row if isinstance(c.tag, str)] for row in dataset.iter("{*}Row")]
    external = next(dataset.iter("{*}ExternalFile"), None)
    if rows or external is None:
        return rows
    name = next((e.text or "" for e in external.iter("{*}path")), "").strip()
    delimiter = next((e.text or "" for e in external.iter("{*}delimiter")), "COMMA").strip().upper()
    file = (folder / name).resolve()
    if not name or not file.is_file() or not file.is_relative_to(folder.resolve()):
        return []  # absent, or not beside the model
    with file.open(newline="", errors="replace") as fh:
        if delimiter == "SPACE":
            lines = [line.split() for line in fh]
        else:
            lines = list(csv.reader(fh, delimiter=_DELIMITERS.get(delimiter, ",")))
    return [
        [c.strip() for c in line] for line in lines if line and _number_or_none(line[0].strip()) is not None
    ]


def dataset_covariates(
    path: Path, raw: bytes, columns: Mapping[str, tuple[str, ...]], wanted: set[str]
) -> dict[str, float]:
    """The first subject's first value of each covariate in ``wanted`` that a dataset column maps to
    (``columns``: column id -> SBML ids, as the conversion reports them), from the file's dataset."""
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    found: dict[str, float] = {}
    for dataset in root.iter("{*}DataSet"):
        number = {
            c.get("columnId", ""): int(c.get("columnNum", "")) - 1
            for c in dataset.iter("{*}Column")
            if c.get("columnNum", "").isdigit()
        }
        ids = [
            n
            for c in dataset.iter("{*}Column")
            if c.get("columnType") == "id"
            for n in [number.get(c.get("columnId", ""))]
        ]
        rows = [r for r in _dataset_rows(dataset, path.parent) if len(r) >= len(number)]
        if not rows:
            continue
        subject = [r for r in rows if r[ids[0]] == rows[0][ids[0]]] if ids and ids[0] is not None else rows
        for column, symbols in columns.items():
            for name in (s for s in symbols if s in wanted and s not in found and column in number):
                value = next(
                    (v for r in subject if (v := _number_or_none(r[number[column]])) is not None), None
                )
                if value is not None:
                    found[name] = value
    return found


def print_reasons(reasons: list[tuple[str, ...]]) -> None:
    """The refusal table: per reason, the files it stops first (primary) and at all (any)."""
    primary = Counter(r[0] for r in reasons if r)
    anywhere = Counter(c for r in reasons for c in set(r))
    if anywhere:
        print(f"\n{'files (primary)':>16} {'files (any)':>11}  reason")
        for reason, n in anywhere.most_common():
            print(f"{primary.get(reason, 0):16d} {n:11d}  {reason}")


def _timeout(signum, frame):  # type: ignore[no-untyped-def]
    raise TimeoutError("simulation took over 60 s")


def try_file(path: Path, kind: str) -> Result:
    """Convert, then simulate 24 h after one dose per route; the reasons when either fails."""
    result = Result(path, kind)
    raw = path.read_bytes()
    t0 = time.perf_counter()
    try:
        conv = convert(raw, source=str(path))
    except PharmMLError as exc:
        result.status = "refused"
        result.reasons = tuple(reason_class(p.message) for p in exc.problems)
        result.seconds = time.perf_counter() - t0
        return result
    except Exception as exc:  # noqa: BLE001 - a crash is a finding of the coverage run
        result.status = "refused"
        result.reasons = (f"CRASH {type(exc).__name__}: {reason_class(str(exc))}",)
        return result
    doses = list(conv.trial_doses) or [
        ReferenceDose(route=r, amount=100.0, time_h=0.0, duration_h=1.0 if "infusion" in r else None)
        for r in dict.fromkeys(i.route for i in conv.card.dosing)
    ]
    unset = {c.name for c in conv.card.covariates if c.to_model and c.reference is None}
    covariates = dataset_covariates(path, raw, conv.column_mappings, unset) if unset else {}
    signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(60)
    try:
        model = load_model(conv.sbml, conv.card)
        twin = bind_regimen(model, tuple(doses), covariates)
        pred = simulate(twin, TIMES)
        bad = [k for k, v in pred.values.items() if not np.all(np.isfinite(v))]
        if bad:
            raise ValueError(f"non-finite predictions for {bad}")
        result.status = "ok"
        result.note = DATASET_COVARIATES if covariates else ""
    except Exception as exc:  # noqa: BLE001
        result.status = "simulate-failed"
        result.reasons = (f"SIMULATE {type(exc).__name__}: {reason_class(str(exc))}",)
    finally:
        signal.alarm(0)
    result.seconds = time.perf_counter() - t0
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path, default=[EXTERNAL / "pharmml"])
    parser.add_argument("--all", action="store_true", help="also convert files without continuous data")
    parser.add_argument("--list", action="store_true", help="print each file's outcome")
    args = parser.parse_args(argv)
    files = sorted(p for d in args.dirs for p in d.rglob("*.xml") if "ARCHIVE" not in p.parts)
    results = []
    for path in files:
        kind = classify(path.read_bytes())
        if kind == "continuous" or (args.all and kind in ("other-observations", "no-model")):
            results.append(try_file(path, kind))
        else:
            results.append(Result(path, kind))
    kinds = Counter(r.kind for r in results)
    print("files by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    tried = [r for r in results if r.status != "skipped"]
    if args.list:
        for r in tried:
            first = r.reasons[0] if r.reasons else r.note
            print(f"  {r.status:16} {r.seconds:6.2f}s {r.path.name:50} {first}")
    print_reasons([r.reasons for r in tried])
    folders = sorted({r.path.parent for r in tried})
    if len(folders) > 1:
        print(f"\n{'folder':60} {'ok':>4} {'tried':>6}")
        for folder in folders:
            here = [r for r in tried if r.path.parent == folder]
            print(f"{str(folder)[-60:]:60} {sum(r.status == 'ok' for r in here):4d} {len(here):6d}")
    ok = sum(r.status == "ok" for r in tried)
    share = 100.0 * ok / len(tried) if tried else 0.0
    with_data = sum(r.note == DATASET_COVARIATES for r in tried)
    print(
        f"\nconvert + simulate: {ok} of {len(tried)} ({share:.1f}%), {with_data} of them {DATASET_COVARIATES}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
