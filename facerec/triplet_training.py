"""Training a small face encoder with a triplet loss, on features the course network computes once.

The notebook's ungraded section "your triplet loss trains a network" uses these helpers:

- `load_features`: for 300 LFW people with at least 5 photos (up to 8 photos each), the face in
  each photo (MTCNN, the face nearest the photo's centre, FaceNet-style crop), and three sets of
  numbers the course network computes from it: the `Mixed_6a` block averaged over the image (896
  numbers, the encoder's input), the 1792 numbers before the bottleneck, and the network's own
  128-number encoding. Computed once and cached under data/cache/ (about two minutes on 2 cores);
  `python -m facerec.triplet_training build-cache` builds the cache ahead of time.
- `make_encoder`: Dense 512 + ReLU, Dense 128, scaled to length 1, from seeded random weights.
- `sample_triplets`: anchors and positives at random, negatives at random or the hardest (closest
  to the anchor) of a few candidates.
- `train_step` / `train`: a plain `tf.GradientTape` loop around whatever triplet loss is passed in.
- `held_out_pairs` / `pair_accuracy`: same-person and different-people pairs of held-out people,
  and the accuracy of the best distance threshold on them.

Everything is seeded: on one machine, two runs give the same numbers.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def unit_rows(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def pair_accuracy(vectors, pairs: np.ndarray, same: np.ndarray) -> float:
    """Share of the pairs the best distance threshold gets right, with each row of `vectors`
    (one per photo) scaled to length 1 first."""
    vectors = unit_rows(vectors)
    distances = np.linalg.norm(vectors[pairs[:, 0]] - vectors[pairs[:, 1]], axis=1)
    return best_threshold(distances, same).accuracy


# ---- the encoder and its training -----------------------------------------------------------------

def make_encoder(inputs: int, seed: int = SEED, hidden: int = 512, size: int = 128):
    """Dense(hidden) + ReLU, Dense(size), scaled to length 1: random weights drawn with `seed`."""
    import keras

    return keras.Sequential([
        keras.Input((inputs,)),
        keras.layers.Dense(hidden, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)),
        keras.layers.Dense(size, kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
        keras.layers.UnitNormalization(),
    ], name="small_encoder")


def input_scaling(features: FaceFeatures) -> Callable[[np.ndarray], np.ndarray]:
    """Each feature shifted and scaled to mean 0 and variance 1 over the training photos."""
    training = features.middle[features.training]
    mean, deviation = training.mean(axis=0), training.std(axis=0) + 1e-6
    return lambda values: ((values - mean) / deviation).astype(np.float32)


def sample_triplets(person: np.ndarray, rng: np.random.Generator, count: int, candidates: int = 1,
                    closeness: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None):
    """(anchors, positives, negatives): `count` triplets of row indices with person[anchor] ==
    person[positive] != person[negative]. Anchors and positives are two different photos of a
    person drawn at random (every person has at least two); each negative is the candidate
    closest to its anchor among `candidates` random photos of other people, where
    closeness(anchors, options) gives the (count, candidates) distances (not needed for one)."""
    order = np.argsort(person, kind="stable")
    people, first, photos = np.unique(person[order], return_index=True, return_counts=True)
    chosen = rng.integers(0, len(people), size=count)
    anchor_place = rng.integers(0, photos[chosen])
    positive_place = (anchor_place + rng.integers(1, photos[chosen])) % photos[chosen]  # never the anchor
    anchors, positives = order[first[chosen] + anchor_place], order[first[chosen] + positive_place]
    options = rng.integers(0, len(person), size=(count, candidates))
    clash = person[options] == person[anchors][:, None]
    while clash.any():  # redraw the candidates that show the anchor's own person
        options[clash] = rng.integers(0, len(person), size=int(clash.sum()))
        clash = person[options] == person[anchors][:, None]
    if candidates == 1:
        return anchors, positives, options[:, 0]
    hardest = np.argmin(closeness(anchors, options), axis=1)
    return anchors, positives, options[np.arange(count), hardest]


def train_step(encoder, optimizer, triplet_loss, anchors, positives, negatives, alpha):
    """One step of gradient descent on the triplet loss of one batch; returns the loss."""
    import tensorflow as tf

    with tf.GradientTape() as tape:
        y_pred = (encoder(anchors), encoder(positives), encoder(negatives))
        loss = triplet_loss(None, y_pred, alpha=alpha)
    gradients = tape.gradient(loss, encoder.trainable_variables)
    optimizer.apply_gradients(zip(gradients, encoder.trainable_variables))
    return loss


@dataclass
class History:
    """A training run: the loss of every step, and held-out pair accuracy at some steps."""

    losses: list[float] = field(default_factory=list)
    checked_steps: list[int] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)

    @property
    def final_accuracy(self) -> float:
        return self.accuracies[-1]


def train(triplet_loss, features: FaceFeatures, pairs, same, *, alpha: float = 0.2, steps: int = 600,
          batch: int = 64, candidates: int = 1, check_every: int = 50, learning_rate: float = 1e-4,
          seed: int = SEED):
    """(encoder, History): a new encoder trained for `steps` steps of `batch` triplets of training
    people, with `triplet_loss(y_true, (anchor, positive, negative), alpha)`; held-out accuracy
    measured before the first step and every `check_every` steps. Negatives are the hardest of
    `candidates` random ones."""
    import keras
    import tensorflow as tf

    scale = input_scaling(features)
    inputs = scale(features.middle)
    training_rows = np.flatnonzero(features.training)
    training_inputs, training_person = inputs[training_rows], features.person[training_rows]
    encoder = make_encoder(inputs.shape[1], seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(encoder.trainable_variables)
    # Compiled once into a TensorFlow graph: the same computation, a few times faster than eager.
    step_graph = tf.function(lambda a, p, n: train_step(encoder, optimizer, triplet_loss, a, p, n, alpha))
    encode_graph = tf.function(encoder)
    rng = np.random.default_rng(seed)

    def closeness(anchors, options):
        rows = np.concatenate([anchors, options.ravel()])
        vectors = encode_graph(training_inputs[rows]).numpy()
        anchor_vectors, option_vectors = vectors[: len(anchors)], vectors[len(anchors):].reshape(*options.shape, -1)
        return np.sum((option_vectors - anchor_vectors[:, None]) ** 2, axis=-1)

    history = History()
    for step in range(steps + 1):
        if step % check_every == 0:
            history.checked_steps.append(step)
            history.accuracies.append(pair_accuracy(encode_graph(inputs).numpy(), pairs, same))
        if step == steps:
            break
        rows = sample_triplets(training_person, rng, batch, candidates, closeness)
        history.losses.append(float(step_graph(*(training_inputs[r] for r in rows))))
    return encoder, history


def zero_loss_share(history: History, after: int = 100) -> float:
    """Share of the steps after step `after` whose batch had a loss of exactly 0 (nothing to learn)."""
    return float(np.mean(np.array(history.losses[after:]) == 0))


def show_code(function) -> None:
    """Print a function's source (how the notebook shows the loop it runs)."""
    print(inspect.getsource(function).rstrip())


def running_mean(values, width: int) -> np.ndarray:
    """Mean of each `width` consecutive values (shorter at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    starts = np.maximum(np.arange(1, len(values) + 1) - width, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot_losses(ax, runs: dict[str, History], width: int = 25) -> None:
    """Each run's loss per step, as a mean over `width` steps."""
    for label, history in runs.items():
        ax.plot(running_mean(history.losses, width), label=label)
    ax.set(xlabel="training step", ylabel=f"loss of a batch (mean of {width} steps)", yscale="log")
    ax.legend()


def plot_accuracies(ax, runs: dict[str, History], references: dict[str, float]) -> None:
    """Each run's held-out pair accuracy along training, with fixed references as dashed lines."""
    for label, history in runs.items():
        ax.plot(history.checked_steps, 100 * np.array(history.accuracies), marker=".", label=label)
    for (label, accuracy), colour in zip(references.items(), ["black", "grey", "silver"]):
        ax.axhline(100 * accuracy, ls="--", lw=1, color=colour, label=label)
    ax.set(xlabel="training step", ylabel="held-out pairs right (%)")
    ax.legend(fontsize="small")


# ---- is the learner's triplet_loss there yet? -----------------------------------------------------

def loss_is_ready(triplet_loss) -> bool:
    """True when `triplet_loss` exists and returns a number a gradient can flow through; otherwise
    prints one line saying why the section is skipped."""
    import tensorflow as tf

    if triplet_loss is None:
        print("triplet_loss is not defined yet: run Exercise 1 first. This section is skipped.")
        return False
    encodings = tf.Variable(tf.eye(3, 4))
    try:
        with tf.GradientTape() as tape:
            loss = triplet_loss(None, (encodings[0:1], encodings[1:2], encodings[2:3]), alpha=0.2)
        gradient = tape.gradient(loss, encodings)
    except NotImplementedError:
        print("triplet_loss is not written yet (Exercise 1): this section is skipped until it is.")
        return False
    if gradient is None or not tf.is_tensor(loss) or loss.shape != ():
        print("triplet_loss does not return a TensorFlow number that gradients flow through: "
              "this section is skipped until Exercise 1 passes its tests.")
        return False
    return True


# ---- command line ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facerec.triplet_training",
                                     description="Features for the notebook's triplet-training section.")
    parser.add_argument("command", choices=["build-cache"],
                        help="build-cache: compute the features now (if not cached yet) and report")
    parser.parse_args(argv)
    os.chdir(_PROJECT_ROOT)
    started = time.monotonic()
    features = load_features(progress=True)
    print(json.dumps({"photos": len(features.photos), "people": len(features.names),
                      "held_out_people": HELD_OUT, "missed": features.missed,
                      "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
