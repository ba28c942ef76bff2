"""Insert the ungraded section "your triplet loss trains a network" into the source notebook.

    .venv/bin/python docs/triplet_section.py [NOTEBOOK]   # default: the source notebook

Idempotent: it removes every cell tagged `triplet-training`, then inserts the cells below (tagged
`triplet-training` and `going-further`) right after the markdown cell that starts with
"## 13. What to remember", or, if there is none, before the first `going-further` cell. Running
it twice changes nothing. Afterwards regenerate the student notebook:
`.venv/bin/python -m grader.course.release`.

The section states no measured figure in its text: every figure is printed by its cells, and the
text points to those lines (tests/test_triplet_training.py checks that every number in the text
is one the cells printed, and that what the text says about them holds).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

TAG = "triplet-training"
TAGS = [TAG, "going-further"]
ANCHOR = "## 13. What to remember"
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # grader.course.release, when run as `python docs/triplet_section.py`
SOURCE_NOTEBOOK = ROOT / "grader" / "source" / "Face_Recognition" / "Face_Recognition.ipynb"

CELLS: list[tuple[str, str]] = [
    ("markdown", r"""## Going further: your triplet loss trains a network (not graded)

The notebook said that the triplet loss trains face networks. Here the `triplet_loss` you wrote
in Exercise 1 trains one: a small network, from random weights, in about a minute. Then we
measure what it learnt, on people it never saw, and try two things that change what it learns:
the margin $\alpha$ and the choice of triplets.

Nothing here is graded. If `triplet_loss` is not written yet, the next cell says so and the rest
of the section does nothing."""),
    ("code", r"""import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf

from facerec import triplet_training as tt

ready = tt.loss_is_ready(globals().get("triplet_loss"))"""),
    ("markdown", r"""### Faces, and what the first part of the course network makes of them

Training a face network from pixels takes far longer than a notebook allows, so the small network
starts from inside the course network. The course network is a stack of blocks; the block called
`Mixed_6a` comes about a third of the way through. Its output, averaged over the image, is a list
of numbers per face, and the small network learns from those.

The next cell reads these numbers for LFW people with several photos (each face found by MTCNN
and cut out with a margin around it, as FaceNet networks are fed). The first time, computing them takes a few minutes; then they are
read from `data/cache` in a second. Some people are **held out**: the training never sees them,
and every accuracy below is measured on pairs of their photos, every pair of two photos of the
same person and as many pairs of two different people."""),
    ("code", r"""if ready:
    features = tt.load_features()
    pairs, same = tt.held_out_pairs(features)
    print(f"{len(features.names)} LFW people with at least {tt.MIN_PHOTOS} photos, up to "
          f"{tt.MAX_PHOTOS} each: {len(features.photos)} photos")
    print(f"{tt.LAYER} averaged over the image: {features.middle.shape[1]} numbers per face")
    print(f"training: {len(features.names) - tt.HELD_OUT} people, {features.training.sum()} photos")
    print(f"held out: {tt.HELD_OUT} people, {features.held_out.sum()} photos; {same.sum()} "
          f"same-person pairs and {(~same).sum()} different-people pairs")"""),
    ("markdown", r"""### Why the middle of the network

How well do these numbers tell people apart before any training? For each kind of numbers, the
next cell scales every face's vector to length one, finds the distance threshold that classifies
the held-out pairs best, and prints how many pairs it gets right. Three kinds: the `Mixed_6a`
numbers, the numbers that go into the course network's last layer, and the course network's own
encoding."""),
    ("code", r"""if ready:
    untrained = {
        f"{tt.LAYER}, averaged": features.middle,
        "input of the last layer": features.before_bottleneck,
        "course network's encoding": features.encoding,
    }
    accuracy_of = {name: tt.pair_accuracy(vectors, pairs, same) for name, vectors in untrained.items()}
    for name, vectors in untrained.items():
        print(f"{name:27} {vectors.shape[1]:5} numbers: {accuracy_of[name]:.1%} of held-out pairs right")"""),
    ("markdown", r"""The input of the last layer already separates these people nearly as well as the encoding
does: the course network has done the learning by then, and an encoder trained on those numbers
would have little left to learn. The `Mixed_6a` numbers are far behind, which leaves room to
watch training work."""),
    ("markdown", r"""### A small encoder, trained with your function

On top of the `Mixed_6a` numbers $x$ (each shifted and scaled to mean zero and variance one over
the training photos) sits a small network $g$ with random weights:

$$h(x) = W_2 \max\left(W_1 x + b_1,\; 0\right) + b_2, \qquad g(x) = \frac{h(x)}{\lVert h(x) \rVert_2}$$

$W_1$ turns the input into 512 numbers, $W_2$ those into 128, and $g(x)$ is an encoding of
length one, like the course network's. Each training step draws a batch of triplets from the
training people at random, computes their loss with **your** `triplet_loss`, and moves every
weight a small step against the gradient of that loss (with the Adam optimiser). This is one
step, as the training below runs it:"""),
    ("code", r"""if ready:
    tt.show_code(tt.train_step)"""),
    ("code", r"""if ready:
    STEPS, BATCH = 600, 64
    print(f"{STEPS} steps of {BATCH} triplets, alpha = 0.2, random negatives")
    encoder, plain = tt.train(triplet_loss, features, pairs, same, alpha=0.2, steps=STEPS, batch=BATCH)
    sizes = [features.middle.shape[1]] + [layer.units for layer in encoder.layers if hasattr(layer, "units")]
    print(f"encoder: {' -> '.join(map(str, sizes))} numbers, {encoder.count_params():,} weights")
    print(f"held-out pairs right: {plain.accuracies[0]:.1%} before training, {plain.final_accuracy:.1%} after")"""),
    ("code", r"""if ready:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    tt.plot_losses(left, {"alpha = 0.2, random negatives": plain})
    left.set_title("The loss your function computes, along training")
    references = {"course network's encoding": accuracy_of["course network's encoding"],
                  f"{tt.LAYER}, untrained": accuracy_of[f"{tt.LAYER}, averaged"]}
    tt.plot_accuracies(right, {"small encoder": plain}, references)
    right.set_title("Pairs of held-out people told apart")
    plt.show()"""),
    ("markdown", r"""The loss falls fast in the first steps, then slowly. The accuracy at step 0 is the untrained
encoder's; from there it rises, on people the encoder never saw: it learnt something about faces
in general, not only about the training people. It stays below the course network's encoding,
which learnt from far more faces, and from pixels."""),
    ("markdown", r"""### Experiment 1: the margin $\alpha$

Why is $\alpha$ there at all? Without it, the goal
$\lVert f(A) - f(P) \rVert_2^2 \le \lVert f(A) - f(N) \rVert_2^2$ is met by an encoder that maps
every face to the same point: both sides are $0$. The next cell asks your function: a batch of
triplets whose three encodings are one and the same point costs nothing with $\alpha = 0$, and
$\alpha$ per triplet otherwise."""),
    ("code", r"""if ready:
    one_point = tf.ones((BATCH, 128)) / np.sqrt(128)  # every face encoded as the same point
    for alpha in (0.0, 0.2):
        loss = triplet_loss(None, (one_point, one_point, one_point), alpha=alpha)
        print(f"alpha = {alpha}: loss of {BATCH} triplets all at one point = {float(loss):.1f}")"""),
    ("markdown", r"""Training does not have to find that useless encoder, but with $\alpha = 0$ nothing asks for more
than the bare order: a triplet stops teaching as soon as its negative is the least bit farther
than its positive. The next cell trains the same encoder again, from the same random weights and
on the same triplets, with $\alpha = 0$, and prints how often a whole batch cost nothing."""),
    ("code", r"""if ready:
    _, no_margin = tt.train(triplet_loss, features, pairs, same, alpha=0.0, steps=STEPS, batch=BATCH)
    for alpha, history in [(0.2, plain), (0.0, no_margin)]:
        print(f"alpha = {alpha}: {history.final_accuracy:.1%} of held-out pairs right after {STEPS} steps; "
              f"loss exactly 0 in {tt.zero_loss_share(history):.0%} of the batches after step 100")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    runs = {"alpha = 0.2": plain, "alpha = 0": no_margin}
    tt.plot_losses(left, runs)
    tt.plot_accuracies(right, runs, references)
    fig.suptitle("The margin: the same training with and without alpha")
    plt.show()"""),
    ("markdown", r"""What this measured: with $\alpha = 0$, more batches cost exactly nothing, so more steps taught
nothing, and held-out accuracy ended lower than with $\alpha = 0.2$ (the two lines above)."""),
    ("markdown", r"""### Experiment 2: which triplets

Most random triplets are easy: the negative is a stranger who looks nothing like the anchor, the
loss of the triplet is already zero, and it teaches nothing. FaceNet looked for **hard**
triplets. A simple way: for each anchor, draw a few candidate negatives at random, encode them
with the encoder as it is at that step, and keep the one closest to the anchor."""),
    ("code", r"""if ready:
    CANDIDATES = 16
    _, hardest = tt.train(triplet_loss, features, pairs, same, alpha=0.2, steps=STEPS, batch=BATCH,
                          candidates=CANDIDATES)
    for label, history in [("random negative", plain), (f"hardest of {CANDIDATES}", hardest)]:
        print(f"{label:17}: " + ", ".join(f"{a:.1%}" for a in history.accuracies[::4])
              + f" of held-out pairs right at steps {', '.join(map(str, history.checked_steps[::4]))}")
    fig, ax = plt.subplots(figsize=(7, 4))
    tt.plot_accuracies(ax, {"random negatives": plain, f"hardest of {CANDIDATES} negatives": hardest}, references)
    ax.set_title("The triplets: random negatives or hard ones")
    plt.show()"""),
    ("markdown", r"""What this measured: with the hardest of a few candidates as negatives, the encoder was ahead at
every check, by most early on: hard triplets teach more per step."""),
    ("markdown", r"""### What this is not

This is not how FaceNet was made. The small encoder learnt on top of the first third of a
network that had already learnt faces, from a few hundred people, in less than a minute. FaceNet
learnt everything from pixels, for weeks on a cluster of computers, on millions of photos of
millions of people, and chose its triplets with care inside large batches. What carries over is
the mechanism: the loss you wrote, triplets of photos, and small steps against the gradient."""),
]


def section_cells() -> list[nbformat.NotebookNode]:
    """The section's cells, with stable ids and both tags."""
    cells = []
    for number, (kind, source) in enumerate(CELLS):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cells.append(make(source, id=f"{TAG}-{number:02d}", metadata={"tags": list(TAGS)}))
    return cells


def insert_section(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with this section's cells (and no older copy of them) at their place."""
    cells = [cell for cell in notebook.cells if TAG not in cell.get("metadata", {}).get("tags", [])]
    anchors = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and cell.source.startswith(ANCHOR)]
    if anchors:
        place = anchors[0] + 1
    else:
        later = [i for i, cell in enumerate(cells) if "going-further" in cell.get("metadata", {}).get("tags", [])]
        if not later:
            raise ValueError(f"The notebook has no cell starting with {ANCHOR!r} and no going-further cell.")
        place = later[0]
    notebook.cells = cells[:place] + section_cells() + cells[place:]
    return notebook


def main(argv: list[str] | None = None) -> int:
    from grader.course.release import canonical  # the one way notebooks are written in this repository

    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else SOURCE_NOTEBOOK
    before = path.read_text(encoding="utf-8")
    notebook = insert_section(nbformat.reads(before, as_version=4))
    nbformat.validate(notebook)
    after = canonical(nbformat.writes(notebook))
    if after != before:
        path.write_text(after, encoding="utf-8")
    print(f"{path}: " + (f"section inserted ({len(CELLS)} cells); now run `.venv/bin/python -m grader.course.release`."
                         if after != before else "the section was already in place."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
