"""The class roster (grader/grading/roster.py): ids with names, into the gradebook with nbgrader's
`nbgrader db student import`, names in grades.csv, ids missing from it graded and flagged."""
from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest

from grader.grading import roster
from grader.grading.pipeline import EXERCISES, NOTEBOOK, REPOSITORY, STUDENT_NOTEBOOK, Course, StudentResult

ROSTER = "id,first_name,last_name,email\n10001,Ana,Smith,ana@example.edu\n10002,Bo,Li,\n"


def gradebook_students(course: Course) -> dict[str, tuple]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        return {s.id: (s.first_name, s.last_name, s.email) for s in gradebook.students}


def test_nbgraders_columns_and_spreadsheet_spellings_read_alike(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(ROSTER)
    sheet = tmp_path / "sheet.csv"  # a spreadsheet's export: byte order mark, other headers, blank rows
    sheet.write_text("\ufeffStudent ID,First Name,Last name,E-mail\r\n10001, Ana ,Smith,ana@example.edu\r\n"
                     ",,,\r\n10002,Bo,Li,\r\n", encoding="utf-8")
    assert roster.read(plain) == roster.read(sheet) == {
        "10001": roster.Person("10001", "Ana", "Smith", "ana@example.edu"), "10002": roster.Person("10002", "Bo", "Li")}


@pytest.mark.parametrize("text, says", [
    ("", "is empty"),
    ("name,email\nAna,a@b\n", "no id column"),
    ("id,first_name\n10001,Ana\n10001,Ana\n", "line 3: the id 10001 is there twice"),
    ("id,first_name\n../x,Ana\n", "line 2: '../x' cannot be a student id"),
])
def test_a_bad_roster_says_what_to_fix(tmp_path, text, says):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    with pytest.raises(roster.RosterError, match=says.replace("(", r"\(").replace(".", r"\.")):
        roster.read(path)


def test_the_import_is_nbgraders_and_grading_keeps_the_names(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER)
    course_dir = tmp_path / "course"
    people = roster.import_roster(path, course_dir)
    course = Course(course_dir)
    assert set(people) == {"10001", "10002"}
    assert gradebook_students(course) == {"10001": ("Ana", "Smith", "ana@example.edu"), "10002": ("Bo", "Li", None)}
    # what nbgrader's autograde does to a student it grades: update_or_create_student(id), no names
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student("10001")
        gradebook.update_or_create_student("99999")
    # a second import (a corrected roster) updates names; a student it does not name is kept
    path.write_text("id,first_name,last_name,email\n10001,Ana Maria,Smith,ana@example.edu\n")
    roster.import_roster(path, course_dir)
    assert gradebook_students(course) == {"10001": ("Ana Maria", "Smith", "ana@example.edu"),
                                          "10002": ("Bo", "Li", None), "99999": (None, None, None)}


def test_grades_csv_gets_the_names_and_flags_ids_off_the_roster(tmp_path):
    people = {"10001": roster.Person("10001", "Ana", "Smith")}
    cells = {f"{name}_test": (1.0, 2.0) for name in EXERCISES}
    results = [StudentResult("10001", cells=dict(cells)), StudentResult("intruder", cells=dict(cells), notes=["late"])]
    Course.export(results, tmp_path)

    class Run(list):
        out = tmp_path

    strangers = roster.flag(Run(results), people)
    assert strangers == ["intruder"]
    assert results[1].notes == ["late", roster.NOT_ON_ROSTER] and results[0].notes == []
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:3] == ["student_id", "first_name", "last_name"]
    assert [(r["student_id"], r["first_name"], r["last_name"], r["notes"]) for r in rows] == [
        ("10001", "Ana", "Smith", ""), ("intruder", "", "", "late | not on the roster")]
    assert rows[1]["score"] == "3"
    roster.add_names(tmp_path / "grades.csv", people)  # a second pass changes nothing
    with open(tmp_path / "grades.csv", newline="") as handle:
        assert list(csv.DictReader(handle)) == rows
    assert "NOT ON THE ROSTER" in roster.report(strangers, people) and "intruder" in roster.report(strangers, people)


def test_grade_with_a_roster_grades_and_flags_a_stranger(tmp_path):
    """One small grading run of the command line: an id on the roster and one that is not."""
    from grader.course.make_examples import EXAMPLES, build, solutions

    solution = next(example for example in EXAMPLES if example.student == "solution")
    notebook = build(solution, nbformat.read(STUDENT_NOTEBOOK, as_version=4), solutions())
    for student in ("10001", "stranger"):
        (tmp_path / "submissions" / student).mkdir(parents=True)
        nbformat.write(notebook, tmp_path / "submissions" / student / NOTEBOOK)
    (tmp_path / "roster.csv").write_text(ROSTER)
    done = subprocess.run([sys.executable, "-m", "grader.grade", str(tmp_path / "submissions"), "--course",
                           str(tmp_path / "course"), "--out", str(tmp_path / "out"), "--roster",
                           str(tmp_path / "roster.csv"), "--jobs", "2"],
                          cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "NOT ON THE ROSTER, graded anyway and flagged in grades.csv (1): stranger" in done.stdout
    with open(tmp_path / "out" / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert (rows["10001"]["first_name"], rows["10001"]["score"], rows["10001"]["notes"]) == ("Ana", "20", "")
    assert (rows["stranger"]["first_name"], rows["stranger"]["score"]) == ("", "20")
    assert roster.NOT_ON_ROSTER in rows["stranger"]["notes"]
    students = gradebook_students(Course(tmp_path / "course"))
    assert students["10001"] == ("Ana", "Smith", "ana@example.edu") and students["stranger"] == (None, None, None)
    assert "10002" in students  # on the roster, no submission: the formgrader lists them too
