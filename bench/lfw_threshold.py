"""Measure DISTANCE_THRESHOLD on LFW with the full pipeline (load, detect, align, encode).

    .venv/bin/python bench/lfw_threshold.py [--pairs data/lfw/pairs.txt] [--limit-folds N] [--face-scale F]

Encodes every photo named in pairs.txt (View 2: 10 folds x 300 matched + 300 mismatched pairs)
with facerec's pipeline, keeping the largest face, as img_to_encoding does. Prints, for plain
encodings and for chip + mirrored-chip averaged encodings:
- the threshold with the best accuracy over all evaluable pairs, and that accuracy;
- the 10-fold accuracy (threshold picked on 9 folds, tested on the 10th), the LFW protocol;
- detection failures and what they cost when such a pair is counted as "different".
With --face-scale F, each photo is first shrunk by F (0.4 makes LFW faces as small as the course
photos': eyes about 17 px apart instead of 42), to calibrate for low-resolution photos.
Encodings are cached in bench/cache/ (git-ignored), so a re-run only re-evaluates.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from facerec.encode import encode_chips, extract_faces_from_images, load_model

ROOT = Path(__file__).resolve().parent.parent
LFW_FOLDER = ROOT / "data" / "lfw" / "lfw-deepfunneled"
CACHE_FOLDER = ROOT / "bench" / "cache"
ROUND = 256  # photos per pipeline call: bounded memory, detection still batched


def read_pairs(pairs_file: Path, limit_folds: int | None) -> list[tuple[str, str, bool, int]]:
    """(photo 1, photo 2, same person?, fold) for every pair of pairs.txt."""
    lines = pairs_file.read_text().split("\n")
    folds, per_fold = (int(value) for value in lines[0].split())
    pairs = []
    rows = iter(line.split("\t") for line in lines[1:] if line.strip())
    for fold in range(folds if limit_folds is None else min(folds, limit_folds)):
        for row in (next(rows) for _ in range(per_fold)):
            pairs.append((photo(row[0], row[1]), photo(row[0], row[2]), True, fold))
        for row in (next(rows) for _ in range(per_fold)):
            pairs.append((photo(row[0], row[1]), photo(row[2], row[3]), False, fold))
    return pairs


def photo(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def load_scaled(path: Path, face_scale: float) -> np.ndarray:
    """The photo, shrunk by `face_scale` (Lanczos) unless it is 1."""
    with Image.open(path) as photo:
        photo = photo.convert("RGB")
        if face_scale != 1:
            size = (round(photo.width * face_scale), round(photo.height * face_scale))
            photo = photo.resize(size, Image.Resampling.LANCZOS)
        return np.asarray(photo)


def encode_lfw(photos: list[str], face_scale: float) -> dict[str, np.ndarray]:
    """Plain and mirror-averaged encodings of the largest face of each photo (NaN if none)."""
    model = load_model(ROOT / "keras-facenet-h5")
    plain = np.full((len(photos), 128), np.nan, np.float32)
    mirrored = np.full((len(photos), 128), np.nan, np.float32)
    face_counts = np.zeros(len(photos), np.int32)
    started = time.perf_counter()
    for start in range(0, len(photos), ROUND):
        names = photos[start : start + ROUND]
        faces = extract_faces_from_images([load_scaled(LFW_FOLDER / name, face_scale) for name in names], model)
        found = [i for i, image_faces in enumerate(faces) if image_faces]
        for i, image_faces in enumerate(faces):
            face_counts[start + i] = len(image_faces)
        if found:
            plain[[start + i for i in found]] = np.stack([faces[i][0].encoding for i in found])
            chips = np.stack([faces[i][0].chip for i in found])
            mirrored[[start + i for i in found]] = encode_chips(chips, model, mirror=True)
        done = start + len(names)
        rate = done / (time.perf_counter() - started)
        print(f"  {done}/{len(photos)} photos, {rate:.1f} photos/s", file=sys.stderr, flush=True)
    return {"photos": np.array(photos), "plain": plain, "mirrored": mirrored, "face_counts": face_counts}


def best_threshold(distances: np.ndarray, same: np.ndarray) -> tuple[float, float, float, float]:
    """(threshold, accuracy, low, high): best accuracy of `distance < threshold`; the threshold
    is the middle of the widest interval [low, high) reaching it."""
    order = np.argsort(distances)
    sorted_distances, sorted_same = distances[order], same[order]
    # Accepting the k closest pairs: right = genuine among them + impostors among the rest.
    genuine_accepted = np.concatenate([[0], np.cumsum(sorted_same)])
    impostors_rejected = (~same).sum() - np.concatenate([[0], np.cumsum(~sorted_same)])
    correct = genuine_accepted + impostors_rejected
    edges = np.concatenate([[0.0], sorted_distances, [2.0]])
    best = correct.max()
    candidates = np.flatnonzero(correct == best)
    widths = edges[candidates + 1] - edges[candidates]
    k = candidates[np.argmax(widths)]
    low, high = edges[k], edges[k + 1]
    return (low + high) / 2, best / len(distances), low, high


def evaluate(label: str, encodings: np.ndarray, index: dict[str, int], pairs) -> None:
    first = np.array([index[a] for a, _, _, _ in pairs])
    second = np.array([index[b] for _, b, _, _ in pairs])
    same = np.array([s for _, _, s, _ in pairs])
    fold = np.array([f for _, _, _, f in pairs])
    distances = np.linalg.norm(encodings[first] - encodings[second], axis=1)
    evaluable = ~np.isnan(distances)
    threshold, accuracy, low, high = best_threshold(distances[evaluable], same[evaluable])
    fold_accuracies = []
    for test_fold in np.unique(fold):
        train = evaluable & (fold != test_fold)
        test = evaluable & (fold == test_fold)
        fold_threshold = best_threshold(distances[train], same[train])[0]
        fold_accuracies.append(np.mean((distances[test] < fold_threshold) == same[test]))
    # A pair with a faceless photo is answered "different" (what img_to_encoding's error means).
    decisions = np.where(evaluable, distances < threshold, False)
    print(f"{label}:")
    print(f"  best threshold {threshold:.4f} (any value in [{low:.4f}, {high:.4f}) is as good)")
    print(f"  accuracy at it: {100 * accuracy:.2f}% of {evaluable.sum()} pairs with a face in both photos")
    print(f"  {len(fold_accuracies)}-fold accuracy: {100 * np.mean(fold_accuracies):.2f}% +- {100 * np.std(fold_accuracies):.2f}")
    print(f"  all {len(pairs)} pairs, faceless pair = 'different': {100 * np.mean(decisions == same):.2f}%")
    for fixed in (0.35, 0.38, 0.40, 0.42, 0.45):
        print(f"  at {fixed:.2f}: {100 * np.mean((distances[evaluable] < fixed) == same[evaluable]):.2f}%", end="")
    print()
    genuine, impostor = distances[evaluable & same], distances[evaluable & ~same]
    print(f"  genuine distances: median {np.median(genuine):.3f}; impostor: median {np.median(impostor):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=ROOT / "data" / "lfw" / "pairs.txt")
    parser.add_argument("--limit-folds", type=int, default=None, help="use only the first N folds")
    parser.add_argument("--face-scale", type=float, default=1.0, help="shrink every photo by this factor first")
    arguments = parser.parse_args()

    pairs = read_pairs(arguments.pairs, arguments.limit_folds)
    photos = sorted({name for a, b, _, _ in pairs for name in (a, b)})
    cache = CACHE_FOLDER / f"lfw_encodings_scale{arguments.face_scale:g}.npz"
    cached = dict(np.load(cache)) if cache.exists() else None
    if cached is None or not set(photos) <= set(cached["photos"].tolist()):
        print(f"encoding {len(photos)} LFW photos with the full pipeline", file=sys.stderr)
        cached = encode_lfw(photos, arguments.face_scale)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **cached)
    index = {name: i for i, name in enumerate(cached["photos"].tolist())}
    counts = cached["face_counts"][[index[name] for name in photos]]
    print(f"{len(pairs)} pairs, {len(photos)} photos shrunk by {arguments.face_scale:g}; no face in {np.sum(counts == 0)} photos, "
          f"more than one face in {np.sum(counts > 1)}")
    faceless = [name for name in photos if cached["face_counts"][index[name]] == 0]
    if faceless:
        print("  faceless: " + ", ".join(faceless[:20]) + (" ..." if len(faceless) > 20 else ""))
    evaluate("plain encodings", cached["plain"], index, pairs)
    evaluate("chip + mirrored chip, averaged", cached["mirrored"], index, pairs)


if __name__ == "__main__":
    main()
