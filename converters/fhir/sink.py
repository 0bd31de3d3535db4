"""Where converted items wait until every resource is read: in memory, or spooled to SQLite.

A record can only be written once the whole feed is read (its items come from many files),
so a large import spools items to a temporary SQLite file (stdlib, bounded memory, grouping
by patient for free) instead of holding them as objects. Item ids are unique per record: a
second resource with the same id is reported as a duplicate, never written twice.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import tempfile
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from interop.schema import Condition, Dose, Measurement, Patient, PatientRecord

__all__ = ["ItemSink", "MemorySink", "PartSpool", "SpoolSink", "bucket_of", "kind_of"]

KINDS: dict[type, str] = {Measurement: "measurements", Dose: "doses", Condition: "conditions"}
CLASSES: dict[str, Any] = {v: k for k, v in KINDS.items()}


def kind_of(item: Any) -> str:
    return KINDS[type(item)]


class ItemSink(Protocol):
    def add_patient(self, patient: Patient) -> bool: ...
    def add(self, pid: str, item: Any) -> bool: ...
    def records(self) -> Iterator[PatientRecord]: ...
    def close(self) -> None: ...


class MemorySink:
    """Items as objects: for bundles and tests."""

    def __init__(self) -> None:
        self.patients: dict[str, Patient] = {}
        self.items: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))

    def add_patient(self, patient: Patient) -> bool:
        if patient.id in self.patients:
            return False
        self.patients[patient.id] = patient
        return True

    def add(self, pid: str, item: Any) -> bool:
        bucket = self.items[pid][kind_of(item)]
        if item.id in bucket:
            return False
        bucket[item.id] = item
        return True

    def records(self) -> Iterator[PatientRecord]:
        for pid, p in self.patients.items():
            kinds = self.items.get(pid, {})
            yield PatientRecord(patient=p, **{k: tuple(v.values()) for k, v in kinds.items()})

    def close(self) -> None:
        self.items.clear()


class SpoolSink:
    """Items as JSON rows in a temporary SQLite file: for bulk imports."""

    def __init__(self, directory: Path | None = None) -> None:
        self._tmp = tempfile.NamedTemporaryFile(suffix=".sqlite", dir=directory, delete=False)  # noqa: SIM115
        self._tmp.close()
        self.path = Path(self._tmp.name)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE patient (pid TEXT PRIMARY KEY, json TEXT NOT NULL)")
        self.db.execute(
            "CREATE TABLE item (pid TEXT, kind TEXT, id TEXT, json TEXT NOT NULL, "
            "PRIMARY KEY (pid, kind, id))"
        )

    def add_patient(self, patient: Patient) -> bool:
        return self.add_patient_json(patient.id, patient.model_dump_json())

    def add(self, pid: str, item: Any) -> bool:
        return self.add_json(pid, kind_of(item), item.id, item.model_dump_json())

    def add_patient_json(self, pid: str, text: str) -> bool:
        """A Patient as JSON; False when the patient is already there (the first one is kept)."""
        cur = self.db.execute("INSERT OR IGNORE INTO patient VALUES (?, ?)", (pid, text))
        return cur.rowcount == 1

    def add_json(self, pid: str, kind: str, item_id: str, text: str) -> bool:
        """An item as JSON; False when the record already has an item of that kind and id."""
        cur = self.db.execute("INSERT OR IGNORE INTO item VALUES (?, ?, ?, ?)", (pid, kind, item_id, text))
        return cur.rowcount == 1

    def records(self) -> Iterator[PatientRecord]:
        self.db.commit()
        for pid, pjson in self.db.execute("SELECT pid, json FROM patient ORDER BY pid").fetchall():
            kinds: dict[str, list[Any]] = defaultdict(list)
            for kind, ijson in self.db.execute(
                "SELECT kind, json FROM item WHERE pid = ? ORDER BY rowid", (pid,)
            ):
                kinds[kind].append(CLASSES[kind].model_validate_json(ijson))
            yield PatientRecord(
                patient=Patient.model_validate_json(pjson), **{k: tuple(v) for k, v in kinds.items()}
            )

    def close(self) -> None:
        self.db.close()
        self.path.unlink(missing_ok=True)


def bucket_of(pid: str, buckets: int) -> int:
    """Which of ``buckets`` reducers owns patient ``pid`` (stable across processes and machines)."""
    return zlib.crc32(pid.encode()) % buckets


class PartSpool:
    """What one partition of a parallel import produced, in an SQLite file on shared storage.

    Patients and items carry the bucket (:func:`bucket_of`) of their patient so that each
    reducer reads only its own; resources waiting for context and body weights are kept for
    the reducers' final pass. Rows keep the order they were read in (``rowid``).
    """

    def __init__(self, path: Path, buckets: int, *, create: bool = True) -> None:
        self.path, self.buckets, self._done = path, buckets, not create
        # Written under a temporary name and renamed by commit(): a task rerun after a worker died
        # rewrites the file while a reducer may be reading it, and a reader must see a whole file.
        self._tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}") if create else path
        self.db = sqlite3.connect(self._tmp)
        if create:
            self.db.execute("PRAGMA journal_mode=OFF")
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.executescript(
                "CREATE TABLE patient (pid TEXT PRIMARY KEY, bucket INTEGER, json TEXT NOT NULL);"
                "CREATE TABLE item (pid TEXT, kind TEXT, id TEXT, bucket INTEGER, json TEXT NOT NULL, "
                "PRIMARY KEY (pid, kind, id));"
                "CREATE TABLE deferred (ref TEXT, json TEXT NOT NULL);"
                "CREATE TABLE weight (pid TEXT, bucket INTEGER, time TEXT, kg REAL);"
            )

    def add_patient(self, patient: Patient) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO patient VALUES (?, ?, ?)",
            (patient.id, bucket_of(patient.id, self.buckets), patient.model_dump_json()),
        )
        return cur.rowcount == 1

    def add(self, pid: str, item: Any) -> bool:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO item VALUES (?, ?, ?, ?, ?)",
            (pid, kind_of(item), item.id, bucket_of(pid, self.buckets), item.model_dump_json()),
        )
        return cur.rowcount == 1

    def add_deferred(self, ref: str | None, text: str) -> None:
        self.db.execute("INSERT INTO deferred VALUES (?, ?)", (ref, text))

    def add_weights(self, weights: dict[str, list[tuple[dt.datetime, float]]]) -> None:
        self.db.executemany(
            "INSERT INTO weight VALUES (?, ?, ?, ?)",
            (
                (pid, bucket_of(pid, self.buckets), t.isoformat(), kg)
                for pid, series in weights.items()
                for t, kg in series
            ),
        )

    def commit(self) -> None:
        """Finish the file and put it in place (atomically)."""
        self.db.execute("CREATE INDEX patient_bucket ON patient (bucket)")
        self.db.execute("CREATE INDEX item_bucket ON item (bucket)")
        self.db.commit()
        self.db.close()
        os.replace(self._tmp, self.path)
        self._done = True

    # -- the reducers' side ---------------------------------------------------------------------
    def patients(self, bucket: int) -> Iterator[tuple[str, str]]:
        yield from self.db.execute("SELECT pid, json FROM patient WHERE bucket = ? ORDER BY rowid", (bucket,))

    def items(self, bucket: int) -> Iterator[tuple[str, str, str, str]]:
        yield from self.db.execute(
            "SELECT pid, kind, id, json FROM item WHERE bucket = ? ORDER BY rowid", (bucket,)
        )

    def deferred(self) -> Iterator[tuple[str | None, str]]:
        yield from self.db.execute("SELECT ref, json FROM deferred ORDER BY rowid")

    def weights(self, bucket: int) -> Iterator[tuple[str, dt.datetime, float]]:
        for pid, t, kg in self.db.execute(
            "SELECT pid, time, kg FROM weight WHERE bucket = ? ORDER BY rowid", (bucket,)
        ):
            yield pid, dt.datetime.fromisoformat(t), kg

    def close(self) -> None:
        """Close; a file never committed is removed."""
        self.db.close()
        if not self._done:
            self._tmp.unlink(missing_ok=True)
