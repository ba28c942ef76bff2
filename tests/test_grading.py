"""The README's main job: `python -m grader.grade` grades the example submissions with nbgrader.

One grading run of every example (in the grader's sandbox, two at a time: about 7 s of CPU per
submission) serves all the tests below. Each example's score for every graded cell is asserted
against what grader/course/make_examples.py says it should be. The stock nbgrader flow (nbgrader's own
kernel, the hidden tests inside it) is checked on one example too: it must agree.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from grader.course.make_examples import EXAMPLES, EXAMPLES_FOLDER, POINTS
from grader.grading.pipeline import EXERCISES, NOTEBOOK, REPOSITORY, Course

BY_NAME = {example.student: example for example in EXAMPLES}


@pytest.fixture(scope="module")
def run():
    """The README command, with its output and course folders in a temporary place.

    (A folder of its own rather than pytest's tmp_path: pytest sessions started meanwhile on a
    shared machine prune pytest's older temporary folders.)
    """
    with tempfile.TemporaryDirectory(prefix="fr-grading-") as folder:
        out = Path(folder)
        course = out / "course"
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run([sys.executable, "-m", "grader.grade", "--out", str(out), "--course", str(course),
                               "--jobs", "2"], cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=3600)
        yield done, out, course


@pytest.fixture(scope="module")
def scores(run):
    _, _, course = run
    grading = Course(course)
    return {example.student: grading.scores(example.student) for example in EXAMPLES}


@pytest.fixture(scope="module")
def table(run):
    _, out, _ = run
    with open(out / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_the_command_succeeds_and_prints_every_score(run):
    done, _, _ = run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("student "))
    assert "triplet_loss /8" in lines[header] and "total /20" in lines[header]
    printed = {line.split()[0]: line.split() for line in lines[header + 2: header + 2 + len(EXAMPLES)]}
    assert set(printed) == set(BY_NAME)
    for student, columns in printed.items():
        assert float(columns[4]) == pytest.approx(BY_NAME[student].expected_total), student


def test_examples_were_generated_from_the_source_notebook(run):
    folders = sorted(p.name for p in EXAMPLES_FOLDER.iterdir())
    assert folders == sorted(BY_NAME)
    assert len(EXAMPLES) >= 12  # the solution, the unanswered notebook and at least ten others


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.student for e in EXAMPLES])
def test_each_example_scores_what_it_should_cell_by_cell(example, scores):
    got = {cell: score for cell, (score, _) in scores[example.student].items()}
    assert got == pytest.approx(example.expected()), f"{example.student}: {example.why}"
    assert {cell: maximum for cell, (_, maximum) in scores[example.student].items()} == POINTS


def test_the_solution_gets_full_marks_and_the_unanswered_notebook_zero(table):
    assert float(table["solution"]["score"]) == float(table["solution"]["max_score"]) == 20
    assert float(table["unanswered"]["score"]) == 0
    assert table["unanswered"]["status"] == "graded"


def test_a_syntax_error_in_one_exercise_costs_only_that_exercise(table):
    row = table["syntax_error_in_verify"]
    assert (float(row["triplet_loss"]), float(row["verify"]), float(row["who_is_it"])) == (8, 0, 6)


def test_grades_csv_has_every_student_and_exercise(table):
    assert set(table) == set(BY_NAME)
    for student, row in table.items():
        parts = sum(float(row[e]) for e in EXERCISES)
        assert parts == pytest.approx(float(row["score"])) == pytest.approx(BY_NAME[student].expected_total)
        assert row["status"] == "graded" and float(row["max_score"]) == 20


def test_one_feedback_file_per_student_without_hidden_test_code(run):
    _, out, _ = run
    files = {p.stem: p.read_text(encoding="utf-8") for p in (out / "feedback").glob("*.html")}
    assert set(files) == set(BY_NAME)
    for student, html in files.items():
        for secret in ("grader.course.hidden", "check_triplet_loss", "check_verify", "check_who_is_it",
                       "BEGIN HIDDEN TESTS", "STRANGERS_TO_BENOIT"):
            assert secret not in html, f"{student}'s feedback shows hidden test code ({secret})"
    # ... but it does show what the hidden tests checked, and the result.
    assert "another alpha (0.5) on a batch of 4 triplets" in files["alpha_forgotten"]
    assert "8 of 8 checks passed: 4 of 4 points" in files["solution"]


def test_stderr_really_reached_the_test_cells_of_the_noisy_example(run):
    """The noisy example is only a test of forgiveness if its stderr really got written."""
    _, _, course = run
    assert "like a C++ warning of TensorFlow" in (course / "logs" / "noisy_stderr.log").read_text()


def test_grading_time_per_submission(table, run):
    seconds = [float(row["seconds"]) for row in table.values()]
    print(f"\nseconds per submission: mean {sum(seconds) / len(seconds):.1f}, max {max(seconds):.1f}")
    assert max(seconds) < 240
    done, _, _ = run
    assert "per minute" in done.stdout and "isolated" in done.stdout


def test_the_examples_ran_in_the_sandbox_without_notes(table):
    """Nothing in an honest submission should trigger a grader's note (except a pasted cell)."""
    for student, row in table.items():
        if student != "pasted_foreign_cell":
            assert row["notes"] == "", (student, row["notes"])
    assert "another assignment" in table["pasted_foreign_cell"]["notes"]


def test_the_stock_nbgrader_flow_agrees(tmp_path_factory):
    """`nbgrader autograde` with grader/nbgrader_config.py as it is (nbgrader's kernel, course files
    linked in, hidden tests run inside the kernel) gives the same cell scores on an example."""
    from grader.course.make_examples import write_examples

    folder = Path(tempfile.mkdtemp(prefix="fr-stock-"))
    try:
        example = BY_NAME["alpha_forgotten"]
        submissions = folder / "submissions"
        write_examples(folder / "examples")
        (submissions / example.student).mkdir(parents=True)
        shutil.copy(folder / "examples" / example.student / NOTEBOOK, submissions / example.student / NOTEBOOK)
        course = Course(folder / "course")
        course.release()
        course.collect(submissions)
        result = course.autograde(example.student)
        assert result.graded, result.status
        assert {c: s for c, (s, _) in result.cells.items()} == pytest.approx(example.expected())
        graded = (course.path("autograded", example.student) / NOTEBOOK).read_text()
        assert "another alpha (0.5) on a batch of 4 triplets" in graded  # the hidden tests ran in the kernel
    finally:
        shutil.rmtree(folder, ignore_errors=True)
