"""The kernel that runs one submission inside the grader's sandbox.

It is a forked copy of the zygote (grader/sandbox/zygote.py), with TensorFlow, Keras, IPython and the
course helpers already imported, isolated and without privileges by the time `serve` starts.
It runs what the grader sends over its socket (grader.sandbox.wire messages), one request at a time:

    {"op": "run", "source": "...", "test": false}   run a cell; reply with its nbformat outputs
    {"op": "defined", "name": "verify"}             is the notebook's `verify` callable?
    {"op": "call", "name": "verify", "args": ...}   call it for the hidden tests (grader.sandbox.callee)
    {"op": "bye"}                                   exit

Cells run in an IPython shell, so notebooks behave as in Jupyter (magics, display(), inline
matplotlib figures, the value of a cell's last line). Before every test cell and every call for
the hidden tests the libraries the tests rely on are put back as they were before the student's
code ran (module attributes of numpy, TensorFlow, math, builtins and the course helpers), and
the names of the test helpers in the notebook (Checks, assert_close, np, tf) are bound to fresh,
unmodified copies; what had been replaced is reported to the grader.
"""
from __future__ import annotations

import base64
import builtins
import contextlib
import io
import json
import sys
import threading
import time
import types

from grader.sandbox import wire

# Output limits of one cell (the grader enforces its own on what it receives).
MAX_STREAM_CHARS = 1_000_000
MAX_CELL_OUTPUT_BYTES = 8_000_000
MAX_OUTPUTS = 1000            # outputs of one cell (display() in a loop): more are dropped
MODULES_RESTORED = ("builtins", "math", "numpy", "numpy.linalg", "tensorflow", "fr_checks", "fr_utils",
                    "facerec.encode")
TEST_HELPERS = ("Checks", "assert_close", "number")
# What a hidden test's answer travels through in this process: the kernel's own code, the
# transport, and the TensorFlow classes and modules that tell a tensor and compute a gradient.
TRANSPORT_MODULES = ("grader", "grader.sandbox", "grader.sandbox.kernel", "grader.sandbox.wire", "grader.sandbox.callee", "json", "json.encoder",
                     "json.decoder", "base64", "struct", "select", "socket", "tensorflow.python.framework.ops",
                     "tensorflow.python.framework.tensor", "tensorflow.python.eager.backprop",
                     "tensorflow.python.eager.imperative_grad")
# Names of replaced attributes sent to the grader per reply (a notebook can replace millions).
MAX_REPORTED_NAMES = 200


# ---------------------------------------------------------------- outputs of a cell


class CellOutputs:
    """nbformat outputs of the cell being run, within size limits."""

    def __init__(self, limit: int = MAX_CELL_OUTPUT_BYTES):
        self.items: list[dict] = []
        self.size = 0
        self.limit = max(0, min(int(limit), MAX_CELL_OUTPUT_BYTES))
        self.truncated = False

    def _room(self, size: int) -> bool:
        if self.truncated:
            return False
        if self.size + size > self.limit or len(self.items) >= MAX_OUTPUTS:
            self.truncated = True
            self.items.append({"output_type": "stream", "name": "stdout",
                               "text": "\n[output truncated by the grader: more than it keeps]\n"})
            return False
        self.size += size
        return True

    def stream(self, name: str, text: str):
        if not text or self.truncated:
            return
        last = self.items[-1] if self.items else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            if len(last["text"]) >= MAX_STREAM_CHARS:
                return
            if len(last["text"]) + len(text) > MAX_STREAM_CHARS:
                self.truncated = True
                text = text[:MAX_STREAM_CHARS - len(last["text"])] + \
                    f"\n[{name} truncated by the grader: more than {MAX_STREAM_CHARS:,} characters]\n"
            if self._room(len(text)):
                last["text"] += text
        elif self._room(min(len(text), MAX_STREAM_CHARS)):
            if len(text) > MAX_STREAM_CHARS:
                self.truncated = True
                text = text[:MAX_STREAM_CHARS] + \
                    f"\n[{name} truncated by the grader: more than {MAX_STREAM_CHARS:,} characters]\n"
            self.items.append({"output_type": "stream", "name": name, "text": text})

    def data(self, kind: str, data: dict, metadata: dict, count: int | None = None):
        data, metadata = _plain(data), _plain(metadata)
        size = len(json.dumps(data))
        if not self._room(size):
            return
        output = {"output_type": kind, "data": data, "metadata": metadata}
        if kind == "execute_result":
            output["execution_count"] = count
        self.items.append(output)

    def error(self, ename: str, evalue: str, traceback: list[str]):
        traceback = [str(line)[:5000] for line in traceback[-200:]]
        self._room(sum(map(len, traceback)))
        self.items.append({"output_type": "error", "ename": ename[:200], "evalue": evalue[:5000],
                           "traceback": traceback})

    def clear(self):
        self.items = [o for o in self.items if o["output_type"] == "error"]
        self.size = 0


def _plain(mapping) -> dict:
    """A mimebundle as JSON: bytes (PNG images) in base64, anything not JSON dropped."""
    result = {}
    for key, value in dict(mapping or {}).items():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        result[str(key)] = value
    return result


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr while a cell runs: text goes into the cell's outputs."""

    def __init__(self, name: str, kernel: "Kernel"):
        self.name_ = name
        self.kernel = kernel

    @property
    def name(self):
        return f"<{self.name_}>"

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        outputs = self.kernel.outputs
        if outputs is not None:
            with self.kernel.lock:
                outputs.stream(self.name_, text)
        return len(text)

    def isatty(self):
        return False

    def fileno(self):
        raise io.UnsupportedOperation("fileno")


# ---------------------------------------------------------------- the IPython shell


def _make_shell(kernel: "Kernel"):
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class GradingDisplayHook(DisplayHook):
        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            if kernel.outputs is not None:
                kernel.outputs.data("execute_result", format_dict, md_dict or {}, self.prompt_count)

        def finish_displayhook(self):
            pass

    class GradingDisplayPublisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            if kernel.outputs is not None:
                kernel.outputs.data("display_data", data, metadata or {})

        def clear_output(self, wait=False):
            if kernel.outputs is not None:
                kernel.outputs.clear()

    class GradingShell(InteractiveShell):
        displayhook_class = GradingDisplayHook
        display_pub_class = GradingDisplayPublisher

        def enable_gui(self, gui=None):
            pass

        def system(self, cmd):
            """`!command`: its output into the cell, as in Jupyter (not onto the kernel's log)."""
            import subprocess

            done = subprocess.run(self.var_expand(cmd, depth=1), shell=True, capture_output=True, text=True,
                                  errors="replace", stdin=subprocess.DEVNULL)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
            self.user_ns["_exit_code"] = done.returncode

        def _showtraceback(self, etype, evalue, stb):
            if kernel.outputs is not None:
                kernel.outputs.error(getattr(etype, "__name__", str(etype)), _safe_str(evalue), list(stb))

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "Linux"
    shell = GradingShell.instance(config=config)
    shell.enable_matplotlib("inline")
    return shell


def _safe_str(value) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


# ---------------------------------------------------------------- pristine libraries


class Pristine:
    """The libraries as they were before the student's code ran, and a way back to them."""

    def __init__(self, fr_checks_code):
        self.modules = {name: sys.modules[name] for name in MODULES_RESTORED if name in sys.modules}
        self.dicts = {name: dict(vars(module)) for name, module in self.modules.items()}
        self.builtins = dict(vars(builtins))
        self.fr_checks_code = fr_checks_code
        self.displayhook, self.excepthook = sys.displayhook, sys.excepthook
        helpers = self.modules.get("fr_checks")
        # The helpers' classes too: a class can be changed in place (Checks.score = ...).
        self.classes = {f"fr_checks.{name}": (value, dict(vars(value))) for name, value in vars(helpers).items()
                        if isinstance(value, type) and value.__module__ == "fr_checks"} if helpers else {}
        self.originals = {name: getattr(helpers, name, None) for name in TEST_HELPERS}
        self.given: dict[str, object] = {}

    def restore(self) -> list[str]:
        """Put every replaced or removed attribute back; return their names ("numpy.isclose")."""
        changed = []
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        sys.displayhook, sys.excepthook = self.displayhook, self.excepthook
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                changed.append(f"sys.modules['{name}']")
            current, saved = vars(module), self.dicts[name]
            for key, value in saved.items():
                if key not in current or current[key] is not value:
                    if not key.startswith("__") and not (name == "builtins" and key in ("_", "__", "___")):
                        changed.append(f"{name}.{key}")
                    current[key] = value
            for key in [k for k in current if k not in saved]:
                del current[key]
        for name, (cls, saved) in self.classes.items():
            current = dict(vars(cls))
            for key, value in saved.items():
                if key not in current or current[key] is not value:
                    changed.append(f"{name}.{key}")
                    setattr(cls, key, value)
            for key in [k for k in current if k not in saved]:
                changed.append(f"{name}.{key}")
                delattr(cls, key)
        return changed

    def fresh_helpers(self) -> types.ModuleType:
        """A new, unmodified copy of fr_checks whose functions see a private copy of the builtins."""
        module = types.ModuleType("fr_checks")
        module.__file__ = getattr(self.modules.get("fr_checks"), "__file__", "fr_checks.py")
        module.__dict__["__builtins__"] = dict(self.builtins)
        exec(self.fr_checks_code, module.__dict__)
        return module

    def rebind(self, namespace: dict) -> list[str]:
        """Point the notebook's names of the test helpers and libraries at unmodified objects;
        return the names the notebook had bound to something else."""
        helpers = self.fresh_helpers()
        replaced = []
        for name in TEST_HELPERS:
            if name in namespace:
                if namespace[name] is not self.originals.get(name) and namespace[name] is not self.given.get(name):
                    replaced.append(f"{name} (defined in the notebook)")
                namespace[name] = self.given[name] = getattr(helpers, name)
        for name, module in (("np", "numpy"), ("tf", "tensorflow")):
            if name in namespace and module in self.modules:
                if namespace[name] is not self.modules[module]:
                    replaced.append(f"{name} (bound in the notebook)")
                namespace[name] = self.modules[module]
        return replaced


class Guard:
    """The transport a hidden test's answer travels through (TRANSPORT_MODULES), as it was before
    the student's code ran: module dictionaries, the dictionaries of their classes, and the code,
    defaults and keyword defaults of their functions (a function's code can be replaced in place).
    Snapshots are tuples and frozensets, which no code can change afterwards.

    Kernel.serve puts the code and the dictionaries back itself, with only local references,
    before reading each request and before encoding each reply.
    """

    def __init__(self, *instances):
        modules = [(name, sys.modules[name]) for name in TRANSPORT_MODULES if name in sys.modules]
        dictionaries, functions = [], []
        for name, module in modules:
            dictionaries.append((name, vars(module)))
            for value in list(vars(module).values()):
                if isinstance(value, type) and value.__module__ == name:
                    dictionaries.append((f"{name}.{value.__qualname__}", value))
                    functions += [f for member in vars(value).values() for f in _functions_in(member)]
                functions += _functions_in(value) if getattr(value, "__module__", None) == name else []
        dictionaries += [(f"the kernel's {type(i).__name__}", vars(i)) for i in instances]
        self.dictionaries = tuple((name, owner, frozenset(vars(owner) if isinstance(owner, type) else owner),
                                   tuple((vars(owner) if isinstance(owner, type) else owner).items()))
                                  for name, owner in dictionaries)
        self.functions = tuple((f, f.__code__, f.__defaults__, f.__kwdefaults__) for f in dict.fromkeys(functions))


def _functions_in(value) -> list:
    """The plain functions behind a module or class member (methods, static, class, properties)."""
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if isinstance(f, types.FunctionType)]
    return [value] if isinstance(value, types.FunctionType) else []


# ---------------------------------------------------------------- the hidden tests' model


class LazyModel:
    """The model passed to the student's functions by the hidden tests, loaded on first use.

    Course photos encoded with it come from the zygote's cache (grader.sandbox.callee.cached_encodings,
    which compares identities), so most submissions never need the network itself."""

    __slots__ = ("_folder", "_model")

    def __init__(self, folder: str):
        object.__setattr__(self, "_folder", folder)
        object.__setattr__(self, "_model", None)

    def _load(self):
        model = object.__getattribute__(self, "_model")
        if model is None:
            import fr_utils

            model = fr_utils.load_model(object.__getattribute__(self, "_folder"))
            object.__setattr__(self, "_model", model)
        return model

    def __getattr__(self, name):
        return getattr(self._load(), name)

    def __setattr__(self, name, value):
        setattr(self._load(), name, value)

    def __call__(self, *args, **kwargs):
        return self._load()(*args, **kwargs)

    def __repr__(self):
        return repr(self._load())

    @property
    def __class__(self):
        return type(self._load())


# ---------------------------------------------------------------- the kernel


class Kernel:
    def __init__(self, sock, *, encodings: dict, model_folder: str, fr_checks_code, threads: int):
        self.sock = sock
        self.lock = threading.Lock()
        self.outputs: CellOutputs | None = None
        self.encodings = encodings
        self.model = LazyModel(model_folder)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        # No Grappler (TensorFlow's graph optimiser): it rewrote the 447-layer prediction graph
        # on the first encoding and again after the visible test's tf.random.set_seed(1), which
        # empties TensorFlow's caches: 0.7 to 1.1 s of CPU per notebook (of 7 to 9), for no gain
        # on one photo at a time. The encodings are unchanged (tests/test_grader_pipeline.py).
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        self.shell = _make_shell(self)
        self.sink = _Stream("stdout", self)  # between cells (a thread's late prints): dropped
        sys.stdout = sys.stderr = self.sink
        self.pristine = Pristine(fr_checks_code)

    @contextlib.contextmanager
    def capture(self, limit: int = MAX_CELL_OUTPUT_BYTES):
        self.outputs = CellOutputs(limit)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Stream("stdout", self), _Stream("stderr", self)
        try:
            yield self.outputs
        finally:
            sys.stdout, sys.stderr = saved
            self.outputs = None

    def run(self, source: str, test: bool, limit: int = MAX_CELL_OUTPUT_BYTES) -> dict:
        tampered = []
        if test:
            tampered = self.pristine.restore()
            tampered += self.pristine.rebind(self.shell.user_ns)
        count = self.shell.execution_count
        start = time.perf_counter()
        with self.capture(limit) as outputs:
            self.shell.run_cell(source, store_history=True)
        return {"outputs": outputs.items, "count": count, "seconds": time.perf_counter() - start,
                "tampered": tampered, "truncated": outputs.truncated}

    def defined(self, name: str) -> dict:
        return {"callable": callable(self.shell.user_ns.get(name))}

    def call(self, request: dict) -> dict:
        """Call the student's function for a hidden test. The value (and the tape that watched
        its input) are returned as they are: `serve` encodes them once the transport is restored."""
        from grader.sandbox import callee

        tampered = self.pristine.restore()
        helpers = self.pristine.fresh_helpers()
        import tensorflow as tf

        out = io.StringIO()
        function = self.shell.user_ns.get(request["name"])
        reply: dict = {"tampered": tampered}
        try:
            args = wire.decode_arguments(request["args"], self.model, tf.constant)
            value, _, tape = callee.call(
                function, args, model=self.model, encodings=self.encodings if request.get("cached") else None,
                threshold=request.get("threshold"), watch=request.get("watch"), out=out, defer_gradient=True)
            reply["_value"], reply["_tape"] = value, tape
        except BaseException as error:  # SystemExit and KeyboardInterrupt (a time limit) too
            reply["error"] = {"type": type(error).__name__[:100], "explained": helpers.explain(error)[:5000]}
        reply["printed"] = out.getvalue()[:MAX_STREAM_CHARS]
        return reply

    @staticmethod
    def encode(reply: dict) -> dict:
        """A call's value and its gradient as plain data, with the restored transport."""
        if "_value" in reply:
            value, tape = reply.pop("_value"), reply.pop("_tape")
            reply["value"] = wire.encode_result(value)
            gradient = None
            if tape is not None and wire.is_eager_tensor(value):
                recorder, target = tape
                try:
                    gradient = recorder.gradient(value, target)
                except Exception:  # a tensor TensorFlow cannot differentiate: no gradient, as for numpy
                    gradient = None
            reply["gradient"] = None if gradient is None else wire.encode_result(gradient)
        return reply

    def serve(self):
        # Bound before any student code runs. The loop uses only these locals, and puts back the
        # transport's code and dictionaries inline, so that nothing a notebook replaces can stop it.
        guard = Guard(self)
        sock, functions, dictionaries = self.sock, guard.functions, guard.dictionaries
        handlers = {"run": self.run, "defined": self.defined, "call": self.call}
        receive, send, encode, restore = wire.receive, wire.send, self.encode, self.pristine.restore
        closed = (wire.ChannelClosed, wire.ProtocolError)
        is_class, setattr_, delattr_ = type, setattr, delattr
        reply = None
        while True:
            changed = []
            for function, code, defaults, keyword_defaults in functions:
                if function.__code__ is not code or function.__defaults__ is not defaults \
                        or function.__kwdefaults__ is not keyword_defaults:
                    changed.append(f"{function.__module__}.{function.__qualname__}")
                    function.__code__, function.__defaults__ = code, defaults
                    function.__kwdefaults__ = keyword_defaults
            for name, owner, keys, items in dictionaries:
                cls = isinstance(owner, is_class)
                current = owner.__dict__ if cls else owner
                for key in [k for k in current if k not in keys and k != "__annotations__"]:
                    changed.append(f"{name}.{key}")
                    delattr_(owner, key) if cls else current.pop(key)
                for key, value in items:
                    if key not in current or current[key] is not value:
                        if cls or not key.startswith("__"):
                            changed.append(f"{name}.{key}")
                        setattr_(owner, key, value) if cls else current.__setitem__(key, value)
            if reply is not None:
                try:
                    if "_value" in reply:  # the function may have patched the libraries on its way out
                        changed += restore()
                    reply = encode(reply)
                except BaseException as error:  # the student's value could not be encoded
                    reply = {"failed": f"the reply could not be encoded ({type(error).__name__})"}
                names = [n for n in reply.get("tampered", []) if isinstance(n, str)] + changed
                reply["tampered"] = list(dict.fromkeys(names))[:MAX_REPORTED_NAMES]
                reply["tampered_count"] = len(names)
                send(sock, reply)
                reply = None
            try:
                request = receive(sock)
            except closed:
                return
            op = request.get("op")
            try:
                if op == "run":
                    reply = handlers["run"](request["source"], bool(request.get("test")),
                                            int(request.get("limit", MAX_CELL_OUTPUT_BYTES)))
                elif op in ("defined", "call"):
                    reply = handlers[op](request["name"] if op == "defined" else request)
                elif op == "bye":
                    return
                else:
                    reply = {"failed": f"unknown request {op!r}"}
            except KeyboardInterrupt:  # an interrupt that arrived between two cells
                reply = {"failed": "interrupted"}
