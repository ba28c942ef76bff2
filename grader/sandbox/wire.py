"""Messages between the grader and a sandboxed kernel: framing and a safe encoding of values.

Every message is one JSON document preceded by its length (4 bytes, big-endian). JSON, never
pickle: what a kernel sends was produced by a student's process and is decoded by the grader, so
decoding must not run code. Values that JSON cannot hold are tagged objects:

    {"$": "nd", "dtype": "float32", "shape": [2, 3], "data": "<base64>"}   a numpy array
    {"$": "tensor", "array": {...nd...}}                                    a TensorFlow tensor
    {"$": "np", "dtype": "float64", "value": 0.25}                          a numpy scalar
    {"$": "tuple" | "list", "items": [...]}, {"$": "dict", "items": [[key, value], ...]}
    {"$": "model"}                                                          the hidden tests' model
    {"$": "object", "type": "Foo", "repr": "<Foo ...>"}                     anything else, by name

Sizes are bounded when decoding (message length, nesting depth, array bytes), and array dtypes
are taken from a fixed list.
"""
from __future__ import annotations

import base64
import json
import math
import select
import socket
import struct
import time

import numpy as np

MAX_MESSAGE = 64 * 1024 * 1024
MAX_DEPTH = 20
DTYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                    "float16", "float32", "float64", "complex64", "complex128"})


class ChannelClosed(Exception):
    """The other end closed the connection (for a kernel: it exited or was killed)."""


class ChannelTimeout(Exception):
    """No complete message arrived before the deadline."""


class ProtocolError(Exception):
    """A message was malformed or too large."""


# ---------------------------------------------------------------- framing


def send(sock: socket.socket, message) -> None:
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    sock.sendall(struct.pack(">I", len(data)) + data)


def receive(sock: socket.socket, deadline: float | None = None, limit: int = MAX_MESSAGE):
    """The next message; raises ChannelTimeout at `deadline` (time.monotonic()), ChannelClosed
    at end of stream, ProtocolError for a message over `limit` bytes or not JSON."""
    header = _read_exactly(sock, 4, deadline)
    (length,) = struct.unpack(">I", header)
    if length > limit:
        raise ProtocolError(f"a message of {length} bytes (the limit is {limit})")
    body = _read_exactly(sock, length, deadline)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolError(f"a message that is not JSON ({error})") from None


def _read_exactly(sock: socket.socket, count: int, deadline: float | None) -> bytes:
    chunks, remaining = [], count
    while remaining:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([sock], [], [], wait)[0]:
                raise ChannelTimeout()
        try:
            chunk = sock.recv(min(remaining, 1 << 20))
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise ChannelClosed()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- values


class Model:
    """Stands for the hidden tests' model in arguments; the kernel passes its own loaded model."""


MODEL = Model()


class Tensor:
    """Marks an array to be passed to the student's function as a TensorFlow constant."""

    def __init__(self, array):
        self.array = np.asarray(array)


def encode_array(array: np.ndarray) -> dict:
    array = np.asarray(array)
    if array.dtype.name not in DTYPES:
        raise TypeError(f"arrays of dtype {array.dtype} cannot be sent")
    return {"$": "nd", "dtype": array.dtype.name, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes(order="C")).decode("ascii")}


def decode_array(tree: dict, limit: int = MAX_MESSAGE) -> np.ndarray:
    dtype, shape = tree.get("dtype"), tree.get("shape")
    if dtype not in DTYPES or not isinstance(shape, list) or len(shape) > 32 \
            or not all(isinstance(n, int) and 0 <= n for n in shape):
        raise ProtocolError("a malformed array")
    data = base64.b64decode(tree.get("data", ""), validate=True)
    if len(data) > limit or len(data) != math.prod(shape) * np.dtype(dtype).itemsize:
        raise ProtocolError("an array whose size does not match its shape")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def encode_arguments(value, depth: int = 0):
    """Arguments of a call, on the grader's side: arrays, Tensor marks, MODEL, containers, scalars."""
    if depth > MAX_DEPTH:
        raise ValueError("arguments nested too deeply")
    if value is MODEL:
        return {"$": "model"}
    if isinstance(value, Tensor):
        return {"$": "tensor", "array": encode_array(value.array)}
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, np.generic):
        return {"$": "np", "dtype": value.dtype.name, "value": value.item()}
    if isinstance(value, (tuple, list)):
        return {"$": type(value).__name__, "items": [encode_arguments(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"$": "dict", "items": [[k, encode_arguments(v, depth + 1)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} as an argument")


def decode_arguments(tree, model, tensor, depth: int = 0):
    """Arguments, on the kernel's side: `model` replaces the MODEL mark, `tensor(array)` makes tensors."""
    if depth > MAX_DEPTH:
        raise ProtocolError("arguments nested too deeply")
    if isinstance(tree, dict):
        kind = tree.get("$")
        if kind == "model":
            return model
        if kind == "tensor":
            return tensor(decode_array(tree["array"]))
        if kind == "nd":
            return decode_array(tree)
        if kind == "np":
            return np.dtype(tree["dtype"]).type(tree["value"])
        if kind in ("tuple", "list"):
            items = [decode_arguments(v, model, tensor, depth + 1) for v in tree["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return {k: decode_arguments(v, model, tensor, depth + 1) for k, v in tree["items"]}
        raise ProtocolError(f"an unknown value kind {kind!r}")
    return tree


def encode_result(value, depth: int = 0, budget: list | None = None):
    """What a student's function returned, on the kernel's side, as plain data.

    Only types are inspected (never `__repr__`, `__array__` or other methods a student can
    define) except for numpy arrays and TensorFlow tensors, whose values are the point.
    """
    budget = budget if budget is not None else [MAX_MESSAGE // 2]
    if depth > MAX_DEPTH:
        return {"$": "object", "type": type(value).__name__, "repr": "(nested too deeply)"}
    kind = type(value)
    if value is None or kind in (bool, int, str):
        if kind is str and len(value) > 10_000:
            value = value[:10_000]
        if kind is int and abs(value) > 2 ** 63:
            return {"$": "object", "type": "int", "repr": "(a very large integer)"}
        return value
    if kind is float:
        return value
    if isinstance(value, np.generic) and value.dtype.name in DTYPES and value.dtype.kind != "c":
        return {"$": "np", "dtype": value.dtype.name, "value": value.item()}
    if kind is np.ndarray and value.dtype.name in DTYPES and value.nbytes <= budget[0]:
        budget[0] -= value.nbytes
        return encode_array(value)
    if is_eager_tensor(value):
        try:
            array = np.asarray(value.numpy())
        except Exception:  # a symbolic tensor, say
            return {"$": "object", "type": kind.__name__, "repr": "(a tensor without a value)"}
        if array.dtype.name in DTYPES and array.nbytes <= budget[0]:
            budget[0] -= array.nbytes
            return {"$": "tensor", "array": encode_array(array)}
    if kind in (tuple, list):
        return {"$": kind.__name__, "items": [encode_result(v, depth + 1, budget) for v in value[:1000]]}
    if kind is dict:
        return {"$": "dict", "items": [[k if isinstance(k, str) else repr(k)[:100], encode_result(v, depth + 1, budget)]
                                      for k, v in list(value.items())[:1000]]}
    return {"$": "object", "type": kind.__name__[:100], "repr": f"<{kind.__name__[:100]} object>"}


def is_eager_tensor(value) -> bool:
    """A TensorFlow eager tensor, by its exact type: isinstance() would believe an object whose
    `__class__` says tf.Tensor, and a subclass could answer `numpy()` with anything."""
    import sys

    ops = sys.modules.get("tensorflow.python.framework.ops")
    return ops is not None and type(value) is getattr(ops, "EagerTensor", None)


# ---------------------------------------------------------------- the grader's view of results


class RemoteTensor:
    """A TensorFlow tensor the student's function returned, as the grader sees it: its values,
    shape and dtype name (no TensorFlow needed on the grader's side)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype_name = array.dtype.name

    def numpy(self):
        return self.array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def __bool__(self):  # like a tensor: one element has a truth value, several do not
        return bool(self.array)

    def __repr__(self):
        return f"tf.Tensor({self.array!r}, shape={self.shape}, dtype={self.dtype_name})"


class RemoteObject:
    """Any other object the student's function returned, known by its type name only."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text


_REMOTE_TYPES: dict[str, type] = {}
MAX_REMOTE_TYPES = 1000  # classes made for type names a kernel sent (one worker grades many submissions)


def _remote_type(name: str) -> type:
    name = name if name.isidentifier() else "object"
    if name not in _REMOTE_TYPES and len(_REMOTE_TYPES) >= MAX_REMOTE_TYPES:
        name = "object"
    if name not in _REMOTE_TYPES:  # a class named like the student's, so messages name it
        _REMOTE_TYPES[name] = type(name, (RemoteObject,), {})
    return _REMOTE_TYPES[name]


def decode_result(tree, depth: int = 0):
    if depth > MAX_DEPTH:
        raise ProtocolError("a result nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        raise ProtocolError("a bare list in a result")
    kind = tree.get("$")
    if kind == "nd":
        return decode_array(tree)
    if kind == "tensor":
        return RemoteTensor(decode_array(tree["array"]))
    if kind == "np":
        if tree.get("dtype") not in DTYPES or not isinstance(tree.get("value"), (bool, int, float)):
            raise ProtocolError("a malformed numpy scalar")
        return np.dtype(tree["dtype"]).type(tree["value"])
    if kind in ("tuple", "list"):
        items = [decode_result(v, depth + 1) for v in tree["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {str(k): decode_result(v, depth + 1) for k, v in tree["items"]}
    if kind == "object":
        return _remote_type(str(tree.get("type", "object"))[:100])(str(tree.get("repr", ""))[:200])
    raise ProtocolError(f"an unknown value kind {kind!r}")
