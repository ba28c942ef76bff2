"""Shared fixtures: the encoding model and the MTCNN detector are loaded once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the project's modules (facerec, fr_utils) whatever the cwd

import numpy as np
import pytest

IMAGES = ROOT / "images"
CAMERA_OWNERS = {
    "camera_0": "younes",
    "camera_1": "bertrand",
    "camera_2": "benoit",
    "camera_3": "bertrand",
    "camera_4": "dan",
    "camera_5": "arnaud",
}
DATABASE_PEOPLE = [
    "andrew", "arnaud", "benoit", "bertrand", "dan", "danielle",
    "felix", "kevin", "kian", "sebastiano", "tian", "younes",
]


def course_photo(name: str) -> Path:
    """Path of a course photo by name (all are .jpg except danielle.png)."""
    return IMAGES / (f"{name}.png" if name == "danielle" else f"{name}.jpg")


@pytest.fixture(scope="session")
def course_photos() -> dict[str, Path]:
    """The 18 course photos by name: 6 camera shots and 12 database photos."""
    names = list(CAMERA_OWNERS) + DATABASE_PEOPLE
    return {name: course_photo(name) for name in names}


@pytest.fixture(scope="session")
def encoding_model():
    """dlib's ResNet (dlib-resnet-h5), the package's second network for real photos, loaded once."""
    from facerec.encode import load_model

    return load_model(ROOT / "dlib-resnet-h5")


@pytest.fixture(scope="session")
def course_model():
    """The course's FaceNet (keras-facenet-h5), loaded once."""
    from facerec.encode import load_model

    return load_model(ROOT / "keras-facenet-h5")


@pytest.fixture(scope="session")
def photo_model():
    """The real-photo tools' default model: the course's FaceNet fed as FaceNet was trained (load_photo_model())."""
    from facerec.encode import load_photo_model

    return load_photo_model()


@pytest.fixture(scope="session")
def photo_encodings(course_photos, photo_model, detector) -> dict[str, np.ndarray]:
    """Encoding (128,) of every course photo by the default photo pipeline, from one encode_images call."""
    from facerec.encode import encode_images

    names = list(course_photos)
    rows = encode_images([course_photos[name] for name in names], photo_model)
    return dict(zip(names, rows))


@pytest.fixture(scope="session")
def detector():
    """facerec's process-wide MTCNN detector, built once."""
    from facerec.align import get_detector

    return get_detector()


@pytest.fixture(scope="session")
def course_encodings(course_photos, encoding_model, detector) -> dict[str, np.ndarray]:
    """Encoding (128,) of every course photo by dlib's ResNet, from one batched encode_images call."""
    from facerec.encode import encode_images

    names = list(course_photos)
    rows = encode_images([course_photos[name] for name in names], encoding_model)
    return dict(zip(names, rows))


# `make test` runs the files on two workers (pytest-xdist, --dist loadfile: each file's tests stay
# in one process, so its module fixtures are built once). A worker takes the next file when it is
# done with one, so the long files go first; the rest keep their usual order. Seconds: each
# file's tests summed in the clean-clone CI rehearsal of 2026-11-30 (two processes, so each figure
# includes the other process's load); only the order matters.
LONG_FILES = {
    "test_browser.py": 375, "test_grader_hostile.py": 375, "test_grader_parallel.py": 241, "test_hub.py": 201,
    "test_lms.py": 186, "test_grading.py": 171, "test_grader_cluster.py": 94, "test_going_further.py": 90,
    "test_bench_smoke.py": 71, "test_notebook.py": 60, "test_roster.py": 45, "test_triplet_training.py": 34,
}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -LONG_FILES.get(item.path.name, 0))  # stable: the same order on every worker
