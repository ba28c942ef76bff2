"""What the worst hostile submission of each family of issue #16 costs the grader: the worker's peak
memory and the submission's grading time, against an honest submission graded the same way.

    .venv/bin/python bench/hostile_cost.py [--entries NAME ...] [--out bench/out/hostile_cost.json]

Each submission is graded alone (one job, the README's command through its Python API, the
default limits but 15 s per cell), one after the other, with one sandbox (zygote) for the run.
The worker's peak memory is the high-water mark of its resident set (VmHWM in /proc), read every
0.1 s while it works; a fresh worker grades each submission, so peaks do not carry over.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The worst entry of each family (the most output, names or work for the grader), and a baseline.
WORST = {
    "1. disk": "c_level_flood",
    "2. reply size": "forged_reply_flood",
    "3. forged answers": "forge_transport",
    "4. active HTML": "html_flood",
    "5. total output": "output_30_cells",
}
BASELINE = "never_ran"  # the solutions, as a student saves them


class PeakMemory:
    """The largest VmHWM of this process's worker children (not the zygote) while running."""

    def __init__(self):
        self.peak_kb = 0
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        me = str(os.getpid())
        while self.running:
            for entry in Path("/proc").iterdir():
                try:
                    if not entry.name.isdigit() or (entry / "stat").read_text().split(") ")[1].split()[1] != me:
                        continue
                    if b"multiprocessing" not in (entry / "cmdline").read_bytes():
                        continue
                    status = (entry / "status").read_text()
                except (OSError, IndexError):
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()


def main(argv=None) -> int:
    from grading_speed import machine

    from grader.grade import grade
    from grader.course.hostile import BY_NAME, write_corpus
    from grader.sandbox.execute import Zygote

    parser = argparse.ArgumentParser(prog="bench/hostile_cost.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", nargs="+", default=[BASELINE, *WORST.values()], choices=sorted(BY_NAME),
                        metavar="NAME", help="corpus entries to grade (default: the baseline and each family's worst)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "bench" / "out" / "hostile_cost.json")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="hostile-cost-"))
    families = {name: family for family, name in WORST.items()}
    rows = []
    try:
        write_corpus(root / "corpus", args.entries)
        started = time.perf_counter()
        with Zygote([root], root / "zygote.log") as zygote:
            print(f"sandbox ready in {time.perf_counter() - started:.1f} s; load average {os.getloadavg()[0]:.2f}",
                  flush=True)
            for name in args.entries:
                submissions = root / "submissions" / name
                shutil.copytree(root / "corpus" / name, submissions / name)
                begun = time.perf_counter()
                with PeakMemory() as memory:
                    [result] = grade(submissions, root / "out" / name, root / "course" / name, jobs=1, zygote=zygote,
                                     cell_timeout=15.0, progress=lambda message: None,
                                     progress_stream=open(os.devnull, "w"))
                feedback = root / "out" / name / "feedback" / f"{name}.html"
                row = {"entry": name, "family": families.get(name, "baseline"), "score": result.score,
                       "status": result.status, "grading_seconds": round(result.seconds, 1),
                       "wall_seconds": round(time.perf_counter() - begun, 1),
                       "worker_peak_mb": round(memory.peak_kb / 1024),
                       "feedback_mb": round(feedback.stat().st_size / 2**20, 1) if feedback.exists() else None,
                       "log_mb": round((root / "course" / name / "logs" / f"{name}.log").stat().st_size / 2**20, 1)}
                rows.append(row)
                print(f"{row['family']:<18} {name:<20} {row['score']:>5g}/20  graded in {row['grading_seconds']:6.1f} s"
                      f"  worker peak {row['worker_peak_mb']:5d} MB  feedback {row['feedback_mb']} MB"
                      f"  log {row['log_mb']} MB", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
