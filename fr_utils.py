"""Helpers for the face-recognition notebook: photos in, face encodings out.

    model = load_model()                                  # the course's FaceNet (keras-facenet-h5/)
    encoding = img_to_encoding("images/camera_0.jpg", model)   # shape (1, 128), length 1
    distance = np.linalg.norm(encoding - other_encoding)  # small: probably the same person
    same_person = distance < DISTANCE_THRESHOLD           # 0.7, the course's threshold

What `img_to_encoding` does for the course's network, exactly as the course did: it reads the
photo (JPEGs with IJG libjpeg 9, the decoder the course's numbers were computed with), resizes it
to 160x160 (nearest neighbour), divides the pixel values by 255, runs the network and scales the
128 numbers to length 1. The course photos are faces already cut out, so nothing finds the face.

For real photos, with faces anywhere in them, `load_photo_model()` loads the same network as a
model of its own, fed as FaceNet was trained: with it the same helpers find every face (MTCNN
detector), cut it out with a margin, resize it to 160x160, standardise it and encode it with its
mirror image; `distance_threshold(model)` gives its threshold (1.10). The package's second
network, dlib's ResNet, is `load_photo_model("dlib-resnet-h5")` (faces aligned onto a 150x150 chip,
threshold 0.42, faster). `encode_images(paths, model)` encodes many photos at once, `extract_faces(photo,
model)` returns every face found (box, landmarks, chip, encoding), `load_image(path)` reads any
photo as an RGB array. Every error these raise is a FaceRecError whose message says which file
is at fault and what to do.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up logs quiet

from facerec.encode import (
    Face,
    distance_threshold,
    encode_images,
    extract_faces,
    img_to_encoding,
    load_model,
    load_photo_model,
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

# On a JupyterHub, a student fetches the notebook (with this file and fr_checks.py) alone into a
# folder of their own; the photos, the models and LFW stay once in the course's shared, read-only
# folder, named by FACEREC_COURSE_FILES (set by the hub's environment: python -m grader.course.hub).
# The notebook opens them by relative paths (images/..., keras-facenet-h5/...), so each one missing
# from the notebook's folder is linked there from the shared folder: a link, not a copy.
COURSE_FOLDERS = ("images", "keras-facenet-h5", "dlib-resnet-h5", "data")


def link_course_folders(folder: str = ".", shared: str | None = None) -> list[str]:
    """Link into `folder` (a notebook's folder) the COURSE_FOLDERS it lacks, from `shared`
    (default: $FACEREC_COURSE_FILES); return the names linked. Nothing happens without a shared
    folder, in the shared folder itself, or in a folder without a notebook."""
    shared = shared if shared is not None else os.environ.get("FACEREC_COURSE_FILES", "")
    if not shared or not os.path.isdir(shared) or os.path.samefile(shared, folder):
        return []
    try:
        if not any(name.endswith(".ipynb") for name in os.listdir(folder)):
            return []
    except OSError:
        return []
    linked = []
    for name in COURSE_FOLDERS:
        target, link = os.path.join(shared, name), os.path.join(folder, name)
        if os.path.lexists(link) or not os.path.isdir(target):
            continue
        try:
            os.symlink(target, link, target_is_directory=True)
            linked.append(name)
        except OSError:  # a read-only folder: the notebook will say which file it cannot find
            pass
    if linked:
        print(f"fr_utils: linked {', '.join(n + '/' for n in linked)} from the course's shared folder {shared}")
    return linked


link_course_folders()

# The threshold of the network in keras-facenet-h5/: the course's 0.7 for its FaceNet.
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
    "load_photo_model",
]
