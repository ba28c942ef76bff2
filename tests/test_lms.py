"""LMS downloads (grader/grading/lms.py): file names, the latest attempt, zips, exports, the stock zip_collect.

The fast tests read names and write files only. The end-to-end tests build one zip per LMS from
the example submissions (a student with two attempts, one whose notebook is in a sub-folder, one
who handed in a PDF renamed .ipynb), grade all three with `grader.grade` in the tests' shared
sandbox, grade one again after a file changed (resume), put each zip through the stock
`nbgrader zip_collect` (the documented pattern, and grader.grading.lms.LatestAttemptCollector), and the
Canvas one through the stock `nbgrader autograde` too.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.grading import lms
from grader.grading.pipeline import GRADER, NOTEBOOK, REPOSITORY, GradingError

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"

# Each LMS's grade-import columns as its documentation states them (see grader/grading/lms.py's docstring):
DOCUMENTED = {
    # Canvas Instructor Guide, "How do I import grades in the Gradebook?": these five columns, then assignments.
    "canvas": ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"],
    # Moodle assignfeedback_offline (Upload grading worksheet): columns found by these names.
    "moodle": ["Identifier", "Grade"],
    # Blackboard Help, "Upload grades from external sources": the student is identified by Username.
    "blackboard": ["Username"],
}


def write(folder: Path, relative: str, data: bytes, mtime: float | None = None) -> Path:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime:
        os.utime(path, (mtime, mtime))
    return path


# ---------------------------------------------------------------- names and attempts


@pytest.mark.parametrize("name, files, student, chosen", [
    ("canvas", ["nguyen_10004_50004_Face_Recognition.ipynb", "nguyen_10004_50004_Face_Recognition-1.ipynb",
                "nguyen_10004_50004_Face_Recognition-2.ipynb", "smith_LATE_10001_50001_Face_Recognition.ipynb"],
     "10004", "nguyen_10004_50004_Face_Recognition-2.ipynb"),
    ("moodle", ["Ana Smith_201_assignsubmission_file_Face_Recognition.ipynb",
                "Bo Li_202_assignsubmission_file_/Face_Recognition.ipynb"],
     "202", "Bo Li_202_assignsubmission_file_/Face_Recognition.ipynb"),
    ("blackboard", ["Face Recognition_asmith_attempt_2026-11-20-09-00-00_Face_Recognition.ipynb",
                    "Face Recognition_asmith_attempt_2026-11-21-08-00-00_Face_Recognition.ipynb",
                    "Face Recognition_asmith_attempt_2026-11-21-08-00-00.txt"],
     "asmith", "Face Recognition_asmith_attempt_2026-11-21-08-00-00_Face_Recognition.ipynb"),
])
def test_each_lms_names_are_read_and_the_latest_attempt_is_chosen(tmp_path, name, files, student, chosen):
    for index, relative in enumerate(files):  # written newest first: names, not file times, decide
        write(tmp_path, relative, b"{}", mtime=time.time() - index * 60)
    download = lms.read_download(tmp_path, tmp_path / "unused")
    assert download.lms == name  # detected
    assert download.files[student] == tmp_path / chosen
    others = [Path(f).name for f in files if f != chosen and f.endswith(".ipynb") and lms.RULES[name].match(f)
              and lms.RULES[name].match(f)["student_id"] == student]
    for other in others:
        assert other in download.notes[student][0]
    if name == "blackboard":
        assert download.skipped == ["Face Recognition_asmith_attempt_2026-11-21-08-00-00.txt"]  # the receipt


def test_without_an_attempt_in_the_name_the_file_time_decides(tmp_path):
    write(tmp_path, "a/Ana Smith_201_assignsubmission_file_Face_Recognition.ipynb", b"old", mtime=1_700_000_000)
    write(tmp_path, "b/Ana Smith_201_assignsubmission_file_Face_Recognition.ipynb", b"new", mtime=1_700_000_600)
    download = lms.read_download(tmp_path, tmp_path / "unused", lms="moodle")
    assert download.files["201"].read_bytes() == b"new"


def test_a_student_with_no_notebook_is_graded_on_the_file_they_handed_in(tmp_path):
    write(tmp_path, "smith_10001_50001_report.pdf", PDF)
    download = lms.read_download(tmp_path, tmp_path / "unused")
    assert download.files == {"10001": tmp_path / "smith_10001_50001_report.pdf"}


def test_id_pattern_worked_example_and_its_errors(tmp_path):
    write(tmp_path, "week5_ab123.ipynb", b"{}")
    write(tmp_path, "week5_cd456.ipynb", b"{}")
    write(tmp_path, "notes.txt", b"")
    download = lms.read_download(tmp_path, tmp_path / "unused", id_pattern=r"^week5_(?P<student_id>[a-z]+\d+)\.ipynb$")
    assert sorted(download.files) == ["ab123", "cd456"] and download.skipped == ["notes.txt"]
    with pytest.raises(GradingError, match="no group named student_id"):
        lms.read_download(tmp_path, tmp_path / "unused", id_pattern=r"week5_(\w+)")
    with pytest.raises(GradingError, match="is not a regular expression"):
        lms.read_download(tmp_path, tmp_path / "unused", id_pattern=r"(?P<student_id>")


def test_a_plain_folder_is_still_one_folder_per_student(tmp_path):
    write(tmp_path, f"alice/{NOTEBOOK}", b"{}")
    download = lms.read_download(tmp_path, tmp_path / "unused")
    assert download.lms is None and download.files == {"alice": tmp_path / "alice" / NOTEBOOK}


def test_bad_downloads_say_what_to_do(tmp_path):
    broken = write(tmp_path, "class.zip", b"PK\x03\x04 cut off")
    with pytest.raises(GradingError, match="not a zip file that can be read"):
        lms.read_download(broken, tmp_path / "out")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../../escaped.ipynb", "{}")
    with pytest.raises(GradingError, match="outside the folder"):
        lms.read_download(evil, tmp_path / "out")
    assert not (tmp_path.parent / "escaped.ipynb").exists()
    with pytest.raises(GradingError, match="--lms canvas: unknown|named the way canvas"):
        lms.read_download(write(tmp_path, "plain/x.ipynb", b"{}").parent, tmp_path / "o", lms="canvas")


# ---------------------------------------------------------------- what a file that is not a notebook is


@pytest.mark.parametrize("name, data, what", [
    ("x.ipynb", PDF, "a PDF document"),
    ("x.ipynb", b"PK\x03\x04" + bytes(40), "a zip archive"),
    ("x.ipynb", b"<!DOCTYPE html>\n<html><body>Face_Recognition</body></html>", "a web page (HTML"),
    ("x.ipynb", b"", "an empty file"),
    ("x.py", b"import numpy as np\n", "Python code"),
])
def test_an_unreadable_file_is_named_for_what_it_is(tmp_path, name, data, what):
    from grader.grading.preflight import prepare

    prepared = prepare("s", write(tmp_path, name, data), (REPOSITORY / NOTEBOOK).read_text(encoding="utf-8"))
    assert prepared.rejected and prepared.what.startswith(what.split(" (")[0])
    assert what in prepared.rejected or what == "an empty file" and "empty" in prepared.rejected


def test_a_notebook_showing_html_or_code_at_its_start_is_still_a_notebook(tmp_path):
    import nbformat

    from grader.grading.preflight import prepare

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("<html><b>import numpy</b></html>")])
    prepared = prepare("s", write(tmp_path, NOTEBOOK, nbformat.writes(nb).encode()),
                       (REPOSITORY / NOTEBOOK).read_text(encoding="utf-8"))
    assert prepared.rejected is None and prepared.what == ""


# ---------------------------------------------------------------- exports


def _results():
    from grader.grading.pipeline import StudentResult

    full = {"triplet_loss_test_hidden": (4.0, 4.0), "verify_test_hidden": (3.5, 4.0)}
    return [StudentResult("10001", cells=dict(full)),
            StudentResult("10002", cells={k: (0.0, m) for k, (_, m) in full.items()}, status="unreadable"),
            StudentResult("10003", status="not graded: the grader failed")]


@pytest.mark.parametrize("name", sorted(lms.EXPORT_FILES))
def test_each_export_has_the_columns_its_lms_documents(tmp_path, name):
    download = lms.Download(tmp_path, name, names={"10001": "smith"})
    path = lms.write_export(name, _results(), download, tmp_path, points=8)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[:len(DOCUMENTED[name])] == DOCUMENTED[name] or set(DOCUMENTED[name]) <= set(header)
    body = [dict(zip(header, row)) for row in rows[1:] if row[0] != "Points Possible"]
    grade = {"canvas": header[-1], "moodle": "Grade", "blackboard": header[-1]}[name]
    ident = {"canvas": "ID", "moodle": "Identifier", "blackboard": "Username"}[name]
    ids = {"canvas": "{}", "moodle": "Participant {}", "blackboard": "{}"}[name]
    assert [row[ident] for row in body] == [ids.format(s) for s in ("10001", "10002", "10003")]
    assert [row[grade] for row in body] == ["7.5", "0", ""]  # no grade at all for what the grader failed on
    if name == "canvas":
        assert rows[1][0] == "Points Possible" and rows[1][-1] == "8" and body[0]["Student"] == "smith"
    if name == "moodle":
        assert body[0]["Maximum Grade"] == "8" and body[0]["Full name"] == "smith"
    if name == "blackboard":
        assert "[Total Pts: 8 Score]" in header[-1]
        assert path.read_text().splitlines()[1] == '"10001","7.5"'  # every value quoted, as Blackboard asks


# ---------------------------------------------------------------- small things the run relies on


def test_feedback_list_names_each_test_cell_by_its_exercise():
    from grader.grading.feedback_files import label, tidy

    assert label("triplet_loss_test_hidden") == "triplet_loss: hidden tests"
    assert label("who_is_it_test_visible") == "who_is_it: visible tests"
    page = ('<style type="text/css">\n/*!\n * Bootstrap v3 ' + "x" * 100_000 + '</style><div id="toc"><ol>'
            '<li><a href="#triplet_loss_test_hidden">Test cell</a> (Score: 1.5 / 4.0)</li>'
            '<li><a href="#triplet_loss_test_cases">Test cell</a> (Score: 2.0 / 2.0)</li></ol>')
    tidied = tidy(page)
    assert '<a href="#triplet_loss_test_hidden">triplet_loss: hidden tests</a> 1.5/4' in tidied
    assert "triplet_loss 3.5/6" in tidied and len(tidied) < 5000 and tidy(tidied) == tidied


def test_make_grade_quotes_the_submissions_path():
    done = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=/tmp/My Submissions/Week 5"], cwd=REPOSITORY,
                          capture_output=True, text=True, check=True)
    assert '-m grader.grade "/tmp/My Submissions/Week 5"' in done.stdout


def test_every_folder_the_grader_writes_is_ignored_by_git():
    from grader.grade import EXAMPLES_COURSE, default_out

    written = ["grader/gradebook.db", "grader/submitted/a/x", "grader/autograded/a/x", "grader/feedback/a/x",
               "grader/release/x", "grader/logs/a.log", "grader/grading-state/a.json", "grader/downloads/w/x",
               "grader/downloaded/Face_Recognition/archive/x.zip", "grader/examples/submissions/a/x",
               str(default_out(REPOSITORY / "week5.zip", GRADER).relative_to(REPOSITORY) / "grades.csv"),
               str(default_out(None, EXAMPLES_COURSE).relative_to(REPOSITORY) / "grades.csv")]
    done = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=REPOSITORY, capture_output=True,
                          text=True)
    assert sorted(done.stdout.split()) == sorted(written)


def test_nbgrader_config_documents_the_tested_patterns():
    text = (GRADER / "nbgrader_config.py").read_text()
    documented = re.findall(r'named_regexp = r"(.*)"', text)
    assert documented == [lms.RULES[name].stock_pattern for name in ("canvas", "moodle", "blackboard")]


@pytest.mark.parametrize("name", sorted(lms.RULES))
def test_stock_pattern_collects_the_example_name_in_nbgrader(name):
    from nbgrader.plugins.zipcollect import FileNameCollectorPlugin

    plugin = FileNameCollectorPlugin(named_regexp=lms.RULES[name].stock_pattern)
    path = f"/course/downloaded/Face_Recognition/extracted/sub/{lms.RULES[name].example}"
    info = plugin.collect(path)
    assert info["file_id"] == "Face_Recognition"
    assert info["student_id"] == lms.RULES[name].match(lms.RULES[name].example)["student_id"]


def test_closing_lines_count_kept_changed_and_unreadable_and_time_only_this_run():
    from grader.grade import GradedRun, closing
    from grader.grading.pipeline import StudentResult

    run = GradedRun([StudentResult("a", seconds=3.0), StudentResult("b", seconds=9.0, resumed=True),
                     StudentResult("c", seconds=4.0), StudentResult("d", status="unreadable", seconds=0.5)],
                    Path("/out"), origin={"a": "new", "b": "kept", "c": "changed", "d": "new"},
                    unreadable={"d": "a PDF document"})
    text = closing(run, 60.0)
    assert "4 student(s): 2 graded in this run; 1 kept from an earlier run; 1 unreadable" in text
    assert "0 not graded (1 changed since the last run)" in text
    assert "2 notebook(s) graded in 60 s: 3.5 s each on average, 2.0 per minute" in text


# ---------------------------------------------------------------- end to end

SUBMITTED = {  # student id in every LMS's names -> the example (or file) that student hands in
    "canvas": ("10004", "10003", "10001"), "moodle": ("204", "203", "201"), "blackboard": ("nguyen", "garcia", "smith")}


def lms_zip(name: str, examples: Path, into: Path) -> Path:
    """A download as `name` gives it: student 1 with two attempts (unanswered, then the solution),
    student 2's notebook in a sub-folder (alpha_forgotten), student 3 a PDF renamed .ipynb."""
    first, second, third = SUBMITTED[name]
    unanswered = (examples / "unanswered" / NOTEBOOK).read_bytes()
    solution = (examples / "solution" / NOTEBOOK).read_bytes()
    alpha = (examples / "alpha_forgotten" / NOTEBOOK).read_bytes()
    if name == "canvas":
        entries = [(f"nguyen_{first}_50004_Face_Recognition.ipynb", unanswered),
                   (f"nguyen_{first}_50004_Face_Recognition-1.ipynb", solution),
                   (f"late/garcia_LATE_{second}_50003_Face_Recognition.ipynb", alpha),
                   (f"smith_{third}_50001_Face_Recognition.ipynb", PDF)]
    elif name == "moodle":
        entries = [(f"Minh Nguyen_{first}_assignsubmission_file_/Face_Recognition.ipynb", unanswered),
                   (f"Minh Nguyen_{first}_assignsubmission_file_/v2/Face_Recognition.ipynb", solution),
                   (f"group b/Lea Garcia_{second}_assignsubmission_file_Face_Recognition.ipynb", alpha),
                   (f"Ana Smith_{third}_assignsubmission_file_Face_Recognition.ipynb", PDF)]
    else:
        stem = "Face Recognition_{}_attempt_{}"
        entries = [(stem.format(first, "2026-11-20-09-00-00") + "_Face_Recognition.ipynb", unanswered),
                   (stem.format(first, "2026-11-20-09-00-00") + ".txt", b"Name: Minh Nguyen"),
                   (stem.format(first, "2026-11-21-10-30-00") + "_Face_Recognition.ipynb", solution),
                   (stem.format(first, "2026-11-21-10-30-00") + ".txt", b"Name: Minh Nguyen"),
                   ("sub/" + stem.format(second, "2026-11-20-12-00-00") + "_Face_Recognition.ipynb", alpha),
                   (stem.format(third, "2026-11-20-12-00-00") + "_Face_Recognition.ipynb", PDF)]
    path = into / f"{name} week5.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        for index, (entry, data) in enumerate(entries):
            # Moodle's two files carry no attempt: the later zip time (the v2 upload) decides
            info = zipfile.ZipInfo(entry, date_time=(2026, 11, 20, 9, index, 0))
            bundle.writestr(info, data)
    return path


@pytest.fixture(scope="module")
def graded():
    """The three zips, each graded by grader.grade with --export of its own LMS (shared sandbox)."""
    import grading_support as support
    from grader.course.make_examples import write_examples

    folder = support.folder("lms")
    write_examples(folder / "examples")
    runs = {}
    for name in lms.RULES:
        archive = lms_zip(name, folder / "examples", folder)
        results, messages = support.grade(archive, None, folder / f"course-{name}", jobs=2, export=[name])
        runs[name] = (archive, results, messages)
    return folder, runs


@pytest.mark.parametrize("name", sorted(lms.RULES))
def test_an_lms_zip_is_graded_with_the_lms_ids_and_the_latest_attempt(graded, name):
    from grader.course.make_examples import EXAMPLES

    expected = {e.student: e.expected_total for e in EXAMPLES}
    folder, runs = graded
    archive, results, messages = runs[name]
    first, second, third = SUBMITTED[name]
    by_id = {r.student: r for r in results}
    assert sorted(by_id) == sorted(SUBMITTED[name])
    assert results.out == folder / f"course-{name}" / "results" / f"{name} week5"  # named after the zip
    assert messages[0].startswith(f"Results go to {results.out}")
    assert by_id[first].status == "graded" and by_id[first].score == pytest.approx(expected["solution"])
    assert "You handed in 2 files; the latest" in by_id[first].notes[0]
    assert by_id[second].status == "graded" and by_id[second].score == pytest.approx(expected["alpha_forgotten"])
    assert by_id[third].status == "unreadable" and by_id[third].score == 0
    assert "is a PDF document, not a Jupyter notebook" in by_id[third].notes[0]
    assert results.unreadable == {third: "a PDF document"}
    with open(results.out / "grades.csv", newline="") as handle:
        table = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert table[third]["status"] == "unreadable" and table[first]["status"] == "graded"
    feedback = (results.out / "feedback" / f"{second}.html").read_text()
    assert "triplet_loss: hidden tests" in feedback and "Bootstrap v3" not in feedback
    export = results.out / lms.EXPORT_FILES[name]
    with open(export, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert set(DOCUMENTED[name]) <= set(rows[0])
    ident = {"canvas": "{}", "moodle": "Participant {}", "blackboard": "{}"}[name]
    scores = {row[rows[0].index({"canvas": "ID", "moodle": "Identifier", "blackboard": "Username"}[name])]:
              row[rows[0].index("Grade") if name == "moodle" else -1] for row in rows[1:] if row[0] != "Points Possible"}
    assert scores == {ident.format(first): f"{expected['solution']:g}",
                      ident.format(second): f"{expected['alpha_forgotten']:g}", ident.format(third): "0"}


def test_a_second_run_keeps_what_is_unchanged_and_says_what_changed(graded):
    import grading_support as support
    from grader.grade import closing, summary

    folder, runs = graded
    archive = runs["canvas"][0]
    changed = folder / "canvas changed.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(changed, "w") as dest:
        for info in source.infolist():
            data = source.read(info)
            if "garcia" in info.filename:
                data = (folder / "examples" / "solution" / NOTEBOOK).read_bytes()  # garcia fixed the answer
            dest.writestr(info, data)
    results, messages = support.grade(changed, runs["canvas"][1].out, folder / "course-canvas", jobs=2)
    assert results.origin == {"10001": "kept", "10003": "changed", "10004": "kept"}
    assert any("2 kept from an earlier run" in m and "1 changed since the last run" in m and "10003" in m
               for m in messages)
    text = closing(results, 10.0)
    assert "1 graded in this run; 2 kept from an earlier run; 1 unreadable" in text
    assert "(1 changed since the last run)" in text and "1 notebook(s) graded in 10 s" in text
    assert "changed since the last run" in summary(results)


def stock_zip_collect(root: Path, archive: Path, lines: list[str], folder: Path) -> dict[str, bytes]:
    """`nbgrader zip_collect` of `archive` into a new course at `root`, with the course's
    nbgrader_config.py plus `lines` (as an instructor adds them); {student id: collected file}."""
    from grader.grading.pipeline import ASSIGNMENT, Course

    Course(root).release()
    archive_dir = root / "downloaded" / ASSIGNMENT / "archive"
    archive_dir.mkdir(parents=True)
    (archive_dir / archive.name).write_bytes(archive.read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        f"c = get_config()\nload_subconfig({str(GRADER / 'nbgrader_config.py')!r})\n" + "\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "nbgrader", "zip_collect", ASSIGNMENT, *stock_options(root)],
                          cwd=folder, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.parent.parent.name: p.read_bytes() for p in (root / "submitted").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")}


def stock_options(root: Path) -> list[str]:
    return [f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url=sqlite:///{root / 'gradebook.db'}"]


@pytest.mark.parametrize("name", sorted(lms.RULES))
def test_stock_zip_collect_with_each_documented_setting(graded, tmp_path, name):
    """Per LMS: the documented named_regexp collects a download with one notebook per student
    (the zip without the earlier attempt), and LatestAttemptCollector the whole zip, latest first."""
    folder, runs = graded
    first, second, third = SUBMITTED[name]
    archive = runs[name][0]
    examples = folder / "examples"
    expected = {first: (examples / "solution" / NOTEBOOK).read_bytes(),
                second: (examples / "alpha_forgotten" / NOTEBOOK).read_bytes(), third: PDF}
    single = tmp_path / f"{name} single.zip"
    unanswered = (examples / "unanswered" / NOTEBOOK).read_bytes()
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(single, "w") as dest:
        for info in source.infolist():
            if source.read(info) != unanswered:
                dest.writestr(info, source.read(info))
    pattern = f'c.FileNameCollectorPlugin.named_regexp = r"{lms.RULES[name].stock_pattern}"'
    assert stock_zip_collect(tmp_path / "regexp", single, [pattern], tmp_path / "a") == expected
    plugin = ['c.ZipCollectApp.collector_plugin = "grader.grading.lms.LatestAttemptCollector"',
              f'c.LatestAttemptCollector.lms = "{name}"']
    assert stock_zip_collect(tmp_path / "plugin", archive, plugin, tmp_path / "b") == expected


def test_the_stock_autograde_grades_the_collected_canvas_zip_without_a_traceback(graded, tmp_path):
    """nbgrader's own autograde after zip_collect of the Canvas zip: the PDF renamed .ipynb gets 0
    and a line naming it, not a traceback; the others get their examples' scores."""
    from grader.course.make_examples import EXAMPLES
    from grader.grading.pipeline import ASSIGNMENT, Course

    folder, runs = graded
    root = tmp_path / "course"
    plugin = ['c.ZipCollectApp.collector_plugin = "grader.grading.lms.LatestAttemptCollector"', 'c.LatestAttemptCollector.lms = "canvas"']
    submitted = stock_zip_collect(root, runs["canvas"][0], plugin, tmp_path / "config")
    assert sorted(submitted) == ["10001", "10003", "10004"]
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, *stock_options(root)],
                          cwd=GRADER, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
                          text=True, timeout=900)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    assert re.search(r"10001.*is unreadable \(a PDF document\)", output)
    expected = {e.student: e.expected_total for e in EXAMPLES}
    course = Course(root)
    totals = {student: sum(s for s, _ in course.scores(student).values()) for student in submitted}
    assert totals == pytest.approx({"10004": expected["solution"], "10003": expected["alpha_forgotten"], "10001": 0})
