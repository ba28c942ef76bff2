"""Encodings from the real models on the course photos, and every odd input the notebook may meet.

Most tests here run dlib's ResNet (the `encoding_model` fixture), the package's second network; the
last section checks the real-photo tools' default, the course's FaceNet fed as FaceNet was trained
(`photo_model`), against a computation written out by hand. The course's own feeding of its
FaceNet is checked in tests/test_course_network.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.encode import (
    DISTANCE_THRESHOLD,
    MIRROR_AVERAGED,
    Face,
    chip_size,
    encode_chips,
    encode_images,
    extract_faces,
    extract_faces_from_images,
    img_to_encoding,
    load_model,
)
from facerec.errors import (
    EmptyInputError,
    FaceRecError,
    ImageNotFoundError,
    ModelNotFoundError,
    NoFaceFoundError,
    NotAnImageError,
)
from conftest import CAMERA_OWNERS, DATABASE_PEOPLE, ROOT
from facerec.images import load_image

EXIF_ORIENTATION = 0x0112


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.ravel(a) - np.ravel(b)))


def nearest_person(encoding: np.ndarray, course_encodings: dict[str, np.ndarray]) -> str:
    return min(DATABASE_PEOPLE, key=lambda person: distance(encoding, course_encodings[person]))


def course_rgb(course_photos, name: str) -> np.ndarray:
    return load_image(course_photos[name])


# ---------------------------------------------------------------- the encodings themselves


def test_img_to_encoding_is_one_unit_float32_row(course_photos, encoding_model):
    encoding = img_to_encoding(course_photos["camera_0"], encoding_model)
    assert encoding.shape == (1, 128) and encoding.dtype == np.float32
    assert abs(np.linalg.norm(encoding) - 1) < 1e-5


def test_img_to_encoding_accepts_str_paths_and_arrays(course_photos, encoding_model, course_encodings):
    from_str = img_to_encoding(str(course_photos["kian"]), encoding_model)
    from_array = img_to_encoding(course_rgb(course_photos, "kian"), encoding_model)
    np.testing.assert_array_equal(from_str, from_array)
    assert distance(from_str, course_encodings["kian"]) < 1e-4


def test_encode_images_gives_unit_rows_in_order(course_encodings):
    rows = np.stack(list(course_encodings.values()))
    assert rows.shape == (18, 128) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    assert np.linalg.matrix_rank(rows) == 18  # eighteen different encodings, not one repeated


def test_img_to_encoding_equals_its_row_of_encode_images(course_photos, encoding_model, course_encodings):
    for name in ("camera_2", "danielle", "younes"):
        single = img_to_encoding(course_photos[name], encoding_model)[0]
        # Batched detection and batched convolutions round differently in the last bits only.
        np.testing.assert_allclose(single, course_encodings[name], atol=1e-4)


def test_every_course_photo_has_exactly_one_face(course_photos, encoding_model):
    for name, path in course_photos.items():
        faces = extract_faces(path, encoding_model)
        assert len(faces) == 1, f"{name}: {len(faces)} faces"
        assert isinstance(faces[0], Face) and faces[0].chip.shape == (150, 150, 3)


def test_each_camera_photo_is_nearest_its_owner(course_encodings):
    for camera, owner in CAMERA_OWNERS.items():
        assert nearest_person(course_encodings[camera], course_encodings) == owner, camera


def camera_distances(course_encodings) -> tuple[list[float], list[float]]:
    """Distances of each camera photo to its owner's photo (genuine) and to the 11 others (impostor)."""
    genuine, impostor = [], []
    for camera, owner in CAMERA_OWNERS.items():
        for person in DATABASE_PEOPLE:
            (genuine if person == owner else impostor).append(distance(course_encodings[camera], course_encodings[person]))
    return genuine, impostor


def test_threshold_lets_every_owner_in_and_keeps_benoit_out_as_kian(course_encodings):
    genuine, _ = camera_distances(course_encodings)
    assert max(genuine) < DISTANCE_THRESHOLD, (max(genuine), DISTANCE_THRESHOLD)
    assert distance(course_encodings["camera_2"], course_encodings["kian"]) > DISTANCE_THRESHOLD + 0.05


def test_some_threshold_separates_genuine_from_impostor_camera_distances(course_encodings):
    genuine, impostor = camera_distances(course_encodings)
    assert max(genuine) + 0.05 < min(impostor), (max(genuine), min(impostor))
    separating = (max(genuine) + min(impostor)) / 2
    assert distance(course_encodings["camera_2"], course_encodings["kian"]) > separating


def test_encode_chips_batches_agree_and_mirror_changes_little(course_photos, encoding_model):
    faces = [extract_faces(course_photos[name], encoding_model)[0] for name in ("camera_0", "tian", "kevin")]
    chips = np.stack([face.chip for face in faces])
    batched = encode_chips(chips, encoding_model, batch_size=32)
    one_by_one = encode_chips(chips, encoding_model, batch_size=1)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    as_the_library_does = encode_chips(chips, encoding_model, batch_size=1, mirror=MIRROR_AVERAGED)
    np.testing.assert_allclose(as_the_library_does, np.stack([face.encoding for face in faces]), atol=1e-6)
    mirrored = encode_chips(chips, encoding_model, mirror=True)
    np.testing.assert_allclose(np.linalg.norm(mirrored, axis=1), 1, atol=1e-5)
    shifts = np.linalg.norm(mirrored - batched, axis=1)
    assert (shifts > 1e-3).all() and (shifts < 0.2).all()


def test_encode_chips_rejects_chips_of_the_wrong_size(encoding_model):
    with pytest.raises(NotAnImageError, match=r"\(150, 150, 3\)"):
        encode_chips(np.zeros((2, 96, 96, 3), np.uint8), encoding_model)


def test_helpers_follow_the_model_input_size(course_photos):
    import keras

    tiny = keras.Sequential([
        keras.Input((112, 112, 3)),
        keras.layers.Conv2D(4, 3, strides=4),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(16),
    ])
    assert chip_size(tiny) == 112
    faces = extract_faces(course_photos["kian"], tiny)
    assert len(faces) == 1 and faces[0].chip.shape == (112, 112, 3)
    assert faces[0].encoding.shape == (16,) and abs(np.linalg.norm(faces[0].encoding) - 1) < 1e-5


# ---------------------------------------------------------------- odd inputs


def test_rgba_png_encodes_like_its_rgb_pixels(course_photos, encoding_model, course_encodings):
    rgb = np.asarray(Image.open(course_photos["danielle"]))[:, :, :3]
    np.testing.assert_allclose(img_to_encoding(rgb, encoding_model)[0], course_encodings["danielle"], atol=1e-4)


def test_grayscale_palette_and_16_bit_photos_still_match_their_owner(tmp_path, course_photos, encoding_model, course_encodings):
    photo = Image.fromarray(course_rgb(course_photos, "camera_0"))
    photo.convert("L").save(tmp_path / "gray.png")
    photo.quantize(colors=128).save(tmp_path / "palette.png", transparency=bytes([0] + [255] * 127))
    gray16 = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    encodings = {name: img_to_encoding(tmp_path / name, encoding_model) for name in ("gray.png", "palette.png", "gray16.png")}
    for name, encoding in encodings.items():
        assert distance(encoding, course_encodings["younes"]) < DISTANCE_THRESHOLD, name
        assert nearest_person(encoding, course_encodings) == "younes", name
    # 16-bit depth scaled back to 8 bits is exactly the 8-bit gray photo.
    np.testing.assert_allclose(encodings["gray16.png"], encodings["gray.png"], atol=1e-6)


def test_exif_rotated_jpeg_encodes_like_the_upright_photo(tmp_path, course_photos, encoding_model, course_encodings):
    upright = Image.open(course_photos["camera_3"]).convert("RGB")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 8  # "rotate 90 degrees counter-clockwise to display"
    upright.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "sideways.jpg", quality=95, exif=exif)
    encoding = img_to_encoding(tmp_path / "sideways.jpg", encoding_model)
    assert distance(encoding, course_encodings["camera_3"]) < 0.1
    # Control: the stored pixels themselves are sideways, and encode differently (or not at all).
    stored = np.asarray(Image.open(tmp_path / "sideways.jpg").convert("RGB"))
    faces = extract_faces(stored, encoding_model)
    assert not faces or distance(faces[0].encoding, course_encodings["camera_3"]) > 0.15


def test_face_in_a_6000x4000_photo(course_photos, encoding_model, course_encodings):
    canvas = np.full((4000, 6000, 3), 140, np.uint8)
    face = Image.fromarray(course_rgb(course_photos, "camera_1")).resize((768, 768), Image.Resampling.BICUBIC)
    canvas[2000:2768, 1000:1768] = np.asarray(face)
    faces = extract_faces(canvas, encoding_model)
    assert len(faces) == 1
    x, y, width, height = faces[0].box
    assert 1000 <= x and x + width <= 1768 and 2000 <= y and y + height <= 2768
    encoding = img_to_encoding(canvas, encoding_model)
    assert distance(encoding, course_encodings["camera_1"]) < 0.15
    assert nearest_person(encoding, course_encodings) == "bertrand"


def test_group_photo_gives_every_face_largest_first(course_photos, encoding_model, course_encodings):
    # Three photos whose faces fill the same share of the photo (eyes 14 to 15 px apart at 96 px),
    # pasted side by side at these sizes (px): face size follows photo size.
    people = {"kian": 250, "bertrand": 110, "dan": 170}
    canvas = np.full((300, 650, 3), 200, np.uint8)
    left, regions = 20, {}
    for person, size in people.items():
        resized = Image.fromarray(course_rgb(course_photos, person)).resize((size, size), Image.Resampling.BICUBIC)
        canvas[20 : 20 + size, left : left + size] = np.asarray(resized)
        regions[person] = (left, 20, size)
        left += size + 20
    faces = extract_faces(canvas, encoding_model)
    assert len(faces) == 3
    areas = [face.box[2] * face.box[3] for face in faces]
    assert areas == sorted(areas, reverse=True)
    for face, person in zip(faces, ["kian", "dan", "bertrand"]):
        x0, y0, size = regions[person]
        centre_x, centre_y = face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2
        assert x0 < centre_x < x0 + size and y0 < centre_y < y0 + size, person
        assert nearest_person(face.encoding, course_encodings) == person
    largest = img_to_encoding(canvas, encoding_model)
    np.testing.assert_allclose(largest[0], faces[0].encoding, atol=1e-6)


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_photo_without_a_face_raises_naming_the_file(tmp_path, encoding_model, kind):
    pixels = (np.full((200, 300, 3), 128, np.uint8) if kind == "grey"
              else np.random.default_rng(3).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    path = tmp_path / f"{kind}_wall.png"
    Image.fromarray(pixels).save(path)
    with pytest.raises(NoFaceFoundError, match=f"{kind}_wall.png") as caught:
        img_to_encoding(path, encoding_model)
    assert isinstance(caught.value, ValueError)
    assert extract_faces(path, encoding_model) == []


def test_encode_images_names_every_photo_without_a_face(tmp_path, course_photos, encoding_model):
    Image.new("RGB", (120, 120), (128, 128, 128)).save(tmp_path / "blank_a.png")
    Image.new("RGB", (120, 120), (30, 30, 30)).save(tmp_path / "blank_b.png")
    paths = [course_photos["kian"], tmp_path / "blank_a.png", tmp_path / "blank_b.png"]
    with pytest.raises(NoFaceFoundError, match=r"blank_a\.png.*blank_b\.png"):
        encode_images(paths, encoding_model)


def test_text_file_named_jpg_raises_not_an_image(tmp_path, encoding_model):
    (tmp_path / "photo.jpg").write_text("not a photo")
    with pytest.raises(NotAnImageError, match="photo.jpg"):
        img_to_encoding(tmp_path / "photo.jpg", encoding_model)


def test_empty_file_raises_not_an_image(tmp_path, encoding_model):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(NotAnImageError, match="empty.jpg"):
        img_to_encoding(tmp_path / "empty.jpg", encoding_model)


def test_missing_file_raises_image_not_found(tmp_path, encoding_model):
    with pytest.raises(ImageNotFoundError, match="missing.jpg"):
        encode_images([tmp_path / "missing.jpg"], encoding_model)


def test_empty_lists_raise_empty_input(encoding_model):
    with pytest.raises(EmptyInputError):
        encode_images([], encoding_model)
    with pytest.raises(EmptyInputError):
        encode_chips([], encoding_model)


# ---------------------------------------------------------------- the model and the notebook module


def test_load_model_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. a notebook in a sub-folder: falls back to the project's folder
    assert load_model("dlib-resnet-h5").input_shape == (None, 150, 150, 3)
    model = load_model()  # the course's FaceNet
    assert model.input_shape == (None, 160, 160, 3) and model.output_shape == (None, 128)


def test_load_model_names_the_missing_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no_model_here") as caught:
        load_model(tmp_path / "no_model_here")
    assert isinstance(caught.value, FileNotFoundError) and isinstance(caught.value, FaceRecError)


def test_fr_utils_exposes_the_notebook_api():
    import facerec.encode
    import fr_utils

    for name in ("img_to_encoding", "encode_images", "load_model", "load_photo_model", "extract_faces",
                 "distance_threshold"):
        assert getattr(fr_utils, name) is getattr(facerec.encode, name)
    assert fr_utils.DISTANCE_THRESHOLD == 0.7  # the course's, for the course's network in keras-facenet-h5
    assert fr_utils.load_image is load_image and fr_utils.NoFaceFoundError is NoFaceFoundError
    assert issubclass(fr_utils.NoFaceFoundError, fr_utils.FaceRecError)
    assert isinstance(fr_utils.DISTANCE_THRESHOLD, float)
    assert sorted(fr_utils.__all__) == sorted(set(fr_utils.__all__))
    assert all(hasattr(fr_utils, name) for name in fr_utils.__all__)


def test_fr_utils_works_from_the_project_folder_and_writes_nothing_to_stderr():
    # nbgrader gives no credit to a cell that writes to stderr, so the whole path stays silent.
    script = (
        "import fr_utils\n"
        "model = fr_utils.load_model()\n"
        "encoding = fr_utils.img_to_encoding('images/camera_0.jpg', model)\n"
        "print(encoding.shape, round(float((encoding ** 2).sum()), 4))\n"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TF_")}
    environment.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 128) 1.0"
    assert result.stderr == ""


# ---------------------------------------------------------------- the real-photo pipeline's default


def facenet_by_hand(photo: np.ndarray, box, network) -> tuple[np.ndarray, np.ndarray]:
    """(the 160x160 crop, the unit encoding) of one face, fed as FaceNet was trained, written out
    step by step without facerec's helpers: the box grown by 16 px on each side and clipped to
    the photo, resized bilinearly, standardised over all its values, then the face and its mirror
    image encoded, each scaled to length 1, averaged and scaled to length 1 again."""
    x, y, width, height = box
    left, top = max(int(np.floor(x - 16)), 0), max(int(np.floor(y - 16)), 0)
    right = min(int(np.ceil(x + width + 16)), photo.shape[1])
    bottom = min(int(np.ceil(y + height + 16)), photo.shape[0])
    crop = np.asarray(Image.fromarray(photo[top:bottom, left:right]).resize((160, 160), Image.Resampling.BILINEAR))
    values = crop.astype(np.float64)
    deviation = max(values.std(), 1 / np.sqrt(values.size))
    standardised = ((values - values.mean()) / deviation).astype(np.float32)
    outputs = np.asarray(network.predict_on_batch(np.stack([standardised, standardised[:, ::-1]])), np.float64)
    outputs /= np.linalg.norm(outputs, axis=1, keepdims=True)
    mean = outputs.sum(axis=0)
    return crop, mean / np.linalg.norm(mean)


def test_the_photo_model_is_the_course_network_fed_facenets_way(photo_model, course_model, encoding_model):
    from facerec.encode import (ALIGNED_FEED, COURSE_FEED, DLIB_MODEL_FOLDER, FACENET_FEED, FACENET_THRESHOLD,
                                PHOTO_MODEL_FOLDER, distance_threshold, feed_of, load_photo_model, with_feed)

    assert PHOTO_MODEL_FOLDER == "keras-facenet-h5" and DLIB_MODEL_FOLDER == "dlib-resnet-h5"
    assert photo_model.name == course_model.name == "inception_resnet_v1" and photo_model is not course_model
    assert feed_of(photo_model) == FACENET_FEED and distance_threshold(photo_model) == FACENET_THRESHOLD == 1.10
    # Marking the photo model leaves the notebook's model alone: fed the course's way, threshold 0.7.
    assert feed_of(course_model) == COURSE_FEED and distance_threshold(course_model) == 0.7
    assert feed_of(encoding_model) == ALIGNED_FEED and distance_threshold(encoding_model) == DISTANCE_THRESHOLD == 0.42
    dlib_photo_model = load_photo_model(DLIB_MODEL_FOLDER)  # the second network, selectable by folder
    assert dlib_photo_model.input_shape == (None, 150, 150, 3) and feed_of(dlib_photo_model) == ALIGNED_FEED
    with pytest.raises(ValueError, match="feed must be one of"):
        with_feed(dlib_photo_model, "standardised")


def test_the_photo_pipeline_is_mtcnn_margin_crop_standardise_and_mirror(course_photos, photo_model, course_model):
    from facerec.align import detect_faces

    for name in ("camera_0", "danielle", "kian"):
        photo = load_image(course_photos[name])
        [[detection]] = detect_faces([photo])
        crop, expected = facenet_by_hand(photo, detection.box, course_model)  # the same weights, fed by hand
        [face] = extract_faces(course_photos[name], photo_model)
        assert face.box == detection.box
        np.testing.assert_array_equal(face.chip, crop)
        np.testing.assert_allclose(face.encoding, expected, atol=2e-6)
        np.testing.assert_allclose(img_to_encoding(course_photos[name], photo_model)[0], expected, atol=2e-6)
    # encode_chips standardises the crops for this model; without the mirror image it is one pass.
    mirrored = encode_chips(crop, photo_model, mirror=True)[0]
    np.testing.assert_allclose(mirrored, expected, atol=2e-6)
    assert distance(encode_chips(crop, photo_model)[0], expected) > 1e-3


def test_the_photo_pipeline_recognises_every_camera_photo_at_its_threshold(photo_encodings):
    from facerec.encode import FACENET_THRESHOLD

    for camera, owner in CAMERA_OWNERS.items():
        assert nearest_person(photo_encodings[camera], photo_encodings) == owner, camera
    genuine, impostor = camera_distances(photo_encodings)
    # Measured: genuine 0.363 to 0.840, impostors from 0.876 (camera_2 to its nearest stranger).
    assert max(genuine) < FACENET_THRESHOLD - 0.2, max(genuine)
    assert max(genuine) < min(impostor), (max(genuine), min(impostor))
    assert distance(photo_encodings["camera_2"], photo_encodings["kian"]) > FACENET_THRESHOLD + 0.05
    rows = np.stack(list(photo_encodings.values()))
    assert rows.shape == (18, 128) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


def test_the_photo_pipeline_finds_every_face_of_a_group_photo(course_photos, photo_model, photo_encodings):
    people = {"kian": 250, "bertrand": 110, "dan": 170}
    canvas = np.full((300, 650, 3), 200, np.uint8)
    left = 20
    for person, size in people.items():
        resized = Image.fromarray(course_rgb(course_photos, person)).resize((size, size), Image.Resampling.BICUBIC)
        canvas[20 : 20 + size, left : left + size] = np.asarray(resized)
        left += size + 20
    faces = extract_faces(canvas, photo_model)
    assert [nearest_person(face.encoding, photo_encodings) for face in faces] == ["kian", "dan", "bertrand"]
    assert all(face.chip.shape == (160, 160, 3) for face in faces)
    np.testing.assert_allclose(encode_images([canvas], photo_model)[0], faces[0].encoding, atol=1e-6)


def test_the_photo_pipeline_is_the_lfw_benchmarks_best_column(photo_model, course_model, monkeypatch):
    """What extract_faces gives with the photo model is column (b) mirror-averaged of
    bench/lfw_benchmark.py, the pipeline whose 99.42% and threshold it takes: same faces, same
    crops, same encodings, computed there by the benchmark's own code."""
    import importlib

    from facerec.align import detect_faces, facenet_crop, standardise

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    benchmark = importlib.import_module("lfw_benchmark")
    paths = sorted((ROOT / "data" / "lfw" / "lfw-deepfunneled").glob("*/*_0001.jpg"))[::400][:6]
    pictures = [load_image(path) for path in paths]  # the benchmark decodes with Pillow for this column
    detections = detect_faces(pictures)
    faces = standardise(np.stack([facenet_crop(picture, face.box, size=160)
                                  for picture, found in zip(pictures, detections) for face in found]))
    column_b = benchmark.encode_prepared(faces, course_model, 32, mirror=True)
    ours = [face for found in extract_faces_from_images([str(path) for path in paths], photo_model) for face in found]
    assert len(ours) == len(column_b) >= 6
    np.testing.assert_allclose(np.stack([face.encoding for face in ours]), column_b, atol=2e-6)
