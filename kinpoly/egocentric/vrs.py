"""Project Aria recordings (``.vrs``) as head-camera video: one camera's frames at their capture
times, and the camera's factory calibration (its lens and how it is mounted).

A VRS file is what the glasses record; Aria datasets (Aria Everyday Activities, ADT, Nymeria,
Ego-Exo4D) ship it beside the MPS trajectory (``closed_loop_trajectory.csv``), whose
``tracking_timestamp_us`` is in the same device clock as the frames' capture times, so the two
pair by time with no offset. The camera is ``camera-rgb`` unless the path names another after
``#`` (``recording.vrs#camera-slam-left``; grayscale cameras give gray RGB frames).

Reading needs Meta's ``projectaria-tools`` (``pip install 'kinpoly[aria]'``); only its
``core`` bindings are used.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .take import EgoDataError

DEFAULT_CAMERA = "camera-rgb"


def split_label(path: str | Path) -> tuple[Path, str]:
    """``recording.vrs#label`` -> (path, label); the RGB camera when no label is given."""
    text = str(path)
    if "#" in text and not Path(text).exists():
        file, label = text.rsplit("#", 1)
        return Path(file), label or DEFAULT_CAMERA
    return Path(text), DEFAULT_CAMERA


def is_vrs(path: str | Path) -> bool:
    return split_label(path)[0].suffix.lower() == ".vrs"


@dataclass
class VrsCamera:
    """One camera stream of a VRS recording (:func:`open_camera`)."""

    path: Path
    label: str
    provider: object
    stream: object
    times: np.ndarray  # (T,) capture times, s, device clock

    @property
    def fps(self) -> float:
        return float(1.0 / np.median(np.diff(self.times))) if len(self.times) > 1 else 30.0

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(capture time s, RGB uint8 (H, W, 3)) of every frame."""
        for i, t in enumerate(self.times):
            image, _ = self.provider.get_image_data_by_index(self.stream, i)
            rgb = np.asarray(image.to_numpy_array())
            if rgb.ndim == 2:
                rgb = np.repeat(rgb[..., None], 3, axis=2)
            yield float(t), np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)

    def lens(self):
        """The camera's factory calibration as a :class:`.lens.Lens`, with its mounting."""
        from .lens import aria_lens, rotation_rows

        calib = self.provider.get_device_calibration()
        cam = calib.get_camera_calib(self.label) if calib is not None else None
        if cam is None:
            raise EgoDataError(f"{self.path}: the recording has no calibration of {self.label}")
        params = getattr(cam, "get_projection_params", None) or cam.projection_params
        width, height = (int(v) for v in cam.get_image_size())
        lens = aria_lens(str(cam.get_model_name()), list(params()), (width, height), f"{self.path}#{self.label}")
        return replace(lens, mount=rotation_rows(cam.get_transform_device_camera().rotation().to_matrix()))


def open_camera(path: str | Path) -> VrsCamera:
    """The camera stream ``path`` names (``recording.vrs`` or ``recording.vrs#label``); a
    one-line error for a missing file, a missing projectaria-tools, an unknown camera or one
    without frames. Opened once per file and label (a video source asks for it to open, to
    read its frames and for its first frame's time: opening reads the recording's index)."""
    file, label = split_label(path)
    if not file.is_file():
        raise EgoDataError(f"{file}: no such VRS recording")
    return _open_camera(file, label, file.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _open_camera(file: Path, label: str, modified_ns: int) -> VrsCamera:  # modified_ns: a rewritten file is new
    try:
        from projectaria_tools.core import data_provider
    except ImportError:
        raise EgoDataError(f"{file}: reading a Project Aria VRS recording needs projectaria-tools "
                           f"(pip install 'kinpoly[aria]'), or its frames exported as images") from None
    provider = data_provider.create_vrs_data_provider(str(file))
    if provider is None:
        raise EgoDataError(f"{file}: not a readable VRS recording")
    stream = provider.get_stream_id_from_label(label)
    if stream is None:
        cameras = [provider.get_label_from_stream_id(s) for s in provider.get_all_streams()]
        raise EgoDataError(f"{file}: no stream {label!r} (cameras: "
                           f"{', '.join(c for c in cameras if c and c.startswith('camera'))})")
    from projectaria_tools.core.sensor_data import TimeDomain

    times = np.asarray(provider.get_timestamps_ns(stream, TimeDomain.DEVICE_TIME), dtype=np.float64) * 1e-9
    if len(times) < 1:
        raise EgoDataError(f"{file}: the {label} stream has no frames")
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise EgoDataError(f"{file}: the {label} frames' capture times do not increase")
    return VrsCamera(file, label, provider, stream, times)
