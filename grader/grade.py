"""Grade a folder of submitted notebooks: grades.csv, one HTML feedback file per student, a summary.

    python -m grader.grade [SUBMISSIONS] [--out DIR] [--course DIR]

SUBMISSIONS  a folder with one sub-folder per student holding Face_Recognition.ipynb (or one
             <student>.ipynb per student); default: the example submissions, regenerated from
             the source notebook first (grader/examples/submissions)
--out DIR    where to write grades.csv and feedback/<student>.html (default: the current folder)
--course DIR the nbgrader course folder holding the gradebook and nbgrader's working folders
             (default: grader/, the course itself, whose gradebook is grader/gradebook.db; for
             the example submissions grader/.work/examples/, to keep them out of a real class)

Every submission runs in a fresh kernel, in its own folder, exactly as `nbgrader autograde`
would run it with grader/nbgrader_config.py. A submission that cannot be graded at all (not a
notebook, say) is listed with the reason and 0 points; the others are graded anyway. The exit
status is 0 when every submission was graded, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.pipeline import EXERCISES, GRADER, Course, GradingError, StudentResult  # noqa: E402

# The course folder used for the example submissions, so that they never mix with a real class.
EXAMPLES_COURSE = GRADER / ".work" / "examples"


def grade(submissions: Path | None, out: Path, course_dir: Path | None = None,
          progress=print) -> list[StudentResult]:
    """Run the whole pipeline; return one result per student, in the order of their ids."""
    if submissions is None:
        from grader.make_examples import EXAMPLES_FOLDER, write_examples

        write_examples(EXAMPLES_FOLDER)
        submissions = EXAMPLES_FOLDER
        progress(f"Example submissions regenerated from the source notebook in {submissions}")
        if course_dir is None:  # keep the examples out of the real class's gradebook
            course_dir = EXAMPLES_COURSE
    course = Course(course_dir)
    course.release()
    students = course.collect(submissions)
    progress(f"Grading {len(students)} submission(s) from {submissions} (course folder {course.root})")
    results = []
    for number, student in enumerate(students, 1):
        result = course.autograde(student)
        if result.graded:
            try:
                result.feedback = course.feedback(student)
            except GradingError as error:
                result.status = f"graded; no feedback: {str(error).splitlines()[0]}"
        progress(f"[{number}/{len(students)}] {student}: {result.score:g}/{result.max_score:g} "
                 f"in {result.seconds:.1f} s" + ("" if result.graded else f" ({result.status})"))
        results.append(result)
    Course.export(results, out)
    return results


def summary(results: list[StudentResult]) -> str:
    """The results as a plain-text table."""
    maxima = next((r for r in results if r.cells), None)
    headers = ["student", *(f"{e} /{maxima.exercise(e)[1]:g}" if maxima else e for e in EXERCISES),
               f"total /{maxima.max_score:g}" if maxima else "total", "seconds", "status"]
    rows = [[r.student, *(f"{r.exercise(e)[0]:g}" for e in EXERCISES), f"{r.score:g}",
             f"{r.seconds:.1f}", r.status] for r in results]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = lambda row: "  ".join(str(v).ljust(w) if i in (0, len(row) - 1) else str(v).rjust(w)
                                 for i, (v, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.grade",
        description="Grade a folder of submitted Face_Recognition notebooks with nbgrader.",
        epilog="Writes DIR/grades.csv and DIR/feedback/<student>.html and prints a summary table.")
    parser.add_argument("submissions", nargs="?", type=Path,
                        help="folder of submissions (default: the example submissions)")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")
    parser.add_argument("--course", type=Path, default=None,
                        help="nbgrader course folder for the gradebook and working files (default: "
                             "grader/, or grader/.work/examples/ for the example submissions)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        results = grade(args.submissions, args.out, args.course)
    except GradingError as error:
        print(f"grading stopped: {error}", file=sys.stderr)
        return 2
    print()
    print(summary(results))
    graded = [r for r in results if r.graded]
    seconds = time.perf_counter() - started
    print(f"\n{len(graded)} of {len(results)} submissions graded in {seconds:.0f} s "
          f"({sum(r.seconds for r in results) / max(len(results), 1):.1f} s each on average).")
    print(f"Wrote {args.out / 'grades.csv'} and {len(graded)} feedback file(s) in {args.out / 'feedback'}")
    return 0 if len(graded) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
