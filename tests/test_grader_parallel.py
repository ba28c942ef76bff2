"""Parallel grading: the same batch gives the same grades serially and with two jobs, into nbgrader's
SQLite gradebook and into a real PostgreSQL server; a stopped run resumes where it stopped.

The batch is small (five submissions, among them a crash and a file that is not a notebook) and
each grading is done once, shared by the tests below.
"""
from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import grading_support as support
from grader.course.make_examples import EXAMPLES
from grader.grading.pipeline import ASSIGNMENT, REPOSITORY, Course

EXAMPLE_NAMES = ("solution", "alpha_forgotten")
HOSTILE_NAMES = ("os_exit", "not_json")
EXPECTED = {e.student: e.expected() for e in EXAMPLES if e.student in EXAMPLE_NAMES}


@pytest.fixture(scope="module")
def submissions():
    return support.mixed_batch("parallel", EXAMPLE_NAMES, HOSTILE_NAMES)


grades = support.grades


@pytest.fixture(scope="module")
def runs(submissions):
    """The batch graded four ways: serially and with two jobs, into SQLite and into PostgreSQL."""
    server = support.postgres()
    found = {}
    for name, jobs, database in (("serial-sqlite", 1, None), ("parallel-sqlite", 2, None),
                                 ("parallel-postgres", 2, server.database("parallel")),
                                 ("serial-postgres", 1, server.database("serial"))):
        root = support.folder(name)
        started = time.perf_counter()
        results, messages = support.grade(submissions, root / "out", root / "course", jobs=jobs, db_url=database)
        course = Course(root / "course", db_url=database)
        found[name] = {"grades": grades(course, results), "course": course, "messages": messages,
                       "seconds": time.perf_counter() - started, "out": root / "out"}
    return found


def test_serial_and_parallel_give_identical_grades_in_sqlite_and_postgresql(runs):
    reference = runs["serial-sqlite"]["grades"]
    assert len(reference) == len(EXAMPLE_NAMES) + len(HOSTILE_NAMES)
    for name, run in runs.items():
        assert run["grades"] == reference, name
    for student, expected in EXPECTED.items():
        assert {c: s for c, (s, _) in reference[student][1].items()} == pytest.approx(expected), student
    assert sum(s for s, _ in reference["os_exit"][1].values()) == 8
    assert sum(s for s, _ in reference["not_json"][1].values()) == 0


def test_the_parallel_runs_used_two_jobs_and_the_chosen_gradebook(runs):
    assert any("with 2 job(s)" in m for m in runs["parallel-postgres"]["messages"])
    assert any("with 1 job(s)" in m for m in runs["serial-sqlite"]["messages"])
    postgres = runs["parallel-postgres"]["course"].db_url
    assert postgres.startswith("postgresql+psycopg2://")
    assert any("gradebook postgresql+psycopg2://grader@127.0.0.1" in m for m in runs["parallel-postgres"]["messages"])
    assert not (runs["parallel-postgres"]["course"].root / "gradebook.db").exists()
    assert (runs["parallel-sqlite"]["course"].root / "gradebook.db").exists()


def test_the_postgresql_gradebook_holds_every_submission_once(runs):
    from nbgrader.api import Gradebook

    course = runs["parallel-postgres"]["course"]
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        submissions = gradebook.assignment_submissions(ASSIGNMENT)
        assert sorted(s.student.id for s in submissions) == sorted(runs["serial-sqlite"]["grades"])
        for submission in submissions:
            assert len(submission.notebooks[0].grades) == 7
            assert all(g.auto_score is not None for g in submission.notebooks[0].grades)


def test_grades_csv_is_the_same_whatever_the_jobs_and_gradebook(runs):
    def table(run):
        with open(run["out"] / "grades.csv", newline="") as handle:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]

    reference = table(runs["serial-sqlite"])
    for name, run in runs.items():
        assert table(run) == reference, name
    assert {row["student_id"] for row in reference} == set(runs["serial-sqlite"]["grades"])
    assert "not valid JSON" in next(row["notes"] for row in reference if row["student_id"] == "not_json")


def test_a_stopped_run_resumes_and_skips_what_it_graded(submissions, runs):
    """Ctrl-C in the middle of `python -m grader.grade --jobs 2`, then the same command again."""
    root = support.folder("resume")
    course, out = root / "course", root / "out"
    command = [sys.executable, "-m", "grader.grade", str(submissions), "--out", str(out), "--course", str(course),
               "--jobs", "2", "--cell-timeout", str(support.CELL_TIMEOUT), "--timeout", str(support.NOTEBOOK_TIMEOUT)]
    # Start it as a terminal would, with Ctrl-C's signal at its default. A test run started in the
    # background of a script (as CI runners may start it) has SIGINT ignored, which a child
    # inherits; a signal caught here is reset to its default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    finally:
        signal.signal(signal.SIGINT, previous)
    lines = []
    for line in process.stdout:  # stop it once two submissions are graded
        lines.append(line)
        if re.match(r"\[2/4\]", line):
            process.send_signal(signal.SIGINT)
            break
    rest, errors = process.communicate(timeout=300)
    assert process.returncode == 130, "".join(lines) + rest + errors
    assert "run the same command again to resume" in errors
    assert re.search(r"\d+ done, \d+ failed, \d+ remaining, ETA", errors)

    graded_before = len(list((course / "grading-state").glob("*.json")))
    assert 2 <= graded_before < 4
    # One submission changes before the second run: it is graded again even if it was done.
    changed = sorted((course / "grading-state").glob("*.json"))[0].stem
    notebook = next((submissions / changed).rglob("*.ipynb"))
    original = notebook.read_bytes()
    try:
        notebook.write_bytes(original.replace(b"Face recognition", b"Face recognition (resubmitted)", 1)
                             if changed != "not_json" else original + b"\n# resubmitted\n")
        results, messages = support.grade(submissions, out, course, jobs=2)
    finally:
        notebook.write_bytes(original)
    kept = [r.student for r in results if r.resumed]
    assert any(f"Resuming: {len(kept)} kept from an earlier run" in m and "1 changed since the last run" in m
               and changed in m for m in messages)
    assert results.origin[changed] == "changed" and results.count("kept") == len(kept)
    assert len(kept) == graded_before - 1 and changed not in kept
    assert grades(Course(course), results) == runs["serial-sqlite"]["grades"]
    assert all((out / "feedback" / f"{r.student}.html").exists() for r in results)


def test_force_grades_again_what_a_run_would_keep(submissions):
    root = support.folder("force")
    one = root / "submissions"
    shutil.copytree(submissions / "not_json", one / "not_json")  # quick to grade: it is not a notebook
    first, _ = support.grade(one, root / "out", root / "course")
    kept, messages = support.grade(one, root / "out", root / "course")
    assert [r.resumed for r in first] == [False] and [r.resumed for r in kept] == [True]
    assert any("Resuming: 1 kept from an earlier run" in m for m in messages)
    again, messages = support.grade(one, root / "out", root / "course", force=True)
    assert [r.resumed for r in again] == [False] and any("Resuming: 1 graded again (--force)" in m for m in messages)
    assert again[0].notes == first[0].notes and again[0].score == 0


def test_two_graders_at_once_share_one_postgresql_gradebook(submissions):
    """Two `python -m grader.grade` commands started together, each with its own students, write
    into the same PostgreSQL database (an empty one: they also race to create the tables)."""
    from nbgrader.api import Gradebook

    url = support.postgres().database("two_graders")
    root = support.folder("two-graders")
    processes = []
    for grader, student in (("a", "not_json"), ("b", "os_exit")):
        folder = root / grader / "submissions"
        shutil.copytree(submissions / student, folder / student)
        command = [sys.executable, "-m", "grader.grade", str(folder), "--out", str(root / grader / "out"),
                   "--course", str(root / grader / "course"), "--db", url, "--cell-timeout", str(support.CELL_TIMEOUT)]
        processes.append(subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))
    for process in processes:
        output, errors = process.communicate(timeout=600)
        assert process.returncode == 0, output[-2000:] + errors[-2000:]
    course = Course(root / "a" / "course", db_url=url)
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        scores = {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)}
    assert scores == {"not_json": 0, "os_exit": 8}
