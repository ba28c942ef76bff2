"""The instructor's reference answers, which the hidden tests compare submissions against.

They compute the same things as the solutions in the source notebook, written plainly: the
loss in float64 numpy (a second, independent implementation of the TensorFlow solution), the
door decisions from encodings. `tests/test_grading.py` checks that the source notebook's
solutions get full marks, i.e. that the two agree on every hidden input.

Nothing here is part of the student's folder: hidden test cells import it while grading.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np


def triplet_loss_value(anchor, positive, negative, alpha: float) -> float:
    """The triplet loss of a batch, in float64:

    sum over the batch of max(||a - p||^2 - ||a - n||^2 + alpha, 0), the squared distances
    summed over the last axis (the encoding).
    """
    a, p, n = (np.asarray(x, dtype=np.float64) for x in (anchor, positive, negative))
    basic = np.sum((a - p) ** 2, axis=-1) - np.sum((a - n) ** 2, axis=-1) + alpha
    return float(np.sum(np.maximum(basic, 0.0)))


def triplet_loss_gradient(anchor, positive, negative, alpha: float) -> np.ndarray:
    """d(loss)/d(anchor): 2 (n - p) for the triplets whose loss is above zero, 0 for the others."""
    a, p, n = (np.asarray(x, dtype=np.float64) for x in (anchor, positive, negative))
    basic = np.sum((a - p) ** 2, axis=-1) - np.sum((a - n) ** 2, axis=-1) + alpha
    return np.where((basic > 0)[..., None], 2.0 * (n - p), 0.0)


def distance(encoding, stored) -> float:
    """L2 distance between two encodings of shape (1, 128) or (128,)."""
    return float(np.linalg.norm(np.ravel(encoding).astype(np.float64) - np.ravel(stored).astype(np.float64)))


def verify(encoding, identity: str, database: Mapping[str, np.ndarray], threshold: float) -> tuple[float, bool]:
    """(distance to the stored encoding of `identity`, whether the door opens)."""
    dist = distance(encoding, database[identity])
    return dist, dist < threshold


def who_is_it(encoding, database: Mapping[str, np.ndarray], threshold: float) -> tuple[float, str, bool]:
    """(smallest distance, the closest person, whether that person is recognised)."""
    name = min(database, key=lambda key: distance(encoding, database[key]))
    dist = distance(encoding, database[name])
    return dist, name, dist < threshold
