"""How fast a class is graded: stock `nbgrader autograde` (serial, one Jupyter kernel per
submission) against `python -m grader.grade --jobs 2` (forked, isolated kernels, two at a time),
on the same submissions, on this machine, in the same run.

    .venv/bin/python bench/grading_speed.py [--submissions 40] [--jobs 2] [--out bench/out/grading_speed.json]

The submissions are the example submissions of grader/course/make_examples.py, repeated under new
student ids up to --submissions. Both sides grade them from scratch in their own temporary course
folder, with grader/nbgrader_config.py: the stock side runs nbgrader's own command-line program
(`nbgrader autograde Face_Recognition`, nbgrader's Execute preprocessor, hidden tests inside the
student's kernel), ours runs the README's command through its Python API (autograde in the
sandbox, then the HTML feedback and grades.csv, which the stock side does not even do).

It prints submissions per minute for both and their ratio, and where the time of one submission
goes on each side: kernel start, imports (the notebook's set-up cell), model load (its model
cell), student code (every other cell), tests (visible and hidden), and nbgrader's own steps.
For the stock side the split comes from running one submission cell by cell in a Jupyter kernel
with nbclient; for ours from the timings every graded submission reports.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PARTS = ("kernel start", "imports", "model load", "student code", "tests", "nbgrader steps")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpu": cpu,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "load_average_at_start": os.getloadavg()}


def write_submissions(folder: Path, count: int) -> list[str]:
    from grader.course.make_examples import EXAMPLES, write_examples

    examples = folder / "examples"
    write_examples(examples)
    students = []
    for index in range(count):
        example = EXAMPLES[index % len(EXAMPLES)]
        student = f"s{index + 1:02d}_{example.student}"
        shutil.copytree(examples / example.student, folder / "submissions" / student)
        students.append(student)
    return students


# ---------------------------------------------------------------- stock nbgrader


def stock(folder: Path, submissions: Path) -> dict:
    """`nbgrader autograde` in a course of its own, all submissions in one command."""
    from grader.grading.pipeline import Course

    root = folder / "stock"
    course = Course(root)
    course.release()
    course.collect(submissions)
    shutil.copy(REPOSITORY / "grader" / "nbgrader_config.py", root / "nbgrader_config.py")
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY), TF_CPP_MIN_LOG_LEVEL="3")
    nbgrader = Path(sys.executable).parent / "nbgrader"
    started = time.perf_counter()
    done = subprocess.run([str(nbgrader), "autograde", "Face_Recognition", "--force"], cwd=root, env=environment,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"stock nbgrader autograde failed:\n{done.stderr[-3000:]}")
    graded = {p.parent.parent.name for p in (root / "autograded").glob("*/Face_Recognition/Face_Recognition.ipynb")}
    scores = {student: round(sum(s for s, _ in course.scores(student).values()), 4) for student in sorted(graded)}
    return {"seconds": seconds, "graded": len(graded), "scores": scores}


def stock_breakdown(folder: Path, student_notebook: Path) -> dict:
    """One submission as nbgrader's Execute runs it: a Jupyter kernel, every cell in turn."""
    import nbformat
    from nbclient import NotebookClient

    from grader.grading.pipeline import COURSE_FILES, SOURCE_NOTEBOOK, DropUngradedTail, REPOSITORY as repo

    work = folder / "stock-one"
    work.mkdir()
    for name in COURSE_FILES:
        (work / name).symlink_to(repo / name)
    nb = nbformat.read(student_notebook, as_version=4)
    source = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(SOURCE_NOTEBOOK, as_version=4).cells
              if "nbgrader" in c.metadata}
    for cell in nb.cells:  # the hidden tests back in, as autograde puts them
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.endswith("_hidden"):
            cell.source = source[grade_id]
    nb, _ = DropUngradedTail().preprocess(nb, {})
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}},
                            extra_arguments=["--HistoryManager.hist_file=:memory:"])
    parts = dict.fromkeys(PARTS, 0.0)
    started = time.perf_counter()
    with client.setup_kernel():
        parts["kernel start"] = time.perf_counter() - started
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            begin = time.perf_counter()
            client.execute_cell(cell, index)
            parts[_part(cell)] += time.perf_counter() - begin
    parts["total"] = time.perf_counter() - started
    return parts


def _part(cell) -> str:
    metadata = cell.metadata.get("nbgrader", {})
    if metadata.get("grade"):
        return "tests"
    return {"setup": "imports", "model": "model load"}.get(metadata.get("grade_id"), "student code")


# ---------------------------------------------------------------- ours


def ours(folder: Path, submissions: Path, jobs: int) -> dict:
    from grader.grade import grade

    started = time.perf_counter()
    results = grade(submissions, folder / "ours-out", folder / "ours", progress=lambda m: None, jobs=jobs,
                    force=True, progress_stream=open(os.devnull, "w"))
    seconds = time.perf_counter() - started
    parts = dict.fromkeys(PARTS, 0.0)
    for result in results:
        timings = result.timings
        parts["kernel start"] += timings.get("kernel start", 0.0)
        for part in ("imports", "model load", "student code", "tests"):
            parts[part] += timings.get(part, 0.0)
        cells = sum(timings.get(p, 0.0) for p in ("imports", "model load", "student code", "tests"))
        parts["nbgrader steps"] += result.seconds - timings.get("kernel start", 0.0) - cells
    breakdown = {part: value / len(results) for part, value in parts.items()}
    breakdown["total"] = sum(r.seconds for r in results) / len(results)
    return {"seconds": seconds, "graded": sum(r.graded for r in results), "breakdown": breakdown,
            "scores": {r.student: r.score for r in results}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/grading_speed.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPOSITORY / "bench" / "out" / "grading_speed.json")
    args = parser.parse_args(argv)
    info = machine()
    print(f"{info['date']} | {info['cpu']} | {info['cores']} cores, {info['memory_gb']} GB | "
          f"load average {', '.join(f'{x:.2f}' for x in info['load_average_at_start'])}")
    with tempfile.TemporaryDirectory(prefix="fr-grading-speed-") as name:
        folder = Path(name)
        students = write_submissions(folder, args.submissions)
        submissions = folder / "submissions"
        from grader.course.make_examples import EXAMPLES

        print(f"{len(students)} submissions (the {min(len(students), len(EXAMPLES))} examples, repeated)")

        print("stock: one submission cell by cell in a Jupyter kernel (for the breakdown) ...", flush=True)
        stock_parts = stock_breakdown(folder, submissions / students[0] / "Face_Recognition.ipynb")
        print(f"stock: `nbgrader autograde` of all {len(students)}, serially ...", flush=True)
        stock_run = stock(folder, submissions)
        print(f"ours: `python -m grader.grade --jobs {args.jobs}` ...", flush=True)
        our_run = ours(folder, submissions, args.jobs)

    stock_rate = 60 * stock_run["graded"] / stock_run["seconds"]
    our_rate = 60 * our_run["graded"] / our_run["seconds"]
    stock_parts["nbgrader steps"] = max(stock_run["seconds"] / max(stock_run["graded"], 1) - stock_parts["total"], 0.0)
    stock_parts["total"] = stock_run["seconds"] / max(stock_run["graded"], 1)
    same = stock_run["scores"] == {s: round(v, 4) for s, v in our_run["scores"].items()}
    print()
    print(f"stock nbgrader autograde, serial: {stock_run['graded']} graded in {stock_run['seconds']:.0f} s = "
          f"{stock_rate:.2f} submissions/minute")
    print(f"python -m grader.grade --jobs {args.jobs}:   {our_run['graded']} graded in {our_run['seconds']:.0f} s = "
          f"{our_rate:.2f} submissions/minute (autograde + feedback + grades.csv, sandbox start included)")
    print(f"ratio: {our_rate / stock_rate:.2f}x    same scores on both sides: {same}")
    print()
    print(f"{'one submission (s)':22s} {'stock':>8s} {'ours':>8s}")
    for part in (*PARTS, "total"):
        print(f"{part:22s} {stock_parts[part]:8.2f} {our_run['breakdown'][part]:8.2f}")
    overhead = {side: parts["total"] - parts["student code"] - parts["tests"]
                for side, parts in (("stock", stock_parts), ("ours", our_run["breakdown"]))}
    print(f"{'overhead (all but student code and tests)':22s}: stock {overhead['stock']:.2f} s, ours {overhead['ours']:.2f} s")
    print("(stock: its kernel runs TensorFlow on every core; ours: one TensorFlow thread per kernel, "
          f"{args.jobs} kernels at once. 'total' is the time one submission takes from start to end; "
          "the throughput above is what counts.)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": info, "submissions": len(students), "jobs": args.jobs,
                                    "stock": {**stock_run, "per_minute": stock_rate, "breakdown": stock_parts},
                                    "ours": {**our_run, "per_minute": our_rate}, "ratio": our_rate / stock_rate,
                                    "overhead": overhead, "same_scores": same}, indent=2))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
