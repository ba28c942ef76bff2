"""Smoke run of the LFW benchmark (bench/lfw_benchmark.py): 100 pairs, both pipelines, real models.

The full run (6,000 pairs, about half an hour on two cores) stays out of CI; this keeps its code
path working: the command line, both pipelines, the cache, the report files and their fields.
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

SMOKE_ARGUMENTS = ["--pairs-per-fold", "10", "--fallback-photos", "10"]


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
    assert "10-fold accuracy" in markdown and "## Targets" in markdown and "## Rules" in markdown
    assert (out / "lfw_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["pairs"] == 100 and 190 <= report["photos"] <= 200
    assert report["machine"]["logical_cpus"] >= 1 and report["date"]


def test_both_pipelines_are_sane_on_100_pairs(smoke_run):
    report, _, _, _ = smoke_run
    contenders = report["contenders"]
    assert set(contenders) == {"ours", "ours_alternative", "dlib"}
    for name, figures in contenders.items():
        assert 0.93 <= figures["ten_fold_accuracy"] <= 1.0, name
        assert 0.0 <= figures["ten_fold_std"] < 0.1, name
        assert len(figures["fold_accuracies"]) == 10 and len(figures["fold_thresholds"]) == 10, name
        assert figures["roc_auc"] > 0.98, name
        assert 0.5 <= figures["tar_at_far_1e-3"] <= 1.0, name
        assert 0.3 < figures["best_threshold_all_pairs"] < 0.6, name
        assert figures["photos"] == report["photos"] and figures["faces_encoded"] >= figures["photos"] - 5, name
        for rate in ("encodings_per_second", "detections_per_second", "pipeline_photos_per_second"):
            assert figures[rate] > 0, (name, rate)
        assert figures["timed_in_this_run"], name
    # Mirror averaging costs a second network pass per face, and the report says so.
    mirrored = [c for c in contenders.values() if c["network_passes_per_encoding"] == 2]
    assert len(mirrored) == 1
    assert {check["target"] for check in report["targets"]} >= {"our 10-fold accuracy >= 99.2%"}
    assert all(isinstance(check["met"], bool) for check in report["targets"])
    assert report["threshold"]["fold_thresholds"][0] <= report["threshold"]["fold_thresholds"][1]


def test_our_pipeline_in_the_benchmark_is_the_library_pipeline(smoke_run, encoding_model):
    """The cached encodings of 'ours' are what extract_faces_from_images gives for the same faces."""
    from facerec.encode import extract_faces_from_images

    _, _, cache, _ = smoke_run
    [stored] = cache.glob("lfw_ours_*.npz")
    with np.load(stored) as cached:
        photos, counts = cached["photos"].tolist(), cached["face_counts"]
        first_face = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sample = [i for i in range(len(photos)) if counts[i] >= 1][:4]
        faces = extract_faces_from_images(
            [ROOT / "data" / "lfw" / "lfw-deepfunneled" / photos[i] for i in sample], encoding_model)
        for i, found in zip(sample, faces):
            assert len(found) == counts[i], photos[i]
            library = found[0].encoding
            if lfw_benchmark.library_mirrors_by_default():
                benchmark = cached["mirrored_encodings"][first_face[i]]
            else:
                benchmark = cached["encodings"][first_face[i]]
            np.testing.assert_allclose(benchmark, library, atol=1e-5)
            np.testing.assert_allclose(cached["boxes"][first_face[i]], found[0].box, atol=1e-6)


def test_a_rerun_reuses_the_cache_and_gives_the_same_figures(smoke_run, tmp_path):
    report, _, cache, first_seconds = smoke_run
    started = time.perf_counter()
    again = lfw_benchmark.main([*SMOKE_ARGUMENTS, "--out", str(tmp_path), "--cache", str(cache)])
    assert time.perf_counter() - started < first_seconds / 2
    for name, figures in report["contenders"].items():
        assert again["contenders"][name]["ten_fold_accuracy"] == figures["ten_fold_accuracy"]
        assert again["contenders"][name]["encodings_per_second"] == pytest.approx(figures["encodings_per_second"])
        assert not again["contenders"][name]["timed_in_this_run"]  # speeds come from the cached run
    assert "come from the cache" in (tmp_path / "lfw_benchmark.md").read_text()
