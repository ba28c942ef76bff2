"""The notebook's ungraded "Going further" section, as cell sources to paste after the exercises.

CELLS is a list of ("markdown" | "code", source) in notebook order. The code cells run in order
in a fresh kernel whose working directory is the project folder (tests/test_going_further.py
runs them so). They need the course photos (images/) and LFW (data/lfw/), both installed by
`make setup`, and take about a minute on two CPU cores. `notebook_cells()` returns them as
nbformat cells.

Figures quoted in the text were measured with the scripts named next to them.
"""
from __future__ import annotations

CELLS: list[tuple[str, str]] = [
    (
        "markdown",
        """\
## Going further: faces in real photos (not graded)

The course photos are faces already cut out: 96 by 96 pixels, one face each. A photo from a phone
is different. It may hold several faces or none, the face may be small or tilted, and the file may
be a PNG with transparency or a picture taken sideways. This section shows what `img_to_encoding`
does behind the scenes, and what you need beyond it: finding every face, enrolling several photos
per person, recognising a whole folder, and choosing the threshold.

Nothing here is graded. Most photos come from *Labeled Faces in the Wild* (LFW), a public set of
13,233 news photos of 5,749 people, which set-up installs in `data/lfw`. All the cells together
take about a minute.""",
    ),
    (
        "code",
        """\
import shutil
import tempfile
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from fr_utils import (DISTANCE_THRESHOLD, NoFaceFoundError, encode_images, extract_faces,
                      img_to_encoding, load_image, load_model)
from facerec.align import TEMPLATE_150
from facerec.calibrate import best_threshold, read_lfw_pairs, roc_curve
from facerec.database import FaceDatabase
from facerec.encode import extract_faces_from_images
from facerec.folder import recognise_folder

LFW = Path("data/lfw")
face_model = load_model()  # the network used above, loaded again so that this part runs on its own


def lfw_photo(name, number):
    # Path of photo `number` of person `name` in LFW, e.g. lfw_photo("Hans_Blix", 3).
    return LFW / "lfw-deepfunneled" / name / f"{name}_{number:04d}.jpg"
""",
    ),
    (
        "markdown",
        """\
### Every face in a photo

`extract_faces(photo, model)` runs the face detector (MTCNN) and returns **every** face it finds,
largest first. Each face comes with its **box**, five **landmarks** (the eyes, the nose, the
corners of the mouth), the detector's **confidence** (0 to 1), the aligned **chip** and its
**encoding**. This news photo of Hans Blix has three faces.""",
    ),
    (
        "code",
        """\
group_photo = load_image(lfw_photo("Hans_Blix", 3))
faces = extract_faces(group_photo, face_model)

plt.figure(figsize=(5, 5))
plt.imshow(group_photo)
for index, face in enumerate(faces):
    x, y, width, height = face.box
    plt.gca().add_patch(Rectangle((x, y), width, height, fill=False, color="lime", linewidth=2))
    plt.plot(face.landmarks[:, 0], face.landmarks[:, 1], "o", color="red", markersize=3)
    plt.text(x, y - 4, f"face {index}: {face.confidence:.2f}", color="white", backgroundcolor="black", fontsize=8)
plt.axis("off")
plt.title(f"{len(faces)} faces found, largest first")
plt.show()
""",
    ),
    (
        "markdown",
        """\
Two settings decide what counts as a face: `min_confidence` (0.9 by default) drops doubtful
detections, and `min_face_size` (20 pixels by default) skips faces too small to be worth
encoding. `img_to_encoding` keeps only the largest face, usually the person the photo is about.
When there is no face at all, the answer is an empty list, or for `img_to_encoding` a
`NoFaceFoundError` that names the photo: never a made-up encoding.""",
    ),
    (
        "code",
        """\
print("face sizes (width, height):", [(round(face.box[2]), round(face.box[3])) for face in faces])
big_faces = extract_faces(group_photo, face_model, min_face_size=120)
print("faces of at least 120 pixels:", len(big_faces))

wall = np.tile(np.linspace(60, 200, 200).astype(np.uint8), (150, 1))  # a smooth gray gradient
print("faces on a blank wall:", extract_faces(wall, face_model))
try:
    img_to_encoding(wall, face_model)
except NoFaceFoundError as error:
    print("img_to_encoding says:", error)
""",
    ),
    (
        "markdown",
        """\
### What the network sees: aligned chips

The network was trained on faces cut out in one precise way: turned and scaled so that the eyes,
the nose and the mouth land on the same five points of a 150 by 150 chip (the red dots). Top row:
the six camera photos as stored. Bottom row: what the network receives. Alignment is why a tilted
head, or a face off to one side, still gives encodings that can be compared.""",
    ),
    (
        "code",
        """\
camera_files = [f"images/camera_{i}.jpg" for i in range(6)]
fig, axes = plt.subplots(2, 6, figsize=(12, 4.5))
for column, file in enumerate(camera_files):
    axes[0, column].imshow(load_image(file))
    axes[0, column].set_title(Path(file).name, fontsize=9)
    axes[1, column].imshow(extract_faces(file, face_model)[0].chip)
    axes[1, column].plot(TEMPLATE_150[:, 0], TEMPLATE_150[:, 1], "o", color="red", markersize=3)
for axis in axes.flat:
    axis.axis("off")
fig.suptitle("the photos (96 x 96) and their aligned chips (150 x 150)")
plt.show()
""",
    ),
    (
        "markdown",
        """\
### Several photos per person

One photo per person is fragile: light, pose, glasses or a new haircut all move the encoding. A
`FaceDatabase` keeps several photos per person. `add(name, photos)` encodes the largest face of
each photo; `closest(encoding)` returns the nearest person, the distance to them, and whether that
distance is below the threshold (`accepted`).

**How the photos of one person combine.** The database averages the person's encodings and
scales the mean back to length 1; the distance to the person is the distance to that mean. The
other choice, the distance to the person's nearest photo, is `FaceDatabase(rule="nearest")`. On
LFW (309 people, each photo of theirs tested against the others, and 406 strangers;
`bench/enrol_rule.py`) the mean did better: with 3 photos per person, 98.8% of test photos were
closest to the right person against 97.9% with the nearest photo.

Below, five people are enrolled twice: from one photo each, then from five photos each. Ten other
photos of each person are then measured against their own person.""",
    ),
    (
        "code",
        """\
people = ["Colin_Powell", "Hugo_Chavez", "Serena_Williams", "Tony_Blair", "Hans_Blix"]
one_photo = FaceDatabase(face_model)
five_photos = FaceDatabase(face_model)
for name in people:
    one_photo.add(name, lfw_photo(name, 1))
    five_photos.add(name, [lfw_photo(name, number) for number in range(1, 6)])
print(one_photo)
print(five_photos)

test_owners = [name for name in people for number in range(6, 16)]
test_encodings = encode_images([lfw_photo(name, number) for name in people for number in range(6, 16)], face_model)
""",
    ),
    (
        "code",
        """\
def distances_to_owner(database):
    # Distance from each test photo to its own person in `database`.
    return np.array([database.distances(encoding)[owner] for encoding, owner in zip(test_encodings, test_owners)])


before, after = distances_to_owner(one_photo), distances_to_owner(five_photos)
plt.figure(figsize=(5, 4))
plt.plot([0, 1], [before, after], color="gray", alpha=0.4)  # one line per test photo
plt.plot(np.zeros(len(before)), before, "o", np.ones(len(after)), after, "o")
plt.axhline(DISTANCE_THRESHOLD, color="red", linestyle="--", label=f"threshold {DISTANCE_THRESHOLD}")
plt.xticks([0, 1], ["enrolled from 1 photo", "from 5 photos"])
plt.xlim(-0.4, 1.4)
plt.ylabel("distance to their own person")
plt.legend()
plt.show()
print(f"median distance to their own person: {np.median(before):.3f} with 1 photo, {np.median(after):.3f} with 5")
""",
    ),
    (
        "markdown",
        """\
With five photos, test photos come closer to their own person: the mean keeps what the photos
share, the face, and averages away what is particular to each one, such as light and angle. The
photos that were furthest away gain the most, and those are the ones closest to being refused.
Distances to *other* people shrink too, but less, so the gap between "same" and "different"
widens a little; a database of means is best used with a slightly lower threshold.

A database is saved as one `.npz` file (names, encodings, where each came from, rule and
threshold) and loaded back with `FaceDatabase.load`. A file that is not a face database, or a
damaged one, gives a `DatabaseFileError` that names the file.""",
    ),
    (
        "code",
        """\
work_folder = Path(tempfile.mkdtemp(prefix="going_further_"))
five_photos.save(work_folder / "five_people.npz")
reloaded = FaceDatabase.load(work_folder / "five_people.npz", model=face_model)
print(reloaded)
print("Hans Blix was enrolled from:", [Path(photo).name for photo in reloaded.photos_of("Hans_Blix")])
""",
    ),
    (
        "markdown",
        """\
### Recognising a whole folder

`recognise_folder(folder, database)` goes through every file of a folder, many photos per batch,
and returns a table with one row per face found. A photo without a face, or a file that is not a
photo at all, gets one row that says so, and the run goes on. Here the folder holds four new
photos of enrolled people, a photo of Hans Blix with someone else, a stranger, a blank wall and a
text file that pretends to be a JPEG.""",
    ),
    (
        "code",
        """\
snapshots = work_folder / "snapshots"
snapshots.mkdir()
for name in ["Colin_Powell", "Hugo_Chavez", "Serena_Williams", "Tony_Blair"]:
    shutil.copy(lfw_photo(name, 20), snapshots / f"{name}.jpg")
shutil.copy(lfw_photo("Hans_Blix", 12), snapshots / "two_people.jpg")
shutil.copy(lfw_photo("Anna_Faris", 1), snapshots / "stranger.jpg")
plt.imsave(snapshots / "wall.png", wall, cmap="gray")
(snapshots / "notes.jpg").write_text("this is not a photo")

table = recognise_folder(snapshots, reloaded)
table
""",
    ),
    (
        "markdown",
        """\
`identity` is the nearest enrolled person when the distance is below the threshold, and
`"unknown"` otherwise; `face` numbers the faces of a photo, largest first; `box` is where the face
is, as (x, y, width, height) in pixels. The `status` column says why a file has no face row:
`no face` when the picture was read but holds no face, `unreadable` when it is not a picture
(`detail` says why). To keep only the recognised faces: `table[table.identity != "unknown"]`.""",
    ),
    (
        "markdown",
        """\
### Choosing the threshold

Where does `DISTANCE_THRESHOLD` come from? From labelled pairs. LFW lists 6,000 pairs of photos in
10 groups ("folds"), half of them two photos of one person, half of them two different people.
For a given threshold, count the pairs that the rule "same person when the distance is below the
threshold" gets right; `best_threshold` tries every useful value and keeps the best. The next
cell does this on 200 of the pairs, 20 from each fold (about 15 seconds).""",
    ),
    (
        "code",
        """\
pairs = read_lfw_pairs(LFW / "pairs.txt")[::30]  # every 30th pair: 10 same + 10 different per fold
photos = sorted({photo for pair in pairs for photo in (pair.first, pair.second)})
encodings = dict(zip(photos, encode_images([LFW / "lfw-deepfunneled" / photo for photo in photos], face_model)))
distances = np.array([np.linalg.norm(encodings[pair.first] - encodings[pair.second]) for pair in pairs])
same = np.array([pair.same for pair in pairs])

threshold, accuracy = best_threshold(distances, same)
print(f"{len(pairs)} pairs, {len(photos)} photos")
print(f"best threshold on these pairs: {threshold:.3f}, {accuracy:.1%} of the pairs right")
print(f"DISTANCE_THRESHOLD = {DISTANCE_THRESHOLD}: {np.mean((distances < DISTANCE_THRESHOLD) == same):.1%} right")
""",
    ),
    (
        "code",
        """\
curve = roc_curve(distances, same)
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
bins = np.linspace(0, 1, 41)
left.hist(distances[same], bins, alpha=0.6, label="same person")
left.hist(distances[~same], bins, alpha=0.6, label="two different people")
left.axvline(DISTANCE_THRESHOLD, color="red", linestyle="--", label=f"DISTANCE_THRESHOLD {DISTANCE_THRESHOLD}")
left.set(xlabel="distance between the two photos", ylabel="pairs")
left.legend()

right.plot(curve.far, curve.tar)
rates = np.mean(distances[~same] < DISTANCE_THRESHOLD), np.mean(distances[same] < DISTANCE_THRESHOLD)
right.plot(*rates, "o", color="red", label=f"DISTANCE_THRESHOLD {DISTANCE_THRESHOLD}")
right.set(xlabel="different people accepted (false accept rate)", ylabel="same person accepted (true accept rate)",
          title=f"ROC curve: area {curve.auc:.4f}")
right.legend(loc="lower right")
plt.show()
""",
    ),
    (
        "markdown",
        """\
Left: the two kinds of pairs barely overlap, and the threshold sits in the narrow valley between
them. Right: every possible threshold is one point of the ROC curve; raising it lets more of the
same person in (up) and more strangers too (right). A curve hugging the top-left corner means a
good model: the area under it would be 1 for a perfect one.

On 200 pairs the best threshold moves by a few hundredths from one sample to another. On all
6,000 pairs (`bench/lfw_roc.py`) it is 0.430, with 98.75% of the pairs right; chosen on nine folds
and tested on the tenth, as LFW's protocol asks, 98.7% ± 0.4%. That is where
`DISTANCE_THRESHOLD` comes from.""",
    ),
    (
        "markdown",
        """\
### How often does a stranger get in?

That threshold was chosen for **verification**: one photo against one claimed person. The door of
the exercises does **recognition**: it compares a face with all 12 people it knows, so a stranger
has 12 chances to land close enough to someone. The next cell shows 200 LFW faces, none of them a
course person, to a database of the 12 course photos (about 10 seconds).""",
    ),
    (
        "code",
        """\
course = FaceDatabase(face_model)
for file in sorted(Path("images").iterdir()):
    if not file.name.startswith("camera"):
        course.add(file.stem, file)

everyone = sorted(folder.name for folder in (LFW / "lfw-deepfunneled").iterdir())
strangers = [lfw_photo(name, 1) for name in everyone[::29][:200]]
found = extract_faces_from_images(strangers, face_model, largest_only=True)
matches = course.closest_for_each(np.stack([faces[0].encoding for faces in found if faces]))
let_in = [match for match in matches if match.accepted]
print(f"{len(let_in)} of {len(matches)} strangers let in, taken for: {sorted(match.identity for match in let_in)}")

plt.figure(figsize=(6, 3))
plt.hist([match.distance for match in matches], bins=np.linspace(0.2, 0.8, 31))
plt.axvline(DISTANCE_THRESHOLD, color="red", linestyle="--", label=f"DISTANCE_THRESHOLD {DISTANCE_THRESHOLD}")
plt.xlabel("distance from a stranger to the closest course person")
plt.ylabel("strangers")
plt.legend()
plt.show()
""",
    ),
    (
        "markdown",
        """\
### What this model can and cannot do

- **Comparing two photos is not searching a crowd.** At 0.43, fewer than 1 pair in 100 of two
  different LFW people passes for one person. A door gives a stranger one chance per enrolled
  person, and the cell above let in about 1 stranger in 8 with only 12 people enrolled. With 300
  people enrolled, the threshold that works best on LFW drops to 0.32 to 0.37, depending on the
  photos per person (`bench/enrol_rule.py`). Large databases need a lower threshold, or a second
  check such as a badge.
- **Small faces say less.** Faces under 20 pixels are not looked for, and small, blurred faces in
  the background are the ones most often mistaken for someone. Profiles, masks and dark photos
  are often missed altogether.
- **Training data.** The network learnt from photos collected on the web, mostly of adults. Its
  accuracy on LFW's news photos does not carry over to every camera, age or group of people:
  measure it on photos like yours before relying on it.
- **Consent.** An encoding identifies a person as well as their photo does. Enrol only people who
  have agreed, and keep a face database as carefully as the photos themselves.""",
    ),
    (
        "code",
        """\
shutil.rmtree(work_folder)  # the database file and the snapshots folder were only for this section
""",
    ),
]


def notebook_cells():
    """CELLS as nbformat v4 cells, ready for nbformat.v4.new_notebook(cells=...)."""
    import nbformat

    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    return [make[kind](source.rstrip("\n")) for kind, source in CELLS]
