"""The course network: same layout as the course's model.json, same outputs, weights loaded by name.

Synthetic weights are written in the exact Keras-2 HDF5 layout derived from the course's
model.json (into pytest's tmp folder, never committed), so that every weight is known to land in
its place; the real weights and the course's published numbers are tested in test_course_network.py.
Two builds are compared: `inception_blocks_v2` loaded by name with `facerec.original_model`,
and the model.json itself read by Keras's deserialiser and loaded by Keras's own legacy
(topological) loader.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import inception_blocks_v2 as blocks  # noqa: E402
from facerec import original_model as om  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
DLIB_MODEL_DIR = ROOT / "dlib-resnet-h5"
TOLERANCE = 1e-5
LAMBDA_COUNT, LAYER_COUNT, WEIGHT_COUNT = 21, 426, 490
PARAMETER_COUNT = 22_808_144


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` (it installs the course assets) first.")
    return path


@pytest.fixture(scope="module")
def reference():
    return om.read_model_json(_require(om.REFERENCE_JSON))


@pytest.fixture(scope="module")
def layout(reference):
    return om.weight_layout_from_model_json(reference)


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory, reference, layout):
    """~92 MB of synthetic weights in Keras 2.4's `model.save("model.h5")` layout."""
    path = tmp_path_factory.mktemp("original") / "model.h5"
    yield om.write_keras2_weights(path, reference, om.synthetic_weights(layout, seed=0))
    path.unlink()  # pytest keeps its last temporary folders: do not leave 92 MB behind


@pytest.fixture
def scratch(tmp_path):
    """A temporary folder whose weight files (copies of ~92 MB) are deleted after the test."""
    yield tmp_path
    for big in tmp_path.glob("*.h5"):
        big.unlink()


@pytest.fixture(scope="module")
def network(synthetic_file):
    model = om.build_original_network()
    report = om.load_original_weights(model, synthetic_file)
    return model, report


@pytest.fixture(scope="module")
def json_model(synthetic_file):
    """The course's model.json through Keras's deserialiser, weights by Keras's own legacy loader."""
    from keras.src.legacy.saving import legacy_h5_format

    model = om.build_from_model_json(om.REFERENCE_JSON)
    with h5py.File(synthetic_file, "r") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f["model_weights"], model)
    return model


@pytest.fixture(scope="module")
def course_pixels():
    """The 18 course photos as the course fed them: RGB (JPEGs by IJG libjpeg 9), nearest-neighbour
    resize to 160x160, divided by 255."""
    from facerec.images import load_image

    paths = sorted(_require(IMAGES).iterdir())
    assert len(paths) == 18
    return np.stack([np.asarray(Image.fromarray(load_image(p, jpeg_decoder="libjpeg9")).resize((160, 160), Image.NEAREST))
                     for p in paths]).astype(np.float32) / np.float32(255)


def _stored_arrays(path) -> dict[str, tuple]:
    """Every dataset of an HDF5 file: path -> shape (walked independently of the loader)."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj.shape)
                     if isinstance(obj, h5py.Dataset) else None)
    return found


def _copy(src, tmp_path, name="model.h5") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


# --- the course's model.json ----------------------------------------------------------------

def test_each_lambda_is_a_scaled_residual_sum(reference):
    lambdas = [layer for layer in reference["config"]["layers"] if layer["class_name"] == "Lambda"]
    assert len(reference["config"]["layers"]) == LAYER_COUNT and len(lambdas) == LAMBDA_COUNT
    for layer in lambdas:
        assert om.lambda_expression(layer["config"]["function"]) == om.SCALE_SUM_EXPRESSION
    scales = {layer["name"]: layer["config"]["arguments"]["scale"] for layer in lambdas}
    expected = {**{f"Block35_{i}_ScaleSum": blocks.BLOCK35_SCALE for i in range(1, 6)},
                **{f"Block17_{i}_ScaleSum": blocks.BLOCK17_SCALE for i in range(1, 11)},
                **{f"Block8_{i}_ScaleSum": blocks.BLOCK8_SCALE for i in range(1, 6)},
                "Block8_6_ScaleSum": 1.0}
    assert scales == pytest.approx(expected)


def test_a_different_lambda_is_refused(reference, tmp_path):
    import base64

    layers = reference["config"]["layers"]
    lam = next(layer for layer in layers if layer["class_name"] == "Lambda")
    code = bytearray(base64.b64decode(lam["config"]["function"][0]))
    at = code.index(bytes([0x14, 0x00, 0x17, 0x00]))  # BINARY_MULTIPLY, BINARY_ADD
    code[at] = 0x1B  # BINARY_TRUE_DIVIDE: inputs[0] + inputs[1] / scale
    assert om.lambda_expression([base64.b64encode(bytes(code)).decode(), None, None]) == \
        "inputs[0] + inputs[1] / scale"
    edited = {**reference, "config": {**reference["config"], "layers": [
        {**layer, "config": {**layer["config"], "function": [base64.b64encode(bytes(code)).decode(), None, None]}}
        if layer is lam else layer for layer in layers]}}
    path = tmp_path / "model.json"
    path.write_text(json.dumps(edited))
    with pytest.raises(om.OriginalModelJsonError, match=f"{lam['name']} computes inputs\\[0\\] \\+ inputs\\[1\\] / scale"):
        om.build_from_model_json(path)


# --- structure: names, shapes, graph --------------------------------------------------------

def test_weight_names_and_shapes_match_model_json_one_to_one(network, layout):
    model, _ = network
    ours = {layer.name: [(w.name, tuple(w.shape)) for w in layer.weights]
            for layer in model.layers if layer.weights}
    assert ours == layout  # same layers, same weights in the same order, same shapes
    assert sum(len(weights) for weights in layout.values()) == WEIGHT_COUNT
    assert model.count_params() == PARAMETER_COUNT
    assert model.input_shape == (None, 160, 160, 3) and model.output_shape == (None, 128)


def test_layers_and_connections_match_model_json(network, json_model, reference):
    model, _ = network
    original = [layer["name"] for layer in reference["config"]["layers"]]
    ours = {layer.name: layer for layer in model.layers}
    extra = set(ours) - set(original)
    residuals = {name[:-len("_ScaleSum")] for name in original if name.endswith("_ScaleSum")}
    assert not set(original) - set(ours)
    assert extra == {f"{block}_Scale" for block in residuals}
    assert all(type(ours[name]).__name__ == "Rescaling" and not ours[name].weights for name in extra)

    def inbound(layer):
        """Names of the layers feeding `layer`, looking through the weightless extra Rescalings."""
        names = []
        for tensor in layer._inbound_nodes[0].input_tensors:
            source = tensor._keras_history.operation
            while source.name in extra:
                source = source._inbound_nodes[0].input_tensors[0]._keras_history.operation
            names.append(source.name)
        return names

    keys = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "use_bias",
            "activation", "epsilon", "momentum", "center", "scale", "pool_size", "units")
    for theirs in json_model.layers:
        mine = ours[theirs.name]
        kind = "ScaleSum" if theirs.name.endswith("_ScaleSum") else type(theirs).__name__
        assert (type(mine).__name__, kind) in {("Add", "ScaleSum"), (kind, kind)}, theirs.name
        if kind == "InputLayer":
            continue
        assert inbound(mine) == inbound(theirs), theirs.name
        if kind == "ScaleSum":
            assert ours[f"{theirs.name[:-len('_ScaleSum')]}_Scale"].scale == pytest.approx(theirs.scale)
            continue
        a, b = mine.get_config(), theirs.get_config()
        assert {k: a[k] for k in keys if k in b} == {k: b[k] for k in keys if k in b}, theirs.name
        if kind in ("BatchNormalization", "Concatenate"):
            rank = len(mine.output.shape)
            assert a["axis"] % rank == b["axis"] % rank == rank - 1, theirs.name
        if kind == "Dropout":
            assert a["rate"] == pytest.approx(b["rate"])


# --- the Keras-2 weights file and the loader ------------------------------------------------

def test_synthetic_file_has_the_keras2_layout(synthetic_file, reference, layout):
    with h5py.File(synthetic_file, "r") as f:
        assert f.attrs["keras_version"] == "2.4.0" and "model_config" in f.attrs
        group = f["model_weights"]
        names = [n.decode() for n in group.attrs["layer_names"]]
        assert names == [layer["name"] for layer in reference["config"]["layers"]]
        assert [n.decode() for n in group["Block35_1_Conv2d_1x1"].attrs["weight_names"]] == \
            ["Block35_1_Conv2d_1x1/kernel:0", "Block35_1_Conv2d_1x1/bias:0"]
        assert len(group["Block35_1_ScaleSum"].attrs["weight_names"]) == 0
        assert group["Conv2d_1a_3x3/Conv2d_1a_3x3/kernel:0"].dtype == np.float32
    assert _stored_arrays(synthetic_file) == {
        f"model_weights/{layer}/{layer}/{name}:0": shape
        for layer, weights in layout.items() for name, shape in weights}


def test_every_stored_weight_is_consumed_and_none_is_missing(network, synthetic_file):
    model, report = network
    stored = _stored_arrays(synthetic_file)
    assert report.count == len(stored) == WEIGHT_COUNT
    assert {f"model_weights/{key.split('/')[0]}/{key}:0" for key in report.loaded} == set(stored)
    assert sum(len(layer.weights) for layer in model.layers) == WEIGHT_COUNT
    with h5py.File(synthetic_file, "r") as f:
        for layer in model.layers:
            for w in layer.weights:
                stored_value = f[f"model_weights/{layer.name}/{layer.name}/{w.name}:0"][()]
                np.testing.assert_array_equal(np.asarray(w), stored_value)


def _drop_layer(group, layer):
    del group[layer]
    names = [n for n in group.attrs["layer_names"] if n.decode() != layer]
    group.attrs["layer_names"] = names


def _reshape_weight(group, layer):
    key = f"{layer}/{layer}/kernel:0"
    value = group[key][()]
    del group[key]
    group.create_dataset(key, data=value[..., :-1])


def _add_layer(group, layer):
    extra = group.create_group(layer)
    extra.attrs["weight_names"] = [f"{layer}/kernel:0".encode()]
    extra.create_dataset(f"{layer}/kernel:0", data=np.zeros((3, 3), np.float32))
    group.attrs["layer_names"] = list(group.attrs["layer_names"]) + [layer.encode()]


@pytest.mark.parametrize("damage, layer, listed", [
    (_drop_layer, "Block17_3_Conv2d_1x1", r"2 weight\(s\) missing from the file: "
                                          r"Block17_3_Conv2d_1x1/kernel, Block17_3_Conv2d_1x1/bias"),
    (_reshape_weight, "Mixed_7a_Branch_0_Conv2d_1a_3x3",
     r"1 weight\(s\) with the wrong shape \(file vs network\): "
     r"Mixed_7a_Branch_0_Conv2d_1a_3x3/kernel \(3, 3, 256, 383\) vs \(3, 3, 256, 384\)"),
    (_add_layer, "Logits", r"1 weight\(s\) in the file but not in the network: Logits/kernel"),
], ids=["missing-layer", "wrong-shape", "unexpected-layer"])
def test_a_damaged_file_gives_a_clear_error_and_loads_nothing(network, synthetic_file, scratch,
                                                               damage, layer, listed):
    model, _ = network
    broken = _copy(synthetic_file, scratch)
    with h5py.File(broken, "r+") as f:
        damage(f["model_weights"], layer)
    assert om.is_original_weights_file(broken)  # still the original: fail loudly, no fallback
    before = np.asarray(model.get_layer("Conv2d_1a_3x3").kernel).copy()
    with pytest.raises(om.OriginalWeightsError) as error:
        om.load_original_weights(model, broken)
    message = str(error.value)
    assert str(broken) in message and "does not fit the inception_resnet_v1 network" in message
    assert re.search(listed, message), message
    assert "make setup" in message
    np.testing.assert_array_equal(np.asarray(model.get_layer("Conv2d_1a_3x3").kernel), before)


# --- the proof: two independent builds agree ------------------------------------------------

def test_both_builds_agree_on_the_course_images(network, json_model, course_pixels):
    model, _ = network
    ours = model.predict_on_batch(course_pixels)
    theirs = json_model.predict_on_batch(course_pixels)
    worst = float(np.abs(ours - theirs).max())
    print(f"max |ours - model.json| over 18 course images x 128: {worst:.2e}")
    assert worst <= TOLERANCE
    assert np.isfinite(ours).all()
    assert 0.1 < np.abs(ours).mean() < 100  # neither vanishing nor exploding
    assert ours.std(axis=0).mean() > 0.05  # outputs differ from image to image
    unit = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    distances = np.linalg.norm(unit[:, None] - unit[None], axis=-1)[np.triu_indices(18, 1)]
    assert distances.min() > 1e-3


def test_the_comparison_would_catch_swapped_branches(network, json_model, course_pixels):
    """Shapes cannot tell two 3x3 branches apart; the outputs can."""
    model, _ = network
    a = json_model.get_layer("Block35_3_Branch_1_Conv2d_0b_3x3")
    b = json_model.get_layer("Block35_3_Branch_2_Conv2d_0b_3x3")
    saved_a, saved_b = a.get_weights(), b.get_weights()
    try:
        a.set_weights(saved_b)
        b.set_weights(saved_a)
        swapped = json_model.predict_on_batch(course_pixels[:4])
    finally:
        a.set_weights(saved_a)
        b.set_weights(saved_b)
    assert np.abs(model.predict_on_batch(course_pixels[:4]) - swapped).max() > 100 * TOLERANCE


# --- recognising the original file ----------------------------------------------------------

def test_recognises_both_keras2_layouts(synthetic_file, reference, layout, scratch):
    assert om.identify_original_weights(synthetic_file).startswith("layout")
    weights_only = om.write_keras2_weights(scratch / "weights.h5", reference,
                                           om.synthetic_weights(layout, seed=0), full_model=False)
    assert om.is_original_weights_file(weights_only)
    assert om.read_keras_weights(weights_only).keys() == layout.keys()


def test_recognises_and_loads_a_copy_resaved_by_keras3(network, scratch):
    from keras.src.legacy.saving import legacy_h5_format

    model, _ = network
    resaved = scratch / "model.h5"
    with h5py.File(resaved, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    assert om.is_original_weights_file(resaved)
    assert om.load_original_weights(model, resaved).count == WEIGHT_COUNT


def test_recognises_a_known_git_blob_id(tmp_path, monkeypatch):
    file = tmp_path / "model.h5"
    file.write_bytes(b"not even HDF5, but its hash is on the list\n")
    blob = subprocess.run(["git", "hash-object", str(file)], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert om.git_blob_id(file) == blob
    assert not om.is_original_weights_file(file)
    monkeypatch.setattr(om, "KNOWN_GIT_BLOB_IDS", om.KNOWN_GIT_BLOB_IDS | {blob})
    assert om.identify_original_weights(file) == f"git blob id {blob}"


def test_rejects_the_default_model_and_other_files(tmp_path):
    assert not om.is_original_weights_file(_require(DLIB_MODEL_DIR / "model.h5"))
    random_h5 = tmp_path / "random.h5"
    with h5py.File(random_h5, "w") as f:
        f.create_dataset("data", data=np.random.default_rng(0).standard_normal((16, 16)))
    text = tmp_path / "notes.h5"
    text.write_text("model weights go here\n")
    for path in (random_h5, text, tmp_path / "absent.h5"):
        assert not om.is_original_weights_file(path)
    with pytest.raises(om.OriginalWeightsError, match="random.h5: not a Keras weights file"):
        om.read_keras_weights(random_h5)
    with pytest.raises(om.OriginalWeightsError, match="notes.h5: not an HDF5 file"):
        om.read_keras_weights(text)


# --- choosing the model a folder holds ------------------------------------------------------

def test_course_model_is_the_original_when_the_folder_holds_it(synthetic_file, network, json_model,
                                                                course_pixels, tmp_path):
    (tmp_path / "model.h5").symlink_to(synthetic_file)
    model, info = om.load_course_model(tmp_path)
    assert info.original and info.recognised_by.startswith("layout")
    assert (info.input_size, info.threshold, info.align, info.resample) == ((160, 160), 0.7, False, "nearest")
    assert om.model_info(network[0]).original and om.model_info(json_model).original  # both take pixels / 255
    expected = network[0].predict_on_batch(course_pixels[:2])
    np.testing.assert_array_equal(model.predict_on_batch(course_pixels[:2]), expected)


def test_a_folder_of_dlibs_network_gives_dlibs_network():
    model, info = om.load_course_model(_require(DLIB_MODEL_DIR))
    assert not info.original and info.recognised_by is None
    assert info.input_size == (150, 150) and info.align
    assert model.output_shape == (None, 128)
    try:
        from facerec.encode import DISTANCE_THRESHOLD
    except ImportError:
        DISTANCE_THRESHOLD = None
    assert info.threshold == DISTANCE_THRESHOLD


def test_a_truncated_copy_says_what_to_do(synthetic_file, scratch):
    shutil.copyfile(_require(DLIB_MODEL_DIR / "model.json"), scratch / "model.json")
    with open(synthetic_file, "rb") as src:
        (scratch / "model.h5").write_bytes(src.read(1 << 20))
    with pytest.raises(om.CourseModelUnreadableError, match="model.h5 cannot be read .* incomplete"):
        om.load_course_model(scratch)
    with pytest.raises(om.OriginalWeightsError, match="model.h5: cannot be read .* incomplete"):
        om.read_keras_weights(scratch / "model.h5")


def test_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(om.CourseModelNotFoundError, match="model.h5 not found. Run `make setup`"):
        om.load_course_model(tmp_path)


def test_the_notebook_helpers_use_the_original_model_as_the_course_did(synthetic_file, network,
                                                                       course_pixels, tmp_path):
    """fr_utils with the course network: no alignment, nearest resize to 160, /255, threshold 0.7."""
    import fr_utils

    (tmp_path / "model.h5").symlink_to(synthetic_file)
    model = fr_utils.load_model(tmp_path)
    assert om.is_original_network(model)
    assert fr_utils.distance_threshold(model) == 0.7
    assert fr_utils.threshold_for_folder(tmp_path) == 0.7
    younes = sorted(p.name for p in IMAGES.iterdir()).index("younes.jpg")
    raw = network[0].predict_on_batch(course_pixels[younes:younes + 1])
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    got = fr_utils.img_to_encoding(str(IMAGES / "younes.jpg"), model)
    assert got.shape == (1, 128)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_notebook_helpers_use_the_measured_threshold_with_dlibs_network():
    import fr_utils

    model = fr_utils.load_model(DLIB_MODEL_DIR)
    assert not om.is_original_network(model)
    from facerec.encode import DISTANCE_THRESHOLD

    assert fr_utils.distance_threshold(model) == DISTANCE_THRESHOLD == fr_utils.threshold_for_folder(DLIB_MODEL_DIR)


def test_the_notebooks_plain_keras_load_works_with_the_original_weights(synthetic_file, network,
                                                                        course_pixels, tmp_path):
    """Set-up writes a Keras 3 model.json for the original weights (keeping the course's own as
    model.keras2.json), so `model_from_json` + `load_weights`, as the notebook does, loads them."""
    import tensorflow as tf

    (tmp_path / "model.h5").symlink_to(synthetic_file)
    shutil.copy(om.REFERENCE_JSON, tmp_path / "model.json")
    assert om.write_loadable_model_json(tmp_path) == tmp_path / "model.json"
    assert (tmp_path / "model.keras2.json").read_bytes() == om.REFERENCE_JSON.read_bytes()
    assert om.write_loadable_model_json(tmp_path) is None  # a second run changes nothing

    model = tf.keras.models.model_from_json((tmp_path / "model.json").read_text())
    model.load_weights(str(tmp_path / "model.h5"))
    assert om.is_original_network(model)
    np.testing.assert_array_equal(model.predict_on_batch(course_pixels[:2]),
                                  network[0].predict_on_batch(course_pixels[:2]))
