"""How long FaceDatabase takes to match one face against 100,000 enrolled encodings.

    .venv/bin/python bench/match_speed.py

Enrols 100,000 random unit encodings (128 numbers each) twice: as 100,000 people with one photo
each (rule "mean": 100,000 rows), and as 10,000 people with 10 photos each (rule "nearest":
100,000 rows). Prints the median time of one `closest` call for one query (after a first call
that builds the matrix), for 100 queries at once, and, for scale, of a Python loop over the
people doing the same job.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from facerec.database import FaceDatabase

ENROLLED = 100_000
WIDTH = 128
REPEATS = 25


def median_seconds(call, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def main() -> None:
    rng = np.random.default_rng(0)
    rows = unit(rng.normal(size=(ENROLLED, WIDTH))).astype(np.float32)
    query = unit(rows[12_345] + 0.05 * rng.normal(size=WIDTH)).astype(np.float32)
    queries = unit(rows[rng.choice(ENROLLED, 100)] + 0.05 * rng.normal(size=(100, WIDTH))).astype(np.float32)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}")

    layouts = {
        "100,000 people x 1 photo, rule 'mean'": (FaceDatabase(model=object(), rule="mean"), 1),
        "10,000 people x 10 photos, rule 'nearest'": (FaceDatabase(model=object(), rule="nearest"), 10),
    }
    for label, (database, per_person) in layouts.items():
        started = time.perf_counter()
        for start in range(0, ENROLLED, per_person):
            database.add_encodings(f"person {start // per_person}", rows[start : start + per_person])
        enrol_seconds = time.perf_counter() - started
        started = time.perf_counter()
        first = database.closest(query)
        first_seconds = time.perf_counter() - started
        one = median_seconds(lambda: database.closest(query))
        hundred = median_seconds(lambda: database.closest(queries))
        print(f"{label}:")
        print(f"  enrolling {ENROLLED:,} encodings one add_encodings call per person: {enrol_seconds:.2f} s")
        print(f"  first query (builds the {ENROLLED:,} x {WIDTH} matrix): {1000 * first_seconds:.1f} ms -> {first.identity}")
        print(f"  one query:    {1000 * one:7.2f} ms (median of {REPEATS})")
        print(f"  100 queries:  {1000 * hundred:7.2f} ms in one call, {10 * hundred:.3f} ms per query")

    # The same answer by looping over the people in Python, to show what vectorising saves.
    started = time.perf_counter()
    best = min(range(ENROLLED), key=lambda i: np.linalg.norm(rows[i] - query))
    loop_seconds = time.perf_counter() - started
    print(f"Python loop over the 100,000 people, one numpy call each: {1000 * loop_seconds:.0f} ms -> person {best}")


if __name__ == "__main__":
    main()
