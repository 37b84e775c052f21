"""A head-camera video's own camera trajectory, for a video that comes without one: structure
from motion on its frames (COLMAP's SIFT features, sequential matching and incremental mapper,
through ``pycolmap``: ``pip install 'kinpoly[reconstruct]'``).

The frames (``RATE`` per second of them, and the last) are written as images into
``out/images`` (``frame_<index>.png``, the index of the video frame), turned upright when the
rotation is known (given, or a Project Aria calibration's: the camera of the poses must be
the wearer's upright one; a video stored turned needs its rotation given), through the video's lens
when it has one (then as the flow encoder's 100-degree pinhole view, whose intrinsics are given
to the mapper; otherwise at most ``MAX_SIDE`` pixels across and the focal length estimated),
and the largest model is written as text in ``out/sparse`` (``images.txt``: the poses
``kinpoly ego import-video --head-poses`` reads, to reuse). The poses are per image name and of
no particular scale: the import pairs them with the video's frames, interpolates the frames left
out, and estimates the scale as for a monocular SLAM trajectory.

Measured on the EgoEgo ARES video (140 frames, real, never trained on): every frame registered
in 14 s, and the estimate from it matches the one from the DROID-SLAM trajectory that ships with
the video (README, "Egocentric data").
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .take import EgoDataError

log = logging.getLogger(__name__)

RATE = 15.0  # frames per second given to the mapper (the rest are interpolated)
MAX_SIDE = 320  # pixels across of a frame without a lens, as given to the mapper
VIEW = 256  # side of the pinhole view of a frame through its lens
SEED = 0


def frame_name(index: int) -> str:
    return f"frame_{index:06d}.png"


class _Shrink:
    """A frame resized by ``scale`` (area averaging; as it is when 1)."""

    def __init__(self, scale: float):
        self.scale = scale

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        if self.scale >= 1.0:
            return frame
        h, w = frame.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _write(path: Path, rgb: np.ndarray) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def reconstruct(video: str | os.PathLike, out: str | os.PathLike, *, fps: float | None = None, lens=None,
                rotation: int | str = "auto", rate: float = RATE) -> Path:
    """Reconstruct the camera trajectory of ``video`` (a file, a folder or pattern of frames, or
    a VRS recording) into ``out`` (module docstring); the path of its ``images.txt``. The frames are turned upright first (``rotation`` degrees
    clockwise; "auto": as a Project Aria calibration's mounting says, else as stored), so that
    the reconstructed camera is the wearer's upright one. A one-line error without pycolmap or
    when nothing registers."""
    try:
        import pycolmap
    except ImportError:
        raise EgoDataError(f"{video}: a video without a trajectory needs pycolmap to reconstruct one "
                           f"(pip install 'kinpoly[reconstruct]'), or give its trajectory (--head-poses)") from None
    from .video import ENCODER_FOVY, VideoSource, mounting_rotation, turn_upright

    out = Path(out)
    images, sparse = out / "images", out / "sparse"
    images.mkdir(parents=True, exist_ok=True)
    sparse.mkdir(parents=True, exist_ok=True)
    for old in images.glob("frame_*.png"):  # a reconstruction of another video before
        old.unlink()
    source = VideoSource.open(video, fps, lens=lens)
    if rotation == "auto":
        rotation = mounting_rotation(source.lens, "aria") or 0
    step = max(1, int(round(source.fps / rate)))
    view, i, frame = None, -1, None
    for i, (_, frame) in enumerate(source._stored()):
        if view is None:
            h, w = frame.shape[:2]
            view = (source.viewer((w, h), VIEW, VIEW, ENCODER_FOVY, narrow=False) if source.lens is not None else
                    _Shrink(min(1.0, MAX_SIDE / max(w, h))))
        if i % step == 0:
            _write(images / frame_name(i), turn_upright(view(frame), int(rotation)))
    if i % step:  # the last frame too: the take ends there
        _write(images / frame_name(i), turn_upright(view(frame), int(rotation)))
    count = i + 1

    pycolmap.set_random_seed(SEED)
    database = out / "database.db"
    database.unlink(missing_ok=True)
    reader = pycolmap.ImageReaderOptions()
    if source.lens is not None:  # the pinhole view: its intrinsics are known
        f = VIEW / 2 / np.tan(np.radians(ENCODER_FOVY) / 2)
        reader.camera_model = "PINHOLE"
        reader.camera_params = f"{f},{f},{VIEW / 2},{VIEW / 2}"
    # one thread throughout: threads finishing in another order change the result
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = 1
    pycolmap.extract_features(database, images, camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader,
                              extraction_options=extraction, device=pycolmap.Device.cpu)
    matching, pairing = pycolmap.FeatureMatchingOptions(), pycolmap.SequentialPairingOptions()
    matching.num_threads = pairing.num_threads = 1
    pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu)
    options = pycolmap.IncrementalPipelineOptions()
    options.random_seed = SEED
    options.num_threads = 1
    if source.lens is not None:
        options.ba_refine_focal_length = options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
    models = pycolmap.incremental_mapping(database, images, sparse, options)
    if not models:
        raise EgoDataError(f"{video}: the reconstruction registered no frames (too little texture or motion "
                           f"parallax?); give the video's trajectory (--head-poses)")
    best = max(models.values(), key=lambda m: m.num_reg_images())
    best.write_text(str(sparse))
    written = len(list(images.glob("frame_*.png")))
    log.info("%s: the reconstruction registered %d of %d frames given (%d video frames)", video,
             best.num_reg_images(), written, count)
    return sparse / "images.txt"
