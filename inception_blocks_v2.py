"""The course network: FaceNet's Inception-ResNet-v1, as named blocks of Keras 3 layers.

    model = inception_resnet_v1()      # or the course's name for it: faceRecoModel((160, 160, 3))

Input: a batch of RGB faces, shape (m, 160, 160, 3), pixel values divided by 255 (0..1), as the
course fed it. Output: the 128-number bottleneck, shape (m, 128); callers divide each row by its
L2 norm before comparing faces. `make setup` builds this network, loads the pretrained weights
into it and writes `keras-facenet-h5/model.json` + `model.h5` (see facerec/course_weights.py).

The network, from input to output (sizes for a 160x160 face):
- `stem`: six plain convolutions and a max-pool shrink the face to 17x17 with 256 channels;
- five Inception-ResNet-A blocks (`Block35_1..5`, 17x17), ten Inception-ResNet-B blocks
  (`Block17_1..10`, 8x8) and six Inception-ResNet-C blocks (`Block8_1..6`, 3x3). Each block runs
  a few small convolution branches side by side, concatenates them, projects them back to its
  input's width with a 1x1 convolution and adds the result to its input, scaled down first
  (0.17, 0.10, 0.20): small residual steps keep a deep network stable in training;
- two reductions (`Mixed_6a`, `Mixed_7a`) halve the grid between the block types, with strided
  convolutions and a max-pool side by side;
- `embedding_head`: average over the grid (1792 numbers), dropout (training only), a linear
  `Bottleneck` to 128 numbers and a batch normalisation.

Sources of the layout (facts, not code): Szegedy et al. 2016, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning" (the stem, the
Inception-ResNet-A/B/C blocks, reductions A/B and the scaled residual sum); Schroff et al.
2015, "FaceNet" (a 128-d embedding); David Sandberg's `facenet` (the v1 variant for faces and
its layer names, e.g. `Block35_1_Branch_2_Conv2d_0b_3x3`, kept by the course's model.json).

Layer names and weight shapes match the course's model.json one to one, so Keras-2 weights of
that network load by name. The only layers added carry no weights: each residual block's
`<block>_Scale` (a `Rescaling`) multiplies the residual branch by the block's scale before the
`Add`, which keeps the original `<block>_ScaleSum` name; together they compute what the
original's `Lambda` layers did (`shortcut + residual * scale`) without Python code in the JSON.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

INPUT_SIZE = (160, 160)
EMBEDDING_SIZE = 128

# Residual scales, as the course's model.json stores them in each Lambda's `arguments`.
BLOCK35_SCALE = 0.17
BLOCK17_SCALE = 0.10
BLOCK8_SCALE = 0.20

# Frozen batch-norm settings of the original (no gamma: `scale=False`).
_BN = dict(momentum=0.995, epsilon=0.001, center=True, scale=False)


def conv_bn(x, filters: int, kernel_size, name: str, strides=1, padding: str = "same"):
    """Convolution without bias, batch norm, ReLU: `name`, `name_BatchNorm`, `name_Activation`."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                      name=name)(x)
    x = layers.BatchNormalization(axis=-1, name=f"{name}_BatchNorm", **_BN)(x)
    return layers.Activation("relu", name=f"{name}_Activation")(x)


def scaled_residual(shortcut, branches: list, scale: float, name: str, relu: bool = True):
    """Concatenate the branches, project back to the shortcut's width, add `scale` times it."""
    mixed = layers.Concatenate(axis=-1, name=f"{name}_Concatenate")(branches)
    residual = layers.Conv2D(shortcut.shape[-1], 1, padding="same", use_bias=True,
                             name=f"{name}_Conv2d_1x1")(mixed)
    residual = layers.Rescaling(scale, name=f"{name}_Scale")(residual)
    x = layers.Add(name=f"{name}_ScaleSum")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_Activation")(x) if relu else x


def stem(x):
    """160x160x3 -> 17x17x256: plain convolutions and one max-pool."""
    x = conv_bn(x, 32, 3, "Conv2d_1a_3x3", strides=2, padding="valid")
    x = conv_bn(x, 32, 3, "Conv2d_2a_3x3", padding="valid")
    x = conv_bn(x, 64, 3, "Conv2d_2b_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="MaxPool_3a_3x3")(x)
    x = conv_bn(x, 80, 1, "Conv2d_3b_1x1", padding="valid")
    x = conv_bn(x, 192, 3, "Conv2d_4a_3x3", padding="valid")
    return conv_bn(x, 256, 3, "Conv2d_4b_3x3", strides=2, padding="valid")


def inception_resnet_a(x, name: str, scale: float = BLOCK35_SCALE):
    """Block35 (17x17): three branches of 32 channels, 1x1 / 3x3 / two stacked 3x3."""
    b0 = conv_bn(x, 32, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 32, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 32, 3, f"{name}_Branch_1_Conv2d_0b_3x3")
    b2 = conv_bn(x, 32, 1, f"{name}_Branch_2_Conv2d_0a_1x1")
    b2 = conv_bn(b2, 32, 3, f"{name}_Branch_2_Conv2d_0b_3x3")
    b2 = conv_bn(b2, 32, 3, f"{name}_Branch_2_Conv2d_0c_3x3")
    return scaled_residual(x, [b0, b1, b2], scale, name)


def reduction_a(x):
    """Mixed_6a: 17x17x256 -> 8x8x896 by a strided 3x3, a 1x1-3x3-strided 3x3, a max-pool."""
    b0 = conv_bn(x, 384, 3, "Mixed_6a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = conv_bn(x, 192, 1, "Mixed_6a_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 192, 3, "Mixed_6a_Branch_1_Conv2d_0b_3x3")
    b1 = conv_bn(b1, 256, 3, "Mixed_6a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_6a_Branch_2_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_6a")([b0, b1, b2])


def inception_resnet_b(x, name: str, scale: float = BLOCK17_SCALE):
    """Block17 (8x8): a 1x1 branch and a factorised 1x7 / 7x1 branch, 128 channels each."""
    b0 = conv_bn(x, 128, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 128, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 128, (1, 7), f"{name}_Branch_1_Conv2d_0b_1x7")
    b1 = conv_bn(b1, 128, (7, 1), f"{name}_Branch_1_Conv2d_0c_7x1")
    return scaled_residual(x, [b0, b1], scale, name)


def reduction_b(x):
    """Mixed_7a: 8x8x896 -> 3x3x1792 by three strided convolution branches and a max-pool."""
    b0 = conv_bn(x, 256, 1, "Mixed_7a_Branch_0_Conv2d_0a_1x1")
    b0 = conv_bn(b0, 384, 3, "Mixed_7a_Branch_0_Conv2d_1a_3x3", strides=2, padding="valid")
    b1 = conv_bn(x, 256, 1, "Mixed_7a_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 256, 3, "Mixed_7a_Branch_1_Conv2d_1a_3x3", strides=2, padding="valid")
    b2 = conv_bn(x, 256, 1, "Mixed_7a_Branch_2_Conv2d_0a_1x1")
    b2 = conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_0b_3x3")
    b2 = conv_bn(b2, 256, 3, "Mixed_7a_Branch_2_Conv2d_1a_3x3", strides=2, padding="valid")
    b3 = layers.MaxPooling2D(3, strides=2, padding="valid", name="Mixed_7a_Branch_3_MaxPool_1a_3x3")(x)
    return layers.Concatenate(axis=-1, name="Mixed_7a")([b0, b1, b2, b3])


def inception_resnet_c(x, name: str, scale: float = BLOCK8_SCALE, relu: bool = True):
    """Block8 (3x3): a 1x1 branch and a factorised 1x3 / 3x1 branch, 192 channels each."""
    b0 = conv_bn(x, 192, 1, f"{name}_Branch_0_Conv2d_1x1")
    b1 = conv_bn(x, 192, 1, f"{name}_Branch_1_Conv2d_0a_1x1")
    b1 = conv_bn(b1, 192, (1, 3), f"{name}_Branch_1_Conv2d_0b_1x3")
    b1 = conv_bn(b1, 192, (3, 1), f"{name}_Branch_1_Conv2d_0c_3x1")
    return scaled_residual(x, [b0, b1], scale, name, relu=relu)


def embedding_head(x, size: int = EMBEDDING_SIZE):
    """Global average pool, dropout (inactive at inference), linear bottleneck, batch norm."""
    x = layers.GlobalAveragePooling2D(name="AvgPool")(x)
    x = layers.Dropout(0.2, name="Dropout")(x)
    x = layers.Dense(size, use_bias=False, name="Bottleneck")(x)
    return layers.BatchNormalization(axis=-1, name="Bottleneck_BatchNorm", **_BN)(x)


def inception_resnet_v1(input_size: tuple[int, int] = INPUT_SIZE):
    """The course's FaceNet: RGB faces of shape (*input_size, 3), pixels / 255 -> 128-d.

    The output is the raw bottleneck; the course divided it by its L2 norm before comparing.
    """
    faces = keras.Input((*input_size, 3), name="input_1")
    x = stem(faces)
    for i in range(1, 6):
        x = inception_resnet_a(x, f"Block35_{i}")
    x = reduction_a(x)
    for i in range(1, 11):
        x = inception_resnet_b(x, f"Block17_{i}")
    x = reduction_b(x)
    for i in range(1, 6):
        x = inception_resnet_c(x, f"Block8_{i}")
    # The last block adds its residual unscaled and without a ReLU, as in Sandberg's network.
    x = inception_resnet_c(x, "Block8_6", scale=1.0, relu=False)
    return keras.Model(faces, embedding_head(x), name="inception_resnet_v1")


def faceRecoModel(input_shape=(*INPUT_SIZE, 3)):
    """The course's name for the network; `input_shape` is channels-last (height, width, 3)."""
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), channels last; got {input_shape}. "
                         "The original network takes 160x160 RGB faces: (160, 160, 3).")
    return inception_resnet_v1(tuple(input_shape[:2]))
