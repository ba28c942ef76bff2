"""The course's FaceNet, fed as the course fed it, gives the course's published numbers.

The expected distances between all 18 course photos are in tests/data/course_network_distances.csv,
written once by this module (FACEREC_UPDATE_DISTANCES=1 .venv/bin/python -m pytest
tests/test_course_network.py) and committed; every run compares with it. The course's own three
published outputs are checked against the numbers it printed, to 1e-6.
"""
import csv
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import CAMERA_OWNERS, DATABASE_PEOPLE, ROOT, course_photo

TABLE = Path(__file__).parent / "data" / "course_network_distances.csv"
NAMES = list(CAMERA_OWNERS) + DATABASE_PEOPLE
# What the course printed (verify and who_is_it), with the weights this package installs.
PUBLISHED = {("camera_0", "younes"): 0.5992949, ("camera_2", "kian"): 1.0259346, ("younes", "younes"): 0.0}


@pytest.fixture(scope="module")
def encodings(course_model):
    """Each course photo through the notebook's own helper, one call per photo as the notebook does."""
    import fr_utils

    return {name: fr_utils.img_to_encoding(str(course_photo(name)), course_model)[0] for name in NAMES}


def distance(encodings, a, b) -> float:
    return float(np.linalg.norm(encodings[a] - encodings[b]))


def test_the_model_is_the_courses_network(course_model):
    assert course_model.name == "inception_resnet_v1"
    assert course_model.input_shape == (None, 160, 160, 3) and course_model.output_shape == (None, 128)
    assert course_model.count_params() == 22_808_144


def test_the_courses_published_numbers(encodings):
    for (a, b), published in PUBLISHED.items():
        assert abs(distance(encodings, a, b) - published) <= 1e-6, (a, b, distance(encodings, a, b))


def test_every_course_photo_against_the_committed_table(encodings):
    if os.environ.get("FACEREC_UPDATE_DISTANCES") == "1":
        with open(TABLE, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["photo", *NAMES])
            for a in NAMES:
                writer.writerow([a, *(f"{distance(encodings, a, b):.7f}" for b in NAMES)])
    with open(TABLE, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["photo", *NAMES]
    assert [row[0] for row in rows[1:]] == NAMES
    for row in rows[1:]:
        for b, expected in zip(NAMES, row[1:]):
            assert abs(distance(encodings, row[0], b) - float(expected)) <= 2e-6, (row[0], b)


def test_the_course_threshold_and_feeding(course_model):
    import fr_utils
    from facerec.original_model import model_info

    info = model_info(course_model)
    assert fr_utils.DISTANCE_THRESHOLD == fr_utils.distance_threshold(course_model) == 0.7
    assert (info.align, info.resample, info.jpeg_decoder, info.pixel_scale) == (False, "nearest", "libjpeg9", 1 / 255)


def test_pillows_decoder_would_move_the_fourth_digit(course_model, encodings):
    """Why img_to_encoding decodes JPEGs with IJG libjpeg 9: libjpeg-turbo's pixels give another distance."""
    import fr_utils
    from facerec.images import load_image

    turbo = {name: fr_utils.img_to_encoding(load_image(course_photo(name)), course_model)[0]
             for name in ("camera_0", "younes")}
    moved = abs(distance(turbo, "camera_0", "younes") - distance(encodings, "camera_0", "younes"))
    assert 1e-3 < moved < 1e-2


def test_the_notebooks_plain_keras_load_gives_the_same_network(course_model):
    """model_from_json + load_weights, as the notebook loads it, without any of our code."""
    import tensorflow as tf

    folder = ROOT / "keras-facenet-h5"
    plain = tf.keras.models.model_from_json((folder / "model.json").read_text())
    plain.load_weights(str(folder / "model.h5"))
    batch = np.random.default_rng(0).uniform(0, 1, (2, 160, 160, 3)).astype(np.float32)
    np.testing.assert_array_equal(plain.predict_on_batch(batch), course_model.predict_on_batch(batch))
