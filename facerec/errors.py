"""Typed errors of the face-recognition helpers.

Each message names the file or value at fault and says what to do about it, because learners
read these messages in a notebook cell, not in a stack trace.
Catch `FaceRecError` to handle all of them; each also subclasses the built-in exception a
caller would naturally expect (FileNotFoundError, ValueError).
"""
from __future__ import annotations


class FaceRecError(Exception):
    """Base class of every error raised by facerec."""


class ImageNotFoundError(FaceRecError, FileNotFoundError):
    """The path given as an image does not exist or is not a file."""


class NotAnImageError(FaceRecError, ValueError):
    """The file or array cannot be read as a picture (empty, truncated, text, wrong shape...)."""


class NoFaceFoundError(FaceRecError, ValueError):
    """The face detector found no face in the picture."""


class EmptyInputError(FaceRecError, ValueError):
    """A list of images (or of face chips) was empty."""


class ModelNotFoundError(FaceRecError, FileNotFoundError):
    """The folder with the model's model.json and model.h5 is missing or incomplete."""


def describe_source(source: object) -> str:
    """Short human name of an image source for messages: the path, or the shape of an array."""
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"array of shape {tuple(shape)} and dtype {getattr(source, 'dtype', '?')}"
    return repr(str(source))
