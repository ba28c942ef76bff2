"""A class roster: student ids with their names, imported into the gradebook with nbgrader's own command.

    python -m grader.grade SUBMISSIONS --roster roster.csv

The roster is a CSV file with a header and one row per student: the id (the one the submissions
carry: the LMS's user id, or the hub's user name), the first name, the last name and the email
(optional). nbgrader's own column names are read as they are, and so are the usual spellings
of a spreadsheet (`Student ID`, `First name`, `Last Name`, `E-mail`, ...):

    id,first_name,last_name,email
    10001,Ana,Smith,ana.smith@example.edu

It is imported with `nbgrader db student import` (nbgrader's command, run as it is, on a copy of
the file with nbgrader's column names), so the formgrader shows the names. A student whose id is
on the roster is updated; one who is not is added. After grading, grades.csv gets the first and
last name beside each id, and a submission whose id is not on the roster is still graded, with
`not on the roster` in its notes (grades.csv) and in the lines after the summary table.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.grading.pipeline import STUDENT_ID, Course, GradingError

COLUMNS = ("id", "first_name", "last_name", "email")
# spreadsheet spellings of nbgrader's column names (lower case, spaces and dashes as _)
SPELLINGS = {
    "id": "id", "student_id": "id", "student": "id", "username": "id", "user_id": "id", "login": "id",
    "first_name": "first_name", "firstname": "first_name", "given_name": "first_name", "first": "first_name",
    "last_name": "last_name", "lastname": "last_name", "surname": "last_name", "family_name": "last_name",
    "last": "last_name",
    "email": "email", "e_mail": "email", "email_address": "email", "mail": "email",
}
NOT_ON_ROSTER = "not on the roster"


class RosterError(GradingError):
    """The roster cannot be read or imported; the message says what to fix (grading does not start)."""


@dataclass(frozen=True)
class Person:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""


def read(path: Path | str) -> dict[str, Person]:
    """{id: Person} of a roster CSV (see the module's docstring); RosterError on a bad file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte order mark is dropped
    except (OSError, UnicodeDecodeError) as error:
        raise RosterError(f"cannot read the roster {path}: {error}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise RosterError(f"the roster {path} is empty: expected a header (id,first_name,last_name,email) "
                          "and one row per student")
    header = [SPELLINGS.get(re.sub(r"[\s\-]+", "_", name.strip().lower()), None) for name in rows[0]]
    if "id" not in header:
        raise RosterError(f"the roster {path} has no id column (its header: {', '.join(rows[0])}); "
                          "expected id,first_name,last_name,email")
    people: dict[str, Person] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(value.strip() for value in row):
            continue
        values = {key: value.strip() for key, value in zip(header, row) if key}
        student = values.get("id", "")
        if not STUDENT_ID.match(student):
            raise RosterError(f"{path}, line {number}: {student!r} cannot be a student id (letters, digits "
                              "and _ . @ - only, as grading uses it)")
        if student in people:
            raise RosterError(f"{path}, line {number}: the id {student} is there twice")
        people[student] = Person(student, values.get("first_name", ""), values.get("last_name", ""),
                                 values.get("email", ""))
    return people


def import_roster(path: Path | str, course_dir: Path | str | None = None, db_url: str | None = None
                  ) -> dict[str, Person]:
    """Read the roster and import it into the course's gradebook with `nbgrader db student import`."""
    people = read(path)
    course = Course(course_dir, db_url=db_url)
    with tempfile.TemporaryDirectory(prefix="fr-roster-") as folder:
        copy = Path(folder) / "roster.csv"
        with open(copy, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            writer.writerows([p.id, p.first_name, p.last_name, p.email] for p in people.values())
        # run in an empty folder, so that no other nbgrader_config.py is read
        done = subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "import", str(copy),
                               f"--db={course.db_url}", f"--CourseDirectory.course_id={course.coursedir.course_id}"],
                              cwd=folder, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                       + os.environ.get("PATH", "")))
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RosterError(f"nbgrader db student import failed: {lines[-1] if lines else done.returncode}")
    return people


def flag(results, people: dict[str, Person]) -> list[str]:
    """Note NOT_ON_ROSTER in the results of ids missing from the roster, and write the names into
    the run's grades.csv (`results.out`); return the ids that are not on the roster."""
    strangers = [r.student for r in results if r.student not in people]
    for result in results:
        if result.student in strangers and NOT_ON_ROSTER not in result.notes:
            result.notes.append(NOT_ON_ROSTER)
    out = getattr(results, "out", None)
    if out is not None and (Path(out) / "grades.csv").is_file():
        add_names(Path(out) / "grades.csv", people)
    return strangers


def add_names(table: Path, people: dict[str, Person]) -> None:
    """grades.csv with first_name and last_name after student_id, and NOT_ON_ROSTER in the notes
    of an id the roster lacks."""
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or "first_name" in rows[0]:
        return
    header = rows[0]
    at, notes = header.index("student_id") + 1, header.index("notes")
    rewritten = [header[:at] + ["first_name", "last_name"] + header[at:]]
    for row in rows[1:]:
        person = people.get(row[0])
        if person is None and NOT_ON_ROSTER not in row[notes]:
            row[notes] = " | ".join(filter(None, [row[notes], NOT_ON_ROSTER]))
        rewritten.append(row[:at] + ([person.first_name, person.last_name] if person else ["", ""]) + row[at:])
    with open(table, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rewritten)


def report(strangers: list[str], people: dict[str, Person]) -> str:
    """The lines printed after the summary table."""
    line = f"Roster: {len(people)} student(s) imported into the gradebook (the formgrader shows their names)."
    if strangers:
        line += (f"\nNOT ON THE ROSTER, graded anyway and flagged in grades.csv ({len(strangers)}): "
                 + ", ".join(strangers))
    return line
