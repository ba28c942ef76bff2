"""The grading pipeline's own steps, without running any student notebook (but one, graded to check
the kernel's TensorFlow set-up)."""
from __future__ import annotations

import json

import nbformat
import pytest

from grader.grade import summary
from grader.grading.pipeline import (ASSIGNMENT, COURSE_FILES, GRADER, NOTEBOOK, REPOSITORY, GradingError, LinkCourseFiles,
                             StudentResult, UnlinkCourseFiles, find_submissions)


def notebook(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), path)
    return path


def test_find_submissions_accepts_the_three_layouts_and_a_renamed_download(tmp_path):
    expected = {
        "ada": notebook(tmp_path / "ada" / NOTEBOOK),
        "bob": notebook(tmp_path / "bob" / "Face_Recognition" / NOTEBOOK),
        "cy": notebook(tmp_path / "cy.ipynb"),
        "dee": notebook(tmp_path / "dee" / "Face_Recognition (1).ipynb"),
    }
    notebook(tmp_path / "dee" / ".ipynb_checkpoints" / "Face_Recognition (1)-checkpoint.ipynb")
    (tmp_path / ".DS_Store").write_text("")
    (tmp_path / "notes.txt").write_text("not a submission")
    assert find_submissions(tmp_path) == expected


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "No submission found"),
    (lambda root: (notebook(root / "eve" / "a.ipynb"), notebook(root / "eve" / "b.ipynb")), "found 2 notebooks"),
    (lambda root: notebook(root / "bad id" / NOTEBOOK), "cannot be a student id"),
])
def test_find_submissions_says_what_is_wrong(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(GradingError, match=message):
        find_submissions(tmp_path)
    with pytest.raises(GradingError, match="is not a folder of submissions"):
        find_submissions(tmp_path / "missing")


def test_course_files_are_linked_over_submitted_copies_and_unlinked_after(tmp_path):
    (tmp_path / "fr_utils.py").write_text("DISTANCE_THRESHOLD = 2.0  # a student's 'improvement'")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "camera_0.jpg").write_text("not the course photo")
    resources = {"metadata": {"path": str(tmp_path)}}
    LinkCourseFiles().preprocess(None, resources)
    for name in COURSE_FILES:
        assert (tmp_path / name).is_symlink() and (tmp_path / name).resolve() == (REPOSITORY / name).resolve()
    UnlinkCourseFiles().preprocess(None, resources)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, reason", [
    (b"{ this is not json", "not a complete notebook: it is not valid JSON at line 1, column 3"),
    (b'{"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {', "it ends too early"),
    (b"", "Your file is empty"),
    (b'{"nbformat": 4}', "not a Jupyter notebook (it has no cells)"),
    (b'{"cells": [], "nbformat": 2, "metadata": {}}', "format 2, which this grader cannot read"),
])
def test_a_file_that_is_not_a_notebook_is_rejected_with_a_reason(tmp_path, content, reason):
    from grader.grading.preflight import prepare

    released = (REPOSITORY / NOTEBOOK).read_text(encoding="utf-8")
    path = tmp_path / NOTEBOOK
    path.write_bytes(content)
    prepared = prepare("broken", path, released)
    assert prepared.rejected and reason in prepared.rejected and "0 points" in prepared.rejected
    assert prepared.text == released  # graded as the empty notebook, so the feedback can say why


def test_a_readable_notebook_is_cleaned_and_its_grading_metadata_put_back(tmp_path):
    from grader.grading.preflight import prepare

    released = (REPOSITORY / NOTEBOOK).read_text(encoding="utf-8")
    nb = nbformat.reads(released, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "verify_test_visible")
    test.metadata.nbgrader.points = 200
    test.metadata.nbgrader.grade = False
    test.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2.0"}, execution_count=1)]
    alien = nbformat.v4.new_code_cell("1")
    alien.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 100}
    nb.cells.append(alien)
    path = tmp_path / NOTEBOOK
    path.write_text(nbformat.writes(nb).replace("Face recognition", "Face récognition"), encoding="cp1252")
    prepared = prepare("ada", path, released)
    assert prepared.rejected is None
    again = nbformat.reads(prepared.text, as_version=4)
    cell = next(c for c in again.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "verify_test_visible")
    assert cell.metadata.nbgrader.points == 2 and cell.metadata.nbgrader.grade and cell.outputs == []
    assert "nbgrader" not in again.cells[-1].metadata
    notes = " ".join(prepared.notes)
    assert "not UTF-8" in notes and "verify_test_visible" in notes and "another assignment" in notes
    assert "Face récognition" in prepared.text


def test_summary_table_has_a_column_per_exercise():
    good = StudentResult("ada", cells={"triplet_loss_test_random": (2.0, 2.0), "verify_test_hidden": (1.5, 4.0),
                                       "who_is_it_test_visible": (0.0, 2.0)}, seconds=12.3)
    bad = StudentResult("bob", status="not graded: not a notebook")
    table = summary([good, bad]).splitlines()
    assert table[0].split() == ["student", "triplet_loss", "/2", "verify", "/4", "who_is_it", "/2",
                                "total", "/8", "seconds", "status"]
    assert table[2].split() == ["ada", "2", "1.5", "0", "3.5", "12.3", "graded"]
    assert table[3].split()[:5] == ["bob", "0", "0", "0", "0"]


def test_example_notebooks_are_valid_and_fill_only_the_answer_cells(tmp_path):
    from grader.course.make_examples import EXAMPLES, write_examples

    paths = write_examples(tmp_path)
    assert len(paths) == len(EXAMPLES) >= 12
    student = nbformat.read(REPOSITORY / NOTEBOOK, as_version=4)
    solution = nbformat.read(tmp_path / "solution" / NOTEBOOK, as_version=4)
    changed = [a.metadata.get("nbgrader", {}).get("grade_id") for a, b in zip(student.cells, solution.cells)
               if a.source != b.source]
    assert changed == ["triplet_loss_answer", "verify_answer", "who_is_it_answer"]
    assert json.loads((tmp_path / "unanswered" / NOTEBOOK).read_text()) == json.loads(nbformat.writes(student))
    before = {p: p.stat().st_mtime_ns for p in paths}
    write_examples(tmp_path)  # a second run leaves correct files alone
    assert {p: p.stat().st_mtime_ns for p in paths} == before


def test_cells_after_the_last_test_cell_and_going_further_cells_are_not_run():
    """The ungraded "Going further" section (tagged cells at the end of the source notebook) and
    anything after the last graded cell are dropped before the submission runs."""
    from grader.grading.pipeline import GOING_FURTHER_TAG, SOURCE_NOTEBOOK, DropUngradedTail

    student = nbformat.read(REPOSITORY / NOTEBOOK, as_version=4)
    tagged = [c for c in student.cells if GOING_FURTHER_TAG in c.metadata.get("tags", [])]
    assert len(tagged) >= 10, "the student notebook should hold the tagged 'Going further' section"
    # A tagged cell placed early by the student is dropped too; graded cells never are.
    stray = nbformat.v4.new_code_cell("print('from the going further section')")
    stray.metadata["tags"] = [GOING_FURTHER_TAG]
    student.cells.insert(3, stray)
    graded_before = [c.metadata["nbgrader"]["grade_id"] for c in student.cells if c.metadata.get("nbgrader")]
    last = max(i for i, c in enumerate(student.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    after = len(student.cells) - last - 1

    nb, _ = DropUngradedTail().preprocess(student, {})
    assert not [c for c in nb.cells if GOING_FURTHER_TAG in c.metadata.get("tags", [])]
    assert [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader")] == graded_before
    note = nb.cells[-1]
    assert note.cell_type == "markdown" and f"{after + 1} cell(s)" in note.source and "cannot" in note.source
    assert nb.cells[-2].metadata["nbgrader"]["grade"]  # the note follows the last graded cell
    assert "from the going further section" not in "".join(c.source for c in nb.cells)
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    assert nbformat.validate(nb) is None and len(nb.cells) < len(source.cells)


def test_a_test_cell_tagged_to_be_skipped_runs_in_the_stock_flow(tmp_path):
    """nbgrader's Execute skips a cell tagged `skip-execution`: the course's OverwriteCells (a
    sanitize step of the stock `nbgrader autograde`) takes the tags off nbgrader's cells, so a
    student cannot make the tests pass unrun; their own cells keep theirs."""
    from nbgrader.preprocessors import Execute

    from grader.grading.pipeline import Course, OverwriteCells

    course = Course(tmp_path / "course")
    course.release()
    student = nbformat.read(REPOSITORY / NOTEBOOK, as_version=4)
    skip = Execute().skip_cells_with_tag
    for cell in student.cells:
        cell.metadata["tags"] = [skip]
    resources = {"nbgrader": {"db_url": course.db_url, "assignment": ASSIGNMENT, "notebook": "Face_Recognition"}}
    nb, _ = OverwriteCells().preprocess(student, resources)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(graded) >= 6 and not [c for c in nb.cells if "nbgrader" in c.metadata and c.metadata.get("tags")]
    assert [c for c in nb.cells if "nbgrader" not in c.metadata and c.metadata.get("tags") == [skip]]


def test_a_notebook_with_nothing_after_its_tests_is_left_alone():
    from grader.grading.pipeline import DropUngradedTail

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("x")])
    nb.cells[1].metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 1, "solution": False,
                                        "locked": True, "schema_version": 3}
    out, _ = DropUngradedTail().preprocess(nb, {})
    assert [c.source for c in out.cells] == ["x = 1", "x"]


# ---------------------------------------------------------------- messages between grader and kernel


def test_values_cross_between_grader_and_kernel_as_plain_data():
    import numpy as np

    from grader.sandbox import wire

    arguments = [None, (wire.Tensor(np.ones((2, 3), np.float32)), np.arange(4)), 0.25, "images/camera_0.jpg",
                 {"younes": np.zeros((1, 128), np.float32)}, wire.MODEL, np.float64(0.5), [True, 3]]
    tree = wire.encode_arguments(arguments)
    import json

    model = object()
    decoded = wire.decode_arguments(json.loads(json.dumps(tree)), model, lambda a: ("tensor", a))
    assert decoded[0] is None and decoded[2] == 0.25 and decoded[3] == "images/camera_0.jpg"
    assert decoded[1][0][0] == "tensor" and decoded[1][0][1].dtype == np.float32 and decoded[1][0][1].shape == (2, 3)
    assert isinstance(decoded[1], tuple) and list(decoded[1][1]) == [0, 1, 2, 3]
    assert decoded[4]["younes"].shape == (1, 128) and decoded[5] is model
    assert type(decoded[6]) is np.float64 and decoded[7] == [True, 3]


def test_what_a_kernel_returns_is_decoded_safely():
    import json

    import numpy as np

    from grader.sandbox import wire

    class Sneaky:
        def __repr__(self):
            raise RuntimeError("never called")

    tree = json.loads(json.dumps(wire.encode_result((np.float32(0.5), Sneaky(), np.bool_(True), "x" * 20000))))
    value = wire.decode_result(tree)
    assert type(value[0]) is np.float32 and type(value[1]).__name__ == "Sneaky" and value[2] is np.bool_(True)
    assert len(value[3]) == 10000
    scalar = wire.RemoteTensor(np.array(True))
    assert scalar.shape == () and bool(scalar) is True and np.asarray(scalar, dtype=float) == 1.0
    for bad in ({"$": "nd", "dtype": "object", "shape": [1], "data": ""},
                {"$": "nd", "dtype": "float32", "shape": [1000], "data": "AAAA"},
                {"$": "np", "dtype": "float32", "value": "1"},
                {"$": "pickle", "data": "gASVAAAA"}, [1, 2]):
        with pytest.raises(wire.ProtocolError):
            wire.decode_result(bad)
    nested = 1.0
    for _ in range(30):
        nested = {"$": "list", "items": [nested]}
    with pytest.raises(wire.ProtocolError):
        wire.decode_result(nested)


def test_hidden_test_cells_are_read_never_run():
    from grader.sandbox.execute import hidden_calls

    source = "# Hidden tests\n### BEGIN HIDDEN TESTS\nfrom grader.course.hidden import check_verify\ncheck_verify(globals(), points=4)\n### END HIDDEN TESTS"
    assert hidden_calls(source) == [("check_verify", 4.0)]
    with pytest.raises(ValueError, match="calls none of"):
        hidden_calls("import os\nos.system('echo not a hidden test')")


def test_the_grader_runs_the_config_files_steps_with_the_sandbox_in_place_of_the_kernel(tmp_path):
    from grader.grading.pipeline import KERNEL_EXECUTE, SANDBOX_EXECUTE, load_config, sandboxed

    stock = list(load_config(tmp_path).Autograde.autograde_preprocessors)
    ours = list(load_config(tmp_path, sandbox=True).Autograde.autograde_preprocessors)
    assert SANDBOX_EXECUTE in ours and not set(KERNEL_EXECUTE) & set(ours)
    assert len(ours) == len(stock) - len(KERNEL_EXECUTE) + 1
    assert [step for step in stock if step not in KERNEL_EXECUTE] == [step for step in ours if step != SANDBOX_EXECUTE]
    with pytest.raises(ValueError, match="KERNEL_EXECUTE"):
        sandboxed(["nbgrader.preprocessors.Execute", "nbgrader.preprocessors.SaveAutoGrades"])


def test_the_grader_version_covers_every_grader_module():
    """A resumed run regrades when any module of the course, the pipeline or the sandbox changed."""
    from grader.grading.parallel import GRADING_FILES

    modules = {p for p in GRADER.rglob("*.py") if not {".work", "results", "examples", "source", "__pycache__"} & set(p.parts)}
    assert modules and modules <= set(GRADING_FILES), sorted(str(p) for p in modules - set(GRADING_FILES))
    assert {"hidden.py", "pipeline.py", "kernel.py"} <= {p.name for p in GRADING_FILES}


def test_the_course_photos_encodings_are_kept_between_runs_and_computed_again_when_damaged(tmp_path):
    """A zygote encodes the course photos once and keeps them (in data/cache/course-encodings/
    unless told otherwise); the next one takes them from there; one that finds the file damaged
    computes them again and replaces it."""
    import numpy as np

    from grader.sandbox import callee
    from grader.sandbox.execute import Zygote

    cache = tmp_path / "cache"

    def start(name):
        with Zygote([tmp_path], tmp_path / f"{name}.log", cache=cache) as zygote:
            with np.load(zygote.encodings) as data:
                return zygote.ready["encodings_cached"], {key: data[key] for key in data.files}

    computed, first = start("first")
    [kept] = cache.iterdir()
    reused, second = start("second")
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short, as a full disk would leave it
    after_damage, third = start("third")
    assert (computed, reused, after_damage) == (False, True, False)
    assert set(first) == set(callee.PHOTO_FILES) and all(first[f].size == 128 for f in first)
    for file in callee.PHOTO_FILES:
        assert np.array_equal(first[file], second[file]) and np.array_equal(first[file], third[file]), file
    assert [p.name for p in cache.iterdir()] == [kept.name]  # replaced whole; no partial file left
    with np.load(kept) as data:
        assert set(data.files) == set(callee.PHOTO_FILES)


def test_the_cached_encodings_key_changes_with_the_model_the_photos_and_the_code(tmp_path, monkeypatch):
    from grader.sandbox import callee, zygote

    for name in ("keras-facenet-h5", "facerec"):
        (tmp_path / name).mkdir()
        for path in (REPOSITORY / name).iterdir():
            if path.is_file():
                (tmp_path / name / path.name).symlink_to(path)
    (tmp_path / "images").mkdir()
    for file in callee.PHOTO_FILES:
        (tmp_path / "images" / file).write_bytes((REPOSITORY / "images" / file).read_bytes())
    (tmp_path / "fr_utils.py").write_text((REPOSITORY / "fr_utils.py").read_text())
    monkeypatch.setattr(zygote, "REPOSITORY", tmp_path)
    keys = [zygote._encodings_key()]
    assert zygote._encodings_key() == keys[0]
    photo = tmp_path / "images" / callee.CAMERA_FILES[0]
    photo.write_bytes(photo.read_bytes()[:-1] + bytes([photo.read_bytes()[-1] ^ 1]))  # one bit of one photo
    keys.append(zygote._encodings_key())
    (tmp_path / "fr_utils.py").write_text((REPOSITORY / "fr_utils.py").read_text() + "\n# edited\n")
    keys.append(zygote._encodings_key())
    (tmp_path / "keras-facenet-h5" / "model.json").unlink()
    (tmp_path / "keras-facenet-h5" / "model.json").write_text((REPOSITORY / "keras-facenet-h5" / "model.json").read_text() + " ")
    keys.append(zygote._encodings_key())
    assert len(set(keys)) == 4, keys


# A cell added to a solved notebook: what the grading kernel's TensorFlow runs with, and the course
# photos' encodings by the notebook's own model (base64 of the float32 bytes, so nothing is rounded).
PROBE = """
import base64, json
print("PROBE " + json.dumps({
    "grappler_off": tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False),
    "threads": [tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads()],
    "encodings": {file: base64.b64encode(np.asarray(img_to_encoding(f"images/{file}", model), np.float32).tobytes()).decode()
                  for file in [*PEOPLE.values(), *CAMERA]}}))
"""

# The same encodings in a fresh process with TensorFlow's defaults (Grappler on) and the kernel's threads.
REFERENCE = """
import base64, json, sys
import numpy as np
import tensorflow as tf
intra, inter = json.loads(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(intra)
tf.config.threading.set_inter_op_parallelism_threads(inter)
assert not tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
from grader.sandbox.callee import encode_course_photos
with open("keras-facenet-h5/model.json") as file:
    model = tf.keras.models.model_from_json(file.read())
model.load_weights("keras-facenet-h5/model.h5")
tf.random.set_seed(1)  # as the notebook's triplet-loss test does before verify's
print(json.dumps({file: base64.b64encode(np.asarray(encoding, np.float32).tobytes()).decode()
                  for file, encoding in encode_course_photos(model).items()}))
"""


def test_the_grading_kernel_runs_without_grappler_and_its_encodings_do_not_change():
    """Grading kernels switch Grappler off (grader/sandbox/kernel.py: 0.7 to 1.1 s of CPU less per notebook). The
    course photos' encodings a graded notebook computes must not change: those of TensorFlow's
    defaults with the same number of threads, for all 18 photos."""
    import base64
    import os
    import subprocess
    import sys

    import numpy as np

    import grading_support as support
    from grader.sandbox import callee

    submissions = support.mixed_batch("grappler", ("solution",), ())
    path = submissions / "solution" / NOTEBOOK
    solved = nbformat.read(path, as_version=4)
    after = next(i for i, cell in enumerate(solved.cells)
                 if cell.metadata.get("nbgrader", {}).get("grade_id") == "who_is_it_test_visible")
    solved.cells.insert(after + 1, nbformat.v4.new_code_cell(PROBE))
    nbformat.write(solved, path)
    root = submissions.parent
    results, _ = support.grade(submissions, root / "out", root / "course", jobs=1)
    assert [(r.student, r.status, r.score) for r in results] == [("solution", "graded", 20.0)], results[0].notes
    graded = nbformat.read(root / "course" / "autograded" / "solution" / ASSIGNMENT / NOTEBOOK, as_version=4)
    [line] = [line for cell in graded.cells if cell.cell_type == "code" for output in cell.outputs
              for line in output.get("text", "").splitlines() if line.startswith("PROBE ")]
    kernel = json.loads(line[len("PROBE "):])
    assert kernel["grappler_off"] is True
    assert set(kernel["encodings"]) == set(callee.PHOTO_FILES)

    done = subprocess.run([sys.executable, "-c", REFERENCE, json.dumps(kernel["threads"])],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.returncode == 0, done.stderr[-3000:]
    reference = json.loads(done.stdout.splitlines()[-1])

    def vector(text):
        return np.frombuffer(base64.b64decode(text), np.float32)

    differences = {file: float(np.abs(vector(reference[file]) - vector(kernel["encodings"][file])).max())
                   for file in reference}
    # 0.0 for all 18 on the development machine; another CPU may fuse operations differently,
    # so allow what the notebook's own tests allow on a distance.
    assert max(differences.values()) <= 1e-6, differences
