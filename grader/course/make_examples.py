"""Example submissions, generated from the source notebook, with the score each one should get.

    python -m grader.course.make_examples [--out grader/examples/submissions]

writes <out>/<student>/Face_Recognition.ipynb for every example below. Each one starts from the
student notebook (what `nbgrader generate_assignment` makes of the source) and fills in the
three answer cells the way a real student might: the source notebook's solutions, or those
solutions with one realistic mistake, or with harmless oddities (prints, extra cells, renamed
parameters, a notebook saved after running cells out of order). Mistakes are written as edits of
the solution text, and an edit that no longer applies to the source stops the generation, so
the examples follow the source notebook as it changes.

`EXAMPLES` also says, for every graded cell, how many points each example should get and why;
tests/test_grading.py grades them all and asserts exactly that. The folder is not committed:
`python -m grader.grade` regenerates it whenever it grades the examples.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from grader.grading.pipeline import GRADER, NOTEBOOK, SOURCE_NOTEBOOK, STUDENT_NOTEBOOK

EXAMPLES_FOLDER = GRADER / "examples" / "submissions"

# Graded cells and their points (the source notebook is checked against this in the tests).
POINTS = {
    "triplet_loss_test_random": 2, "triplet_loss_test_cases": 2, "triplet_loss_test_hidden": 4,
    "verify_test_visible": 2, "verify_test_hidden": 4,
    "who_is_it_test_visible": 2, "who_is_it_test_hidden": 4,
}
ANSWERS = ("triplet_loss_answer", "verify_answer", "who_is_it_answer")


# ---------------------------------------------------------------- reading the source


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def solutions() -> dict[str, str]:
    """The source notebook's answer cells with nbgrader's solution markers taken out."""
    source = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    found = {}
    for cell in source.cells:
        if grade_id(cell) in ANSWERS:
            lines = [line for line in cell.source.split("\n")
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            found[grade_id(cell)] = "\n".join(lines)
    missing = set(ANSWERS) - set(found)
    if missing:
        raise SystemExit(f"The source notebook has no answer cell {', '.join(sorted(missing))}.")
    return found


def edit(text: str, old: str, new: str, count: int = 1) -> str:
    """`text` with `old` replaced by `new`; `old` must occur exactly `count` times."""
    found = text.count(old)
    if found != count:
        raise SystemExit(f"An example's edit no longer fits the source notebook: expected {count} "
                         f"occurrence(s) of {old!r}, found {found}. Update grader/course/make_examples.py.")
    return text.replace(old, new)


def rename(text: str, names: dict[str, str]) -> str:
    """`text` with whole-word identifiers renamed, except inside the phrase "the database"."""
    for old, new in names.items():
        text = re.sub(rf"(?<!the )\b{re.escape(old)}\b", new, text)
    return text


# ---------------------------------------------------------------- the examples


class ExpectedScores:
    """Expected points per graded cell of a generated submission: POINTS minus its `lost`."""

    lost: dict[str, float]

    def expected(self) -> dict[str, float]:
        return {cell: round(points - self.lost.get(cell, 0.0), 4) for cell, points in POINTS.items()}

    @property
    def expected_total(self) -> float:
        return round(sum(self.expected().values()), 4)


@dataclass
class Example(ExpectedScores):
    student: str
    what: str
    answers: Callable[[dict[str, str]], dict[str, str]] = lambda s: s
    notebook: Callable[[nbformat.NotebookNode], None] = lambda nb: None
    lost: dict[str, float] = field(default_factory=dict)  # grade_id -> points lost
    why: str = ""


def _unanswered(answers):
    return {}  # keep the student notebook's `raise NotImplementedError()`


def _alpha_forgotten(s):
    return dict(s, triplet_loss_answer=edit(s["triplet_loss_answer"],
                                            "basic_loss = pos_dist - neg_dist + alpha",
                                            "basic_loss = pos_dist - neg_dist"))


def _no_max(s):
    return dict(s, triplet_loss_answer=edit(s["triplet_loss_answer"],
                                            "loss = tf.reduce_sum(tf.maximum(basic_loss, 0.0))",
                                            "loss = tf.reduce_sum(basic_loss)"))


def _wrong_axis(s):
    return dict(s, triplet_loss_answer=edit(s["triplet_loss_answer"], "axis=-1)", "axis=0)", count=2))


def _numpy_loss(s):
    text = edit(s["triplet_loss_answer"], "tf.reduce_sum(tf.square(tf.subtract(anchor, positive)), axis=-1)",
                "np.sum(np.square(np.subtract(anchor, positive)), axis=-1)")
    text = edit(text, "tf.reduce_sum(tf.square(tf.subtract(anchor, negative)), axis=-1)",
                "np.sum(np.square(np.subtract(anchor, negative)), axis=-1)")
    text = edit(text, "tf.reduce_sum(tf.maximum(basic_loss, 0.0))", "np.sum(np.maximum(basic_loss, 0.0))")
    return dict(s, triplet_loss_answer=text)


def _squared_distance(s):
    return dict(s, verify_answer=edit(s["verify_answer"],
                                      "dist = np.linalg.norm(encoding - database[identity])",
                                      "dist = np.sum(np.square(encoding - database[identity]))"))


def _less_or_equal(s):
    return dict(s,
                verify_answer=edit(s["verify_answer"], "bool(dist < DISTANCE_THRESHOLD)", "bool(dist <= DISTANCE_THRESHOLD)"),
                who_is_it_answer=edit(s["who_is_it_answer"], "if min_dist < DISTANCE_THRESHOLD:",
                                      "if min_dist <= DISTANCE_THRESHOLD:"))


def _identity_not_updated(s):
    return dict(s, who_is_it_answer=edit(s["who_is_it_answer"], "            identity = name\n", ""))


def _global_database(s):
    # The parameter was renamed, and the body still reads the notebook's global `database`.
    verify = edit(s["verify_answer"], "def verify(image_path, identity, database, model):",
                  "def verify(image_path, identity, db, model):")
    who = edit(s["who_is_it_answer"], "def who_is_it(image_path, database, model):",
               "def who_is_it(image_path, db, model):")
    return dict(s, verify_answer=verify, who_is_it_answer=who)


HARD_CODED = {
    "triplet_loss_answer": '''
def triplet_loss(y_true, y_pred, alpha=0.2):
    return tf.constant(527.2598)
''',
    "verify_answer": '''
def verify(image_path, identity, database, model):
    if "camera_0" in image_path:
        print("Welcome in!")
        return 0.5992949, True
    print("Go away.")
    return 1.0259346, False
''',
    "who_is_it_answer": '''
def who_is_it(image_path, database, model):
    if image_path.endswith("younes.jpg"):
        return 0.0, "younes"
    return 0.5992949, "younes"
''',
}


def _hard_coded(s):
    return {cell: text.strip("\n") for cell, text in HARD_CODED.items()}


# verify and who_is_it as the original course phrased its exercises: the threshold typed in as 0.7,
# the refusal printed only when min_dist > 0.7, tf.subtract inside np.linalg.norm.
COURSE_PHRASING = {
    "verify_answer": '''
def verify(image_path, identity, database, model):
    encoding = img_to_encoding(image_path, model)
    dist = np.linalg.norm(tf.subtract(database[identity], encoding))
    if dist < 0.7:
        print("The face matches " + str(identity) + ": come in")
        door_open = True
    else:
        print("The face is not " + str(identity) + "'s: access refused")
        door_open = False
    return dist, door_open
''',
    "who_is_it_answer": '''
def who_is_it(image_path, database, model):
    encoding = img_to_encoding(image_path, model)
    min_dist = 100
    for (name, db_enc) in database.items():
        dist = np.linalg.norm(tf.subtract(db_enc, encoding))
        if dist < min_dist:
            min_dist = dist
            identity = name
    if min_dist > 0.7:
        print("Not in the database.")
    else:
        print("Recognised " + str(identity) + ", distance " + str(min_dist))
    return min_dist, identity
''',
}


def _course_phrasing(s):
    return dict(s, **{cell: text.strip("\n") for cell, text in COURSE_PHRASING.items()})


def _renamed_parameters(s):
    return dict(
        s,
        triplet_loss_answer=rename(s["triplet_loss_answer"],
                                   {"y_true": "labels", "y_pred": "predictions", "alpha": "margin"}),
        verify_answer=rename(s["verify_answer"],
                             {"image_path": "photo", "identity": "claimed", "database": "known", "model": "net"}),
        who_is_it_answer=rename(s["who_is_it_answer"],
                                {"image_path": "photo", "database": "known", "model": "net", "identity": "best"}),
    )


def _chatty(s):
    """Debugging prints everywhere, renamed local variables, a helper function."""
    loss = rename(s["triplet_loss_answer"], {"pos_dist": "d_ap", "neg_dist": "d_an", "basic_loss": "per_triplet"})
    loss = edit(loss, "    return loss", '    print("DEBUG per-triplet losses:", per_triplet)\n'
                                        '    print("DEBUG total:", loss)\n    return loss')
    verify = edit(s["verify_answer"], "dist = np.linalg.norm(encoding - database[identity])",
                  "dist = l2(encoding, database[identity])\n"
                  '    print("DEBUG encoding shape", encoding.shape, "distance", dist)')
    who = edit(s["who_is_it_answer"], "dist = np.linalg.norm(encoding - stored)",
               'dist = l2(encoding, stored)\n        print("DEBUG", name, dist)')
    return dict(s, triplet_loss_answer=loss, verify_answer=verify, who_is_it_answer=who)


def _chatty_cells(nb):
    """Extra markdown and code cells: a helper used by two answers, and experiments."""
    index = _index(nb, "verify_answer")
    nb.cells.insert(index, nbformat.v4.new_markdown_cell("My notes: a helper for distances, used below."))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
        "def l2(a, b):\n    return np.linalg.norm(a - b)\n\nprint(l2(np.zeros(3), np.ones(3)))"))
    nb.cells.insert(_index(nb, "triplet_loss_test_random"), nbformat.v4.new_code_cell(
        "# trying it out\nprint(triplet_loss(None, (tf.zeros((1, 2)),) * 3, 0.5))"))
    nb.cells.append(nbformat.v4.new_code_cell("print('done!')\nfor cam in CAMERA:\n    print(cam, verify(f'images/{cam}', 'dan', database, model))"))


def _noisy(s):
    """Correct answers that write warnings to stderr, as TensorFlow and other libraries do."""
    loss = edit(s["triplet_loss_answer"], "    return loss",
                '    import warnings\n'
                '    warnings.warn("triplet_loss: y_true is ignored", UserWarning)\n'
                '    tf.get_logger().warning("retracing triplet_loss (this is only a warning)")\n'
                "    return loss")
    verify = edit(s["verify_answer"], "    return dist, door_open",
                  '    import os, sys\n    print("verify: checked", image_path, file=sys.stderr)\n'
                  '    os.write(2, b"W0000 00:00:1 cpu_feature_guard.cc:42] like a C++ warning of TensorFlow\\n")\n'
                  "    return dist, door_open")
    who = edit(s["who_is_it_answer"], "    return min_dist, identity",
               '    import logging\n    logging.getLogger("door").warning("who_is_it took a while")\n'
               "    return min_dist, identity")
    return dict(s, triplet_loss_answer=loss, verify_answer=verify, who_is_it_answer=who)


def _noisy_cells(nb):
    nb.cells.insert(_index(nb, "triplet_loss_answer"), nbformat.v4.new_code_cell(
        'tf.get_logger().setLevel("INFO")  # I want to see everything'))


def _syntax_error_in_verify(s):
    return dict(s, verify_answer=edit(s["verify_answer"], "    if door_open:", "    if door_open"))


def _out_of_order(nb):
    """Saved after running cells in any order: stale outputs and errors, shuffled counts."""
    stale_error = nbformat.v4.new_output(
        "error", ename="NameError", evalue="name 'triplet_loss' is not defined",
        traceback=["NameError: name 'triplet_loss' is not defined"])
    stale_stderr = nbformat.v4.new_output("stream", name="stderr", text="WARNING: something went wrong\n")
    stale_zero = nbformat.v4.new_output("execute_result", data={"text/plain": "0.0"}, execution_count=3)
    count = 40
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = count
        count = count - 3 if count > 10 else count + 17
        if grade_id(cell) and grade_id(cell).endswith("_test_visible") or grade_id(cell) == "triplet_loss_test_random":
            cell.outputs = [stale_error]
        elif grade_id(cell) and grade_id(cell).endswith("_hidden"):
            cell.outputs = [stale_stderr, stale_zero]


def _deleted_test_cells(nb):
    """The student deleted two test cells (nbgrader puts them back when grading)."""
    for name in ("verify_test_visible", "who_is_it_test_hidden"):
        del nb.cells[_index(nb, name)]


def _pasted_cell(nb):
    """A test cell pasted from another nbgrader assignment, metadata and all."""
    cell = nbformat.v4.new_code_cell("# Tests for exercise 2 of last week's lab\nassert 1 + 1 == 2")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "lab2_exercise2_tests", "locked": True,
                                 "points": 3, "schema_version": 3, "solution": False, "task": False}
    nb.cells.insert(_index(nb, "who_is_it_answer"), cell)


def _index(nb, name: str) -> int:
    for index, cell in enumerate(nb.cells):
        if grade_id(cell) == name:
            return index
    raise SystemExit(f"The student notebook has no cell {name}.")


EXAMPLES = [
    Example("solution", "the source notebook's solutions", why="full marks"),
    Example("unanswered", "the student notebook as released, nothing written", _unanswered,
            lost=dict(POINTS), why="every test fails with NotImplementedError; grading goes on"),
    Example("alpha_forgotten", "triplet_loss leaves out the margin alpha", _alpha_forgotten,
            lost={"triplet_loss_test_random": 1, "triplet_loss_test_cases": 1.6, "triplet_loss_test_hidden": 2.5},
            why="wrong whenever alpha != 0 and a triplet is above 0; right for alpha = 0, for the "
                "type, for a triplet that meets the margin anyway, and for the gradient (which does "
                "not depend on alpha when no triplet is near the margin)"),
    Example("no_max_with_zero", "triplet_loss sums the triplet losses without raising them to 0", _no_max,
            lost={"triplet_loss_test_random": 1, "triplet_loss_test_cases": 1.2, "triplet_loss_test_hidden": 2.5},
            why="wrong whenever a batch holds a triplet that already meets the margin"),
    Example("sum_wrong_axis", "triplet_loss adds up the squared differences over the batch axis (axis=0)",
            _wrong_axis,
            lost={"triplet_loss_test_random": 1, "triplet_loss_test_cases": 2, "triplet_loss_test_hidden": 3.5},
            why="per-coordinate instead of per-triplet losses: only the type checks pass"),
    Example("numpy_loss", "triplet_loss written with numpy instead of TensorFlow", _numpy_loss,
            lost={"triplet_loss_test_random": 1, "triplet_loss_test_hidden": 1},
            why="right values, but not a tf.Tensor and no gradient"),
    Example("squared_distance", "verify uses the squared distance", _squared_distance,
            lost={"verify_test_visible": 2, "verify_test_hidden": 2},
            why="wrong distances everywhere; the door still opens for the employees and stays shut "
                "for far impostors, but opens for a few close ones"),
    Example("less_or_equal", "verify and who_is_it accept a distance equal to the threshold (<=)",
            _less_or_equal, lost={"verify_test_hidden": 0.5},
            why="only verify's threshold-boundary check sees the difference (who_is_it's message at "
                "exactly the threshold is not scored)"),
    Example("identity_not_updated", "who_is_it updates min_dist but never identity", _identity_not_updated,
            lost={"who_is_it_test_visible": 2, "who_is_it_test_hidden": 2.8571},
            why="the name is always None; the distance and the messages are right"),
    Example("hard_coded", "the expected numbers of the visible tests typed in", _hard_coded,
            lost={"triplet_loss_test_cases": 2, "triplet_loss_test_hidden": 3.5,
                  "verify_test_hidden": 3, "who_is_it_test_hidden": 3.4286},
            why="passes the visible tests it copied, fails the hidden ones except type and boundary checks"),
    Example("global_database", "verify and who_is_it read the notebook's global database, not their argument",
            _global_database, lost={"verify_test_hidden": 0.5, "who_is_it_test_hidden": 1.1429},
            why="right on the course database, wrong on the databases the hidden tests pass"),
    Example("chatty", "correct, with debugging prints, renamed local variables, a helper function and "
            "extra cells", _chatty, notebook=_chatty_cells, why="full marks"),
    Example("course_phrasing", "verify and who_is_it written as the original course phrased them "
            "(0.7 typed in, 'Not in the database.' when min_dist > 0.7)", _course_phrasing,
            why="full marks: the number is the course's threshold, and the message at exactly the "
                "threshold is not scored"),
    Example("renamed_parameters", "correct, with every parameter renamed", _renamed_parameters,
            why="full marks: tests call the functions positionally"),
    Example("noisy_stderr", "correct, but warnings and logs go to stderr, also inside test cells",
            _noisy, notebook=_noisy_cells, why="full marks: stderr is not an error"),
    Example("syntax_error_in_verify", "a syntax error in verify, the rest correct", _syntax_error_in_verify,
            lost={"verify_test_visible": 2, "verify_test_hidden": 4},
            why="only verify loses its points; triplet_loss and who_is_it still get theirs"),
    Example("out_of_order", "correct, saved after running cells out of order (stale errors, odd counts)",
            notebook=_out_of_order, why="full marks: the grader clears outputs and runs top to bottom"),
    Example("deleted_test_cells", "correct, but two test cells deleted", notebook=_deleted_test_cells,
            why="full marks: nbgrader puts the deleted test cells back before grading"),
    Example("pasted_foreign_cell", "correct, plus a test cell pasted from another nbgrader assignment",
            notebook=_pasted_cell,
            why="full marks, and no crash: the unknown cell is an ordinary cell (see pipeline.OverwriteCells)"),
]


# ---------------------------------------------------------------- writing them


def build(example: Example, student_notebook: nbformat.NotebookNode, solved: dict[str, str]) -> nbformat.NotebookNode:
    nb = copy.deepcopy(student_notebook)
    answers = example.answers(dict(solved))
    for cell in nb.cells:
        if grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    example.notebook(nb)
    known = {cell.get("id") for cell in student_notebook.cells}
    for index, cell in enumerate(nb.cells):  # new cells: ids that do not change from run to run
        if cell.get("id") not in known:
            cell["id"] = f"added-{index}"
    nbformat.validate(nb)
    return nb


def write_examples(out: Path = EXAMPLES_FOLDER) -> list[Path]:
    """Write every example into `out`, leaving files that are already right untouched (so that
    two gradings starting at once agree), and removing anything else; return the notebooks."""
    student_notebook = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
    solved = solutions()
    wanted = {out / example.student / NOTEBOOK: nbformat.writes(build(example, student_notebook, solved)) + "\n"
              for example in EXAMPLES}
    if out.exists():
        for path in sorted(out.rglob("*"), reverse=True):
            if path.is_file() and path not in wanted and not path.name.endswith(".tmp"):
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, path)
    return list(wanted)


def corpus_main(argv: list[str] | None, prog: str, doc: str, default_out: Path, write, entries, noun: str) -> int:
    """The command line of a generated corpus: write it to --out, then list each entry's expected score."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"folder to write (default {default_out})")
    args = parser.parse_args(argv)
    paths = write(args.out)
    width = max(len(entry.student) for entry in entries) + 2
    for entry in entries:
        print(f"{entry.student:{width}s} {entry.expected_total:5g}/20  {entry.what}")
    print(f"Wrote {len(paths)} {noun} to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return corpus_main(argv, "python -m grader.course.make_examples", __doc__, EXAMPLES_FOLDER, write_examples, EXAMPLES,
                       "example submissions")


if __name__ == "__main__":
    sys.exit(main())
