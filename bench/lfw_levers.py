"""What each accuracy lever is worth for our pipeline on LFW: one change at a time, all 6,000 pairs.

    .venv/bin/python bench/lfw_levers.py [--jitter]

Each row is LFW View 2's 10-fold accuracy (facerec.calibrate) of a variant of our pipeline, and
the change from the row it modifies (one change at a time). The rows, in order:
- the library before this benchmark: largest face, MTCNN confidence >= 0.9, a pair with a faceless
  photo answered "different", facerec's template, one chip per face;
- face nearest the photo's centre instead of the largest (LFW centres the named person);
- faceless photos encoded at the detector's usual LFW face position (bench/lfw_benchmark.py's rule);
- MTCNN confidence >= 0.8 (MTCNN's own last-stage cut) instead of 0.9, then both;
- mirror averaging (chip and mirrored chip encoded, the two unit encodings averaged);
- alignment variants, each replacing facerec's template fit: the template re-estimated, the
  similarity fit weighted by each template point's precision, a learned correction of that fit,
  and dlib's own 5-point landmarks and chip geometry (a ceiling for alignment: dlib at run time);
- with --jitter: four slightly scaled and rotated chips averaged in as well (about 15 minutes more).

Alignment fits use only the 5,532 LFW photos that pairs.txt does not use: each one's MTCNN
landmarks are mapped into the chip dlib's get_face_chip(size=150, padding=0.25) cuts from it.
The landmarks of both detectors on all 13,233 photos are computed once (about 12 minutes on two
cores) and cached in bench/cache/lfw_levers_landmarks.npz, each variant's encodings in
bench/cache/lfw_levers_<variant>.npz. Writes bench/out/lfw_levers.md.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import numpy as np

from facerec.align import TEMPLATE_150, detect_faces, similarity_transform, warp_to_chip
from facerec.calibrate import read_lfw_pairs, ten_fold_accuracy
from facerec.encode import encode_chips, load_model
from facerec.images import load_image
from lfw_benchmark import DEFAULT_CACHE, DEFAULT_OUT, FACELESS_DISTANCE, find_lfw, pair_distances

LANDMARKS_CACHE = DEFAULT_CACHE / "lfw_levers_landmarks.npz"
LOWEST_CONFIDENCE = 0.8  # MTCNN faces kept for the study; the 0.9 rows filter further
ROUND = 256
# dlib's 5-point chip template (shape predictor parts 0..4, unit square before padding), from
# dlib's get_face_chip_details; the chip point is (padding + p) / (1 + 2 padding) * size. Fitting
# it onto dlib's landmarks with the half-pixel shift below reproduces get_face_chip's chips.
DLIB_UNIT_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677], [0.1205750620789, 0.2137274526848],
    [0.3340850613712, 0.2290642403242], [0.4901123135679, 0.6277975316475],
])
DLIB_CHIP_TEMPLATE = (0.25 + DLIB_UNIT_TEMPLATE) / 1.5 * 150 - 0.5
# Chip jitters about the chip centre: (scale, rotation in radians).
JITTERS = ((0.96, 0.0), (1.04, 0.0), (1.0, 0.05), (1.0, -0.05))


# ---------------------------------------------------------------- landmarks of both detectors


def collect_landmarks(lfw_photos: Path) -> dict[str, np.ndarray]:
    """Both detectors' faces on every LFW photo, cached: photo index, box, score and 5 landmarks per face."""
    if LANDMARKS_CACHE.exists():
        with np.load(LANDMARKS_CACHE) as stored:
            return dict(stored)
    import dlib
    import face_recognition_models

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    photos = sorted(str(path.relative_to(lfw_photos)) for path in lfw_photos.glob("*/*.jpg"))
    ours, theirs = [], []
    started = time.perf_counter()
    for start in range(0, len(photos), ROUND):
        pictures = [load_image(lfw_photos / photo) for photo in photos[start : start + ROUND]]
        for offset, faces in enumerate(detect_faces(pictures, min_confidence=LOWEST_CONFIDENCE)):
            ours += [[start + offset, *face.box, face.confidence, *face.landmarks.ravel()] for face in faces]
        for offset, picture in enumerate(pictures):
            rectangles, scores, _ = detector.run(picture, 1, 0.0)
            for rectangle, score in zip(rectangles, scores):
                points = [coordinate for p in predictor(picture, rectangle).parts() for coordinate in (p.x, p.y)]
                theirs.append([start + offset, rectangle.left(), rectangle.top(), rectangle.width(), rectangle.height(),
                               score, *points])
        print(f"  landmarks: {start + len(pictures)}/{len(photos)} photos, {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    collected = {"photos": np.array(photos), "mtcnn": np.array(ours).reshape(-1, 16), "dlib": np.array(theirs).reshape(-1, 16)}
    LANDMARKS_CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(LANDMARKS_CACHE, **collected)
    return collected


class Faces:
    """One detector's faces per photo (rows: photo, x, y, width, height, score, x0, y0, ..., x4, y4)."""

    def __init__(self, rows: np.ndarray, photo_count: int):
        order = np.argsort(rows[:, 0], kind="stable")
        self.rows = rows[order]
        self.starts = np.searchsorted(self.rows[:, 0], np.arange(photo_count + 1))

    def chosen(self, photo: int, rule: str, min_score: float = -np.inf, size: float = 250.0) -> np.ndarray | None:
        """(5, 2) landmarks of the face the rule keeps, or None."""
        rows = self.rows[self.starts[photo] : self.starts[photo + 1]]
        rows = rows[rows[:, 5] >= min_score]
        if len(rows) == 0:
            return None
        if rule == "largest":
            row = rows[np.argmax(rows[:, 3] * rows[:, 4])]
        else:
            centres = rows[:, 1:3] + rows[:, 3:5] / 2
            row = rows[np.argmin(np.hypot(*(centres - size / 2).T))]
        return row[6:16].reshape(5, 2)


# ---------------------------------------------------------------- alignment variants


def weighted_similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping `src` onto `dst` minimising the weighted squared error (Umeyama, weighted)."""
    weights = np.asarray(weights, np.float64) / np.sum(weights)
    src_mean, dst_mean = weights @ src, weights @ dst
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    covariance = (dst_centred * weights[:, None]).T @ src_centred
    u, singular_values, vt = np.linalg.svd(covariance)
    signs = np.array([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ np.diag(signs) @ vt
    scale = (singular_values * signs).sum() / (weights @ np.sum(src_centred**2, axis=1))
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def inverse(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, (-linear @ matrix[:, 2])[:, None]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 map applying `inner`, then `outer`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def about_chip_centre(scale: float, angle: float, size: int = 150) -> np.ndarray:
    centre = np.full(2, (size - 1) / 2)
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([linear, (centre - linear @ centre)[:, None]])


class AlignmentFit:
    """What the photos outside pairs.txt say about mapping MTCNN's landmarks onto dlib's chips."""

    def __init__(self, mtcnn: Faces, dlib: Faces, fit_photos: np.ndarray):
        mapped, ours, dlib_maps = [], [], []
        for photo in fit_photos:
            theirs = dlib.chosen(photo, "centre")
            if theirs is None:
                continue
            dlib_map = similarity_transform(DLIB_CHIP_TEMPLATE, theirs)  # dlib's chip -> photo
            face = nearest_face(mtcnn, photo, apply(dlib_map, np.array([74.5, 74.5])))
            if face is None:
                continue
            mapped.append(apply(inverse(dlib_map), face))
            ours.append(face)
            dlib_maps.append(dlib_map)
        mapped = np.array(mapped)
        self.photos = len(mapped)
        self.template = mapped.mean(axis=0)
        self.spread = mapped.std(axis=0)
        self.weights = 1 / (mapped.var(axis=0).sum(axis=1))
        # Learned correction: from where the landmarks sit after the weighted fit to the similarity
        # (a - 1, b, tx, ty) that takes that fit's chip onto dlib's chip, by least squares.
        features, targets = [], []
        for face, dlib_map in zip(ours, dlib_maps):
            fitted = weighted_similarity(self.template, face, self.weights)
            features.append(self._features(fitted, face))
            correction = compose(inverse(fitted), dlib_map)
            targets.append([correction[0, 0] - 1, correction[1, 0], correction[0, 2], correction[1, 2]])
        features, targets = np.array(features), np.array(targets)
        self.correction = np.linalg.solve(features.T @ features + 1e-3 * np.eye(features.shape[1]), features.T @ targets)

    def _features(self, fitted: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return np.append((apply(inverse(fitted), landmarks) - self.template).ravel(), 1.0)

    def corrected(self, landmarks: np.ndarray) -> np.ndarray:
        fitted = weighted_similarity(self.template, landmarks, self.weights)
        a, b, tx, ty = self._features(fitted, landmarks) @ self.correction
        return compose(fitted, np.array([[1 + a, -b, tx], [b, 1 + a, ty]]))


def nearest_face(faces: Faces, photo: int, point: np.ndarray, within: float = 30.0) -> np.ndarray | None:
    rows = faces.rows[faces.starts[photo] : faces.starts[photo + 1]]
    if len(rows) == 0:
        return None
    distances = np.hypot(*(rows[:, 1:3] + rows[:, 3:5] / 2 - point).T)
    best = int(np.argmin(distances))
    return rows[best, 6:16].reshape(5, 2) if distances[best] < within else None


# ---------------------------------------------------------------- encodings of a variant


def variant_encodings(name: str, photo_names: list[str], lfw_photos: Path, chip_maps: list[np.ndarray | None],
                      model, jitter: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(plain, mirror-averaged) unit encodings of each photo's chip (NaN rows where chip_maps is None), cached."""
    cache = DEFAULT_CACHE / f"lfw_levers_{name}.npz"
    maps_digest = hashlib.sha256(np.array([np.full((2, 3), np.nan) if m is None else m for m in chip_maps]).tobytes()).hexdigest()
    if cache.exists():
        with np.load(cache) as stored:
            if stored["photos"].tolist() == photo_names and str(stored["maps_digest"]) == maps_digest:
                return stored["plain"], stored["mirrored"]
    extra = [about_chip_centre(scale, angle) for scale, angle in JITTERS] if jitter else []
    plain = np.full((len(photo_names), 128), np.nan, np.float32)
    mirrored = np.full((len(photo_names), 128), np.nan, np.float32)
    started = time.perf_counter()
    for start in range(0, len(photo_names), ROUND):
        rows = [i for i in range(start, min(start + ROUND, len(photo_names))) if chip_maps[i] is not None]
        chips = []
        for i in rows:
            picture = load_image(lfw_photos / photo_names[i])
            chips += [warp_to_chip(picture, compose(chip_maps[i], shift)) for shift in [np.eye(2, 3)] + extra]
        chips = np.stack(chips)
        both = np.concatenate([encode_chips(chips, model), encode_chips(chips[:, :, ::-1], model)])
        per_photo = 1 + len(extra)
        straight = both[: len(chips)].reshape(len(rows), per_photo, 128).sum(axis=1)
        flipped = both[len(chips) :].reshape(len(rows), per_photo, 128).sum(axis=1)
        plain[rows] = straight / np.linalg.norm(straight, axis=1, keepdims=True)
        mirrored[rows] = (straight + flipped) / np.linalg.norm(straight + flipped, axis=1, keepdims=True)
        print(f"  {name}: {start + ROUND}/{len(photo_names)} photos, {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
    np.savez(cache, photos=np.array(photo_names), maps_digest=np.array(maps_digest), plain=plain, mirrored=mirrored)
    return plain, mirrored


# ---------------------------------------------------------------- the table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jitter", action="store_true", help="also measure jitter averaging (about 15 minutes)")
    parser.add_argument("--lfw", type=Path, default=None, help="folder with pairs.txt and lfw-deepfunneled/")
    arguments = parser.parse_args()
    lfw = find_lfw(arguments.lfw)
    lfw_photos = lfw / "lfw-deepfunneled"
    pairs = read_lfw_pairs(lfw / "pairs.txt")
    same = np.array([pair.same for pair in pairs])
    folds = np.array([pair.fold for pair in pairs])

    collected = collect_landmarks(lfw_photos)
    photos = collected["photos"].tolist()
    index = {photo: i for i, photo in enumerate(photos)}
    mtcnn, dlib = Faces(collected["mtcnn"], len(photos)), Faces(collected["dlib"], len(photos))
    evaluated = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
    evaluated_rows = np.array([index[photo] for photo in evaluated])
    fit_photos = np.setdiff1d(np.arange(len(photos)), evaluated_rows)
    fit = AlignmentFit(mtcnn, dlib, fit_photos)
    usual = np.mean([face for photo in fit_photos if (face := mtcnn.chosen(photo, "centre")) is not None], axis=0)
    print(f"alignment fitted on {fit.photos} photos outside pairs.txt; template\n{np.round(fit.template, 2)}\n"
          f"sd per point\n{np.round(fit.spread, 2)}\nweights {np.round(fit.weights / fit.weights.sum(), 3)}", file=sys.stderr)

    model = load_model(BENCH.parent / "dlib-resnet-h5")

    def landmarks_of(rule: str, min_score: float, fallback: bool) -> list[np.ndarray | None]:
        chosen = [mtcnn.chosen(index[photo], rule, min_score) for photo in evaluated]
        return [usual if face is None and fallback else face for face in chosen]

    def accuracy(encodings: np.ndarray) -> tuple[float, float]:
        found = {photo: row for photo, row in zip(evaluated, encodings) if not np.isnan(row[0])}
        result = ten_fold_accuracy(pair_distances(found, pairs), same, folds)
        return result.mean, result.std

    rows = []  # (change, compared with, (mean, std))

    def measure(label: str, base: str | None, name: str, landmarks: list, transform, mirrored: bool = False,
                jitter: bool = False) -> None:
        maps = [None if face is None else transform(face, photo) for face, photo in zip(landmarks, evaluated)]
        plain, mirror_averaged = variant_encodings(name, evaluated, lfw_photos, maps, model, jitter)
        rows.append((label, base, accuracy(mirror_averaged if mirrored else plain)))
        print(f"{label}: {100 * rows[-1][2][0]:.2f}%", file=sys.stderr, flush=True)

    def library_template(face, _photo):
        return similarity_transform(TEMPLATE_150, face)

    def dlib_chip(face, photo):
        theirs = dlib.chosen(index[photo], "centre")
        return library_template(face, photo) if theirs is None else similarity_transform(DLIB_CHIP_TEMPLATE, theirs)

    measure("library before: largest face, confidence >= 0.9, faceless pair = 'different'", None,
            "largest_conf90", landmarks_of("largest", 0.9, False), library_template)
    measure("face nearest the centre", "1", "centre_conf90", landmarks_of("centre", 0.9, False), library_template)
    measure("faceless photos encoded at the usual face position", "2", "centre_conf90_fallback",
            landmarks_of("centre", 0.9, True), library_template)
    measure("MTCNN confidence >= 0.8 (faceless pair = 'different')", "2", "centre_conf80",
            landmarks_of("centre", LOWEST_CONFIDENCE, False), library_template)
    settled = landmarks_of("centre", LOWEST_CONFIDENCE, True)
    measure("MTCNN confidence >= 0.8 and the usual face position", "3", "centre_conf80_fallback", settled, library_template)
    measure("mirror averaging", "5", "centre_conf80_fallback", settled, library_template, mirrored=True)
    measure("template re-estimated outside pairs.txt", "5", "refit", settled,
            lambda face, _photo: similarity_transform(fit.template, face))
    measure("similarity fit weighted by point precision", "5", "weighted", settled,
            lambda face, _photo: weighted_similarity(fit.template, face, fit.weights))
    measure("weighted fit + learned correction", "5", "corrected", settled, lambda face, _photo: fit.corrected(face))
    measure("dlib's landmarks and chip (alignment ceiling, needs dlib)", "5", "dlib_chip", settled, dlib_chip)
    measure("dlib's landmarks and chip + mirror averaging", "6", "dlib_chip", settled, dlib_chip, mirrored=True)
    if arguments.jitter:
        measure("4 jittered chips averaged in", "5", "jitter", settled, library_template, jitter=True)
        measure("4 jittered chips + mirror averaging", "6", "jitter", settled, library_template, mirrored=True, jitter=True)

    lines = [f"# Accuracy levers, LFW View 2, {len(pairs)} pairs (10-fold accuracy)", "",
             "| # | change | compared with | 10-fold accuracy | change |", "|---|---|---|---|---|"]
    for number, (label, base, (mean, std)) in enumerate(rows, start=1):
        change = "" if base is None else f"{100 * (mean - rows[int(base) - 1][2][0]):+.2f}"
        lines.append(f"| {number} | {label} | {'#' + base if base else ''} | {100 * mean:.2f}% +/- {100 * std:.2f} | {change} |")
    lines += ["", f"Alignment fits from {fit.photos} LFW photos outside pairs.txt. Faceless pairs: distance {FACELESS_DISTANCE} "
              "(rows 1, 2 and 4) or the usual face position (the others).", ""]
    DEFAULT_OUT.mkdir(parents=True, exist_ok=True)
    (DEFAULT_OUT / "lfw_levers.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
