"""Jobs on this machine: N worker processes sharing one sandbox (zygote).

Each worker process grades one job at a time in its own throw-away course folder
(jobs.WorkerCourse), in its main thread (where the sandbox's limits on the grader's own work use
SIGALRM), and sends the files back; it never sees the course folder or the gradebook's URL. Used
by `python -m grader.grade --jobs N`, and inside each Dask worker process (grader/grading/cluster.py).
"""
from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from grader.grading.jobs import Job, JobResult, WorkerCourse, scratch_folder

# ---------------------------------------------------------------- in a worker process

_WORKER: WorkerCourse | None = None
_SANDBOX: dict = {}


def _start_worker(sandbox: dict, folder: str, template: str | None):
    """A worker process's start: its course folder, and where the sandbox (zygote) listens."""
    global _WORKER, _SANDBOX
    import atexit
    import signal

    from grader.sandbox import isolation

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grading command decides when to stop
    isolation.die_with_parent()  # ... and a worker never outlives it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _SANDBOX = dict(sandbox)
    _WORKER = WorkerCourse(Path(folder) / f"worker-{os.getpid()}", Path(template) if template else None)
    atexit.register(_WORKER.close)


def grade_job(job: Job) -> JobResult:
    """Grade one job in this worker process (the sandbox's limits are the job's)."""
    from grader.sandbox.execute import SandboxSettings

    settings = SandboxSettings(socket=_SANDBOX["socket"], encodings=_SANDBOX["encodings"],
                               threshold=_SANDBOX["threshold"], cell_timeout=job.limits.cell_timeout,
                               notebook_timeout=job.limits.notebook_timeout,
                               memory_bytes=job.limits.memory_bytes, threads=1)
    return _WORKER.grade(job, settings)


# ---------------------------------------------------------------- the pool


class LocalPool:
    """`jobs` worker processes of this machine using `zygote` (grader.sandbox.execute.Zygote).

    At most `jobs` submissions are handed out at a time, so that an interrupt (Ctrl-C) stops the
    run at once: the workers are ended, what they were grading is graded again next time.
    """

    def __init__(self, zygote, jobs: int, template: Path | None = None):
        self.jobs = max(1, jobs)
        self.folder = scratch_folder("fr-workers-")
        sandbox = ({"socket": zygote.socket, "encodings": zygote.encodings, "threshold": zygote.ready["threshold"]}
                   if zygote is not None else {"socket": "", "encodings": "", "threshold": 0.0})  # no notebook runs
        self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=get_context("spawn"),
                                        initializer=_start_worker,
                                        initargs=(sandbox, str(self.folder), str(template) if template else None))

    def workers(self) -> int:
        return self.jobs

    def describe(self) -> str:
        return f"{self.jobs} job(s)"

    def submit(self, job: Job) -> Future:
        return self.pool.submit(grade_job, job)

    def grade(self, jobs: list[Job]) -> Iterator[tuple[Job, JobResult | BaseException]]:
        queue, pending = list(jobs), {}
        while queue or pending:
            while queue and len(pending) < self.jobs:
                job = queue.pop(0)
                pending[self.submit(job)] = job
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                error = future.exception()
                yield job, error if error is not None else future.result()

    def close(self, wait_for_workers: bool = False) -> None:
        if not wait_for_workers:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=wait_for_workers, cancel_futures=True)
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


_TEMPLATES: dict[str, Path] = {}


def template(version: str) -> Path:
    """The released course the local workers copy (jobs.make_template), made once per grader
    version and process (tests grade many batches in one process) and removed at its exit."""
    if version not in _TEMPLATES:
        import atexit
        import shutil

        from grader.grading.jobs import make_template

        folder = scratch_folder("fr-template-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _TEMPLATES[version] = make_template(folder)
    return _TEMPLATES[version]
