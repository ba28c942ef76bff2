"""The nbgrader round trip of a JupyterHub, with nbgrader's own commands, without a browser.

An instructor's home (the course) and a student's home, two temporary folders, share one
temporary exchange, as two users of one hub do. The course files are installed once into a
shared folder (`python -m grader.course.hub install`, with hard links to save the disk); the
student's kernel finds them through that folder only.

1. The instructor releases the assignment (`nbgrader release_assignment`), the student fetches
   it (`nbgrader fetch_assignment`): the fetched folder holds the notebook and its two helpers.
2. With the three answers filled in, `jupyter nbconvert --execute` runs the fetched notebook, the
   ungraded sections included, in that folder and nothing else, and prints the course's numbers.
3. The student submits (`nbgrader submit`), the instructor collects (`nbgrader collect`), imports the
   roster, and autogrades through the formgrader's own request (the Autograde button's), which the
   course's server extension (grader/course/formgrader.py) sends to `python -m grader.grade`: the
   grader's sandbox, its scores.
4. The formgrader's own requests generate and release the feedback; the student fetches it
   (`nbgrader fetch_feedback`): an HTML file with every exercise's points and nothing of the
   hidden tests.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from grader.course.hub import HOOK_NAME, SHARED, install, size
from grader.course.lab import nbgrader_config
from grader.course.make_examples import solutions
from grader.grading.pipeline import GOING_FURTHER_TAG, ASSIGNMENT, EXERCISES, NOTEBOOK, REPOSITORY, Course

BIN = Path(sys.executable).parent
COURSE_ID = "face_recognition"
EXECUTE = 900  # seconds: the whole notebook, triplet training and "Going further" included
FETCHED_MAX_BYTES = 1_000_000  # the notebook and two helpers; the model alone is 90 MB


STUDENT = "ana"  # the student's user name on the hub: nbgrader's student id
HIDDEN_TEXT = ("STRANGERS_TO_BENOIT", "CAMERA_IMPOSTOR", "reference.verify", "def _verify_checks",
               "triplet_loss_gradient(", "SEED = 20260611")  # as in tests/test_grader_hostile.py


def run(command, cwd: Path, home: Path, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    """A command as a hub user: their home, their folder, no project on the Python path."""
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")}
    environment.update(HOME=str(home), USER=home.name, LOGNAME=home.name, TF_CPP_MIN_LOG_LEVEL="3", **env)
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
    instructor, student = root / "home" / "instructor", root / "home" / STUDENT
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


def test_students_settings_skip_the_going_further_cells_in_validate(hub):
    """The README's `hub student-config` settings, read as a student's server reads them: Validate
    (nbgrader's Execute) skips the cells tagged going-further, and no cell of nbgrader's carries
    that tag in the fetched notebook; Submit leaves out the linked course folders."""
    from traitlets.config.loader import PyFileConfigLoader

    done = run([sys.executable, "-m", "grader.course.hub", "student-config", str(hub.exchange)],
               cwd=REPOSITORY, home=hub.student)
    settings = hub.root / "student-settings"
    settings.mkdir(exist_ok=True)
    (settings / "nbgrader_config.py").write_text(done.stdout, encoding="utf-8")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(settings)).load_config()
    assert config.Exchange.root == str(hub.exchange)
    assert {"images", "keras-facenet-h5", "data", "dlib-resnet-h5"} <= set(config.CourseDirectory.ignore)

    from nbgrader.preprocessors import Execute

    execute = Execute(config=config)
    assert execute.skip_cells_with_tag == GOING_FURTHER_TAG
    cells = nbformat.read(hub.fetched / NOTEBOOK, as_version=4).cells
    tagged = [c for c in cells if execute.skip_cells_with_tag in c.metadata.get("tags", [])]
    assert len(tagged) >= 10 and not [c for c in tagged if "nbgrader" in c.metadata]
    # the grader's own settings never skip a tagged cell: a student could tag a test cell
    grader = PyFileConfigLoader("nbgrader_config.py", path=str(REPOSITORY / "grader")).load_config()
    assert Execute(config=grader).skip_cells_with_tag != GOING_FURTHER_TAG
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    assert "python -m grader.course.hub student-config /srv/nbgrader/exchange | sudo tee /etc/jupyter/" in readme


def with_answers(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    answers = solutions()
    for cell in notebook.cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in answers:
            cell.source = answers[name]
    nbformat.write(notebook, path)


def test_fetched_copy_runs_with_nbconvert_in_its_own_folder(hub):
    """The Must-show: the fetched notebook, answers filled in, runs top to bottom with nothing but
    itself and its two helpers in its folder; the kernel's environment names the shared folder
    (what the path hook does in the hub's Python)."""
    work = hub.root / "run" / ASSIGNMENT
    work.mkdir(parents=True)
    for path in hub.fetched.iterdir():
        (work / path.name).write_bytes(path.read_bytes())
    with_answers(work / NOTEBOOK)

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


# ---------------------------------------------------------------- submit, collect, autograde, feedback


@pytest.fixture(scope="module")
def formgrader(hub):
    """The instructor's JupyterLab (the README's launcher) on the instructor's home and course."""
    command = [sys.executable, "-m", "grader.course.lab", "--root", str(hub.instructor), "--course",
               str(hub.course.root), "--exchange", str(hub.exchange)]
    log = open(hub.root / "instructor-lab.log", "w")
    launcher = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=log, text=True,
                                env=dict(os.environ, HOME=str(hub.instructor)))
    found = None
    for line in launcher.stdout:
        found = re.search(r"JupyterLab is ready: http://127\.0\.0\.1:(\d+)/lab\?token=(\w+)", line)
        if found:
            break
    try:
        assert found, f"the launcher printed no address (see {hub.root / 'instructor-lab.log'})"
        port, token = found.groups()

        def post(path: str, timeout: float = 60) -> dict:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/{path}", data=b"",
                                             method="POST", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return json.loads(answer.read())

        yield post
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(60)
        log.close()


@pytest.fixture(scope="module")
def graded(hub, formgrader):
    """Submitted by the student, collected, roster imported, autograded by the formgrader's request."""
    from grader.grading import roster

    with_answers(hub.fetched / NOTEBOOK)
    # the student's folder after a run: links to the shared folder, which submit must leave out
    # (the hub's nbgrader settings, as the README's administrator writes them)
    import fr_utils
    from grader.course.hub import NBGRADER_IGNORE

    assert fr_utils.link_course_folders(str(hub.fetched), str(hub.shared))
    (hub.student / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.ignore = {NBGRADER_IGNORE!r}\n")
    nbgrader("submit", ASSIGNMENT, f"--course={COURSE_ID}", f"--Exchange.root={hub.exchange}", f"--student={STUDENT}",
             cwd=hub.student, home=hub.student)
    inbound = list((hub.exchange / COURSE_ID / "inbound").glob(f"{STUDENT}+*"))
    assert len(inbound) == 1 and size(inbound[0]) < FETCHED_MAX_BYTES, "the links were submitted as files"
    nbgrader("collect", ASSIGNMENT, cwd=hub.course.root, home=hub.instructor)
    assert (hub.course.path("submitted", STUDENT) / "timestamp.txt").is_file()
    (hub.root / "roster.csv").write_text(f"id,first_name,last_name,email\n{STUDENT},Ana,Smith,ana@example.edu\n")
    roster.import_roster(hub.root / "roster.csv", hub.course.root)
    started = time.monotonic()
    answer = formgrader(f"submission/{ASSIGNMENT}/{STUDENT}/autograde", timeout=900)
    print(f"Autograde through the formgrader: {time.monotonic() - started:.0f} s")
    return answer


def test_the_formgrader_autograde_runs_in_the_graders_sandbox(hub, graded):
    assert graded["success"], graded.get("error")
    assert "python -m grader.grade" in graded["log"] and "Sandbox ready" in graded["log"], graded["log"]
    assert hub.course.scores(STUDENT) and sum(s for s, _ in hub.course.scores(STUDENT).values()) == 20
    # the sandbox's own log, and nbgrader's timestamp of the submission kept
    assert (hub.course.root / "logs" / "zygote.log").is_file()
    assert (hub.course.path("submitted", STUDENT) / "timestamp.txt").is_file()
    from nbgrader.api import Gradebook

    with Gradebook(hub.course.db_url, COURSE_ID) as gradebook:
        student = gradebook.find_student(STUDENT)
        assert (student.first_name, student.last_name) == ("Ana", "Smith")
        assert gradebook.find_submission(ASSIGNMENT, STUDENT).score == 20


def test_an_unknown_submission_is_refused_by_the_formgrader_autograde(formgrader, graded):
    answer = formgrader(f"submission/{ASSIGNMENT}/nobody/autograde")
    assert not answer["success"] and "no collected submission" in answer["error"]


def test_feedback_released_through_the_exchange_reaches_the_student(hub, formgrader, graded):
    assert formgrader(f"assignment/{ASSIGNMENT}/{STUDENT}/generate_feedback")["success"]
    released = formgrader(f"assignment/{ASSIGNMENT}/{STUDENT}/release_feedback")
    assert released["success"], released
    nbgrader("fetch_feedback", ASSIGNMENT, f"--course={COURSE_ID}", f"--Exchange.root={hub.exchange}", f"--student={STUDENT}",
             cwd=hub.student, home=hub.student)
    fetched = list((hub.fetched / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(fetched) == 1, list((hub.fetched / "feedback").rglob("*"))
    text = fetched[0].read_text(encoding="utf-8")
    plain = re.sub(r"<[^>]+>", " ", text)
    assert re.search(r"Score:\s*20\.0\s*/\s*20\.0", plain), "no total"
    # every graded cell, named by its exercise, with its points: each exercise's total as graded
    shown = re.findall(r"Grade cell:\s*(\w+)\s*Score:\s*([\d.]+)\s*/\s*([\d.]+)", plain)
    assert {name for name, _, _ in shown} == set(hub.course.scores(STUDENT))
    for exercise in EXERCISES:
        points = [(float(s), float(m)) for name, s, m in shown if name.startswith(exercise + "_")]
        assert points and sum(s for s, _ in points) == sum(m for _, m in points), exercise
    for secret in HIDDEN_TEXT:
        assert secret not in text, secret
