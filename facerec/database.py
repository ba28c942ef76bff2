"""A face database: several photos per person, saved to one file, matched in one matrix product.

    database = FaceDatabase()                       # the photo model is loaded on first use
    database.add("younes", ["images/younes.jpg", "me/younes_2.jpg"])
    match = database.closest(img_to_encoding("images/camera_0.jpg", database.model))
    match.identity, match.distance, match.accepted  # ('younes', 0.51, True)
    database.save("office.npz"); FaceDatabase.load("office.npz")

The model (by default `facerec.encode.load_photo_model()`: the course's FaceNet fed as FaceNet was
trained; `load_photo_model(DLIB_MODEL_FOLDER)` for dlib's ResNet) and the way it is fed decide
what the encodings mean: the threshold follows them (`facerec.encode.distance_threshold`), and a
saved database records the feed, so that it is never matched against another network's encodings.

How several photos of one person combine (`rule`):
- "mean" (the default): the person is represented by the mean of their photos' unit encodings,
  scaled back to unit length; the distance to them is the distance to that mean.
- "nearest": the distance to a person is the distance to the closest of their photos.
With one photo per person both give the same distances. bench/enrol_rule.py measured both on LFW
with the default photo pipeline (311 people enrolled with k photos each, 1866 probes of them and
407 strangers; bench/README.md). "mean" had the better open-set balanced accuracy for every
k >= 2 (3 photos: 96.9% vs 96.7%; 5 photos: 97.5% vs 97.2%) and, from 3 photos on, a rank-1 as
good or better (3: 99.14% both; 5: 99.30% vs 99.25%) and a better TAR at 0.1% FAR (3: 99.0% vs
98.4%); with 2 photos "nearest" was marginally ahead on rank-1 (99.09% vs 99.04%) and TAR (98.0%
vs 97.9%). "mean" is also faster: one row per person. (With dlib's ResNet "mean" was ahead for
every k >= 2, e.g. with 3 photos rank-1 98.8% vs 98.2%.)

Every enrolled encoding must be unit length (as `img_to_encoding` and `encode_images` make them).
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from facerec.encode import (ALIGNED_FEED, COURSE_FEED, DLIB_MODEL_FOLDER, FACENET_FEED, FEEDS, MODEL_FOLDER,
                            encode_images, feed_of, load_model, load_photo_model,
                            threshold_for_feed)
from facerec.errors import EmptyInputError, FaceRecError, describe_source
from facerec.images import ImageSource, as_source_list

RULES = ("mean", "nearest")
FILE_FORMAT = "facerec.FaceDatabase"
FILE_VERSION = 2  # 2 records the feed; 1 did not (its default was dlib's ResNet, ALIGNED_FEED)
# The name recognise_folder and Match.label give a face that matches nobody.
UNKNOWN = "unknown"
_UNIT_TOLERANCE = 1e-3
_QUERY_CHUNK = 1024


class DatabaseFileError(FaceRecError, ValueError):
    """A file given to FaceDatabase.load is not a readable face database."""


class DatabaseNotFoundError(FaceRecError, FileNotFoundError):
    """FaceDatabase.load was given a path where there is no file."""


class UnknownPersonError(FaceRecError, KeyError):
    """A name that is not in the database."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class EmptyDatabaseError(FaceRecError, ValueError):
    """Matching against a database with nobody in it."""


class FeedMismatchError(FaceRecError, ValueError):
    """A saved database loaded with a model that encodes faces otherwise than its enrolled ones."""


@dataclass(frozen=True)
class Match:
    """The closest enrolled person to one face.

    identity: their name (even when too far away: see `accepted`); distance: L2 distance to them
    under the database's rule; accepted: distance < the database's threshold.
    """

    identity: str
    distance: float
    accepted: bool

    @property
    def label(self) -> str:
        """The identity when accepted, else "unknown"."""
        return self.identity if self.accepted else UNKNOWN


@dataclass
class _Person:
    encodings: np.ndarray  # (photos, d) float32, unit rows
    photos: list[str] = field(default_factory=list)  # where each encoding came from


class FaceDatabase:
    """People, each with one or more enrolled face encodings.

    `model` encodes the photos given to `add` (None: `facerec.encode.load_photo_model()`, the
    course's FaceNet fed as FaceNet was trained, loaded on first use); `threshold`: largest
    distance (exclusive) at which a face is accepted as someone (None: the model's own,
    `facerec.encode.distance_threshold`: 1.10 for the default photo model, 0.42 for dlib's ResNet);
    `rule`: "mean" or "nearest", how a person's several photos combine (see the module doc).
    """

    def __init__(self, model=None, threshold: float | None = None, rule: str = "mean"):
        self._people: dict[str, _Person] = {}
        self._matrix_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # How the enrolled faces are (to be) encoded; known before the default model is loaded.
        self._feed = FACENET_FEED if model is None else feed_of(model)
        self.threshold = threshold_for_feed(self._feed) if threshold is None else threshold
        self.rule = rule
        self._model = model

    # ------------------------------------------------------------------ settings and contents

    @property
    def threshold(self) -> float:
        """Faces closer than this (strictly) to their nearest person are accepted as them."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = _checked_threshold(value)

    @property
    def rule(self) -> str:
        """How a person's photos combine: "mean" or "nearest" (see the module doc)."""
        return self._rule

    @rule.setter
    def rule(self, value: str) -> None:
        if value not in RULES:
            raise ValueError(f"rule must be one of {RULES}, not {value!r}.")
        self._rule = value
        self._matrix_cache = None

    @property
    def model(self):
        """The encoding model: the one given, else the photo model of the database's feed, loaded
        when first needed (facerec.encode.load_photo_model(): the course's FaceNet fed FaceNet's way)."""
        if self._model is None:
            self._model = _model_for_feed(self._feed)
        return self._model

    @property
    def feed(self) -> str:
        """How the enrolled faces were encoded (facerec.encode.FEEDS): "facenet", "aligned" or "course"."""
        return self._feed

    @property
    def names(self) -> list[str]:
        """Enrolled people, in the order they were first added."""
        return list(self._people)

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, name: object) -> bool:
        return name in self._people

    def __repr__(self) -> str:
        photos = sum(len(person.encodings) for person in self._people.values())
        return f"FaceDatabase({len(self)} people, {photos} photos, rule={self.rule!r}, threshold={self.threshold})"

    def photos_of(self, name: str) -> list[str]:
        """Where each of `name`'s enrolled encodings came from (file paths, or a description of arrays)."""
        return list(self._person(name).photos)

    def encodings_of(self, name: str) -> np.ndarray:
        """(photos, d) copy of `name`'s enrolled encodings."""
        return self._person(name).encodings.copy()

    # ------------------------------------------------------------------ changes

    def add(self, name: str, photos: ImageSource | Iterable[ImageSource]) -> int:
        """Enrol one or more photos (paths or picture arrays) of `name`; returns their photo count.

        Adding to an existing name adds photos to that person. The largest face of each photo is
        used. Nothing is enrolled if any photo cannot be read or shows no face: the error
        (NotAnImageError, NoFaceFoundError...) names the photos at fault.
        """
        name = _checked_name(name)
        sources = as_source_list(photos)
        if not sources:
            raise EmptyInputError(f"No photos given for {name!r}. Pass a photo path or a list of them.")
        encodings = encode_images(sources, self.model)
        return self._enrol(name, encodings, [_photo_label(source) for source in sources])

    def add_encodings(self, name: str, encodings, photos: list[str] | None = None) -> int:
        """Enrol ready-made unit encodings, (d,) or (k, d), for `name`; returns their photo count."""
        name = _checked_name(name)
        rows = np.asarray(encodings, dtype=np.float32)
        if rows.ndim == 1:
            rows = rows[None, :]
        if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
            raise ValueError(f"Encodings for {name!r} must be a (d,) vector or a (k, d) array, got shape {np.shape(encodings)}.")
        labels = list(photos) if photos is not None else [f"encoding given to add_encodings ({name})"] * len(rows)
        if len(labels) != len(rows):
            raise ValueError(f"Got {len(rows)} encodings but {len(labels)} photo labels for {name!r}.")
        return self._enrol(name, rows, labels)

    def remove(self, name: str) -> None:
        """Forget `name` and all their photos."""
        self._person(name)
        del self._people[name]
        self._matrix_cache = None

    def _enrol(self, name: str, rows: np.ndarray, labels: list[str]) -> int:
        _check_unit_rows(rows, f"encodings for {name!r}")
        width = self._width()
        if width is not None and rows.shape[1] != width:
            raise ValueError(
                f"Encodings for {name!r} have {rows.shape[1]} numbers but this database holds {width}-number "
                "encodings: use the same model for every photo."
            )
        person = self._people.get(name)
        if person is None:
            self._people[name] = _Person(rows.copy(), labels)
        else:
            person.encodings = np.concatenate([person.encodings, rows])
            person.photos.extend(labels)
        self._matrix_cache = None
        return len(self._people[name].encodings)

    def _person(self, name: str) -> _Person:
        try:
            return self._people[name]
        except (KeyError, TypeError):
            known = ", ".join(repr(known) for known in list(self._people)[:10]) or "nobody yet"
            raise UnknownPersonError(f"{name!r} is not in the database (enrolled: {known}).") from None

    def _width(self) -> int | None:
        for person in self._people.values():
            return person.encodings.shape[1]
        return None

    # ------------------------------------------------------------------ matching

    def _matrix(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows (m, d), squared row norms (m,), person index of each row), rebuilt after changes.

        "mean": one row per person; "nearest": one row per enrolled photo, grouped by person.
        """
        if self._matrix_cache is None:
            people = list(self._people.values())
            if self.rule == "mean":
                rows = np.stack([_mean_template(person.encodings) for person in people])
                owners = np.arange(len(people))
            else:
                rows = np.concatenate([person.encodings for person in people])
                owners = np.repeat(np.arange(len(people)), [len(person.encodings) for person in people])
            self._matrix_cache = (rows, np.einsum("ij,ij->i", rows, rows), owners)
        return self._matrix_cache

    def _squared_distances(self, queries: np.ndarray) -> np.ndarray:
        """(n, m) squared distances from each query to each row: |q|^2 + |r|^2 - 2 q.r, one product."""
        rows, row_norms, _ = self._matrix()
        query_norms = np.einsum("ij,ij->i", queries, queries)
        return np.maximum(query_norms[:, None] + row_norms[None, :] - 2.0 * (queries @ rows.T), 0.0)

    def closest_for_each(self, encodings) -> list[Match]:
        """The closest person to each row of `encodings` (n, d): one Match per row."""
        queries = self._queries(encodings)
        if len(queries) == 0:
            return []
        rows, _, owners = self._matrix()
        # Queries in chunks: the (chunk, rows) distance matrix stays bounded (1024 x 100,000: 400 MB).
        best_rows = np.concatenate([
            self._squared_distances(queries[start : start + _QUERY_CHUNK]).argmin(axis=1)
            for start in range(0, len(queries), _QUERY_CHUNK)
        ])
        # The expanded product loses precision near 0: report the exact distance to the winner.
        distances = np.linalg.norm(rows[best_rows].astype(np.float64) - queries.astype(np.float64), axis=1)
        names = self.names
        return [
            Match(names[owners[row]], float(distance), bool(distance < self.threshold))
            for row, distance in zip(best_rows, distances)
        ]

    def closest(self, encoding) -> Match | list[Match]:
        """The closest person to one encoding, (d,) or (1, d), as a Match; for (n, d), a list of n."""
        array = np.asarray(encoding)
        matches = self.closest_for_each(array)
        if array.ndim == 1 or (array.ndim == 2 and array.shape[0] == 1):
            return matches[0]
        return matches

    def distances(self, encoding) -> dict[str, float]:
        """Distance from one encoding, (d,) or (1, d), to every enrolled person under the rule."""
        queries = self._queries(encoding)
        if len(queries) != 1:
            raise ValueError(f"distances takes one encoding, (d,) or (1, d); got {len(queries)}. Use closest_for_each for many.")
        _, _, owners = self._matrix()
        to_rows = np.sqrt(self._squared_distances(queries)[0])
        # Rows are grouped by person: the minimum of each group is that person's distance.
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        return dict(zip(self.names, np.minimum.reduceat(to_rows, starts).astype(float).tolist()))

    def _queries(self, encoding) -> np.ndarray:
        if len(self._people) == 0:
            raise EmptyDatabaseError("The face database is empty: enrol people with database.add(name, photos) first.")
        queries = np.asarray(encoding, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        width = self._width()
        if queries.ndim != 2 or queries.shape[1] != width:
            raise ValueError(
                f"Expected encodings of shape ({width},) or (n, {width}), got {np.shape(encoding)}. "
                "Encode faces with img_to_encoding or encode_images first."
            )
        if not np.all(np.isfinite(queries)):
            raise ValueError("The encoding contains NaN or infinity: it does not come from a face.")
        return queries

    # ------------------------------------------------------------------ files

    def save(self, path: str | os.PathLike) -> Path:
        """Write names, encodings, photo labels, rule and threshold to one .npz file at `path`.

        The file is written beside its destination first and then moved into place, so an
        interrupted save never leaves half a database. Returns the path written.
        """
        path = Path(path).expanduser()
        people = list(self._people.values())
        width = self._width() or 0
        arrays = {
            "format": np.array(FILE_FORMAT),
            "version": np.array(FILE_VERSION),
            "names": np.array(self.names, dtype=str),
            "owners": np.repeat(np.arange(len(people)), [len(p.encodings) for p in people]).astype(np.int64),
            "encodings": np.concatenate([p.encodings for p in people]) if people else np.zeros((0, width), np.float32),
            "photos": np.array([label for p in people for label in p.photos], dtype=str),
            "rule": np.array(self.rule),
            "threshold": np.array(self.threshold, dtype=np.float64),
            "feed": np.array(self.feed),
        }
        if not path.parent.is_dir():
            raise FileNotFoundError(f"Cannot save the database to {str(path)!r}: the folder {str(path.parent)!r} does not exist.")
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays)  # a file object: numpy adds no ".npz" to the name
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, model=None) -> "FaceDatabase":
        """The database saved at `path` by `save`. `model` encodes new photos; None: the photo model
        of the feed the file records (a version-1 file records none: dlib's ResNet, its default then).

        Raises DatabaseNotFoundError when there is no file, DatabaseFileError (naming the file)
        when it is not a face database or is damaged, FeedMismatchError when `model` would encode
        faces otherwise than the enrolled ones were.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise DatabaseNotFoundError(
                f"No face database at {str(path)!r}"
                + (" (that is a folder)." if path.is_dir() else ".")
                + " Check the path; a database is created with FaceDatabase() and written with save(path)."
            )
        arrays = _read_npz(path)
        names, owners, encodings, photos, rule, threshold, feed = _validated_contents(path, arrays)
        if model is not None and feed is not None and feed_of(model) != feed:
            raise FeedMismatchError(
                f"{str(path)!r} holds encodings made with the {feed!r} feed, but the model given encodes with "
                f"the {feed_of(model)!r} feed: their distances cannot be compared. Load it with model=None "
                f"(the right model is loaded), or with {_MODEL_FOR_FEED_HINT[feed]}."
            )
        database = cls(model=model, threshold=threshold, rule=rule)
        if model is None:
            database._feed = feed or ALIGNED_FEED
        for index, name in enumerate(names):
            mine = owners == index
            database._people[name] = _Person(encodings[mine].copy(), photos[mine].tolist())
        return database


_MODEL_FOR_FEED_HINT = {
    FACENET_FEED: "model=load_photo_model()",
    ALIGNED_FEED: f"model=load_photo_model({DLIB_MODEL_FOLDER!r})",
    COURSE_FEED: "model=load_model()",
}


def _model_for_feed(feed: str):
    """The package's model that encodes with `feed`."""
    if feed == FACENET_FEED:
        return load_photo_model()
    if feed == ALIGNED_FEED:
        return load_photo_model(DLIB_MODEL_FOLDER)
    return load_model(MODEL_FOLDER)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    def unreadable(reason: str) -> DatabaseFileError:
        return DatabaseFileError(
            f"{str(path)!r} is not a face database that can be read ({reason}). "
            "Pass a file written by FaceDatabase.save, or enrol the people again and save."
        )

    if path.stat().st_size == 0:
        raise unreadable("it is empty, 0 bytes")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:
        # Anything that is neither .npy nor .npz falls through to numpy's refused pickle loader.
        raise unreadable("it is not a numpy .npz file" if "pickle" in str(error) else f"ValueError: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise unreadable(f"{type(error).__name__}: {error}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise unreadable("it holds a single numpy array, not a database")
    try:
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise unreadable("it holds Python objects, which are never loaded from files") from None
        raise unreadable(f"ValueError: {error}") from None
    except Exception as error:  # zlib, zipfile, struct and OS errors of a damaged archive
        raise unreadable(f"{type(error).__name__}: {error}") from None


def _validated_contents(path: Path, arrays: dict[str, np.ndarray]):
    def damaged(problem: str) -> DatabaseFileError:
        return DatabaseFileError(
            f"{str(path)!r} is damaged: {problem}. Use another copy, or enrol the people again and save."
        )

    tag = arrays.get("format")
    if tag is None or tag.shape != () or tag.dtype.kind != "U" or str(tag) != FILE_FORMAT:
        raise DatabaseFileError(
            f"{str(path)!r} is a numpy .npz file but not a face database (no {FILE_FORMAT!r} format tag; "
            f"it holds {sorted(arrays)[:8]}). Pass a file written by FaceDatabase.save."
        )
    version = arrays.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise damaged("its version number is missing")
    if int(version) > FILE_VERSION:
        raise DatabaseFileError(
            f"{str(path)!r} was written by a newer facerec (file version {int(version)}; this one reads "
            f"version {FILE_VERSION}). Update the course files."
        )
    missing = {"names", "owners", "encodings", "photos", "rule", "threshold"} - set(arrays)
    if missing:
        raise damaged(f"it lacks {sorted(missing)}")
    names, owners, encodings, photos = arrays["names"], arrays["owners"], arrays["encodings"], arrays["photos"]
    if names.ndim != 1 or (names.size and names.dtype.kind != "U"):
        raise damaged("the names are not a list of text")
    if len(set(names.tolist())) != len(names) or any(not name.strip() for name in names.tolist()):
        raise damaged("a name is empty or appears twice")
    if encodings.ndim != 2 or encodings.dtype.kind != "f":
        raise damaged(f"the encodings have shape {encodings.shape} and type {encodings.dtype}, not (n, d) floats")
    if owners.shape != (len(encodings),) or owners.dtype.kind not in "iu":
        raise damaged("the list of whose encoding each row is does not match the encodings")
    if photos.shape != (len(encodings),):
        raise damaged("the list of photos does not match the encodings")
    if len(owners) and (owners.min() < 0 or owners.max() >= len(names)):
        raise damaged("an encoding belongs to a person who is not listed")
    if len(np.unique(owners)) != len(names):
        raise damaged("a person has no encoding")
    problem = _unit_rows_problem(encodings)
    if problem:
        raise damaged(f"its encodings {problem}")
    rule = str(arrays["rule"])
    if rule not in RULES:
        raise damaged(f"its rule {rule!r} is not one of {RULES}")
    try:
        threshold = _checked_threshold(float(arrays["threshold"]))
    except (TypeError, ValueError):
        raise damaged("its threshold is not a positive number") from None
    feed = None  # version 1 did not record it
    if "feed" in arrays:
        feed = str(arrays["feed"])
        if feed not in FEEDS:
            raise damaged(f"its feed {feed!r} is not one of {FEEDS}")
    elif int(version) >= 2:
        raise damaged("it lacks ['feed']")
    return names.tolist(), owners, encodings.astype(np.float32), photos, rule, threshold, feed


def _mean_template(encodings: np.ndarray) -> np.ndarray:
    """The unit-length mean of a person's unit encodings (a single photo is kept bit for bit)."""
    if len(encodings) == 1:
        return encodings[0]
    mean = encodings.astype(np.float64).mean(axis=0)
    return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)


def _checked_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"A person's name must be a non-empty string, not {name!r}.")
    if name == UNKNOWN:
        raise ValueError(f"{UNKNOWN!r} is what unrecognised faces are called; enrol this person under another name.")
    return name


def _checked_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive distance, not {threshold!r}.")
    return threshold


def _unit_rows_problem(rows: np.ndarray) -> str | None:
    """What is wrong with `rows` as unit encodings, or None."""
    if not np.all(np.isfinite(rows)):
        return "contain NaN or infinity"
    lengths = np.linalg.norm(rows.astype(np.float64), axis=1)
    if len(lengths) and np.max(np.abs(lengths - 1.0)) > _UNIT_TOLERANCE:
        return f"are not unit length (lengths {lengths.min():.4g} to {lengths.max():.4g})"
    return None


def _check_unit_rows(rows: np.ndarray, what: str) -> None:
    problem = _unit_rows_problem(rows)
    if problem:
        raise ValueError(
            f"The {what} {problem}. Enrol encodings from img_to_encoding / encode_images "
            "(unit length, from detected faces)."
        )


def _photo_label(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return describe_source(source)
