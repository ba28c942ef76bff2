"""Grading submissions N at a time: worker processes, a progress line, resuming a stopped run.

Each worker is a process of its own with its own nbgrader API and gradebook connection; it
grades one submission at a time (autograde in the grader's sandbox, then feedback) and records
it as done (Course.save_state). Submissions are independent: the same submission gets the same
grades whichever worker grades it, in whatever order, serially or in parallel.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from grader.sandbox import execute as sandbox
from grader.grading.pipeline import GRADER, REPOSITORY, SOURCE_NOTEBOOK, Course, GradingError, StudentResult

# Files whose content decides a grade: changing any of them regrades everything on resume.
GRADING_FILES = [SOURCE_NOTEBOOK, REPOSITORY / "fr_checks.py", REPOSITORY / "fr_utils.py",
                 *sorted(path for part in ("", "course/", "grading/", "sandbox/") for path in GRADER.glob(part + "*.py")),
                 *sorted((REPOSITORY / "facerec").glob("*.py"))]


def fingerprint(settings: sandbox.SandboxSettings) -> str:
    """The grader's version: its files, and the limits a submission runs under."""
    digest = hashlib.sha256()
    for path in GRADING_FILES:
        if path.exists():
            digest.update(str(path.relative_to(REPOSITORY)).encode() + b"\0" + path.read_bytes())
    digest.update(f"{settings.cell_timeout}|{settings.notebook_timeout}|{settings.memory_bytes}".encode())
    return digest.hexdigest()


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
    student: str
    sha256: str
    rejected: str | None
    notes: list[str]


# ---------------------------------------------------------------- in a worker process

_COURSE: Course | None = None
_SETTINGS: sandbox.SandboxSettings | None = None
_FINGERPRINT = ""


def _start_worker(root: str, db_url: str, settings: sandbox.SandboxSettings, print_fingerprint: str):
    global _COURSE, _SETTINGS, _FINGERPRINT
    import signal

    from grader.sandbox import isolation

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grading command decides when to stop
    isolation.die_with_parent()  # ... and a worker never outlives it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _COURSE = Course(root, db_url=db_url, sandbox=True)
    _SETTINGS, _FINGERPRINT = settings, print_fingerprint


def grade_one(task: Task) -> StudentResult:
    """Autograde (in the sandbox) and write the feedback of one submission, in a worker."""
    course = _COURSE
    course.forget(task.student)
    job = sandbox.Job(task.student, _SETTINGS, course.root / "logs" / f"{task.student}.log",
                      rejected=task.rejected, notes=list(task.notes))
    sandbox.CURRENT = job
    try:
        start = time.perf_counter()
        result = course.autograde(task.student)
        if result.graded:
            try:
                feedback_start = time.perf_counter()
                result.feedback = course.feedback(task.student)
                job.timings["feedback"] = time.perf_counter() - feedback_start
            except GradingError as error:
                result.status = f"graded; no feedback: {str(error).splitlines()[0]}"
        result.seconds = time.perf_counter() - start
    finally:
        sandbox.CURRENT = None
    result.notes = list(job.notes) if result.graded or job.notes else []
    result.timings = dict(job.timings)
    for cell in job.cells:
        key = _timing_key(cell["kind"])
        result.timings[key] = result.timings.get(key, 0.0) + cell["seconds"]
    if result.graded:
        course.save_state(result, task.sha256, _FINGERPRINT)
    return result


def _timing_key(kind: str) -> str:
    return {"setup": "imports", "model": "model load", "test": "tests", "hidden": "tests"}.get(kind, "student code")


# ---------------------------------------------------------------- the progress line


class Progress:
    """done / failed / remaining and an estimate of the time left, on stderr."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.failed = total, 0, 0
        self.start = time.monotonic()
        self.stream = stream
        self.tty = getattr(stream, "isatty", lambda: False)()

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
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.done} done, {self.failed} failed, "
                f"{remaining} remaining, ETA {eta}")

    def show(self):
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
            if self.done + self.failed == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def run(course: Course, tasks: list[Task], settings: sandbox.SandboxSettings, jobs: int,
        on_result, progress: Progress) -> list[StudentResult]:
    """Grade `tasks` with `jobs` worker processes; call on_result(result) as each one finishes.

    At most `jobs` submissions are handed out at a time, so that an interrupt (Ctrl-C) stops
    the run at once: the workers are ended, what they were grading is graded again next time.
    """
    if not tasks:
        return []
    results = []
    queue = list(tasks)
    pending = {}
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("spawn"),
                               initializer=_start_worker,
                               initargs=(str(course.root), course.db_url, settings, fingerprint(settings)))

    def hand_out():
        while queue and len(pending) < jobs:
            task = queue.pop(0)
            pending[pool.submit(grade_one, task)] = task

    try:
        hand_out()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                task = pending.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # a worker failed (not the student's code: that runs in a kernel)
                    result = StudentResult(task.student, status=f"not graded: the grader failed "
                                           f"({type(error).__name__}: {error})")
                results.append(result)
                progress.clear()
                ok = result.graded  # before on_result, which may call a rejected file "unreadable"
                on_result(result)
                progress.update(ok)
            hand_out()
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def read_settings(cell_timeout: float, notebook_timeout: float, memory_gb: float,
                  zygote: sandbox.Zygote) -> sandbox.SandboxSettings:
    """Limits of a kernel. TensorFlow gets one thread per kernel whatever --jobs is, so that a
    submission is computed the same way serially and in parallel (and N jobs fill N cores)."""
    return zygote.settings(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout,
                           memory_bytes=int(memory_gb * (1 << 30)), threads=1)


def hidden_from_kernels(course: Course, submissions: Path, out: Path) -> list[Path]:
    """Folders the kernels must not see, besides the grader itself."""
    return [course.root, Path(submissions), Path(out), GRADER]
