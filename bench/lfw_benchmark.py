"""LFW verification benchmark: this package's face pipelines, the course network and dlib's own, same run, same pairs.

    .venv/bin/python bench/lfw_benchmark.py                      # all 6,000 pairs (make bench-lfw)
    .venv/bin/python bench/lfw_benchmark.py --pairs-per-fold 10 --fallback-photos 20   # 100 pairs

Protocol, LFW View 2 (pairs.txt: 10 folds of 300 matched + 300 mismatched pairs): each fold's pairs
are decided by the threshold with the best accuracy on the other nine folds; the figure is the mean
and standard deviation of the ten fold accuracies. Also the ROC AUC and the true-accept rate at a
false-accept rate of 1e-3, over all pairs. All of it comes from facerec.calibrate.

The two pipelines run on the same photos in the same run, taking turns round by round so that both
meet the same load on a shared machine:
- ours: Pillow decoding and MTCNN detection batched over the round (facerec.align.detect_faces),
  once per photo; every face found then goes through three encoders, 32 faces per call, each alone
  and mirror-averaged (faces and their mirror images in one call, as encode_chips(mirror=True) does
  it), each step in separately timed calls:
  - dlib's ResNet (dlib-resnet-h5/): alignment onto facerec's template (align_face), encode_chips,
    what extract_faces_from_images does; "ours" is whichever of alone / mirror-averaged the library
    does by default (facerec.encode.MIRROR_AVERAGED);
  - (a) the course's FaceNet (keras-facenet-h5/) as the course fed it: the photo decoded again by
    IJG libjpeg 9, MTCNN's box squared around its centre (course_crop), 160x160 nearest-neighbour,
    pixels / 255 (encode_chips);
  - (b) the course's FaceNet as FaceNet was trained: the box with a 32-pixel margin
    (facerec.align.facenet_crop), 160x160 bilinear, per-image standardisation (standardise), fed
    as it is (encode_prepared).
- dlib: dlib.load_rgb_image, the HOG frontal face detector (upsampled once), the 5-point shape
  predictor, get_face_chip(size=150, padding=0.25), compute_face_descriptor one chip per call.

Rules, the same for every column:
- every face a pipeline finds is encoded (and timed); the evaluation then takes, in each photo,
  the face whose box centre is nearest the photo's centre (LFW photos are centred on the named
  person; --face-rule largest takes the largest box instead);
- a photo in which the pipeline found no face is encoded at the pipeline's usual face position
  in LFW: the mean of its own landmarks (and box, for (a) and (b)) over --fallback-photos LFW photos
  that pairs.txt does not use (LFW's deep-funneled photos are all aligned alike). The report also gives the accuracy when
  such a pair is simply answered "different" instead;
- distance: L2 between L2-normalised descriptors (dlib's are normalised too; dlib's own 0.6 on
  raw descriptors is not used: each column gets the threshold the protocol picks). The report also
  gives each column's results at the threshold the package uses with its network (0.42 for dlib's
  ResNet, the course's 0.7 for its FaceNet);
- times: each column counts the shared decoding and detection plus its own stages only.

Outputs: bench/out/lfw_benchmark.md and .json (figures, rules, machine, date) and lfw_roc.png
(the ROC curves). Each pipeline's faces and per-photo stage times are cached in bench/cache/,
keyed by photo and by the pipeline's configuration (for ours, the library's source and model
files), so a re-run that changes only the evaluation is fast; --no-cache recomputes everything.
Speeds come from the run that computed the encodings; the report says when that was.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from facerec.calibrate import LfwPair, best_threshold, read_lfw_pairs, roc_curve, tar_at_far, ten_fold_accuracy

DEFAULT_LFW = ROOT / "data" / "lfw"
DEFAULT_OUT = ROOT / "bench" / "out"
DEFAULT_CACHE = ROOT / "bench" / "cache"
ROUND_PHOTOS = 128  # photos per round: our detector batches within it, memory stays bounded
FACELESS_DISTANCE = 4.0  # above 2, the largest distance between unit vectors: never accepted
TARGET_FAR = 1e-3
PUBLISHED_DLIB_ACCURACY = 0.9938  # dlib's figure for this network on LFW (original images)
TARGET_ACCURACY = 0.992
TARGET_ENCODING_SPEEDUP = 20.0
TARGET_PIPELINE_SPEEDUP = 3.0


# ---------------------------------------------------------------- what a pipeline produces


@dataclass
class PhotoRecord:
    """Every face one pipeline found in one photo, and what that photo cost.

    boxes (f, 4): x, y, width, height in photo pixels; landmarks (f, 5, 2): the pipeline's own five
    points (ours: eyes, nose, mouth corners; dlib: eye corners and nose base); confidences (f,): the
    detector's score; encodings: name -> (f, 128) unit-length encodings, one set per encoder of the
    pipeline (ENCODING_SETS for ours, "plain" for dlib; "_mirrored" sets are the unit means of each
    face's and its mirror image's encodings). stage_seconds: wall seconds per stage,
    a batched stage's time shared equally by the photos of its call; wall_seconds and cpu_seconds:
    the photo's share of its whole round.
    """

    boxes: np.ndarray
    landmarks: np.ndarray
    confidences: np.ndarray
    encodings: dict[str, np.ndarray]
    stage_seconds: np.ndarray
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    computed_at: float = 0.0


class StageClock:
    """Wall seconds spent in each named stage: `with clock("detect"): ...`."""

    def __init__(self, stages: tuple[str, ...]):
        self.stages = stages
        self.seconds = dict.fromkeys(stages, 0.0)
        self._current = None
        self._started = 0.0

    def __call__(self, stage: str) -> "StageClock":
        self._current = stage
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_exc) -> None:
        self.seconds[self._current] += time.perf_counter() - self._started

    def as_array(self, share: float = 1.0) -> np.ndarray:
        return np.array([self.seconds[stage] * share for stage in self.stages])


def unit_rows(vectors, width: int = 128) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, width)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def shrunk(picture: np.ndarray, scale: float) -> np.ndarray:
    """`picture` resized by `scale` (Lanczos), or itself when the scale is 1."""
    if scale == 1:
        return picture
    from PIL import Image

    height, width = picture.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(picture).resize(size, Image.Resampling.LANCZOS))


def library_mirrors_by_default() -> bool:
    """Whether facerec's encodings average each chip with its mirror image by default."""
    from facerec import encode

    return bool(getattr(encode, "MIRROR_AVERAGED", False))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------- the two pipelines


class OurPipeline:
    """facerec's MTCNN detection, run once per photo, and every encoder that uses it.

    - dlib's ResNet (the library's photo pipeline): Pillow decoding, alignment onto the template
      (align_face), pixels 0..255, 32 chips per call (encode_chips), alone and mirror-averaged;
    - the course's FaceNet fed as the course fed it ("course"): the photo decoded again by IJG
      libjpeg 9, the box squared (course_crop), 160x160 nearest-neighbour, pixels / 255;
    - the course's FaceNet fed as FaceNet was trained ("facenet"): the Pillow-decoded photo, the box
      with a 32-pixel margin (facenet_crop), 160x160 bilinear, per-image standardisation.
    Each encoder's stages are timed on their own, so that each report column counts its own work
    plus the shared decoding and detection.
    """

    name = "ours"
    stages = ("decode", "detect", "align", "encode", "encode_mirrored",
              "course_decode", "course_crop", "course_encode", "course_encode_mirrored",
              "facenet_crop", "facenet_encode", "facenet_encode_mirrored")
    detection_stages = ("detect",)  # MTCNN gives the landmarks with the boxes

    def __init__(self, photo_scale: float = 1.0, model_folder: Path = ROOT / "dlib-resnet-h5",
                 course_model_folder: Path = ROOT / "keras-facenet-h5", batch_size: int = 32):
        from facerec import align, encode, images

        self.photo_scale = photo_scale
        self.align, self.encode, self.images = align, encode, images
        self.model_folder, self.course_model_folder = model_folder, course_model_folder
        self.batch_size = batch_size
        self.model = encode.load_model(model_folder)
        self.course_model = encode.load_model(course_model_folder)
        self.chip_size = encode.chip_size(self.model)
        self.course_size = encode.chip_size(self.course_model)
        self.mirror_by_default = library_mirrors_by_default()
        self._warm_up()

    def _warm_up(self) -> None:
        """Build the detector and trace both models for full and partial batches, alone and with
        mirror images, outside the timed rounds."""
        self.align.detect_faces([np.full((250, 250, 3), 128, np.uint8)])
        for count in (self.batch_size, self.batch_size // 2 + 1):
            for model, size in ((self.model, self.chip_size), (self.course_model, self.course_size)):
                for mirror in (False, True):
                    self.encode.encode_chips(np.zeros((count, size, size, 3), np.uint8), model, self.batch_size, mirror)

    def configuration(self) -> dict:
        import mtcnn

        library = ("facerec/align.py", "facerec/encode.py", "facerec/images.py", "facerec/original_model.py")
        return {
            "pipeline": self.name,
            "library_sources": {name: file_digest(ROOT / name) for name in library},
            "model": file_digest(self.model_folder / "model.h5"),
            "course_model": file_digest(self.course_model_folder / "model.h5"),
            "course_input": {"crop": "squared box", "resize": "nearest", "jpeg": "libjpeg9", "pixels": "/255"},
            "facenet_input": {"margin": self.align.FACENET_MARGIN, "resize": "bilinear", "pixels": "standardised"},
            "mtcnn": getattr(mtcnn, "__version__", "?"),
            "batch_size": self.batch_size,
            **({"photo_scale": self.photo_scale} if self.photo_scale != 1 else {}),
        }

    def process(self, paths: list[Path]) -> list[PhotoRecord]:
        clock = StageClock(self.stages)
        with clock("decode"):
            pictures = [shrunk(self.images.load_image(path), self.photo_scale) for path in paths]
        with clock("detect"):
            detections = self.align.detect_faces(pictures)
        encodings = self._encode_faces(paths, pictures, detections, clock)
        records, next_face = [], 0
        for found in detections:
            count = len(found)
            faces = slice(next_face, next_face + count)
            records.append(PhotoRecord(
                boxes=np.array([face.box for face in found], np.float64).reshape(count, 4),
                landmarks=np.array([face.landmarks for face in found], np.float64).reshape(count, 5, 2),
                confidences=np.array([face.confidence for face in found], np.float64),
                encodings={name: rows[faces] for name, rows in encodings.items()},
                stage_seconds=clock.as_array(1 / len(paths)),
            ))
            next_face += count
        return records

    def _encode_faces(self, paths: list[Path], pictures: list[np.ndarray], detections: list, clock: StageClock) -> dict:
        """Every encoder's (faces, 128) encodings of every detected face, each stage in its own timed calls."""
        faces = [(picture, face) for picture, found in zip(pictures, detections) for face in found]
        if not faces:
            return {name: np.empty((0, 128), np.float32) for name in ENCODING_SETS}
        with clock("align"):
            chips = np.stack([self.align.align_face(picture, face.landmarks, self.chip_size) for picture, face in faces])
        encodings = {}
        with clock("encode"):
            encodings["plain"] = self.encode.encode_chips(chips, self.model, self.batch_size)
        with clock("encode_mirrored"):
            encodings["mirrored"] = self.encode.encode_chips(chips, self.model, self.batch_size, mirror=True)

        with clock("course_decode"):
            course_pictures = [shrunk(self.images.load_image(path, jpeg_decoder="libjpeg9"), self.photo_scale)
                               for path in paths]
        with clock("course_crop"):
            course_faces = np.stack([course_crop(picture, face.box, self.course_size)
                                     for picture, found in zip(course_pictures, detections) for face in found])
        with clock("course_encode"):
            encodings["course"] = self.encode.encode_chips(course_faces, self.course_model, self.batch_size)
        with clock("course_encode_mirrored"):
            encodings["course_mirrored"] = self.encode.encode_chips(
                course_faces, self.course_model, self.batch_size, mirror=True)

        with clock("facenet_crop"):
            facenet_faces = self.align.standardise(np.stack(
                [self.align.facenet_crop(picture, face.box, size=self.course_size) for picture, face in faces]))
        with clock("facenet_encode"):
            encodings["facenet"] = encode_prepared(facenet_faces, self.course_model, self.batch_size)
        with clock("facenet_encode_mirrored"):
            encodings["facenet_mirrored"] = encode_prepared(facenet_faces, self.course_model, self.batch_size, mirror=True)
        return encodings

    def encode_at(self, path: Path, landmarks: np.ndarray, box: np.ndarray) -> PhotoRecord:
        """The photo encoded as if its face had been found at `landmarks` and `box` (the fallback rule)."""
        clock = StageClock(self.stages)
        picture = shrunk(self.images.load_image(path), self.photo_scale)
        face = self.align.Detection(box=tuple(float(v) for v in box), landmarks=landmarks, confidence=0.0)
        encodings = self._encode_faces([path], [picture], [[face]], clock)
        return PhotoRecord(np.full((1, 4), np.nan), landmarks[None], np.zeros(1), encodings, clock.as_array())


ENCODING_SETS = ("plain", "mirrored", "course", "course_mirrored", "facenet", "facenet_mirrored")


def course_crop(picture: np.ndarray, box, size: int) -> np.ndarray:
    """The face as the course fed its network: the detector's box (x, y, width, height) squared
    around its centre (side = the longer of width and height), clipped to the photo, and resized
    to size x size nearest-neighbour (the course's photos were square face crops, plain-resized)."""
    from PIL import Image

    height, width = picture.shape[:2]
    x, y, w, h = (float(v) for v in box)
    side, centre_x, centre_y = max(w, h), x + w / 2, y + h / 2
    left, top = max(int(round(centre_x - side / 2)), 0), max(int(round(centre_y - side / 2)), 0)
    right, bottom = min(int(round(centre_x + side / 2)), width), min(int(round(centre_y + side / 2)), height)
    if right <= left or bottom <= top:
        raise ValueError(f"The box {tuple(box)} lies outside the {width}x{height} photo.")
    return np.asarray(Image.fromarray(picture[top:bottom, left:right]).resize((size, size), Image.Resampling.NEAREST))


def encode_prepared(faces: np.ndarray, model, batch_size: int, mirror: bool = False) -> np.ndarray:
    """(n, 128) unit encodings of float inputs the model takes as they are (e.g. standardised faces),
    `batch_size` faces per predict_on_batch; with `mirror`, faces and mirror images in one call,
    as encode_chips does (which would scale the pixels first)."""
    encodings = []
    for start in range(0, len(faces), batch_size):
        batch = faces[start : start + batch_size]
        if mirror:
            both = unit_rows(np.asarray(model.predict_on_batch(np.concatenate([batch, batch[:, :, ::-1]]))))
            encodings.append(unit_rows(both[: len(batch)] + both[len(batch) :]))
        else:
            encodings.append(unit_rows(np.asarray(model.predict_on_batch(batch))))
    return np.concatenate(encodings)


class DlibPipeline:
    """dlib's own pipeline, one photo and one chip per call, as dlib's examples use it."""

    name = "dlib"
    title = "dlib: HOG + 5-point + get_face_chip + ResNet"
    stages = ("decode", "detect", "landmarks", "align", "encode")
    detection_stages = ("detect", "landmarks")
    upsample = 1
    chip_size = 150
    padding = 0.25

    def __init__(self, photo_scale: float = 1.0):
        import dlib
        import face_recognition_models

        self.photo_scale = photo_scale
        self.dlib = dlib
        self.model_files = (face_recognition_models.pose_predictor_five_point_model_location(),
                            face_recognition_models.face_recognition_model_location())
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(self.model_files[0])
        self.network = dlib.face_recognition_model_v1(self.model_files[1])

    def configuration(self) -> dict:
        return {
            "pipeline": self.name,
            "dlib": self.dlib.__version__,
            "models": {Path(path).name: file_digest(Path(path)) for path in self.model_files},
            "upsample": self.upsample, "chip_size": self.chip_size, "padding": self.padding,
            **({"photo_scale": self.photo_scale} if self.photo_scale != 1 else {}),
        }

    def process(self, paths: list[Path]) -> list[PhotoRecord]:
        records = []
        for path in paths:
            clock = StageClock(self.stages)
            with clock("decode"):
                picture = shrunk(self.dlib.load_rgb_image(str(path)), self.photo_scale)
            with clock("detect"):
                rectangles, scores, _ = self.detector.run(picture, self.upsample, 0.0)
            with clock("landmarks"):
                shapes = [self.shape_predictor(picture, rectangle) for rectangle in rectangles]
            with clock("align"):
                chips = [self.dlib.get_face_chip(picture, shape, size=self.chip_size, padding=self.padding)
                         for shape in shapes]
            with clock("encode"):
                descriptors = [self.network.compute_face_descriptor(chip) for chip in chips]
            count = len(rectangles)
            records.append(PhotoRecord(
                boxes=np.array([[r.left(), r.top(), r.width(), r.height()] for r in rectangles], np.float64).reshape(count, 4),
                landmarks=np.array([[[p.x, p.y] for p in shape.parts()] for shape in shapes], np.float64).reshape(count, 5, 2),
                confidences=np.array(scores, np.float64),
                encodings={"plain": unit_rows(np.array(descriptors, np.float32))},
                stage_seconds=clock.as_array(),
            ))
        return records

    def encode_at(self, path: Path, landmarks: np.ndarray, box: np.ndarray) -> PhotoRecord:
        """The photo encoded as if its face had been found at `landmarks` (the fallback rule; dlib's
        chip needs no box)."""
        picture = shrunk(self.dlib.load_rgb_image(str(path)), self.photo_scale)
        points = self.dlib.points([self.dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
        left, top = np.floor(landmarks.min(axis=0)).astype(int)
        right, bottom = np.ceil(landmarks.max(axis=0)).astype(int)
        shape = self.dlib.full_object_detection(self.dlib.rectangle(left, top, right, bottom), points)
        chip = self.dlib.get_face_chip(picture, shape, size=self.chip_size, padding=self.padding)
        encoding = unit_rows(np.array(self.network.compute_face_descriptor(chip), np.float32))
        return PhotoRecord(np.full((1, 4), np.nan), landmarks[None], np.zeros(1), {"plain": encoding},
                           np.zeros(len(self.stages)))


# ---------------------------------------------------------------- cache


class RecordCache:
    """One pipeline's PhotoRecords by photo name, in <folder>/lfw_<pipeline>_<configuration hash>.npz."""

    def __init__(self, folder: Path, pipeline, enabled: bool = True):
        configuration = json.dumps(pipeline.configuration(), sort_keys=True)
        key = hashlib.sha256(configuration.encode()).hexdigest()[:12]
        self.path = folder / f"lfw_{pipeline.name}_{key}.npz"
        self.configuration = configuration
        self.stages = pipeline.stages
        self.records: dict[str, PhotoRecord] = {}
        if enabled and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path) as stored:
                if tuple(stored["stages"].tolist()) != self.stages:
                    return
                counts = stored["face_counts"]
                ends = np.cumsum(counts)
                columns = {name: stored[name] for name in stored.files}
        except (OSError, KeyError, ValueError) as error:
            print(f"ignoring the unreadable cache {self.path} ({error}); recomputing", file=sys.stderr)
            return
        sets = [name.removeprefix("encodings_") for name in columns if name.startswith("encodings_")]
        for i, photo in enumerate(columns["photos"].tolist()):
            faces = slice(ends[i] - counts[i], ends[i])
            self.records[photo] = PhotoRecord(
                *(columns[name][faces] for name in ("boxes", "landmarks", "confidences")),
                {name: columns["encodings_" + name][faces] for name in sets},
                columns["stage_seconds"][i], float(columns["wall_seconds"][i]),
                float(columns["cpu_seconds"][i]), float(columns["computed_at"][i]))

    def save(self) -> None:
        photos = sorted(self.records)
        records = [self.records[photo] for photo in photos]
        sets = sorted({name for r in records for name in r.encodings})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.stem + ".partial.npz")
        np.savez(
            partial,
            configuration=np.array(self.configuration), stages=np.array(self.stages), photos=np.array(photos),
            face_counts=np.array([len(r.boxes) for r in records], np.int64),
            boxes=np.concatenate([r.boxes for r in records]).reshape(-1, 4),
            landmarks=np.concatenate([r.landmarks for r in records]).reshape(-1, 5, 2),
            confidences=np.concatenate([r.confidences for r in records]),
            **{"encodings_" + name: np.concatenate([r.encodings[name] for r in records]).reshape(-1, 128) for name in sets},
            stage_seconds=np.array([r.stage_seconds for r in records]).reshape(len(records), len(self.stages)),
            wall_seconds=np.array([r.wall_seconds for r in records]),
            cpu_seconds=np.array([r.cpu_seconds for r in records]),
            computed_at=np.array([r.computed_at for r in records]),
        )
        os.replace(partial, self.path)


def run_pipelines(pipelines: list, caches: list[RecordCache], photos: list[str], lfw_photos: Path) -> None:
    """Fill each cache with every photo it lacks, round by round, the pipelines taking turns."""
    missing = [[photo for photo in photos if photo not in cache.records] for cache in caches]
    rounds = max((len(m) + ROUND_PHOTOS - 1) // ROUND_PHOTOS for m in missing)
    started = time.perf_counter()
    for round_number in range(rounds):
        order = range(len(pipelines)) if round_number % 2 == 0 else reversed(range(len(pipelines)))
        for index in order:
            names = missing[index][round_number * ROUND_PHOTOS : (round_number + 1) * ROUND_PHOTOS]
            if not names:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            records = pipelines[index].process([lfw_photos / name for name in names])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            now = time.time()
            for name, record in zip(names, records):
                record.wall_seconds, record.cpu_seconds, record.computed_at = wall / len(names), cpu / len(names), now
                caches[index].records[name] = record
        done = sum(min(len(m), (round_number + 1) * ROUND_PHOTOS) for m in missing)
        print(f"  round {round_number + 1}/{rounds}: {done}/{sum(map(len, missing))} photos through a pipeline, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if round_number % 10 == 9:
            for cache in caches:
                cache.save()
    for cache, names in zip(caches, missing):
        if names:
            cache.save()


# ---------------------------------------------------------------- evaluation


@dataclass
class Contender:
    """One column of the report: one encoder of a pipeline, with or without mirror averaging.

    encodings: which of the records' encoding sets the column compares; stages: the pipeline stages
    the column's work is made of, each under the stage name the report gives it (None: all of the
    pipeline's stages, under their own names). Stages of the pipeline outside `stages` belong to
    other columns: the column's time leaves them out.
    """

    key: str
    title: str
    pipeline: object
    encodings: str = "plain"
    stages: dict[str, str] | None = None
    network_passes: int = 1

    def encoding(self, record: PhotoRecord, face: int) -> np.ndarray:
        return record.encodings[self.encodings][face]

    def stage_seconds(self, record: PhotoRecord) -> dict[str, float]:
        seconds: dict[str, float] = {}
        for stage, spent in zip(self.pipeline.stages, record.stage_seconds.tolist()):
            shown = stage if self.stages is None else self.stages.get(stage)
            if shown is not None:
                seconds[shown] = seconds.get(shown, 0.0) + spent
        return seconds

    def wall_seconds(self, record: PhotoRecord) -> float:
        """The photo's share of its round, without the stages of the pipeline's other columns."""
        if self.stages is None:
            return record.wall_seconds
        return record.wall_seconds - sum(spent for stage, spent in zip(self.pipeline.stages, record.stage_seconds)
                                         if stage not in self.stages)


SHARED_STAGES = {"decode": "decode", "detect": "detect"}  # MTCNN, once per photo, for every column of ours


def our_contenders(ours: OurPipeline) -> list[Contender]:
    """The columns of our MTCNN pipeline: dlib's ResNet (library default first), then the course's FaceNet."""
    resnet = "ours: MTCNN + alignment + dlib's ResNet"
    single = Contender("ours_single", resnet + ", single chip", ours, "plain",
                       {**SHARED_STAGES, "align": "align", "encode": "encode"})
    mirrored = Contender("ours_mirrored", resnet + ", mirror-averaged", ours, "mirrored",
                         {**SHARED_STAGES, "align": "align", "encode_mirrored": "encode"}, 2)
    library, other = (mirrored, single) if ours.mirror_by_default else (single, mirrored)
    library.key, other.key = "ours", "ours_alternative"
    course = "(a) course FaceNet as the course fed it"  # the rules in the report say exactly how
    facenet = "(b) course FaceNet as FaceNet was trained"
    course_stages = {**SHARED_STAGES, "course_decode": "decode", "course_crop": "align"}
    facenet_stages = {**SHARED_STAGES, "facenet_crop": "align"}
    return [
        library, other,
        Contender("course", course, ours, "course", {**course_stages, "course_encode": "encode"}),
        Contender("course_mirrored", course + ", mirror-averaged", ours, "course_mirrored",
                  {**course_stages, "course_encode_mirrored": "encode"}, 2),
        Contender("facenet", facenet, ours, "facenet", {**facenet_stages, "facenet_encode": "encode"}),
        Contender("facenet_mirrored", facenet + ", mirror-averaged", ours, "facenet_mirrored",
                  {**facenet_stages, "facenet_encode_mirrored": "encode"}, 2),
    ]


def chosen_face(record: PhotoRecord, picture_size: tuple[int, int], rule: str) -> int | None:
    """Index of the face the rule keeps ('centre': box centre nearest the photo's; 'largest'), None if no face."""
    if len(record.boxes) == 0:
        return None
    boxes = record.boxes
    if rule == "largest":
        return int(np.argmax(boxes[:, 2] * boxes[:, 3]))
    width, height = picture_size
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    return int(np.argmin(np.hypot(centres[:, 0] - width / 2, centres[:, 1] - height / 2)))


def usual_face(records: list[PhotoRecord], sizes: list[tuple[int, int]], rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(5, 2) mean landmarks and (4,) mean box of the chosen face over photos with one: where this
    detector puts an LFW face."""
    chosen = [(record.landmarks[face], record.boxes[face]) for record, size in zip(records, sizes)
              if (face := chosen_face(record, size, rule)) is not None]
    if not chosen:
        raise SystemExit("No face was found in any of the fallback photos: raise --fallback-photos.")
    return np.mean([landmarks for landmarks, _ in chosen], axis=0), np.mean([box for _, box in chosen], axis=0)


def pair_distances(encodings: dict[str, np.ndarray], pairs: list[LfwPair]) -> np.ndarray:
    """L2 distance of each pair; FACELESS_DISTANCE when a photo has no encoding."""
    return np.array([
        float(np.linalg.norm(encodings[pair.first] - encodings[pair.second]))
        if pair.first in encodings and pair.second in encodings else FACELESS_DISTANCE
        for pair in pairs
    ])


def verification_figures(distances: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """LFW protocol figures of one set of pair distances (facerec.calibrate)."""
    folded = ten_fold_accuracy(distances, same, folds)
    overall = best_threshold(distances, same)
    curve = roc_curve(distances, same)
    operating = tar_at_far(distances, same, TARGET_FAR)
    return {
        "ten_fold_accuracy": folded.mean,
        "ten_fold_std": folded.std,
        "ten_fold_standard_error": folded.standard_error,
        "fold_accuracies": folded.accuracies.tolist(),
        "fold_thresholds": folded.thresholds.tolist(),
        "best_threshold_all_pairs": overall.threshold,
        "accuracy_at_best_threshold": overall.accuracy,
        "roc_auc": curve.auc,
        "tar_at_far_1e-3": operating.tar,
        "far_at_that_point": operating.far,
        "threshold_at_far_1e-3": operating.threshold,
        "tar_at_far": {f"{far:g}": tar_at_far(distances, same, far).tar for far in (0.0, 1e-3, 1e-2, 1e-1)},
        "accuracy_at_threshold": {f"{t:.2f}": float(np.mean((distances < t) == same))
                                  for t in round(overall.threshold, 2) + np.arange(-5, 6) / 100},
        "median_distance_genuine": float(np.median(distances[same])),
        "median_distance_impostor": float(np.median(distances[~same])),
    }


def threshold_figures(figures: dict, distances: np.ndarray, same: np.ndarray, threshold: float) -> dict:
    """A column's results at a fixed threshold over all pairs, beside the thresholds the protocol picks."""
    return {
        "threshold": threshold,
        "accuracy": float(np.mean((distances < threshold) == same)),
        "tar": float(np.mean(distances[same] < threshold)),
        "far": float(np.mean(distances[~same] < threshold)),
        "best_all_pairs": figures["best_threshold_all_pairs"],
        "accuracy_at_best": figures["accuracy_at_best_threshold"],
        "fold_thresholds": [min(figures["fold_thresholds"]), max(figures["fold_thresholds"])],
    }


def speed_figures(contender: Contender, records: list[PhotoRecord], run_started: float) -> dict:
    """Rates over the given photos, from the per-photo times stored with their encodings."""
    stage_seconds: dict[str, float] = {}
    for record in records:
        for stage, seconds in contender.stage_seconds(record).items():
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + seconds
    photos = len(records)
    faces = int(sum(len(r.boxes) for r in records))
    wall = float(sum(contender.wall_seconds(r) for r in records))
    pipeline_wall = float(sum(r.wall_seconds for r in records))
    cpu = float(sum(r.cpu_seconds for r in records))
    computed = [r.computed_at for r in records]
    detection = sum(stage_seconds[stage] for stage in contender.pipeline.detection_stages)
    return {
        "photos": photos,
        "faces_encoded": faces,
        "network_passes_per_encoding": contender.network_passes,
        "stage_seconds": stage_seconds,
        "encodings_per_second": faces / stage_seconds["encode"],
        "detections_per_second": photos / detection,
        "pipeline_photos_per_second": photos / wall,
        "pipeline_wall_seconds": wall,
        "cores_used": cpu / pipeline_wall,
        "timed_in_this_run": bool(min(computed) >= run_started),
        "timed_between": [iso_time(min(computed)), iso_time(max(computed))],
    }


def iso_time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, timezone.utc).astimezone().isoformat(timespec="seconds")


def machine_description() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import dlib

    from facerec import align  # noqa: F401  (imports TensorFlow with its start-up notices kept off stderr)
    import tensorflow as tf

    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "dlib": dlib.__version__,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }


def target_checks(ours: dict, dlib: dict) -> list[dict]:
    """Each target of the benchmark: wanted, got, met, and the shortfall when missed."""
    checks = []

    def check(name: str, got: float, wanted: float, unit: str) -> None:
        checks.append({"target": name, "wanted": wanted, "got": got, "met": bool(got >= wanted),
                       "short_by": max(0.0, wanted - got), "unit": unit})

    check("our 10-fold accuracy >= dlib pipeline's", ours["ten_fold_accuracy"], dlib["ten_fold_accuracy"], "accuracy")
    check("our 10-fold accuracy >= 99.2%", ours["ten_fold_accuracy"], TARGET_ACCURACY, "accuracy")
    check("our encodings/s >= 20x dlib compute_face_descriptor",
          ours["encodings_per_second"] / dlib["encodings_per_second"], TARGET_ENCODING_SPEEDUP, "ratio")
    check("our whole pipeline photos/s >= 3x dlib's whole pipeline",
          ours["pipeline_photos_per_second"] / dlib["pipeline_photos_per_second"], TARGET_PIPELINE_SPEEDUP, "ratio")
    return checks


# ---------------------------------------------------------------- report


def scale_note(photo_scale: float) -> str:
    return "" if photo_scale == 1 else f", photos shrunk by {photo_scale:g}"


def percent(value: float, digits: int = 2) -> str:
    return f"{100 * value:.{digits}f}%"


def markdown_report(report: dict) -> str:
    contenders = report["contenders"]
    machine = report["machine"]
    rows = [
        ("10-fold accuracy +/- std", lambda c: f"**{percent(c['ten_fold_accuracy'])}** +/- {percent(c['ten_fold_std'])}"),
        ("ROC AUC", lambda c: f"{c['roc_auc']:.5f}"),
        ("TAR at FAR = 1e-3", lambda c: percent(c["tar_at_far_1e-3"])),
        ("best threshold on all pairs (its accuracy)",
         lambda c: f"{c['best_threshold_all_pairs']:.4f} ({percent(c['accuracy_at_best_threshold'])})"),
        ("photos without a face (pairs with one)", lambda c: f"{len(c['faceless_photos'])} ({c['faceless_pairs']})"),
        ("10-fold accuracy if those pairs are answered 'different'",
         lambda c: percent(c["ten_fold_accuracy_faceless_different"])),
        (f"10-fold accuracy on the {report['common_pairs']} pairs where every pipeline found every face",
         lambda c: percent(c["common_pairs_ten_fold_accuracy"])),
        ("photos with several faces", lambda c: str(c["photos_with_several_faces"])),
        ("encodings per second (network passes each)",
         lambda c: f"{c['encodings_per_second']:.1f} ({c['network_passes_per_encoding']})"),
        ("detections per second (photos, with landmarks)", lambda c: f"{c['detections_per_second']:.1f}"),
        ("whole pipeline, photos per second", lambda c: f"{c['pipeline_photos_per_second']:.1f}"),
        ("whole pipeline wall time (CPU cores kept busy)",
         lambda c: f"{c['pipeline_wall_seconds'] / 60:.1f} min ({c['cores_used']:.1f})"),
    ]
    lines = [
        f"# LFW View 2: {report['pairs']} pairs, {report['photos']} photos{scale_note(report['photo_scale'])}",
        "",
        f"Run {report['date']} on {machine['cpu']} ({machine['logical_cpus']} logical CPUs, {machine['memory_gb']} GB, "
        f"load average {machine['load_average_at_start']} at start; shared machine), TensorFlow {machine['tensorflow']}, "
        f"dlib {machine['dlib']}. Command: `{report['command']}`. Run wall time: {report['run_wall_seconds'] / 60:.1f} min.",
        "",
        "| | " + " | ".join(c["title"] for c in contenders.values()) + " |",
        "|---|" + "---|" * len(contenders),
    ]
    lines += [f"| {label} | " + " | ".join(show(c) for c in contenders.values()) + " |" for label, show in rows]
    lines += ["", "Stage seconds, all photos:", "", "| stage | " + " | ".join(contenders) + " |", "|---|" + "---|" * len(contenders)]
    for stage in ("decode", "detect", "landmarks", "align", "encode"):
        cells = [f"{c['stage_seconds'][stage]:.1f}" if stage in c["stage_seconds"] else "(in detect)" for c in contenders.values()]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += ["", f"## Targets ({report['ours']} against dlib)", "", "| target | wanted | got | |", "|---|---|---|---|"]
    for check in report["targets"]:
        show = percent if check["unit"] == "accuracy" else (lambda v: f"{v:.1f}x")
        verdict = "met" if check["met"] else f"missed by {show(check['short_by'])}"
        lines.append(f"| {check['target']} | {show(check['wanted'])} | {show(check['got'])} | {verdict} |")
    lines += ["", "## Thresholds (all pairs)", "",
              "| | package threshold | accuracy at it | TAR at it | FAR at it | best threshold (its accuracy) "
              "| protocol's picks across the folds |", "|---|---|---|---|---|---|---|"]
    for key, threshold in report["thresholds"].items():
        lines.append(
            f"| {contenders[key]['title']} | {threshold['threshold']} | {percent(threshold['accuracy'])} "
            f"| {percent(threshold['tar'])} | {percent(threshold['far'])} "
            f"| {threshold['best_all_pairs']:.4f} ({percent(threshold['accuracy_at_best'])}) "
            f"| {threshold['fold_thresholds'][0]:.4f} to {threshold['fold_thresholds'][1]:.4f} |")
    best = contenders[report["best_on_lfw"]]
    lines += [
        "",
        f"Best on LFW (10-fold accuracy, then TAR at FAR 1e-3): **{best['title']}**, "
        f"{percent(best['ten_fold_accuracy'])} +/- {percent(best['ten_fold_std'])}, TAR {percent(best['tar_at_far_1e-3'])}. "
        "Ranking: " + ", ".join(f"{key} {percent(contenders[key]['ten_fold_accuracy'])}" for key in report["ranking"]) + ".",
        "",
        "## Rules (every column)",
        "",
    ]
    lines += [f"- {rule}" for rule in report["rules"]]
    for key, contender in contenders.items():
        if contender["faceless_photos"] and key in ("ours", "dlib"):  # the other columns share ours' detections
            lines += ["", f"Photos without a face, {key}: " + ", ".join(contender["faceless_photos"])]
        if not contender["timed_in_this_run"]:
            lines += ["", f"Speeds of {key} come from the cache, timed {' to '.join(contender['timed_between'])}."]
    lines += ["", "ROC curves: `lfw_roc.png`.", ""]
    return "\n".join(lines)


def plot_roc(curves: dict, path: Path, title: str, threshold_point: tuple[float, float, str]) -> None:
    """Both ROC curves (FAR on a log axis), their TAR at FAR 1e-3, and `threshold_point` (far, tar, label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    lowest = 1.0
    for label, (distances, same, figures) in curves.items():
        curve = roc_curve(distances, same)
        line, = axis.step(curve.far, curve.tar, where="post",
                          label=f"{label}\nAUC {curve.auc:.5f}, TAR {percent(figures['tar_at_far_1e-3'], 1)} at FAR 1e-3")
        axis.plot(figures["far_at_that_point"], figures["tar_at_far_1e-3"], "o", color=line.get_color())
        lowest = min(lowest, figures["tar_at_far_1e-3"])
    far, tar, label = threshold_point
    axis.plot(max(far, 1e-4), tar, "x", color="black", label=label)
    axis.axvline(TARGET_FAR, color="grey", linestyle=":", linewidth=1)
    axis.set(xscale="log", xlim=(1e-4, 1), ylim=(max(0.0, lowest - 0.05), 1.002),
             xlabel="false accept rate (impostor pairs accepted)", ylabel="true accept rate (genuine pairs accepted)",
             title=title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


# ---------------------------------------------------------------- command line


def select_pairs(pairs: list[LfwPair], pairs_per_fold: int) -> list[LfwPair]:
    """`pairs_per_fold` pairs of each fold, half matched and half mismatched, evenly spread."""
    if pairs_per_fold < 2 or pairs_per_fold % 2:
        raise SystemExit(f"--pairs-per-fold must be an even number >= 2 (half matched, half mismatched), not {pairs_per_fold}.")
    chosen = []
    for fold in sorted({pair.fold for pair in pairs}):
        for same in (True, False):
            half = [pair for pair in pairs if pair.fold == fold and pair.same == same]
            step = max(1, len(half) // (pairs_per_fold // 2))
            chosen += half[::step][: pairs_per_fold // 2]
    return chosen


def fallback_photos(lfw_photos: Path, pairs: list[LfwPair], count: int) -> list[str]:
    """`count` LFW photos, evenly spread by name, that no pair of pairs.txt uses."""
    in_pairs = {photo for pair in pairs for photo in (pair.first, pair.second)}
    unused = sorted(str(path.relative_to(lfw_photos)) for path in lfw_photos.glob("*/*.jpg"))
    unused = [photo for photo in unused if photo not in in_pairs]
    if count < 1 or not unused:
        raise SystemExit(f"Need at least one LFW photo outside pairs.txt for the fallback rule (asked {count}, found {len(unused)}).")
    return unused[:: max(1, len(unused) // count)][:count]


def find_lfw(folder: Path | None) -> Path:
    """The LFW folder holding pairs.txt and lfw-deepfunneled/: the one given, the installed copy, or the assets."""
    from facerec.assets import assets_source

    candidates = [folder] if folder else [DEFAULT_LFW, assets_source() / "lfw"]
    for candidate in candidates:
        if (candidate / "pairs.txt").is_file() and (candidate / "lfw-deepfunneled").is_dir():
            return candidate
    raise SystemExit(
        "No LFW here: looked for pairs.txt and lfw-deepfunneled/ in " + " and ".join(map(str, candidates))
        + ". Run `make setup` (it installs LFW into data/lfw), or pass --lfw FOLDER."
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw", type=Path, default=None, help="folder with pairs.txt and lfw-deepfunneled/ (default: data/lfw)")
    parser.add_argument("--pairs-per-fold", type=int, default=600, help="pairs per fold, half matched (default: all 600)")
    parser.add_argument("--fallback-photos", type=int, default=200,
                        help="LFW photos outside pairs.txt that give each detector's usual face position (default: 200)")
    parser.add_argument("--photo-scale", type=float, default=1.0,
                        help="shrink every photo by this factor first, for both pipelines (0.4 gives LFW faces the "
                             "course photos' size: eyes about 17 px apart instead of 42)")
    parser.add_argument("--face-rule", choices=("centre", "largest"), default="centre",
                        help="which face of a photo with several is compared (default: nearest the centre)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every encoding (and its timing)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default: bench/out)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache folder (default: bench/cache)")
    return parser.parse_args(argv)


def evaluate(contender: Contender, records: dict[str, PhotoRecord], fallback: dict[str, PhotoRecord],
             pairs: list[LfwPair], photos: list[str], sizes: dict[str, tuple[int, int]], rule: str, run_started: float):
    """(figures, distances with the fallback rule, distances with faceless pairs answered 'different')."""
    found, faceless = {}, []
    for photo in photos:
        face = chosen_face(records[photo], sizes[photo], rule)
        if face is None:
            faceless.append(photo)
        else:
            found[photo] = contender.encoding(records[photo], face)
    with_fallback = {**found, **{photo: contender.encoding(fallback[photo], 0) for photo in faceless}}
    distances = pair_distances(with_fallback, pairs)
    different = pair_distances(found, pairs)
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])
    faceless_set = set(faceless)
    figures = {
        "title": contender.title,
        **verification_figures(distances, same, folds),
        "faceless_photos": faceless,
        "faceless_pairs": int(sum(pair.first in faceless_set or pair.second in faceless_set for pair in pairs)),
        "ten_fold_accuracy_faceless_different": ten_fold_accuracy(different, same, folds).mean,
        "photos_with_several_faces": int(sum(len(records[photo].boxes) > 1 for photo in photos)),
        **speed_figures(contender, [records[photo] for photo in photos], run_started),
    }
    return figures, distances, different


def main(argv: list[str] | None = None) -> dict:
    arguments = parse_arguments(argv)
    run_started = time.time()
    started = time.perf_counter()
    lfw = find_lfw(arguments.lfw)
    lfw_photos = lfw / "lfw-deepfunneled"
    all_pairs = read_lfw_pairs(lfw / "pairs.txt")
    pairs = select_pairs(all_pairs, arguments.pairs_per_fold)
    photos = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
    reference_photos = fallback_photos(lfw_photos, all_pairs, arguments.fallback_photos)
    machine = machine_description()
    print(f"{len(pairs)} pairs, {len(photos)} photos (and {len(reference_photos)} for the fallback rule) from {lfw}",
          file=sys.stderr)

    if not 0 < arguments.photo_scale <= 1:
        raise SystemExit(f"--photo-scale shrinks photos: give a factor in (0, 1], not {arguments.photo_scale}.")
    ours, dlib = OurPipeline(arguments.photo_scale), DlibPipeline(arguments.photo_scale)
    pipelines = [ours, dlib]
    caches = [RecordCache(arguments.cache, pipeline, enabled=not arguments.no_cache) for pipeline in pipelines]
    run_pipelines(pipelines, caches, photos, lfw_photos)
    run_pipelines(pipelines, caches, reference_photos, lfw_photos)

    from PIL import Image

    sizes = {}
    for photo in photos + reference_photos:
        with Image.open(lfw_photos / photo) as opened:
            sizes[photo] = tuple(max(1, round(side * arguments.photo_scale)) for side in opened.size)
    rule = arguments.face_rule
    fallback_records = {}
    for pipeline, cache in zip(pipelines, caches):
        landmarks, box = usual_face([cache.records[p] for p in reference_photos], [sizes[p] for p in reference_photos], rule)
        fallback_records[pipeline.name] = {
            photo: pipeline.encode_at(lfw_photos / photo, landmarks, box)
            for photo in photos if chosen_face(cache.records[photo], sizes[photo], rule) is None
        }

    contenders = [*our_contenders(ours), Contender("dlib", DlibPipeline.title, dlib)]
    records_by_pipeline = {pipeline.name: cache.records for pipeline, cache in zip(pipelines, caches)}
    results, distances, answered_different = {}, {}, {}
    for contender in contenders:
        results[contender.key], distances[contender.key], answered_different[contender.key] = evaluate(
            contender, records_by_pipeline[contender.pipeline.name], fallback_records[contender.pipeline.name],
            pairs, photos, sizes, rule, run_started)
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])
    common = np.all([d < FACELESS_DISTANCE for d in answered_different.values()], axis=0)
    cache_paths = {pipeline.name: str(cache.path) for pipeline, cache in zip(pipelines, caches)}
    for contender in contenders:
        figures = results[contender.key]
        figures["common_pairs_ten_fold_accuracy"] = ten_fold_accuracy(
            distances[contender.key][common], same[common], folds[common]).mean
        figures["cache"] = cache_paths[contender.pipeline.name]

    from facerec.encode import DISTANCE_THRESHOLD
    from facerec.original_model import ORIGINAL_THRESHOLD

    # The threshold the package uses with each network: DISTANCE_THRESHOLD for dlib's ResNet, the
    # course's 0.7 for its FaceNet (dlib's own pipeline has none here: its 0.6 is for raw descriptors).
    package_thresholds = {"ours": DISTANCE_THRESHOLD, "ours_alternative": DISTANCE_THRESHOLD,
                          **{key: ORIGINAL_THRESHOLD for key in ("course", "course_mirrored", "facenet", "facenet_mirrored")}}
    ranking = sorted(results, key=lambda key: (results[key]["ten_fold_accuracy"], results[key]["tar_at_far_1e-3"]),
                     reverse=True)
    report = {
        "date": iso_time(run_started),
        "command": "bench/lfw_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "pairs": len(pairs),
        "photos": len(photos),
        "common_pairs": int(common.sum()),
        "face_rule": rule,
        "photo_scale": arguments.photo_scale,
        "ours": contenders[0].title,
        "rules": [
            "Every face a pipeline finds is encoded and timed; the evaluation compares, in each photo, the face "
            + ("whose box centre is nearest the photo's centre (LFW centres the named person)."
               if rule == "centre" else "with the largest box."),
            f"A photo in which a pipeline finds no face is encoded at that pipeline's usual LFW face position: the mean "
            f"of its own landmarks (for the box-based columns, its own box) over {len(reference_photos)} LFW photos "
            "outside pairs.txt (deep-funneled photos are aligned alike). The row 'answered different' gives the "
            "accuracy without this fallback.",
            "Distance: L2 between L2-normalised encodings, for every column; each gets the threshold "
            "the protocol picks on the nine other folds.",
            f"The two pipelines (ours: MTCNN; dlib: HOG) take turns, {ROUND_PHOTOS} photos each, round by round, so "
            "that both meet the same load. MTCNN runs once per photo, on Pillow's decoding, and its faces are shared "
            "by every column but dlib's: all ours and course-FaceNet columns come from one pass over the photos, "
            "each encoder's crops and encodings (alone, then mirror-averaged: one call for the faces and their mirror "
            "images) in separately timed calls. Each column's times are the shared decoding and detection plus its "
            "own stages only (the course-fed column also decodes every photo again with libjpeg 9).",
            "Course FaceNet as the course fed it: MTCNN's box squared around its centre (side = its longer side), "
            "clipped to the photo, cut from the photo decoded by IJG libjpeg 9, resized to 160x160 nearest-neighbour, "
            "pixels / 255 (facerec.encode.encode_chips). As FaceNet was trained: MTCNN's box grown by 16 pixels on "
            "each side (facerec.align.facenet_crop), from Pillow's decoding, 160x160 bilinear, each face "
            "standardised (facerec.align.standardise), fed to the network as it is.",
            "ours runs TensorFlow on every core; dlib's detector and network use one: 'CPU cores kept busy' says how many.",
        ],
        "contenders": results,
        "thresholds": {key: threshold_figures(results[key], distances[key], same, value)
                       for key, value in package_thresholds.items()},
        "best_on_lfw": ranking[0],
        "ranking": ranking,
        "targets": target_checks(results["ours"], results["dlib"]),
        "published_dlib_accuracy": PUBLISHED_DLIB_ACCURACY,
    }
    report["run_wall_seconds"] = time.perf_counter() - started

    out = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "lfw_benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "lfw_benchmark.md").write_text(markdown_report(report))
    threshold = report["thresholds"]["ours"]
    plot_roc({results[key]["title"]: (distances[key], same, results[key]) for key in results},
             out / "lfw_roc.png", f"LFW View 2, {len(pairs)} pairs" + scale_note(arguments.photo_scale),
             (threshold["far"], threshold["tar"], f"ours at DISTANCE_THRESHOLD {threshold['threshold']}"))
    print(markdown_report(report))
    print(f"report: {out / 'lfw_benchmark.md'}, {out / 'lfw_benchmark.json'}, {out / 'lfw_roc.png'}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
