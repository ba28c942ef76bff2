"""Encoding speed: dlib's own descriptor and pipeline vs the Keras networks, on the same faces.

    .venv/bin/python bench/encode_speed.py [--repeats 5]

Prints encodings per second, the ratio to dlib and the achieved GFLOP/s for
- dlib `compute_face_descriptor(chip)`, one chip per call (the reference);
- dlib's ResNet in Keras (`dlib-resnet-h5/`, the package's second network for real photos) on the
  same aligned 150x150 chips, at batch 1 through `encode_chips`, as `img_to_encoding` calls it,
  and at batch 32 (`encode_chips(..., batch_size=32)`, one model call per 32 chips), as
  `encode_images` calls it; both again with mirror averaging (chip and mirror image in one call,
  two network passes per encoding: the library's default, facerec.encode.MIRROR_AVERAGED);
- the course's FaceNet (`keras-facenet-h5/`, Inception-ResNet-v1) at batch 1 and batch 32 on
  160x160 crops of the same faces (MTCNN box + 32 px margin): one pass as the course fed it
  (pixels / 255), and as the real-photo tools feed it by default (`load_photo_model()`:
  standardised, mirror-averaged, two passes);
then end to end: `img_to_encoding` on the 18 course photos with each pipeline (the photo tools'
default: decode, detect, crop, encode twice; dlib's ResNet: decode, detect, align, encode twice;
the course's FaceNet fed the course's way: decode with libjpeg 9, resize, encode, no detection),
`encode_images` on them with both real-photo pipelines, and the whole pipeline on LFW photos
(every face of each photo found and encoded, as bench/lfw_benchmark.py times it) with both
real-photo pipelines and dlib's own (HOG detector upsampled once, 5-point landmarks,
get_face_chip, compute_face_descriptor, one photo per call). Each figure is the best of
`--repeats` runs, the methods taking turns, because the machine is shared: the best run is the one
least slowed down by others.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from facerec.align import facenet_crop
from facerec.encode import (DLIB_MODEL_FOLDER, MIRROR_AVERAGED, MODEL_FOLDER, encode_chips, encode_images,
                            extract_faces_from_images, img_to_encoding, load_model, load_photo_model)
from facerec.images import load_image

MFLOPS_PER_CHIP = 541.7  # multiply-adds x 2 of one forward pass of dlib's ResNet at 150x150
# The same for the course's FaceNet (Inception-ResNet-v1) at 160x160: its Conv2D and Dense layers.
COURSE_MFLOPS_PER_FACE = 2833.9
TARGET_BATCH_32 = 20.0  # times dlib
TARGET_BATCH_1 = 8.0
LFW_FOLDER = ROOT / "data" / "lfw" / "lfw-deepfunneled"


def best_rates(runs: dict[str, tuple], repeats: int) -> dict[str, float]:
    """Like best_rate for several (run, items) at once, taking turns between them so that
    each one meets the same mix of quiet and busy moments on a shared machine."""
    fastest = {}
    for run, _ in runs.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, (run, _) in runs.items():
            fastest[name] = min(fastest.get(name, np.inf), timed(run))
    return {name: items / fastest[name] for name, (_, items) in runs.items()}


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bench_faces(model) -> tuple[np.ndarray, np.ndarray]:
    """64 faces of the 18 course photos and 46 LFW photos, found by our own pipeline: (aligned chips
    for `model`, 160x160 FaceNet crops of the same faces for the course's network)."""
    course = sorted((ROOT / "images").iterdir())
    lfw = sorted(LFW_FOLDER.glob("*/*_0001.jpg"))[::100][:46]
    paths = course + lfw
    faces = extract_faces_from_images([str(path) for path in paths], model, largest_only=True)
    kept = [(path, found[0]) for path, found in zip(paths, faces) if found][:64]
    chips = np.stack([face.chip for _, face in kept])
    crops = np.stack([facenet_crop(load_image(path), face.box) for path, face in kept])
    return chips, crops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    import dlib
    import face_recognition_models

    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (shared machine)")
    model = load_photo_model(DLIB_MODEL_FOLDER)  # dlib's ResNet
    course_model = load_model(MODEL_FOLDER)  # the course's FaceNet, fed the course's way
    photo_model = load_photo_model()  # the same network, fed as the real-photo tools feed it by default
    dlib_net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    chips, crops = bench_faces(model)
    print(f"{len(chips)} faces (18 course photos, LFW for the rest): aligned 150x150 chips for dlib's ResNet, "
          "160x160 crops for the course's FaceNet")

    # Same network: the raw Keras output equals dlib's descriptor on these chips.
    dlib_descriptors = np.array([dlib_net.compute_face_descriptor(chip) for chip in chips[:8]])
    keras_descriptors = np.asarray(model.predict_on_batch(chips[:8].astype(np.float32)))
    print(f"max |keras - dlib| on 8 chips: {np.abs(keras_descriptors - dlib_descriptors).max():.1e}")

    dlib_chips = chips[:12]
    chips32 = chips[:32]
    crops32 = crops[:32]
    rates = best_rates({
        "dlib compute_face_descriptor, 1 chip/call": (
            lambda: [dlib_net.compute_face_descriptor(chip) for chip in dlib_chips], len(dlib_chips)),
        "keras batch 1": (
            lambda: [encode_chips(chip[None], model) for chip in chips32], len(chips32)),
        "keras batch 32": (lambda: encode_chips(chips32, model, batch_size=32), len(chips32)),
        "keras batch 1, mirror-averaged": (
            lambda: [encode_chips(chip[None], model, mirror=True) for chip in chips32], len(chips32)),
        "keras batch 32, mirror-averaged": (lambda: encode_chips(chips32, model, batch_size=32, mirror=True), len(chips32)),
        "course FaceNet batch 1": (lambda: [encode_chips(crop[None], course_model) for crop in crops32], len(crops32)),
        "course FaceNet batch 32": (lambda: encode_chips(crops32, course_model, batch_size=32), len(crops32)),
        "course FaceNet batch 1, standardised, mirror-averaged": (
            lambda: [encode_chips(crop[None], photo_model, mirror=True) for crop in crops32], len(crops32)),
        "course FaceNet batch 32, standardised, mirror-averaged": (
            lambda: encode_chips(crops32, photo_model, batch_size=32, mirror=True), len(crops32)),
    }, repeats)
    dlib_rate = rates["dlib compute_face_descriptor, 1 chip/call"]
    print(f"\n{'method':44s} {'enc/s':>8s} {'x dlib':>7s} {'GFLOP/s':>8s} {'ms/enc':>7s}")
    for name, rate in rates.items():
        # Mirror averaging runs the network twice per encoding.
        per_pass = COURSE_MFLOPS_PER_FACE if name.startswith("course") else MFLOPS_PER_CHIP
        flops = per_pass * (2 if "mirror" in name else 1) * rate / 1000
        print(f"{name:44s} {rate:8.1f} {rate / dlib_rate:7.1f} {flops:8.1f} {1000 / rate:7.2f}")
    default = "mirror-averaged" if MIRROR_AVERAGED else "single chip"
    print(f"keras = dlib's ResNet ({DLIB_MODEL_FOLDER}/); img_to_encoding encodes at batch 1, encode_images at "
          f"batch 32, both {default} (facerec.encode.MIRROR_AVERAGED) with it and with the photo tools' default "
          "(the course's FaceNet standardised), one pass with the course's FaceNet fed the course's way")
    for size in (1, 32):
        course_rate = rates[f"course FaceNet batch {size}"]
        print(f"course FaceNet batch {size}: {course_rate / rates[f'keras batch {size}']:.2f}x dlib's ResNet in Keras "
              f"(one pass each; {COURSE_MFLOPS_PER_FACE / MFLOPS_PER_CHIP:.1f}x its FLOPs per face)")
    for name, target in (("keras batch 32", TARGET_BATCH_32), ("keras batch 1", TARGET_BATCH_1)):
        for mirror in (False, True):
            shown = name + ", mirror-averaged" if mirror else name
            ratio = rates[shown] / dlib_rate
            print(f"target {shown}: >= {target:.0f}x dlib -> {ratio:.1f}x {'met' if ratio >= target else 'NOT met'}")

    photos = sorted((ROOT / "images").iterdir())
    networks = {"photo tools' default, course FaceNet fed FaceNet's way (decode, detect, crop, encode x2)": photo_model,
                "dlib's ResNet (decode, detect, align, encode x2)": model,
                "course FaceNet fed the course's way (libjpeg 9 decode, resize, encode)": course_model}
    for network in networks.values():
        img_to_encoding(photos[0], network)  # warm-up
    per_photo = {name: [] for name in networks}
    for _ in range(repeats):
        for name, network in networks.items():
            per_photo[name].append([timed(lambda: img_to_encoding(photo, network)) for photo in photos])
    batched = best_rates({"photo tools' default": (lambda: encode_images(photos, photo_model), len(photos)),
                          "dlib's ResNet": (lambda: encode_images(photos, model), len(photos))}, repeats)
    print(f"\nimg_to_encoding end to end, {len(photos)} course photos (96x96):")
    for name, times in per_photo.items():
        fastest = np.min(np.array(times), axis=0)
        print(f"  {name}: median {1000 * np.median(fastest):.1f} ms/photo, max {1000 * fastest.max():.1f} ms "
              f"({1 / np.median(fastest):.1f} photos/s)")
    for name, rate in batched.items():
        print(f"encode_images, {name}, the same {len(photos)} photos in one call: {1000 / rate:.1f} ms/photo "
              f"({rate:.1f} photos/s)")

    lfw_photos = [str(path) for path in sorted(LFW_FOLDER.glob("*/*_0001.jpg"))[::100][:46]]
    dlib_pipeline = DlibPipeline(dlib, face_recognition_models, dlib_net)
    whole = best_rates({
        "photo tools' default (MTCNN, margin crop, course FaceNet x2)": (
            lambda: extract_faces_from_images(lfw_photos, photo_model), len(lfw_photos)),
        "dlib's ResNet option (MTCNN, alignment, dlib's ResNet x2)": (
            lambda: extract_faces_from_images(lfw_photos, model), len(lfw_photos)),
        "dlib's own pipeline (HOG, 5-point, get_face_chip, descriptor)": (
            lambda: [dlib_pipeline.encode_photo(path) for path in lfw_photos], len(lfw_photos)),
    }, repeats)
    dlib_whole = whole["dlib's own pipeline (HOG, 5-point, get_face_chip, descriptor)"]
    print(f"\nwhole pipeline on {len(lfw_photos)} LFW photos (250x250), every face found encoded:")
    for name, rate in whole.items():
        print(f"  {name:64s} {rate:6.1f} photos/s  {rate / dlib_whole:4.2f}x dlib's own pipeline")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


class DlibPipeline:
    """dlib's own pipeline on one photo, as bench/lfw_benchmark.py runs it (every face found)."""

    def __init__(self, dlib, models, network):
        self.dlib, self.network = dlib, network
        self.detector = dlib.get_frontal_face_detector()
        self.shape_predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())

    def encode_photo(self, path: str) -> list:
        picture = self.dlib.load_rgb_image(path)
        rectangles, _, _ = self.detector.run(picture, 1, 0.0)
        chips = [self.dlib.get_face_chip(picture, self.shape_predictor(picture, rectangle), size=150, padding=0.25)
                 for rectangle in rectangles]
        return [self.network.compute_face_descriptor(chip) for chip in chips]


if __name__ == "__main__":
    main()
