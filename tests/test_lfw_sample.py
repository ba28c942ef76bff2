"""The real pipeline on a sample of LFW pairs: same-person photos are closer than different people's.

300 of the 6,000 View 2 pairs of data/lfw/pairs.txt, the same positions in every fold: every
20th matched and every 20th mismatched pair, 15 + 15 per fold. Each photo is encoded once, all
in batches, keeping its largest face (as img_to_encoding does). The full benchmark (all 6,000
pairs, 10-fold protocol, against dlib's own pipeline) is bench/lfw_benchmark.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT
from facerec.calibrate import best_threshold, read_lfw_pairs, roc_curve, ten_fold_accuracy
from facerec.encode import DISTANCE_THRESHOLD, extract_faces_from_images

LFW = ROOT / "data" / "lfw"
STEP = 20  # take every 20th pair of each half-fold of 300
BATCH = 128  # photos per pipeline call: detection and encoding batched, memory bounded


@pytest.fixture(scope="module")
def sample(encoding_model, detector):
    """(distances, same, folds) of the sampled pairs; distance inf when a photo has no face."""
    pairs = [pair for index, pair in enumerate(read_lfw_pairs(LFW / "pairs.txt")) if index % 300 % STEP == 0]
    photos = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
    encodings = {}
    for start in range(0, len(photos), BATCH):
        names = photos[start : start + BATCH]
        faces = extract_faces_from_images([LFW / "lfw-deepfunneled" / name for name in names], encoding_model, largest_only=True)
        encodings.update({name: found[0].encoding for name, found in zip(names, faces) if found})
    distances = np.array([
        np.linalg.norm(encodings[p.first] - encodings[p.second]) if p.first in encodings and p.second in encodings else np.inf
        for p in pairs
    ])
    return distances, np.array([p.same for p in pairs]), np.array([p.fold for p in pairs]), len(photos), len(encodings)


def test_the_sample_covers_every_fold_with_both_kinds_of_pairs(sample):
    distances, same, folds, photo_count, _ = sample
    assert len(distances) == 300
    for fold in range(10):
        assert np.sum((folds == fold) & same) == 15 and np.sum((folds == fold) & ~same) == 15
    assert photo_count > 500  # hardly any photo is shared: the pairs are independent


def test_same_person_pairs_are_closer_with_at_least_97_percent_accuracy(sample):
    distances, same, folds, photo_count, encoded = sample
    found = np.isfinite(distances)
    threshold, _ = best_threshold(distances[found], same[found])
    # A pair with a faceless photo cannot be said to match: it counts as "different".
    accuracy = np.mean((distances < threshold) == same)
    at_course_threshold = np.mean((distances < DISTANCE_THRESHOLD) == same)
    folds_result = ten_fold_accuracy(distances[found], same[found], folds[found])
    auc = roc_curve(distances[found], same[found]).auc
    print(
        f"\n{len(distances)} LFW pairs, {photo_count} photos ({photo_count - encoded} without a face): "
        f"best threshold {threshold:.3f} -> {100 * accuracy:.1f}%; at DISTANCE_THRESHOLD {DISTANCE_THRESHOLD} "
        f"-> {100 * at_course_threshold:.1f}%; 10-fold {100 * folds_result.mean:.1f}% +- {100 * folds_result.std:.1f}; "
        f"AUC {auc:.4f}"
    )
    assert accuracy >= 0.97
    assert at_course_threshold >= 0.97
    assert np.median(distances[same]) < np.median(distances[~same]) - 0.15
