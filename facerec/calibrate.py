"""Choosing the distance threshold from labelled pairs, and reading LFW's pairs.txt.

A pair of photos gets one distance (between their encodings) and one label: same person or not.
The decision rule everywhere in facerec is "same person when distance < threshold". From the
labelled pairs this module finds the threshold with the best accuracy (`best_threshold`), the
whole trade-off between strangers let in and people turned away (`roc_curve`, `tar_at_far`), and
LFW's own protocol for an unbiased accuracy (`ten_fold_accuracy`). Plain numpy, no scikit-learn.

Vocabulary: a *genuine* pair shows one person twice, an *impostor* pair two different people.
TAR (true accept rate) is the share of genuine pairs accepted; FAR (false accept rate) the share
of impostor pairs accepted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facerec.errors import FaceRecError


class PairsFileError(FaceRecError, ValueError):
    """A pairs file (LFW's pairs.txt layout) is missing, truncated or malformed."""


@dataclass(frozen=True)
class LfwPair:
    """One pair of LFW View 2: two photo paths relative to the lfw-deepfunneled folder."""

    first: str
    second: str
    same: bool
    fold: int


class ThresholdChoice(NamedTuple):
    threshold: float
    accuracy: float


class RocCurve(NamedTuple):
    """far[i], tar[i]: rates when accepting `distance < thresholds[i]`; both rise with i."""

    far: np.ndarray
    tar: np.ndarray
    thresholds: np.ndarray
    auc: float


class OperatingPoint(NamedTuple):
    tar: float
    far: float
    threshold: float


class FoldAccuracy(NamedTuple):
    """LFW protocol result: per-fold accuracies and thresholds, their mean, spread and error."""

    mean: float
    std: float
    standard_error: float
    accuracies: np.ndarray
    thresholds: np.ndarray


def lfw_photo_path(name: str, number: int | str) -> str:
    """'Name/Name_000N.jpg', where LFW keeps photo number N of person Name."""
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_lfw_pairs(path: str | os.PathLike) -> list[LfwPair]:
    """Every pair of an LFW pairs file, in file order, with its fold number (0-based).

    Layout (View 2): a header "<folds> <pairs per half-fold>", then for each fold that many
    matched lines "name n1 n2" followed by that many mismatched lines "name1 n1 name2 n2".
    """
    path = Path(path)
    if not path.is_file():
        raise PairsFileError(f"No pairs file at {str(path)!r}. Run `make setup` to install LFW, or pass the right path.")
    lines = [line.split() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if not lines or len(lines[0]) != 2 or not all(value.isdigit() for value in lines[0]):
        raise PairsFileError(f"{str(path)!r} does not start with the '<folds> <pairs per fold>' header of LFW's pairs.txt.")
    folds, per_half = int(lines[0][0]), int(lines[0][1])
    expected = 1 + 2 * folds * per_half
    if len(lines) != expected:
        raise PairsFileError(
            f"{str(path)!r} has {len(lines) - 1} pair lines, but its header announces {folds} folds x "
            f"2 x {per_half} = {expected - 1}. The file is truncated or edited: install it again."
        )
    pairs = []
    for number, fields in enumerate(lines[1:], start=2):
        fold, position = divmod(number - 2, 2 * per_half)
        matched = position < per_half
        try:
            if matched and len(fields) == 3:
                pairs.append(LfwPair(lfw_photo_path(fields[0], fields[1]), lfw_photo_path(fields[0], fields[2]), True, fold))
            elif not matched and len(fields) == 4:
                pairs.append(LfwPair(lfw_photo_path(fields[0], fields[1]), lfw_photo_path(fields[2], fields[3]), False, fold))
            else:
                raise ValueError("wrong number of fields")
        except ValueError:
            kind = "name n1 n2" if matched else "name1 n1 name2 n2"
            raise PairsFileError(
                f"Line {number} of {str(path)!r} is {' '.join(fields)!r}; a {'matched' if matched else 'mismatched'} "
                f"pair line of fold {fold + 1} should read '{kind}' with whole photo numbers."
            ) from None
    return pairs


def _labelled(distances, same) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 distances and boolean labels of equal length."""
    distances = np.asarray(distances, dtype=np.float64).ravel()
    same = np.asarray(same).ravel()
    if distances.size == 0:
        raise ValueError("Got no pairs. Pass at least one distance and its same-person label.")
    if same.shape != distances.shape:
        raise ValueError(f"Got {distances.size} distances but {same.size} labels: pass one label per distance.")
    if not np.all(np.isfinite(distances)):
        raise ValueError(
            f"{int(np.sum(~np.isfinite(distances)))} distances are NaN or infinite (a photo without a face?). "
            "Drop those pairs, or count them separately, before calibrating."
        )
    if same.dtype != np.bool_:
        if not np.all(np.isin(same, (0, 1))):
            raise ValueError("Labels must be True/False (or 1/0): True when both photos show the same person.")
        same = same.astype(bool)
    return distances, same


def _sweep(distances: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds, with genuine and impostor pairs accepted (distance < threshold) at each.

    Candidate 0 is the smallest distance (accepts nothing), then the midpoint between each two
    consecutive distinct distances, then a value just above the largest (accepts everything).
    """
    order = np.argsort(distances, kind="stable")
    sorted_distances, sorted_same = distances[order], same[order]
    values, first_index = np.unique(sorted_distances, return_index=True)
    # Pairs accepted by candidate k: all those whose distance is among the k smallest values.
    accepted_count = np.append(first_index, len(distances))
    genuine_before = np.concatenate([[0], np.cumsum(sorted_same)])
    genuine = genuine_before[accepted_count]
    impostor = accepted_count - genuine
    thresholds = np.concatenate([[values[0]], (values[:-1] + values[1:]) / 2, [np.nextafter(values[-1], np.inf)]])
    return thresholds, genuine, impostor


def best_threshold(distances, same) -> ThresholdChoice:
    """The threshold whose rule `distance < threshold` classifies the pairs best, and that accuracy.

    `distances` (n,) and `same` (n,) booleans (True: same person). Candidates are midpoints
    between consecutive distinct distances (plus "accept none" and "accept all"). When several
    candidates reach the best accuracy, the smallest wins: it lets in the fewest strangers.
    """
    distances, same = _labelled(distances, same)
    thresholds, genuine, impostor = _sweep(distances, same)
    correct = genuine + (np.count_nonzero(~same) - impostor)
    best = int(np.argmax(correct))  # argmax returns the first, i.e. the smallest, of equal maxima
    return ThresholdChoice(float(thresholds[best]), float(correct[best] / len(distances)))


def roc_curve(distances, same) -> RocCurve:
    """FAR and TAR of `distance < threshold` for every distinct threshold, and the area under it.

    Needs at least one genuine and one impostor pair. The curve starts at (0, 0) (accept none)
    and ends at (1, 1) (accept all); tied distances make one diagonal step. The AUC (trapezoids)
    is the chance that a random genuine pair is closer than a random impostor pair, ties half.
    """
    distances, same = _labelled(distances, same)
    genuine_total, impostor_total = np.count_nonzero(same), np.count_nonzero(~same)
    if genuine_total == 0 or impostor_total == 0:
        raise ValueError(
            f"A ROC curve needs both kinds of pairs; got {genuine_total} genuine and {impostor_total} impostor pairs."
        )
    thresholds, genuine, impostor = _sweep(distances, same)
    far, tar = impostor / impostor_total, genuine / genuine_total
    auc = float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))
    return RocCurve(far, tar, thresholds, auc)


def tar_at_far(distances, same, far: float) -> OperatingPoint:
    """The highest TAR whose FAR is at most `far` (0..1), with that FAR and its threshold.

    Among thresholds of equal TAR, the smallest (lowest FAR) is returned.
    """
    if not 0.0 <= far <= 1.0:
        raise ValueError(f"far is a rate between 0 and 1 (0.001 means 0.1%), not {far!r}.")
    curve = roc_curve(distances, same)
    # The curve rises with the threshold, so the last point within the FAR budget has the best TAR.
    allowed = np.flatnonzero(curve.far <= far)[-1]
    best = int(np.flatnonzero(curve.tar == curve.tar[allowed])[0])
    return OperatingPoint(float(curve.tar[best]), float(curve.far[best]), float(curve.thresholds[best]))


def ten_fold_accuracy(distances, same, folds) -> FoldAccuracy:
    """LFW View 2 protocol: for each fold, the best threshold on the other folds, scored on it.

    `folds` (n,) gives each pair's fold (any labels, at least two distinct). The standard
    deviation uses n - 1 and the standard error is std / sqrt(number of folds), as LFW's README
    asks results to be reported.
    """
    distances, same = _labelled(distances, same)
    folds = np.asarray(folds).ravel()
    if folds.shape != distances.shape:
        raise ValueError(f"Got {distances.size} distances but {folds.size} fold labels: pass one fold per pair.")
    fold_labels = np.unique(folds)
    if len(fold_labels) < 2:
        raise ValueError("Cross-validation needs at least two folds; all pairs are in the same fold.")
    accuracies, thresholds = [], []
    for fold in fold_labels:
        held_out = folds == fold
        threshold = best_threshold(distances[~held_out], same[~held_out]).threshold
        thresholds.append(threshold)
        accuracies.append(np.mean((distances[held_out] < threshold) == same[held_out]))
    accuracies = np.array(accuracies)
    std = float(np.std(accuracies, ddof=1))
    return FoldAccuracy(float(accuracies.mean()), std, std / np.sqrt(len(accuracies)), accuracies, np.array(thresholds))
