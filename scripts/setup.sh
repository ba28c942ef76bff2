#!/usr/bin/env bash
# One-step set-up: a virtual environment with the pinned requirements, the course assets
# (verified against facerec/MANIFEST.sha256) and the Keras model converted from dlib's file.
# Safe to run again: it only does what is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" - <<'PY' || { echo "set-up: Python 3.10 to 3.13 is needed (TensorFlow 2.21 supports those); set PYTHON=/path/to/python3.11" >&2; exit 1; }
import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)
PY
  echo "set-up: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi

# Reinstall only when a requirements file changed.
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  echo "set-up: installing pinned requirements into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha256
fi

# Dask reads its settings from .venv/etc/dask/ too: the grading settings (grader/grading/dask.yaml)
# reach every scheduler, worker and grading command started from this venv.
mkdir -p .venv/etc/dask
cmp -s grader/grading/dask.yaml .venv/etc/dask/facerec-grading.yaml \
  || cp grader/grading/dask.yaml .venv/etc/dask/facerec-grading.yaml

.venv/bin/python -m facerec.assets install "$@"
# Features of LFW faces for the notebook's ungraded triplet-training section (about 2 minutes
# the first time, cached in data/cache/ after that).
exec .venv/bin/python -m facerec.triplet_features build-cache
