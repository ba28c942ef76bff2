"""Recognise every face in every photo of a folder, as a table: one bad file never stops the run.

    table = recognise_folder("party_photos", database)
    table[table.status == "ok"].identity.value_counts()

Photos go through facerec's pipeline in batches (detection batched by MTCNN, encodings by the
model, matching in one matrix product per batch). Each file gives one row per face found, or
one row saying why it has none:

    file      name of the file in the folder
    face      index of the face in that file, largest first (<NA> when there is no face)
    identity  the closest enrolled person when accepted, "unknown" when too far from everyone
              (None when there is no face)
    distance  distance to the closest enrolled person (NaN when there is no face)
    status    "ok", "no face" (read, but no face detected) or "unreadable" (not a picture,
              empty, truncated...)
    box       (x, y, width, height) of the face in the photo's pixels, rounded (None: no face)
    detail    why a file is unreadable ("" otherwise)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from facerec.align import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_FACE_SIZE
from facerec.database import UNKNOWN, EmptyDatabaseError, FaceDatabase
from facerec.encode import Face, extract_faces_from_images
from facerec.errors import FaceRecError
from facerec.images import load_image

COLUMNS = ["file", "face", "identity", "distance", "status", "box", "detail"]
OK, NO_FACE, UNREADABLE = "ok", "no face", "unreadable"
# Photos are read at most this large (longer side, pixels): a 6000 x 4000 photo would otherwise
# hold 72 MB per batch slot; faces keep ample pixels for a 160 x 160 (or 150 x 150) chip.
READ_MAX_SIDE = 3000
# Decoded pixels per batch: bounds memory whatever the photo sizes.
BATCH_PIXELS = 40_000_000


class FolderNotFoundError(FaceRecError, FileNotFoundError):
    """The folder to recognise does not exist or is a file."""


def recognise_folder(
    folder: str | os.PathLike,
    database: FaceDatabase,
    all_faces: bool = True,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    min_face_size: float = DEFAULT_MIN_FACE_SIZE,
    batch_size: int = 32,
    progress: bool = True,
    model=None,
) -> pd.DataFrame:
    """A table (see the module doc) of every face in every file directly inside `folder`.

    Files are taken in name order; hidden files (".name") and subfolders are skipped. With
    `all_faces=False` only the largest face of each photo is reported. `batch_size` photos go
    through the pipeline together. `model` defaults to the database's. `progress` shows a bar.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FolderNotFoundError(
            f"{str(folder)!r} {what} (working directory {os.getcwd()!r}). Pass the folder that holds the photos."
        )
    if len(database) == 0:
        raise EmptyDatabaseError("The face database is empty: enrol people with database.add(name, photos) first.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size!r}.")
    model = database.model if model is None else model
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))

    rows_of_file: list[list[dict]] = [[] for _ in files]
    batch: list[tuple[int, np.ndarray]] = []
    batch_pixels = 0
    options = dict(min_confidence=min_confidence, min_face_size=min_face_size, largest_only=not all_faces)
    with tqdm(total=len(files), unit="photo", desc=f"recognising {folder.name or folder}", disable=not progress) as bar:

        def run_batch() -> None:
            for (file_index, _), rows in zip(batch, _recognise_batch(batch, files, database, model, options)):
                rows_of_file[file_index] = rows
            bar.update(len(batch))
            batch.clear()

        for index, path in enumerate(files):
            try:
                picture = load_image(path, max_side=READ_MAX_SIDE)
            except Exception as error:  # whatever a file does wrong, it is only that file's row
                rows_of_file[index] = [_row(path.name, status=UNREADABLE, detail=_reason(error))]
                bar.update(1)
                continue
            batch.append((index, picture))
            batch_pixels += picture.shape[0] * picture.shape[1]
            if len(batch) >= batch_size or batch_pixels >= BATCH_PIXELS:
                run_batch()
                batch_pixels = 0
        if batch:
            run_batch()

    table = pd.DataFrame([row for rows in rows_of_file for row in rows], columns=COLUMNS)
    table["face"] = table["face"].astype("Int64")
    table["distance"] = table["distance"].astype(float)
    return table


def _recognise_batch(batch: list[tuple[int, np.ndarray]], files: list[Path], database: FaceDatabase, model, options) -> list[list[dict]]:
    """For each photo of the batch, its rows."""
    pictures = [picture for _, picture in batch]
    try:
        faces_per_photo = extract_faces_from_images(pictures, model, **options)
    except Exception:
        # Something in the batch broke the pipeline: redo photo by photo to find which.
        faces_per_photo = []
        for picture in pictures:
            try:
                faces_per_photo.append(extract_faces_from_images([picture], model, **options)[0])
            except Exception as error:
                faces_per_photo.append(error)
    found = [face for faces in faces_per_photo if isinstance(faces, list) for face in faces]
    matches = iter(database.closest_for_each(np.stack([face.encoding for face in found])) if found else [])
    rows_per_photo = []
    for (file_index, _), faces in zip(batch, faces_per_photo):
        name = files[file_index].name
        if isinstance(faces, Exception):
            rows_per_photo.append([_row(name, status=UNREADABLE, detail=_reason(faces))])
        elif not faces:
            rows_per_photo.append([_row(name, status=NO_FACE)])
        else:
            rows = []
            for face_index, face in enumerate(faces):
                match = next(matches)
                identity = match.identity if match.accepted else UNKNOWN
                rows.append(_row(name, face_index, identity, match.distance, OK, _box(face)))
            rows_per_photo.append(rows)
    return rows_per_photo


def _row(file: str, face=None, identity=None, distance=np.nan, status=OK, box=None, detail="") -> dict:
    return {"file": file, "face": face, "identity": identity, "distance": distance, "status": status, "box": box, "detail": detail}


def _box(face: Face) -> tuple[int, int, int, int]:
    return tuple(int(round(value)) for value in face.box)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
