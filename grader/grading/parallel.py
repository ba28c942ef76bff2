"""Grading submissions N at a time, wherever the jobs run: the run loop, a progress line, resuming.

A runner (grader/grading/jobs.py's `Runner`: the local pool of grader/grading/local.py or the Dask
cluster of grader/grading/cluster.py) grades each job and sends back its files and scores; this
process alone records them (jobs.record: the course folder, the gradebook) and marks the
submission as done (Course.save_state). A student's result is recorded once: a second result for
the same student (a job a cluster ran twice) is ignored. Submissions are independent: the same
submission gets the same grades whichever worker grades it, in whatever order, serially or in
parallel, here or on a cluster.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from grader.grading import jobs as jobs_
from grader.grading.jobs import GRADING_FILES, Job, Limits, fingerprint  # noqa: F401 (GRADING_FILES: for tests)
from grader.grading.pipeline import GRADER, Course, StudentResult


def since_last_run(course: Course, student: str, sha256: str, version: str) -> str:
    """Why a submission is graded (again): "new" (no earlier run graded it), "changed" (its file
    differs from the one an earlier run graded), "grader changed" (same file, other tests or
    limits), or "incomplete" (same file and grader, but its grades or feedback are gone)."""
    import json

    try:
        state = json.loads(course.state_path(student).read_text())
    except (OSError, ValueError):
        return "new"
    if state.get("sha256") != sha256:
        return "changed"
    return "grader changed" if state.get("fingerprint") != version else "incomplete"


@dataclass
class Task:
    """One submission to grade, as the grading command knows it (the job plus its file's hash)."""

    job: Job
    sha256: str

    @property
    def student(self) -> str:
        return self.job.student


# ---------------------------------------------------------------- the progress line


class Progress:
    """done / failed / remaining and an estimate of the time left, on stderr."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.failed = total, 0, 0
        self.start = time.monotonic()
        self.stream = stream
        self.tty = getattr(stream, "isatty", lambda: False)()
        self.workers = None  # a callable: the number of workers grading now (set by run())
        self.most_workers = 0

    def update(self, ok: bool):
        self.done += ok
        self.failed += not ok
        self.show()

    def clear(self):
        """On a terminal, erase the progress line so that another line can be printed in its place."""
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self) -> str:
        finished = self.done + self.failed
        remaining = self.total - finished
        elapsed = time.monotonic() - self.start
        eta = f"{elapsed / finished * remaining:.0f} s" if finished else "?"
        width = 24
        filled = int(width * finished / self.total) if self.total else width
        workers = self.workers() if self.workers else 0
        self.most_workers = max(self.most_workers, workers)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done} done, {self.failed} failed, "
                f"{remaining} remaining, ETA {eta}" + (f", {workers} worker(s)" if self.workers else ""))

    def show(self):
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
            if self.done + self.failed == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def run(course: Course, tasks: list[Task], runner, on_result, progress: "Progress") -> list[StudentResult]:
    """Grade `tasks` with `runner`; record each result here and call on_result(result) as each one
    finishes. An interrupt (Ctrl-C) or a lost cluster closes the runner: what was recorded is
    kept, the rest is graded again next time."""
    if not tasks:
        return []
    results, recorded = [], set()
    by_student = {task.student: task for task in tasks}
    progress.workers = runner.workers
    try:
        for job, outcome in runner.grade([task.job for task in tasks]):
            if job.student in recorded:  # a job run twice (a worker lost after it finished): once is enough
                continue
            recorded.add(job.student)
            if isinstance(outcome, BaseException):  # not the student's code: that runs in a kernel
                result = StudentResult(job.student, status=f"not graded: the grader failed "
                                       f"({type(outcome).__name__}: {outcome})")
            else:
                course.forget(job.student)
                result = jobs_.record(course, job, outcome)
                if result.graded:
                    course.save_state(result, by_student[job.student].sha256, job.version)
            results.append(result)
            progress.clear()
            ok = result.graded  # before on_result, which may call a rejected file "unreadable"
            on_result(result)
            progress.update(ok)
    finally:
        runner.close()
    return results


def limits(cell_timeout: float, notebook_timeout: float, memory_gb: float) -> Limits:
    """Limits of a kernel. TensorFlow gets one thread per kernel whatever the number of jobs, so
    that a submission is computed the same way serially and in parallel (and N jobs fill N cores)."""
    return Limits(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                  memory_bytes=int(memory_gb * (1 << 30)))


def hidden_from_kernels(course: Course, submissions: Path, out: Path) -> list[Path]:
    """Folders the kernels must not see, besides the grader itself."""
    return [course.root, Path(submissions), Path(out), GRADER]
