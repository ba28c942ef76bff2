"""load_image: every file mode and array type becomes an (H, W, 3) uint8 RGB picture."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.errors import FaceRecError, ImageNotFoundError, NotAnImageError
from facerec.images import load_image

IMAGES = Path(__file__).resolve().parent.parent / "images"
EXIF_ORIENTATION = 0x0112


def course_photo(name: str) -> Path:
    return IMAGES / (f"{name}.png" if name == "danielle" else f"{name}.jpg")


@pytest.fixture(scope="module")
def camera_rgb() -> np.ndarray:
    return np.asarray(Image.open(course_photo("camera_0")).convert("RGB"))


def assert_rgb_picture(picture: np.ndarray, height: int, width: int) -> None:
    assert picture.dtype == np.uint8
    assert picture.shape == (height, width, 3)


def test_course_jpeg_loads_as_rgb(camera_rgb):
    picture = load_image(course_photo("camera_0"))
    assert_rgb_picture(picture, 96, 96)
    np.testing.assert_array_equal(picture, camera_rgb)


def test_path_given_as_str_or_path_is_the_same(camera_rgb):
    np.testing.assert_array_equal(load_image(str(course_photo("camera_0"))), camera_rgb)


def test_rgba_png_drops_alpha():
    path = course_photo("danielle")
    with Image.open(path) as original:
        assert original.mode == "RGBA"
        expected = np.asarray(original)[:, :, :3]
    picture = load_image(path)
    assert_rgb_picture(picture, 96, 96)
    np.testing.assert_array_equal(picture, expected)


def test_grayscale_and_gray_alpha_files_become_three_equal_channels(tmp_path, camera_rgb):
    gray = Image.fromarray(camera_rgb).convert("L")
    gray.save(tmp_path / "gray.png")
    gray.convert("LA").save(tmp_path / "gray_alpha.png")
    for name in ("gray.png", "gray_alpha.png"):
        picture = load_image(tmp_path / name)
        assert_rgb_picture(picture, 96, 96)
        for channel in range(3):
            np.testing.assert_array_equal(picture[:, :, channel], np.asarray(gray))


def test_palette_png_with_transparency_gives_its_colours_without_warning(tmp_path, camera_rgb):
    palette_image = Image.fromarray(camera_rgb).quantize(colors=64)
    # Per-entry alpha (a PNG tRNS table): entry 0 transparent, entry 1 half, the rest opaque.
    palette_image.save(tmp_path / "palette.png", transparency=bytes([0, 128] + [255] * 62))
    with Image.open(tmp_path / "palette.png") as reopened:
        assert reopened.mode == "P" and isinstance(reopened.info.get("transparency"), bytes)
    expected = np.asarray(palette_image.convert("RGB"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns when palette transparency is mishandled
        picture = load_image(tmp_path / "palette.png")
    assert_rgb_picture(picture, 96, 96)
    np.testing.assert_array_equal(picture, expected)
    assert np.abs(picture.astype(int) - camera_rgb).mean() < 8  # still the photo


def test_16_bit_png_is_scaled_to_8_bit_not_clipped(tmp_path, camera_rgb):
    gray8 = np.asarray(Image.fromarray(camera_rgb).convert("L"))
    gray16 = gray8.astype(np.uint16) * 257  # 255 -> 65535: the same picture with 16-bit depth
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    with Image.open(tmp_path / "gray16.png") as reopened:
        assert reopened.mode.startswith("I")
    picture = load_image(tmp_path / "gray16.png")
    assert_rgb_picture(picture, 96, 96)
    np.testing.assert_array_equal(picture[:, :, 0], gray8)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path, camera_rgb):
    Image.fromarray(camera_rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as reopened:
        assert reopened.mode == "CMYK"
    picture = load_image(tmp_path / "cmyk.jpg")
    assert_rgb_picture(picture, 96, 96)
    assert np.abs(picture.astype(int) - camera_rgb).mean() < 6


def test_exif_orientation_is_applied(tmp_path, camera_rgb):
    upright = Image.fromarray(camera_rgb)
    # Orientation 6 says "rotate 90 degrees clockwise to display": store the pixels turned the other way.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    stored.save(tmp_path / "rotated.png", exif=exif)
    picture = load_image(tmp_path / "rotated.png")
    np.testing.assert_array_equal(picture, camera_rgb)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "rotated.png").convert("RGB")), camera_rgb)


def test_max_side_shrinks_large_pictures_keeping_aspect(tmp_path):
    Image.new("RGB", (3000, 2000), (90, 120, 150)).save(tmp_path / "large.jpg")
    picture = load_image(tmp_path / "large.jpg", max_side=600)
    assert_rgb_picture(picture, 400, 600)
    assert np.abs(picture.astype(int) - [90, 120, 150]).max() <= 3
    assert load_image(course_photo("kian"), max_side=600).shape == (96, 96, 3)  # never enlarged


@pytest.mark.parametrize(
    "array",
    [
        np.full((5, 7), 200, np.uint8),
        np.full((5, 7, 1), 200, np.uint8),
        np.full((5, 7, 3), 200, np.uint8),
        np.full((5, 7, 4), 200, np.uint8),
        np.full((5, 7, 3), 200 * 257, np.uint16),
        np.full((5, 7, 3), 200 / 255, np.float32),
        np.full((5, 7), 200 / 255, np.float64),
    ],
    ids=["gray", "gray-1-channel", "rgb", "rgba", "uint16", "float32", "float64-gray"],
)
def test_arrays_of_every_layout_and_dtype(array):
    picture = load_image(array)
    assert_rgb_picture(picture, 5, 7)
    assert (picture == 200).all()


def test_array_input_is_copied():
    array = np.zeros((4, 4, 3), np.uint8)
    load_image(array)[0, 0] = 255
    assert array[0, 0, 0] == 0


@pytest.mark.parametrize(
    "array",
    [np.zeros((2, 4, 4, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4, 3), np.uint8),
     np.full((4, 4, 3), 2.0), np.full((4, 4, 3), np.nan), np.full((4, 4, 3), -1, np.int32)],
    ids=["batch", "two-channels", "empty", "float-above-1", "nan", "negative"],
)
def test_bad_arrays_raise_not_an_image_naming_the_shape(array):
    with pytest.raises(NotAnImageError, match=r"array of shape \(") as caught:
        load_image(array)
    assert isinstance(caught.value, ValueError)


def test_missing_file_raises_image_not_found_naming_it(tmp_path):
    with pytest.raises(ImageNotFoundError, match="nobody.jpg") as caught:
        load_image(tmp_path / "nobody.jpg")
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, FaceRecError)


def test_folder_raises_image_not_found(tmp_path):
    with pytest.raises(ImageNotFoundError, match="folder"):
        load_image(tmp_path)


def test_text_file_named_jpg_raises_not_an_image_naming_it(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a photo\n")
    with pytest.raises(NotAnImageError, match="notes.jpg"):
        load_image(tmp_path / "notes.jpg")


def test_empty_file_raises_not_an_image_naming_it(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(NotAnImageError, match=r"empty\.jpg.*empty"):
        load_image(tmp_path / "empty.jpg")


def test_truncated_jpeg_raises_not_an_image(tmp_path):
    data = course_photo("camera_0").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(NotAnImageError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_unsupported_source_type_raises_not_an_image():
    with pytest.raises(NotAnImageError, match="list"):
        load_image([1, 2, 3])
