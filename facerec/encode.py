"""Face encodings: photo -> detected, aligned face chips -> unit-length 128-d vectors.

One pipeline serves every entry point (`extract_faces_from_images`): load each picture,
detect faces (batched MTCNN), align each kept face onto a chip of the model's input size, and
encode all chips of a round with one model call per `batch_size` chips (with their mirror
images too when MIRROR_AVERAGED). `img_to_encoding`, `extract_faces` and `encode_images` only
choose which faces to keep and how to report them.

Two networks are fed differently (facerec.original_model.ModelInfo says how):
- the course's FaceNet (`keras-facenet-h5/`, Inception-ResNet-v1, S = 160) as the course fed it:
  the whole photo (the course photos are faces already cut out), JPEGs decoded by IJG libjpeg 9,
  nearest-neighbour resize to 160x160, pixels / 255; no detection, no alignment;
- dlib's ResNet (`dlib-resnet-h5/`, S = 150), the network for real photos: MTCNN detection,
  alignment onto a chip, pixel values 0..255, mirror averaging.
Both give (n, 128) encodings scaled to length 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from facerec.align import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE_SIZE, TEMPLATE_SIZE, align_face, detect_faces
from facerec.errors import EmptyInputError, ModelNotFoundError, NoFaceFoundError, NotAnImageError, describe_source
from facerec.images import ImageSource, as_rgb, as_source_list

# Each face's encoding is the normalised mean of its chip's encoding and its mirror image's (both
# in one model call: twice the network work per face). On all 6000 LFW View-2 pairs this gives a
# 10-fold accuracy of 99.23% +- 0.35 against 99.13% +- 0.28 with the chip alone
# (bench/lfw_benchmark.py, which reports both). Set it to False for twice the encoding speed.
MIRROR_AVERAGED = True

# L2 distance between two unit-length encodings below which they are taken as the same person.
# Measured by bench/lfw_benchmark.py with this pipeline (MTCNN, alignment, mirror averaging; in
# each photo the face nearest its centre) on all 6000 LFW View-2 pairs of data/lfw/pairs.txt
# (deep-funneled photos): the best-accuracy threshold is 0.4165 (99.32% of the pairs right), the
# thresholds picked on nine folds at a time are 0.4160 to 0.4191, and 0.42, their value rounded,
# gets 99.30% right. The latest full run's figures are in bench/README.md.
# Caveat: the course camera photos (same phone, same room) put some impostors closer than LFW
# does (camera_3 to dan: 0.383), so this threshold accepts them; see tests/test_encode.py.
DISTANCE_THRESHOLD = 0.42

MODEL_FOLDER = "keras-facenet-h5"  # the course's FaceNet, the notebook's network
# The network for real photos (extract_faces, FaceDatabase, recognise_folder): dlib's ResNet with
# MTCNN alignment and mirror averaging, 99.23% on LFW. The course's FaceNet fed FaceNet's way and
# mirror-averaged measured 99.42% in the same run (bench/README.md); moving these tools to it is
# open work.
PHOTO_MODEL_FOLDER = "dlib-resnet-h5"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Decoded pixels held at once by encode_images (about 3 bytes each): bounds its memory use.
_ROUND_PIXELS = 64_000_000
_ROUND_IMAGES = 256


@dataclass
class Face:
    """One face of a photo: where it is, its aligned chip and its encoding.

    box: (x, y, width, height) in the photo's pixels; landmarks: (5, 2) (x, y) of left eye,
    right eye, nose, left and right mouth corner; confidence: detector probability 0..1;
    chip: the aligned (S, S, 3) uint8 face the model saw; encoding: (d,) float32, unit length
    (the chip's and its mirror image's, averaged, when MIRROR_AVERAGED).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    confidence: float
    chip: np.ndarray
    encoding: np.ndarray


def load_model(folder: str | os.PathLike = MODEL_FOLDER):
    """The Keras face-encoding model saved in `folder`: model.json (architecture) + model.h5 (weights).

    The default folder holds the course's FaceNet; `load_model(PHOTO_MODEL_FOLDER)` (or
    `load_photo_model()`) loads dlib's ResNet. A relative `folder` is looked up in the working
    directory, then in the project folder. The helpers below adapt to whichever model they get.
    """
    from facerec.original_model import load_course_model

    return load_course_model(_find_model_folder(Path(folder).expanduser()))[0]


def _find_model_folder(folder: Path) -> Path:
    candidates = [folder] if folder.is_absolute() else [Path.cwd() / folder, _PROJECT_ROOT / folder]
    for candidate in candidates:
        if (candidate / "model.h5").is_file():
            return candidate
    looked = " and ".join(repr(str(candidate)) for candidate in candidates)
    raise ModelNotFoundError(
        f"No model.json + model.h5 in {looked}. Pass the folder that holds them, "
        "or build them with `make setup` from the project folder."
    )


def load_photo_model():
    """dlib's ResNet (`dlib-resnet-h5/`), the network the real-photo tools use."""
    return load_model(PHOTO_MODEL_FOLDER)


def threshold_for_folder(folder: str | os.PathLike = MODEL_FOLDER) -> float:
    """The threshold for the model saved in `folder`, without loading it: 0.7, the course's own
    value, for the course's FaceNet; DISTANCE_THRESHOLD for dlib's ResNet."""
    from facerec.original_model import ORIGINAL_THRESHOLD, is_original_weights_file

    try:
        found = _find_model_folder(Path(folder).expanduser())
    except ModelNotFoundError:
        return DISTANCE_THRESHOLD
    return ORIGINAL_THRESHOLD if is_original_weights_file(found / "model.h5") else DISTANCE_THRESHOLD


def distance_threshold(model) -> float:
    """The distance below which two encodings by `model` are the same person.

    0.7, the course's own value, for the course's FaceNet; DISTANCE_THRESHOLD for dlib's ResNet.
    """
    from facerec.original_model import model_info

    return model_info(model).threshold


def chip_size(model) -> int:
    """Side in pixels of the square chips `model` takes, read from its input shape."""
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    height, width = shape[1], shape[2]
    if height is None and width is None:
        return TEMPLATE_SIZE
    if height != width:
        raise ValueError(f"The model takes {height}x{width} inputs; face chips are square. Use a square-input model.")
    return int(height)


def encode_chips(chips: Sequence[np.ndarray] | np.ndarray, model, batch_size: int = 32, mirror: bool = False) -> np.ndarray:
    """(n, d) float32 unit-length encodings of `chips`, an (n, S, S, 3) array or a list of (S, S, 3).

    One `predict_on_batch` per `batch_size` chips (Keras `predict()` costs ~50 ms per call).
    With `mirror`, each encoding is the normalised mean of the chip's and its left-right mirror's.
    """
    if len(chips) == 0:
        raise EmptyInputError("encode_chips got no chips. Pass at least one aligned face chip.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}.")
    stacked = np.stack(chips) if isinstance(chips, (list, tuple)) else np.asarray(chips)
    if stacked.ndim == 3:
        stacked = stacked[None]  # one chip given alone
    size = chip_size(model)
    if stacked.shape[1:] != (size, size, 3):
        raise NotAnImageError(
            f"Chips of shape {stacked.shape[1:]} do not fit this model, which takes ({size}, {size}, 3). "
            "Align faces with align_face(image, landmarks, size) first."
        )
    scale = _pixel_scale(model)
    encodings = []
    for start in range(0, len(stacked), batch_size):
        batch = stacked[start : start + batch_size].astype(np.float32)
        if scale != 1.0:
            batch *= np.float32(scale)
        if mirror:
            # Both orientations in the same call: one per-call overhead, not two.
            both = _unit_rows(np.asarray(model.predict_on_batch(np.concatenate([batch, batch[:, :, ::-1]]))))
            encodings.append(_unit_rows(both[: len(batch)] + both[len(batch) :]))
        else:
            encodings.append(_unit_rows(np.asarray(model.predict_on_batch(batch))))
    return np.concatenate(encodings).astype(np.float32)


def _pixel_scale(model) -> float:
    from facerec.original_model import model_info

    return model_info(model).pixel_scale


def jpeg_decoder_for(model) -> str:
    """Which libjpeg decodes JPEG photos for `model` ("libjpeg9" for the course's FaceNet)."""
    from facerec.original_model import model_info

    return model_info(model).jpeg_decoder


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.finfo(np.float32).tiny)


def extract_faces_from_images(
    images: Sequence[ImageSource],
    model,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
    largest_only: bool = False,
    batch_size: int = 32,
) -> list[list[Face]]:
    """For each picture, its faces (largest first; only the largest with `largest_only`).

    The pipeline every other function here uses: detection batched over all `images`, then one
    model call per `batch_size` chips over all their faces together.
    """
    images = as_source_list(images)
    if len(images) == 0:
        raise EmptyInputError("Got an empty list of images. Pass at least one photo.")
    pictures = [as_rgb(image, jpeg_decoder_for(model)) for image in images]
    if not _aligns_faces(model):
        return _whole_pictures_as_faces(pictures, model, batch_size)
    detections = detect_faces(pictures, min_confidence=min_confidence, min_face_size=min_face_size)
    kept = [found[:1] if largest_only else found for found in detections]
    size = chip_size(model)
    chips = [align_face(picture, face.landmarks, size) for picture, found in zip(pictures, kept) for face in found]
    encodings = encode_chips(chips, model, batch_size, MIRROR_AVERAGED) if chips else np.empty((0, 0), np.float32)
    faces_per_picture: list[list[Face]] = []
    next_chip = 0
    for found in kept:
        faces = []
        for detection in found:
            faces.append(
                Face(
                    box=detection.box,
                    landmarks=detection.landmarks,
                    confidence=detection.confidence,
                    chip=chips[next_chip],
                    encoding=encodings[next_chip],
                )
            )
            next_chip += 1
        faces_per_picture.append(faces)
    return faces_per_picture


def _aligns_faces(model) -> bool:
    from facerec.original_model import is_original_network

    return not is_original_network(model)


def _whole_pictures_as_faces(pictures: list[np.ndarray], model, batch_size: int) -> list[list[Face]]:
    """The course fed its network whole pre-cropped photos, plain-resized (no detection), which is
    what its published distances come from: each picture is one face here."""
    from PIL import Image

    size = chip_size(model)
    chips = [np.asarray(Image.fromarray(p).resize((size, size), Image.NEAREST)) for p in pictures]
    encodings = encode_chips(chips, model, batch_size)
    return [[Face(box=(0.0, 0.0, float(p.shape[1]), float(p.shape[0])), landmarks=np.full((5, 2), np.nan),
                  confidence=1.0, chip=chip, encoding=encoding)]
            for p, chip, encoding in zip(pictures, chips, encodings)]


def extract_faces(
    image: ImageSource,
    model,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
) -> list[Face]:
    """Every face found in `image` (a path or an array), largest first; [] when there is none."""
    return extract_faces_from_images([image], model, min_confidence, min_face_size)[0]


def img_to_encoding(image_path: ImageSource, model) -> np.ndarray:
    """(1, d) float32 unit-length encoding of the largest face in the photo at `image_path`.

    Raises NoFaceFoundError (naming the file) when the photo has no detectable face.
    """
    faces = extract_faces_from_images([image_path], model, largest_only=True)[0]
    if not faces:
        raise _no_face_error([image_path])
    return faces[0].encoding[None, :]


def encode_images(paths: Iterable[ImageSource], model, batch_size: int = 32) -> np.ndarray:
    """(n, d) float32 encodings of the largest face in each photo, in the order given.

    Row i equals img_to_encoding(paths[i], model)[0]. Photos are processed in rounds (bounded
    memory); each round's detection is batched and its chips go through the model
    `batch_size` at a time. Raises NoFaceFoundError naming every photo of a round without a face.
    """
    sources = as_source_list(paths)
    if not sources:
        raise EmptyInputError("encode_images got an empty list of paths. Pass at least one photo.")
    rows = []
    for round_sources, round_pictures in _rounds(sources, jpeg_decoder_for(model)):
        faces = extract_faces_from_images(round_pictures, model, largest_only=True, batch_size=batch_size)
        faceless = [source for source, found in zip(round_sources, faces) if not found]
        if faceless:
            raise _no_face_error(faceless)
        rows.extend(found[0].encoding for found in faces)
    return np.stack(rows)


def _rounds(sources: list[ImageSource], jpeg_decoder: str = "pillow") -> Iterator[tuple[list[ImageSource], list[np.ndarray]]]:
    """Sources and their decoded pictures, in consecutive groups of bounded total size."""
    round_sources: list[ImageSource] = []
    round_pictures: list[np.ndarray] = []
    pixels = 0
    for source in sources:
        picture = as_rgb(source, jpeg_decoder)
        round_sources.append(source)
        round_pictures.append(picture)
        pixels += picture.shape[0] * picture.shape[1]
        if pixels >= _ROUND_PIXELS or len(round_pictures) >= _ROUND_IMAGES:
            yield round_sources, round_pictures
            round_sources, round_pictures, pixels = [], [], 0
    if round_pictures:
        yield round_sources, round_pictures


def _no_face_error(sources: list[ImageSource]) -> NoFaceFoundError:
    names = ", ".join(describe_source(source) for source in sources)
    error = NoFaceFoundError(
        f"No face found in {names}. Check the file name, and use photos in which a face is clearly "
        f"visible, upright and at least {DEFAULT_MIN_FACE_SIZE} pixels wide."
    )
    error.sources = list(sources)
    return error
