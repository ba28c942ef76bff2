"""What runs in the student's process when the hidden tests call one of the student's functions.

The hidden tests (grader/course/hidden.py) decide what to call, with which inputs, and judge the
results. Only the call itself happens where the student's function lives:

- in nbgrader's own kernel (the stock `nbgrader autograde` flow), hidden.py calls these helpers
  directly;
- in the grader's sandbox (`python -m grader.grade`), the kernel calls them on the grader's
  request (grader/sandbox/kernel.py), and hidden.py, running in the grader's process, only sees what
  the function returned and printed.

Nothing here is secret: no test input, no expected value. The helpers make the course photos'
encodings cheap to get again (`cached_encodings`) and let a test move the distance threshold to
a chosen value (`threshold_set_to`).
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Callable, Iterable

import numpy as np

# The course photos the hidden tests use: the twelve people of the database and the six camera shots.
DATABASE_FILES = {
    "andrew": "andrew.jpg", "arnaud": "arnaud.jpg", "benoit": "benoit.jpg",
    "bertrand": "bertrand.jpg", "dan": "dan.jpg", "danielle": "danielle.png",
    "felix": "felix.jpg", "kevin": "kevin.jpg", "kian": "kian.jpg",
    "sebastiano": "sebastiano.jpg", "tian": "tian.jpg", "younes": "younes.jpg",
}
CAMERA_FILES = tuple(f"camera_{i}.jpg" for i in range(6))
PHOTO_FILES = (*DATABASE_FILES.values(), *CAMERA_FILES)
PHOTO_FOLDER = "images"


def photo_path(file: str) -> str:
    """The path a notebook uses for a course photo (relative to the notebook's folder)."""
    return f"{PHOTO_FOLDER}/{file}"


def encode_course_photos(model, folder: str = PHOTO_FOLDER) -> dict[str, np.ndarray]:
    """{file: encoding} of every course photo, computed the way the notebook's helper does."""
    import fr_utils

    return {file: np.asarray(fr_utils.img_to_encoding(f"{folder}/{file}", model)) for file in PHOTO_FILES}


def course_threshold() -> float:
    import fr_utils

    return float(fr_utils.DISTANCE_THRESHOLD)


def _helper_modules() -> list:
    import fr_utils

    modules = [fr_utils]
    try:
        import facerec.encode

        modules.append(facerec.encode)
    except ImportError:
        pass
    return modules


@contextlib.contextmanager
def threshold_set_to(function, value: float):
    """Make `function` see `value` wherever it reads the course's distance threshold.

    That is every global of the notebook holding the threshold's value (DISTANCE_THRESHOLD under
    any name, also as seen by helper functions), the helpers' module attribute, and default
    arguments equal to it. A number typed into the function itself cannot be changed.
    """
    real = course_threshold()
    namespace = getattr(function, "__globals__", {})
    saved_globals = {k: v for k, v in namespace.items()
                     if isinstance(v, (float, np.floating)) and not isinstance(v, bool) and v == real}
    saved_defaults = getattr(function, "__defaults__", None)
    saved_modules = [(m, m.DISTANCE_THRESHOLD) for m in _helper_modules() if hasattr(m, "DISTANCE_THRESHOLD")]
    try:
        for key in saved_globals:
            namespace[key] = value
        for module, _ in saved_modules:
            module.DISTANCE_THRESHOLD = value
        if saved_defaults:
            function.__defaults__ = tuple(value if isinstance(d, float) and d == real else d
                                          for d in saved_defaults)
        yield
    finally:
        namespace.update(saved_globals)
        for module, old in saved_modules:
            module.DISTANCE_THRESHOLD = old
        if saved_defaults:
            function.__defaults__ = saved_defaults


@contextlib.contextmanager
def cached_encodings(function, model, encodings: dict[str, np.ndarray]):
    """While the hidden tests run, `img_to_encoding` of a course photo with the hidden tests'
    `model` returns the encoding already computed for it (a copy) instead of detecting, aligning
    and encoding the face again: the same result, a few seconds less per submission.

    It is replaced where a student's function can reach it: the notebook's globals (under any
    name), and the helper modules. Any other call goes to the real function.
    """
    import fr_utils

    real = fr_utils.img_to_encoding
    by_path = {photo_path(file): file for file in encodings}

    def img_to_encoding(image_path, model_, *args, **kwargs):
        file = by_path.get(str(image_path)) if isinstance(image_path, (str, os.PathLike)) else None
        if file is not None and model_ is model and not args and not kwargs:
            return encodings[file].copy()
        return real(image_path, model_, *args, **kwargs)

    namespace = getattr(function, "__globals__", {})
    names = [name for name, value in namespace.items() if value is real]
    modules = [module for module in _helper_modules() if getattr(module, "img_to_encoding", None) is real]
    try:
        for name in names:
            namespace[name] = img_to_encoding
        for module in modules:
            module.img_to_encoding = img_to_encoding
        yield
    finally:
        for name in names:
            namespace[name] = real
        for module in modules:
            module.img_to_encoding = real


def call(function: Callable, args: Iterable, *, model=None, encodings=None, threshold: float | None = None,
         watch: list[int] | None = None, out: io.StringIO | None = None, defer_gradient: bool = False):
    """Call `function(*args)` as a hidden test does; return (value, printed, gradient).

    With `encodings`, course photos encoded with `model` come from them (see cached_encodings).
    With `threshold`, the function sees that distance threshold. With `watch`, the path of a
    tensor inside `args` (e.g. [1, 0]: the first item of the second argument), the gradient of
    the returned value with respect to that tensor is computed too (None if there is none).
    What the function printed, on stdout or stderr, is captured (into `out` if given, so that it
    is kept when the function raises) and returned, not shown. Errors raised by the function
    propagate. With `defer_gradient`, the third item is (tape, watched tensor) instead of the
    gradient, for a caller that computes it once it has put the libraries back (grader.sandbox.kernel).
    """
    args = list(args)
    out = io.StringIO() if out is None else out
    with contextlib.ExitStack() as stack:
        if encodings is not None:
            stack.enter_context(cached_encodings(function, model, encodings))
        if threshold is not None:
            stack.enter_context(threshold_set_to(function, threshold))
        if watch is None:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                value = function(*args)
            return value, out.getvalue(), None
        import tensorflow as tf

        target = args
        for index in watch:
            target = target[index]
        with tf.GradientTape() as tape:
            tape.watch(target)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                value = function(*args)
        if defer_gradient:
            return value, out.getvalue(), (tape, target)
        gradient = tape.gradient(value, target) if tf.is_tensor(value) else None
        return value, out.getvalue(), gradient
