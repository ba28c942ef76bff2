"""FaceDatabase: enrolment from real photos, both combining rules, matching, files good and bad."""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import CAMERA_OWNERS, DATABASE_PEOPLE, course_photo
from facerec.database import (
    UNKNOWN,
    DatabaseFileError,
    DatabaseNotFoundError,
    EmptyDatabaseError,
    FaceDatabase,
    FeedMismatchError,
    Match,
    UnknownPersonError,
)
from facerec.encode import DISTANCE_THRESHOLD, FACENET_THRESHOLD
from facerec.errors import FaceRecError, NoFaceFoundError, NotAnImageError


def unit_rows(count: int, seed: int, width: int = 128) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, width)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def course_database(encoding_model) -> FaceDatabase:
    """The twelve course people, one photo each, enrolled from their files with dlib's ResNet."""
    database = FaceDatabase(encoding_model)
    for name in DATABASE_PEOPLE:
        database.add(name, course_photo(name))
    return database


@pytest.fixture(scope="module")
def photo_database() -> FaceDatabase:
    """The twelve course people enrolled by a database with every default: the course's FaceNet
    fed as FaceNet was trained, loaded by the database itself."""
    database = FaceDatabase()
    for name in DATABASE_PEOPLE:
        database.add(name, course_photo(name))
    return database


def test_a_default_database_knows_its_feed_and_threshold_before_loading_a_model():
    database = FaceDatabase()
    assert database.feed == "facenet" and database.threshold == FACENET_THRESHOLD == 1.10
    assert database._model is None  # nothing loaded yet: the threshold did not need the model
    assert FaceDatabase(model=object()).feed == "aligned"  # any other network: dlib's ResNet's feed


def test_a_default_database_recognises_every_camera_photo(photo_database, photo_encodings):
    from facerec.encode import feed_of

    assert feed_of(photo_database.model) == "facenet" and photo_database.model.name == "inception_resnet_v1"
    assert photo_database.names == DATABASE_PEOPLE and photo_database.threshold == FACENET_THRESHOLD
    cameras = list(CAMERA_OWNERS)
    matches = photo_database.closest(np.stack([photo_encodings[camera] for camera in cameras]))
    assert [match.identity for match in matches] == [CAMERA_OWNERS[camera] for camera in cameras]
    assert all(match.accepted for match in matches) and max(match.distance for match in matches) < 0.9
    # Enrolling a file gives what encode_images gives; camera_2 (Benoit) claiming to be Kian is refused.
    assert photo_database.closest(photo_encodings["kian"]).distance == pytest.approx(0.0, abs=1e-5)
    assert photo_database.distances(photo_encodings["camera_2"])["kian"] > FACENET_THRESHOLD


def test_a_saved_database_records_its_feed_and_refuses_another_networks_model(tmp_path, photo_database,
                                                                              course_database, encoding_model):
    photo_database.save(tmp_path / "facenet.npz")
    with np.load(tmp_path / "facenet.npz") as saved:
        assert str(saved["feed"]) == "facenet" and int(saved["version"]) == 2
    loaded = FaceDatabase.load(tmp_path / "facenet.npz")
    assert loaded.feed == "facenet" and loaded.threshold == FACENET_THRESHOLD and loaded._model is None
    with pytest.raises(FeedMismatchError, match=r"facenet.npz.*'facenet' feed.*'aligned' feed.*load_photo_model\(\)"):
        FaceDatabase.load(tmp_path / "facenet.npz", model=encoding_model)
    course_database.save(tmp_path / "resnet.npz")
    with pytest.raises(FeedMismatchError, match="dlib-resnet-h5"):
        FaceDatabase.load(tmp_path / "resnet.npz", model=photo_database.model)
    assert FaceDatabase.load(tmp_path / "resnet.npz").feed == "aligned"
    # A file of version 1 records no feed: it was dlib's ResNet's, the default photo network then.
    with np.load(tmp_path / "resnet.npz") as saved:
        arrays = {key: saved[key] for key in saved.files if key != "feed"}
    np.savez(tmp_path / "version1.npz", **{**arrays, "version": np.array(1)})
    old = FaceDatabase.load(tmp_path / "version1.npz")
    assert old.feed == "aligned" and old.threshold == DISTANCE_THRESHOLD and old.names == DATABASE_PEOPLE


def test_course_people_enrolled_from_files_recognise_every_camera_photo(course_database, course_encodings):
    assert course_database.names == DATABASE_PEOPLE and len(course_database) == 12
    assert course_database.threshold == DISTANCE_THRESHOLD and course_database.rule == "mean"
    cameras = list(CAMERA_OWNERS)
    matches = course_database.closest(np.stack([course_encodings[camera] for camera in cameras]))
    assert [match.identity for match in matches] == [CAMERA_OWNERS[camera] for camera in cameras]
    assert all(match.accepted and match.label == match.identity for match in matches)
    # Enrolling a file gives the same encoding as encoding it directly.
    younes = course_database.closest(course_encodings["younes"])
    assert younes.identity == "younes" and younes.distance == pytest.approx(0.0, abs=1e-5)
    assert course_database.photos_of("danielle") == [str(course_photo("danielle"))]  # the RGBA PNG


def test_a_single_encoding_gives_a_match_and_several_give_a_list(course_database, course_encodings):
    vector = course_encodings["camera_0"]
    assert isinstance(course_database.closest(vector), Match)
    assert course_database.closest(vector[None, :]) == course_database.closest(vector)
    pair = course_database.closest(np.stack([vector, course_encodings["camera_4"]]))
    assert [match.identity for match in pair] == ["younes", "dan"]
    assert course_database.closest_for_each(vector) == [course_database.closest(vector)]
    distances = course_database.distances(vector)
    assert list(distances) == DATABASE_PEOPLE
    assert distances["younes"] == pytest.approx(course_database.closest(vector).distance, abs=1e-6)
    assert min(distances, key=distances.get) == "younes"


def test_adding_more_photos_of_someone_and_removing_people(encoding_model, tmp_path):
    database = FaceDatabase(encoding_model)
    assert database.add("bertrand", [course_photo("bertrand"), course_photo("camera_1")]) == 2
    assert database.add("bertrand", str(course_photo("camera_3"))) == 3
    assert database.add("younes", np.asarray(Image.open(course_photo("younes")))) == 1  # an array
    assert database.names == ["bertrand", "younes"] and "bertrand" in database
    assert database.photos_of("bertrand") == [str(course_photo(n)) for n in ("bertrand", "camera_1", "camera_3")]
    assert database.photos_of("younes")[0].startswith("array of shape (96, 96, 3)")
    assert database.encodings_of("bertrand").shape == (3, 128)
    database.remove("bertrand")
    assert database.names == ["younes"] and len(database) == 1 and "bertrand" not in database
    with pytest.raises(UnknownPersonError, match="'bertrand' is not in the database .*'younes'") as caught:
        database.remove("bertrand")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, FaceRecError)
    with pytest.raises(UnknownPersonError):
        database.photos_of("nobody")


def test_a_photo_without_a_face_or_a_broken_file_enrols_nothing(encoding_model, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.tile(np.linspace(40, 200, 200, dtype=np.uint8), (150, 1))).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_text("not a photo")
    database = FaceDatabase(encoding_model)
    with pytest.raises(NoFaceFoundError, match="wall.png"):
        database.add("dan", [course_photo("dan"), blank])
    with pytest.raises(NotAnImageError, match="broken.jpg"):
        database.add("dan", [course_photo("dan"), broken])
    with pytest.raises(ValueError, match="No photos"):
        database.add("dan", [])
    assert len(database) == 0 and "dan" not in database


def test_names_must_be_real_names():
    database = FaceDatabase(model=object())
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="non-empty string"):
            database.add_encodings(bad, unit_rows(1, 0))
    with pytest.raises(ValueError, match="unrecognised faces"):
        database.add_encodings(UNKNOWN, unit_rows(1, 0))


def test_encodings_must_be_unit_length_finite_and_of_one_width():
    database = FaceDatabase(model=object())
    with pytest.raises(ValueError, match="not unit length"):
        database.add_encodings("a", unit_rows(2, 0) * 3)
    with pytest.raises(ValueError, match="NaN"):
        database.add_encodings("a", np.full(128, np.nan))
    database.add_encodings("a", unit_rows(1, 0))
    with pytest.raises(ValueError, match="holds 128-number"):
        database.add_encodings("b", unit_rows(1, 0, width=64))
    with pytest.raises(ValueError, match=r"shape \(128,\) or \(n, 128\)"):
        database.closest(unit_rows(1, 0, width=64))
    with pytest.raises(ValueError, match="threshold"):
        FaceDatabase(threshold=-1)
    with pytest.raises(ValueError, match="threshold"):
        database.threshold = float("nan")
    with pytest.raises(ValueError, match="rule"):
        FaceDatabase(rule="median")


def test_the_two_rules_combine_photos_as_documented():
    photos = unit_rows(7, seed=1)
    query = unit_rows(1, seed=2)[0]
    owner_rows = {"ann": photos[:3], "bob": photos[3:4], "cy": photos[4:]}
    databases = {rule: FaceDatabase(model=object(), rule=rule) for rule in ("nearest", "mean")}
    for database in databases.values():
        for name, rows in owner_rows.items():
            database.add_encodings(name, rows)
    nearest = {name: np.linalg.norm(rows - query, axis=1).min() for name, rows in owner_rows.items()}
    mean = {}
    for name, rows in owner_rows.items():
        centre = rows.astype(np.float64).mean(axis=0)
        mean[name] = np.linalg.norm(centre / np.linalg.norm(centre) - query)
    for rule, expected in (("nearest", nearest), ("mean", mean)):
        got = databases[rule].distances(query)
        assert got == pytest.approx(expected, abs=1e-5)
        match = databases[rule].closest(query)
        assert match.identity == min(expected, key=expected.get)
        assert match.distance == pytest.approx(min(expected.values()), abs=1e-6)
    assert nearest["bob"] == pytest.approx(mean["bob"], abs=1e-6)  # one photo: the rules agree
    assert nearest["ann"] != pytest.approx(mean["ann"], abs=1e-3)
    # Switching the rule of a database that has already matched uses the new rule.
    databases["mean"].rule = "nearest"
    assert databases["mean"].distances(query) == pytest.approx(nearest, abs=1e-5)
    with pytest.raises(ValueError, match="rule"):
        databases["mean"].rule = "median"


def test_accepted_means_strictly_closer_than_the_threshold():
    database = FaceDatabase(model=object(), threshold=0.5)
    database.add_encodings("ann", unit_rows(1, 3))
    query = unit_rows(1, 4)[0]
    distance = database.closest(query).distance
    database.threshold = distance
    assert database.closest(query) == Match("ann", distance, False)
    assert database.closest(query).label == UNKNOWN
    database.threshold = distance + 1e-6
    assert database.closest(query).accepted and database.closest(query).label == "ann"


def test_an_empty_database_says_so():
    database = FaceDatabase(model=object())
    with pytest.raises(EmptyDatabaseError, match="empty.*add"):
        database.closest(unit_rows(1, 0)[0])


def test_matching_100000_enrolled_encodings_is_one_vectorised_call():
    database = FaceDatabase(model=object(), rule="nearest")
    rows = unit_rows(100_000, seed=5)
    for start in range(0, 100_000, 10):
        database.add_encodings(f"person {start // 10}", rows[start : start + 10])
    query = rows[54_321] + 0.05 * unit_rows(1, seed=6)[0]
    query /= np.linalg.norm(query)
    database.closest(query)  # builds the (100000, 128) matrix once
    times = []
    for _ in range(5):  # the fastest of five: what the code costs, not what a busy machine adds
        started = time.perf_counter()
        match = database.closest(query)
        times.append(time.perf_counter() - started)
    seconds = min(times)
    print(f"\none query against 100,000 enrolled encodings: {1000 * seconds:.1f} ms")
    brute = np.linalg.norm(rows.astype(np.float64) - query, axis=1)
    assert match.identity == "person 5432" and match.distance == pytest.approx(brute.min(), abs=1e-6)
    # A Python loop over the 100,000 rows takes about 250 ms here; one matrix product about 12 ms.
    assert seconds < 0.1, f"matching took {seconds:.3f} s: is it still one vectorised computation?"
    # The same with one photo per person under the mean rule: 100,000 templates.
    singles = FaceDatabase(model=object())
    for index in range(0, 100_000, 97):
        singles.add_encodings(f"p{index}", rows[index])
    assert singles.closest(rows[97 * 3]) == Match("p291", 0.0, True)


def test_save_and_load_round_trip(tmp_path, course_database):
    database = FaceDatabase(model=object(), threshold=0.37, rule="nearest")
    database.add_encodings("ann", unit_rows(3, 0), photos=["a1.jpg", "a2.jpg", "a3.jpg"])
    database.add_encodings("bob", unit_rows(1, 1))
    database.add_encodings("ann", unit_rows(1, 2), photos=["a4.jpg"])
    path = tmp_path / "office"  # no suffix: the file keeps exactly this name
    assert database.save(path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["office"]  # no leftover temporary file
    loaded = FaceDatabase.load(path)
    assert loaded.names == ["ann", "bob"] and loaded.rule == "nearest" and loaded.threshold == 0.37
    assert loaded.photos_of("ann") == ["a1.jpg", "a2.jpg", "a3.jpg", "a4.jpg"]
    np.testing.assert_array_equal(loaded.encodings_of("ann"), database.encodings_of("ann"))
    queries = unit_rows(20, 9)
    assert loaded.closest(queries) == database.closest(queries)
    # The course database, overwritten in place, through a str path.
    course_database.save(str(path))
    loaded = FaceDatabase.load(str(path), model=course_database.model)
    assert loaded.names == course_database.names and repr(loaded) == repr(course_database)
    assert loaded.model is course_database.model
    # An empty database survives the trip too.
    FaceDatabase().save(tmp_path / "empty.npz")
    assert len(FaceDatabase.load(tmp_path / "empty.npz")) == 0


def write_database(path: Path, **changes) -> Path:
    """A saved database with some of its arrays replaced (None: removed)."""
    good = FaceDatabase(model=object())
    good.add_encodings("ann", unit_rows(2, 0))
    good.add_encodings("bob", unit_rows(1, 1))
    good.save(path)
    with np.load(path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": None}, "not a face database"),
        ({"format": np.array("something.else")}, "not a face database"),
        ({"version": np.array(7)}, "newer facerec"),
        ({"encodings": None}, r"damaged: it lacks \['encodings'\]"),
        ({"owners": np.array([0, 0, 5])}, "damaged: an encoding belongs to a person who is not listed"),
        ({"owners": np.array([0, 0, 0])}, "damaged: a person has no encoding"),
        ({"encodings": unit_rows(3, 0) * 2}, "damaged: its encodings are not unit length"),
        ({"names": np.array(["ann", "ann"])}, "damaged: a name is empty or appears twice"),
        ({"rule": np.array("median")}, "damaged: its rule 'median'"),
        ({"threshold": np.array(-0.4)}, "damaged: its threshold"),
        ({"photos": np.array(["x"])}, "damaged: the list of photos"),
        ({"feed": None}, r"damaged: it lacks \['feed'\]"),
        ({"feed": np.array("pixels")}, "damaged: its feed 'pixels'"),
    ],
)
def test_foreign_or_damaged_contents_raise_a_clear_error_naming_the_file(tmp_path, changes, message):
    path = write_database(tmp_path / "faces.npz", **changes)
    with pytest.raises(DatabaseFileError, match=message) as caught:
        FaceDatabase.load(path)
    assert "faces.npz" in str(caught.value)


def test_files_that_are_not_databases_raise_a_clear_error_naming_the_file(tmp_path):
    good = write_database(tmp_path / "good.npz")
    cases = {}
    cases["text.npz"] = "it is not a numpy .npz file"
    (tmp_path / "text.npz").write_text("names,encodings\nann,0.1\n")
    cases["empty.npz"] = "it is empty, 0 bytes"
    (tmp_path / "empty.npz").write_bytes(b"")
    cases["truncated.npz"] = "not a face database that can be read"
    (tmp_path / "truncated.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["array.npy"] = "single numpy array"
    np.save(tmp_path / "array.npy", unit_rows(2, 0))
    cases["objects.npz"] = "Python objects"
    np.savez(tmp_path / "objects.npz", format=np.array("facerec.FaceDatabase"), names=np.array([{"ann": 1}], dtype=object))
    cases["flipped.npz"] = "not a face database that can be read"
    corrupted = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        member = archive.getinfo("encodings.npy")
    corrupted[member.header_offset + 200 : member.header_offset + 260] = bytes(60)  # CRC no longer matches
    (tmp_path / "flipped.npz").write_bytes(bytes(corrupted))
    for name, message in cases.items():
        with pytest.raises(DatabaseFileError, match=message) as caught:
            FaceDatabase.load(tmp_path / name)
        assert name in str(caught.value), str(caught.value)
    with pytest.raises(DatabaseNotFoundError, match="No face database at .*missing.npz"):
        FaceDatabase.load(tmp_path / "missing.npz")
    with pytest.raises(FileNotFoundError, match="that is a folder"):
        FaceDatabase.load(tmp_path)


def test_many_queries_at_once_match_one_by_one():
    database = FaceDatabase(model=object(), rule="nearest")
    rows = unit_rows(60, seed=11)
    for index in range(0, 60, 3):
        database.add_encodings(f"p{index // 3}", rows[index : index + 3])
    queries = unit_rows(2500, seed=12)  # more than one chunk of 1024
    matches = database.closest(queries)
    brute = np.linalg.norm(queries[:, None, :].astype(np.float64) - rows[None], axis=-1)
    assert [match.identity for match in matches] == [f"p{row // 3}" for row in brute.argmin(axis=1)]
    np.testing.assert_allclose([match.distance for match in matches], brute.min(axis=1), atol=1e-6)
    assert database.closest_for_each(np.zeros((0, 128), np.float32)) == []
