"""Background jobs for long work (twin fits, validation runs): a small thread pool, a progress
fraction and message the page polls, and the result or the one-line error.

A job belongs to the session that started it: another session asking for it gets 404, as for an
unknown id. Finished jobs are kept for an hour (the page reads their result), at most 200; the
folder a job wrote into (its ``workdir``) goes with it.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interop.errors import InteropError

__all__ = ["Job", "JobRunner", "Progress"]

State = Literal["queued", "running", "done", "failed"]
KEEP_S = 3600.0
MAX_JOBS = 200


@dataclass
class Job:
    id: str
    owner: str  # the starting session's ``owner`` tag
    kind: str
    state: State = "queued"
    done: float = 0.0
    message: str = "waiting to start"
    result: Any = None
    error: str | None = None
    finished_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    workdir: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "done": round(self.done, 3),
            "message": self.message,
            "error": self.error,
            "seconds": round(time.monotonic() - self.started_at, 1),
        }


Progress = Callable[[float, str], None]


class JobRunner:
    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="interop-web-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(
        self, owner: str, kind: str, work: Callable[[Progress], Any], workdir: Path | None = None
    ) -> Job:
        """Run ``work(progress)`` in the background; ``progress(fraction, message)`` updates the job."""
        job = Job(secrets.token_urlsafe(16), owner, kind, workdir=workdir)
        with self._lock:
            self._prune()
            self._jobs[job.id] = job

        def progress(fraction: float, message: str) -> None:
            job.done, job.message = max(0.0, min(1.0, fraction)), message

        def run() -> None:
            job.state = "running"
            try:
                job.result = work(progress)
                job.state, job.done, job.message = "done", 1.0, "finished"
            except InteropError as exc:
                job.state, job.error = "failed", " ".join(str(exc).split())[:500]
            except Exception as exc:  # noqa: BLE001 - a job's failure is shown, never lost
                job.state, job.error = "failed", f"internal error ({type(exc).__name__})"
                import logging

                logging.getLogger(__name__).exception("web job %s failed", kind)
            finally:
                job.finished_at = time.monotonic()

        self._pool.submit(run)
        return job

    def get(self, job_id: str, owner: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def _drop(self, job_id: str) -> None:
        job = self._jobs.pop(job_id)
        if job.workdir is not None:
            shutil.rmtree(job.workdir, ignore_errors=True)

    def _prune(self) -> None:
        now = time.monotonic()
        for k in [k for k, j in self._jobs.items() if j.finished_at and now - j.finished_at > KEEP_S]:
            self._drop(k)
        while len(self._jobs) >= MAX_JOBS:
            done = [k for k, j in self._jobs.items() if j.finished_at]
            if not done:
                break
            self._drop(done[0])

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
