"""The nbgrader round trip of a JupyterHub, with nbgrader's own commands, without a browser.

An instructor's home (the course) and a student's home, two temporary folders, share one
temporary exchange, as two users of one hub do. The course files are installed once into a
shared folder (`python -m grader.course.hub install`, with hard links to save the disk); the
student's kernel finds them through that folder only.

1. The instructor releases the assignment (`nbgrader release_assignment`), the student fetches
   it (`nbgrader fetch_assignment`): the fetched folder holds the notebook and its two helpers.
2. With the three answers filled in, `jupyter nbconvert --execute` runs the fetched notebook, the
   ungraded sections included, in that folder and nothing else, and prints the course's numbers.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader.course.hub import HOOK_NAME, SHARED, install, size
from grader.course.lab import nbgrader_config
from grader.course.make_examples import solutions
from grader.grading.pipeline import ASSIGNMENT, NOTEBOOK, REPOSITORY, Course

BIN = Path(sys.executable).parent
COURSE_ID = "face_recognition"
EXECUTE = 900  # seconds: the whole notebook, triplet training and "Going further" included
FETCHED_MAX_BYTES = 1_000_000  # the notebook and two helpers; the model alone is 90 MB


def run(command, cwd: Path, home: Path, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """A command as a hub user: their home, their folder, no project on the Python path."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")}
    environment.update(HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3", **env)
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def nbgrader(*arguments, cwd: Path, home: Path, **env) -> subprocess.CompletedProcess:
    return run([str(BIN / "nbgrader"), *arguments], cwd=cwd, home=home, **env)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Shared course files, an exchange, the instructor's course (released) and the student's
    fetched copy."""
    root = tmp_path_factory.mktemp("hub")
    shared, site, exchange = root / "srv" / "facerec", root / "site-packages", root / "exchange"
    instructor, student = root / "home" / "instructor", root / "home" / "student"
    for folder in (exchange, instructor, student):
        folder.mkdir(parents=True)
    hook = install(shared, site_packages=site, hardlink=True)

    course = Course(instructor / "course")
    course.release()  # generate_assignment: release/Face_Recognition/ and the gradebook's cells
    (course.root / "nbgrader_config.py").write_text(nbgrader_config(course.root, exchange), encoding="utf-8")
    nbgrader("release_assignment", ASSIGNMENT, cwd=course.root, home=instructor)
    nbgrader("fetch_assignment", ASSIGNMENT, f"--course={COURSE_ID}", f"--Exchange.root={exchange}",
             cwd=student, home=student)
    yield type("Hub", (), dict(root=root, shared=shared, hook=hook, exchange=exchange, course=course,
                               instructor=instructor, student=student, fetched=student / ASSIGNMENT))


def test_a_fetched_copy_is_the_notebook_and_its_two_helpers(hub):
    names = sorted(path.name for path in hub.fetched.iterdir())
    assert names == ["Face_Recognition.ipynb", "fr_checks.py", "fr_utils.py"]
    fetched = size(hub.fetched)
    print(f"one fetched copy: {fetched:,} bytes; the shared folder: {size(hub.shared) / 1e6:.0f} MB")
    assert fetched < FETCHED_MAX_BYTES


def test_the_shared_folder_holds_the_course_files_read_only(hub):
    for name in SHARED:
        assert (hub.shared / name).exists(), name
    assert (hub.shared / "keras-facenet-h5" / "model.h5").stat().st_size > 80_000_000
    assert not os.stat(hub.shared / "images").st_mode & 0o222, "the shared folder is writable"


def test_the_path_hook_gives_python_the_course_library_and_folder(hub):
    assert hub.hook.name == HOOK_NAME
    probe = ("import site, sys, os; site.addsitedir(sys.argv[1]); import facerec, fr_checks; "
             "print(os.path.dirname(os.path.dirname(facerec.__file__))); print(os.environ['FACEREC_COURSE_FILES'])")
    done = run([sys.executable, "-c", probe, str(hub.hook.parent)], cwd=hub.student, home=hub.student)
    assert done.stdout.split() == [str(hub.shared), str(hub.shared)]


def test_fetched_copy_runs_with_nbconvert_in_its_own_folder(hub):
    """The Must-show: the fetched notebook, answers filled in, runs top to bottom with nothing but
    itself and its two helpers in its folder; the kernel's environment names the shared folder
    (what the path hook does in the hub's Python)."""
    work = hub.root / "run" / ASSIGNMENT
    work.mkdir(parents=True)
    for path in hub.fetched.iterdir():
        (work / path.name).write_bytes(path.read_bytes())
    notebook = nbformat.read(work / NOTEBOOK, as_version=4)
    answers = solutions()
    for cell in notebook.cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in answers:
            cell.source = answers[name]
    nbformat.write(notebook, work / NOTEBOOK)

    started = time.monotonic()
    run([str(BIN / "jupyter-nbconvert"), "--to", "notebook", "--execute", "--output", "executed.ipynb",
         f"--ExecutePreprocessor.timeout={EXECUTE}", NOTEBOOK], cwd=work, home=hub.student, timeout=EXECUTE + 60,
        PYTHONPATH=str(hub.shared), FACEREC_COURSE_FILES=str(hub.shared))
    print(f"nbconvert --execute of the fetched copy: {time.monotonic() - started:.0f} s")
    executed = nbformat.read(work / "executed.ipynb", as_version=4)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a code cell did not run"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + json.dumps(o.get("data", {}).get("text/plain", "")) for o in outputs)
    for published in ("0.5992949", "1.0259346", "loss = tf.Tensor(527.2598"):
        assert published in text, published
    assert "\u2718" not in text, "a check failed"  # fr_checks' FAIL mark
    # what the run added to the folder: links to the shared folder, no copies
    for name in ("images", "keras-facenet-h5", "dlib-resnet-h5", "data"):
        assert (work / name).is_symlink() and (work / name).resolve() == (hub.shared / name).resolve()
