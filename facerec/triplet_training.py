"""Training a small face encoder with a triplet loss, on features the course network computes once.

The notebook's ungraded section "your triplet loss trains a network" uses these helpers:

- `load_features`, `held_out_pairs`, `pair_accuracy` (from facerec.triplet_features): what the
  course network computes for LFW faces, cached, and how accuracy is measured on held-out people.
- `make_encoder`: Dense 512 + ReLU, Dense 128, scaled to length 1, from seeded random weights.
- `sample_triplets`: anchors and positives at random, negatives at random or the hardest (closest
  to the anchor) of a few candidates.
- `train_step` / `train`: a plain `tf.GradientTape` loop around whatever triplet loss is passed in.
- `plot_losses` / `plot_accuracies`: the section's figures.

Everything is seeded: on one machine, two runs give the same numbers.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

# The features and how accuracy is measured live in facerec.triplet_features; the notebook reaches
# them through this module.
from facerec.triplet_features import (  # noqa: F401
    CACHE_FOLDER, HELD_OUT, LAYER, LFW_FOLDER, MAX_PHOTOS, MIN_PHOTOS, MODEL_FOLDER, PEOPLE, SEED,
    FaceFeatures, held_out_pairs, load_features, pair_accuracy,
)


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

    scale = input_scaling(features)
    inputs = scale(features.middle)
    training_rows = np.flatnonzero(features.training)
    training_inputs, training_person = inputs[training_rows], features.person[training_rows]
    encoder = make_encoder(inputs.shape[1], seed)
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(encoder.trainable_variables)
    # Compiled once into a TensorFlow graph: the same computation, without eager mode's per-operation overhead.
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
    ax.legend(fontsize="small", loc="upper right", bbox_to_anchor=(1, 0.94))  # between the curves and the top line


# ---- is the learner's triplet_loss there yet? -----------------------------------------------------

def loss_is_ready(triplet_loss) -> bool:
    """True when `triplet_loss` exists and returns a number a gradient can flow through; otherwise
    prints one line saying why the section is skipped."""
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
