"""The small helper behind the notebook's test cells: named checks that are scored one by one.

    checks = Checks(points=2)
    with checks("the loss is alpha when all three encodings are equal"):
        assert ...
    with checks("the loss adds up the triplets of the batch"):
        assert ...
    checks.score()      # prints what passed and returns the points earned, e.g. 1.0

`number` and `assert_close` turn results (Python, numpy or TensorFlow numbers) into floats with
clear messages when they are not single numbers.

Each `with checks(...)` block is independent: a failed assertion or an error inside one block is
reported and the next block still runs, so one mistake costs only its share of the points. The
value of `checks.score()` is the cell's result; nbgrader reads it as the cell's partial credit.
Anything a block writes to stderr (library warnings, for instance) is shown on stdout instead,
because nbgrader gives no credit to a test cell that writes to stderr.
"""
from __future__ import annotations

import contextlib
import math
import sys
import traceback

import numpy as np

PASS = "\u2714"  # heavy check mark
FAIL = "\u2718"  # heavy ballot X


class Checks:
    """A list of named, independent checks worth `points` in total, shared equally."""

    def __init__(self, points: float):
        if not points > 0:
            raise ValueError(f"points must be a positive number, not {points!r}")
        self.points = float(points)
        self.results: list[tuple[str, bool]] = []

    @contextlib.contextmanager
    def __call__(self, description: str):
        """Run the body of a `with` block as one check called `description`."""
        passed = False
        try:
            with contextlib.redirect_stderr(sys.stdout):
                yield
            passed = True
        except (Exception, SystemExit) as error:  # exit() too: one bad check must not stop the rest
            print(f"{FAIL} {description}\n    {explain(error)}")
        else:
            print(f"{PASS} {description}")
        finally:
            self.results.append((description, passed))

    @property
    def passed(self) -> int:
        return sum(ok for _, ok in self.results)

    def score(self) -> float:
        """Print a one-line summary and return the points earned (the same share for each check)."""
        total = len(self.results)
        if total == 0:
            print("No check ran.")
            return 0.0
        earned = round(self.points * self.passed / total, 4)
        print(f"{self.passed} of {total} checks passed: {earned:g} of {self.points:g} points")
        return earned


def number(value, what: str = "the result") -> float:
    """`value` (a Python or numpy number, a tensor, a one-element array) as a float.

    Raises AssertionError saying what was wrong when `value` is not one finite number.
    """
    if value is None:
        raise AssertionError(f"{what} should be a number, got None: does the function return it?")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise AssertionError(f"{what} should be a number, got a {type(value).__name__}") from None
    if array.size != 1:
        raise AssertionError(f"{what} should be a single number, got {array.size} numbers "
                             f"(shape {array.shape})")
    result = float(array.reshape(()))
    if not math.isfinite(result):
        raise AssertionError(f"{what} should be a finite number, got {result}")
    return result


def assert_close(value, expected: float, atol: float = 1e-4, what: str = "the result") -> None:
    """Check that `value` is one number within `atol` of `expected`, with a message if not."""
    got = number(value, what)
    if not abs(got - expected) <= atol:
        raise AssertionError(f"{what}: expected {expected:g}, got {got:.6g}")


def explain(error: BaseException) -> str:
    """`error` in one or two lines for a learner: its type and message, and where in the notebook.

    Only lines of notebook cells are named (never lines of library or grader code), so the
    message points at the learner's own code.
    """
    if isinstance(getattr(error, "explained", None), str):  # already explained where it was raised
        return error.explained
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    frames = traceback.extract_tb(error.__traceback__)
    while frames and frames[0].filename == __file__:  # this module's own frame comes first
        frames.pop(0)
    called = frames[1:]  # frames[0] holds the `with` block itself; the rest is what it called
    in_cells = [frame for frame in called if frame.filename.startswith("<") or "ipykernel" in frame.filename]
    if in_cells:
        frame = in_cells[-1]
        line = (frame.line or "").strip()
        message += f"\n    (raised in {frame.name}, at: {line})" if line else f"\n    (raised in {frame.name})"
    return message
