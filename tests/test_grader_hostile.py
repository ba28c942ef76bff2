"""The hostile and broken submissions of grader/course/hostile.py, graded in one batch with ordinary ones.

One grading run (two jobs, the tests' 20 s limit per cell) serves every test: each entry's score
per graded cell and the reason its feedback gives, the ordinary submissions of the same batch
unaffected, the gradebook consistent, the course files untouched, nothing left running.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

import grading_support as support
from grader.course.hostile import HOSTILE, write_corpus
from grader.course.make_examples import EXAMPLES, POINTS, write_examples
from grader.grading.pipeline import ASSIGNMENT, REPOSITORY, Course

# Ordinary submissions graded in the same batch (the corpus's never_ran is the solution itself).
CONTROLS = {example.student: example for example in EXAMPLES if example.student in ("unanswered", "alpha_forgotten")}
# What a submission must never be able to change.
PROTECTED = [REPOSITORY / "images", REPOSITORY / "keras-facenet-h5", REPOSITORY / "fr_checks.py",
             REPOSITORY / "fr_utils.py", REPOSITORY / "facerec", REPOSITORY / "grader"]
# Generated folders inside those, which other tests write meanwhile (`make test` runs two files at
# once): tests/test_grading.py regenerates grader/examples/. Kernels cannot reach them either.
GENERATED = {"__pycache__", "examples", ".work", "results"}
# Text that exists only in the hidden tests and the reference answers.
HIDDEN_TEXT = ("STRANGERS_TO_BENOIT", "CAMERA_IMPOSTOR", "reference.verify", "def _verify_checks",
               "triplet_loss_gradient(", "SEED = 20260611")


def fingerprint(paths) -> dict[str, str]:
    digest = {}
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and not GENERATED & set(p.parts))
        for path in files:
            digest[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


@pytest.fixture(scope="module")
def batch():
    root = support.folder("hostile")
    submissions = root / "submissions"
    write_corpus(submissions)
    examples = root / "examples"
    write_examples(examples)
    for student in CONTROLS:
        shutil.copytree(examples / student, submissions / student)
    before = fingerprint(PROTECTED)
    results, messages = support.grade(submissions, root / "out", root / "course", jobs=2)
    yield {"results": {r.student: r for r in results}, "messages": messages, "root": root,
           "course": Course(root / "course"), "before": before}


@pytest.fixture(scope="module")
def feedback(batch):
    out = batch["root"] / "out" / "feedback"
    return {p.stem: p.read_text(encoding="utf-8") for p in out.glob("*.html")}


def test_every_submission_of_the_batch_is_graded(batch):
    results = batch["results"]
    assert set(results) == {h.student for h in HOSTILE} | set(CONTROLS)
    assert len(HOSTILE) >= 48  # 33, and 15 for the five holes of issue #16
    failed = {s: r.status for s, r in results.items() if r.status not in ("graded", "unreadable")}
    assert not failed, failed
    # files that are not notebooks are graded as the released notebook, under their own status
    assert {s for s, r in results.items() if r.status == "unreadable"} == {"truncated_file", "not_json"}


@pytest.mark.parametrize("entry", HOSTILE, ids=[h.student for h in HOSTILE])
def test_each_hostile_submission_gets_its_expected_score(entry, batch):
    cells = batch["course"].scores(entry.student)
    got = {cell: score for cell, (score, _) in cells.items()}
    assert got == pytest.approx(entry.expected()), f"{entry.student}: {entry.why}\n{batch['results'][entry.student].notes}"
    assert {cell: maximum for cell, (_, maximum) in cells.items()} == POINTS


@pytest.mark.parametrize("entry", HOSTILE, ids=[h.student for h in HOSTILE])
def test_each_feedback_gives_the_reason(entry, feedback):
    assert entry.reason, f"{entry.student} has no reason to look for in its feedback"
    assert entry.reason in feedback[entry.student], f"{entry.student}'s feedback does not say {entry.reason!r}"


def test_ordinary_submissions_in_the_same_batch_are_unaffected(batch):
    for student, example in CONTROLS.items():
        got = {cell: score for cell, (score, _) in batch["course"].scores(student).items()}
        assert got == pytest.approx(example.expected()), student
        assert not batch["results"][student].notes, (student, batch["results"][student].notes)


def test_the_gradebook_is_consistent(batch):
    from nbgrader.api import Gradebook

    course = batch["course"]
    with Gradebook(course.db_url, course.coursedir.course_id) as gradebook:
        students = {s.id for s in gradebook.students}
        assert students == set(batch["results"])
        submissions = gradebook.assignment_submissions(ASSIGNMENT)
        assert sorted(s.student.id for s in submissions) == sorted(students)  # one each, none twice
        for submission in submissions:
            notebook = submission.notebooks[0]
            assert {g.name: g.max_score for g in notebook.grades} == POINTS
            assert all(g.auto_score is not None and 0 <= g.auto_score <= g.max_score for g in notebook.grades)
            assert submission.score == pytest.approx(batch["results"][submission.student.id].score)
        assert {c.name for c in gradebook.find_assignment(ASSIGNMENT).notebooks[0].grade_cells} == set(POINTS)


def test_the_course_files_and_the_grader_are_untouched(batch):
    assert fingerprint(PROTECTED) == batch["before"]


def test_no_hidden_test_reaches_any_feedback_or_graded_notebook(batch, feedback):
    graded = batch["root"] / "course" / "autograded"
    texts = dict(feedback)
    texts.update({f"{p.parent.parent.name} (graded notebook)": p.read_text(encoding="utf-8")
                  for p in graded.glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")})
    for name, text in texts.items():
        for secret in HIDDEN_TEXT:
            assert secret not in text, f"{name} shows {secret!r}"
    snoop = printed_by(batch, "snoop_hidden_tests")
    assert "cannot import grader.course.hidden" in snoop and "IMPORTED grader.course.hidden" not in snoop
    assert "found: []" in snoop and "READ /" not in snoop


def printed_by(batch, student: str) -> str:
    """What the corpus entry's own added cell printed while graded."""
    import nbformat

    path = batch["root"] / "course" / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cell = next(c for c in nbformat.read(path, as_version=4).cells if c.get("id") == "hostile-cell")
    return "".join(o.get("text", "") for o in cell.outputs)


def test_the_sandbox_has_no_network_and_a_read_only_course(batch):
    network = printed_by(batch, "network")
    assert "interfaces: ['lo']" in network and "NETWORK REACHED" not in network
    assert network.count("no network to") == 4
    vandal = printed_by(batch, "vandal")
    assert "DELETED" not in vandal and "OVERWROTE" not in vandal and vandal.count("could not") == 10


def test_a_time_limit_stops_one_cell_and_the_notebook_goes_on(batch):
    result = batch["results"]["infinite_loop_in_verify"]
    assert any("ran for more than" in note for note in result.notes)
    assert not any("process stopped" in note for note in result.notes)  # interrupted, not killed
    assert result.seconds < 2 * support.CELL_TIMEOUT + 60


def test_nothing_the_submissions_started_is_left_running(batch):
    """Forked children, sleeping loops: all end with their sandbox."""
    from grader.sandbox.zygote import UID_BASE

    marker = support.zygote().folder.name.encode()

    def leftovers():
        found = []
        for entry in Path("/proc").iterdir():
            try:
                status = (entry / "status").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
            if marker in command and uid >= UID_BASE:
                found.append(entry.name)
        return found

    assert support.wait_for(lambda: not leftovers(), 10), leftovers()


def test_the_batch_printed_progress_and_the_sandbox(batch):
    messages = batch["messages"]
    assert any(m.startswith(f"[{len(batch['results'])}/{len(batch['results'])}]") for m in messages)
    assert any("with 2 job(s)" in m for m in messages)
    assert os.path.exists(batch["root"] / "out" / "grades.csv")


# ---------------------------------------------------------------- issue #16: the five holes


def graded_notebook(batch, student: str):
    import nbformat

    return nbformat.read(batch["root"] / "course" / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                         as_version=4)


def test_the_kernel_allocates_no_disk_outside_its_own_tmpfs(batch):
    from grader.sandbox.execute import KERNEL_LOG_BYTES

    fallocate = printed_by(batch, "fallocate_log")
    assert fallocate.count("fallocate on fd") == 2 and "ALLOCATED" not in fallocate
    tmp = printed_by(batch, "fallocate_tmp")
    assert "fallocate in /tmp -> -1" in tmp and "posix_fallocate refused" in tmp and "A RING" not in tmp
    assert "wrote 128 MB below Python" in printed_by(batch, "c_level_flood")
    for log in (batch["root"] / "course" / "logs").glob("*.log"):  # nbgrader's own lines come on top
        assert log.stat().st_size <= KERNEL_LOG_BYTES + (1 << 20), log.name
        assert log.stat().st_blocks * 512 <= KERNEL_LOG_BYTES + (2 << 20), f"{log.name} holds hidden disk space"


def test_replaced_names_are_reported_but_bounded(batch):
    from grader.sandbox.execute import MAX_TAMPERED_NAMES

    for student in ("checks_attributes", "million_names", "forged_reply_flood"):
        [note] = [n for n in batch["results"][student].notes if "replaced parts of the libraries" in n]
        shown, more = note.split("(", 1)[1].split(" and ")[0], int(note.split(" and ")[1].split()[0].replace(",", ""))
        assert shown.count(",") == 11 and more >= 100_000 - MAX_TAMPERED_NAMES, (student, note[:300])
    [cell] = [c for c in graded_notebook(batch, "forged_reply_flood").cells
              if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "who_is_it_answer"]
    assert 0 < len(cell.outputs) <= 1001  # the forged 200,000 outputs, capped


def test_forged_hidden_answers_are_reported(batch):
    for student, name in (("forge_transport", "grader.sandbox.callee.call"), ("forge_code_in_place", "grader.sandbox.wire.encode_result"),
                          ("forge_gradient_tape", "tensorflow.is_tensor")):
        assert any(name in note for note in batch["results"][student].notes), (student, batch["results"][student].notes)


class _ActiveHTML(__import__("html.parser").parser.HTMLParser):
    """Finds students' markers (PWNED) anywhere a browser would act on them."""

    ACTIVE_TAGS = {"script", "iframe", "form", "object", "embed", "style", "svg", "input"}

    def __init__(self):
        super().__init__()
        self.found, self.inside, self.items = [], [], []  # items: the text of each list item
        self.in_item = 0

    def handle_starttag(self, tag, attrs):
        if tag == "li":
            self.items.append("")
            self.in_item += 1
        for name, value in attrs:
            value = value or ""
            if "PWNED" in value and (name.startswith("on") or tag in self.ACTIVE_TAGS
                                     or value.strip().lower().startswith("javascript:")):
                self.found.append(f"<{tag} {name}={value[:60]}>")
        if tag in self.ACTIVE_TAGS:
            self.inside.append(tag)
            if tag != "script" and tag != "style":
                self.found += [f"<{tag}> {attrs}"] if any("PWNED" in (v or "") for _, v in attrs) else []

    def handle_endtag(self, tag):
        self.in_item -= tag == "li" and self.in_item > 0
        if self.inside and self.inside[-1] == tag:
            self.inside.pop()

    def handle_data(self, data):
        if self.in_item:
            self.items[-1] += data
        if self.inside and "PWNED" in data:
            self.found.append(f"inside <{self.inside[-1]}>: {data[:60]}")


def test_feedback_is_inert_and_still_shows_text_and_plots(batch, feedback):
    for student, text in feedback.items():
        parser = _ActiveHTML()
        parser.feed(text)
        assert not parser.found, (student, parser.found[:5])
        assert not [item for item in parser.items if "full marks approved" in item], student  # no bullet of its own
    assert "full marks approved" not in (batch["root"] / "out" / "grades.csv").read_text()
    assert not any("full marks approved" in note for note in batch["results"]["note_injection"].notes)
    html = feedback["html_outputs"]
    assert "bold is fine" in html and "data:image/png;base64," in html
    assert "with emphasis" in feedback["markdown_cell"] and "<h2" in feedback["markdown_cell"]
    for student in ("html_outputs", "markdown_outputs"):
        for cell in graded_notebook(batch, student).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                assert not {"application/javascript", "image/svg+xml"} & set(data), (student, list(data))
                assert "<script" not in data.get("text/html", "") + data.get("text/markdown", ""), student


def test_a_notebooks_total_output_is_capped(batch, feedback):
    from grader.sandbox.execute import NOTEBOOK_OUTPUT_BYTES

    for student in ("output_30_cells", "html_flood"):
        path = batch["root"] / "course" / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert path.stat().st_size < NOTEBOOK_OUTPUT_BYTES + (4 << 20), student
        assert len(feedback[student]) < 2 * NOTEBOOK_OUTPUT_BYTES, student
    assert any("outputs passed" in note for note in batch["results"]["output_30_cells"].notes)
