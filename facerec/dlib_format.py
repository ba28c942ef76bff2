"""Read dlib's serialised face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`).

The file holds one C++ object, `loss_metric<fc_no_bias<128, ...>>`, written by dlib's
`serialize()`. It stores parameters but not the graph: which wrapper is a tag, a skip or a
layer comes from the C++ type. So the parser is driven by that type (`NETWORK`, below), and
checks every version number and record name it meets against it; anything unexpected stops
the parse with the byte offset. Layout facts: ../shared/dlib-resnet-format.md.

Only numpy is needed; dlib itself is not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class DlibFormatError(ValueError):
    """The file is not the dlib network this parser knows."""


# ---------------------------------------------------------------------------------------------
# The network, in forward order (input first), as dlib's C++ type spells it:
#   stem:   con<32,7,7,2,2> -> affine -> relu -> max_pool<3,3,2,2>
#   stages: 3 x ares<32>; ares_down<64> + 3 x ares<64>; ares_down<128> + 2 x ares<128>;
#           ares_down<256> + 2 x ares<256>; ares_down<256>
#   head:   avg_pool_everything -> fc_no_bias<128>
# ares      = tag1, con s1, affine, relu, con s1, affine, add_prev1, relu
# ares_down = tag1, con s2, affine, relu, con s1, affine, tag2, skip1, avg_pool 2x2/2, add_prev2, relu
# ---------------------------------------------------------------------------------------------
STAGES = ((32, 3, False), (64, 3, True), (128, 2, True), (256, 2, True), (256, 0, True))
"""(channels, plain residual blocks, starts with a downsampling block) for each stage."""


def _residual_block(down: bool) -> list[str]:
    ops = ["tag", "con", "affine", "relu", "con", "affine"]
    if down:
        ops += ["tag", "skip", "avg_pool"]
    return ops + ["add_prev", "relu"]


def network_ops() -> list[str]:
    """Every wrapper of the network in forward order: 'tag'/'skip' or a layer kind."""
    ops = ["con", "affine", "relu", "max_pool"]
    for _channels, plain_blocks, down in STAGES:
        if down:
            ops += _residual_block(down=True)
        for _ in range(plain_blocks):
            ops += _residual_block(down=False)
    return ops + ["avg_pool", "fc"]


# The record names each layer kind is stored under in this file (older dlib record versions:
# con_4 has no use_bias/use_relu flags, affine_ no `disabled` flag, fc_2 no use_bias flag).
RECORD_NAMES = {
    "con": "con_4",
    "affine": "affine_",
    "relu": "relu_",
    "max_pool": "max_pool_2",
    "avg_pool": "avg_pool_2",
    "add_prev": "add_prev_",
    "fc": "fc_2",
}


@dataclass
class Layer:
    """One dlib layer with its parameters (numpy, dlib's own layout)."""

    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class DlibNetwork:
    input_mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    loss_margin: float
    distance_threshold: float
    ops: list[str]
    layers: list[Layer]
    """The layers (not tags/skips) in forward order, aligned with the non-tag entries of `ops`."""

    @property
    def parameter_count(self) -> int:
        return sum(int(v.size) for layer in self.layers for v in layer.params.values()
                   if isinstance(v, np.ndarray))


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, message: str):
        raise DlibFormatError(f"byte {self.pos:#x}: {message}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(f"file ends early (needed {n} more bytes)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int_(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if not 1 <= size <= 8:
            self.fail(f"bad integer control byte {control:#04x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def uint(self) -> int:
        control = self.data[self.pos] if self.pos < len(self.data) else 0
        if control & 0x80:
            self.fail("negative value where an unsigned integer belongs")
        return self.int_()

    def bool_(self) -> bool:
        b = self.take(1)
        if b not in (b"0", b"1"):
            self.fail(f"bad bool byte {b!r}")
        return b == b"1"

    def string(self) -> str:
        n = self.uint()
        return self.take(n).decode("ascii")

    def float_(self) -> float:
        mantissa = self.int_()
        exponent = self.int_()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in special:
            return special[exponent]
        return math.ldexp(mantissa, exponent)

    def expect_int(self, want: int, what: str):
        start = self.pos
        got = self.int_()
        if got != want:
            self.pos = start
            self.fail(f"expected {what} = {want}, found {got}")

    def expect_name(self, want: str):
        start = self.pos
        got = self.string()
        if got != want:
            self.pos = start
            self.fail(f"expected record {want!r}, found {got!r}")

    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self.int_() for _ in range(4))  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        self.expect_int(2, "tensor version")
        shape = self.shape()
        count = int(np.prod(shape))
        values = np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape)
        return values.astype(np.float32)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        self.expect_int(1, "alias_tensor version")
        return self.shape()


def _read_layer(r: _Reader, kind: str) -> Layer:
    r.expect_name(RECORD_NAMES[kind])
    layer = Layer(kind)
    p = layer.params
    if kind == "con":
        flat = r.tensor().reshape(-1)
        num_filters, nr, nc = r.int_(), r.int_(), r.int_()
        p["stride"] = (r.int_(), r.int_())
        p["padding"] = (r.int_(), r.int_())
        filters_shape = r.alias_tensor()
        biases_shape = r.alias_tensor()
        for _ in range(4):  # learning-rate and weight-decay multipliers: training only
            r.float_()
        n_weights = int(np.prod(filters_shape))
        if filters_shape[0] != num_filters or filters_shape[2:] != (nr, nc) \
                or flat.size != n_weights + num_filters or biases_shape != (1, num_filters, 1, 1):
            r.fail(f"inconsistent convolution shapes {filters_shape}, {biases_shape}, {flat.size}")
        p["weights"] = flat[:n_weights].reshape(filters_shape)  # (out, in, kh, kw)
        p["bias"] = flat[n_weights:]
    elif kind == "affine":
        flat = r.tensor().reshape(-1)
        gamma_shape, beta_shape = r.alias_tensor(), r.alias_tensor()
        mode = r.int_()
        channels = gamma_shape[1]
        if mode != 0 or flat.size != 2 * channels or gamma_shape != beta_shape:
            r.fail(f"unsupported affine layer (mode {mode}, shape {gamma_shape})")
        p["gamma"], p["beta"] = flat[:channels], flat[channels:]
    elif kind in ("max_pool", "avg_pool"):
        nr, nc = r.int_(), r.int_()
        p["size"] = (nr, nc)
        p["stride"] = (r.int_(), r.int_())
        p["padding"] = (r.int_(), r.int_())
    elif kind == "fc":
        num_outputs, num_inputs = r.uint(), r.uint()
        weights = r.tensor()
        r.alias_tensor(), r.alias_tensor()
        bias_mode = r.int_()
        for _ in range(4):
            r.float_()
        if bias_mode != 1 or weights.shape != (num_inputs, num_outputs, 1, 1):
            r.fail(f"expected fc_no_bias {num_inputs}->{num_outputs}, found shape {weights.shape}")
        p["weights"] = weights.reshape(num_inputs, num_outputs)  # y = x @ W
    return layer


def _read_trailer(r: _Reader, on_input: bool, version: int):
    for _ in range(3):
        r.bool_()
    r.tensor(), r.tensor()  # x_grad, cached_output: empty in a saved network
    if on_input:
        r.tensor()  # grad_final
        if version == 3:
            r.uint()  # sample expansion factor
    elif version == 2:
        r.tensor()  # params_grad


def parse(data: bytes) -> DlibNetwork:
    """Parse the bytes of `dlib_face_recognition_resnet_model_v1.dat`."""
    r = _Reader(data)
    r.expect_int(1, "add_loss_layer version")
    r.expect_name("loss_metric_2")
    margin, threshold = r.float_(), r.float_()

    ops = network_ops()
    # Version numbers come first, outermost wrapper (fc) to innermost (the stem convolution).
    versions = []
    for i, op in enumerate(reversed(ops)):
        innermost = i == len(ops) - 1
        if op in ("tag", "skip"):
            r.expect_int(1, f"{op} layer version")
        elif innermost:
            v = r.int_()
            if v not in (2, 3):
                r.fail(f"unsupported input add_layer version {v}")
            versions.append(v)
        else:
            r.expect_int(2, f"add_layer version ({op})")
            versions.append(2)

    r.expect_name("input_rgb_image_sized")
    mean = (r.float_(), r.float_(), r.float_())
    size = (r.uint(), r.uint())

    layers = []
    input_version = versions[-1]
    for i, op in enumerate(o for o in ops if o not in ("tag", "skip")):
        layers.append(_read_layer(r, op))
        _read_trailer(r, on_input=i == 0, version=input_version if i == 0 else 2)
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} bytes left over after the last layer")
    return DlibNetwork(mean, size, margin, threshold, ops, layers)


def load(path) -> DlibNetwork:
    with open(path, "rb") as f:
        return parse(f.read())
