"""The formgrader's Autograde button (the lightning icon of *Manage Submissions*), in the grader's sandbox.

A Jupyter server extension. nbgrader's button asks the server to autograde one student's
submission; stock nbgrader then runs the student's code in an ordinary kernel, as the
instructor, with the hidden tests' code in that kernel. With this extension loaded, the button
runs `python -m grader.grade` on that one submission instead: the same sandbox (isolated kernel,
limits, hidden tests kept out of the student's process), the same gradebook, the same scores as a
whole class graded from the terminal. The formgrader's dialog shows the command's output.

Loaded by `python -m grader.course.lab`. In an instructor's server on a JupyterHub, add to
~/.jupyter/jupyter_server_config.py (the clone must be importable by the server):

    import sys; sys.path.insert(0, "/home/instructor/facerec")       # the clone
    c.ServerApp.jpserver_extensions = {"grader.course.formgrader": True}

The submission keeps nbgrader's `timestamp.txt` (from `collect`), which is put back into the
submitted and autograded folders and the gradebook after grading (so feedback can be released);
late penalties are not computed from it (grader.grade grades the notebook alone). grades.csv and the feedback
file of each button press go to `<course>/results/formgrader/<student>/`.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from grader.grading.pipeline import ASSIGNMENT, NOTEBOOK, REPOSITORY, STUDENT_ID

GRADING_TIMEOUT = 1200  # seconds; grader.grade's own limits (600 s per notebook) stop a notebook first


def autograde(course_root: Path | str, assignment: str, student: str, db_url: str | None = None) -> dict:
    """Grade `student`'s collected submission with `python -m grader.grade`; nbgrader's answer
    format: {"success": bool, "log": text, "error": text}."""
    course_root = Path(course_root)
    submitted = course_root / "submitted" / student / assignment
    if assignment != ASSIGNMENT:
        return {"success": False, "log": "", "error": f"this course's grader grades {ASSIGNMENT} only, "
                                                        f"not {assignment}"}
    if not STUDENT_ID.match(student) or not (submitted / NOTEBOOK).is_file():
        return {"success": False, "log": "", "error": f"no collected submission {submitted / NOTEBOOK}"}
    with tempfile.TemporaryDirectory(prefix="fr-formgrader-") as folder:
        kept = Path(folder) / "kept"  # what nbgrader's collect put beside the notebook (timestamp.txt)
        shutil.copytree(submitted, kept, ignore=shutil.ignore_patterns(NOTEBOOK))
        (Path(folder) / "submissions" / student).mkdir(parents=True)
        shutil.copyfile(submitted / NOTEBOOK, Path(folder) / "submissions" / student / NOTEBOOK)
        command = [sys.executable, "-m", "grader.grade", str(Path(folder) / "submissions"), "--course",
                   str(course_root), "--out", str(course_root / "results" / "formgrader" / student), "--force",
                   "--jobs", "1", *(["--db", db_url] if db_url and not _default_sqlite(db_url, course_root) else [])]
        try:
            done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=GRADING_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"success": False, "log": "", "error": f"grading took more than {GRADING_TIMEOUT} s"}
        finally:  # grader.grade submits the notebook alone: put back what nbgrader's collect wrote
            autograded = course_root / "autograded" / student / assignment
            for path in kept.rglob("*"):
                for folder in (submitted, autograded):
                    if path.is_file() and folder.is_dir() and not (folder / path.relative_to(kept)).exists():
                        (folder / path.relative_to(kept)).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, folder / path.relative_to(kept))
    log = f"$ python -m grader.grade ... (the grader's sandbox)\n{done.stdout}"
    if done.returncode != 0:
        return {"success": False, "log": log, "error": done.stderr[-5000:] or f"exit status {done.returncode}"}
    _record_timestamp(submitted / "timestamp.txt", assignment, student, db_url or f"sqlite:///{course_root / 'gradebook.db'}")
    return {"success": True, "log": log}


def _record_timestamp(path: Path, assignment: str, student: str, db_url: str) -> None:
    """The submission's time, from nbgrader's timestamp.txt, into the gradebook (the formgrader shows it)."""
    if not path.is_file():
        return
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    with Gradebook(db_url) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        submission.timestamp = parse_utc(path.read_text().strip())
        gradebook.db.commit()


def _default_sqlite(url: str, root: Path) -> bool:
    return url.split("?")[0] in (f"sqlite:///{root / 'gradebook.db'}", f"sqlite:///{root.resolve() / 'gradebook.db'}")


class SandboxedAPI:
    """nbgrader's NbGraderAPI for one formgrader request, whose autograde is ours."""

    def __init__(self, api):
        self._api = api

    def autograde(self, assignment_id, student_id, force=True, create=True):
        coursedir = self._api.coursedir
        return autograde(coursedir.root, assignment_id, student_id, coursedir.db_url)

    def __getattr__(self, name):
        return getattr(self._api, name)


def install() -> None:
    """Make the formgrader's autograde request (AutogradeHandler) use SandboxedAPI."""
    from nbgrader.server_extensions.formgrader import apihandlers, base

    if getattr(apihandlers.AutogradeHandler, "_facerec_sandboxed", False):
        return
    stock = base.BaseHandler.api.fget
    apihandlers.AutogradeHandler.api = property(lambda handler: SandboxedAPI(stock(handler)))
    apihandlers.AutogradeHandler._facerec_sandboxed = True


def _jupyter_server_extension_points():
    return [{"module": "grader.course.formgrader"}]


def _load_jupyter_server_extension(server_app):
    install()
    server_app.log.info("grader.course.formgrader: the formgrader's Autograde runs python -m grader.grade "
                        "(the grader's sandbox)")
