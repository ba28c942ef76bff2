"""Grading a class, as a short pipeline of named steps on top of nbgrader's own Python API.

    course = Course()                      # the nbgrader course in grader/ (or Course(some_dir))
    course.release()                       # generate_assignment: student version + gradebook cells
    students = course.collect(folder)      # copy submissions into submitted/<student>/...
    for student in students:
        course.autograde(student)          # execute in a fresh kernel, score every test cell
        course.feedback(student)           # HTML feedback without hidden test code
    course.export(students, out)           # grades.csv + feedback/<student>.html

Each step calls nbgrader's `NbGraderAPI` with the settings of `grader/nbgrader_config.py`, so it
does exactly what the stock `nbgrader` commands do in that folder. `grader.grade` is the command
line on top of this module.
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors import OverwriteCells as _NbgraderOverwriteCells

ASSIGNMENT = "Face_Recognition"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
GRADER = Path(__file__).resolve().parent.parent
REPOSITORY = GRADER.parent
SOURCE_NOTEBOOK = GRADER / "source" / ASSIGNMENT / NOTEBOOK
STUDENT_NOTEBOOK = REPOSITORY / NOTEBOOK

# What a notebook needs beside it to run: the same names in the student's folder (the repository),
# in the source folder (as committed symbolic links) and, while grading, in each submission's folder.
COURSE_FILES = ("images", "keras-facenet-h5", "facerec", "fr_utils.py", "fr_checks.py", "grader")

# The largest feedback file kept (the sandbox caps a notebook's outputs well below this).
MAX_FEEDBACK_BYTES = 64 << 20

# The graded exercises; every graded cell's id starts with one of these names.
EXERCISES = ("triplet_loss", "verify", "who_is_it")

# nbgrader student ids become folder names and database keys: keep them plain.
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


class GradingError(Exception):
    """A step of the pipeline could not be done; the message says what to do."""


# ---------------------------------------------------------------- nbgrader preprocessors


GOING_FURTHER_TAG = "going-further"


class DropUngradedTail(NbGraderPreprocessor):
    """Before a submission runs, drop what cannot change its grade: every cell after the last
    graded cell (the ungraded "Going further" section, the closing sections, a student's own
    experiments at the end) and any other cell tagged `going-further`.

    Those cells take half a minute (they read LFW photos) and earn nothing: in stock nbgrader they
    would run after every test. One markdown note takes their place in the graded notebook, so
    the feedback says why they are missing. Cells with nbgrader metadata are never dropped.
    """

    def preprocess(self, nb, resources):
        graded = [i for i, cell in enumerate(nb.cells) if _nbgrader(cell).get("grade")]
        last = graded[-1] if graded else len(nb.cells) - 1
        kept, dropped, position = [], 0, 0
        for index, cell in enumerate(nb.cells):
            tagged = GOING_FURTHER_TAG in (cell.get("metadata", {}).get("tags") or [])
            if (index > last or tagged) and not _nbgrader(cell):
                dropped += 1
            else:
                kept.append(cell)
                position = len(kept) if index <= last else position
        if dropped:
            kept.insert(position, _markdown_cell(
                "grader-note-not-run",
                f"*Grader's note: {dropped} cell(s) after the last test cell (the ungraded "
                "\"Going further\" section and anything after the tests) were not run: they cannot "
                "change your grade.*"))
        nb.cells = kept
        return nb, resources


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def _markdown_cell(cell_id: str, text: str):
    import nbformat

    cell = nbformat.v4.new_markdown_cell(text)
    cell["id"] = cell_id
    return cell


class LinkCourseFiles(NbGraderPreprocessor):
    """Before a submission runs, link the course files into its folder (see COURSE_FILES).

    Anything a student submitted under those names is replaced: the notebook always runs with
    the course's own photos, model and helpers.
    """

    def preprocess(self, nb, resources):
        folder = Path(resources["metadata"]["path"])
        for name in COURSE_FILES:
            target = folder / name
            if target.is_symlink() or target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
            target.symlink_to(REPOSITORY / name, target_is_directory=(REPOSITORY / name).is_dir())
        return nb, resources


class UnlinkCourseFiles(NbGraderPreprocessor):
    """After a submission ran, remove the links again, leaving the folder as nbgrader made it."""

    def preprocess(self, nb, resources):
        folder = Path(resources["metadata"]["path"])
        for name in COURSE_FILES:
            if (folder / name).is_symlink():
                (folder / name).unlink()
        return nb, resources


class OverwriteCells(_NbgraderOverwriteCells):
    """nbgrader's OverwriteCells, which survives cells the gradebook does not know.

    A submission can hold a cell with nbgrader metadata under an id this assignment never had:
    pasted from another nbgrader notebook, or kept from an older release. nbgrader removes the
    unknown id and then, when it puts back deleted cells (`add_missing_cells`), fails on the
    id-less metadata it left ("KeyError: 'grade_id'"), and the whole submission is not graded.
    Such a cell is an ordinary cell of the student's: its leftover nbgrader metadata goes.

    It also removes the tags of nbgrader's cells (the released ones have none): nbgrader's Execute
    skips a cell tagged `skip-execution`, so a student who tags the test cells would otherwise see
    them pass, unrun, in the stock `nbgrader autograde`. (The grader's sandbox runs every cell.)
    """

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if "nbgrader" in cell.metadata:
            cell.metadata.pop("tags", None)
        return cell, resources

    def add_missing_grade_cells(self, nb, resources):
        self._forget_unknown_cells(nb)
        return super().add_missing_grade_cells(nb, resources)

    def add_missing_task_cells(self, nb, resources):
        self._forget_unknown_cells(nb)
        return super().add_missing_task_cells(nb, resources)

    def _forget_unknown_cells(self, nb):
        for cell in nb.cells:  # cells nbgrader put back are plain dicts, not NotebookNodes
            metadata = cell["metadata"]
            if "nbgrader" in metadata and "grade_id" not in metadata["nbgrader"]:
                del metadata["nbgrader"]


# ---------------------------------------------------------------- inert feedback

# What students' HTML and markdown may keep in the graded notebook and the feedback: text
# formatting, tables, links and images; never scripts, event handlers, frames, forms or styles.
SAFE_TAGS = ["a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details",
             "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol",
             "p", "pre", "s", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td",
             "tfoot", "th", "thead", "tr", "u", "ul"]
SAFE_ATTRIBUTES = {"*": ["class", "title"], "a": ["href", "title"], "img": ["src", "alt", "width", "height"],
                   "td": ["colspan", "rowspan", "align"], "th": ["colspan", "rowspan", "align"],
                   **{f"h{n}": ["id"] for n in range(1, 7)}}
# bleach needs about a second per 100 kB of tag-dense HTML: HTML and markdown outputs past these
# sizes are shown by their plain text, and markdown cells by a line saying so.
MAX_SANITIZED_CHARS = 100_000          # one output or markdown cell
MAX_SANITIZED_PER_NOTEBOOK = 500_000


def _sanitizer():
    """nbconvert's own sanitizer (bleach), with the tags above; unsafe markup is removed."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    return SanitizeHTML(tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, strip=True, strip_comments=True)


def sanitize_outputs(outputs, room: int = MAX_SANITIZED_PER_NOTEBOOK) -> int:
    """Make a code cell's outputs inert, in place: HTML and markdown sanitized, scripts, SVG,
    widgets and any other active type dropped; images (PNG, JPEG) and text kept. HTML beyond
    `room` characters (or MAX_SANITIZED_CHARS in one output) is dropped; returns what was used."""
    used = 0
    for output in outputs:
        data = output.get("data")
        if output.get("output_type") not in ("display_data", "execute_result") or not isinstance(data, dict):
            continue
        for mime in ("text/html", "text/markdown"):
            size = len(data.get(mime) or "")
            if size > min(MAX_SANITIZED_CHARS, room - used):
                data.pop(mime, None)
            else:
                used += size
    _sanitizer().sanitize_code_outputs(outputs)
    return used


def safe_markdown2html(source: str) -> str:
    """The markdown2html filter of the feedback's template, then sanitized: markdown cells are
    the student's to edit, and the grader's notes quote what a notebook did."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    if len(source) > MAX_SANITIZED_CHARS:
        return f"<p><em>[a markdown cell of {len(source):,} characters: too long to show here]</em></p>"
    return _sanitizer().sanitize_html_tags(markdown2html_mistune(source))


class SanitizeFeedback(NbGraderPreprocessor):
    """Before the feedback is rendered: every code cell's outputs made inert (sanitize_outputs),
    raw cells sanitized, and markdown past MAX_SANITIZED_PER_NOTEBOOK replaced by a line saying
    so. Markdown is sanitized as it is rendered (safe_markdown2html, set in nbgrader_config.py)."""

    def preprocess(self, nb, resources):
        room = MAX_SANITIZED_PER_NOTEBOOK
        for cell in nb.cells:
            if cell.cell_type == "code":
                room -= sanitize_outputs(cell.outputs, max(room, 0))
            elif cell.cell_type in ("markdown", "raw"):
                room -= len(cell.source)
                if room < 0 and len(cell.source) > 200:
                    cell.source = (f"*[a {cell.cell_type} cell of {len(cell.source):,} characters: the notebook's "
                                   "text passed what the feedback shows]*")
                elif cell.cell_type == "raw":
                    cell.source = _sanitizer().sanitize_html_tags(cell.source)
        return nb, resources


# ---------------------------------------------------------------- results


@dataclass
class StudentResult:
    """One student's graded submission: points per graded cell and per exercise."""

    student: str
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # grade_id -> (score, max)
    seconds: float = 0.0
    status: str = "graded"
    feedback: Path | None = None
    notes: list[str] = field(default_factory=list)      # what the student's feedback says went wrong
    timings: dict[str, float] = field(default_factory=dict)  # where the seconds went (sandbox only)
    resumed: bool = False                                # graded by an earlier, interrupted run

    @property
    def graded(self) -> bool:
        return self.status == "graded"

    def exercise(self, name: str) -> tuple[float, float]:
        parts = [v for k, v in self.cells.items() if k.startswith(name + "_")]
        return round(sum(s for s, _ in parts), 4), round(sum(m for _, m in parts), 4)

    @property
    def score(self) -> float:
        return round(sum(s for s, _ in self.cells.values()), 4)

    @property
    def max_score(self) -> float:
        return round(sum(m for _, m in self.cells.values()), 4)


# ---------------------------------------------------------------- the course


# In `python -m grader.grade`, the notebook runs in the grader's sandbox (grader/sandbox/execute.py)
# instead of nbgrader's kernel, and the course files come from the sandbox, read-only: these
# steps of nbgrader_config.py's autograde list are replaced by SANDBOX_EXECUTE, the rest is kept.
KERNEL_EXECUTE = ("grader.grading.pipeline.LinkCourseFiles", "nbgrader.preprocessors.Execute", "grader.grading.pipeline.UnlinkCourseFiles")
SANDBOX_EXECUTE = "grader.sandbox.execute.SandboxExecute"


def sandboxed(preprocessors: list[str]) -> list[str]:
    """`preprocessors` with the kernel-execution steps (KERNEL_EXECUTE, in that order) replaced by
    SANDBOX_EXECUTE; a ValueError when they are not there, so that a config edit cannot leave
    the sandbox out silently."""
    names = [p if isinstance(p, str) else f"{p.__module__}.{p.__name__}" for p in preprocessors]
    for start in range(len(names) - len(KERNEL_EXECUTE) + 1):
        if tuple(names[start : start + len(KERNEL_EXECUTE)]) == KERNEL_EXECUTE:
            return names[:start] + [SANDBOX_EXECUTE] + names[start + len(KERNEL_EXECUTE) :]
    raise ValueError(
        f"grader/nbgrader_config.py's Autograde.autograde_preprocessors lacks {', '.join(KERNEL_EXECUTE)} "
        "in that order: put them back, or update grader/grading/pipeline.py's KERNEL_EXECUTE."
    )


def load_config(root: Path, sandbox: bool = False):
    """The settings of grader/nbgrader_config.py, for a course whose root is `root` (with the
    grader's sandbox instead of nbgrader's kernel when `sandbox`)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(GRADER)).load_config()
    config.CourseDirectory.root = str(root)
    if sandbox:
        config.Autograde.autograde_preprocessors = sandboxed(config.Autograde.autograde_preprocessors)
    return config


def database_url(root: Path, url: str | None) -> str:
    """The gradebook's SQLAlchemy URL: `url`, or nbgrader's SQLite file in the course folder.

    SQLite waits up to two minutes for a lock instead of nbgrader's default five seconds, so
    that parallel jobs take turns writing instead of failing.
    """
    if not url:
        return f"sqlite:///{root / 'gradebook.db'}?timeout=120"
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        # SQLAlchemy 2.1 reads a plain postgresql:// URL with psycopg 3; use psycopg2 when only it is here.
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return f"postgresql+psycopg2://{rest}"
        return f"postgresql://{rest}"
    return url


def describe_database(url: str) -> str:
    """A URL without its password, for messages."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url).split("?")[0]


class Course:
    """The nbgrader course at `root` (grader/ by default), driven through nbgrader's Python API.

    Another root (a temporary folder, say) is a separate course with its own gradebook and
    folders; it shares grader/source through a symbolic link.
    """

    def __init__(self, root: Path | str | None = None, db_url: str | None = None, quiet: bool = True,
                 sandbox: bool = False):
        self.root = Path(root).resolve() if root else GRADER
        self.root.mkdir(parents=True, exist_ok=True)
        if self.root != GRADER:
            source = self.root / "source"
            if not source.exists() and not source.is_symlink():
                try:
                    source.symlink_to(GRADER / "source", target_is_directory=True)
                except FileExistsError:  # another grader of the same course made it meanwhile
                    pass
        config = load_config(self.root, sandbox=sandbox)
        self.db_url = database_url(self.root, db_url)
        config.CourseDirectory.db_url = self.db_url
        if quiet:  # nbgrader logs every file it copies; keep warnings and errors only
            config.NbGraderAPI.log_level = "WARN"
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self.coursedir = CourseDirectory(config=config)
        self.api = NbGraderAPI(coursedir=self.coursedir, config=config)

    def path(self, step: str, student: str = ".") -> Path:
        return Path(self.coursedir.format_path(step, student, ASSIGNMENT))

    def _check(self, result: dict, what: str) -> dict:
        if not result.get("success"):
            detail = (result.get("error") or "").strip().splitlines()[-1:] or ["no detail"]
            raise GradingError(f"nbgrader could not {what}: {detail[0]}\n{result.get('log', '')}".rstrip())
        return result

    # ---- step 1: the student version, and the gradebook's record of every graded cell
    def release(self, attempts: int = 4) -> Path:
        """generate_assignment. Another grader releasing into the same database at the same moment
        can make it fail once (both create the tables or the assignment's rows): it is tried again."""
        for attempt in range(1, attempts + 1):
            result = self.api.generate_assignment(ASSIGNMENT, force=True, create=True)
            if result.get("success") or attempt == attempts:
                break
            time.sleep(0.5 * attempt)
        self._check(result, "generate the student version from grader/source")
        return self.path("release") / NOTEBOOK

    # ---- step 2: submissions into submitted/<student>/Face_Recognition/
    def collect(self, folder: Path | str) -> list[str]:
        submissions = find_submissions(Path(folder))
        for student, notebook in submissions.items():
            dest = self.path("submitted", student)
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            shutil.copyfile(notebook, dest / NOTEBOOK)
        return list(submissions)

    def submit(self, student: str, text: str) -> None:
        """Put `text` (a notebook, read and checked by grader.grading.preflight) where nbgrader grades it."""
        dest = self.path("submitted", student)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        (dest / NOTEBOOK).write_text(text, encoding="utf-8")

    # ---- step 3: execute and score
    def autograde(self, student: str) -> StudentResult:
        """Run `student`'s notebook in a fresh kernel and record its scores in the gradebook.

        What the kernel and nbgrader write to stderr (TensorFlow's start-up lines, for instance)
        goes to logs/<student>.log in the course folder, not to the terminal.
        """
        log = self.root / "logs" / f"{student}.log"
        log.parent.mkdir(exist_ok=True)
        start = time.perf_counter()
        with _stderr_to(log):
            result = self.api.autograde(ASSIGNMENT, student, force=True, create=True)
        seconds = time.perf_counter() - start
        with open(log, "a") as handle:
            handle.write(result.get("log", "") + (result.get("error") or ""))
        if not result.get("success"):
            error = (result.get("error") or "").strip().splitlines()
            return StudentResult(student, seconds=seconds, status="not graded: "
                                 + (error[-1] if error else "nbgrader failed") + f" (see {log})")
        return StudentResult(student, cells=self.scores(student), seconds=seconds)

    def scores(self, student: str) -> dict[str, tuple[float, float]]:
        """(score, max_score) of each graded cell of `student`'s submission, from the gradebook."""
        from nbgrader.api import Gradebook

        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            return {grade.name: (float(grade.score), float(grade.max_score)) for grade in notebook.grades}

    # ---- what an earlier run already graded (to resume an interrupted run)
    def state_path(self, student: str) -> Path:
        return self.root / "grading-state" / f"{student}.json"

    def save_state(self, result: StudentResult, submission_sha256: str, fingerprint: str) -> None:
        """Record that `result` is in the gradebook, for this submission and this grader version."""
        import json

        path = self.state_path(result.student)
        path.parent.mkdir(exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({
            "sha256": submission_sha256, "fingerprint": fingerprint, "seconds": result.seconds,
            "notes": result.notes, "feedback": str(result.feedback) if result.feedback else None}))
        os.replace(temporary, path)

    def graded_before(self, student: str, submission_sha256: str, fingerprint: str) -> StudentResult | None:
        """The result an earlier run recorded for this very submission and grader, if the gradebook
        and the feedback still hold it; None otherwise."""
        import json

        try:
            state = json.loads(self.state_path(student).read_text())
        except (OSError, ValueError):
            return None
        if state.get("sha256") != submission_sha256 or state.get("fingerprint") != fingerprint:
            return None
        feedback = Path(state["feedback"]) if state.get("feedback") else None
        if feedback is None or not feedback.exists():
            return None
        try:
            cells = self.scores(student)
        except Exception:  # not in the gradebook (a new database, say), or not every cell scored
            return None
        return StudentResult(student, cells=cells, seconds=float(state.get("seconds", 0)), feedback=feedback,
                             notes=list(state.get("notes", [])), resumed=True)

    def forget(self, student: str) -> None:
        self.state_path(student).unlink(missing_ok=True)

    # ---- step 4: feedback
    def feedback(self, student: str) -> Path:
        self._check(self.api.generate_feedback(ASSIGNMENT, student, force=True),
                    f"write the feedback of {student}")
        path = self.path("feedback", student) / f"{ASSIGNMENT}.html"
        if path.exists() and path.stat().st_size > MAX_FEEDBACK_BYTES:  # outputs are capped: a last wall
            path.write_text("<!DOCTYPE html><html><body><p>Your feedback was larger than "
                            f"{MAX_FEEDBACK_BYTES >> 20} MB, too large to keep; your scores are in the "
                            "gradebook. Ask your instructor for details.</p></body></html>", encoding="utf-8")
        return path

    # ---- step 5: grades.csv and one HTML file per student
    @staticmethod
    def export(results: list[StudentResult], out: Path | str) -> Path:
        out = Path(out)
        (out / "feedback").mkdir(parents=True, exist_ok=True)
        for result in results:
            if result.feedback and result.feedback.exists():
                shutil.copyfile(result.feedback, out / "feedback" / f"{result.student}.html")
        table = out / "grades.csv"
        with open(table, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["student_id", *EXERCISES, "score", "max_score", "seconds", "status", "notes"])
            for r in results:
                writer.writerow([r.student, *(f"{r.exercise(e)[0]:g}" for e in EXERCISES),
                                 f"{r.score:g}", f"{r.max_score:g}", f"{r.seconds:.1f}", r.status,
                                 " | ".join(r.notes)])
        return table


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Send file descriptor 2 (and so the stderr of child processes) to `path` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "w") as handle:
            os.dup2(handle.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def find_submissions(folder: Path) -> dict[str, Path]:
    """{student id: notebook} for a folder of submissions, in any of these layouts:

    <folder>/<student>/Face_Recognition.ipynb             (one folder per student)
    <folder>/<student>/Face_Recognition/Face_Recognition.ipynb   (nbgrader's submitted/ layout)
    <folder>/<student>.ipynb                              (one notebook per student)

    A student folder holding a single notebook under another name (`Face_Recognition (1).ipynb`,
    as browsers save a second download) is accepted too.
    """
    if not folder.is_dir():
        raise GradingError(f"{folder} is not a folder of submissions. Pass a folder with one "
                           f"sub-folder (or one .ipynb file) per student.")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            student, notebook = entry.stem, entry
        elif entry.is_dir():
            student = entry.name
            candidates = [entry / NOTEBOOK, entry / ASSIGNMENT / NOTEBOOK]
            notebook = next((c for c in candidates if c.is_file()), None)
            if notebook is None:
                others = [p for p in entry.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
                if len(others) != 1:
                    raise GradingError(
                        f"{entry}: expected {NOTEBOOK} in this folder, found "
                        f"{len(others)} notebooks ({', '.join(p.name for p in others) or 'none'}).")
                notebook = others[0]
        else:
            continue
        if not STUDENT_ID.match(student):
            raise GradingError(f"{entry}: '{student}' cannot be a student id. Use letters, digits "
                               "and _ . @ - only (it becomes a folder name and a database key).")
        found[student] = notebook
    if not found:
        raise GradingError(f"No submission found in {folder}: expected one sub-folder with "
                           f"{NOTEBOOK} (or one .ipynb file) per student.")
    return found
