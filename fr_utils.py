"""Helpers for the face-recognition notebook: photos in, face encodings out.

    model = load_model()                                  # the pretrained encoder (keras-facenet-h5/)
    encoding = img_to_encoding("images/camera_0.jpg", model)   # shape (1, 128), length 1
    distance = np.linalg.norm(encoding - other_encoding)  # small: probably the same person
    same_person = distance < DISTANCE_THRESHOLD

What `img_to_encoding` does for you: it reads the photo, finds the face in it (MTCNN detector),
rotates and scales it so that the eyes, nose and mouth land on fixed spots of a 150x150 "chip"
(the way the network was trained), runs the network, and scales the 128 numbers to length 1.
If the photo has several faces it encodes the largest; if it has none, you get NoFaceFoundError.

Also here: `encode_images(paths, model)` encodes many photos at once (much faster than a loop),
`extract_faces(photo, model)` returns every face found (box, landmarks, chip, encoding),
`load_image(path)` reads any photo as an RGB array. Every error these raise is a FaceRecError
whose message says which file is at fault and what to do.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up logs quiet

from facerec.encode import (
    DISTANCE_THRESHOLD,
    Face,
    distance_threshold,
    encode_images,
    extract_faces,
    img_to_encoding,
    load_model,
)
from facerec.encode import threshold_for_folder
from facerec.errors import (
    EmptyInputError,
    FaceRecError,
    ImageNotFoundError,
    ModelNotFoundError,
    NoFaceFoundError,
    NotAnImageError,
)
from facerec.images import load_image

# The measured threshold of the default model; the course's own 0.7 when keras-facenet-h5/ holds
# the original course weights (an instructor's copy), so that the notebook works with either.
DISTANCE_THRESHOLD = threshold_for_folder()

__all__ = [
    "DISTANCE_THRESHOLD",
    "EmptyInputError",
    "Face",
    "distance_threshold",
    "FaceRecError",
    "ImageNotFoundError",
    "ModelNotFoundError",
    "NoFaceFoundError",
    "NotAnImageError",
    "encode_images",
    "extract_faces",
    "img_to_encoding",
    "load_image",
    "load_model",
]
