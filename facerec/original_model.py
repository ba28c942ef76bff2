"""The course network (FaceNet Inception-ResNet-v1): recognising, loading and checking its weights.

    model, info = load_course_model("keras-facenet-h5")

returns the network that a model folder holds and how to feed it (`ModelInfo`): the course
network (`inception_blocks_v2.py`) when `model.h5` holds Inception-ResNet-v1 weights (the file
`make setup` builds, or an instructor's copy of the course's own file), dlib's ResNet otherwise
(the folder `dlib-resnet-h5/`, whose `model.json` + `model.h5` the set-up converts from dlib's file).

    python -m facerec.original_model [keras-facenet-h5]   # which model is it? loads it and says

What is here:
- recognising Inception-ResNet-v1 weights by git blob id (two public copies of the course's own
  file are known) or by layout (a Keras HDF5 weights file naming this network's layers);
- loading Keras-2 or Keras-3 HDF5 weights by layer and weight name into `inception_blocks_v2`,
  all or nothing, with an error listing every missing, unexpected or mis-shaped weight;
- the proof that `inception_blocks_v2` is the course's network: the course's `model.json` read
  by Keras's own deserialiser (its `Lambda` layers replaced by the sum they compute, read from
  their bytecode without running it), the weight layout derived from that JSON alone, and
  synthetic weights written in the exact Keras-2 layout (tests/test_original_model.py).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import json
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facerec.errors import FaceRecError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_JSON = ROOT / "data" / "reference" / "keras-facenet-h5" / "model.json"

# `git hash-object model.h5` of public copies of the original weights file.
KNOWN_GIT_BLOB_IDS = frozenset({
    "6d7db5bda5402f34aee655cff7cba15881173eb5",
    "71f6444b13cbbef20ced2c0ddc7170dbb405aa2a",
})

ORIGINAL_THRESHOLD = 0.7  # the course's verify() threshold on L2-normalised encodings

# Layers whose presence in a Keras weights file marks it as this network's: the first and last
# convolution of the stem, one of each block and reduction, and the head.
SIGNATURE_LAYERS = (
    "Conv2d_1a_3x3", "Conv2d_4b_3x3", "Block35_1_Conv2d_1x1", "Mixed_6a_Branch_0_Conv2d_1a_3x3",
    "Block17_10_Conv2d_1x1", "Mixed_7a_Branch_2_Conv2d_1a_3x3", "Block8_6_Conv2d_1x1",
    "Bottleneck", "Bottleneck_BatchNorm",
)

# What each residual Lambda of the original model.json computes (checked on its bytecode).
SCALE_SUM_EXPRESSION = "inputs[0] + inputs[1] * scale"


class OriginalWeightsError(FaceRecError, ValueError):
    """A weights file that cannot be loaded into the original network; lists what is wrong."""

    def __init__(self, path, problem: str, missing=(), unexpected=(), misshaped=()):
        self.path, self.missing, self.unexpected, self.misshaped = \
            Path(path), list(missing), list(unexpected), list(misshaped)
        lines = [f"{path}: {problem}"]
        for title, items in (("missing from the file", self.missing),
                             ("in the file but not in the network", self.unexpected),
                             ("with the wrong shape (file vs network)", self.misshaped)):
            if items:
                shown = ", ".join(items[:12]) + (f", ... ({len(items) - 12} more)" if len(items) > 12 else "")
                lines.append(f"  {len(items)} weight(s) {title}: {shown}")
        lines.append("  The course weights are a Keras HDF5 file of the Inception-ResNet-v1 network "
                     "(keras-facenet-h5/model.h5, about 90 MB). Remove the damaged file and run "
                     "`make setup` to build it again.")
        super().__init__("\n".join(lines))


class OriginalModelJsonError(FaceRecError, ValueError):
    """The course's model.json is missing or is not the network it should describe."""


class CourseModelNotFoundError(FaceRecError, FileNotFoundError):
    """The model folder lacks the files to load."""


class CourseModelUnreadableError(FaceRecError, OSError):
    """model.h5 is there but cannot be read (a truncated or damaged copy)."""


# --- recognising the original weights file -------------------------------------------------

def git_blob_id(path) -> str:
    """What `git hash-object <path>` prints: SHA-1 of "blob <size>\\0" and the bytes."""
    path = Path(path)
    h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _string_list_attr(group, name: str) -> list[str] | None:
    """A Keras list attribute, including the chunked form (`name0`, `name1`, ...) of long lists."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" not in group.attrs:
        return None
    values, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        values += [_text(v) for v in np.atleast_1d(group.attrs[f"{name}{chunk}"])]
        chunk += 1
    return values


def _weights_group(f):
    """The group holding `layer_names`: the root of a weights file, `model_weights` of a model file."""
    if _string_list_attr(f, "layer_names") is not None:
        return f
    group = f.get("model_weights")
    if group is not None and _string_list_attr(group, "layer_names") is not None:
        return group
    return None


def _keras_layer_names(path) -> list[str] | None:
    """The layer names a Keras HDF5 weights or model file lists, or None if it is not one."""
    import h5py

    if not h5py.is_hdf5(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            group = _weights_group(f)
            return None if group is None else _string_list_attr(group, "layer_names")
    except OSError:  # truncated or locked file
        return None


def identify_original_weights(path) -> str | None:
    """How `path` is recognised as the original weights file ("git blob id ..." or "layout"), or None."""
    path = Path(path)
    if not path.is_file():
        return None
    blob = git_blob_id(path)
    if blob in KNOWN_GIT_BLOB_IDS:
        return f"git blob id {blob}"
    names = _keras_layer_names(path)
    if names is not None and set(SIGNATURE_LAYERS) <= set(names):
        return "layout (Keras HDF5 weights naming the Inception-ResNet-v1 layers)"
    return None


def is_original_weights_file(path) -> bool:
    return identify_original_weights(path) is not None


# --- loading Keras-2 HDF5 weights by name -------------------------------------------------

def _short_weight_name(name: str) -> str:
    """"Block35_1_Conv2d_1x1/kernel:0" (Keras 2) or ".../kernel" (Keras 3) -> "kernel"."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def read_keras_weights(path) -> dict[str, dict[str, np.ndarray]]:
    """{layer: {weight: array}} of every layer that holds weights in a Keras HDF5 file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise OriginalWeightsError(path, "no such file.")
    if not h5py.is_hdf5(path):
        raise OriginalWeightsError(path, "not an HDF5 file.")
    try:
        return _read_weights_group(h5py, path)
    except OSError as error:  # h5py's error for truncated or damaged files
        raise OriginalWeightsError(path, f"cannot be read ({error}); the copy may be incomplete.") from error


def _read_weights_group(h5py, path: Path) -> dict[str, dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        group = _weights_group(f)
        if group is None:
            raise OriginalWeightsError(path, "not a Keras weights file (no `layer_names` attribute "
                                             "at its root nor in `model_weights`).")
        weights = {}
        for layer in _string_list_attr(group, "layer_names"):
            if layer not in group:
                raise OriginalWeightsError(path, f"layer {layer!r} is listed but has no group.")
            names = _string_list_attr(group[layer], "weight_names") or []
            arrays = {}
            for name in names:
                if name not in group[layer]:
                    raise OriginalWeightsError(path, f"weight {layer}/{name} is listed but not stored.")
                arrays[_short_weight_name(name)] = np.asarray(group[layer][name])
            if arrays:
                weights[layer] = arrays
    return weights


@dataclass
class LoadReport:
    path: Path
    loaded: list[str] = field(default_factory=list)  # "layer/weight" of every array assigned

    @property
    def count(self) -> int:
        return len(self.loaded)


def load_original_weights(model, path) -> LoadReport:
    """Set every weight of `model` from the Keras HDF5 file `path`, matched by layer and weight name.

    All or nothing: if any weight of the network is missing from the file, any weight of the file
    has no place in the network, or any shape differs, nothing is assigned and
    `OriginalWeightsError` lists them all.
    """
    path = Path(path)
    stored = read_keras_weights(path)
    missing, misshaped, plan = [], [], []
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{variable.name}"
            value = stored.get(layer.name, {}).get(variable.name)
            if value is None:
                missing.append(key)
            elif tuple(value.shape) != tuple(variable.shape):
                misshaped.append(f"{key} {tuple(value.shape)} vs {tuple(variable.shape)}")
            else:
                plan.append((key, variable, value))
    expected = {f"{layer.name}/{v.name}" for layer in model.layers for v in layer.weights}
    unexpected = [f"{layer}/{name}" for layer, arrays in stored.items() for name in arrays
                  if f"{layer}/{name}" not in expected]
    if missing or unexpected or misshaped:
        raise OriginalWeightsError(path, f"does not fit the {model.name} network.",
                                   missing, unexpected, misshaped)
    report = LoadReport(path)
    for key, variable, value in plan:
        variable.assign(value.astype(variable.dtype, copy=False))
        report.loaded.append(key)
    return report


def build_original_network():
    """`inception_blocks_v2.inception_resnet_v1()` (the module lives at the project root)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("inception_blocks_v2").inception_resnet_v1()


def write_loadable_model_json(folder) -> Path | None:
    """Make `folder/model.json` describe the original network in Keras 3 terms.

    The course's own model.json (Keras 2.4, Lambda layers as Python 3.7 bytecode) no longer loads;
    written from `inception_blocks_v2` instead, `model_from_json` + `load_weights("model.h5")`,
    the notebook's plain Keras way, loads the original weights (Keras reads that file's layers in
    order, which is the same). A different model.json is kept as `model.keras2.json`. Returns the
    path written, or None when it was already right.
    """
    folder = Path(folder)
    target, kept = folder / "model.json", folder / "model.keras2.json"
    wanted = build_original_network().to_json()
    if target.is_file():
        current = target.read_text(errors="replace")
        if current == wanted:
            return None
        if not kept.exists():
            os.replace(target, kept)
    partial = folder / ".model.json.part"
    partial.write_text(wanted)
    os.replace(partial, target)
    return target


def load_original_model(path):
    """The original course network with the weights of the Keras-2 HDF5 file `path`."""
    model = build_original_network()
    load_original_weights(model, path)
    return model


# --- choosing the model a folder holds ----------------------------------------------------

@dataclass(frozen=True)
class ModelInfo:
    """How to feed an embedding network: RGB faces resized to `input_size`, pixels * `pixel_scale`."""

    name: str
    original: bool                  # the course FaceNet (else dlib's ResNet)
    input_size: tuple[int, int]     # (height, width) the network takes
    threshold: float | None         # distance between L2-normalised encodings; None if unknown
    align: bool                     # align faces before encoding (else a plain resize)
    resample: str | None            # Pillow filter of the plain resize the numbers were made with
    weights: Path | None = None
    recognised_by: str | None = None
    pixel_scale: float = 1.0        # the network takes pixel values (0..255) times this
    jpeg_decoder: str = "pillow"    # which libjpeg decodes JPEG photos for it (see facerec.images)


def is_original_network(model) -> bool:
    """Whether `model` is the course network of `inception_blocks_v2` (it takes pixels / 255)."""
    return getattr(model, "name", None) == "inception_resnet_v1" and any(
        layer.name == "Block8_6_ScaleSum" for layer in getattr(model, "layers", ()))


def model_info(model, weights=None, recognised_by: str | None = None) -> ModelInfo:
    """What callers need to know to feed `model` its network's own way, read from the model itself.

    For the course's FaceNet that is the course's way. facerec.encode can feed it otherwise (the
    real-photo tools feed it as FaceNet was trained): there, `facerec.encode.feed_of(model)` decides.
    """
    size = tuple(int(n) for n in model.input_shape[1:3])
    if is_original_network(model):
        # The course fed plain (nearest-neighbour) resizes of its pre-cropped 96x96 photos, no
        # alignment, pixels / 255, JPEGs decoded by IJG libjpeg 9: the published distances
        # (0.5992949, 1.0259346, 0.0) come from exactly that.
        return ModelInfo("inception_resnet_v1 (the course's FaceNet)", True, size,
                         ORIGINAL_THRESHOLD, align=False, resample="nearest",
                         weights=weights, recognised_by=recognised_by,
                         pixel_scale=1 / 255, jpeg_decoder="libjpeg9")
    return ModelInfo(model.name, False, size, _default_threshold(), align=True, resample=None,
                     weights=weights, recognised_by=recognised_by)


def _default_threshold() -> float | None:
    try:
        encode = importlib.import_module("facerec.encode")
    except ModuleNotFoundError as error:
        if error.name != "facerec.encode":
            raise
        return None
    return getattr(encode, "DISTANCE_THRESHOLD", None)


def _model_folder(folder) -> Path:
    """A relative folder is looked up in the working directory, then in the project folder."""
    folder = Path(folder).expanduser()
    if folder.is_absolute() or (Path.cwd() / folder / "model.h5").is_file():
        return folder
    return ROOT / folder if (ROOT / folder / "model.h5").is_file() else folder


def load_course_model(folder="keras-facenet-h5"):
    """(model, ModelInfo) for what `folder` holds: the course FaceNet or dlib's ResNet.

    The course network is built from `inception_blocks_v2` whenever `folder/model.h5` holds its
    weights (by git blob id or layout; `model.json` is then not needed, and the course's own
    Keras-2 model.json would not load anyway). A file that looks like those weights but does not
    fit the network raises `OriginalWeightsError` rather than silently loading another model.
    """
    folder = _model_folder(folder)
    weights = folder / "model.h5"
    if not weights.is_file():
        raise CourseModelNotFoundError(
            f"{weights} not found. Run `make setup` in the project folder: it builds the course "
            "network into keras-facenet-h5/ and dlib's into dlib-resnet-h5/.")
    reason = identify_original_weights(weights)
    if reason is not None:
        model = load_original_model(weights)
        return model, model_info(model, weights, reason)

    import keras

    architecture = folder / "model.json"
    if not architecture.is_file():
        raise CourseModelNotFoundError(
            f"{architecture} not found beside {weights}. Run `make setup` to build it again.")
    model = keras.models.model_from_json(architecture.read_text())
    try:
        model.load_weights(str(weights))
    except OSError as error:  # h5py cannot open it: not recognisable as either model
        raise CourseModelUnreadableError(
            f"{weights} cannot be read ({error}). The copy may be incomplete: delete it and run "
            "`make setup` to build it again."
        ) from error
    return model, model_info(model, weights)


# --- the proof: the original model.json, read independently -------------------------------

def read_model_json(path=REFERENCE_JSON) -> dict:
    path = Path(path)
    if not path.is_file():
        raise OriginalModelJsonError(
            f"{path} not found. It is the course's original model.json; `make setup` installs it "
            "from the assets folder (reference/keras-facenet-h5/model.json).")
    return json.loads(path.read_text())


class _Marshal37:
    """Reads the few marshal types a Python 3.7 lambda's code object uses. Never executes it."""

    FLAG_REF = 0x80

    def __init__(self, data: bytes):
        self.data, self.pos, self.refs = data, 0, []

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("marshalled data ends early")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def object(self):
        code = self.take(1)[0]
        kind, ref = chr(code & ~self.FLAG_REF), code & self.FLAG_REF
        slot = len(self.refs)
        if ref:
            self.refs.append(None)  # reserved before the contents, as marshal does
        if kind == "N":
            value = None
        elif kind in "FT":
            value = kind == "T"
        elif kind == "i":
            value = self.int32()
        elif kind == "s":
            value = self.take(self.int32())
        elif kind in "zZ":
            value = self.take(self.take(1)[0]).decode("ascii")
        elif kind in "aAut":
            value = self.take(self.int32()).decode("utf8")
        elif kind == ")":
            value = tuple(self.object() for _ in range(self.take(1)[0]))
        elif kind == "(":
            value = tuple(self.object() for _ in range(self.int32()))
        elif kind == "r":
            return self.refs[self.int32()]
        elif kind == "c":
            argcount, _kwonly, _nlocals, _stack, _flags = (self.int32() for _ in range(5))
            code_bytes, consts, names, varnames = (self.object() for _ in range(4))
            _free, _cell, _filename, name = (self.object() for _ in range(4))
            self.int32()  # first line number
            self.object()  # line number table
            value = dict(argcount=argcount, code=code_bytes, consts=consts, names=names,
                         varnames=varnames, name=name)
        else:
            raise ValueError(f"marshal type {kind!r} is not one a simple lambda uses")
        if ref:
            self.refs[slot] = value
        return value


# CPython 3.7 opcodes a lambda like `lambda inputs, scale: ...` compiles to.
_OPCODES_37 = {124: "LOAD_FAST", 100: "LOAD_CONST", 25: "BINARY_SUBSCR", 20: "BINARY_MULTIPLY",
               23: "BINARY_ADD", 24: "BINARY_SUBTRACT", 27: "BINARY_TRUE_DIVIDE", 83: "RETURN_VALUE"}
_BINARY = {"BINARY_MULTIPLY": "*", "BINARY_ADD": "+", "BINARY_SUBTRACT": "-", "BINARY_TRUE_DIVIDE": "/"}


def lambda_expression(function) -> str:
    """The expression a Keras-2 Lambda's marshalled function returns, decoded without running it.

    `function` is the Lambda config's `function` field: [base64 of the marshalled code, defaults,
    closure]. Reads the code object and walks its bytecode symbolically.
    """
    encoded = function[0] if isinstance(function, (list, tuple)) else function
    code = _Marshal37(base64.b64decode(encoded)).object()
    if not isinstance(code, dict):
        raise ValueError("the Lambda's function is not a marshalled code object")
    stack = []
    ops = code["code"]
    for i in range(0, len(ops), 2):
        op, arg = _OPCODES_37.get(ops[i]), ops[i + 1]
        if op == "LOAD_FAST":
            stack.append(code["varnames"][arg])
        elif op == "LOAD_CONST":
            stack.append(repr(code["consts"][arg]))
        elif op == "BINARY_SUBSCR":
            index = stack.pop()
            stack.append(f"{stack.pop()}[{index}]")
        elif op in _BINARY:
            right, left = stack.pop(), stack.pop()
            if _BINARY[op] in "*/":
                left, right = (f"({s})" if " + " in s or " - " in s else s for s in (left, right))
            stack.append(f"{left} {_BINARY[op]} {right}")
        elif op == "RETURN_VALUE":
            return stack.pop()
        else:
            raise ValueError(f"opcode {ops[i]} at offset {i} is not part of a simple arithmetic lambda")
    raise ValueError("the Lambda's bytecode does not return")


def _proof_scale_sum_layer():
    import keras

    class ScaleSum(keras.layers.Layer):
        """`inputs[0] + inputs[1] * scale`: what each residual Lambda of the original computes."""

        def __init__(self, scale, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

        def call(self, inputs):
            return inputs[0] + inputs[1] * self.scale

        def get_config(self):
            return {**super().get_config(), "scale": self.scale}

    return ScaleSum


def build_from_model_json(path=REFERENCE_JSON):
    """The original network built by Keras's own deserialiser from the course's model.json.

    Independent of `inception_blocks_v2`: the graph comes from the JSON, each `Lambda` being
    replaced by a layer computing the expression its bytecode returns (checked here) with its
    stored `scale`. Its input is the course's: pixels already scaled to [0, 1].
    """
    import keras

    config = read_model_json(path)
    layers = config["config"]["layers"]
    for layer in layers:
        if layer["class_name"] != "Lambda":
            continue
        lam = layer["config"]
        found = lambda_expression(lam["function"])
        if found != SCALE_SUM_EXPRESSION or set(lam.get("arguments") or {}) != {"scale"}:
            raise OriginalModelJsonError(
                f"{path}: Lambda {layer['name']} computes {found} with arguments "
                f"{lam.get('arguments')}, not {SCALE_SUM_EXPRESSION}: this is not the course's model.json.")
        layer["class_name"] = "ScaleSum"
        layer["config"] = {"name": lam["name"], "trainable": lam["trainable"], "dtype": lam["dtype"],
                           "scale": lam["arguments"]["scale"]}
    with keras.saving.custom_object_scope({"ScaleSum": _proof_scale_sum_layer()}):
        return keras.Model.from_config(config["config"])


def weight_layout_from_model_json(config: dict) -> dict[str, list[tuple[str, tuple[int, ...]]]]:
    """{layer: [(weight name, shape), ...]} in Keras 2's order, from the JSON alone (no Keras).

    Channel counts are propagated through the graph; a Conv2D holds kernel (kh, kw, in, filters)
    and a bias if `use_bias`, a BatchNormalization gamma if `scale`, beta if `center`, then the
    moving mean and variance, a Dense kernel (in, units) and a bias if `use_bias`.
    """
    channels, layout = {}, {}
    for layer in config["config"]["layers"]:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        inputs = [channels[inbound[0]] for node in layer["inbound_nodes"] for inbound in node]
        weights = []
        if kind == "InputLayer":
            out = cfg["batch_input_shape"][-1]
        elif kind in ("Conv2D", "Dense"):
            out = cfg["filters"] if kind == "Conv2D" else cfg["units"]
            kernel = (*cfg["kernel_size"], inputs[0], out) if kind == "Conv2D" else (inputs[0], out)
            weights = [("kernel", kernel)] + ([("bias", (out,))] if cfg["use_bias"] else [])
        elif kind == "BatchNormalization":
            out = inputs[0]
            weights = ([("gamma", (out,))] if cfg["scale"] else []) + \
                      ([("beta", (out,))] if cfg["center"] else []) + \
                      [("moving_mean", (out,)), ("moving_variance", (out,))]
        elif kind == "Concatenate":
            out = sum(inputs)
        elif kind in ("Activation", "MaxPooling2D", "GlobalAveragePooling2D", "Dropout", "Lambda"):
            if len(set(inputs)) != 1:
                raise OriginalModelJsonError(f"layer {name} joins inputs of different widths {inputs}")
            out = inputs[0]
        else:
            raise OriginalModelJsonError(f"layer {name}: {kind} is not a layer of the course's network")
        channels[name] = out
        if weights:
            layout[name] = weights
    return layout


def synthetic_weights(layout, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Random float32 weights of the right shapes that keep activations finite and varied.

    He-scaled kernels, small biases and betas, moving means near 0, moving variances in [0.5, 1.5].
    """
    rng = np.random.default_rng(seed)
    values = {}
    for layer, weights in layout.items():
        values[layer] = {}
        for name, shape in weights:
            if name == "kernel":
                fan_in = int(np.prod(shape[:-1]))
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2 / fan_in))
            elif name == "moving_variance":
                value = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            elif name == "gamma":
                value = rng.uniform(0.8, 1.2, shape).astype(np.float32)
            else:  # bias, beta, moving_mean
                value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
            values[layer][name] = value
    return values


def _fixed_length_strings(values: list[str]):
    """A list attribute as Keras 2 with h5py 2 stored it: fixed-length bytes ("|S"), or [] when empty."""
    return np.array([v.encode("utf8") for v in values], dtype="S") if values else []


def write_keras2_weights(path, config: dict, values, full_model: bool = True,
                         keras_version: str = "2.4.0") -> Path:
    """Write `values` ({layer: {weight: array}}) in the HDF5 layout Keras 2.4 writes.

    full_model=True is `model.save("model.h5")`: root attributes `keras_version`, `backend`,
    `model_config` (the JSON) and the weights in group `model_weights`; False is
    `model.save_weights("model.h5")`: the weights at the root. Either way the weights group has
    attributes `layer_names` (every layer, in the model's order), `backend`, `keras_version`, and
    one group per layer with attribute `weight_names` ("<layer>/<weight>:0", empty for layers
    without weights) and the arrays stored under those names.
    """
    import h5py

    path = Path(path)
    names = [layer["name"] for layer in config["config"]["layers"]]
    with h5py.File(path, "w") as f:
        group = f
        if full_model:
            f.attrs["keras_version"] = keras_version
            f.attrs["backend"] = "tensorflow"
            model_config = {"class_name": config["class_name"], "config": config["config"]}
            f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
            group = f.create_group("model_weights")
        group.attrs["layer_names"] = _fixed_length_strings(names)
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = keras_version.encode("utf8")
        for name in sorted(names):
            layer_group = group.create_group(name)
            arrays = values.get(name, {})
            weight_names = [f"{name}/{weight}:0" for weight in arrays]
            layer_group.attrs["weight_names"] = _fixed_length_strings(weight_names)
            for weight_name, value in zip(weight_names, arrays.values()):
                layer_group.create_dataset(weight_name, data=value)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Say which model a folder holds and load it.")
    parser.add_argument("folder", nargs="?", default="keras-facenet-h5")
    args = parser.parse_args(argv)
    try:
        model, info = load_course_model(args.folder)
    except FaceRecError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{info.name}: input {info.input_size[0]}x{info.input_size[1]}, threshold {info.threshold}, "
          f"align {info.align}, {model.count_params():,} parameters"
          + (f", recognised by {info.recognised_by}" if info.recognised_by else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
