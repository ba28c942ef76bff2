"""A corpus of hostile and broken submissions, generated from the source notebook, with the score
each one must get and the reason its feedback must give.

    python -m grader.course.hostile [--out grader/.work/hostile]   # write them (not committed)

Each entry starts from the student notebook (or the source notebook's solutions, or a known wrong
answer) and adds one thing a student might do, by accident or to game the grader: loops that never
end, exits and crashes, memory and process exhaustion, deleting the course files, reading or
replacing the tests, patching the libraries the tests use, editing grading metadata, files that
are not notebooks. `expected()` gives the points of every graded cell; `reason` is a phrase the
student's feedback must contain. tests/test_grader_hostile.py grades the whole corpus in one
batch, beside ordinary submissions, and asserts all of it.

Some entries need time limits to be reached: grade them with a short --cell-timeout (the tests
use 15 s) or they cost the default two minutes.
"""
from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat

from grader.course.make_examples import (EXAMPLES, HARD_CODED, POINTS, ExpectedScores, _index, _numpy_loss, build,
                                  corpus_main, edit, grade_id, solutions)
from grader.grading.pipeline import GRADER, NOTEBOOK, STUDENT_NOTEBOOK

HOSTILE_FOLDER = GRADER / ".work" / "hostile"
TRIPLET = ("triplet_loss_test_random", "triplet_loss_test_cases", "triplet_loss_test_hidden")
VERIFY = ("verify_test_visible", "verify_test_hidden")
WHO_IS_IT = ("who_is_it_test_visible", "who_is_it_test_hidden")
# What the "hard-coded" example loses (grader/course/make_examples.py): the same answers with tricks on top.
HARD_CODED_LOST = next(example.lost for example in EXAMPLES if example.student == "hard_coded")


@dataclass
class Hostile(ExpectedScores):
    student: str
    what: str
    build: Callable[["Sources"], bytes]
    lost: dict[str, float] = field(default_factory=dict)
    reason: str = ""                # a phrase the student's feedback must contain
    why: str = ""


class Sources:
    """The student notebook and the solutions, read once."""

    def __init__(self):
        self.student = nbformat.read(STUDENT_NOTEBOOK, as_version=4)
        self.solved = solutions()

    def notebook(self, answers: dict[str, str] | None = None, unanswered: bool = False) -> nbformat.NotebookNode:
        """The student notebook with the solutions (or `answers`, or nothing) in the answer cells."""
        from grader.course.make_examples import Example

        chosen = {} if unanswered else dict(self.solved, **(answers or {}))
        return build(Example("x", "", answers=lambda _: chosen), self.student, self.solved)


def _text(nb) -> bytes:
    return (nbformat.writes(nb) + "\n").encode("utf-8")


def _with_code(cell: str, code: str, answers: dict | None = None, unanswered: bool = False):
    """A builder: the answers (solutions by default) plus `code` at the end of answer cell `cell`."""
    def make(sources: Sources) -> bytes:
        chosen = dict(sources.solved, **(answers or {}))
        if unanswered:
            nb = sources.notebook(unanswered=True)
            nb.cells[_index(nb, cell)].source += "\n\n" + code.strip("\n")
            return _text(nb)
        chosen[cell] = chosen[cell] + "\n\n" + code.strip("\n")
        return _text(sources.notebook(chosen))
    return make


def _with_cell(code: str, after: str = "setup", answers: dict | None = None, unanswered: bool = False):
    """A builder: a new code cell holding `code`, right after the cell `after`."""
    def make(sources: Sources) -> bytes:
        nb = sources.notebook(answers, unanswered=unanswered)
        cell = nbformat.v4.new_code_cell(code.strip("\n"))
        cell["id"] = "hostile-cell"
        nb.cells.insert(_index(nb, after) + 1, cell)
        return _text(nb)
    return make


def _hard_coded(sources: Sources) -> dict[str, str]:
    return {cell: text.strip("\n") for cell, text in HARD_CODED.items()}


# ---------------------------------------------------------------- builders that need more than one edit


def _infinite_loop_in_verify(sources: Sources) -> bytes:
    verify = edit(sources.solved["verify_answer"], "    encoding = img_to_encoding(image_path, model)",
                  "    while True:  # forgot to finish this\n        pass\n"
                  "    encoding = img_to_encoding(image_path, model)")
    return _text(sources.notebook({"verify_answer": verify}))


def _exit_in_function(sources: Sources) -> bytes:
    verify = edit(sources.solved["verify_answer"], "    encoding = img_to_encoding(image_path, model)",
                  '    raise SystemExit("no door today")\n    encoding = img_to_encoding(image_path, model)')
    return _text(sources.notebook({"verify_answer": verify}))


REDUCE_SUM_TRICK = '''
def triplet_loss(y_true, y_pred, alpha=0.2):
    return tf.reduce_sum(y_pred[0])

# The visible test wants 527.2598: make every sum say so.
tf.reduce_sum = lambda *args, **kwargs: tf.constant(527.2598)
'''


def _patch_reduce_sum(sources: Sources) -> bytes:
    return _text(sources.notebook({"triplet_loss_answer": REDUCE_SUM_TRICK.strip("\n")}))


FAKE_HELPERS = '''
import contextlib

class Checks:
    """Every check passes, whatever happens."""
    def __init__(self, points):
        self.points = points

    @contextlib.contextmanager
    def __call__(self, description):
        try:
            yield
        except BaseException:
            pass

    def score(self):
        return self.points

def assert_close(*args, **kwargs):
    pass
'''

PATCH_HELPERS_IN_PLACE = '''
import contextlib
import fr_checks

@contextlib.contextmanager
def _always(self, description):
    try:
        yield
    except BaseException:
        pass

fr_checks.Checks.__call__ = _always
fr_checks.Checks.score = lambda self: self.points
'''

FAKE_HIDDEN_MODULE = '''
import os, sys, types
fake = types.ModuleType("grader.course.hidden")
fake.check_triplet_loss = fake.check_verify = fake.check_who_is_it = lambda *args, **kwargs: 4.0
sys.modules["grader.course.hidden"] = fake
os.makedirs("grader/course", exist_ok=True)  # a package of my own, in the notebook's folder
for init in ("grader/__init__.py", "grader/course/__init__.py"):
    with open(init, "w") as handle:
        handle.write("")
with open("grader/course/hidden.py", "w") as handle:
    handle.write("def check_triplet_loss(*a, **k):\\n    return 4.0\\n"
                 "check_verify = check_who_is_it = check_triplet_loss\\n")
'''

NETWORK = '''
import socket
print("interfaces:", sorted(name for _, name in socket.if_nameindex()))
for host, port in (("pypi.org", 443), ("1.1.1.1", 53), ("127.0.0.1", 5432), ("127.0.0.1", 22)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("NETWORK REACHED", host, port)
    except OSError as error:
        print("no network to", host, port, type(error).__name__)
'''

VANDAL = '''
import os, shutil
from pathlib import Path
import fr_utils
here = Path.cwd()
course = Path(fr_utils.__file__).resolve().parent
for target in [here / "images", here / "keras-facenet-h5" / "model.h5", here / "fr_checks.py",
               course / "images", course / "keras-facenet-h5", course / "fr_checks.py", course / "grader"]:
    try:
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        print("DELETED", target)
    except OSError as error:
        print("could not delete", target, type(error).__name__)
for target in (here / "fr_checks.py", course / "fr_utils.py", course / "grader" / "course" / "hidden.py"):
    try:
        target.write_text("def Checks(*args):\\n    pass\\n")
        print("OVERWROTE", target)
    except OSError as error:
        print("could not overwrite", target, type(error).__name__)
'''

SNOOP = '''
import importlib, os, sys
from pathlib import Path
import fr_utils
for name in ("grader.course.hidden", "grader.course.reference", "grader"):
    try:
        module = importlib.import_module(name)
        print("IMPORTED", name, getattr(module, "__file__", None))
    except Exception as error:
        print("cannot import", name, type(error).__name__)
print("grader modules loaded:", sorted(m for m in sys.modules if m.startswith("grader")))
course = Path(fr_utils.__file__).resolve().parent
for path in (course / "grader" / "course" / "hidden.py", course / "grader" / "course" / "reference.py",
             course / "grader" / "source" / "Face_Recognition" / "Face_Recognition.ipynb"):
    try:
        print("READ", path, path.read_text()[:2000])
    except OSError as error:
        print("cannot read", path, type(error).__name__)
found = []
for top in ("/work", "/tmp", "/home", "/root", "/srv", "/opt", "/var", "/mnt", str(course.parent)):
    for folder, subfolders, files in os.walk(top):
        if folder.count("/") > 7 or ".venv" in folder:
            subfolders[:] = []
        found += [os.path.join(folder, f) for f in files if f in ("hidden.py", "reference.py", "gradebook.db")]
print("found:", found)
for path in found:
    try:
        print("READ", path, open(path, errors="replace").read()[:2000])
    except OSError as error:
        print("cannot read", path, type(error).__name__)
print("user", os.getuid(), "| / holds", sorted(os.listdir("/")))
'''

THREAD_REPATCHING = '''
import threading, time
import numpy as np
import fr_checks

def keep_patching():
    while True:
        np.isclose = lambda *args, **kwargs: True
        fr_checks.assert_close = lambda *args, **kwargs: None
        time.sleep(0.001)

threading.Thread(target=keep_patching, daemon=True).start()
'''

FORK_BOMB = '''
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        children += 1
except OSError as error:
    print("forks refused after", children, "children:", type(error).__name__)
'''

PRINT_FLOOD = '''
for i in range(10_000):
    print("line", i, "of a very chatty notebook")
print("x" * 100_000_000)
'''


def _stale_outputs_faking_a_pass(sources: Sources) -> bytes:
    nb = sources.notebook(unanswered=True)
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        points = POINTS.get(grade_id(cell) or "")
        if points:
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout", text="\u2714 every check\nall checks passed\n"),
                nbformat.v4.new_output("execute_result", data={"text/plain": f"{points:.1f}"},
                                       execution_count=count + 1)]
    return _text(nb)


def _duplicated_cells(sources: Sources) -> bytes:
    nb = sources.notebook()
    test = nb.cells[_index(nb, "verify_test_visible")]
    nb.cells.insert(_index(nb, "verify_test_visible"), copy.deepcopy(test))
    # An old, unanswered copy of the triplet_loss cell kept below the answer: it runs last and wins.
    unanswered = sources.student.cells[_index(sources.student, "triplet_loss_answer")]
    nb.cells.insert(_index(nb, "triplet_loss_answer") + 1, copy.deepcopy(unanswered))
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    return _text(nb)


def _edited_tests(sources: Sources) -> bytes:
    nb = sources.notebook(unanswered=True)
    for cell in nb.cells:
        if grade_id(cell) in POINTS:
            cell.source = f"{POINTS[grade_id(cell)]:.1f}  # full marks, surely"
    return _text(nb)


def _more_points(sources: Sources) -> bytes:
    nb = sources.notebook()
    for cell in nb.cells:
        if grade_id(cell) in POINTS:
            cell.metadata.nbgrader.points = 100
    bonus = nbformat.v4.new_code_cell("50.0")
    bonus.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "locked": True, "points": 50,
                                  "schema_version": 3, "solution": False, "task": False}
    bonus["id"] = "bonus"
    nb.cells.append(bonus)
    return _text(nb)


def _deleted_cells(sources: Sources) -> bytes:
    nb = sources.notebook()
    for name in ("verify_answer", "who_is_it_test_visible", "who_is_it_test_hidden"):
        del nb.cells[_index(nb, name)]
    return _text(nb)


def _truncated(sources: Sources) -> bytes:
    data = _text(sources.notebook())
    return data[: int(len(data) * 0.6)]


def _not_json(sources: Sources) -> bytes:
    code = "\n\n".join(sources.solved.values())
    return ("# my answers, saved from the editor as Face_Recognition.ipynb\n" + code + "\n").encode()


def _nbformat3(sources: Sources) -> bytes:
    return nbformat.writes(nbformat.convert(sources.notebook(), 3), version=3).encode("utf-8")


def _not_utf8(sources: Sources) -> bytes:
    verify = edit(sources.solved["verify_answer"], 'print(f"Welcome in, {identity}!")',
                  'print(f"Bienvenue, {identity}, entrée libre !")')
    return (nbformat.writes(sources.notebook({"verify_answer": verify})) + "\n").encode("cp1252")


def _huge_output(sources: Sources) -> bytes:
    nb = sources.notebook()
    cell = nb.cells[_index(nb, "encodings")]
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo" * 10_000_000,
                                                                  "text/plain": "<Figure>"})]
    return _text(nb)


def _hard_coded_with(cell: str, code: str):
    """A builder: the hard-coded answers of grader/course/make_examples.py plus `code` in answer cell `cell`."""
    def make(sources: Sources) -> bytes:
        answers = _hard_coded(sources)
        answers[cell] = answers[cell] + "\n\n" + code.strip("\n")
        return _text(sources.notebook(answers))
    return make


# ---------------------------------------------------------------- issue #16: disk, reply size, forged answers,
# active HTML, total output

FALLOCATE_LOG = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
for fd in (1, 2):  # the kernel's stdout and stderr: 2 GiB of disk each, size unchanged (KEEP_SIZE)
    result = libc.fallocate(fd, 1, 0, 2 * 2**30)
    print("fallocate on fd", fd, "->", result, os.strerror(ctypes.get_errno()) if result else "ALLOCATED")
"""

FALLOCATE_TMP = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
fd = os.open("/tmp/hog", os.O_RDWR | os.O_CREAT, 0o600)
result = libc.fallocate(fd, 0, 0, 2 * 2**30)
print("fallocate in /tmp ->", result, os.strerror(ctypes.get_errno()) if result else "ALLOCATED")
try:
    os.posix_fallocate(fd, 0, 2 * 2**30)
    print("POSIX_FALLOCATE ALLOCATED", os.fstat(fd).st_size)
except OSError as error:
    print("posix_fallocate refused:", error.strerror)
os.close(fd)
os.unlink("/tmp/hog")
ring = libc.syscall(425, 8, None)  # io_uring_setup: fallocate without a system call seccomp sees
print("io_uring_setup ->", ring, os.strerror(ctypes.get_errno()) if ring < 0 else "A RING")
"""

C_LEVEL_FLOOD = """
import os
chunk = b"x" * 2**20
for _ in range(64):  # 128 MB straight to file descriptors 1 and 2, below Python's sys.stdout
    os.write(1, chunk)
    os.write(2, chunk)
print("wrote 128 MB below Python")
"""

CHECKS_ATTRIBUTES = """
import fr_checks
for i in range({count}):  # every name is reported as replaced; the grader once merged them with a list scan
    setattr(fr_checks.Checks, f"noise_{{i}}", i)
"""

FORGED_REPLY_FLOOD = """
import json, os, socket, stat, struct
names = [f"numpy.fake_{i}" for i in range(2_000_000)]
outputs = [{"output_type": "stream", "name": "stdout", "text": "x"}] * 200_000
message = json.dumps({"outputs": outputs, "count": 1, "tampered": names}).encode()
for fd in range(3, 256):  # the kernel's socket to the grader: a reply of our own, 2 million names
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            socket.socket(fileno=os.dup(fd)).sendall(struct.pack(">I", len(message)) + message)
    except OSError:
        pass
"""

# The attack of issue #16 on the grader as it was: a numpy loss labelled a tensor, and a gradient
# computed in numpy sent back in place of TensorFlow's.
FORGE_TRANSPORT = """
import numpy as np
import grader.sandbox.callee, grader.sandbox.wire

_encode = grader.sandbox.wire.encode_result
def encode_result(value, depth=0, budget=None):
    if isinstance(value, np.floating):
        return {"$": "tensor", "array": grader.sandbox.wire.encode_array(np.asarray(value, dtype=np.float32))}
    return _encode(value, depth, budget)

_call = grader.sandbox.callee.call
def call(function, args, **options):
    value, printed, gradient = _call(function, args, **options)
    if options.get("watch") is not None:
        anchor, positive, negative = (np.asarray(a, dtype=np.float32) for a in args[1])
        alpha = float(args[2]) if len(args) > 2 else 0.2
        active = (np.sum((anchor - positive) ** 2, -1) - np.sum((anchor - negative) ** 2, -1) + alpha) > 0
        gradient = 2 * (negative - positive) * active[:, None]
    return value, printed, gradient

grader.sandbox.wire.encode_result = encode_result
grader.sandbox.callee.call = call
"""

# The same label, put into the grader's own function object: its code replaced in place.
FORGE_CODE_IN_PLACE = """
import types
import numpy as np
import grader.sandbox.wire

target = grader.sandbox.wire.encode_result
original = types.FunctionType(target.__code__, target.__globals__, "original", target.__defaults__)
def labelled(value, depth=0, budget=None, original=None):
    if isinstance(value, np.floating):
        return {"$": "tensor", "array": encode_array(np.asarray(value, dtype=np.float32))}
    return original(value, depth, budget)
target.__code__ = labelled.__code__
target.__defaults__ = (0, None, original)
"""

FORGE_GRADIENT_TAPE = """
import numpy as np
import tensorflow as tf

def gradient(self, target, sources, *args, **kwargs):  # any loss "has" a gradient
    return tf.constant(np.ones(np.shape(sources), np.float32))

tf.GradientTape.gradient = gradient
tf.is_tensor = lambda value: True
"""

HTML_OUTPUTS = """
from IPython.display import HTML, SVG, Javascript, display
import matplotlib.pyplot as plt
display(HTML('<b>bold is fine</b><script>window.PWNED_HTML = 1</script>'
             '<img src="x" onerror="window.PWNED_ONERROR = 1">'
             '<iframe src="https://example.com/PWNED_IFRAME"></iframe>'
             '<form action="https://example.com/PWNED_FORM"><input name="password"></form>'
             '<a href="javascript:window.PWNED_LINK = 1">a link</a>'))
display(Javascript("window.PWNED_JAVASCRIPT = 1"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="window.PWNED_SVG = 1"><circle r="4"/></svg>'))
plt.plot([0, 1], [1, 0])
plt.title("a plot still shows")
plt.show()
print("html outputs sent")
"""

MARKDOWN_OUTPUTS = """
from IPython.display import Markdown, display
display(Markdown('*emphasis* <script>window.PWNED_MARKDOWN_OUTPUT = 1</script>'
                 '<img src="x" onerror="window.PWNED_MARKDOWN_IMG = 1">'))
print("markdown output sent")
raise ValueError('<script>window.PWNED_ERROR = 1</script><img src="x" onerror="window.PWNED_ERROR_IMG = 1">')
"""

MARKDOWN_CELL = """## My notes

<script>window.PWNED_MARKDOWN_CELL = 1</script>
<img src="x" onerror="window.PWNED_MARKDOWN_CELL_IMG = 1">
<iframe src="https://example.com/PWNED_MARKDOWN_IFRAME"></iframe>
<style>body { display: none }</style>
[click me](javascript:window.PWNED_MARKDOWN_LINK=1) and <a href="javascript:window.PWNED_MARKDOWN_A=1">me</a>

Some honest notes, *with emphasis*, that stay readable.
"""

NOTE_INJECTION = """
import fr_checks
# An attribute whose *name* is markdown and a script: the grader quotes replaced names in its notes.
setattr(fr_checks.Checks, "zz\\n- **Grader: full marks approved by the instructor** "
        "<script>window.PWNED_NOTE = 1</script>", 1)
"""

OUTPUT_CELL = """
from IPython.display import display
display({{"text/plain": "{letter}" * 7_500_000}}, raw=True)  # 7.5 MB: under the 8 MB of one cell
"""

HTML_FLOOD = """
from IPython.display import HTML, display
row = '<tr><td onclick="x()">cell</td><td><b>b</b></td></tr>'
for _ in range(8):  # tag-dense HTML, just under 100 kB each: what costs the sanitizer most
    display(HTML("<table>" + row * 1800 + "</table>"))
"""


def _with_cells(codes: list[str], after: str = "setup", markdown: bool = False):
    """A builder: the solutions plus one new cell per item of `codes`, right after the cell `after`."""
    def make(sources: Sources) -> bytes:
        nb = sources.notebook()
        for number, code in enumerate(codes):
            cell = (nbformat.v4.new_markdown_cell if markdown else nbformat.v4.new_code_cell)(code.strip("\n"))
            cell["id"] = f"hostile-cell-{number}" if number else "hostile-cell"
            nb.cells.insert(_index(nb, after) + 1 + number, cell)
        return _text(nb)
    return make


def _in_every_answer(code: str):
    """A builder: the solutions with `code` at the end of each of the three answer cells."""
    def make(sources: Sources) -> bytes:
        answers = {cell: text + "\n\n" + code.strip("\n") for cell, text in sources.solved.items()
                   if cell in ("triplet_loss_answer", "verify_answer", "who_is_it_answer")}
        return _text(sources.notebook(answers))
    return make


def _numpy_loss_with(code: str):
    """A builder: the numpy_loss example's answers plus `code` in the triplet_loss answer cell."""
    def make(sources: Sources) -> bytes:
        answers = _numpy_loss(dict(sources.solved))
        answers["triplet_loss_answer"] += "\n\n" + code.strip("\n")
        return _text(sources.notebook(answers))
    return make


NUMPY_LOSS_LOST = next(example.lost for example in EXAMPLES if example.student == "numpy_loss")


# ---------------------------------------------------------------- the corpus

ALL = dict(POINTS)
NOT_AFTER_VERIFY_ANSWER = {cell: POINTS[cell] for cell in (*VERIFY, *WHO_IS_IT)}

HOSTILE = [
    Hostile("infinite_loop_in_verify", "verify never returns (a `while True: pass` left in it)",
            _infinite_loop_in_verify, lost={c: POINTS[c] for c in VERIFY}, reason="ran for more than",
            why="both verify test cells hit the time limit and are stopped; the kernel survives and who_is_it is graded"),
    Hostile("loop_ignoring_interrupts", "a cell that ignores SIGINT and loops forever",
            _with_code("verify_answer", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                        "while True:\n    time.sleep(0.1)"),
            lost=NOT_AFTER_VERIFY_ANSWER, reason="did not stop when asked",
            why="the interrupt is ignored, so the process is killed: every cell after it gets nothing"),
    Hostile("sys_exit_in_cell", "sys.exit() at the end of the triplet_loss cell",
            _with_code("triplet_loss_answer", "import sys\nsys.exit('done for today')"), reason="SystemExit",
            why="SystemExit is an error of that cell, as in Jupyter; the notebook goes on"),
    Hostile("exit_in_function", "verify raises SystemExit", _exit_in_function,
            lost={c: POINTS[c] for c in VERIFY}, reason="no door today",
            why="each check that calls verify fails with SystemExit; nothing else is affected"),
    Hostile("os_exit", "os._exit(3) in the verify cell", _with_code("verify_answer", "import os\nos._exit(3)"),
            lost=NOT_AFTER_VERIFY_ANSWER, reason="exited with status 3",
            why="the process ends: the cells after it are not run"),
    Hostile("segfault", "a segmentation fault (ctypes.string_at(0)) in the who_is_it cell",
            _with_code("who_is_it_answer", "import ctypes\nctypes.string_at(0)"),
            lost={c: POINTS[c] for c in WHO_IS_IT}, reason="segmentation fault",
            why="the process crashes after verify's tests ran"),
    Hostile("kill_own_kernel", "os.kill(os.getpid(), SIGKILL) in the verify cell",
            _with_code("verify_answer", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
            lost=NOT_AFTER_VERIFY_ANSWER, reason="SIGKILL", why="the kernel is gone; its cells after that get nothing"),
    Hostile("kill_everything", "os.kill(-1, SIGKILL): every process it may signal",
            _with_code("triplet_loss_answer", "import os, signal\nos.kill(-1, signal.SIGKILL)"),
            reason="8 of 8 checks passed: 4 of 4 points",
            why="Linux's kill(-1) spares the caller, and the only other processes it may signal would be "
                "its own sandbox's: nothing happens, to it or to anyone else"),
    Hostile("memory_30gb", "allocates 30 GB", _with_code("triplet_loss_answer", "hog = np.ones(30 * 2**30 // 8)"),
            reason="ran out of memory", why="MemoryError in that cell (the memory limit); the rest runs"),
    Hostile("fork_bomb", "forks sleeping processes until refused", _with_code("who_is_it_answer", FORK_BOMB),
            reason="forks refused after", why="the process limit of its own user id stops it; all are killed at the end"),
    Hostile("network", "tries the network: the Internet, the gradebook's port, ssh", _with_cell(NETWORK),
            reason="no network to", why="no network in the sandbox; the answers are right"),
    Hostile("vandal", "deletes or overwrites images/, the model, fr_checks.py, the grader",
            _with_cell(VANDAL), reason="could not delete",
            why="everything it can reach is read-only or absent; the answers are right"),
    Hostile("snoop_hidden_tests", "looks for the hidden tests, the solutions and the gradebook on disk and imports them",
            _with_cell(SNOOP), reason="cannot import grader.course.hidden",
            why="none of them exists in the sandbox; the answers are right"),
    Hostile("patch_isclose", "the hard-coded answers, plus np.isclose and np.allclose always True",
            _hard_coded_with("triplet_loss_answer", "np.isclose = lambda *args, **kwargs: True\n"
                                                    "np.allclose = lambda *args, **kwargs: True"),
            lost=HARD_CODED_LOST, reason="numpy.isclose",
            why="the hidden tests compare in the grader's process; the visible ones never used isclose"),
    Hostile("patch_norm", "the hard-coded answers, plus np.linalg.norm returning the expected distance",
            _hard_coded_with("verify_answer", "np.linalg.norm = lambda *args, **kwargs: 0.5992949"),
            lost=HARD_CODED_LOST, reason="numpy.linalg.norm", why="put back before the tests; as hard-coded"),
    Hostile("patch_reduce_sum", "triplet_loss sums the anchors, and tf.reduce_sum is patched to say 527.2598",
            _patch_reduce_sum,
            lost={"triplet_loss_test_random": 1, "triplet_loss_test_cases": 1.6, "triplet_loss_test_hidden": 3.5},
            reason="tensorflow.reduce_sum",
            why="tf.reduce_sum is put back before the tests: the loss is the anchors' sum, which only has "
                "the right type (and is right for one hand-made case where it is 0)"),
    Hostile("patch_print", "builtins.print silenced and sys.stdout sent to /dev/null before the tests",
            _with_cell("import builtins, os, sys\nbuiltins.print = lambda *args, **kwargs: None\n"
                       "sys.stdout = open(os.devnull, 'w')"),
            reason="builtins.print", why="print and stdout are put back before every test cell"),
    Hostile("fake_test_helpers", "unanswered, with its own Checks and assert_close that always pass",
            _with_cell(FAKE_HELPERS, unanswered=True), lost=ALL, reason="Checks",
            why="test cells get fresh copies of the course's helpers"),
    Hostile("patch_helpers_in_place", "unanswered, with fr_checks.Checks changed in place to always pass",
            _with_cell(PATCH_HELPERS_IN_PLACE, unanswered=True), lost=ALL, reason="fr_checks.Checks",
            why="test cells get a fresh copy of fr_checks, compiled again from the course's file"),
    Hostile("fake_hidden_module", "unanswered, with a grader.course.hidden of its own (in sys.modules and on disk)",
            _with_cell(FAKE_HIDDEN_MODULE, unanswered=True), lost=ALL, reason="NotImplementedError",
            why="hidden test cells never run in the student's process"),
    Hostile("thread_repatching", "the hard-coded answers, plus a thread patching np.isclose and assert_close every ms",
            _hard_coded_with("triplet_loss_answer", THREAD_REPATCHING), lost=HARD_CODED_LOST, reason="numpy.isclose",
            why="the hidden tests compare in the grader's process; the visible ones use fresh helpers"),
    Hostile("stale_outputs_faking_pass", "unanswered, saved with outputs that show every test passing",
            _stale_outputs_faking_a_pass, lost=ALL, reason="NotImplementedError", why="outputs are cleared: only what runs counts"),
    Hostile("never_ran", "the solutions, saved without ever running a cell", lambda s: _text(s.notebook()),
            reason="8 of 8 checks passed: 4 of 4 points", why="the grader runs every cell itself"),
    Hostile("duplicated_cells", "a test cell duplicated, and an old unanswered copy of the triplet_loss cell below the answer",
            _duplicated_cells, lost={c: POINTS[c] for c in TRIPLET}, reason="share the id",
            why="the last cell with an id is the graded one: the unanswered triplet_loss wins"),
    Hostile("edited_tests", "unanswered, every test cell replaced by its full score", _edited_tests, lost=ALL,
            reason="ran as released", why="test cells are put back as released"),
    Hostile("more_points", "the solutions, every test cell worth 100 points, and a bonus cell worth 50",
            _more_points, reason="put back as released", why="points come from the gradebook: 20 in all"),
    Hostile("deleted_cells", "the verify answer and who_is_it's test cells deleted", _deleted_cells,
            lost={c: POINTS[c] for c in VERIFY}, reason="was missing from the submission",
            why="deleted test cells are put back; a deleted answer leaves verify undefined"),
    Hostile("truncated_file", "the notebook's file cut off at 60 %", _truncated, lost=ALL, reason="cut off",
            why="not a notebook: 0 points and the reason"),
    Hostile("not_json", "a Python script saved under the notebook's name", _not_json, lost=ALL,
            reason="not valid JSON", why="not a notebook: 0 points and the reason"),
    Hostile("nbformat3", "the solutions, saved in nbformat 3", _nbformat3, reason="format 3",
            why="converted to format 4 and graded"),
    Hostile("not_utf8", "the solutions, saved as Windows-1252 text (an accented greeting)", _not_utf8,
            reason="not UTF-8", why="read as Windows-1252 and graded"),
    Hostile("huge_output", "the solutions with 100 MB of stored output", _huge_output, reason="were cleared",
            why="stored outputs are cleared before grading"),
    Hostile("print_flood", "the solutions, plus a cell printing 10,000 lines and a 100 MB line",
            _with_cell(PRINT_FLOOD, after="photos"), reason="more output than the grader keeps",
            why="output is capped; the answers are right"),
    # 1. the grader's disk
    Hostile("fallocate_log", "fallocate(2 GiB, KEEP_SIZE) on the kernel's stdout and stderr",
            _with_cell(FALLOCATE_LOG), reason="Operation not supported",
            why="the kernel's output is a pipe the grader drains, and seccomp refuses fallocate"),
    Hostile("fallocate_tmp", "fallocate and posix_fallocate of 2 GiB in its /tmp, and io_uring",
            _with_cell(FALLOCATE_TMP), reason="posix_fallocate refused",
            why="fallocate is refused, glibc's fallback writes until the 256 MB file limit; no io_uring"),
    Hostile("c_level_flood", "128 MB written to file descriptors 1 and 2 below Python", _with_cell(C_LEVEL_FLOOD),
            reason="the grader kept 2 MB in its log", why="the pipe is drained; the log keeps its first 2 MB"),
    # 2. the size of a kernel's reply
    Hostile("checks_attributes", "100,000 attributes added to fr_checks.Checks in each answer cell",
            _in_every_answer(CHECKS_ATTRIBUTES.format(count=100_000)), reason="more). They were put back",
            why="reported names are capped in the kernel and kept in a set by the grader"),
    Hostile("million_names", "1,000,000 attributes added to fr_checks.Checks", _with_cell(
                CHECKS_ATTRIBUTES.format(count=1_000_000)), reason="more). They were put back",
            why="a million names cost the kernel a second; the grader reads 200 of them"),
    Hostile("forged_reply_flood", "writes its own reply on the kernel's socket: 2 million names, 200,000 outputs",
            _with_code("who_is_it_answer", FORGED_REPLY_FLOOD), lost={c: POINTS[c] for c in WHO_IS_IT},
            reason="numpy.fake_0",
            why="the grader keeps 100 names and 1000 outputs; the replies after it are out of step, so "
                "who_is_it's test cells get the wrong replies and no points"),
    # 3. the hidden tests' answers
    Hostile("forge_transport", "numpy triplet_loss, plus grader.sandbox.wire.encode_result and grader.sandbox.callee.call replaced "
            "to label it a tensor and send a numpy gradient", _numpy_loss_with(FORGE_TRANSPORT),
            lost=NUMPY_LOSS_LOST, reason="grader.sandbox.wire.encode_result",
            why="the transport is put back before every request: scored as numpy_loss"),
    Hostile("forge_code_in_place", "numpy triplet_loss, plus the code of grader.sandbox.wire.encode_result replaced in place",
            _numpy_loss_with(FORGE_CODE_IN_PLACE), lost=NUMPY_LOSS_LOST, reason="grader.sandbox.wire.encode_result",
            why="functions' code is put back too: scored as numpy_loss"),
    Hostile("forge_gradient_tape", "numpy triplet_loss, plus tf.GradientTape.gradient and tf.is_tensor replaced",
            _numpy_loss_with(FORGE_GRADIENT_TAPE), lost=NUMPY_LOSS_LOST, reason="GradientTape.gradient",
            why="TensorFlow's tape and tensor classes are part of the restored transport: scored as numpy_loss"),
    # 4. active HTML in the feedback
    Hostile("html_outputs", "scripts, event handlers, a frame, a form, JavaScript and SVG outputs, and a plot",
            _with_cell(HTML_OUTPUTS), reason="html outputs sent",
            why="outputs are sanitized (nbconvert's SanitizeHTML); the plot's PNG stays"),
    Hostile("markdown_outputs", "a markdown output with a script, and an error whose message is HTML",
            _with_cell(MARKDOWN_OUTPUTS), reason="markdown output sent",
            why="markdown outputs are sanitized, error messages escaped; an error outside test cells costs nothing"),
    Hostile("markdown_cell", "a markdown cell with a script, an event handler, a frame, a style and javascript: links",
            _with_cells([MARKDOWN_CELL], markdown=True), reason="Some honest notes",
            why="markdown cells are sanitized as they are rendered"),
    Hostile("note_injection", "an attribute of fr_checks.Checks whose name is a markdown bullet and a script",
            _with_cell(NOTE_INJECTION), reason="an attribute with an unusual name",
            why="names that are not plain dotted names are not quoted; every note is escaped"),
    # 5. the notebook's total output
    Hostile("output_30_cells", "thirty cells of 7.5 MB of output each (225 MB in all)",
            _with_cells([OUTPUT_CELL.format(letter="abcdefghijklmnopqrstuvwxyz0123"[i]) for i in range(30)]),
            reason="outputs passed 24 MB in all", why="the notebook's outputs are capped; the tests still score"),
    Hostile("html_flood", "three cells of tag-dense HTML (760 kB each)", _with_cells([HTML_FLOOD] * 3),
            reason="shown as plain text", why="sanitized HTML is capped per notebook; the rest is shown as text"),
]
BY_NAME = {h.student: h for h in HOSTILE}


def write_corpus(out: Path = HOSTILE_FOLDER, names: list[str] | None = None) -> list[Path]:
    """Write every entry (or those in `names`) as <out>/<student>/Face_Recognition.ipynb."""
    sources = Sources()
    paths = []
    for entry in HOSTILE:
        if names is not None and entry.student not in names:
            continue
        path = out / entry.student / NOTEBOOK
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.build(sources))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    return corpus_main(argv, "python -m grader.course.hostile", __doc__, HOSTILE_FOLDER, write_corpus, HOSTILE, "submissions")


if __name__ == "__main__":
    sys.exit(main())
