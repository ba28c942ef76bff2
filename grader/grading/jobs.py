"""One submission as a job: what goes to a worker, what comes back, and how the grading command
records it. The same for every way of running jobs (grader/grading/local.py, grader/grading/cluster.py).

    Job        the student's id, the notebook to grade (bytes), why it is not graded (a file
               that is not a notebook), the notes so far, the limits of a kernel and the
               grader's version. Nothing else: no database URL, no course folder, no path of
               the grading machine.
    JobResult  the status, the score of every graded cell, the files of the autograded folder
               and of the feedback folder, the student's log, notes, timings.

A worker grades a job in a course folder of its own (a throw-away folder with its own SQLite
gradebook, made once per worker process): nbgrader's autograde with the notebook run in the
sandbox, then the feedback, exactly as a local run used to do in the real course. It returns the
files; `record` (in the process that runs `python -m grader.grade`, and only there) writes them
into the real course folder and the scores into the real gradebook, with nbgrader's own scoring
steps (SaveAutoGrades, AssignLatePenalties) run on the returned autograded notebook. The scores
the real gradebook then holds are checked against the worker's.

Every runner has the same small interface (`Runner`): `grade(jobs)` yields (job, JobResult or
the exception that stopped it) as jobs finish, `workers()` says how many grade at once, `close()`.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from grader.grading.pipeline import ASSIGNMENT, GRADER, NOTEBOOK, REPOSITORY, SOURCE_NOTEBOOK, Course, GradingError, StudentResult

# Files whose content decides a grade: changing any of them regrades everything on resume, and a
# worker whose files differ from the grading command's refuses to grade.
GRADING_FILES = [SOURCE_NOTEBOOK, REPOSITORY / "fr_checks.py", REPOSITORY / "fr_utils.py",
                 *sorted(path for part in ("", "course/", "grading/", "sandbox/") for path in GRADER.glob(part + "*.py")),
                 *sorted((REPOSITORY / "facerec").glob("*.py"))]


@dataclass(frozen=True)
class Limits:
    """The limits of one submission's kernel (TensorFlow always gets one thread)."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 600.0
    memory_bytes: int = 6 << 30


def fingerprint(limits: Limits) -> str:
    """The grader's version: its files, and the limits a submission runs under."""
    digest = hashlib.sha256()
    for path in GRADING_FILES:
        if path.exists():
            digest.update(str(path.relative_to(REPOSITORY)).encode() + b"\0" + path.read_bytes())
    digest.update(f"{limits.cell_timeout}|{limits.notebook_timeout}|{limits.memory_bytes}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Job:
    """What a worker receives for one submission (and all it receives)."""

    student: str
    notebook: bytes                 # the notebook to grade, UTF-8 (for a rejected file: the released one)
    limits: Limits
    version: str                    # fingerprint(limits) of the grading command
    rejected: str | None = None     # why the file is not a notebook: graded as the released one, 0 points
    notes: tuple[str, ...] = ()     # what reading the file found (format 3, not UTF-8, ...)


@dataclass
class JobResult:
    """What a worker sends back for one submission."""

    student: str
    status: str                                   # "graded", or "not graded: why (see <log>)"
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)
    autograded: dict[str, bytes] = field(default_factory=dict)   # autograded/<student>/Face_Recognition/*
    feedback: dict[str, bytes] = field(default_factory=dict)     # feedback/<student>/Face_Recognition/*
    log: bytes = b""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""                              # host:pid of the process that graded it

    @property
    def graded(self) -> bool:
        return self.status == "graded"


LOG_MARK = "<log>"  # where a status names the student's log; the recording side puts its own path there


class Runner(Protocol):
    """Where jobs run: N local worker processes (local.LocalPool) or a Dask cluster (cluster.DaskRunner)."""

    def grade(self, jobs: list[Job]) -> Iterator[tuple[Job, JobResult | BaseException]]:
        """Each job's result (or the exception that stopped it) as it finishes, each job once."""

    def workers(self) -> int:
        """How many submissions are graded at once right now."""

    def describe(self) -> str:
        """For the first lines of a run: '2 job(s)', 'the 3 worker(s) of the Dask cluster at ...'."""

    def close(self) -> None:
        """Stop: what is still being graded is dropped (a later run grades it again)."""


# ---------------------------------------------------------------- in a worker process


class WorkerError(Exception):
    """The worker cannot grade this job at all (another grader version, say)."""


class WorkerCourse:
    """A worker's own throw-away course folder: nbgrader's folders and an SQLite gradebook that
    holds the released assignment and the submissions this worker graded, and nothing else."""

    def __init__(self, folder: Path, template: Path | None = None):
        self.folder = Path(folder)
        root = self.folder / "course"
        if template is not None:  # a released course made once by the grading command (local jobs)
            shutil.copytree(template, root, symlinks=True)
            (root / "source").unlink(missing_ok=True)
        self.course = Course(root, sandbox=True)
        if template is None:
            self.course.release()
        self.versions: dict[Limits, str] = {}

    def version(self, limits: Limits) -> str:
        if limits not in self.versions:
            self.versions[limits] = fingerprint(limits)
        return self.versions[limits]

    def grade(self, job: Job, settings) -> JobResult:
        """Autograde (in the sandbox) and write the feedback of one submission; return the files."""
        from grader.sandbox import execute as sandbox

        worker = f"{socket.gethostname()}:{os.getpid()}"
        if job.version != self.version(job.limits):
            raise WorkerError(f"worker {worker} has another version of the grader than the grading command "
                              f"(its files under {REPOSITORY} differ): set it up from the same commit")
        course, student = self.course, job.student
        for step in ("submitted", "autograded", "feedback"):
            shutil.rmtree(course.path(step, student), ignore_errors=True)
        course.submit(student, job.notebook.decode("utf-8"))
        log = course.root / "logs" / f"{student}.log"
        log.parent.mkdir(exist_ok=True)
        log.unlink(missing_ok=True)
        current = sandbox.Job(student, settings, log, rejected=job.rejected, notes=list(job.notes))
        sandbox.CURRENT = current
        try:
            start = time.perf_counter()
            result = course.autograde(student)
            if result.graded:
                try:
                    feedback_start = time.perf_counter()
                    course.feedback(student)
                    current.timings["feedback"] = time.perf_counter() - feedback_start
                except GradingError as error:
                    result.status = f"graded; no feedback: {str(error).splitlines()[0]}"
            seconds = time.perf_counter() - start
        finally:
            sandbox.CURRENT = None
        timings = dict(current.timings)
        for cell in current.cells:
            key = _timing_key(cell["kind"])
            timings[key] = timings.get(key, 0.0) + cell["seconds"]
        done = JobResult(student, result.status.replace(str(log), LOG_MARK), cells=dict(result.cells),
                         notes=list(current.notes) if result.graded or current.notes else [], timings=timings,
                         seconds=seconds, worker=worker)
        if result.graded:
            done.autograded = _files(course.path("autograded", student))
            done.feedback = _files(course.path("feedback", student))
        done.log = log.read_bytes() if log.exists() else b""
        for step in ("submitted", "autograded", "feedback"):
            shutil.rmtree(course.path(step, student), ignore_errors=True)
        log.unlink(missing_ok=True)
        return done

    def close(self):
        shutil.rmtree(self.folder, ignore_errors=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _timing_key(kind: str) -> str:
    return {"setup": "imports", "model": "model load", "test": "tests", "hidden": "tests"}.get(kind, "student code")


def make_template(folder: Path) -> Path:
    """A released course to copy into each local worker's own folder (nbgrader's first gradebook
    set-up runs a subprocess and takes seconds: once per run instead of once per worker)."""
    course = Course(Path(folder) / "template", sandbox=True)
    course.release()
    (course.root / "source").unlink(missing_ok=True)
    return course.root


# ---------------------------------------------------------------- in the grading command


def record(course: Course, job: Job, result: JobResult) -> StudentResult:
    """Write a worker's result into the course: the log, the autograded and feedback folders, the
    scores in the gradebook (nbgrader's SaveAutoGrades and AssignLatePenalties on the returned
    notebook, as autograde does). Only the grading command calls this."""
    student = job.student
    log = course.root / "logs" / f"{student}.log"
    log.parent.mkdir(exist_ok=True)
    log.write_bytes(result.log)
    status = result.status.replace(LOG_MARK, str(log))
    if not result.status.startswith("graded"):
        # As nbgrader's autograde leaves it when it fails: the student and the submission exist,
        # without scores (the formgrader lists it as needing grading).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _create_submission(course, student)
        return StudentResult(student, seconds=result.seconds, status=status, notes=list(result.notes),
                             timings=dict(result.timings))
    _write_folder(course.path("autograded", student), result.autograded)
    _write_folder(course.path("feedback", student), result.feedback)
    _save_grades(course, student, result.autograded[NOTEBOOK])
    cells = course.scores(student)
    if cells != result.cells:
        status = (f"not graded: the scores recorded ({sum(s for s, _ in cells.values()):g}) differ from the "
                  f"worker's ({sum(s for s, _ in result.cells.values()):g}); see {log}")
    feedback = course.path("feedback", student) / f"{ASSIGNMENT}.html"
    return StudentResult(student, cells=cells, seconds=result.seconds, status=status,
                         feedback=feedback if feedback.exists() else None, notes=list(result.notes),
                         timings=dict(result.timings))


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        for path in folder.rglob("*"):  # nbgrader leaves autograded files read-only
            if path.is_file():
                path.chmod(0o644)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, data in files.items():
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            raise GradingError(f"a worker returned a file outside its folder: {name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _save_grades(course: Course, student: str, notebook: bytes) -> None:
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades

    with warnings.catch_warnings():  # SQLAlchemy's notes on nbgrader's own session use
        warnings.simplefilter("ignore")
        _save_grades_quietly(course, student, notebook, nbformat, Gradebook, (SaveAutoGrades, AssignLatePenalties))


def _create_submission(course: Course, student: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(course.coursedir.db_url, course.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(ASSIGNMENT, student)


def _save_grades_quietly(course, student, notebook, nbformat, Gradebook, steps) -> None:
    _create_submission(course, student)
    nb = nbformat.reads(notebook.decode("utf-8"), as_version=4)
    resources = {"nbgrader": {"notebook": ASSIGNMENT, "assignment": ASSIGNMENT, "student": student,
                              "db_url": course.coursedir.db_url}}
    for step in steps:
        nb, resources = step(config=course.api.config).preprocess(nb, resources)


def scratch_folder(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
