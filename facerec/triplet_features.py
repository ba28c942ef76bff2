"""Face features for the notebook's triplet-training section, computed once by the course network.

For 300 LFW people with at least 5 photos (the first 8 photos of each at most), the face in each
photo (MTCNN, the face nearest the photo's centre, cut out as FaceNet was fed: `facenet_crop`,
`standardise`) and three sets of numbers the course network computes from it: the `Mixed_6a`
block averaged over the image (896 numbers: what the small encoder of facerec.triplet_training
learns from), the 1792 averaged numbers that go into its last layer, and its own 128-number
encoding. Computing them takes a few minutes on 2 cores; they are cached under data/cache/, in a
file named by the SHA-256 of the model file, the photo list and the recipe.

    python -m facerec.triplet_features build-cache   # build the cache now (quick if it exists)

Also here: the held-out pairs that measure accuracy, and the best-threshold accuracy on them.
Importing this module does not import TensorFlow.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from facerec.calibrate import best_threshold

LAYER = "Mixed_6a"  # the middle block whose averaged output the encoder learns from
PEOPLE = 300  # LFW people used (chosen at random among those with at least MIN_PHOTOS photos)
MIN_PHOTOS = 5
MAX_PHOTOS = 8  # photos per person, the first ones by number
HELD_OUT = 100  # people never used for training: the pairs that measure accuracy come from them
SEED = 0
CACHE_FOLDER = Path("data") / "cache" / "triplet-training"
LFW_FOLDER = Path("data") / "lfw" / "lfw-deepfunneled"
MODEL_FOLDER = "keras-facenet-h5"
# Changing what is computed (layers, crop, face choice) must change the cache key.
_RECIPE = f"v1 {LAYER}+AvgPool+output; MTCNN face nearest the centre; facenet_crop margin 32 size 160; standardise"
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class FaceFeatures:
    """What the course network computes for each kept photo (row i of every array is photo i)."""

    photos: list[str]  # "Name/Name_000N.jpg", relative to the LFW folder
    person: np.ndarray  # (n,) index into `names`
    names: list[str]
    middle: np.ndarray  # (n, 896) LAYER averaged over the image: the encoder's input
    before_bottleneck: np.ndarray  # (n, 1792) the averaged last block, before the 128-number layer
    encoding: np.ndarray  # (n, 128) the course network's own encoding (not scaled to length 1)
    held_out: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (n,) photo of a held-out person
    missed: int = 0  # photos of the chosen people in which no face was found (left out)

    @property
    def training(self) -> np.ndarray:
        return ~self.held_out


# ---- choosing the photos and computing their features -------------------------------------------

def choose_photos(lfw_folder=LFW_FOLDER, people: int = PEOPLE, min_photos: int = MIN_PHOTOS,
                  max_photos: int = MAX_PHOTOS, seed: int = SEED) -> list[str]:
    """Photos ("Name/Name_000N.jpg") of `people` people picked at random among those with at least
    `min_photos` photos, the first `max_photos` of each; people in alphabetical order."""
    lfw_folder = Path(lfw_folder)
    if not lfw_folder.is_dir():
        raise FileNotFoundError(f"No LFW photos in {str(lfw_folder)!r}. Run `make setup` from the project folder.")
    candidates = []
    for person in sorted(p for p in lfw_folder.iterdir() if p.is_dir()):
        photos = sorted(photo.name for photo in person.glob("*.jpg"))
        if len(photos) >= min_photos:
            candidates.append((person.name, photos[:max_photos]))
    if len(candidates) < people:
        raise ValueError(f"Only {len(candidates)} people of {str(lfw_folder)!r} have {min_photos} photos; asked for {people}.")
    chosen = np.sort(np.random.default_rng(seed).choice(len(candidates), size=people, replace=False))
    return [f"{candidates[i][0]}/{photo}" for i in chosen for photo in candidates[i][1]]


def feature_model(model):
    """A model with the course network's input and three outputs: LAYER averaged over the image,
    the 1792 averaged numbers before the bottleneck, and the network's own encoding."""
    import keras

    middle = keras.layers.GlobalAveragePooling2D(name=f"{LAYER}_averaged")(model.get_layer(LAYER).output)
    return keras.Model(model.input, [middle, model.get_layer("AvgPool").output, model.output])


def compute_features(photos: Sequence[str], lfw_folder, model, batch_size: int = 64, progress: bool = False):
    """(kept, middle, before_bottleneck, encoding): the indices of the photos in which a face was
    found and the three feature arrays of those faces (see `feature_model`)."""
    from facerec.align import detect_faces, facenet_crop, standardise
    from facerec.images import as_rgb

    network = feature_model(model)
    kept, outputs = [], [[], [], []]
    started = time.monotonic()
    for start in range(0, len(photos), batch_size):
        pictures = [as_rgb(Path(lfw_folder) / photo) for photo in photos[start : start + batch_size]]
        crops = []
        for offset, (picture, faces) in enumerate(zip(pictures, detect_faces(pictures))):
            face = _nearest_centre(faces, picture.shape)
            if face is not None:
                kept.append(start + offset)
                crops.append(facenet_crop(picture, face.box))
        if crops:
            for output, values in zip(outputs, network.predict_on_batch(standardise(np.stack(crops)))):
                output.append(np.asarray(values, dtype=np.float32))
        if progress:
            done = min(start + batch_size, len(photos))
            print(f"  {done} of {len(photos)} photos ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return (np.array(kept), *(np.concatenate(output) for output in outputs))


def _nearest_centre(faces, shape):
    """The face whose box centre is nearest the photo's centre (LFW centres the named person)."""
    if not faces:
        return None
    height, width = shape[:2]
    return min(faces, key=lambda f: np.hypot(f.box[0] + f.box[2] / 2 - width / 2, f.box[1] + f.box[3] / 2 - height / 2))


def cache_path(photos: Sequence[str], model_file, cache_folder=CACHE_FOLDER) -> Path:
    """The cache file for these photos and this model file: named by the SHA-256 of the model
    file's bytes, the photo list and the recipe, so any change makes a new file."""
    digest = hashlib.sha256()
    with open(model_file, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    digest.update("\n".join([_RECIPE, *photos]).encode())
    return Path(cache_folder) / f"features-{digest.hexdigest()[:24]}.npz"


def load_features(lfw_folder=LFW_FOLDER, model_folder=MODEL_FOLDER, cache_folder=CACHE_FOLDER,
                  held_out: int = HELD_OUT, seed: int = SEED, progress: bool = False) -> FaceFeatures:
    """The features of `choose_photos()`, from the cache, or computed (and cached) when missing.

    `held_out` people, chosen at random with `seed`, are marked as never to be trained on.
    """
    from facerec.encode import _find_model_folder

    photos = choose_photos(lfw_folder, seed=seed)
    model_file = _find_model_folder(Path(model_folder)) / "model.h5"
    path = cache_path(photos, model_file, cache_folder)
    if not path.is_file():
        from facerec.encode import load_model

        if progress:
            print(f"Computing the features of {len(photos)} LFW photos once (a few minutes); "
                  f"they are kept in {path}.", file=sys.stderr)
        kept, middle, before, encoding = compute_features(photos, lfw_folder, load_model(model_folder), progress=progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(partial, kept=kept, middle=middle, before_bottleneck=before, encoding=encoding,
                 photos=np.array(photos))
        os.replace(partial, path)  # another process reading the cache never sees half a file
    with np.load(path) as cached:
        kept = cached["kept"]
        stored = {name: cached[name] for name in ("middle", "before_bottleneck", "encoding")}
    kept_photos = [photos[i] for i in kept]
    names = sorted({photo.split("/")[0] for photo in photos})
    person = np.array([names.index(photo.split("/")[0]) for photo in kept_photos])
    rest = np.random.default_rng(seed).permutation(len(names))[:held_out]
    return FaceFeatures(kept_photos, person, names, **stored, held_out=np.isin(person, rest),
                        missed=len(photos) - len(kept))


# ---- measuring: pairs of held-out people ----------------------------------------------------------

def held_out_pairs(features: FaceFeatures, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, same): every pair of two photos of the same held-out person, and as many pairs of
    photos of two different held-out people drawn at random; pairs has shape (n, 2) of photo
    indices, same (n,) is True for same-person pairs."""
    rng = np.random.default_rng(seed)
    photos = np.flatnonzero(features.held_out)
    person = features.person[photos]
    first, second = np.triu_indices(len(photos), k=1)
    same = person[first] == person[second]
    genuine = np.flatnonzero(same)
    impostor = np.sort(rng.choice(np.flatnonzero(~same), size=len(genuine), replace=False))
    chosen = np.concatenate([genuine, impostor])
    return np.stack([photos[first[chosen]], photos[second[chosen]]], axis=1), same[chosen]


def pair_accuracy(vectors, pairs: np.ndarray, same: np.ndarray) -> float:
    """Share of the pairs the best distance threshold gets right, with each row of `vectors`
    (one per photo) scaled to length 1 first."""
    from facerec.encode import _unit_rows

    vectors = _unit_rows(np.asarray(vectors, dtype=np.float64))
    distances = np.linalg.norm(vectors[pairs[:, 0]] - vectors[pairs[:, 1]], axis=1)
    return best_threshold(distances, same).accuracy


# ---- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facerec.triplet_features",
                                     description="Features for the notebook's triplet-training section.")
    parser.add_argument("command", choices=["build-cache"],
                        help="build-cache: compute the features now (if not cached yet) and report")
    parser.parse_args(argv)
    os.chdir(_PROJECT_ROOT)
    started = time.monotonic()
    path = cache_path(choose_photos(), Path(MODEL_FOLDER) / "model.h5")
    if path.is_file():  # checked without TensorFlow, so that set-up stays quick
        print(f"triplet-training features: cached in {path}")
        return 0
    features = load_features(progress=True)
    print(json.dumps({"photos": len(features.photos), "people": len(features.names),
                      "held_out_people": HELD_OUT, "missed": features.missed,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
