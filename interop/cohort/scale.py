"""Run batches of work on Dask distributed (or in this process), with per-batch checkpoints.

- ``scheduler=None``: a ``LocalCluster`` of ``workers`` processes (one thread each: a compiled
  roadrunner model is not thread-safe); ``"tcp://host:port"``: any running scheduler;
  ``"single"``: no Dask, batches run one after the other here (the reference result).
- Each batch returns named pandas tables. When a checkpoint folder is given, every finished
  batch is written there by this (the client) process as ``batch-NNNNNN.<table>.parquet`` and
  then marked done (``batch-NNNNNN.done``, written last), so a remote cluster needs no shared
  disk and an interrupted run resumes with the batches that are not yet done.
- Results come back in batch order whatever the order of completion: same input, same seed,
  same tables as the single-process run.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from interop.errors import InteropError, MissingExtraError

__all__ = ["BatchRunner", "Checkpoints", "dask_client", "run_batches"]

log = logging.getLogger(__name__)

Tables = dict[str, pd.DataFrame]
Progress = Callable[[int, int], None]


class Checkpoints:
    """Finished batches of one run, on disk."""

    def __init__(self, directory: Path, run_key: str, n_batches: int) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = self.dir / "run.json"
        meta = {"run_key": run_key, "n_batches": n_batches}
        if manifest.exists():
            old = json.loads(manifest.read_text())
            if old != meta:
                raise InteropError(
                    f"checkpoint folder holds another run ({old.get('run_key')}); use a fresh folder",
                    source=str(self.dir),
                )
        else:
            manifest.write_text(json.dumps(meta))

    def _stem(self, i: int) -> Path:
        return self.dir / f"batch-{i:06d}"

    def done(self, i: int) -> bool:
        return self._stem(i).with_suffix(".done").exists()

    def save(self, i: int, tables: Tables) -> None:
        names = []
        for name, df in tables.items():
            path = Path(f"{self._stem(i)}.{name}.parquet")
            tmp = path.with_suffix(".tmp")
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
            os.replace(tmp, path)
            names.append(name)
        self._stem(i).with_suffix(".done").write_text(json.dumps(names))

    def load(self, i: int) -> Tables:
        names = json.loads(self._stem(i).with_suffix(".done").read_text())
        return {
            n: pq.read_table(f"{self._stem(i)}.{n}.parquet", use_threads=False).to_pandas() for n in names
        }


@contextmanager
def dask_client(scheduler: str | None, workers: int = 2) -> Iterator[Any]:
    """A Dask ``Client``: of a new ``LocalCluster`` of ``workers`` processes (one thread each)
    when ``scheduler`` is None, else of the running scheduler at that address."""
    try:
        from dask.distributed import Client, LocalCluster  # the 'cluster' extra
    except ImportError as exc:
        raise MissingExtraError(
            "dask.distributed",
            extra="cluster",
            purpose="a Dask cluster (--scheduler single runs in one process without it)",
        ) from exc
    with ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=30))
            except OSError as exc:
                raise InteropError(f"cannot reach the Dask scheduler: {exc}", source=scheduler) from exc
        yield client


class BatchRunner:
    """Where batches run: a LocalCluster (default), a scheduler address, or this process."""

    def __init__(self, scheduler: str | None = None, workers: int = 2) -> None:
        if scheduler not in (None, "single", "local") and not scheduler.startswith(("tcp://", "tls://")):
            raise InteropError(
                f"unknown scheduler {scheduler!r}: give tcp://host:port, 'local' or 'single'",
                field="scheduler",
            )
        self.scheduler = None if scheduler == "local" else scheduler
        self.workers = workers

    def run(
        self,
        fn: Callable[..., Tables],
        args: Sequence[tuple[Any, ...]],
        *,
        checkpoints: Checkpoints | None = None,
        progress: Progress | None = None,
        shared: Any = None,
    ) -> list[Tables]:
        """``fn(shared, *args[i])`` for every batch i; results in batch order."""
        results: dict[int, Tables] = {}
        todo = []
        for i in range(len(args)):
            if checkpoints is not None and checkpoints.done(i):
                results[i] = checkpoints.load(i)
            else:
                todo.append(i)
        if results:
            log.info("resuming: %d of %d batches already done", len(results), len(args))
        total = len(args)

        def finish(i: int, tables: Tables) -> None:
            results[i] = tables
            if checkpoints is not None:
                checkpoints.save(i, tables)
            if progress is not None:
                progress(len(results), total)

        if progress is not None:
            progress(len(results), total)
        if todo and self.scheduler == "single":
            for i in todo:
                finish(i, fn(shared, *args[i]))
        elif todo:
            self._run_dask(fn, args, todo, shared, finish)
        return [results[i] for i in range(len(args))]

    def _run_dask(
        self,
        fn: Callable[..., Tables],
        args: Sequence[tuple[Any, ...]],
        todo: list[int],
        shared: Any,
        finish: Callable[[int, Tables], None],
    ) -> None:
        with dask_client(self.scheduler, self.workers) as client:  # MissingExtraError without dask
            from dask.distributed import as_completed

            # The shared spec (SBML text, card, design) is sent once to every worker.
            shared_f = client.scatter(shared, broadcast=True) if shared is not None else None
            futures = {
                client.submit(fn, shared_f, *args[i], pure=False, key=f"batch-{i}-{id(args)}"): i
                for i in todo
            }
            for fut in as_completed(futures):
                i = futures.pop(fut)
                finish(i, fut.result())
                fut.release()


def run_batches(
    fn: Callable[..., Tables],
    shared: Any,
    args: Sequence[tuple[Any, ...]],
    *,
    scheduler: str | None = None,
    workers: int = 2,
    checkpoint_dir: Path | None = None,
    run_key: str = "",
    progress: Progress | None = None,
) -> list[Tables]:
    """Convenience wrapper of :class:`BatchRunner` (see the module docstring)."""
    checkpoints = Checkpoints(checkpoint_dir, run_key, len(args)) if checkpoint_dir else None
    return BatchRunner(scheduler, workers).run(
        fn, args, checkpoints=checkpoints, progress=progress, shared=shared
    )
