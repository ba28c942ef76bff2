"""The distance threshold from all 6,000 LFW pairs with facerec.calibrate, and the ROC curve.

    .venv/bin/python bench/lfw_roc.py

Encodes the 7,701 photos of data/lfw/pairs.txt with the full pipeline (largest face, as
img_to_encoding does), or reuses bench/lfw_threshold.py's cache when it holds them. Prints the
best threshold and its accuracy, LFW's 10-fold accuracy, TAR at a few FARs, and how
DISTANCE_THRESHOLD does; saves the ROC curve to bench/out/lfw_roc.png. Pairs with a photo in
which no face was found are left out of the calibration and reported.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from facerec.calibrate import best_threshold, read_lfw_pairs, roc_curve, tar_at_far, ten_fold_accuracy
from facerec.encode import DISTANCE_THRESHOLD, extract_faces_from_images, load_model

ROOT = Path(__file__).resolve().parent.parent
LFW = ROOT / "data" / "lfw"
CACHES = [ROOT / "bench" / "cache" / "lfw_encodings_scale1.npz", ROOT / "bench" / "cache" / "lfw_roc_encodings.npz"]
OUT = ROOT / "bench" / "out"
ROUND = 128


def encodings_of(photos: list[str]) -> dict[str, np.ndarray]:
    """Encoding of the largest face of each photo; photos without a face are absent."""
    for cache in CACHES:
        if cache.exists():
            with np.load(cache) as cached:
                names, rows = cached["photos"].tolist(), cached["plain"]
            if set(photos) <= set(names):
                print(f"using encodings cached in {cache.relative_to(ROOT)}", file=sys.stderr)
                return {name: row for name, row in zip(names, rows) if not np.isnan(row).any()}
    model = load_model(ROOT / "keras-facenet-h5")
    rows = np.full((len(photos), 128), np.nan, np.float32)
    started = time.perf_counter()
    for start in range(0, len(photos), ROUND):
        names = photos[start : start + ROUND]
        faces = extract_faces_from_images([LFW / "lfw-deepfunneled" / name for name in names], model, largest_only=True)
        for offset, found in enumerate(faces):
            if found:
                rows[start + offset] = found[0].encoding
        done = start + len(names)
        print(f"  {done}/{len(photos)} photos, {done / (time.perf_counter() - started):.1f}/s", file=sys.stderr, flush=True)
    CACHES[-1].parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHES[-1], photos=np.array(photos), plain=rows)
    return {name: row for name, row in zip(photos, rows) if not np.isnan(row).any()}


def main() -> None:
    pairs = read_lfw_pairs(LFW / "pairs.txt")
    photos = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
    encodings = encodings_of(photos)
    usable = [pair for pair in pairs if pair.first in encodings and pair.second in encodings]
    distances = np.array([np.linalg.norm(encodings[p.first] - encodings[p.second]) for p in usable])
    same = np.array([p.same for p in usable])
    folds = np.array([p.fold for p in usable])

    print(f"{len(pairs)} pairs, {len(photos)} photos; {len(photos) - len(encodings)} photos without a face, "
          f"so {len(pairs) - len(usable)} pairs left out")
    threshold, accuracy = best_threshold(distances, same)
    print(f"best threshold {threshold:.4f}: accuracy {100 * accuracy:.2f}% on {len(usable)} pairs")
    folded = ten_fold_accuracy(distances, same, folds)
    print(f"10-fold (LFW View 2): {100 * folded.mean:.2f}% +- {100 * folded.std:.2f} (standard error "
          f"{100 * folded.standard_error:.2f}); fold thresholds {folded.thresholds.min():.4f} .. {folded.thresholds.max():.4f}")
    print(f"DISTANCE_THRESHOLD {DISTANCE_THRESHOLD}: accuracy {100 * np.mean((distances < DISTANCE_THRESHOLD) == same):.2f}%, "
          f"TAR {100 * np.mean(distances[same] < DISTANCE_THRESHOLD):.2f}%, FAR {100 * np.mean(distances[~same] < DISTANCE_THRESHOLD):.2f}%")
    curve = roc_curve(distances, same)
    print(f"ROC AUC {curve.auc:.5f}")
    for far in (0.0, 0.001, 0.01, 0.1):
        point = tar_at_far(distances, same, far)
        print(f"  FAR <= {100 * far:4.1f}%: TAR {100 * point.tar:.2f}% (FAR {100 * point.far:.2f}%) below {point.threshold:.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(curve.far, curve.tar)
    at = np.mean(distances[~same] < DISTANCE_THRESHOLD), np.mean(distances[same] < DISTANCE_THRESHOLD)
    axis.plot(*at, "o", label=f"DISTANCE_THRESHOLD {DISTANCE_THRESHOLD}")
    axis.set(xscale="log", xlim=(1e-3, 1), xlabel="FAR (strangers accepted)", ylabel="TAR (same person accepted)",
             title=f"LFW, {len(usable)} pairs, AUC {curve.auc:.4f}")
    axis.legend(loc="lower right")
    OUT.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT / "lfw_roc.png", dpi=120, bbox_inches="tight")
    print(f"ROC curve saved to {(OUT / 'lfw_roc.png').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
