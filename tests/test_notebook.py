"""The source notebook runs top to bottom; the student notebook is what generation makes of it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from grader.course.make_examples import ANSWERS, POINTS
from grader.grading.pipeline import COURSE_FILES, REPOSITORY, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK

# The ungraded "Going further" section reads LFW photos from data/; grading never runs it.
EXTRA_FILES = ("data",)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "execute_result":
            parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> nbformat.NotebookNode:
    """The source notebook run top to bottom in a fresh kernel, in a folder laid out like a
    student's (the notebook and links to the course files), without its two ungraded "Going
    further" sections (the cells tagged going-further, which the grader skips too). Those run in
    a kernel in tests/test_hub.py's fetched copy and in the browser test's Run All, and cell by
    cell, with what they show checked, in tests/test_going_further.py and
    tests/test_triplet_training.py: another run here would add minutes and no check."""
    from nbclient import NotebookClient

    from grader.grading.pipeline import GOING_FURTHER_TAG

    folder = tmp_path_factory.mktemp("source-run")
    for name in (*COURSE_FILES, *EXTRA_FILES):
        (folder / name).symlink_to(REPOSITORY / name)
    notebook = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    whole = len(notebook.cells)
    notebook.cells = [cell for cell in notebook.cells if GOING_FURTHER_TAG not in cell.metadata.get("tags", [])]
    assert 20 < whole - len(notebook.cells) < whole / 2  # the two sections, nothing else
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


def test_student_notebook_works_as_opened_in_its_own_folder():
    """Run in place (the repository's top folder), the unanswered student notebook finds its
    photos, model and helpers; its only errors are the exercises' NotImplementedError.

    Its Going-further cells are left out, as in the source run above: they are the source's cells
    unchanged (generate_assignment only rewrites nbgrader's cells), and tests/test_going_further.py
    runs them in this same folder (the training section would only print that the loss is not
    written yet). Leaving them out saves about 45 s of two cores."""
    from nbclient import NotebookClient

    from grader.grading.pipeline import GOING_FURTHER_TAG

    notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    tagged = [cell.source for cell in notebook.cells if GOING_FURTHER_TAG in cell.metadata.get("tags", [])]
    assert tagged == [cell.source for cell in source.cells if GOING_FURTHER_TAG in cell.metadata.get("tags", [])]
    notebook.cells = [cell for cell in notebook.cells if GOING_FURTHER_TAG not in cell.metadata.get("tags", [])]
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(STUDENT_NOTEBOOK.parent)}}).execute()
    errors = {output.ename for cell in notebook.cells for output in cell.get("outputs", [])
              if output.output_type == "error"}
    assert errors == {"NotImplementedError"}
    scores = [float(o.data["text/plain"]) for c in notebook.cells if nbgrader_meta(c).get("grade")
              for o in c.outputs if o.output_type == "execute_result"]
    assert scores == [0.0] * 4  # the visible test cells; hidden test cells are empty here
    model_cell = next(c for c in notebook.cells if nbgrader_meta(c).get("grade_id") == "model")
    printed = outputs_text(model_cell)  # model.inputs and model.outputs, as the course printed them
    assert "shape=(None, 160, 160, 3)" in printed and "shape=(None, 128)" in printed


def test_source_notebook_runs_top_to_bottom_without_error(executed):
    errors = [(index, output.ename, output.evalue) for index, cell in enumerate(executed.cells)
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors == []


def test_every_test_cell_of_the_source_notebook_awards_its_full_points(executed):
    awarded = {}
    for cell in executed.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            results = [o for o in cell.outputs if o.output_type == "execute_result"]
            assert len(results) == 1, f"{meta['grade_id']} should end with checks.score()"
            awarded[meta["grade_id"]] = float(results[0].data["text/plain"])
    assert awarded == {cell: float(points) for cell, points in POINTS.items()}


def test_the_visible_triplet_loss_test_prints_the_classic_value(executed):
    cell = next(c for c in executed.cells if nbgrader_meta(c).get("grade_id") == "triplet_loss_test_random")
    assert "loss = tf.Tensor(527.2598, shape=(), dtype=float32)\n" in outputs_text(cell)


def test_the_visible_tests_print_the_courses_numbers(executed):
    printed = {nbgrader_meta(c).get("grade_id"): outputs_text(c) for c in executed.cells}
    assert "the course printed (0.5992949, True)" in printed["verify_test_visible"]
    assert "the course printed (1.0259346, False)" in printed["verify_test_visible"]
    assert "the course printed (0.5992949, 'younes')" in printed["who_is_it_test_visible"]
    returned = [float(x) for x in re.findall(r"verify returned \(([\d.]+), ", printed["verify_test_visible"])]
    assert len(returned) == 2 and abs(returned[0] - 0.5992949) <= 1e-6 and abs(returned[1] - 1.0259346) <= 1e-6


def test_what_the_text_says_about_the_photos_is_what_the_cells_print(executed):
    text = "\n".join(outputs_text(c) for c in executed.cells if c.cell_type == "code")
    # "The closest photo is the right person every time here" (by pixels).
    closest = re.findall(r"camera_\d\.jpg \((\w+)\): closest by pixels is (\w+)", text)
    assert len(closest) == 6 and all(truth == found for truth, found in closest)

    # "the two ranges above overlap" (pixels); with encodings "the groups still touch"; a shifted or
    # mirrored copy "stays close to the original", the darker copy "lands far from him".
    ranges = {group: tuple(map(float, numbers)) for group, *numbers in re.findall(
        r"^(same person|different people|younes, altered copies)\s+pixels\s+([\d.]+) to\s+([\d.]+)"
        r" \| encodings ([\d.]+) to ([\d.]+)$", text, re.MULTILINE)}
    assert set(ranges) == {"same person", "different people", "younes, altered copies"}
    same, different, altered = ranges["same person"], ranges["different people"], ranges["younes, altered copies"]
    assert same[1] > different[0], "pixels: the same-person and different-people ranges should overlap"
    assert same[3] > different[2], "encodings: the largest same-person distance should pass the smallest other"
    assert altered[2] < same[3] < altered[3], "encodings: one altered copy close, the darker one far"

    # The JPEG lesson: the two decoders' pixels differ, and the distance "changes in the third decimal".
    levels = int(re.search(r"largest pixel difference: (\d+) of 255", text).group(1))
    ijg, turbo = (float(x) for x in re.findall(r"camera_0 to younes, libjpeg[- ][\w ]*?:\s+([\d.]+)", text))
    assert levels > 0 and 1e-3 <= abs(ijg - turbo) < 1e-2

    # "camera_4.jpg: it is Dan, and the door lets him in, but greets him as Sebastiano"; the rest right.
    greeted = dict(re.findall(r"^(camera_\d)\.jpg, really \w+: Hello (\w+), come in!$", text, re.MULTILINE))
    assert greeted == {"camera_0": "younes", "camera_1": "bertrand", "camera_2": "benoit",
                       "camera_3": "bertrand", "camera_4": "sebastiano", "camera_5": "arnaud"}

    # "Every employee gets in, but some false claims would get in too."
    refused, employees, accepted, claims = map(int, re.search(
        r"On the course photos: (\d+) of (\d+) employees refused, (\d+) of (\d+) false claims accepted", text).groups())
    assert (refused, employees, claims) == (0, 6, 66)
    assert accepted > 0


def test_notebook_states_the_threshold_that_fr_utils_uses():
    import fr_utils

    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
    assert f"**{fr_utils.DISTANCE_THRESHOLD:g}**" in text, (
        "the threshold section states another value than fr_utils.DISTANCE_THRESHOLD: update the "
        "markdown cell of section 8 of the source notebook (and its measured accuracy)")


def test_student_notebook_is_what_generate_assignment_makes_now():
    from grader.course.release import generate_student_notebook

    assert STUDENT_NOTEBOOK.read_text(encoding="utf-8") == generate_student_notebook(), (
        "Face_Recognition.ipynb is out of date: run `.venv/bin/python -m grader.course.release`")


def test_student_notebook_has_no_solutions_and_no_hidden_tests():
    student = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "grader.course.hidden", "check_triplet_loss",
                   "np.linalg.norm(encoding - database[identity])", "tf.maximum(basic_loss"):
        assert secret not in text
    answers = [c for c in student.cells if nbgrader_meta(c).get("grade_id") in ANSWERS]
    assert len(answers) == 3 and all("raise NotImplementedError()" in c.source for c in answers)
    hidden = [c for c in student.cells if nbgrader_meta(c).get("grade_id", "").endswith("_hidden")]
    assert len(hidden) == 3 and all(c.source.startswith("# Hidden tests of") for c in hidden)


def test_graded_cells_and_points_are_the_ones_the_examples_expect():
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    graded = {nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"] for c in source.cells if nbgrader_meta(c).get("grade")}
    assert graded == POINTS
    answers = [nbgrader_meta(c)["grade_id"] for c in source.cells if nbgrader_meta(c).get("solution")]
    assert tuple(answers) == ANSWERS


def test_hidden_test_cells_are_thin_calls_into_the_grader_package():
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    for cell in source.cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            hidden = cell.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
            lines = [line for line in hidden.strip().splitlines() if line.strip()]
            assert len(lines) == 2 and lines[0].startswith("from grader.course.hidden import check_")
            assert re.fullmatch(r"check_\w+\(globals\(\), points=\d+\)", lines[1])


@pytest.mark.parametrize("path", [SOURCE_NOTEBOOK, STUDENT_NOTEBOOK], ids=["source", "student"])
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_source_folder_links_to_the_course_files_like_the_student_folder():
    folder = SOURCE_NOTEBOOK.parent
    for name in COURSE_FILES:
        link = folder / name
        assert link.is_symlink(), f"{link} should be a symbolic link to the repository's {name}"
        assert link.resolve() == (REPOSITORY / name).resolve()
    for name in EXTRA_FILES:
        assert (folder / name).resolve() == (REPOSITORY / name).resolve()
    assert sorted(p.name for p in folder.iterdir()) == sorted([*COURSE_FILES, *EXTRA_FILES, SOURCE_NOTEBOOK.name])


def test_notebook_cites_its_sources_and_states_the_triplet_loss():
    text = "\n".join(c.source for c in nbformat.read(SOURCE_NOTEBOOK, as_version=4).cells)
    for reference in ("FaceNet", "DeepFace", "Dlib-ml", "Deep Metric Learning", "Labeled Faces in the Wild"):
        assert reference in text
    assert r"\max\left(\lVert f(A) - f(P) \rVert_2^2 - \lVert f(A) - f(N) \rVert_2^2 + \alpha,\; 0\right)" in text
    assert 'model_from_json' in text and 'load_weights("keras-facenet-h5/model.h5")' in text
