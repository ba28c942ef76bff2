"""Grade submitted notebooks (a folder, or an LMS's zip): grades.csv, one HTML feedback file per student, a summary.

    python -m grader.grade [SUBMISSIONS] [--out DIR] [--course DIR] [--lms NAME | --id-pattern REGEX]
                           [--export NAME ...] [--export-column HEADER] [--jobs N] [--force] [--db URL]
                           [--cell-timeout S] [--timeout S] [--memory GB] [--scheduler tcp://HOST:PORT]

SUBMISSIONS  a folder with one sub-folder per student holding Face_Recognition.ipynb (or one
             <student>.ipynb per student), or a Canvas, Moodle or Blackboard download, zipped or
             not (grader/grading/lms.py reads their file names: the student id is the LMS's own, and of
             several files of a student the latest is graded); default: the example submissions,
             regenerated from the source notebook first (grader/examples/submissions)
--out DIR    where to write grades.csv, feedback/<student>.html and the --export files (default:
             COURSE/results/<the submissions' name>, never the repository's root)
--course DIR the nbgrader course folder holding the gradebook and nbgrader's working folders
             (default: grader/, the course itself, whose gradebook is grader/gradebook.db; for
             the example submissions grader/.work/examples/, to keep them out of a real class)
--lms NAME, --id-pattern REGEX
             how file names carry the student id (default: detected; see grader/grading/lms.py)
--export NAME
             also write the grades file the LMS's grade import accepts (canvas, moodle, blackboard)
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
(grader/sandbox/execute.py, grader/sandbox/zygote.py). nbgrader does the rest as `nbgrader autograde` would with
grader/nbgrader_config.py: the gradebook, the score of every cell, the feedback. A file that is
not a notebook gets the status `unreadable`, 0 points and feedback saying what it is; the others
are graded anyway. The exit status is 0 when every readable notebook was graded, 1 otherwise, 2
when grading could not start, 3 when the Dask scheduler went away during the run, 130 when
interrupted (after 3 and 130, the same command resumes).

--scheduler tcp://HOST:PORT
             grade on the workers of a running Dask scheduler instead of local jobs (one task per
             submission; grader/grading/cluster.py; how to set workers up: grader/README.md)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.grading.pipeline import (EXERCISES, GRADER, Course, GradingError, StudentResult,  # noqa: E402
                             describe_database)

# The course folder used for the example submissions, so that they never mix with a real class.
EXAMPLES_COURSE = GRADER / ".work" / "examples"
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# One job per core, and at most one per 2 GB of memory (a kernel with TensorFlow and the model
# holds about 1.2 GB, its worker 0.2 GB).
DEFAULT_JOBS = max(1, min(_CORES, int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**31)))


class GradedRun(list):
    """The results of a run, one per student in the order of their ids, and what the run did."""

    def __init__(self, results, out: Path, download=None, origin=None, unreadable=None, exports=(), workers=0):
        super().__init__(results)
        self.workers = workers              # the most workers that graded at once in this run
        self.out, self.download, self.exports = out, download, list(exports)
        self.origin = origin or {}          # student -> new, kept, changed, grader changed, forced, incomplete
        self.unreadable = unreadable or {}  # student -> what the file is, in a few words

    def count(self, *origins: str) -> int:
        return sum(1 for r in self if self.origin.get(r.student) in origins)


def default_out(submissions: Path | None, course_root: Path) -> Path:
    """Where a run's results go without --out: a folder of the course named after the submissions."""
    name = "examples" if submissions is None else (Path(submissions).stem if Path(submissions).is_file()
                                                   else Path(submissions).resolve().name)
    return course_root / "results" / (name or "submissions")


def grade(submissions: Path | None, out: Path | None = None, course_dir: Path | None = None, progress=print, *,
          jobs: int | None = None, force: bool = False, db_url: str | None = None,
          cell_timeout: float = 120.0, notebook_timeout: float = 600.0, memory_gb: float = 6.0,
          zygote=None, progress_stream=sys.stderr, lms: str | None = None, id_pattern: str | None = None,
          export: list[str] = (), export_column: str | None = None, scheduler: str | None = None) -> GradedRun:
    """Run the whole pipeline; return one result per student, in the order of their ids.

    `submissions`: a folder or a zip (an LMS download, see grader/grading/lms.py); `out`: by default
    default_out(). `zygote`: a running grader.sandbox.execute.Zygote to reuse (tests grade several
    batches with one); by default one is started for this run and stopped at its end. `scheduler`:
    the address of a Dask scheduler (tcp://HOST:PORT) whose workers grade instead of local jobs.
    """
    from grader.grading import feedback_files, lms as lms_files, parallel, preflight
    from grader.grading.jobs import Job
    from grader.sandbox import execute as sandbox

    jobs = jobs or DEFAULT_JOBS
    examples = submissions is None
    if examples:
        from grader.course.make_examples import EXAMPLES_FOLDER, write_examples

        write_examples(EXAMPLES_FOLDER)
        if course_dir is None:  # keep the examples out of the real class's gradebook
            course_dir = EXAMPLES_COURSE
    course = Course(course_dir, db_url=db_url)
    out = Path(out) if out else default_out(submissions, course.root)
    progress(f"Results go to {out} (grades.csv, feedback/){'' if examples else '; --out DIR to choose'}")
    if examples:
        submissions = EXAMPLES_FOLDER
        progress(f"Example submissions regenerated from the source notebook in {submissions}")
    unpacked = course.root / "downloads" / default_out(submissions, course.root).name  # a zip, unpacked
    download = lms_files.read_download(Path(submissions), unpacked, lms=lms, id_pattern=id_pattern)
    progress(f"Found {download.describe(submissions)}")
    found = download.files
    try:
        released = course.release().read_text(encoding="utf-8")
    except GradingError:
        raise
    except Exception as error:  # the database is unreachable, say
        raise GradingError(f"could not prepare the gradebook at {describe_database(course.db_url)}: "
                           f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
                           ) from None
    prepared = {student: preflight.prepare(student, path, released) for student, path in found.items()}
    for student, item in prepared.items():
        item.notes[:0] = download.notes.get(student, [])

    limits = parallel.limits(cell_timeout, notebook_timeout, memory_gb)
    version = parallel.fingerprint(limits)
    results: dict[str, StudentResult] = {}
    origin: dict[str, str] = {}
    tasks = []
    for student, item in prepared.items():
        earlier = None if force else course.graded_before(student, item.sha256, version)
        if earlier is not None:
            results[student], origin[student] = earlier, "kept"
            continue
        why = parallel.since_last_run(course, student, item.sha256, version)
        origin[student] = "forced" if force and why != "new" else why
        course.submit(student, item.text)
        tasks.append(parallel.Task(Job(student, item.text.encode("utf-8"), limits, version, item.rejected,
                                       tuple(item.notes)), item.sha256))
    again = {why: [s for s, o in origin.items() if o == why] for why in ("kept", "changed", "grader changed",
                                                                         "forced", "incomplete")}
    if any(again.values()):
        progress("Resuming: " + "; ".join(
            f"{len(students)} {label}" + (f" ({', '.join(students[:5])}{' ...' if len(students) > 5 else ''})"
                                          if why == "changed" else "")
            for why, label in [("kept", "kept from an earlier run (--force grades them again)"),
                               ("changed", "changed since the last run, graded again"),
                               ("grader changed", "graded again because the grader changed"),
                               ("forced", "graded again (--force)"),
                               ("incomplete", "graded again because their grades or feedback were missing")]
            for students in [again[why]] if students))

    # On this machine, the sandbox is started only when some notebook has to run (not for files
    # that are not notebooks); on a cluster, each worker process starts its own.
    own_zygote = scheduler is None and zygote is None and any(not task.job.rejected for task in tasks)
    if own_zygote:
        started = time.perf_counter()
        zygote = sandbox.Zygote(parallel.hidden_from_kernels(course, download.folder, out),
                                course.root / "logs" / "zygote.log")
        progress(f"Sandbox ready in {time.perf_counter() - started:.1f} s: {zygote.isolation}")
    unreadable = {student: item.what for student, item in prepared.items() if item.rejected}

    def finish(result: StudentResult) -> StudentResult:
        if result.student in unreadable and result.graded:
            result.status = "unreadable"
        return result

    try:
        if not tasks:
            runner = None
        elif scheduler is not None:
            from grader.grading import cluster

            runner = cluster.DaskRunner(scheduler)
        else:
            from grader.grading import local

            runner = local.LocalPool(zygote, min(jobs, len(tasks)), local.template(version))
        doing = runner.describe() if runner else f"{min(jobs, max(len(tasks), 1))} job(s)"
        progress(f"Grading {len(tasks)} submission(s) from {submissions} with {doing} "
                 f"(course folder {course.root}; gradebook {describe_database(course.db_url)})")
        count = [0]

        def report(result: StudentResult):
            count[0] += 1
            results[result.student] = finish(result)
            why = {"changed": " [changed since the last run]", "grader changed": " [grader changed]"}.get(
                origin.get(result.student), "")
            note = (f" - {unreadable[result.student]}" if result.student in unreadable
                    else f" - {result.notes[0][:90]}" if result.notes else "")
            progress(f"[{count[0]}/{len(tasks)}] {result.student}: {result.score:g}/{result.max_score:g} "
                     f"in {result.seconds:.1f} s" + ("" if result.graded else f" ({result.status})") + why + note)

        line = parallel.Progress(len(tasks), progress_stream)
        try:
            if runner is not None:
                parallel.run(course, tasks, runner, report, line)
        except (KeyboardInterrupt, GradingError):
            Course.export([results[s] for s in found if s in results], out)
            raise
    finally:
        if own_zygote:
            zygote.close()
    ordered = [finish(results[student]) for student in found]
    Course.export(ordered, out)
    feedback_files.tidy_all(out / "feedback")
    points = next((r.max_score for r in ordered if r.cells), 0.0)
    exports = [lms_files.write_export(name, ordered, download, out, points, export_column) for name in export]
    return GradedRun(ordered, out, download, origin, unreadable, exports, workers=line.most_workers)


def summary(results: list[StudentResult]) -> str:
    """The results as a plain-text table (what an unreadable file is, when `results` is a GradedRun)."""
    unreadable = getattr(results, "unreadable", {})
    origin = getattr(results, "origin", {})

    def status(r: StudentResult) -> str:
        text = r.status + (f": {unreadable[r.student]}" if r.status == "unreadable" and r.student in unreadable else "")
        if r.resumed:
            return text + " (earlier run)"
        return text + (" (changed since the last run)" if origin.get(r.student) == "changed" else "")

    maxima = next((r for r in results if r.cells), None)
    headers = ["student", *(f"{e} /{maxima.exercise(e)[1]:g}" if maxima else e for e in EXERCISES),
               f"total /{maxima.max_score:g}" if maxima else "total", "seconds", "status"]
    rows = [[r.student, *(f"{r.exercise(e)[0]:g}" for e in EXERCISES), f"{r.score:g}",
             f"{r.seconds:.1f}", status(r)] for r in results]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    line = lambda row: "  ".join(str(v).ljust(w) if i in (0, len(row) - 1) else str(v).rjust(w)
                                 for i, (v, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def closing(run: GradedRun, seconds: float) -> str:
    """The last lines of a run: what happened to every student, the speed of what this run graded."""
    fresh = [r for r in run if not r.resumed and r.status in ("graded", "unreadable")]
    notebooks = [r for r in fresh if r.status == "graded"]
    failed = [r for r in run if r.status not in ("graded", "unreadable")]
    parts = [f"{len(run)} student(s): {len(notebooks)} graded in this run",
             f"{run.count('kept')} kept from an earlier run",
             f"{sum(1 for r in run if r.status == 'unreadable')} unreadable (not a notebook: 0 points, feedback says why)",
             f"{len(failed)} not graded"]
    again = [f"{run.count(why)} {label}" for why, label in [("changed", "changed since the last run"),
                                                           ("grader changed", "regraded: grader changed"),
                                                           ("forced", "regraded: --force"),
                                                           ("incomplete", "regraded: results were missing")]
             if run.count(why)]
    speed = (f"{len(notebooks)} notebook(s) graded in {seconds:.0f} s: "
             f"{sum(r.seconds for r in notebooks) / len(notebooks):.1f} s each on average, "
             f"{60 * len(notebooks) / max(seconds, 1e-9):.1f} per minute." if notebooks
             else "No notebook had to be graded in this run.")
    lines = ["; ".join(parts) + (f" ({', '.join(again)})" if again else "") + ".", speed,
             f"Wrote {run.out / 'grades.csv'} and the feedback in {run.out / 'feedback'}"]
    lines += [f"Wrote {path} for the LMS's grade import" for path in run.exports]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.grade",
        description="Grade submitted Face_Recognition notebooks (a folder, or an LMS's zip) with nbgrader, each "
                    "in an isolated kernel, several at once.",
        epilog="Writes OUT/grades.csv, OUT/feedback/<student>.html and, with --export, the LMS's grades file, "
               "and prints a summary table. Exit status: 0 when every readable notebook was graded (files that are "
               "not notebooks get the status 'unreadable', 0 points and feedback saying why, and do not change "
               "it); 1 when some notebook could not be graded; 2 when grading could not start; 3 when the Dask "
               "scheduler went away (run the same command again to resume); 130 when "
               "interrupted.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", nargs="?", type=Path,
                        help="a folder of submissions, or an LMS's download (a zip, or the folder it unzips to); "
                             "default: the example submissions")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: COURSE/results/<name of the submissions>, e.g. "
                             "grader/results/week5 for week5.zip; the examples': grader/.work/examples/results/examples)")
    parser.add_argument("--course", type=Path, default=None,
                        help="nbgrader course folder for the gradebook and working files (default: "
                             "grader/, or grader/.work/examples/ for the example submissions)")
    parser.add_argument("--lms", choices=sorted(lms_rules()),
                        help="how the file names carry the student id (default: detected when exactly one "
                             "LMS's names match; a plain folder per student otherwise)")
    parser.add_argument("--id-pattern", metavar="REGEX",
                        help="a regular expression matched against each file's name, with a named group "
                             r"student_id, e.g. '^(?P<student_id>[a-z0-9]+)_week5\.ipynb$' (instead of --lms)")
    parser.add_argument("--export", action="append", choices=sorted(lms_rules()), default=[],
                        help="also write the grades file this LMS's grade import accepts (repeatable)")
    parser.add_argument("--export-column", metavar="HEADER",
                        help="the grade column's header in the export, copied from the LMS's own grades "
                             "download, e.g. 'Face Recognition (12345)' (Canvas) or "
                             "'Face Recognition [Total Pts: 20 Score] |67890' (Blackboard)")
    parser.add_argument("--jobs", "-j", type=int, default=DEFAULT_JOBS,
                        help=f"submissions graded at once (default here: {DEFAULT_JOBS}: one per core, "
                             "at most one per 2 GB of memory)")
    parser.add_argument("--force", action="store_true",
                        help="grade again what an earlier run already graded (default: resume)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                        help="grade on the workers of this Dask scheduler instead of --jobs local processes "
                             "(see grader/README.md: each worker machine set up like this one)")
    parser.add_argument("--db", metavar="URL", default=None,
                        help="gradebook URL, e.g. postgresql://user@host/db (default: SQLite in the course folder)")
    parser.add_argument("--cell-timeout", type=float, default=120.0, metavar="S", help="seconds per cell (120)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="S", help="seconds per notebook (600)")
    parser.add_argument("--memory", type=float, default=6.0, metavar="GB", help="memory per submission (6)")
    parser.add_argument("--roster", type=Path, metavar="FILE", help="CSV of id,first_name,last_name,email: imported "
                        "into the gradebook first (nbgrader db student import); ids not on it are flagged")
    args = parser.parse_args(argv)
    if args.scheduler and not args.scheduler.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://")):
        parser.error("--scheduler: a Dask scheduler's address, e.g. tcp://10.0.0.5:8786")
    if args.jobs < 1 or args.cell_timeout <= 0 or args.timeout <= 0 or args.memory <= 0:
        parser.error("--jobs, --cell-timeout, --timeout and --memory must be positive")
    if args.lms and args.id_pattern:
        parser.error("--lms and --id-pattern: give one (the pattern replaces the LMS's naming rules)")
    from grader.grading.cluster import ClusterLost

    started = time.perf_counter()
    try:
        if args.roster:  # grader/grading/roster.py
            from grader.grading import roster
            people = roster.import_roster(args.roster, args.course or (EXAMPLES_COURSE if args.submissions is None
                                                                       else None), args.db)
        # Each line as it happens, also when the output goes to a pipe or a file.
        results = grade(args.submissions, args.out, args.course, progress=lambda line: print(line, flush=True),
                        jobs=args.jobs, force=args.force,
                        db_url=args.db, cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                        memory_gb=args.memory, lms=args.lms, id_pattern=args.id_pattern, export=args.export,
                        export_column=args.export_column, scheduler=args.scheduler)
    except ClusterLost as error:
        print(f"\ngrading stopped: {error}", file=sys.stderr)
        return 3
    except GradingError as error:
        print(f"grading stopped: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ngrading interrupted: what was graded is kept; run the same command again to resume.",
              file=sys.stderr)
        return 130
    strangers = roster.flag(results, people) if args.roster else None
    print()
    print(summary(results))
    print()
    if args.roster:
        print(roster.report(strangers, people))
    print(closing(results, time.perf_counter() - started))
    return 0 if all(r.status in ("graded", "unreadable") for r in results) else 1


def lms_rules() -> dict:
    from grader.grading.lms import RULES

    return RULES


if __name__ == "__main__":
    sys.exit(main())
