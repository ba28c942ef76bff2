"""The notebook's ungraded "Going further" cells (tagged going-further) run in order and show what they say."""
from __future__ import annotations

import ast
import os

import matplotlib
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.patches import Rectangle  # noqa: E402


def going_further_cells() -> list[tuple[str, str]]:
    """The section's (kind, source) cells, read from the source notebook (tag "going-further")."""
    import nbformat

    from grader.grading.pipeline import SOURCE_NOTEBOOK

    notebook = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    return [(cell.cell_type, cell.source) for cell in notebook.cells
            if "going-further" in cell.metadata.get("tags", [])]


def test_cells_are_well_formed_and_short():
    cells = going_further_cells()
    assert cells[0][0] == "markdown" and cells[0][1].startswith("## Going further")
    for kind, source in cells:
        assert kind in ("markdown", "code") and source.strip()
        if kind == "code":
            ast.parse(source)  # a syntax error would otherwise only show in the notebook
        assert len(source.splitlines()) <= 30, f"a cell should hold one idea:\n{source[:200]}"


@pytest.fixture(scope="module")
def executed(detector):
    """The namespace after running every code cell, and the figures each plt.show() showed."""
    shown = []

    def show(*args, **kwargs):
        shown.append(plt.gcf())

    namespace: dict = {"__name__": "__main__"}
    previous_directory, previous_show = os.getcwd(), plt.show
    os.chdir(ROOT)  # the notebook runs in the project folder
    plt.show = show
    try:
        for kind, source in going_further_cells():
            if kind == "code":
                figures_before = len(shown)
                exec(compile(source, "<going further cell>", "exec"), namespace)
                if len(shown) > figures_before:
                    namespace.setdefault("_figures", []).extend(shown[figures_before:])
                plt.figure()  # a fresh current figure for the next cell, as a notebook gives
    finally:
        plt.show = previous_show
        os.chdir(previous_directory)
    yield namespace, shown
    plt.close("all")


def test_the_section_uses_the_photo_pipeline_and_its_threshold(executed):
    """The course's FaceNet fed as FaceNet was trained, at the threshold measured for that feeding."""
    from facerec.encode import FACENET_THRESHOLD, feed_of

    namespace, _ = executed
    assert namespace["face_model"].name == "inception_resnet_v1" and feed_of(namespace["face_model"]) == "facenet"
    assert namespace["PHOTO_THRESHOLD"] == FACENET_THRESHOLD == 1.10
    assert namespace["five_photos"].threshold == namespace["course"].threshold == 1.10


def test_detection_figure_draws_every_face_with_its_landmarks(executed):
    namespace, shown = executed
    faces = namespace["faces"]
    assert len(faces) == 3
    assert [face.box[2] * face.box[3] for face in faces] == sorted((f.box[2] * f.box[3] for f in faces), reverse=True)
    axis = shown[0].axes[0]
    assert sum(isinstance(patch, Rectangle) for patch in axis.patches) == 3
    assert len(axis.lines) == 3 and all(len(line.get_xdata()) == 5 for line in axis.lines)
    assert len(namespace["big_faces"]) == 1  # only Hans Blix's face is 120 pixels or more


def test_chip_grid_shows_six_photos_with_box_and_margin_and_six_network_inputs(executed):
    _, shown = executed
    axes = shown[1].axes
    assert len(axes) == 12
    assert [axis.images[0].get_array().shape[:2] for axis in axes[:6]] == [(96, 96)] * 6
    assert [axis.images[0].get_array().shape[:2] for axis in axes[6:]] == [(160, 160)] * 6
    for axis in axes[:6]:  # the box, and the box grown by 16 pixels on each side
        box, margin = axis.patches
        assert (margin.get_width() - box.get_width(), margin.get_height() - box.get_height()) == (32, 32)


def test_five_photos_per_person_bring_test_photos_closer(executed):
    namespace, shown = executed
    before, after = namespace["before"], namespace["after"]
    assert len(before) == len(after) == 50
    assert np.median(after) < np.median(before)
    assert np.mean(after < before) > 0.7
    assert np.all(after < namespace["PHOTO_THRESHOLD"])
    assert len(shown[2].axes[0].lines) >= 50  # one line per test photo
    assert namespace["reloaded"].names == namespace["people"]


def test_the_folder_table_has_one_row_per_face_or_per_problem(executed):
    namespace, _ = executed
    table = namespace["table"]
    rows = {(row.file, None if pd.isna(row.face) else int(row.face)): row for row in table.itertuples()}
    assert len(namespace["table"]) == 9
    for name in ["Colin_Powell", "Hugo_Chavez", "Serena_Williams", "Tony_Blair"]:
        assert rows[(f"{name}.jpg", 0)].identity == name
    assert rows[("two_people.jpg", 0)].identity == "Hans_Blix"
    assert rows[("two_people.jpg", 1)].identity == "unknown"
    assert rows[("stranger.jpg", 0)].identity == "unknown"
    assert rows[("wall.png", None)].status == "no face"
    assert rows[("notes.jpg", None)].status == "unreadable"
    assert set(table.status) == {"ok", "no face", "unreadable"}
    assert not namespace["work_folder"].exists()  # the last cell cleans up


def test_calibration_on_200_pairs_supports_the_threshold(executed):
    namespace, shown = executed
    assert len(namespace["pairs"]) == 200 and namespace["same"].sum() == 100
    assert namespace["accuracy"] >= 0.97
    assert abs(namespace["threshold"] - namespace["PHOTO_THRESHOLD"]) < 0.05
    assert np.mean((namespace["distances"] < namespace["PHOTO_THRESHOLD"]) == namespace["same"]) >= 0.97
    histogram, roc = shown[3].axes
    assert len(histogram.patches) == 80  # two histograms of 40 bins
    assert namespace["curve"].auc > 0.98 and len(roc.lines) == 2


def test_strangers_against_the_twelve_course_people(executed):
    namespace, shown = executed
    assert namespace["course"].names == ["andrew", "arnaud", "benoit", "bertrand", "dan", "danielle", "felix",
                                         "kevin", "kian", "sebastiano", "tian", "younes"]
    matches, let_in = namespace["matches"], namespace["let_in"]
    assert len(matches) >= 195
    # The text says "about 1 stranger in 20" (9 of 199 when written; 22 of 199 with dlib's ResNet).
    assert 0.025 <= len(let_in) / len(matches) <= 0.075
    assert all(match.distance < namespace["PHOTO_THRESHOLD"] for match in let_in)
    assert len(shown[4].axes[0].patches) == 30
    assert len(shown) == 5
