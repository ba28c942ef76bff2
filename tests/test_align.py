"""Detection (MTCNN, batched) and alignment (Umeyama similarity + warp onto the template)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec.align import (
    TEMPLATE_150,
    Detection,
    align_face,
    detect_faces,
    get_detector,
    similarity_transform,
    template_for_size,
)
from facerec.errors import EmptyInputError
from facerec.images import load_image

LFW_PHOTO = Path(__file__).resolve().parent.parent / "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"


def similarity_matrix(scale: float, angle: float, shift: tuple[float, float]) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[scale * cos, -scale * sin, shift[0]], [scale * sin, scale * cos, shift[1]]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def blob_centre(chip: np.ndarray, near: np.ndarray, radius: int = 7) -> np.ndarray:
    """Intensity-weighted centre (x, y) of the bright blob around `near` in a chip."""
    x0, y0 = np.round(near).astype(int)
    window = chip[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1, 0].astype(np.float64)
    ys, xs = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


def photo_with_blobs(points: np.ndarray, height: int, width: int, sigma: float) -> np.ndarray:
    """Black photo with a bright Gaussian spot centred on each (x, y) point (pixel indices)."""
    ys, xs = np.mgrid[0:height, 0:width]
    photo = np.zeros((height, width))
    for x, y in points:
        photo += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat((255 * np.clip(photo, 0, 1)).astype(np.uint8)[:, :, None], 3, axis=2)


# ---------------------------------------------------------------- similarity transform (Umeyama)


def test_umeyama_recovers_a_known_similarity_exactly():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, size=(5, 2))
    known = similarity_matrix(scale=1.7, angle=0.4, shift=(-35.0, 12.5))
    fitted = similarity_transform(src, apply(known, src))
    np.testing.assert_allclose(fitted, known, atol=1e-10)


def test_umeyama_maps_the_template_onto_itself_as_identity():
    np.testing.assert_allclose(similarity_transform(TEMPLATE_150, TEMPLATE_150), np.eye(2, 3), atol=1e-12)


def test_umeyama_never_returns_a_reflection():
    src = TEMPLATE_150
    mirrored = src * [-1, 1]  # left and right swapped: only a reflection would fit exactly
    fitted = similarity_transform(src, mirrored)
    assert np.linalg.det(fitted[:, :2]) > 0


def test_umeyama_is_least_squares_with_noise():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, size=(40, 2))
    known = similarity_matrix(scale=0.8, angle=-1.1, shift=(5.0, 60.0))
    noisy = apply(known, src) + rng.normal(0, 0.5, size=src.shape)
    fitted = similarity_transform(src, noisy)
    best = np.mean(np.sum((apply(fitted, src) - noisy) ** 2, axis=1))
    for nudge in (similarity_matrix(1.01, 0.0, (0, 0)), similarity_matrix(1.0, 0.01, (0, 0))):
        nudged = nudge[:, :2] @ fitted  # a slightly different similarity fits worse
        assert np.mean(np.sum((apply(nudged, src) - noisy) ** 2, axis=1)) > best


@pytest.mark.parametrize("src", [np.zeros((5, 2)), np.zeros((1, 2)), np.zeros((5, 3))], ids=["coincident", "one", "3d"])
def test_umeyama_rejects_degenerate_input(src):
    with pytest.raises(ValueError):
        similarity_transform(src, np.ones_like(src))


# ---------------------------------------------------------------- warping


def test_template_scales_with_the_chip_size():
    np.testing.assert_allclose(template_for_size(150), TEMPLATE_150)
    np.testing.assert_allclose(template_for_size(300), TEMPLATE_150 * 2 + 0.5)


@pytest.mark.parametrize(
    "size, scale, angle",
    [(150, 1.3, 0.25), (150, 0.6, -0.4), (112, 1.0, 0.0), (150, 7.0, 0.1)],
    ids=["150-rotated", "150-enlarged", "112", "150-reduced-first"],
)
def test_warp_puts_exact_landmarks_on_the_template(size, scale, angle):
    template = template_for_size(size)
    chip_to_photo = similarity_matrix(scale, angle, shift=(40.0, 30.0))
    landmarks = apply(chip_to_photo, template)
    height, width = (np.ceil(landmarks.max(axis=0) + 60 * scale).astype(int))[::-1]
    photo = photo_with_blobs(landmarks, height, width, sigma=2.0 * scale)
    chip = align_face(photo, landmarks, size=size)
    assert chip.shape == (size, size, 3) and chip.dtype == np.uint8
    for point in template:
        np.testing.assert_allclose(blob_centre(chip, point), point, atol=0.25)


def test_warp_is_black_outside_the_photo():
    white = np.full((100, 100, 3), 255, np.uint8)
    # Chip pixel (x, y) samples photo pixel (x - 60, y - 60): the chip's top-left lies beyond the photo.
    chip = align_face(white, template_for_size(150) - 60)
    assert (chip[:59, :] == 0).all() and (chip[:, :59] == 0).all()
    assert (chip[61:, 61:] == 255).all()


def test_align_face_rejects_wrong_landmark_shape():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))


# ---------------------------------------------------------------- detection


def test_detector_is_created_once(detector):
    assert get_detector() is detector


def test_every_course_photo_has_exactly_its_face(course_photos, detector):
    names = list(course_photos)
    found = detect_faces([course_photos[name] for name in names])
    assert len(found) == len(names)
    for name, faces in zip(names, found):
        assert len(faces) == 1, f"{name}: {len(faces)} faces"
        face = faces[0]
        assert isinstance(face, Detection) and face.confidence > 0.99
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float64
        x, y, width, height = face.box
        assert 0 <= x and 0 <= y and x + width <= 96 and y + height <= 96 and width > 30
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    all_landmarks = np.concatenate([faces[0].landmarks for faces in found])
    assert not np.allclose(all_landmarks, np.round(all_landmarks))  # sub-pixel, not rounded


def test_batched_detection_equals_one_photo_at_a_time(course_photos, detector):
    names = ["camera_0", "kian", "danielle"]
    batched = detect_faces([course_photos[name] for name in names])
    for name, faces in zip(names, batched):
        alone = detect_faces(course_photos[name])[0]
        np.testing.assert_allclose(faces[0].landmarks, alone[0].landmarks, atol=1e-3)


def test_photos_of_different_sizes_in_one_call(course_photos, detector):
    grey = np.full((80, 50, 3), 128, np.uint8)
    found = detect_faces([course_photos["camera_1"], grey, LFW_PHOTO, course_photos["tian"]])
    assert [len(faces) for faces in found] == [1, 0, 1, 1]
    x, y, width, height = found[2][0].box
    assert 60 < x + width / 2 < 190 and 60 < y + height / 2 < 190  # LFW centres the face


def test_no_face_in_flat_grey_or_noise(detector):
    noise = np.random.default_rng(2).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    grey = np.full((240, 320, 3), 128, np.uint8)
    assert detect_faces([noise, grey]) == [[], []]


def test_tiny_pictures_give_no_face_instead_of_failing(detector):
    assert detect_faces([np.zeros((8, 8, 3), np.uint8), np.zeros((15, 40, 3), np.uint8)]) == [[], []]


def test_huge_photo_is_shrunk_for_detection_and_coordinates_scaled_back(course_photos, detector):
    small = load_image(course_photos["younes"])
    small_face = detect_faces([small])[0][0]
    zoom, left, top = 10, 3500, 1200
    canvas = np.full((4000, 6000, 3), 90, np.uint8)
    canvas[top : top + 96 * zoom, left : left + 96 * zoom] = np.asarray(
        Image.fromarray(small).resize((96 * zoom, 96 * zoom), Image.Resampling.BICUBIC)
    )
    found = detect_faces([canvas])[0]
    assert len(found) == 1
    # Pixel centre i of the small photo is at zoom * (i + 0.5) - 0.5 in the enlarged one.
    expected = (small_face.landmarks + 0.5) * zoom - 0.5 + [left, top]
    errors = np.linalg.norm(found[0].landmarks - expected, axis=1)
    assert errors.max() < 0.05 * 96 * zoom, errors  # within 5% of the face's size
    x, y, width, height = found[0].box
    assert left <= x + width / 2 <= left + 96 * zoom and top <= y + height / 2 <= top + 96 * zoom


def test_aligned_course_chips_put_the_landmarks_on_the_template(course_photos, detector):
    names = list(course_photos)
    photos = [load_image(course_photos[name]) for name in names]
    chips = [align_face(photo, faces[0].landmarks) for photo, faces in zip(photos, detect_faces(photos))]
    errors = []
    for name, again in zip(names, detect_faces(chips)):
        assert len(again) == 1, name
        error = np.linalg.norm(again[0].landmarks - TEMPLATE_150, axis=1)
        assert error[:2].max() < 8, f"{name}: eyes {error[:2]} px from the template"
        assert error.max() < 12, f"{name}: {error} px from the template"
        errors.append(error)
    assert np.mean(errors) < 5  # MTCNN's own scatter on dlib's chips is 1.5 to 5.7 px (sd)


def test_empty_list_raises_empty_input():
    with pytest.raises(EmptyInputError):
        detect_faces([])


def test_min_face_size_is_in_photo_pixels_and_any_value_works(course_photos, detector):
    younes = course_photos["younes"]  # face box about 65 x 75 px in a 96 x 96 photo
    for min_face_size in (5, 12, 20, 40, 60):
        assert len(detect_faces([younes], min_face_size=min_face_size)[0]) == 1, min_face_size
    assert detect_faces([younes], min_face_size=85)[0] == []
    with pytest.raises(ValueError):
        detect_faces([younes], min_face_size=0)


def test_min_confidence_filters_detections(course_photos, detector):
    assert len(detect_faces([course_photos["tian"]], min_confidence=0.9)[0]) == 1
    assert detect_faces([course_photos["tian"]], min_confidence=0.99999)[0] == []
