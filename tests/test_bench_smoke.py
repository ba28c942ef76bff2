"""Smoke run of the LFW benchmark (bench/lfw_benchmark.py): 40 pairs, every column, real models.

The full run (6,000 pairs, about half an hour on two cores) stays out of CI; this keeps its code
path working: the command line, both pipelines and every column (dlib's ResNet and the course's
FaceNet on MTCNN's faces, dlib's own pipeline), the cache, the report files and their fields.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import lfw_benchmark  # noqa: E402

SMOKE_ARGUMENTS = ["--pairs-per-fold", "4", "--fallback-photos", "10"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """(report dict, out folder, cache folder, seconds) of one fresh run from the command line."""
    folder = tmp_path_factory.mktemp("lfw_benchmark")
    out, cache = folder / "out", folder / "cache"
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lfw_benchmark.py"), *SMOKE_ARGUMENTS, "--out", str(out), "--cache", str(cache)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    seconds = time.perf_counter() - started
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads((out / "lfw_benchmark.json").read_text()), out, cache, seconds


def test_the_report_files_are_written(smoke_run):
    report, out, _, _ = smoke_run
    markdown = (out / "lfw_benchmark.md").read_text()
    assert all(part in markdown for part in ("10-fold accuracy", "## Targets", "## Thresholds", "## Rules", "Best on LFW"))
    assert (out / "lfw_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["pairs"] == 40 and 76 <= report["photos"] <= 80
    assert report["machine"]["logical_cpus"] >= 1 and report["date"]


RESNET_COLUMNS = {"ours", "ours_alternative", "dlib"}  # dlib's ResNet: distances around 0.4
COURSE_COLUMNS = {"course", "course_mirrored", "facenet", "facenet_mirrored"}  # the course's FaceNet


def test_every_column_is_sane_on_40_pairs(smoke_run):
    report, _, _, _ = smoke_run
    contenders = report["contenders"]
    assert set(contenders) == RESNET_COLUMNS | COURSE_COLUMNS
    for name, figures in contenders.items():
        # The course network fed as the course fed it is the weakest column: a looser floor.
        assert (0.8 if name.startswith("course") else 0.93) <= figures["ten_fold_accuracy"] <= 1.0, name
        assert 0.0 <= figures["ten_fold_std"] < 0.2, name
        assert len(figures["fold_accuracies"]) == 10 and len(figures["fold_thresholds"]) == 10, name
        assert figures["roc_auc"] > (0.9 if name.startswith("course") else 0.98), name
        assert 0.3 <= figures["tar_at_far_1e-3"] <= 1.0, name
        low, high = (0.6, 1.5) if name in COURSE_COLUMNS else (0.3, 0.6)
        assert low < figures["best_threshold_all_pairs"] < high, name
        assert figures["photos"] == report["photos"] and figures["faces_encoded"] >= figures["photos"] - 5, name
        for rate in ("encodings_per_second", "detections_per_second", "pipeline_photos_per_second"):
            assert figures[rate] > 0, (name, rate)
        assert figures["timed_in_this_run"], name
    # The MTCNN columns share one detection per photo, hence the same faces and detection time...
    mtcnn = [contenders[name] for name in contenders if name != "dlib"]
    assert len({c["faces_encoded"] for c in mtcnn}) == 1
    assert len({round(c["stage_seconds"]["detect"], 9) for c in mtcnn}) == 1
    # ...and each counts only its own encoding: mirror averaging costs a second network pass per face.
    mirrored = {name for name, c in contenders.items() if c["network_passes_per_encoding"] == 2}
    assert mirrored == {"course_mirrored", "facenet_mirrored", "ours" if lfw_benchmark.library_mirrors_by_default()
                        else "ours_alternative"}
    for single, double in (("course", "course_mirrored"), ("facenet", "facenet_mirrored")):
        assert contenders[single]["stage_seconds"]["encode"] < contenders[double]["stage_seconds"]["encode"]
    assert {check["target"] for check in report["targets"]} >= {"our 10-fold accuracy >= 99.2%"}
    assert all(isinstance(check["met"], bool) for check in report["targets"])
    thresholds = report["thresholds"]
    assert set(thresholds) == set(contenders) - {"dlib"}
    for name, figures in thresholds.items():
        assert figures["threshold"] == (0.7 if name in COURSE_COLUMNS else pytest.approx(0.42, abs=0.1)), name
        assert figures["fold_thresholds"][0] <= figures["fold_thresholds"][1]
        assert 0 <= figures["far"] <= 1 and 0 <= figures["tar"] <= 1 and 0.5 <= figures["accuracy"] <= 1, name
    assert report["best_on_lfw"] == report["ranking"][0] and set(report["ranking"]) == set(contenders)


def test_our_pipeline_in_the_benchmark_is_the_library_pipeline(smoke_run):
    """The cached encodings of 'ours' are what extract_faces_from_images gives for the same faces with
    dlib's ResNet, and those of the course-fed column what img_to_encoding gives for the face's crop."""
    from PIL import Image

    from facerec.encode import DLIB_MODEL_FOLDER, extract_faces_from_images, img_to_encoding, load_model
    from facerec.images import load_image

    _, _, cache, _ = smoke_run
    [stored] = cache.glob("lfw_ours_*.npz")
    photo_model, course_model = load_model(DLIB_MODEL_FOLDER), load_model("keras-facenet-h5")
    with np.load(stored) as cached:
        photos, counts = cached["photos"].tolist(), cached["face_counts"]
        first_face = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sample = [i for i in range(len(photos)) if counts[i] >= 1][:4]
        paths = [ROOT / "data" / "lfw" / "lfw-deepfunneled" / photos[i] for i in sample]
        faces = extract_faces_from_images(paths, photo_model)
        default = "encodings_mirrored" if lfw_benchmark.library_mirrors_by_default() else "encodings_plain"
        for i, path, found in zip(sample, paths, faces):
            assert len(found) == counts[i], photos[i]
            np.testing.assert_allclose(cached[default][first_face[i]], found[0].encoding, atol=1e-5)
            np.testing.assert_allclose(cached["boxes"][first_face[i]], found[0].box, atol=1e-6)
        # The course fed whole face photos to img_to_encoding: give it the squared box, cut losslessly.
        i, path = sample[0], paths[0]
        box = cached["boxes"][first_face[i]]
        picture = load_image(path, jpeg_decoder="libjpeg9")
        x, y, w, h = box
        side = max(w, h)
        left, top = max(round(x + w / 2 - side / 2), 0), max(round(y + h / 2 - side / 2), 0)
        cut = picture[top : round(y + h / 2 + side / 2), left : round(x + w / 2 + side / 2)]
        png = cache / "face.png"
        Image.fromarray(cut).save(png)
        np.testing.assert_allclose(cached["encodings_course"][first_face[i]], img_to_encoding(png, course_model)[0],
                                   atol=1e-5)
        for name in ("plain", "mirrored", "course", "course_mirrored", "facenet", "facenet_mirrored"):
            np.testing.assert_allclose(np.linalg.norm(cached["encodings_" + name], axis=1), 1, atol=1e-5)


def test_a_rerun_reuses_the_cache_and_gives_the_same_figures(smoke_run, tmp_path):
    report, _, cache, first_seconds = smoke_run
    started = time.perf_counter()
    again = lfw_benchmark.main([*SMOKE_ARGUMENTS, "--out", str(tmp_path), "--cache", str(cache)])
    assert time.perf_counter() - started < first_seconds / 2
    for name, figures in report["contenders"].items():
        assert again["contenders"][name]["ten_fold_accuracy"] == figures["ten_fold_accuracy"], name
        assert again["contenders"][name]["encodings_per_second"] == pytest.approx(figures["encodings_per_second"])
        assert not again["contenders"][name]["timed_in_this_run"]  # speeds come from the cached run
    assert "come from the cache" in (tmp_path / "lfw_benchmark.md").read_text()
