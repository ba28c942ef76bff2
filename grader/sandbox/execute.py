"""Running a submission in the grader's sandbox, from the grader's side.

`SandboxExecute` takes the place of nbgrader's `Execute` preprocessor in `autograde` (see
grader.grading.pipeline.sandbox_config): nbgrader still sanitizes the notebook, puts back deleted test
cells and test code, scores every graded cell from its outputs, saves the grades and writes the
feedback. Only the execution differs:

- the notebook runs in a fresh kernel forked from the zygote (grader/sandbox/zygote.py), isolated, with
  limits per cell, per notebook and on memory;
- a hidden test cell is never sent to the kernel. When the notebook reaches it, the hidden tests
  run here, in the grader's process (grader.course.hidden with a `RemoteStudent`), and only each call of
  the student's function goes to the kernel. Test code, expected values and comparisons never
  exist in the student's process;
- what the kernel sends back is validated: a test cell must end with its score; text of the
  hidden tests or of the solutions is removed from any output;
- what went wrong (a time limit, a crash, a replaced library, a file that was not a notebook)
  is written in a note at the top of the graded notebook, so the student's feedback says it.
"""
from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nbgrader import utils as nbutils
from nbgrader.preprocessors import NbGraderPreprocessor

from grader.course import hidden
from grader.sandbox import wire
from grader.sandbox.kernel import MAX_CELL_OUTPUT_BYTES
from grader.sandbox.kernel import MAX_OUTPUTS as MAX_OUTPUTS_PER_CELL  # a forged reply may hold more: cut here too
from grader.grading.pipeline import MAX_SANITIZED_CHARS, MAX_SANITIZED_PER_NOTEBOOK, sanitize_outputs

GRADER = Path(__file__).resolve().parent.parent
REPOSITORY = GRADER.parent
HIDDEN_FUNCTIONS = ("check_triplet_loss", "check_verify", "check_who_is_it")
INTERRUPT_GRACE = 3.0   # seconds a kernel gets to stop a cell after an interrupt
START_TIMEOUT = 60.0
# What the kernel writes below Python (C libraries, os.write(2, ...)) goes through a pipe into the
# student's log, up to this many bytes; the rest is read and dropped.
KERNEL_LOG_BYTES = 2 << 20
# All the outputs of one notebook, as the graded notebook and the feedback hold them.
NOTEBOOK_OUTPUT_BYTES = 24 << 20
# Names of replaced library attributes the grader keeps (and reads per reply).
MAX_TAMPERED_NAMES = 100
# Seconds the grader may spend on one reply of a kernel (reading its outputs, its names).
HANDLING_SECONDS = 30.0
SIGNALS = {signal.SIGSEGV: "a segmentation fault (SIGSEGV): the process crashed",
           signal.SIGKILL: "SIGKILL: killed, for instance for using too much memory",
           signal.SIGABRT: "SIGABRT: the process aborted",
           signal.SIGBUS: "SIGBUS: a memory access error", signal.SIGFPE: "SIGFPE: an arithmetic error",
           signal.SIGXCPU: "SIGXCPU: the CPU-time limit", signal.SIGTERM: "SIGTERM",
           signal.SIGINT: "SIGINT"}


class KernelDied(BaseException):
    """The kernel ended; `reason` says how, in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class GraderOverrun(BaseException):
    """The grader's own handling of a kernel's reply took longer than HANDLING_SECONDS."""


@contextlib.contextmanager
def handling_budget(seconds: float = HANDLING_SECONDS):
    """Stop the grader's work on one reply after `seconds` (wall clock) with GraderOverrun, so
    that one submission cannot hold its worker for hours. Only in a process's main thread (where
    nbgrader runs in a worker); elsewhere nothing is limited."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def overrun(*_):
        raise GraderOverrun()

    previous = signal.signal(signal.SIGALRM, overrun)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class KernelTimeout(BaseException):
    """A request ran out of time. `stopped`: the kernel stopped the cell when interrupted (it is
    still usable); `reply`: its answer then, if any."""

    def __init__(self, stopped: bool, reply: dict | None = None):
        super().__init__("time limit")
        self.stopped, self.reply = stopped, reply


# ---------------------------------------------------------------- settings and the current job


@dataclass
class SandboxSettings:
    socket: str
    encodings: str
    cell_timeout: float = 120.0
    notebook_timeout: float = 600.0
    memory_bytes: int = 6 << 30
    threads: int = 1
    threshold: float = 0.0    # the course's DISTANCE_THRESHOLD, as the kernels see it

    def limits_text(self) -> str:
        return (f"{self.cell_timeout:g} s per cell, {self.notebook_timeout:g} s per notebook, "
                f"{self.memory_bytes / (1 << 30):g} GB of memory")


@dataclass
class Job:
    """What the worker tells SandboxExecute about the submission it is grading."""

    student: str
    settings: SandboxSettings
    log: Path
    rejected: str | None = None            # why the file is not graded at all (not a notebook...)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cells: list[dict] = field(default_factory=list)   # per cell: kind, seconds


CURRENT: Job | None = None


# ---------------------------------------------------------------- the zygote, from the grading command


class Zygote:
    """The zygote process of a grading run (see grader/sandbox/zygote.py)."""

    def __init__(self, hidden_paths: list[Path], log: Path, cache: Path | None = None):
        """`cache`: where the course photos' encodings are kept between runs (the zygote's
        ENCODINGS_CACHE, in the course's data/ folder, unless given)."""
        self.folder = Path(tempfile.mkdtemp(prefix="fr-zygote-"))
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log, "a")
        environment = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
        environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
        command = [sys.executable, "-m", "grader.sandbox.zygote", "--dir", str(self.folder)]
        for path in hidden_paths:
            command += ["--hidden", str(Path(path).resolve())]
        if cache is not None:
            command += ["--cache", str(Path(cache).resolve())]
        self.process = subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE,
                                        stderr=self.log, stdin=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        try:
            self.ready = json.loads(line)
        except ValueError:
            self.close()
            raise RuntimeError(f"the grading sandbox did not start (see {log})") from None
        self.socket, self.encodings = self.ready["socket"], self.ready["encodings"]
        self.isolation = self.ready["isolation"]

    def settings(self, **limits) -> SandboxSettings:
        return SandboxSettings(socket=self.socket, encodings=self.encodings, threshold=self.ready["threshold"],
                               **limits)

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- one kernel


class KernelSession:
    """A kernel forked for one submission, and the requests sent to it."""

    def __init__(self, settings: SandboxSettings, notebook_text: str, log: Path):
        self.settings = settings
        self.status = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.channel, theirs = socket.socketpair()
        self.pidfd = None
        self.dead: str | None = None
        self.tampered: dict[str, None] = {}   # names in the order first seen; a dict for O(1) tests
        self.tampered_more = 0                # names beyond MAX_TAMPERED_NAMES, not kept
        self.inconsistent = False             # a hidden test's reply the grader did not believe
        # The kernel's file descriptors 1 and 2: a pipe drained here, never a file of the grader's.
        output, kernel_output = os.pipe()
        self.drain = LogDrain(output, log)
        try:
            self.status.connect(settings.socket)
            socket.send_fds(self.status, [b"F"], [theirs.fileno(), kernel_output])
            wire.send(self.status, {
                "notebook_name": "Face_Recognition.ipynb", "notebook": notebook_text,
                "memory_bytes": settings.memory_bytes, "threads": settings.threads,
                "cpu_seconds": int(settings.notebook_timeout * max(settings.threads, 1) + 60)})
        finally:
            theirs.close()
            os.close(kernel_output)
        message, fds, _, _ = _receive_fds(self.status, time.monotonic() + START_TIMEOUT)
        event = json.loads(message)
        if event.get("event") != "started" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(event.get("message") or "the sandbox did not start a kernel")
        self.pidfd = fds[0]

    def note_tampered(self, names, count=None):
        """Keep the replaced names a reply reports: at most MAX_TAMPERED_NAMES, each short."""
        names = names if isinstance(names, list) else []
        count = count if isinstance(count, int) and count >= len(names) else len(names)
        for name in names[:MAX_TAMPERED_NAMES]:
            if isinstance(name, str) and name not in self.tampered:
                if len(self.tampered) < MAX_TAMPERED_NAMES:
                    self.tampered[name[:120]] = None
                else:
                    self.tampered_more += 1
        self.tampered_more += max(0, count - min(len(names), MAX_TAMPERED_NAMES))

    def signal(self, number: int):
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, number)
            except ProcessLookupError:
                pass

    def request(self, message: dict, seconds: float) -> dict:
        """Send `message`, wait for the reply at most `seconds`; on time-out interrupt the kernel,
        and kill it if it does not stop. Raises KernelTimeout or KernelDied."""
        if self.dead:
            raise KernelDied(self.dead)
        try:
            wire.send(self.channel, message)
            return wire.receive(self.channel, time.monotonic() + max(seconds, 0.0))
        except wire.ChannelTimeout:
            self.signal(signal.SIGUSR1)  # init turns it into SIGINT: KeyboardInterrupt in the cell
            try:
                reply = wire.receive(self.channel, time.monotonic() + INTERRUPT_GRACE)
                raise KernelTimeout(stopped=True, reply=reply) from None
            except wire.ChannelTimeout:
                self.kill("it did not stop when interrupted after the time limit")
                raise KernelTimeout(stopped=False) from None
            except (wire.ChannelClosed, OSError):
                raise KernelDied(self._died()) from None
        except (wire.ChannelClosed, OSError):
            raise KernelDied(self._died()) from None
        except wire.ProtocolError as error:
            self.kill(f"it sent the grader something that is not a reply ({error})")
            raise KernelDied(self.dead) from None

    def kill(self, reason: str):
        self.signal(signal.SIGKILL)
        self.dead = self.dead or reason

    def _died(self) -> str:
        if self.dead:
            return self.dead
        reason = "it ended without saying why"
        try:
            event = wire.receive(self.status, time.monotonic() + 5)
            status = int(event.get("status", -1))
            if os.WIFSIGNALED(status):
                number = os.WTERMSIG(status)
                reason = f"it was ended by {SIGNALS.get(number, f'signal {number}')}"
            elif os.WIFEXITED(status):
                reason = (f"it exited with status {os.WEXITSTATUS(status)} (os._exit(), or a library "
                          "that ended the process)")
        except (wire.ChannelTimeout, wire.ChannelClosed, wire.ProtocolError, OSError, ValueError):
            pass
        self.dead = reason
        return reason

    def close(self):
        if not self.dead:
            try:
                wire.send(self.channel, {"op": "bye"})
                wire.receive(self.channel, time.monotonic() + 2)
            except (wire.ChannelClosed, wire.ChannelTimeout, wire.ProtocolError, OSError):
                pass
        self.signal(signal.SIGKILL)
        for closing in (self.channel, self.status):
            closing.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.drain.close()


class LogDrain:
    """Reads the kernel's stdout/stderr pipe into the student's log, keeping KERNEL_LOG_BYTES."""

    def __init__(self, fd: int, log: Path, keep: int = KERNEL_LOG_BYTES):
        import threading

        self.fd, self.log, self.keep = fd, log, keep
        self.total = 0
        self.thread = threading.Thread(target=self._run, name="kernel-log", daemon=True)
        self.thread.start()

    def _run(self):
        with open(self.log, "ab") as handle:
            while True:
                try:
                    chunk = os.read(self.fd, 1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                if self.total < self.keep:
                    handle.write(chunk[: self.keep - self.total])
                    handle.flush()
                self.total += len(chunk)

    def close(self):
        """Once the kernel is gone: the pipe ends when its last writer does (a straggling child
        is killed with its PID namespace), so a short wait is enough."""
        self.thread.join(5)
        if not self.thread.is_alive():
            os.close(self.fd)

    @property
    def overflowed(self) -> bool:
        return self.total > self.keep


def _receive_fds(sock: socket.socket, deadline: float):
    sock.settimeout(max(deadline - time.monotonic(), 0.1))
    try:
        return socket.recv_fds(sock, 4096, 2)
    except socket.timeout:
        raise RuntimeError("the sandbox did not start a kernel in time") from None
    finally:
        sock.settimeout(None)


# ---------------------------------------------------------------- the hidden tests' view of the kernel


class StudentCodeError(Exception):
    """An error raised by the student's function in the kernel (named like the original)."""


_ERROR_TYPES: dict[str, type] = {}


def _remote_error(type_name: str, explained: str) -> StudentCodeError:
    name = type_name if type_name.isidentifier() else "Error"
    if name not in _ERROR_TYPES:
        _ERROR_TYPES[name] = type(name, (StudentCodeError,), {})
    error = _ERROR_TYPES[name](explained)
    error.explained = explained
    return error


class CellOutOfTime(BaseException):
    """The hidden test cell used up its time: it stops, as a cell would."""


class RemoteStudent(hidden.Student):
    def __init__(self, session: KernelSession, photos: hidden.Photos, deadline: float):
        self.session, self._photos, self.deadline = session, photos, deadline

    def _request(self, message: dict) -> dict:
        try:
            reply = self.session.request(message, self.deadline - time.monotonic())
        except KernelTimeout:
            raise CellOutOfTime() from None
        if "failed" in reply:
            raise KernelDied(f"the kernel could not run a hidden test: {str(reply['failed'])[:200]}")
        self.session.note_tampered(reply.get("tampered"), reply.get("tampered_count"))
        return reply

    def function(self, name):
        return name if self._request({"op": "defined", "name": name}).get("callable") else None

    def photos(self):
        return self._photos

    def call(self, function, *args, cached=False, threshold=None, watch=None):
        reply = self._request({"op": "call", "name": function, "args": wire.encode_arguments(list(args)),
                               "cached": cached, "threshold": threshold, "watch": watch})
        printed = str(reply.get("printed", ""))  # captured for the checks, never shown
        if "error" in reply:
            error = reply["error"]
            raise _remote_error(str(error.get("type", "Error")), str(error.get("explained", "")))
        with handling_budget():
            value = wire.decode_result(reply.get("value"))
            gradient = reply.get("gradient")
            gradient = None if gradient is None else wire.decode_result(gradient)
        if gradient is not None and not _plausible_gradient(value, gradient, args, watch):
            self.session.inconsistent = True
            gradient = None
        return hidden.Called(value, printed, gradient)

    def tensor(self, array):
        return wire.Tensor(array)

    def is_tensor(self, value):
        return isinstance(value, wire.RemoteTensor)


def _plausible_gradient(value, gradient, args, watch) -> bool:
    """What the grader can check of a gradient the kernel reports: it was asked for, it belongs to
    a tensor result, and it is a float tensor shaped like the input it was taken against.
    (Its numbers are compared with the reference gradient by the hidden test itself.)"""
    if watch is None or not isinstance(value, wire.RemoteTensor) or not isinstance(gradient, wire.RemoteTensor):
        return False
    if value.array.dtype.kind != "f" or gradient.array.dtype.kind != "f":
        return False
    target = args
    try:
        for index in watch:
            target = target[index]
    except (IndexError, KeyError, TypeError):
        return False
    array = target.array if isinstance(target, wire.Tensor) else np.asarray(target)
    return gradient.shape == tuple(array.shape)


_PHOTOS: dict[tuple, hidden.Photos] = {}


def course_photos(path: str, threshold: float) -> hidden.Photos:
    """The course photos' encodings the zygote computed, for the hidden tests in this process."""
    if (path, threshold) not in _PHOTOS:
        with np.load(path) as data:
            _PHOTOS[path, threshold] = hidden.Photos(wire.MODEL, {key: data[key] for key in data.files}, threshold)
    return _PHOTOS[path, threshold]


def hidden_calls(source: str) -> list[tuple[str, float]]:
    """The hidden tests a hidden test cell runs: [(function name, points)], read (never run) from
    its source, which is the instructor's (nbgrader puts it back from the gradebook)."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in HIDDEN_FUNCTIONS:
            points = next((k.value for k in node.keywords if k.arg == "points"), None)
            value = points.value if isinstance(points, ast.Constant) else 4
            calls.append((node.func.id, float(value)))
    if not calls:
        raise ValueError("a hidden test cell that calls none of " + ", ".join(HIDDEN_FUNCTIONS))
    return calls


def is_hidden_test(cell) -> bool:
    return nbutils.is_grade(cell) and "BEGIN HIDDEN TESTS" in cell.source


# ---------------------------------------------------------------- outputs


def _error(ename: str, evalue: str) -> dict:
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _stream(text: str) -> dict:
    from nbformat.v4 import new_output

    return new_output("stream", name="stdout", text=text)


def _outputs(items) -> list:
    """Outputs received from a kernel, checked to be well-formed nbformat outputs."""
    from nbformat import from_dict
    from nbformat.validator import ValidationError, validate

    outputs = []
    for item in (items if isinstance(items, list) else [])[:MAX_OUTPUTS_PER_CELL]:
        try:
            node = from_dict(item)
            validate(node, ref="output", version=4)
        except (ValidationError, Exception):
            node = _error("GraderError", "the kernel sent an output the grader could not read")
        outputs.append(node)
    return outputs


def _secret_lines() -> set[str]:
    """Lines of the hidden tests, the reference answers and the solutions (20+ characters)."""
    import nbformat

    texts = [(GRADER / "course" / name).read_text(encoding="utf-8") for name in ("hidden.py", "reference.py")]
    source = nbformat.read(GRADER / "source" / "Face_Recognition" / "Face_Recognition.ipynb", as_version=4)
    for cell in source.cells:
        if "BEGIN SOLUTION" in cell.source or "BEGIN HIDDEN TESTS" in cell.source:
            texts.append(cell.source)
    return {line.strip() for text in texts for line in text.splitlines() if len(line.strip()) >= 20}


_SECRETS: set[str] | None = None
REMOVED = "[removed by the grader: text of the hidden tests or of the solutions]"


def scrub(text: str) -> tuple[str, bool]:
    """`text` without lines of the hidden tests or solutions (a student printing them)."""
    global _SECRETS
    if _SECRETS is None:
        _SECRETS = _secret_lines()
    lines = text.split("\n")
    found = False
    for index, line in enumerate(lines):
        if len(line.strip()) >= 20 and line.strip() in _SECRETS:
            lines[index], found = REMOVED, True
    return "\n".join(lines), found


def _scrub_outputs(outputs) -> bool:
    found = False
    for output in outputs:
        if output.get("output_type") == "stream":
            output["text"], hit = scrub(output["text"])
            found |= hit
        elif output.get("output_type") in ("execute_result", "display_data"):
            for mime, value in list(output.get("data", {}).items()):
                if isinstance(value, str) and mime.startswith("text/"):
                    output["data"][mime], hit = scrub(value)
                    found |= hit
        elif output.get("output_type") == "error":
            output["evalue"], hit = scrub(output.get("evalue", ""))
            found |= hit
            output["traceback"] = [scrub(line)[0] for line in output.get("traceback", [])]
    return found


def _score_of(cell) -> float | None:
    for output in cell.outputs:
        if output.output_type == "execute_result":
            text = output.get("data", {}).get("text/plain", "")
            try:
                return float(text if isinstance(text, str) else "".join(text))
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------- the nbgrader preprocessor


class SandboxExecute(NbGraderPreprocessor):
    """nbgrader's Execute step, in the grader's sandbox (see the module's documentation)."""

    def preprocess(self, nb, resources):
        job = CURRENT
        if job is None:
            raise RuntimeError("SandboxExecute runs inside `python -m grader.grade` only (no job was set)")
        started = time.perf_counter()
        notes = list(job.notes)
        if job.rejected:
            self._reject(nb, job)
            notes.insert(0, job.rejected)
        else:
            notes += self._run(nb, job)
        job.timings["execute"] = time.perf_counter() - started
        notes = [_plain_text(note) for note in notes]
        if notes:
            from nbformat.v4 import new_markdown_cell

            cell = new_markdown_cell("**Grader's notes**\n\n" + "\n".join(f"- {markdown_escape(n)}" for n in notes))
            cell["id"] = "grader-notes"
            nb.cells.insert(0, cell)
        job.notes = notes
        return nb, resources

    @staticmethod
    def _reject(nb, job: Job):
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                if nbutils.is_grade(cell):
                    cell.outputs = [_error("SubmissionNotGraded", job.rejected)]

    def _run(self, nb, job: Job) -> list[str]:
        settings = job.settings
        notes: list[str] = []
        start = time.monotonic()
        deadline = start + settings.notebook_timeout
        kernel_start = time.perf_counter()
        session = KernelSession(settings, _notebook_text(nb), job.log)
        job.timings["kernel start"] = time.perf_counter() - kernel_start
        photos = course_photos(settings.encodings, settings.threshold)
        number = 0
        scrubbed = False
        output_bytes, dropped_from = 0, None
        html_room, html_dropped = MAX_SANITIZED_PER_NOTEBOOK, False
        try:
            for cell in nb.cells:
                if cell.cell_type != "code":
                    continue
                number += 1
                cell.outputs, cell.execution_count = [], None
                kind = ("hidden" if is_hidden_test(cell) else "test" if nbutils.is_grade(cell) else
                        "answer" if nbutils.is_solution(cell) else
                        cell.metadata.get("nbgrader", {}).get("grade_id") or "code")
                if session.dead:
                    if nbutils.is_grade(cell):
                        cell.outputs = [_error("CellNotRun", f"not run: the notebook had stopped ({session.dead})")]
                    continue
                budget = min(settings.cell_timeout, deadline - time.monotonic())
                if budget <= 0:
                    session.kill(f"the notebook used up its time limit ({settings.notebook_timeout:g} s)")
                    notes.append(f"Your notebook took longer than {settings.notebook_timeout:g} s in all and "
                                 f"was stopped before code cell {number}; the cells after it were not run.")
                    if nbutils.is_grade(cell):
                        cell.outputs = [_error("CellNotRun", f"not run: {session.dead}")]
                    continue
                began = time.perf_counter()
                room = max(NOTEBOOK_OUTPUT_BYTES - output_bytes, 0)
                try:
                    if kind == "hidden":
                        self._judge(cell, session, photos, time.monotonic() + budget, settings)
                    elif self._execute(cell, session, budget, settings, kind, number, notes, room):
                        dropped_from = dropped_from or number  # the kernel kept only what was left
                    with handling_budget():
                        size = sum(map(_output_size, cell.outputs))
                        if output_bytes + size > NOTEBOOK_OUTPUT_BYTES:
                            _drop_outputs(cell, kind in ("test", "hidden"))
                            dropped_from = dropped_from or number
                            size = sum(map(_output_size, cell.outputs))
                        output_bytes += size
                        scrubbed |= _scrub_outputs(cell.outputs)
                        html = _html_outputs(cell.outputs)
                        html_room -= sanitize_outputs(cell.outputs, max(html_room, 0))
                        html_dropped |= _html_outputs(cell.outputs) < html
                except GraderOverrun:
                    session.kill(f"the grader spent more than {HANDLING_SECONDS:g} s reading what it sent back")
                    cell.outputs = [_error("GraderError", f"not graded: {session.dead}")]
                job.cells.append({"kind": kind, "seconds": time.perf_counter() - began, "number": number})
                if session.dead and not any(session.dead in n for n in notes):
                    notes.append(f"Your notebook's process stopped during code cell {number}: {session.dead}. "
                                 "The cells after it were not run, and their tests got no points.")
        finally:
            session.close()
        if session.tampered:
            more = f" and {session.tampered_more:,} more" if session.tampered_more else ""
            notes.append("Your code replaced parts of the libraries the tests use ("
                         + ", ".join(sorted(_shown_name(n) for n in session.tampered)[:12]) + more
                         + "). They were put back before the tests ran: tests always use the originals.")
        if session.inconsistent:
            notes.append("A reply of your notebook's process to the hidden tests was inconsistent (a gradient "
                         "without a tensor, or of the wrong shape); the grader did not believe it.")
        if scrubbed:
            notes.append("Some output showed text of the hidden tests or of the solutions; it was removed.")
        if dropped_from:
            notes.append(f"Your notebook's outputs passed {NOTEBOOK_OUTPUT_BYTES >> 20} MB in all: from code cell "
                         f"{dropped_from} on, outputs were dropped (test cells were still scored).")
        if html_dropped:
            notes.append(f"Some HTML or markdown outputs (past {MAX_SANITIZED_PER_NOTEBOOK // 1000:,} kB in all, or "
                         f"{MAX_SANITIZED_CHARS // 1000:,} kB in one output) are shown as plain text.")
        if session.drain.overflowed:
            notes.append(f"Your notebook's process wrote {session.drain.total / 2**20:,.0f} MB to its standard "
                         f"output or error outside the notebook's cells; the grader kept {KERNEL_LOG_BYTES >> 20} MB "
                         "in its log and dropped the rest.")
        return notes

    @staticmethod
    def _execute(cell, session: KernelSession, budget: float, settings, kind: str, number: int, notes: list,
                 room: int) -> bool:
        """Run one cell; True when its output was cut to what is left of the notebook's budget."""
        test, cut = kind == "test", False
        try:
            reply = session.request({"op": "run", "source": cell.source, "test": test, "limit": room}, budget)
            with handling_budget():
                if "failed" in reply:
                    raise KernelDied(f"the kernel could not run the cell ({str(reply['failed'])[:200]})")
                cell.outputs = _outputs(reply.get("outputs"))
                cell.execution_count = reply.get("count") if isinstance(reply.get("count"), int) else None
                session.note_tampered(reply.get("tampered"), reply.get("tampered_count"))
            cut = bool(reply.get("truncated")) and room < MAX_CELL_OUTPUT_BYTES
            if reply.get("truncated") and not cut:
                notes.append(f"Code cell {number} wrote more output than the grader keeps (1 MB of text, 8 MB "
                             "in all); the rest was dropped.")
        except KernelTimeout as timeout:
            if timeout.reply:
                with handling_budget():
                    cell.outputs = [o for o in _outputs(timeout.reply.get("outputs"))
                                    if not (o.output_type == "error" and o.ename == "KeyboardInterrupt")]
            cell.outputs.append(_error("CellTimeoutError", f"this cell ran for more than {budget:.0f} s and "
                                       "was stopped (the time limit of a cell)"))
            notes.append(f"Code cell {number} ran for more than {budget:.0f} s and was stopped"
                         + ("." if timeout.stopped else "; it did not stop when asked, so the notebook's "
                            "process was ended and the cells after it were not run."))
        except KernelDied as died:
            cell.outputs.append(_error("KernelDied", f"the notebook's process stopped while this cell ran: {died.reason}"))
        if any(o.output_type == "error" and o.ename == "MemoryError" for o in cell.outputs):
            notes.append(f"Code cell {number} ran out of memory (the limit is "
                         f"{settings.memory_bytes / (1 << 30):g} GB).")
        if test and not any(o.output_type == "error" for o in cell.outputs):
            score = _score_of(cell)
            points = float(cell.metadata["nbgrader"].get("points", 0))
            if score is None or not 0 <= score <= points:
                cell.outputs.append(_error("GraderError", "this test cell did not end with its score (0 to "
                                           f"{points:g}), so it gets no points"))
        return cut

    @staticmethod
    def _judge(cell, session: KernelSession, photos, deadline: float, settings):
        calls = hidden_calls(cell.source)
        student = RemoteStudent(session, photos, deadline)
        printed = io.StringIO()
        total, failure = 0.0, None
        with contextlib.redirect_stdout(printed):
            try:
                for name, points in calls:
                    total += float(getattr(hidden, name)(student, points=points))
            except CellOutOfTime:
                failure = _error("CellTimeoutError", "the hidden tests of this exercise took more than "
                                 f"{settings.cell_timeout:g} s and were stopped: your function is too slow "
                                 "or never returns")
            except KernelDied as died:
                failure = _error("KernelDied", f"the notebook's process stopped during the hidden tests: {died.reason}")
        from nbformat.v4 import new_output

        cell.outputs = [_stream(printed.getvalue())] if printed.getvalue() else []
        if failure:
            cell.outputs.append(failure)
        else:
            cell.outputs.append(new_output("execute_result", data={"text/plain": repr(round(total, 4))},
                                           execution_count=None))


# ---------------------------------------------------------------- what the grader writes of a kernel's text

# A replaced attribute's name as the kernel reports it: dotted names, a helper rebound in the
# notebook, or a sys.modules entry. Anything else (an attribute named with markup) is not shown.
_NAME = re.compile(r"^(sys\.modules\['[\w.]{1,100}'\]|[A-Za-z_][\w.]{0,119}( \((defined|bound) in the notebook\))?)$")


def _shown_name(name: str) -> str:
    return name if _NAME.match(name) else "an attribute with an unusual name"


def _plain_text(text: str) -> str:
    """One line of printable text: a note never starts a new line, list item or block."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())[:2000]


def markdown_escape(text: str) -> str:
    """`text` shown literally in markdown: HTML escaped, markdown's punctuation backslashed."""
    import html

    return re.sub(r"([\\`*_{}\[\]()#+!|~>-])", r"\\\1", html.escape(text, quote=False))


def _html_outputs(outputs) -> int:
    return sum(mime in (output.get("data") or {}) for output in outputs for mime in ("text/html", "text/markdown"))


def _output_size(output) -> int:
    """Characters of an output's text and data: what it costs in the notebook and the feedback."""
    size = 0
    for key in ("text", "evalue"):
        size += len(output.get(key) or "")
    size += sum(len(line) for line in output.get("traceback") or [])
    for value in (output.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    return size


def _drop_outputs(cell, test: bool) -> None:
    """Past the notebook's output budget: keep a cell's errors (shortened) and a test cell's score."""
    kept = []
    for output in cell.outputs:
        if output.output_type == "error":
            output["evalue"] = output.get("evalue", "")[:500]
            output["traceback"] = [line[:500] for line in output.get("traceback", [])[-5:]]
            kept.append(output)
        elif test and output.output_type == "execute_result":
            text = output.get("data", {}).get("text/plain", "")
            output["data"] = {"text/plain": text[:100] if isinstance(text, str) else ""}
            kept.append(output)
    cell.outputs = [_stream(f"[outputs dropped by the grader: the notebook's outputs passed "
                            f"{NOTEBOOK_OUTPUT_BYTES >> 20} MB in all]\n")] + kept


def _notebook_text(nb) -> str:
    """The notebook as the kernel's folder holds it: hidden test cells without their code."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and is_hidden_test(cell):
            cell.source = "# Hidden tests: run by the grader, outside this notebook."
    return nbformat.writes(nb)
