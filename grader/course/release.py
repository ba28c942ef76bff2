"""Write the student notebook, Face_Recognition.ipynb at the top of the repository, from the source.

    python -m grader.course.release           # regenerate it
    python -m grader.course.release --check   # exit 1 (saying so) if the committed one is out of date

The student version is exactly what `nbgrader generate_assignment` makes of
grader/source/Face_Recognition/Face_Recognition.ipynb: solutions replaced by
`raise NotImplementedError()`, hidden tests removed, outputs cleared, checksums recorded. It is
generated in a temporary course, so grader/gradebook.db is not touched.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

from grader.grading.pipeline import STUDENT_NOTEBOOK, Course


def generate_student_notebook() -> str:
    """The student version of the source notebook, as the text of an .ipynb file."""
    with tempfile.TemporaryDirectory(prefix="fr-release-") as folder:
        released = Course(Path(folder) / "course").release()
        return canonical(released.read_text(encoding="utf-8"))


def canonical(text: str) -> str:
    """A notebook's text as nbformat writes it (so that formatting alone never differs)."""
    return nbformat.writes(nbformat.reads(text, as_version=4)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.course.release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the committed student notebook is up to date")
    args = parser.parse_args(argv)
    wanted = generate_student_notebook()
    current = STUDENT_NOTEBOOK.read_text(encoding="utf-8") if STUDENT_NOTEBOOK.exists() else None
    if args.check:
        if current != wanted:
            print(f"{STUDENT_NOTEBOOK.name} is not what grader/source generates now. "
                  "Run `.venv/bin/python -m grader.course.release` and commit the result.", file=sys.stderr)
            return 1
        print(f"{STUDENT_NOTEBOOK.name} is up to date.")
        return 0
    if current == wanted:
        print(f"{STUDENT_NOTEBOOK.name} was already up to date.")
    else:
        STUDENT_NOTEBOOK.write_text(wanted, encoding="utf-8")
        print(f"Wrote {STUDENT_NOTEBOOK}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
