"""Grade a folder of submitted notebooks: grades.csv, one HTML feedback file per student, a summary.

    python -m grader.grade [SUBMISSIONS] [--out DIR] [--course DIR] [--jobs N] [--force] [--db URL]
                           [--cell-timeout S] [--timeout S] [--memory GB]

SUBMISSIONS  a folder with one sub-folder per student holding Face_Recognition.ipynb (or one
             <student>.ipynb per student); default: the example submissions, regenerated from
             the source notebook first (grader/examples/submissions)
--out DIR    where to write grades.csv and feedback/<student>.html (default: the current folder)
--course DIR the nbgrader course folder holding the gradebook and nbgrader's working folders
             (default: grader/, the course itself, whose gradebook is grader/gradebook.db; for
             the example submissions grader/.work/examples/, to keep them out of a real class)
--jobs N     grade N submissions at once (default: one per CPU core, at most one per 2 GB of memory)
--force      grade again submissions an earlier run already graded (by default a run that was
             stopped is resumed: a submission graded before, unchanged, by the same grader, is kept)
--db URL     the gradebook's SQLAlchemy URL, e.g. postgresql://grader@dbhost/course (default:
             nbgrader's SQLite file in the course folder)
--cell-timeout S, --timeout S, --memory GB
             limits of one submission: seconds per cell (120), seconds per notebook (600),
             memory (6 GB)

Each submission runs in a fresh kernel of its own, forked from a process that has TensorFlow and
the course helpers loaded, isolated from the machine, in its own copy of the assignment folder
(grader/sandbox.py, grader/zygote.py). nbgrader does the rest as `nbgrader autograde` would with
grader/nbgrader_config.py: the gradebook, the score of every cell, the feedback. A file that
cannot be graded (not a notebook, say) gets 0 points and feedback saying why; the others are
graded anyway. The exit status is 0 when every submission was graded, 1 otherwise, 2 when
grading could not start.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.pipeline import (EXERCISES, GRADER, Course, GradingError, StudentResult,  # noqa: E402
                             describe_database, find_submissions)

# The course folder used for the example submissions, so that they never mix with a real class.
EXAMPLES_COURSE = GRADER / ".work" / "examples"
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# One job per core, and at most one per 2 GB of memory (a kernel with TensorFlow and the model
# holds about 1.2 GB, its worker 0.2 GB).
DEFAULT_JOBS = max(1, min(_CORES, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**31)))


def grade(submissions: Path | None, out: Path, course_dir: Path | None = None, progress=print, *,
          jobs: int | None = None, force: bool = False, db_url: str | None = None,
          cell_timeout: float = 120.0, notebook_timeout: float = 600.0, memory_gb: float = 6.0,
          zygote=None, progress_stream=sys.stderr) -> list[StudentResult]:
    """Run the whole pipeline; return one result per student, in the order of their ids.

    `zygote`: a running grader.sandbox.Zygote to reuse (tests grade several batches with one);
    by default one is started for this run and stopped at its end.
    """
    from grader import parallel, preflight, sandbox

    jobs = jobs or DEFAULT_JOBS
    if submissions is None:
        from grader.make_examples import EXAMPLES_FOLDER, write_examples

        write_examples(EXAMPLES_FOLDER)
        submissions = EXAMPLES_FOLDER
        progress(f"Example submissions regenerated from the source notebook in {submissions}")
        if course_dir is None:  # keep the examples out of the real class's gradebook
            course_dir = EXAMPLES_COURSE
    found = find_submissions(Path(submissions))
    course = Course(course_dir, db_url=db_url)
    try:
        released = course.release().read_text(encoding="utf-8")
    except GradingError:
        raise
    except Exception as error:  # the database is unreachable, say
        raise GradingError(f"could not prepare the gradebook at {describe_database(course.db_url)}: "
                           f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
                           ) from None
    prepared = {student: preflight.prepare(student, path, released) for student, path in found.items()}

    limits = sandbox.SandboxSettings(socket="", encodings="", cell_timeout=cell_timeout,
                                     notebook_timeout=notebook_timeout, memory_bytes=int(memory_gb * (1 << 30)))
    version = parallel.fingerprint(limits)
    results: dict[str, StudentResult] = {}
    tasks = []
    for student, item in prepared.items():
        earlier = None if force else course.graded_before(student, item.sha256, version)
        if earlier is not None:
            results[student] = earlier
            continue
        course.submit(student, item.text)
        tasks.append(parallel.Task(student, item.sha256, item.rejected, item.notes))
    if results:
        progress(f"Resuming: {len(results)} submission(s) graded by an earlier run are kept "
                 "(--force grades them again)")

    # The sandbox is started only when some notebook has to run (not for files that are not notebooks).
    own_zygote = zygote is None and any(not task.rejected for task in tasks)
    if own_zygote:
        started = time.perf_counter()
        zygote = sandbox.Zygote(parallel.hidden_from_kernels(course, Path(submissions), Path(out)),
                                course.root / "logs" / "zygote.log")
        progress(f"Sandbox ready in {time.perf_counter() - started:.1f} s: {zygote.isolation}")
    try:
        settings = parallel.read_settings(cell_timeout, notebook_timeout, memory_gb, zygote) if zygote else limits
        progress(f"Grading {len(tasks)} submission(s) from {submissions} with {min(jobs, max(len(tasks), 1))} "
                 f"job(s) (course folder {course.root}; gradebook {describe_database(course.db_url)})")
        count = [0]

        def report(result: StudentResult):
            count[0] += 1
            results[result.student] = result
            note = f" - {result.notes[0][:90]}" if result.notes else ""
            progress(f"[{count[0]}/{len(tasks)}] {result.student}: {result.score:g}/{result.max_score:g} "
                     f"in {result.seconds:.1f} s" + ("" if result.graded else f" ({result.status})") + note)

        try:
            parallel.run(course, tasks, settings, jobs, report, parallel.Progress(len(tasks), progress_stream))
        except KeyboardInterrupt:
            Course.export([results[s] for s in found if s in results], out)
            raise
    finally:
        if own_zygote:
            zygote.close()
    ordered = [results[student] for student in found]
    Course.export(ordered, out)
    return ordered


def summary(results: list[StudentResult]) -> str:
    """The results as a plain-text table."""
    maxima = next((r for r in results if r.cells), None)
    headers = ["student", *(f"{e} /{maxima.exercise(e)[1]:g}" if maxima else e for e in EXERCISES),
               f"total /{maxima.max_score:g}" if maxima else "total", "seconds", "status"]
    rows = [[r.student, *(f"{r.exercise(e)[0]:g}" for e in EXERCISES), f"{r.score:g}",
             f"{r.seconds:.1f}", r.status + (" (earlier run)" if r.resumed else "")] for r in results]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = lambda row: "  ".join(str(v).ljust(w) if i in (0, len(row) - 1) else str(v).rjust(w)
                                 for i, (v, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.grade",
        description="Grade a folder of submitted Face_Recognition notebooks with nbgrader, each in an "
                    "isolated kernel, several at once.",
        epilog="Writes DIR/grades.csv and DIR/feedback/<student>.html and prints a summary table.")
    parser.add_argument("submissions", nargs="?", type=Path,
                        help="folder of submissions (default: the example submissions)")
    parser.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")
    parser.add_argument("--course", type=Path, default=None,
                        help="nbgrader course folder for the gradebook and working files (default: "
                             "grader/, or grader/.work/examples/ for the example submissions)")
    parser.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS,
                        help=f"submissions graded at once (default here: {DEFAULT_JOBS}: one per core, "
                             "at most one per 2 GB of memory)")
    parser.add_argument("--force", action="store_true",
                        help="grade again what an earlier run already graded (default: resume)")
    parser.add_argument("--db", metavar="URL", default=None,
                        help="gradebook URL, e.g. postgresql://user@host/db (default: SQLite in the course folder)")
    parser.add_argument("--cell-timeout", type=float, default=120.0, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per notebook (600)")
    parser.add_argument("--memory", type=float, default=6.0, metavar="GB", help="memory per submission (6)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.cell_timeout <= 0 or args.timeout <= 0 or args.memory <= 0:
        parser.error("--jobs, --cell-timeout, --timeout and --memory must be positive")
    started = time.perf_counter()
    try:
        results = grade(args.submissions, args.out, args.course, jobs=args.jobs, force=args.force,
                        db_url=args.db, cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                        memory_gb=args.memory)
    except GradingError as error:
        print(f"grading stopped: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ngrading interrupted: what was graded is kept; run the same command again to resume.",
              file=sys.stderr)
        return 130
    print()
    print(summary(results))
    graded = [r for r in results if r.graded]
    seconds = time.perf_counter() - started
    fresh = [r for r in results if not r.resumed]
    print(f"\n{len(graded)} of {len(results)} submissions graded in {seconds:.0f} s "
          f"({sum(r.seconds for r in fresh) / max(len(fresh), 1):.1f} s each on average, "
          f"{60 * len(fresh) / max(seconds, 1e-9):.1f} per minute).")
    print(f"Wrote {args.out / 'grades.csv'} and {len(graded)} feedback file(s) in {args.out / 'feedback'}")
    return 0 if len(graded) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
