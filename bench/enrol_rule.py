"""Several photos per person: is a face closer to its nearest photo, or to the mean of the photos?

    .venv/bin/python bench/enrol_rule.py           # the real-photo tools' pipeline (load_photo_model())
    .venv/bin/python bench/enrol_rule.py --dlib    # the package's second network, dlib's ResNet

Measures the two ways FaceDatabase can combine a person's enrolled photos, on LFW:
- nearest: the distance to a person is the distance to the closest of their photos;
- mean: the distance to the unit-length mean of their photos' (unit) encodings.

People with at least 6 photos in LFW (deep-funneled) take turns: each of their first 6 photos is
the probe once, and k of the others (the next k, cyclically) are enrolled, for k = 1, 2, 3, 5.
Strangers are every 10th person with a single LFW photo: never enrolled, they should be refused.
For each rule and k it prints
- rank-1: share of enrolled people's probes whose nearest person is themselves;
- open-set: what a door does, best balanced accuracy (mean of "enrolled probe named right and
  accepted" and "stranger refused") over thresholds, with that threshold, and at the pipeline's
  own verification threshold (facerec.encode.distance_threshold);
- verification (probe vs own template = genuine, vs every other enrolled person = impostor):
  ROC AUC and TAR at FAR 0.1%.
Encodings (the full pipeline, largest face) are cached in bench/cache/ (git-ignored), one file
per pipeline, used only while the pipeline's sources and weights are unchanged.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from facerec.calibrate import roc_curve, tar_at_far
from facerec.encode import (DLIB_MODEL_FOLDER, PHOTO_MODEL_FOLDER, distance_threshold, extract_faces_from_images,
                            feed_of, load_photo_model)

ROOT = Path(__file__).resolve().parent.parent
LFW_FOLDER = ROOT / "data" / "lfw" / "lfw-deepfunneled"
CACHE_FOLDER = ROOT / "bench" / "cache"
PHOTOS_PER_PERSON = 6
ENROLLED_COUNTS = (1, 2, 3, 5)
STRANGER_STEP = 10
ROUND = 128  # photos per pipeline call


def choose_photos() -> tuple[list[str], list[str]]:
    """(people with >= 6 photos, strangers with a single photo), by sorted folder name."""
    people, strangers = [], []
    for person in sorted(os.listdir(LFW_FOLDER)):
        count = len(os.listdir(LFW_FOLDER / person))
        if count >= PHOTOS_PER_PERSON:
            people.append(person)
        elif count == 1:
            strangers.append(person)
    return people, strangers[::STRANGER_STEP]


def library_version(folder: str) -> str:
    """SHA-256 of what the encodings depend on (the pipeline's sources and the model's weights):
    the cache is used only while these are unchanged."""
    digest = hashlib.sha256()
    for name in ("facerec/align.py", "facerec/encode.py", "facerec/images.py", "facerec/original_model.py",
                 f"{folder}/model.h5"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def encode_all(photos: list[str], model, folder: str) -> np.ndarray:
    """(n, 128) encodings of the largest face of each photo; NaN rows where no face was found."""
    version = library_version(folder)
    cache = CACHE_FOLDER / f"enrol_rule_{feed_of(model)}.npz"
    if cache.exists():
        cached = np.load(cache)
        if cached["photos"].tolist() == photos and str(cached.get("library", "")) == version:
            return cached["encodings"]
    encodings = np.full((len(photos), 128), np.nan, np.float32)
    started = time.perf_counter()
    for start in range(0, len(photos), ROUND):
        names = photos[start : start + ROUND]
        faces = extract_faces_from_images([LFW_FOLDER / name for name in names], model, largest_only=True)
        for offset, found in enumerate(faces):
            if found:
                encodings[start + offset] = found[0].encoding
        print(f"  {start + len(names)}/{len(photos)} photos, {(start + len(names)) / (time.perf_counter() - started):.1f}/s",
              file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, photos=np.array(photos), encodings=encodings, library=np.array(version))
    return encodings


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def person_distances(probes: np.ndarray, galleries: np.ndarray, rule: str) -> np.ndarray:
    """(probes, people) distances; galleries is (people, k, 128)."""
    # All vectors are unit length: |a - b|^2 = 2 - 2 a.b, one matrix product instead of differences.
    if rule == "mean":
        similarity = probes @ unit(galleries.mean(axis=1)).T
    else:
        similarity = np.einsum("pd,gkd->pgk", probes, galleries).max(axis=2)
    return np.sqrt(np.maximum(2.0 - 2.0 * similarity.astype(np.float64), 0.0))


def best_balanced(genuine_right: np.ndarray, genuine_distance: np.ndarray, stranger_distance: np.ndarray):
    """(best balanced accuracy, its threshold) of accepting below a threshold, over a fine grid."""
    grid = np.linspace(0.2, 1.6, 1401)  # steps of 0.001, wide enough for both networks' distances
    accepted_right = ((genuine_distance[None] < grid[:, None]) & genuine_right[None]).mean(axis=1)
    refused = (stranger_distance[None] >= grid[:, None]).mean(axis=1)
    balanced = (accepted_right + refused) / 2
    best = int(np.argmax(balanced))
    return balanced[best], grid[best]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dlib", action="store_true", help="measure dlib's ResNet (dlib-resnet-h5/) instead")
    folder = DLIB_MODEL_FOLDER if parser.parse_args().dlib else PHOTO_MODEL_FOLDER
    model = load_photo_model(folder)
    package_threshold = distance_threshold(model)
    people, strangers = choose_photos()
    person_photos = [sorted(os.listdir(LFW_FOLDER / person))[:PHOTOS_PER_PERSON] for person in people]
    photos = [f"{person}/{name}" for person, names in zip(people, person_photos) for name in names]
    photos += [f"{person}/{os.listdir(LFW_FOLDER / person)[0]}" for person in strangers]
    encodings = encode_all(photos, model, folder)

    enrolled = encodings[: len(people) * PHOTOS_PER_PERSON].reshape(len(people), PHOTOS_PER_PERSON, -1)
    complete = ~np.isnan(enrolled).any(axis=(1, 2))  # people with a face in all 6 photos
    enrolled = enrolled[complete]
    stranger_encodings = encodings[len(people) * PHOTOS_PER_PERSON :]
    stranger_encodings = stranger_encodings[~np.isnan(stranger_encodings).any(axis=1)]
    count = len(enrolled)
    print(f"{count} enrolled people x {PHOTOS_PER_PERSON} photos (of {len(people)} with >= {PHOTOS_PER_PERSON}; "
          f"{len(people) - count} dropped for a photo without a face), {len(stranger_encodings)} strangers")
    print(f"pipeline: {folder}/ fed {feed_of(model)!r}; its threshold (distance_threshold) = {package_threshold}")
    print(f"{'k':>2} {'rule':8} {'rank-1':>7} {'open-set best':>14} {'at t':>6} {'at its threshold':>17} {'AUC':>8} {'TAR@FAR0.1%':>12}")
    everyone = np.arange(count)
    for k in ENROLLED_COUNTS:
        for rule in ("nearest", "mean"):
            right, genuine_to_nearest, stranger_to_nearest, genuine, impostor = [], [], [], [], []
            for split in range(PHOTOS_PER_PERSON):
                gallery_columns = [(split + step) % PHOTOS_PER_PERSON for step in range(1, k + 1)]
                galleries = enrolled[:, gallery_columns]
                to_people = person_distances(enrolled[:, split], galleries, rule)
                nearest = to_people.argmin(axis=1)
                right.append(nearest == everyone)
                genuine_to_nearest.append(to_people.min(axis=1))
                stranger_to_nearest.append(person_distances(stranger_encodings, galleries, rule).min(axis=1))
                genuine.append(to_people[everyone, everyone])
                impostor.append(to_people[~np.eye(count, dtype=bool)])
            right, genuine_to_nearest = np.concatenate(right), np.concatenate(genuine_to_nearest)
            stranger_to_nearest = np.concatenate(stranger_to_nearest)
            balanced, threshold = best_balanced(right, genuine_to_nearest, stranger_to_nearest)
            at_fixed = ((right & (genuine_to_nearest < package_threshold)).mean()
                        + (stranger_to_nearest >= package_threshold).mean()) / 2
            genuine, impostor = np.concatenate(genuine), np.concatenate(impostor)
            distances = np.concatenate([genuine, impostor])
            same = np.r_[np.ones(len(genuine), bool), np.zeros(len(impostor), bool)]
            auc = roc_curve(distances, same).auc
            tar = tar_at_far(distances, same, 0.001).tar
            print(f"{k:>2} {rule:8} {100 * right.mean():6.2f}% {100 * balanced:13.2f}% {threshold:6.3f} "
                  f"{100 * at_fixed:16.2f}% {auc:8.5f} {100 * tar:11.2f}%")


if __name__ == "__main__":
    main()
