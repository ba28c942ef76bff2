"""Convert dlib's face-recognition ResNet into a Keras 3 model built from standard layers.

    python -m facerec.convert [--dat FILE] [--out dlib-resnet-h5]

writes `model.json` (the architecture) and `model.h5` (the weights, in Keras's HDF5 weights
layout), which load with plain `model_from_json` + `load_weights`, no custom objects.

How dlib's layers map to Keras (facts in ../shared/dlib-resnet-format.md):
- input normalisation `(pixel - mean_rgb) / 256` is a `Rescaling` layer, so callers feed plain
  RGB pixel values 0..255 of a 150x150 aligned face chip;
- each convolution and the frozen batch-norm ("affine") after it become one `Conv2D`
  (the affine is folded into the kernel and bias);
- stride-2 convolutions and pools use no padding ('valid'), stride-1 3x3 convolutions 'same';
- dlib's residual add zero-extends the smaller operand at the high end (extra channels after
  the existing ones, extra rows/columns at the bottom/right): `ZeroPadding2D` and a
  `Reshape`/`ZeroPadding3D`/`Reshape` sandwich for channels, both exact and parameter-free;
- the head is a global average pool and a 256 -> 128 `Dense` without bias. The output is
  dlib's raw descriptor (not L2-normalised).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from facerec import dlib_format
from facerec.dlib_format import STAGES, DlibNetwork

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def dlib_model_path() -> Path:
    """dlib's network file as shipped by the `face_recognition_models` package."""
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def fold_affine(con: dlib_format.Layer, affine: dlib_format.Layer) -> tuple[np.ndarray, np.ndarray]:
    """Keras (kh, kw, in, out) kernel and bias of `affine(conv(x))` as one convolution."""
    w = con.params["weights"].astype(np.float64)  # (out, in, kh, kw)
    gamma = affine.params["gamma"].astype(np.float64)
    beta = affine.params["beta"].astype(np.float64)
    kernel = w.transpose(2, 3, 1, 0) * gamma  # gamma scales each output channel
    bias = gamma * con.params["bias"].astype(np.float64) + beta
    return kernel.astype(np.float32), bias.astype(np.float32)


class _Builder:
    """Walks dlib's layers in forward order, building the Keras graph and its weights."""

    def __init__(self, net: DlibNetwork):
        self.layers = iter(net.layers)
        self.weights: dict[str, list[np.ndarray]] = {}

    def take(self, kind: str) -> dlib_format.Layer:
        layer = next(self.layers, None)
        if layer is None or layer.kind != kind:
            found = "the end of the network" if layer is None else layer.kind
            raise dlib_format.DlibFormatError(f"expected a {kind} layer, found {found}")
        return layer

    def conv(self, x, name: str, relu: bool):
        from keras import layers

        con, affine = self.take("con"), self.take("affine")
        if relu:
            self.take("relu")
        kernel, bias = fold_affine(con, affine)
        kh, kw = kernel.shape[:2]
        stride, pad = con.params["stride"], con.params["padding"]
        if pad == (0, 0):
            padding = "valid"
        elif stride == (1, 1) and pad == (kh // 2, kw // 2) and kh % 2 and kw % 2:
            padding = "same"  # symmetric for odd kernels at stride 1
        else:
            x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
            padding = "valid"
        x = layers.Conv2D(kernel.shape[3], (kh, kw), strides=stride, padding=padding,
                          activation="relu" if relu else None, name=name)(x)
        self.weights[name] = [kernel, bias]
        return x

    def pool(self, x, kind: str, name: str):
        from keras import layers

        p = self.take(kind).params
        if p["padding"] != (0, 0):
            raise dlib_format.DlibFormatError(f"padded {kind} is not supported ({name})")
        cls = layers.MaxPooling2D if kind == "max_pool" else layers.AveragePooling2D
        return cls(p["size"], p["stride"], padding="valid", name=name)(x)

    @staticmethod
    def zero_extend(x, height: int, width: int, channels: int, name: str):
        """dlib's add_prev: missing rows, columns and channels are zeros at the high end."""
        from keras import layers

        _, h, w, c = x.shape
        if (h, w) != (height, width):
            x = layers.ZeroPadding2D(((0, height - h), (0, width - w)), name=f"{name}_pad_hw")(x)
        if c != channels:
            x = layers.Reshape((height, width, c, 1), name=f"{name}_to_3d")(x)
            x = layers.ZeroPadding3D(((0, 0), (0, 0), (0, channels - c)), name=f"{name}_pad_channels")(x)
            x = layers.Reshape((height, width, channels), name=f"{name}_to_2d")(x)
        return x

    def residual_block(self, x, name: str, down: bool):
        from keras import layers

        h = self.conv(x, f"{name}_conv1", relu=True)
        h = self.conv(h, f"{name}_conv2", relu=False)
        shortcut = self.pool(x, "avg_pool", f"{name}_shortcut_pool") if down else x
        self.take("add_prev")
        height, width, channels = (max(a, b) for a, b in zip(shortcut.shape[1:], h.shape[1:]))
        shortcut = self.zero_extend(shortcut, height, width, channels, f"{name}_shortcut")
        h = self.zero_extend(h, height, width, channels, f"{name}_residual")
        x = layers.Add(name=f"{name}_add")([shortcut, h])
        self.take("relu")
        return layers.ReLU(name=f"{name}_relu")(x)


def build_keras_model(net: DlibNetwork):
    """The Keras model equivalent to dlib's network, with the converted weights set."""
    import keras
    from keras import layers

    b = _Builder(net)
    rows, cols = net.input_size
    image = keras.Input((rows, cols, 3), name="image")
    mean = np.asarray(net.input_mean_rgb, dtype=np.float32)
    # (pixel - mean) / 256 per channel, exactly as dlib's input layer computes it.
    x = layers.Rescaling(1 / 256, offset=[float(v) for v in -mean / 256], name="normalize")(image)
    x = b.conv(x, "stem_conv", relu=True)
    x = b.pool(x, "max_pool", "stem_pool")
    for stage, (_channels, plain_blocks, down) in enumerate(STAGES, start=1):
        blocks = ([True] if down else []) + [False] * plain_blocks
        for block, is_down in enumerate(blocks, start=1):
            x = b.residual_block(x, f"stage{stage}_block{block}", down=is_down)
    b.take("avg_pool")  # dlib's avg_pool_everything
    x = layers.GlobalAveragePooling2D(name="embedding_pool")(x)
    fc = b.take("fc")
    x = layers.Dense(fc.params["weights"].shape[1], use_bias=False, name="embedding")(x)
    b.weights["embedding"] = [fc.params["weights"]]
    if next(b.layers, None) is not None:
        raise dlib_format.DlibFormatError("layers left over after the head")

    model = keras.Model(image, x, name="dlib_resnet_face_embedding")
    for name, values in b.weights.items():
        model.get_layer(name).set_weights(values)
    return model


def save(model, out_dir: Path) -> tuple[Path, Path]:
    """Write model.json and model.h5 (Keras's HDF5 weights layout) atomically."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, h5_path = out_dir / "model.json", out_dir / "model.h5"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_json, tmp_h5 = Path(tmp) / "model.json", Path(tmp) / "model.h5"
        tmp_json.write_text(model.to_json())
        # Keras 3's own save_weights only writes *.weights.h5; the course's file is named
        # model.h5, so write Keras's legacy HDF5 weights layout, which load_weights reads.
        with h5py.File(tmp_h5, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
        os.replace(tmp_json, json_path)
        os.replace(tmp_h5, h5_path)
    return json_path, h5_path


def convert(dat_path: Path | None = None, out_dir: Path = Path("dlib-resnet-h5")):
    net = dlib_format.load(dat_path or dlib_model_path())
    model = build_keras_model(net)
    return save(model, Path(out_dir))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dat", type=Path, help="dlib .dat file (default: face_recognition_models')")
    parser.add_argument("--out", type=Path, default=Path("dlib-resnet-h5"))
    args = parser.parse_args(argv)
    for path in convert(args.dat, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
