"""Bulk FHIR on Dask: byte ranges on line boundaries, and a real 2-worker LocalCluster giving the
one-process import byte for byte (records, sorted Parquet rows, report), with the key kept out of
the scheduler's task keys and logs, and a worker killed mid-import losing nothing."""

from __future__ import annotations

import copy
import gzip
import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from converters.fhir import SpoolSink, convert_paths
from converters.fhir.output import sorted_outputs, write_import
from converters.fhir.parallel import convert_parallel, first_lines, part_entries, plan_parts, range_lines
from converters.fhir.sources import FeedInfo, iter_ndjson
from converters.pseudonym import SecretKey, source_token
from interop.schema.cohort import read_cohort
from interop.settings import Settings
from interop.workflows.synth import load_synth_model, write_synthetic_feed
from tests.clirun import invoke
from tests.fhir.conftest import KEY

distributed = pytest.importorskip("dask.distributed")


def hide(source: str) -> str:
    return source_token(KEY, source)


# -- byte ranges ------------------------------------------------------------------------------------
LINES = [
    b'{"a": 1}\n',
    b"\n",  # a blank line still counts as a line
    b'{"b": "\xc3\xa9\xe2\x82\xac"}\n',  # multi-byte characters: a boundary can fall inside one
    b"x" * 57 + b"\n",  # longer than several ranges together
    b"\n",
    b"\n",
    b'{"c": 3}\r\n',
    b'{"last": "no newline"}',
]


def test_every_line_belongs_to_exactly_one_range_whatever_the_boundaries(tmp_path):
    path = tmp_path / "f.ndjson"
    data = b"".join(LINES)
    path.write_bytes(data)
    for chunk in range(1, len(data) + 2):
        got = [ln for start in range(0, len(data), chunk) for ln in range_lines(path, start, start + chunk)]
        assert got == LINES, f"chunk {chunk}"
    # boundaries at every byte pair, not only evenly spaced: [0, i), [i, j), [j, end)
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            got = [*range_lines(path, 0, i), *range_lines(path, i, j), *range_lines(path, j, len(data))]
            assert got == LINES, (i, j)


def test_ranges_keep_the_file_line_numbers_and_plan_the_inputs_in_reading_order(ndjson_feed, tmp_path):
    info = FeedInfo()
    parts = plan_parts([ndjson_feed], info, chunk_bytes=2000)
    assert [p.index for p in parts] == list(range(len(parts)))
    obs = [p for p in parts if p.path.endswith("Observation.ndjson")]
    assert len(obs) > 5 and all(p.end is not None for p in obs)
    assert parts[0].path.endswith("Patient.ndjson")  # context types first, as one process reads
    assert str(ndjson_feed) not in repr(parts[0])  # a path may name a patient: not in logs
    whole = [(e.line, e.resource) for e in iter_ndjson(Path(obs[0].path))]
    got = [(e.line, e.resource) for p in obs for e in part_entries(p, FeedInfo())]
    assert got == whole


def test_first_line_numbers_of_ranges_at_every_offset(tmp_path):
    path = tmp_path / "f.ndjson"
    data = b"".join(LINES)
    path.write_bytes(data)
    starts = list(range(len(data) + 1))
    for start, first in zip(starts, first_lines(path, starts), strict=True):
        before = len(list(range_lines(path, 0, start)))  # the lines the ranges before own
        assert first == before + 1, start


# -- the feed -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ndjson_feed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feed")
    sbml, card, label = load_synth_model(Settings(home=out, database_url="sqlite://"), None)
    write_synthetic_feed(out, 8, sbml=sbml, card=card, label=label, fmt="ndjson", days=3, seed=5)
    return out


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def hard_feed(ndjson_feed, tmp_path_factory) -> Path:
    """The synthetic export made hard: bad lines among good ones, a duplicate id far from its
    first copy, a gzip file where an Observation comes before its (new) Patient, a per-kg dose
    whose weights are in another file, a deleted resource and a server error."""
    feed = tmp_path_factory.mktemp("hard")
    for f in ndjson_feed.iterdir():
        (feed / f.name).write_bytes(f.read_bytes())
    obs = _lines(feed / "Observation.ndjson")
    weight = next(o for o in obs if o["code"]["coding"][0]["code"] == "29463-7")
    bad = [
        "{not json",
        json.dumps({"resourceType": "Observation", "id": "no-status"}),
        json.dumps({"resourceType": "Nonsense", "id": "x"}),
        json.dumps(dict(weight, id="too-heavy", valueQuantity=dict(weight["valueQuantity"], value=7000))),
        json.dumps(dict(weight, id="orphan", subject={"reference": "Patient/nobody"})),
        "[1, 2]",
    ]
    text = [json.dumps(o) for o in obs]
    for i, b in enumerate(bad):  # spread over the file, so over many ranges
        text.insert((i + 1) * len(text) // (len(bad) + 1), b)
    text.append(json.dumps(dict(obs[0], valueQuantity=dict(obs[0]["valueQuantity"], value=1.5))))  # duplicate
    (feed / "Observation.ndjson").write_text("\n".join(text) + "\n")

    admins = _lines(feed / "MedicationAdministration.ndjson")
    per_kg = copy.deepcopy(admins[0])
    per_kg["id"] = "per-kg"
    per_kg["dosage"]["dose"] = {
        "value": 5,
        "unit": "mg/kg",
        "system": "http://unitsofmeasure.org",
        "code": "mg/kg",
    }
    late_patient = dict(
        _lines(feed / "Patient.ndjson")[0], id="late", identifier=[{"system": "s", "value": "late"}]
    )
    late_obs = dict(weight, id="late-weight", subject={"reference": "Patient/late"})
    mixed = [json.dumps(per_kg), json.dumps(late_obs), json.dumps(late_patient)]
    (feed / "Mixed.ndjson.gz").write_bytes(gzip.compress(("\n".join(mixed) + "\n").encode()))

    (feed / "deleted.ndjson").write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"request": {"method": "DELETE", "url": f"Observation/{obs[1]['id']}"}}],
            }
        )
        + "\n"
    )
    (feed / "errors.ndjson").write_text(
        json.dumps({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "diagnostics": "x"}]})
        + "\n"
    )
    manifest = json.loads((feed / "manifest.json").read_text())
    manifest["output"].append({"type": "MedicationAdministration", "url": "Mixed.ndjson.gz"})
    manifest["deleted"] = [{"type": "Bundle", "url": "deleted.ndjson"}]
    manifest["error"] = [{"type": "OperationOutcome", "url": "errors.ndjson"}]
    (feed / "manifest.json").write_text(json.dumps(manifest))
    return feed


@pytest.fixture(scope="module")
def one_process(hard_feed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    sink = SpoolSink(out)
    try:
        report, _ = convert_paths([hard_feed], KEY, sink=sink)
        write_import(sink.records(), report, out, hide)
    finally:
        sink.close()
    return out


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.mark.slow
def test_dask_import_equals_one_process_byte_for_byte(client, hard_feed, one_process, tmp_path):
    out = tmp_path / "dask"
    report, written = convert_parallel(client, [hard_feed], KEY, out, hide=hide, chunk_bytes=1500, buckets=3)
    expected = sorted_outputs(one_process)
    got = sorted_outputs(out)
    assert got["records"].keys() == expected["records"].keys()
    assert got == expected
    assert written.patients == len(expected["records"]) == 9  # 8 + the late one
    assert report.balanced()
    tables = [p for p in (out / "cohort").glob("*.parquet") if p.is_dir()]
    assert len(tables) == 3  # patients, measurements, doses: each a folder of part files, one schema
    for table in tables:
        schemas = [pq.read_schema(part) for part in sorted(table.glob("part-*.parquet"))]
        assert len(schemas) > 1 and all(s.equals(schemas[0]) for s in schemas), table
    assert len(read_cohort(out / "cohort")) == 9
    # the same import again in one process into the same folder: part folders replaced, records unchanged
    sink = SpoolSink(tmp_path)
    try:
        again, _ = convert_paths([hard_feed], KEY, sink=sink)
        write_import(sink.records(), again, out, hide)
    finally:
        sink.close()
    assert not any(p.is_dir() for p in (out / "cohort").glob("*.parquet"))
    assert sorted_outputs(out) == expected
    # bad input named by file and line, as one process names it
    obs_file = str(hard_feed / "Observation.ndjson")
    by_reason = {i.reason: i for i in report.issues}
    bad_json = next(i for r, i in by_reason.items() if r.startswith("invalid JSON"))
    assert bad_json.source == obs_file
    assert (hard_feed / "Observation.ndjson").read_text().splitlines()[bad_json.line - 1] == "{not json"
    assert report.count("skipped", "Observation") >= 3  # deleted, duplicate (across partitions)
    assert any(r.startswith("duplicate") for r in by_reason)
    assert "no such Patient" in next(r for r in by_reason if "Patient" in r and "subject" in r)
    per_kg = [
        json.loads(t)
        for t in got["records"].values()
        if b'"mg/kg"' in t  # the per-kg dose found its weight in another partition
    ]
    assert len(per_kg) == 1


@pytest.mark.slow
def test_the_key_is_not_in_task_keys_or_logs(client, hard_feed, tmp_path, capfd):
    convert_parallel(client, [hard_feed], KEY, tmp_path / "out", hide=hide, chunk_bytes=4000)
    # a failing task logs its arguments: the key shows as SecretKey(<hidden>)
    with pytest.raises(ZeroDivisionError):
        client.submit(_fail, SecretKey(KEY), pure=False).result()
    keys = client.run_on_scheduler(lambda dask_scheduler: [str(t[0]) for t in dask_scheduler.transition_log])
    assert any(k.startswith("fhir-convert-") for k in keys)
    logs = [*client.get_scheduler_logs(), *(r for v in client.get_worker_logs().values() for r in v)]
    text = "\n".join(map(str, [*keys, *logs, capfd.readouterr().err]))  # the workers' stderr too
    assert "Compute Failed" in text  # the failure was logged
    for secret in (KEY.decode(), KEY.hex(), repr(KEY)):
        assert secret not in text


def _fail(key: SecretKey) -> None:
    raise ZeroDivisionError("boom")


@pytest.mark.slow
def test_a_worker_killed_mid_import_loses_nothing(hard_feed, one_process, tmp_path):
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        pids = c.run(os.getpid)
        killed: list[int] = []

        def kill_one(step: str) -> None:
            if step.startswith("convert") and not killed:  # after the index step: its results die too
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        convert_parallel(c, [hard_feed], KEY, tmp_path / "out", hide=hide, chunk_bytes=1500, on_step=kill_one)
    assert killed
    assert sorted_outputs(tmp_path / "out") == sorted_outputs(one_process)


@pytest.mark.slow
def test_cli_workers_option(hard_feed, one_process, tmp_path):
    keyfile = tmp_path / "key"
    keyfile.write_bytes(KEY)
    r = invoke(
        [
            "import",
            "fhir",
            str(hard_feed),
            "--out",
            str(tmp_path / "out"),
            "--pseudonymise-key-file",
            str(keyfile),
            "--workers",
            "2",
        ],
        env={"INTEROP_PSEUDONYM_KEY": None},
    )
    assert r.returncode == 0, r.stderr
    assert "9 patient record(s)" in r.stdout + r.stderr
    assert sorted_outputs(tmp_path / "out") == sorted_outputs(one_process)


@pytest.mark.slow
def test_cli_scheduler_option_and_a_folder_of_bundles(client, tmp_path):
    """Synthea-style input (one transaction Bundle per patient, urn:uuid references) on a running
    cluster given by its address: the one-process result."""
    feed = tmp_path / "bundles"
    sbml, card, label = load_synth_model(Settings(home=tmp_path, database_url="sqlite://"), None)
    write_synthetic_feed(feed, 4, sbml=sbml, card=card, label=label, fmt="bundle", days=2, seed=3)
    (feed / "notes.xml").write_text("<Bundle/>")  # reported, as in one process
    keyfile = tmp_path / "key"
    keyfile.write_bytes(KEY)
    outs = {}
    for name, extra in (("one", []), ("dask", ["--scheduler", client.scheduler.address])):
        outs[name] = tmp_path / name
        r = invoke(
            [
                "import",
                "fhir",
                str(feed),
                "--out",
                str(outs[name]),
                "--pseudonymise-key-file",
                str(keyfile),
                *extra,
            ],
            env={"INTEROP_PSEUDONYM_KEY": None},
        )
        assert r.returncode == 0, r.stderr
        assert "4 patient record(s)" in r.stdout + r.stderr
    assert "FHIR XML is not supported" in (outs["dask"] / "report.txt").read_text()
    assert sorted_outputs(outs["dask"]) == sorted_outputs(outs["one"])


@pytest.mark.slow
def test_sigterm_during_a_dask_import_leaves_no_temporary_file(tmp_path):
    import subprocess
    import sys
    import time

    from tests import data

    sbml, card, label = load_synth_model(Settings(home=tmp_path, database_url="sqlite://"), None)
    write_synthetic_feed(tmp_path / "feed", 60, sbml=sbml, card=card, label=label, fmt="ndjson", days=7)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(data.ROOT), INTEROP_PSEUDONYM_KEY=KEY.decode())
    cmd = [sys.executable, "-m", "interop", "import", "fhir", str(tmp_path / "feed"), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list(out.glob(".parallel-*")) and time.monotonic() < deadline:  # the stage: import under way
        time.sleep(0.05)
    time.sleep(0.3)  # mid-import: the 2,760 resources take seconds on the workers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, proc.stderr.read() if proc.stderr else ""
    left = [p.name for p in out.rglob("*")]
    assert not [n for n in left if n.startswith((".parallel-", ".tmp-")) or ".sqlite" in n], left
