"""The converted Keras model is dlib's network: same outputs, loadable the plain Keras way."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facerec import convert, dlib_format

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "dlib-resnet-h5"
LFW = ROOT / "data" / "lfw" / "lfw-deepfunneled"
TOLERANCE = 1e-5  # the bound; a careful conversion reaches about 5e-7


@pytest.fixture(scope="module")
def dat_bytes():
    return convert.dlib_model_path().read_bytes()


@pytest.fixture(scope="module")
def keras_model():
    import tensorflow as tf

    model = tf.keras.models.model_from_json((MODEL_DIR / "model.json").read_text())
    model.load_weights(str(MODEL_DIR / "model.h5"))
    return model


@pytest.fixture(scope="module")
def dlib_models():
    import dlib  # dlib-bin, a test dependency (requirements-dev.txt): the reference
    import face_recognition_models as frm

    return (dlib,
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(frm.pose_predictor_five_point_model_location()))


def course_chips():
    paths = sorted((ROOT / "images").iterdir())
    assert len(paths) == 18
    return [np.asarray(Image.open(p).convert("RGB").resize((150, 150), Image.BILINEAR)) for p in paths]


def lfw_chips(dlib_models, count=50):
    """dlib's own aligned chips of the first photo of each person (sorted), as dlib's docs do it."""
    dlib, _, detector, shape_predictor = dlib_models
    chips = []
    for person in sorted(LFW.iterdir()):
        img = np.asarray(Image.open(sorted(person.iterdir())[0]).convert("RGB"))
        faces = detector(img, 1)
        if not faces:
            continue
        centre = np.array(img.shape[1::-1]) / 2
        face = min(faces, key=lambda r: np.hypot(*(np.array([r.center().x, r.center().y]) - centre)))
        chips.append(dlib.get_face_chip(img, shape_predictor(img, face), size=150, padding=0.25))
        if len(chips) == count:
            return chips
    raise AssertionError("fewer LFW faces than expected")


def test_parser_reads_the_whole_file(dat_bytes):
    net = dlib_format.parse(dat_bytes)
    assert net.parameter_count == 5_614_592
    assert net.input_size == (150, 150)
    np.testing.assert_allclose(net.input_mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    assert net.distance_threshold == pytest.approx(0.6)
    kinds = [layer.kind for layer in net.layers]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert len(net.ops) == 130


@pytest.mark.parametrize("cut", [1, 100, 4_000_000, 22_466_065])
def test_truncated_file_fails_with_the_offset(dat_bytes, cut):
    with pytest.raises(dlib_format.DlibFormatError, match=r"byte 0x[0-9a-f]+: "):
        dlib_format.parse(dat_bytes[:cut])


def test_trailing_bytes_are_refused(dat_bytes):
    with pytest.raises(dlib_format.DlibFormatError, match="left over"):
        dlib_format.parse(dat_bytes + b"\x00")


def test_a_different_network_is_refused(dat_bytes):
    # 0x14e is where the first convolution's record name "con_4" starts; call it something else.
    broken = dat_bytes[:0x150] + b"X" + dat_bytes[0x151:]
    with pytest.raises(dlib_format.DlibFormatError, match="expected record 'con_4'"):
        dlib_format.parse(broken)


def test_model_uses_standard_layers_only(keras_model):
    config = json.loads((MODEL_DIR / "model.json").read_text())
    classes = {layer["class_name"] for layer in config["config"]["layers"]}
    assert "Lambda" not in classes
    assert all(layer["module"] == "keras.layers" for layer in config["config"]["layers"])
    assert keras_model.input_shape == (None, 150, 150, 3)
    assert keras_model.output_shape == (None, 128)
    assert keras_model.count_params() == 5_607_488  # dlib's 5,614,592 minus the folded affines


def test_keras_matches_dlib_on_68_chips(keras_model, dlib_models):
    _, recognizer, _, _ = dlib_models
    chips = course_chips() + lfw_chips(dlib_models)
    assert len(chips) >= 68
    expected = np.array([recognizer.compute_face_descriptor(chip) for chip in chips])
    got = keras_model.predict_on_batch(np.stack(chips).astype(np.float32))
    worst = np.abs(got - expected).max()
    print(f"max |keras - dlib| over {len(chips)} chips x 128: {worst:.2e}")
    assert worst <= TOLERANCE
    # The descriptors are raw, not normalised: dlib's own norms are about 1.2 to 1.6.
    assert np.linalg.norm(got, axis=1).min() > 1.0


def test_loads_in_a_fresh_process_with_plain_keras(keras_model):
    code = f"""
import os; os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf
model = tf.keras.models.model_from_json(open({str(MODEL_DIR / 'model.json')!r}).read())
model.load_weights({str(MODEL_DIR / 'model.h5')!r})
x = np.random.default_rng(0).uniform(0, 255, (2, 150, 150, 3)).astype("float32")
np.save("out.npy", model.predict_on_batch(x))
"""
    workdir = Path(__file__).parent / ".." / "test-output"
    workdir.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", code], cwd=workdir, check=True)
    x = np.random.default_rng(0).uniform(0, 255, (2, 150, 150, 3)).astype("float32")
    np.testing.assert_allclose(np.load(workdir / "out.npy"), keras_model.predict_on_batch(x), atol=1e-6)


def test_conversion_is_reproducible(tmp_path):
    from facerec import assets

    json_path, h5_path = convert.convert(out_dir=tmp_path)
    for path in (json_path, h5_path):
        assert assets.sha256_file(path) == assets.sha256_file(MODEL_DIR / path.name)
