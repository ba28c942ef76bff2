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
    assert {"built/keras-facenet-h5/model.json", "built/keras-facenet-h5/model.h5"} <= set(manifest)
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


def test_the_model_is_built_and_matches_its_manifest_hash(tmp_path):
    manifest = tmp_path / "MANIFEST.sha256"
    built = {n: d for n, d in assets.read_manifest().items() if n.startswith("built/")}
    manifest.write_text("".join(f"{d}  {n}\n" for n, d in built.items()))
    report = Installer(tmp_path, tmp_path, manifest=manifest).run()
    assert report.built == 2
    assert assets.sha256_file(tmp_path / "keras-facenet-h5/model.h5") == built["built/keras-facenet-h5/model.h5"]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "facerec.assets", *args], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_this_checkout_is_fully_installed_and_verified():
    result = _cli("verify")
    assert result.returncode == 0, result.stderr
    assert "13258 files verified" in result.stdout


def test_cli_with_a_wrong_assets_folder_fails_naming_the_file(tmp_path):
    result = _cli("install", env={assets.ASSETS_ENV: str(tmp_path / "nowhere")})
    assert result.returncode == 1
    assert "set-up stopped: missing file lfw.sha256" in result.stderr
    assert str(tmp_path / "nowhere") in result.stderr


def test_an_instructors_original_course_model_is_kept(tmp_path):
    """Set-up never overwrites the original course weights with the default model."""
    import h5py

    from facerec import original_model

    manifest = tmp_path / "MANIFEST.sha256"
    built = {n: d for n, d in assets.read_manifest().items() if n.startswith("built/")}
    manifest.write_text("".join(f"{d}  {n}\n" for n, d in built.items()))
    weights = tmp_path / "keras-facenet-h5" / "model.h5"
    weights.parent.mkdir()
    with h5py.File(weights, "w") as f:  # the original's Keras-2 layout, its layer names only
        f.attrs["layer_names"] = [n.encode() for n in original_model.SIGNATURE_LAYERS]
    original_json = weights.with_name("model.json")
    original_json.write_text('{"class_name": "Functional", "keras_version": "2.4.0"}')
    before = assets.sha256_file(weights)
    report = Installer(tmp_path, tmp_path, manifest=manifest).run()
    assert report.built == 0
    assert assets.sha256_file(weights) == before
    # The original model.json, which current Keras cannot load, is kept beside a loadable one.
    assert weights.with_name("model.keras2.json").read_text().endswith('"2.4.0"}')
    assert '"inception_resnet_v1"' in original_json.read_text()
