"""Threshold calibration on small cases worked out by hand, and the LFW pairs-file reader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facerec.calibrate import (
    PairsFileError,
    best_threshold,
    read_lfw_pairs,
    roc_curve,
    tar_at_far,
    ten_fold_accuracy,
)

ROOT = Path(__file__).resolve().parent.parent
LFW_PAIRS = ROOT / "data" / "lfw" / "pairs.txt"


def test_separable_distances_give_accuracy_one_with_the_threshold_between_the_classes():
    distances = [0.2, 0.1, 0.3, 0.7, 0.9, 0.8]
    same = [True, True, True, False, False, False]
    threshold, accuracy = best_threshold(distances, same)
    assert accuracy == 1.0
    assert threshold == pytest.approx(0.5)  # midpoint of the gap 0.3 .. 0.7


def test_overlapping_classes_give_the_best_count_and_the_smallest_of_equal_thresholds():
    # Sorted: 0.1 G, 0.2 G, 0.3 I, 0.4 G, 0.5 I, 0.6 I. Cutting after 0.2 or after 0.4 both
    # classify 5 of 6 right; the smaller cut (0.25) must win.
    distances = [0.4, 0.1, 0.6, 0.3, 0.2, 0.5]
    same = [True, True, False, False, True, False]
    threshold, accuracy = best_threshold(distances, same)
    assert accuracy == pytest.approx(5 / 6)
    assert threshold == pytest.approx(0.25)


def test_the_decision_is_strictly_below_the_threshold_and_ties_move_together():
    # Two pairs at the same distance, one of each kind: no threshold separates them.
    threshold, accuracy = best_threshold([0.3, 0.3, 0.1, 0.9], [True, False, True, False])
    assert accuracy == pytest.approx(3 / 4)
    assert threshold == pytest.approx(0.2)  # accepting the tie adds one right and one wrong
    # Only genuine pairs: accepting everything is right, and the threshold is above every distance.
    threshold, accuracy = best_threshold([0.5, 0.7], [1, 1])
    assert accuracy == 1.0 and threshold > 0.7
    # Only impostor pairs: accepting nothing is right.
    threshold, accuracy = best_threshold([0.5, 0.7], [0, 0])
    assert accuracy == 1.0 and threshold <= 0.5


def test_best_threshold_refuses_bad_input_with_a_clear_message():
    with pytest.raises(ValueError, match="NaN"):
        best_threshold([0.1, np.nan], [True, False])
    with pytest.raises(ValueError, match="2 distances but 3 labels"):
        best_threshold([0.1, 0.2], [True, False, True])
    with pytest.raises(ValueError, match="no pairs"):
        best_threshold([], [])
    with pytest.raises(ValueError, match="True/False"):
        best_threshold([0.1, 0.2], [2, 0])


def test_roc_of_a_known_case():
    # Genuine 0.1, 0.4; impostor 0.3, 0.5. Of the 4 genuine/impostor combinations, 3 have the
    # genuine pair closer (0.1<0.3, 0.1<0.5, 0.4<0.5): AUC = 3/4.
    curve = roc_curve([0.1, 0.3, 0.4, 0.5], [True, False, True, False])
    np.testing.assert_allclose(curve.far, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(curve.tar, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(curve.thresholds[:4], [0.1, 0.2, 0.35, 0.45])
    assert curve.thresholds[4] > 0.5
    assert curve.auc == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half_and_matches_the_pairwise_definition():
    rng = np.random.default_rng(7)
    genuine = np.round(rng.normal(0.35, 0.08, 300), 2)  # rounding makes many ties
    impostor = np.round(rng.normal(0.6, 0.08, 400), 2)
    distances = np.concatenate([genuine, impostor])
    same = np.r_[np.ones(300, bool), np.zeros(400, bool)]
    closer = (genuine[:, None] < impostor[None, :]).mean()
    tied = (genuine[:, None] == impostor[None, :]).mean()
    curve = roc_curve(distances, same)
    assert curve.auc == pytest.approx(closer + tied / 2, abs=1e-12)
    assert np.all(np.diff(curve.far) >= 0) and np.all(np.diff(curve.tar) >= 0)
    # Every point of the curve is what its threshold really does.
    for far, tar, threshold in zip(curve.far, curve.tar, curve.thresholds):
        assert tar == np.mean(genuine < threshold) and far == np.mean(impostor < threshold)
    # All tied: the curve is the diagonal.
    assert roc_curve([0.4, 0.4], [True, False]).auc == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both kinds"):
        roc_curve([0.1, 0.2], [True, True])


def test_tar_at_far_picks_the_best_point_within_the_budget():
    distances = [0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7]
    same = [True, True, False, True, True, False, False, False]
    # No stranger may pass: only 0.1 and 0.2 are below every impostor.
    tar, far, threshold = tar_at_far(distances, same, far=0.0)
    assert (tar, far) == (0.5, 0.0) and 0.2 < threshold <= 0.3
    # One stranger in four (0.3) may pass: then all four genuine pairs pass.
    tar, far, threshold = tar_at_far(distances, same, far=0.25)
    assert (tar, far) == (1.0, 0.25) and 0.4 < threshold <= 0.5
    with pytest.raises(ValueError, match="between 0 and 1"):
        tar_at_far(distances, same, far=5)


def test_ten_fold_accuracy_follows_the_protocol():
    # Folds 0..9; in fold 3, one genuine pair is far (1.5) and cannot be recognised.
    rng = np.random.default_rng(0)
    folds = np.repeat(np.arange(10), 20)
    same = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 10)
    distances = np.where(same, rng.uniform(0.1, 0.4, 200), rng.uniform(0.6, 1.0, 200))
    distances[3 * 20] = 1.5
    result = ten_fold_accuracy(distances, same, folds)
    expected = np.ones(10)
    expected[3] = 19 / 20
    np.testing.assert_allclose(result.accuracies, expected)
    assert result.mean == pytest.approx(expected.mean())
    assert result.std == pytest.approx(np.std(expected, ddof=1))
    assert result.standard_error == pytest.approx(np.std(expected, ddof=1) / np.sqrt(10))
    # Each fold's threshold comes from the nine others: it separates those perfectly.
    for fold, threshold in enumerate(result.thresholds):
        others = folds != fold
        assert np.max(distances[others & same & (distances < 1.0)]) < threshold < np.min(distances[others & ~same])
    with pytest.raises(ValueError, match="two folds"):
        ten_fold_accuracy([0.1, 0.9], [True, False], [0, 0])


def test_the_threshold_of_held_out_folds_is_not_fitted_on_them():
    # Fold 0 alone is shifted: the other folds put the threshold at 0.5, which fails all of fold 0's
    # impostors (0.45), while a threshold fitted on fold 0 itself would score it 100%.
    distances = np.r_[[0.40, 0.45], np.tile([0.2, 0.8], 4)]
    same = np.r_[[True, False], np.tile([True, False], 4)]
    folds = np.r_[[0, 0], np.repeat([1, 2, 3, 4], 2)]
    result = ten_fold_accuracy(distances, same, folds)
    assert result.accuracies[0] == 0.5
    assert result.thresholds[0] == pytest.approx(0.5)


def test_read_lfw_pairs_reads_the_installed_file():
    pairs = read_lfw_pairs(LFW_PAIRS)
    assert len(pairs) == 6000
    assert [sum(p.fold == fold for p in pairs) for fold in range(10)] == [600] * 10
    assert sum(p.same for p in pairs) == 3000
    first, last = pairs[0], pairs[-1]
    assert (first.first, first.second, first.same, first.fold) == (
        "Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg", True, 0)
    assert last.same is False and last.fold == 9
    # Every photo a pair names is installed.
    folder = LFW_PAIRS.parent / "lfw-deepfunneled"
    assert all((folder / p.first).is_file() and (folder / p.second).is_file() for p in pairs[::97])


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("truncated.txt", "2\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\n", "truncated.txt.*3 pair lines.*4"),
        ("shuffled.txt", "1\t1\nA\t1\tB\t1\nA\t1\t2\n", "Line 2 .*shuffled.txt.*matched pair line of fold 1"),
        ("headless.txt", "A\t1\t2\n", "headless.txt.*header"),
        ("words.txt", "1\t1\nA\tone\t2\nA\t1\tB\t1\n", "Line 2 .*whole photo numbers"),
    ],
)
def test_read_lfw_pairs_rejects_broken_files_naming_them(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(PairsFileError, match=message):
        read_lfw_pairs(tmp_path / name)


def test_read_lfw_pairs_of_a_small_file_and_of_no_file(tmp_path):
    with pytest.raises(PairsFileError, match="nowhere.txt"):
        read_lfw_pairs(tmp_path / "nowhere.txt")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("1\t1\nAl_Gore\t1\t3\nAl_Gore\t2\tBo_Li\t10\n")
    assert [(p.first, p.second, p.same, p.fold) for p in read_lfw_pairs(tiny)] == [
        ("Al_Gore/Al_Gore_0001.jpg", "Al_Gore/Al_Gore_0003.jpg", True, 0),
        ("Al_Gore/Al_Gore_0002.jpg", "Bo_Li/Bo_Li_0010.jpg", False, 0),
    ]
