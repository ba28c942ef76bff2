"""The test-cell helper (fr_checks), the reference answers and the hidden triplet-loss tests, without nbgrader."""
from __future__ import annotations

import io
import os
from contextlib import redirect_stdout

import numpy as np
import pytest

import fr_checks
from fr_checks import Checks, assert_close, number
from grader.sandbox import callee
from grader.course import hidden, reference

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def run_cell(source: str, namespace: dict | None = None) -> tuple[object, str]:
    """Run `source` as a notebook cell would (code compiled under a cell-like file name);
    return the value of its last line and what it printed."""
    namespace = {} if namespace is None else namespace
    *body, last = source.strip().split("\n")
    out = io.StringIO()
    with redirect_stdout(out):
        exec(compile("\n".join(body), "/tmp/ipykernel_1/1.py", "exec"), namespace)
        value = eval(compile(last, "/tmp/ipykernel_1/1.py", "eval"), namespace)
    return value, out.getvalue()


# ---------------------------------------------------------------- fr_checks


def test_each_check_earns_an_equal_share_and_failures_do_not_stop_the_others():
    value, printed = run_cell('''
checks = Checks(points=2)
with checks("passes"):
    assert 1 + 1 == 2
with checks("fails"):
    assert 1 + 1 == 3, "arithmetic is broken"
with checks("raises"):
    {}["missing"]
with checks("passes too"):
    pass
checks.score()''', {"Checks": Checks})
    assert value == 1.0
    assert "\u2714 passes\n" in printed and "\u2718 fails\n    AssertionError: arithmetic is broken" in printed
    assert "KeyError: 'missing'" in printed and "2 of 4 checks passed: 1 of 2 points" in printed


def test_a_check_reports_the_learners_own_line_never_library_frames():
    _, printed = run_cell('''
def helper(x):
    return x / 0
checks = Checks(points=1)
with checks("divides"):
    number(helper(1))
checks.score()''', {"Checks": Checks, "number": number})
    assert "ZeroDivisionError: division by zero" in printed
    assert "(raised in helper" in printed and "fr_checks.py" not in printed


def test_stderr_inside_a_check_goes_to_stdout_and_exit_is_contained():
    _, printed = run_cell('''
import sys
checks = Checks(points=1)
with checks("warns"):
    print("a library warning", file=sys.stderr)
with checks("exits"):
    sys.exit(3)
checks.score()''', {"Checks": Checks})
    assert "a library warning" in printed and "SystemExit: 3" in printed


def test_score_of_no_checks_is_zero_and_points_must_be_positive():
    with redirect_stdout(io.StringIO()):
        assert Checks(points=3).score() == 0.0
    with pytest.raises(ValueError, match="positive"):
        Checks(points=0)


@pytest.mark.parametrize("value, message", [
    (None, "got None: does the function return it?"),
    ([1.0, 2.0], "got 2 numbers (shape (2,))"),
    ("0.5", None),
    (float("nan"), "finite"),
    (object(), "should be a number, got a object"),
])
def test_number_explains_what_is_not_a_single_number(value, message):
    if message is None:
        assert number(value) == 0.5
    else:
        with pytest.raises(AssertionError, match=re_escape(message)):
            number(value)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_assert_close_accepts_numpy_and_tensorflow_numbers():
    import tensorflow as tf

    assert_close(np.float32(0.2122), 0.2122)
    assert_close(tf.constant(527.2598), 527.2598, atol=1e-3)
    with pytest.raises(AssertionError, match="loss: expected 0.3, got 0"):
        assert_close(tf.constant([0.0]), 0.3, what="loss")


# ---------------------------------------------------------------- reference answers


def test_reference_loss_gives_the_classic_value_and_the_tensorflow_gradient():
    import tensorflow as tf

    tf.random.set_seed(1)
    triplet = [tf.keras.backend.random_normal([3, 128], mean=m, stddev=s, seed=1) for m, s in ((6, 0.1), (1, 1), (3, 4))]
    assert reference.triplet_loss_value(*triplet, 0.2) == pytest.approx(527.2598, abs=1e-3)

    anchor = tf.Variable(triplet[0])
    with tf.GradientTape() as tape:
        basic = (tf.reduce_sum(tf.square(anchor - triplet[1]), -1) - tf.reduce_sum(tf.square(anchor - triplet[2]), -1) + 0.2)
        loss = tf.reduce_sum(tf.maximum(basic, 0.0))
    np.testing.assert_allclose(tape.gradient(loss, anchor).numpy(),
                               reference.triplet_loss_gradient(*triplet, 0.2), rtol=1e-4, atol=1e-3)


def test_reference_door_decisions_are_strict_and_the_closest_person_wins():
    database = {"a": np.array([[0.0, 0.0]]), "b": np.array([[1.0, 0.0]])}
    assert reference.verify(np.array([[0.5, 0.0]]), "a", database, threshold=0.5) == (0.5, False)
    assert reference.verify(np.array([[0.4, 0.0]]), "a", database, threshold=0.5) == (pytest.approx(0.4), True)
    assert reference.who_is_it(np.array([[0.9, 0.0]]), database, threshold=0.05) == (pytest.approx(0.1), "b", False)


# ---------------------------------------------------------------- hidden triplet-loss tests


def solution(y_true, y_pred, alpha=0.2):
    import tensorflow as tf

    anchor, positive, negative = y_pred[0], y_pred[1], y_pred[2]
    basic = (tf.reduce_sum(tf.square(tf.subtract(anchor, positive)), axis=-1)
             - tf.reduce_sum(tf.square(tf.subtract(anchor, negative)), axis=-1) + alpha)
    return tf.reduce_sum(tf.maximum(basic, 0.0))


def graded(function) -> tuple[float, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        score = hidden.check_triplet_loss({"triplet_loss": function} if function else {}, points=4)
    return score, out.getvalue()


def test_hidden_triplet_tests_give_the_solution_full_marks():
    score, printed = graded(solution)
    assert score == 4.0 and "8 of 8 checks passed" in printed


def test_hidden_triplet_tests_call_positionally_and_ignore_prints():
    def renamed(labels, predictions, margin=0.2):
        print("debugging output that must not matter")
        return solution(labels, predictions, margin)

    score, printed = graded(renamed)
    assert score == 4.0 and "debugging output" not in printed


@pytest.mark.parametrize("wrong, lost", [
    (lambda t, p, a=0.2: solution(t, p, 0.0), 2.5),                      # alpha forgotten
    (lambda t, p, a=0.2: np.float32(solution(t, p, a).numpy()), 1.0),   # right value, not a tensor
    (lambda t, p, a=0.2: solution(t, p, a) * 2, 3.5),                    # wrong value, right type
])
def test_hidden_triplet_tests_take_off_points_for_mistakes(wrong, lost):
    score, _ = graded(wrong)
    assert score == pytest.approx(4.0 - lost)


def test_hidden_tests_report_a_missing_or_crashing_function_without_revealing_themselves():
    score, printed = graded(None)
    assert score == 0.0 and "triplet_loss is not defined" in printed

    def crashes(y_true, y_pred, alpha=0.2):
        raise ValueError("shapes do not match")

    score, printed = graded(crashes)
    assert score == 0.0 and printed.count("ValueError: shapes do not match") == 8
    assert "hidden.py" not in printed and "reference" not in printed


def test_threshold_patch_reaches_globals_helpers_and_defaults_and_is_undone():
    import fr_utils

    real = fr_utils.DISTANCE_THRESHOLD
    namespace = {"DISTANCE_THRESHOLD": real, "T": real, "other": 0.5}
    exec("def verify(a, b, c, d, limit=DISTANCE_THRESHOLD):\n    return DISTANCE_THRESHOLD, T, limit, other", namespace)
    verify = namespace["verify"]
    with callee.threshold_set_to(verify, 0.123):
        assert verify(1, 2, 3, 4) == (0.123, 0.123, 0.123, 0.5)
        assert fr_utils.DISTANCE_THRESHOLD == 0.123
    assert verify(1, 2, 3, 4) == (real, real, real, 0.5)
    assert fr_utils.DISTANCE_THRESHOLD == real
    with pytest.raises(RuntimeError), callee.threshold_set_to(verify, 0.9):
        raise RuntimeError("a failing check")
    assert verify(1, 2, 3, 4) == (real, real, real, 0.5) and fr_utils.DISTANCE_THRESHOLD == real


def test_fr_checks_module_is_self_contained_for_students():
    """The student folder has fr_checks.py: it imports only the standard library and numpy."""
    import ast

    tree = ast.parse(open(fr_checks.__file__, encoding="utf-8").read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"__future__", "contextlib", "math", "sys", "traceback", "numpy"}


def test_cached_encodings_answer_course_photos_from_the_cache_and_are_undone():
    import fr_utils

    real = fr_utils.img_to_encoding

    model = object()
    encodings = {"camera_3.jpg": np.full((1, 128), 0.5, np.float32)}
    namespace = {"img_to_encoding": real, "encode": real}
    exec("def verify(image_path, identity, database, model):\n    return encode(image_path, model)", namespace)
    with callee.cached_encodings(namespace["verify"], model, encodings):
        first = namespace["verify"]("images/camera_3.jpg", "x", {}, model)
        first[0, 0] = 9.0  # a student changing the array in place must not change the cache
        again = namespace["verify"]("images/camera_3.jpg", "x", {}, model)
        assert float(again[0, 0]) == 0.5 and fr_utils.img_to_encoding is not real
    assert namespace["img_to_encoding"] is namespace["encode"] is fr_utils.img_to_encoding is real
