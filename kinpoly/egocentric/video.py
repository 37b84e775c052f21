"""``kinpoly ego import-video``: a real head-camera video + its camera trajectory -> an
:class:`~kinpoly.egocentric.take.EgoTake` (the same sample type as the synthetic takes).

Steps: read the video (every frame, its fps; a video file or a folder of image files), read the
trajectory (:mod:`.trajectory`), pair one pose per frame (by timestamps, or one row per frame
when the file has none), convert to kinpoly's head frame and a Z-up world, compute DIS flow on
the frames as the encoder reads them (:func:`encoder_view`), turned upright (the rotation
given, or the one whose flow turns the way the trajectory does), encode it (image features and
a metric head-velocity estimate; checked in step with the trajectory), estimate the metric
scale of a monocular trajectory from the wearer's gait and that velocity (:mod:`.scale`,
unless ``scale`` is given), and derive the head features. Errors name the file and what does
not match.

The flow encoder was trained on square head-camera renders (:mod:`.build`: 100 degrees field of
view, upright). A landscape frame is cut to its centre square, not squashed: squashing a 16:9
video to a square stretches its horizontal flow against its vertical
(`benchmarks/video_geometry.py`). A stored frame that is not upright (Project Aria's RGB
camera is mounted turned 90 degrees; a phone held sideways) shows a head's yaw as vertical
flow, which the encoder reads as pitch. The flow encoder's head rotation also tells whether
the video is in step with the trajectory (:func:`video_lag`); a clear shift is reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .lens import Lens, Rectifier, load_lens
from .take import EgoDataError, EgoTake
from .vrs import is_vrs, open_camera

log = logging.getLogger(__name__)

TAKE_FPS = 30.0  # frame rate of imported takes: the policy's and the controller's
# Fastest plausible eye speed (m/s; sprinters reach about 12): a faster step between frames is a
# tracking jump (relocalisation, a wrong time unit or scale), which no body can follow.
MAX_HEAD_SPEED = 15.0
VIDEO_SIZE = (128, 128)  # (width, height) head-camera frames are resized to before optical flow
ENCODER_FOVY = 100.0  # vertical field of view (degrees) of the renders the flow encoder was trained on
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Degrees clockwise that turn a stored frame upright; "auto" picks one by the flow (import_video).
VIDEO_ROTATIONS = (0, 90, 180, 270)
# Rotation detection: the head's yaw and pitch rates must move by this much (RMS, rad/s) for the
# flow to tell a rotation, and the rotation taken must agree with them this much better than the
# frames as stored (cosine of the centred rates; see benchmarks/video_geometry.py).
ROTATION_MIN_RATE = 0.1
ROTATION_MIN_GAIN = 0.3
# Synchronisation check: the shifts (frames at 30 Hz) tried between the video's head turns and
# the trajectory's, and when a shift is reported as a likely wrong --time-offset.
SYNC_MAX_LAG = 30
SYNC_MIN_LAG = 3
SYNC_MIN_AGREEMENT = 0.5
SYNC_MIN_GAIN = 0.2
SYNC_MIN_SPEED_GAIN = 0.1  # a shift is taken at all only when the turn speeds agree this much better
# A trajectory of poses per image (a reconstruction) may leave frames at the video's ends without a
# pose: the take is then cut to the frames between, if they are at least this share of the video.
MIN_POSED_SHARE = 0.5
# Ground truth is turned onto a take by their head paths when the take's head moves this much
# (RMS about its mean, m), else by their headings (a standing take's path gives no direction).
MIN_ALIGN_SPREAD = 0.05
# A number in frame file names below this is a frame number, not a capture time (a device clock in
# ms passes it after 17 minutes, in us or ns at once; frame numbers rarely reach it).
MIN_TIMESTAMP = 1e6


def encoder_view(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """What the flow encoder reads of an (H, W, C) frame, resized to (height, width): a frame
    wider than tall is cut to its centre square, whose view spans the frame's vertical field of
    view as the encoder's square renders do; a taller one is squashed whole (cut, its view would
    narrow to its width's; ``benchmarks/video_geometry.py`` measured both ways)."""
    import cv2

    h, w = image.shape[:2]
    if w > h:
        x0 = (w - h) // 2
        image = image[:, x0:x0 + h]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class _EncoderView:
    """:func:`encoder_view` at (height, width), as :class:`.lens.Rectifier` is called."""

    width: int
    height: int
    fovy = coverage = None  # the video's own

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return encoder_view(frame, self.width, self.height)


@dataclass(frozen=True)
class VideoSource:
    """Where a take's head-camera frames come from: a video file, a folder or pattern of image
    files (one per frame, in name order) or a Project Aria VRS recording; its frame rate, the
    degrees clockwise that turn its frames upright, and its camera's lens when it is not a
    pinhole (:mod:`.lens`: a fisheye)."""

    path: Path
    fps: float
    rotation: int = 0
    lens: Lens | None = None
    first_frame: int = 0  # the frames before it are not the take's (a reconstruction that missed them)

    @classmethod
    def open(cls, path: str | os.PathLike, fps: float | None = None, rotation: int = 0,
             lens: Lens | None = None) -> VideoSource:
        """The source of ``path``, its frame rate from the file or from the capture times in its
        frames' file names (:func:`frame_timestamps`; checked against ``fps`` to 1%), or, for
        frames without them, ``fps`` (required)."""
        import cv2

        path = Path(path)
        turn_upright(np.zeros((0, 1, 1, 3), np.uint8), rotation)  # checks the value
        if is_vrs(path):  # a Project Aria recording: its frames' capture times and its camera's calibration
            camera = open_camera(path)
            if fps is not None and abs(camera.fps - fps) > 0.01 * fps:
                raise EgoDataError(f"{path}: the {camera.label} frames are at {camera.fps:.3f} frames/s, not {fps:g}")
            return cls(path, camera.fps, rotation, lens if lens is not None else camera.lens())
        if path.is_dir() or is_frame_pattern(path):
            stamps = frame_timestamps(frame_files(path))
            if stamps is not None:
                rate = 1.0 / float(np.median(np.diff(stamps)))
                if fps is not None and abs(rate - fps) > 0.01 * fps:
                    raise EgoDataError(f"{path}: the frames' file names give their capture times, {rate:.3f} "
                                       f"frames/s, not {fps:g}")
                fps = rate
            if fps is None:
                raise EgoDataError(f"{path}: frames whose file names hold no capture times have no frame rate: "
                                   f"give it (--fps); for a folder of several cameras' frames, a pattern of one's "
                                   f"files ('frames/rgb_*.jpg')")
            if not (1.0 <= fps <= 1000.0):
                raise EgoDataError(f"{path}: frame rate must be between 1 and 1000, got {fps:g}")
            return cls(path, float(fps), rotation, lens)
        if not path.is_file():
            raise EgoDataError(f"{path}: no such video file, folder of frames or pattern of frame files")
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise EgoDataError(f"{path}: unreadable video (OpenCV/FFmpeg cannot open it)")
            rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if not cap.read()[0]:
                raise EgoDataError(f"{path}: unreadable video (no frame could be decoded)")
        finally:
            cap.release()
        if not (1.0 <= rate <= 1000.0):
            raise EgoDataError(f"{path}: the video reports an invalid frame rate ({rate:g})")
        if fps is not None and abs(rate - fps) > 0.01 * fps:
            raise EgoDataError(f"{path}: video is at {rate:.3f} fps, expected {fps}")
        return cls(path, rate, rotation, lens)

    def capture_start(self) -> float | None:
        """The capture time (s) of the first frame, in the recorder's clock, when the frames'
        file names hold their capture times (:func:`frame_timestamps`), else None."""
        if is_vrs(self.path):
            return float(open_camera(self.path).times[0])
        if not (self.path.is_dir() or is_frame_pattern(self.path)):
            return None
        stamps = frame_timestamps(frame_files(self.path))
        return None if stamps is None else float(stamps[0])

    def viewer(self, frame_size: tuple[int, int], width: int, height: int, fovy: float = ENCODER_FOVY,
               narrow: bool = True):
        """What turns a stored frame of ``frame_size`` (width, height) into the view the flow
        encoder reads, (height, width): through the lens a pinhole's view of ``fovy`` degrees
        (:class:`.lens.Rectifier`; ``narrow``: no wider than the frames cover), else
        :func:`encoder_view`. Its ``fovy`` attribute: the view's field of view, None for the
        video's own."""
        if self.lens is not None:
            return Rectifier(self.lens, frame_size, width, height, fovy, narrow)
        return _EncoderView(width, height)

    def timed_views(self, width: int, height: int, fovy: float = ENCODER_FOVY,
                    narrow: bool = True) -> Iterator[tuple[float, np.ndarray]]:
        """(time in s, frame as the flow encoder reads it, (height, width), turned upright) of
        every frame from ``first_frame`` on (:meth:`viewer`)."""
        view = None
        for i, (t, f) in enumerate(self._stored(self._reduction(width, height, fovy))):
            if i < self.first_frame:
                continue
            if view is None:
                view = self.viewer((f.shape[1], f.shape[0]), width, height, fovy, narrow)
            yield t, turn_upright(view(f), self.rotation)

    def _reduction(self, width: int, height: int, fovy: float) -> int:
        """1, 2, 4 or 8: the factor JPEG frames can be decoded smaller by (libjpeg's scaled
        decoding, about 3 times faster for Aria's 1408 x 1408 frames) and still hold twice the
        detail of the view read from them (:meth:`viewer`); 1 for other sources."""
        import cv2

        if not (self.path.is_dir() or is_frame_pattern(self.path)):
            return 1
        first = frame_files(self.path)[0]
        if first.suffix.lower() not in (".jpg", ".jpeg"):
            return 1
        bgr = cv2.imread(str(first), cv2.IMREAD_COLOR)
        if bgr is None:
            return 1  # _stored says what is wrong with it
        h, w = bgr.shape[:2]
        if self.lens is None:
            need = max(width, height)  # encoder_view's output
        else:  # what the lens's view first shrinks the frame to, if it does
            small = self.viewer((w, h), width, height, fovy).small
            need = min(w, h) if small is None else min(small)
        return max(r for r in (1, 2, 4, 8) if min(w, h) / r >= 2 * need)

    def _stored(self, reduce: int = 1) -> Iterator[tuple[float, np.ndarray]]:
        """(time in s, frame as stored, RGB uint8 (H, W, 3)) of every frame: a file's presentation
        times (which a variable-frame-rate video, as phones record, spaces unevenly), a folder's at
        ``fps``; a one-line error for an unreadable frame or a folder whose images differ in size.
        ``reduce``: JPEG frames decoded that many times smaller (:meth:`_reduction`)."""
        import cv2

        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]

        if is_vrs(self.path):
            yield from open_camera(self.path).frames()
            return
        if self.path.is_dir() or is_frame_pattern(self.path):
            files = frame_files(self.path)
            stamps = frame_timestamps(files)
            times = np.arange(len(files)) / self.fps if stamps is None else stamps
            size = None
            for t, f in zip(times, files):
                bgr = cv2.imread(str(f), flag if f.suffix.lower() in (".jpg", ".jpeg") else cv2.IMREAD_COLOR)
                if bgr is None:
                    raise EgoDataError(f"{f}: unreadable image")
                if size is not None and bgr.shape != size:
                    raise EgoDataError(f"{f}: {bgr.shape[1]}x{bgr.shape[0]}, but the frames before it are "
                                       f"{size[1]}x{size[0]}" + ("" if is_frame_pattern(self.path) else
                                       " (a folder of several cameras' frames? give a pattern of one's files, "
                                       f"e.g. '{self.path / (f.name.split('_')[0] + '_*' + f.suffix)}')"))
                size = bgr.shape
                yield float(t), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                t = cap.get(cv2.CAP_PROP_POS_MSEC) * 1e-3
                yield (t if np.isfinite(t) else i / self.fps), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                i += 1
        finally:
            cap.release()


def is_frame_pattern(path: Path) -> bool:
    """Whether ``path`` is a pattern of frame files (``frames/rgb_*.jpg``), not a file or folder."""
    return any(c in str(path) for c in "*?[") and not path.exists()


def frame_files(path: Path) -> list[Path]:
    """The image files of a folder of frames or of a pattern (``frames/rgb_*.jpg``), in name
    order; a one-line error when there are none."""
    if is_frame_pattern(path):
        import glob

        files = sorted(f for f in map(Path, glob.glob(str(path))) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EgoDataError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) match this pattern")
        return files
    files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
    if not files:
        raise EgoDataError(f"{path}: a folder of frames needs image files ({', '.join(IMAGE_SUFFIXES)}); none found")
    return files


def video_name(path: Path) -> str:
    """A take's default name from its video: the file's or folder's name; a pattern's without
    its wildcards (``frames/rgb_*.jpg``: rgb), or its folder's."""
    if is_vrs(path):
        from .vrs import split_label

        file, label = split_label(path)
        return file.stem if label == "camera-rgb" else f"{file.stem}_{label}"
    if not is_frame_pattern(path):
        return path.stem
    import re

    return re.sub(r"[*?\[\]]", "", path.stem).strip("_-. ") or path.parent.name or "frames"


def frame_timestamps(files: list[Path]) -> np.ndarray | None:
    """The capture times (s) that frames' file names hold, as Project Aria's tools and many
    recorders name them (``rgb_00_87551170813262.jpg``: ns): the last run of digits of every
    name, increasing from at least ``MIN_TIMESTAMP``, read in the unit (ns, us or ms) that puts
    the frames 1-1000 per second apart; None when the names do not hold such times (frame
    numbers: ``frame_000010.jpg``)."""
    import re

    runs = [re.findall(r"\d+", f.stem) for f in files]
    if len(files) < 2 or not all(runs):
        return None
    stamps = np.array([int(r[-1]) for r in runs], dtype=np.float64)
    steps = np.diff(stamps)
    if not (steps > 0).all() or stamps[0] < MIN_TIMESTAMP:
        return None
    for unit in (1e-9, 1e-6, 1e-3):
        if 1e-3 <= np.median(steps) * unit <= 1.0:
            return stamps * unit
    return None


class VideoFrames(NamedTuple):
    frames: np.ndarray  # (T, H, W, 3) RGB uint8 as the flow encoder reads them, not turned
    fps: float
    size: tuple[int, int]  # the stored frames' (width, height)
    times: np.ndarray | None  # (T,) s from the first frame, for a variable-frame-rate video
    fovy: float | None = None  # the view's vertical field of view through a lens (None: the video's own)
    coverage: float | None = None  # the widest the lens's frames cover whole (degrees)
    start: float | None = None  # the first frame's capture time (s) when the file names (or a VRS) hold it
    lens: Lens | None = None  # the lens the frames were read through (given, or a VRS recording's own)


def read_video(path: str | os.PathLike, width: int, height: int, fps: float | None = None,
               lens: Lens | None = None, fovy: float = ENCODER_FOVY) -> VideoFrames:
    """All frames as the flow encoder reads them at (height, width), RGB uint8 (T, H, W, 3), as
    stored (not turned): through ``lens`` a pinhole's view of ``fovy`` degrees, narrower where
    the frames cover less (:class:`.lens.Rectifier`), else :func:`encoder_view`; the frame rate;
    the original (width, height); and, for a video whose frames are not evenly spaced (by more
    than half a frame at its mean rate: variable frame rate), their times (T,) in s from the
    first, else None.

    ``path`` is a video file (OpenCV/FFmpeg; ``fps``, when given, must agree with the file's to
    1%), a folder or pattern of image files, one per frame in file-name order (``fps`` required
    unless their names hold capture times), or a Project Aria VRS recording (:mod:`.vrs`)."""
    source = VideoSource.open(path, fps, lens=lens)  # a file with no frame or a folder without images: an error
    frames, times, view = [], [], None
    for t, f in source._stored(source._reduction(width, height, fovy)):
        if view is None:
            size = (f.shape[1], f.shape[0])
            view = source.viewer(size, width, height, fovy)
        frames.append(view(f))
        times.append(t)
    times = np.asarray(times) - times[0]
    even = np.arange(len(times)) / source.fps
    uneven = len(times) > 1 and np.all(np.diff(times) > 0) and np.abs(times - even).max() > 0.5 / source.fps
    return VideoFrames(np.stack(frames), source.fps, size, times if uneven else None, view.fovy, view.coverage,
                       source.capture_start(), source.lens)


def estimate_fovy(pair_flows: np.ndarray, turns: np.ndarray) -> tuple[float | None, float]:
    """The vertical field of view (degrees) of a pinhole video from its optical flow and its
    head's rotation: near the image centre a camera turning by (yaw, pitch) radians moves the
    picture by focal length x (yaw, -pitch), whatever the scene's depth (translation adds flow
    that the centre's median and the fit's trimming mostly leave out).

    ``pair_flows`` (N, 2, S, S): the flow of each frame pair in grid cells of the S x S grid
    (:func:`.flow.pool_flow`; the frames upright); ``turns`` (N, 2): the head's yaw (left) and
    pitch (down) over each pair, radians. Returns the field of view, or None when the head turns
    too little to tell (under 0.5 rad in all), and the share of the flow the fit explains."""
    s = pair_flows.shape[-1]
    lo, hi = s // 4, s - s // 4
    centre = np.median(pair_flows[:, :, lo:hi, lo:hi].reshape(len(pair_flows), 2, -1), axis=2)  # (N, 2)
    a = np.stack([turns[:, 0], -turns[:, 1]], axis=1)
    if np.abs(turns).sum() < 0.5:
        return None, 0.0
    keep = np.ones(len(a), bool)
    for _ in range(3):  # least squares, then again without the fifth of frames it fits worst
        f = float(np.sum(centre[keep] * a[keep]) / max(np.sum(a[keep] ** 2), 1e-12))
        err = np.linalg.norm(centre - f * a, axis=1)
        keep = err <= np.quantile(err, 0.8)
    explained = 1.0 - float(np.sum((centre[keep] - f * a[keep]) ** 2) / max(np.sum(centre[keep] ** 2), 1e-12))
    if f <= 0:
        return None, explained
    return float(np.degrees(2 * np.arctan(s / 2 / f))), explained


def looks_fisheye(frames: np.ndarray) -> bool:
    """Whether frames (T, H, W, 3) look like a fisheye lens's: the corners dark in every frame
    (outside the lens's image circle, as Project Aria's RGB frames are), the middle of each side
    less so (not black bars: a letterboxed video) and the middle of the frame not."""
    h, w = frames.shape[1:3]
    k = max(1, min(h, w) // 16)
    y, x = h // 2 - k // 2, w // 2 - k // 2

    def means(*patches):
        return np.stack([p.reshape(len(frames), -1).mean(-1) for p in patches])  # (patches, T)

    corners = means(frames[:, :k, :k], frames[:, :k, -k:], frames[:, -k:, :k], frames[:, -k:, -k:])
    sides = means(frames[:, :k, x:x + k], frames[:, -k:, x:x + k], frames[:, y:y + k, :k], frames[:, y:y + k, -k:])
    return bool(corners.max() < 8 and sides.mean(1).min() > corners.mean() + 5
                and frames[:, y - k:y + 2 * k, x - k:x + 2 * k].mean() > 30)


def turn_upright(frames: np.ndarray, rotation: int) -> np.ndarray:
    """A frame (H, W, C), or frames (T, H, W, C), turned ``rotation`` degrees clockwise (one of
    VIDEO_ROTATIONS)."""
    if rotation not in VIDEO_ROTATIONS:
        raise EgoDataError(f"video rotation must be one of {', '.join(map(str, VIDEO_ROTATIONS))} degrees "
                           f"(clockwise) or auto, got {rotation}")
    return np.ascontiguousarray(np.rot90(frames, k=-(rotation // 90), axes=(-3, -2)))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine between two centred series (rows: frames)."""
    a, b = a - a.mean(0), b - b.mean(0)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.sum(a * b) / denom) if denom > 0 else 0.0


def _head_turn_rates(head_pose: np.ndarray, fps: float) -> np.ndarray:
    """(T, 2) yaw and pitch rates (rad/s, head frame) of head poses (T, 7) of any scale, as the
    flow encoder estimates them (its velocity's last two components)."""
    from .features import head_local_velocities

    return head_local_velocities(head_pose, fps)[:, 4:6]


def head_turn_rate(head_pose: np.ndarray, fps: float) -> float:
    """RMS (rad/s) of the head's yaw and pitch rates about their means (head poses (T, 7))."""
    rates = _head_turn_rates(head_pose, fps)
    return float(np.sqrt(np.mean(np.sum((rates - rates.mean(0)) ** 2, axis=1))))


def _shifted(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlap of two series when ``a`` runs ``lag`` frames behind ``b``."""
    n = len(a)
    return a[max(lag, 0):n + min(lag, 0)], b[max(-lag, 0):n - max(lag, 0)]


def video_lag(pred_vel: np.ndarray, head_pose: np.ndarray, fps: float, max_lag: int) -> int:
    """The shift (frames) at which the flow encoder's head turns (``pred_vel``, (T, 6) per take
    frame) follow the trajectory's (``head_pose`` (T, 7), any scale) best: > 0 when the video
    shows them that many frames after the trajectory does. Read from the turn speeds (the norm
    of the yaw and pitch rates), which turning the picture does not change, over shifts up to
    ``max_lag`` frames and a quarter of the take. 0 unless a shift agrees ``SYNC_MIN_SPEED_GAIN``
    better than none: a head turning to and fro at a steady rhythm agrees about as well half a
    swing later, where its turns are reversed, as a picture upside down would show them."""
    pred = np.linalg.norm(np.asarray(pred_vel, dtype=np.float64)[:, 4:6], axis=1)[:, None]
    true = np.linalg.norm(_head_turn_rates(head_pose, fps), axis=1)[:, None]
    max_lag = max(0, min(int(max_lag), len(pred) // 4))
    agree = {lag: _cosine(*_shifted(pred, true, lag)) for lag in range(-max_lag, max_lag + 1)}
    best = max(agree, key=lambda lag: (agree[lag], -abs(lag)))
    return best if agree[best] - agree[0] >= SYNC_MIN_SPEED_GAIN else 0


def turn_agreement(pred_vel: np.ndarray, head_pose: np.ndarray, fps: float, lag: int = 0) -> float:
    """How well the flow encoder's head rotation turns as the trajectory's head does, the video
    ``lag`` frames behind: the cosine between the two centred yaw and pitch rate series."""
    return _cosine(*_shifted(np.asarray(pred_vel, dtype=np.float64)[:, 4:6], _head_turn_rates(head_pose, fps), lag))


def _orient_and_check_sync(encode, video_rotation, unit_head: np.ndarray, video: Path, time_offset: float | None,
                           report: dict, apply_shift: bool = False, prior: tuple[int, str] = (0, "stored")):
    """The image features and head velocities of the video turned upright: by ``video_rotation``
    degrees, or ("auto") by the rotation whose flow turns the way the trajectory's head does
    (``unit_head``), by ``ROTATION_MIN_GAIN`` over the ``prior`` rotation (degrees, and where it
    comes from: the frames as stored, or the camera's mounting in a lens calibration), when the
    head turns enough to tell, else by the prior. Both are compared where the video's turn speeds follow the trajectory's
    best (:func:`video_lag`), so that a video out of step with its trajectory is turned right
    too. A shift of ``SYNC_MIN_LAG`` frames or more that agrees clearly better than the pairing
    is reported as a warning (a wrong ``--time-offset``: a video and a trajectory from different
    clocks or starts; for a trajectory without timestamps, ``time_offset`` None, rows that do
    not start with the video); the pairing is not changed here. Both go in ``report``; the
    shift's offset (``time_offset`` less the shift) goes in ``report["video_lag"]["offset"]``
    when it is clear, and ``apply_shift`` words the warning as the caller applying it."""
    rotations = VIDEO_ROTATIONS if video_rotation == "auto" else (int(video_rotation),)
    encoded = {r: encode(r) for r in rotations}
    lag = video_lag(encoded[rotations[0]][1], unit_head, TAKE_FPS, SYNC_MAX_LAG)
    agree = {r: round(turn_agreement(encoded[r][1], unit_head, TAKE_FPS, lag), 4) for r in rotations}
    if video_rotation == "auto":
        best, (base, base_source) = max(VIDEO_ROTATIONS, key=agree.get), prior
        rate = head_turn_rate(unit_head, TAKE_FPS)
        told = rate >= ROTATION_MIN_RATE and agree[best] - agree[base] >= ROTATION_MIN_GAIN
        rotation = best if told else base
        report["video_rotation"] = {"degrees": rotation, "source": "auto" if told else base_source,
                                    "head_turn_rate": round(rate, 4),
                                    "agreement": {str(r): agree[r] for r in VIDEO_ROTATIONS}}
        if told:
            log.warning("%s: the frames are turned %d degrees clockwise to be upright: their flow turns the way the "
                        "trajectory's head does only then (agreement %.2f against %.2f %s); --video-rotation "
                        "%d keeps them so", video, rotation, agree[rotation], agree[base],
                        "as stored" if base_source == "stored" else f"turned {base} as the {base_source} says", base)
    else:
        rotation = rotations[0]
        report["video_rotation"] = {"degrees": rotation, "source": "given"}
    feats, pred_vel = encoded[rotation]
    sync = {"lag": lag, "seconds": round(lag / TAKE_FPS, 4), "agreement": agree[rotation],
            "agreement_unshifted": round(turn_agreement(pred_vel, unit_head, TAKE_FPS), 4)}
    report["video_lag"] = sync
    if (abs(lag) >= SYNC_MIN_LAG and sync["agreement"] >= SYNC_MIN_AGREEMENT
            and sync["agreement"] - sync["agreement_unshifted"] >= SYNC_MIN_GAIN):
        if time_offset is not None:
            sync["offset"] = round(time_offset - sync["seconds"], 4)
            fix = (f"paired with --time-offset {sync['offset']:.3f} instead" if apply_shift else
                   f"if the two are not in step, pass --time-offset {sync['offset']:.3f} (or auto)")
        else:
            fix = (f"if the two are not in step, leave out the first {abs(sync['seconds']):.2f} s of the "
                   f"{'video' if lag > 0 else 'trajectory'} (a trajectory without timestamps has no offset to shift)")
        log.warning("%s: the video shows the head's turns %.2f s %s the trajectory does (agreement %.2f against %.2f "
                    "as paired): %s", video, abs(sync["seconds"]), "after" if lag > 0 else "before",
                    sync["agreement"], sync["agreement_unshifted"], fix)
    return feats, pred_vel


@dataclass
class ImportResult:
    take: EgoTake
    report: dict
    video: VideoSource | None = None  # the frames the take was made from, turned as they were read


def import_video(video: str | os.PathLike, head_poses: str | os.PathLike | None, *, name: str | None = None,
                 fmt: str = "auto", fps: float | None = None, scale: float | None = None,
                 eye_height: float = 1.6, time_offset: float | str | None = None, width: int = VIDEO_SIZE[0],
                 height: int = VIDEO_SIZE[1],
                 video_fovy: float | None = None, encoder_fovy: float = ENCODER_FOVY, encoder: str | None = None,
                 video_rotation: int | str = "auto", video_lens: str | os.PathLike | Lens | None = None,
                 world_to_camera: bool = False, action: str | None = None,
                 flow_preset: str = "ultrafast", body_height: float | None = None,
                 objects=None, reconstruction: str | os.PathLike | None = None) -> ImportResult:
    """Build an egocentric take from a head-camera video and its camera trajectory.

    ``head_poses`` None: the trajectory is reconstructed from the video's own frames
    (:mod:`.reconstruct`, into the folder ``reconstruction``, else a temporary one).

    ``video``: a video file, or a folder of image files or a pattern of them
    (``frames/rgb_*.jpg``), one per frame in name order, whose file names may hold their
    capture times (:func:`frame_timestamps`; else ``fps`` is their frame rate). The take is at
    ``TAKE_FPS`` (30 Hz, what the policy and
    controller run at): a video at another rate is resampled in time (head poses at the 30 Hz
    times, image features interpolated between the video frames, its optical flow rescaled to a
    1/30 s interval); a variable-frame-rate video at its frames' own times
    (``report["variable_frame_rate"]``). ``fps``: the expected video frame rate (an error if
    the file says otherwise by > 1%). ``time_offset``: trajectory time (s) of the first video
    frame less the trajectory's first time, for timestamped formats (default: the frames'
    capture times when their file names hold them and they fall within the trajectory's times,
    one clock as a Project Aria recording's; else 0, the two starting together); the video's head
    turns are checked against the trajectory's (``report["video_lag"]``), and a clear shift is
    a warning with the offset that removes it; ``"auto"`` pairs with that offset (found within
    1 s of that default, which it keeps when no clear shift is found; ``report["time_offset"]``
    says which). The encoder reads
    each frame as :func:`encoder_view` gives it. ``video_fovy``: the video's vertical field of
    view; flow is rescaled from it to the encoder's ``encoder_fovy`` (default: assumed equal);
    ``"auto"``: the one its flow and the head's turns give (:func:`estimate_fovy`), which is
    reported in any case (``report["video_fovy"]["found"]``, with a warning when far from the
    one assumed).
    ``video_lens``: the video camera's lens, a :class:`.lens.Lens` or what
    :func:`.lens.load_lens` reads (a calibration file, ``"fisheye:DEGREES"``): each frame is
    resampled as the encoder's pinhole camera would see it (``report["video_lens"]``); without
    it, frames that look like a fisheye's (dark corners) get a warning.
    ``video_rotation``: degrees clockwise that turn the stored frames upright, or ``"auto"``:
    the rotation whose flow turns the way the trajectory's head does, by a clear margin over the
    frames as stored (``report["video_rotation"]``; needs the flow encoder and a head that
    turns). ``body_height``: the wearer's standing height (m) for the gait scale prior
    (default: ``eye_height`` / 0.936). Without ``scale``, a monocular trajectory's scale is
    estimated (:func:`.scale.estimate_metric_scale`: gait, and the flow encoder when a
    checkpoint exists); ``report["scale_estimate"]`` has each component. ``objects``: an
    objects file or :class:`.objects.SceneInput` in the trajectory's world (:mod:`.objects`).
    """
    from .features import head_velocities
    from .trajectory import resample, to_head_poses

    if video_rotation != "auto":
        turn_upright(np.zeros((0, 1, 1, 3), np.uint8), video_rotation)  # a bad value: an error before any work
    auto_offset = time_offset == "auto"
    given_offset = None if time_offset is None or auto_offset else float(time_offset)
    video = Path(video)
    if video_lens is not None and video_fovy not in (None, "auto"):
        raise EgoDataError(f"{video}: give the video's lens or its field of view, not both (a lens's view is "
                           f"resampled to the encoder's)")
    lens = load_lens(video_lens) if isinstance(video_lens, (str, os.PathLike)) else video_lens
    reconstructed = None
    if head_poses is None:  # read now: a temporary reconstruction is gone after this
        reconstructed = _reconstructed(video, reconstruction, fps, lens, video_rotation)
        head_poses = reconstructed.source
    head_poses = Path(head_poses)
    read = read_video(video, width, height, fps, lens, encoder_fovy)
    frames, vfps, size, uneven, view_fovy, coverage, captured, lens = read
    T = len(frames)
    if T < 3:
        raise EgoDataError(f"{video}: {T} frame(s) is too short for features (at least 3)")
    scene = _scene(objects)
    traj = _read_trajectory(reconstructed or head_poses, fmt, world_to_camera, vfps)
    same_rate = uneven is None and abs(vfps - TAKE_FPS) < 1e-6  # one take frame per video frame
    frame_times = np.arange(T) / vfps if uneven is None else uneven
    n = T if same_rate else int(np.floor(frame_times[-1] * TAKE_FPS + 1e-3)) + 1  # take frames
    named = traj.meta.get("images") is not None  # a pose per image name (COLMAP, nerfstudio)
    cut = None  # the video frames the take keeps, when the poses do not reach its ends
    clock_start = None  # the recorder's clock time of the take's first frame, to pair ground truth by
    if named:
        from .reconstruct import frame_name
        from .trajectory import image_times

        # the images of a folder or pattern by their names; a video file's frames by the names the
        # reconstruction of it gave them
        names = ([f.name for f in frame_files(video)] if video.is_dir() or is_frame_pattern(video) else
                 [frame_name(i) for i in range(T)])
        posed = np.flatnonzero(np.isin(names, traj.meta["images"]))
        if len(posed) and (posed[0], posed[-1]) != (0, T - 1):  # frames at either end without a pose
            first, last = int(posed[0]), int(posed[-1])
            if last - first + 1 < MIN_POSED_SHARE * T:
                raise EgoDataError(f"{head_poses}: poses for frames {first}-{last} of the video's {T} only: too few "
                                   f"(a head that turns without moving gives a reconstruction no depth); give the "
                                   f"trajectory of a SLAM system (--head-poses)")
            log.warning("%s: no pose for the video's first %d and last %d frame(s): the take is frames %d-%d",
                        video, first, T - 1 - last, first, last)
            frames, names, frame_times = frames[first:last + 1], names[first:last + 1], frame_times[first:last + 1]
            captured = None if captured is None else captured + frame_times[0]
            frame_times = frame_times - frame_times[0]
            uneven = None if uneven is None else frame_times
            T = len(frames)
            n = T if same_rate else int(np.floor(frame_times[-1] * TAKE_FPS + 1e-3)) + 1
            cut = [first, last]
        traj = image_times(traj, names, frame_times)
        # the poses are timed as the frames, from 0; their capture times (if their names hold them) are the clock
        clock_start, captured = captured, None
    stamped = traj if traj.times is not None else None  # as read, to pair again at another offset
    if auto_offset and stamped is None:
        raise EgoDataError(f"{head_poses}: --time-offset auto needs a trajectory with timestamps "
                           f"(this one has a pose per frame, paired in order)")
    if stamped is None:  # the trajectory's clock: the video's, from 0
        if len(traj.pos) != T:
            raise EgoDataError(f"{head_poses}: {len(traj.pos)} poses for {T} video frames in {video} "
                               f"(a trajectory without timestamps needs one pose per frame)")
        times = np.arange(n) / TAKE_FPS
        if not same_rate:
            traj = resample(replace(traj, times=frame_times), times)
    else:
        time_offset, offset_source = ((given_offset, "given") if given_offset is not None else
                                      (0.0, "image names") if named else
                                      _capture_clock_offset(captured, T / vfps, traj, video))
        times = traj.times[0] + time_offset + np.arange(n) / TAKE_FPS
        traj = resample(traj, times)
    report: dict = {"video": str(video), "trajectory": str(head_poses), "frames": n, "fps": TAKE_FPS,
                    "video_frames": T, "video_fps": vfps, "video_size": list(size)}
    if stamped is not None:
        report["time_offset"] = {"seconds": round(time_offset, 6), "source": offset_source}
    if cut is not None:
        report["video_frames_kept"] = cut
    if uneven is not None:
        gaps = np.diff(uneven) * 1e3
        report["variable_frame_rate"] = {"frame_interval_ms": [round(float(gaps.min()), 3), round(float(gaps.max()), 3)]}
    if lens is not None:
        if video_fovy == "auto":
            video_fovy = None  # a lens's view has its own field of view
        report["video_lens"] = {"lens": lens.source, "model": lens.model, "view_fovy": round(view_fovy, 3),
                                "covered_fovy": round(coverage, 3)}
        if view_fovy < encoder_fovy:
            log.warning("%s: the lens covers %.1f degrees, less than the flow encoder's %.0f: its view is that "
                        "narrow and its flow rescaled", video, coverage, encoder_fovy)
        video_fovy = view_fovy
    elif looks_fisheye(frames):
        log.warning("%s: the frames' corners are dark throughout, as a fisheye lens's are (Project Aria's RGB "
                    "camera): give its calibration or field of view (--video-lens FILE or fisheye:DEGREES) so "
                    "the flow encoder sees it as through its own pinhole camera", video)
    feats = pred_vel = enc_path = None
    enc = _encoder_or_none(encoder)
    if auto_offset and enc is None:
        raise EgoDataError(f"{video}: --time-offset auto needs the flow encoder (no checkpoint found)")
    if enc is not None:
        # the flow of a 1/30 s interval, as the encoder was trained on (of each pair's own interval
        # in a variable-frame-rate video)
        rate_gain = 1.0 if same_rate else (vfps / TAKE_FPS if uneven is None else
                                           (1.0 / TAKE_FPS / np.diff(uneven))[:, None, None, None])
        gain = rate_gain * _fovy_gain(None if video_fovy == "auto" else video_fovy, encoder_fovy)
        flows = {}  # rotation -> the frame pairs' pooled flow, as computed

        def encode(rotation: int, gain=gain):
            from .flow import FlowComputer, flows_per_frame

            if rotation not in flows:
                fc = FlowComputer(enc.size, flow_preset)
                flows[rotation] = np.stack([f for f in map(fc.push, turn_upright(frames, rotation)) if f is not None])
            out = enc.encode(flows_per_frame((flows[rotation] * gain).astype(np.float32)))
            return out if same_rate else tuple(_interpolate_frames(x, frame_times, n) for x in out)

        unit = to_head_poses(traj, 1.0, eye_height).head_pose  # any scale: only its rotation is read
        mounted = mounting_rotation(lens, traj.camera_axes)
        feats, pred_vel = _orient_and_check_sync(encode, video_rotation, unit, video,
                                                 None if stamped is None else time_offset, report,
                                                 apply_shift=auto_offset,
                                                 prior=(0, "stored") if mounted is None else (mounted, "lens calibration"))
        if auto_offset and "offset" in report["video_lag"]:  # pair again at the offset found
            time_offset = report["video_lag"]["offset"]
            times = stamped.times[0] + time_offset + np.arange(n) / TAKE_FPS
            try:
                traj = resample(stamped, times)
            except EgoDataError as e:
                raise EgoDataError(f"{e} (at the --time-offset {time_offset:.3f} that auto found)") from None
        if lens is None:  # the field of view the flow and the head's turns give (a lens's view has its own)
            rotation = report["video_rotation"]["degrees"]
            found, explained = estimate_fovy(flows[rotation], _pair_turns(traj, eye_height, frame_times))
            entry = {"found": None if found is None else round(found, 2), "explained": round(explained, 3)}
            if video_fovy == "auto":  # encoded again with it
                entry.update(degrees=round(found, 2) if found is not None else encoder_fovy,
                             source="auto" if found is not None else "assumed (too little turning to tell)")
                if found is not None:
                    feats, pred_vel = encode(rotation, rate_gain * _fovy_gain(found, encoder_fovy))
            elif video_fovy is None:
                entry.update(degrees=encoder_fovy, source="assumed")
                if found is not None and not 0.7 <= _fovy_gain(found, encoder_fovy) <= 1.43:
                    log.warning("%s: the flow and the head's turns say the video's field of view is about %.0f "
                                "degrees, not the %.0f assumed: if so, give it (--video-fovy %.0f, or auto)",
                                video, found, encoder_fovy, found)
            else:
                entry.update(degrees=float(video_fovy), source="given")
            report["video_fovy"] = entry
        enc_path = enc.path
    if auto_offset:
        report["time_offset"] = {"seconds": time_offset, "source": "auto"}
    if stamped is not None and not named:
        clock_start = float(times[0])
    if clock_start is not None:
        report["capture_start_s"] = float(clock_start)
    elif captured is not None and stamped is None:
        log.info("%s: the frames' capture times are not used: the trajectory has none (one pose per frame)", video)
    track = _metric_head_poses(traj, head_poses, TAKE_FPS, scale, eye_height, body_height, pred_vel, report)
    head = track.head_pose
    take = EgoTake(name=name or video_name(video), head_pose=head, head_vels=head_velocities(head, TAKE_FPS), fps=TAKE_FPS,
                   action=action, image_features=feats, source_clip=None,
                   meta={"import": report, "encoder": enc_path,
                         "predicted_head_local_vels": None if pred_vel is None else np.round(pred_vel, 5).tolist()})
    _attach_scene(take, scene, track, times, report)
    if "video_rotation" not in report:  # no flow encoder to tell
        mounted = mounting_rotation(lens, traj.camera_axes) if video_rotation == "auto" else None
        report["video_rotation"] = ({"degrees": int(video_rotation), "source": "given"} if video_rotation != "auto" else
                                    {"degrees": mounted or 0, "source": "stored" if mounted is None else "lens calibration"})
    return ImportResult(take, report, VideoSource(video, vfps, report["video_rotation"]["degrees"], lens,
                                                  cut[0] if cut else 0))


def _fovy_gain(fovy: float | None, encoder_fovy: float) -> float:
    """The factor that makes the flow of a pinhole video with vertical field of view ``fovy``
    (None: the encoder's) that of the encoder's camera for the same turn, near the centre."""
    return 1.0 if fovy is None else float(np.tan(np.radians(fovy) / 2) / np.tan(np.radians(encoder_fovy) / 2))


def _pair_turns(traj, eye_height: float, frame_times: np.ndarray) -> np.ndarray:
    """(N, 2) the head's yaw (left) and pitch (down) in radians over each pair of video frames
    (at ``frame_times`` from the first; the trajectory at the take's 30 Hz times from it)."""
    from .features import head_local_velocities
    from .trajectory import to_head_poses

    head = to_head_poses(traj, 1.0, eye_height).head_pose  # any scale: only its rotation is read
    rates = head_local_velocities(head, TAKE_FPS)[:, [5, 4]]  # rad/s about the head's up and left axes
    at = (frame_times[:-1] + frame_times[1:]) / 2
    take_t = np.arange(len(head)) / TAKE_FPS + 0.5 / TAKE_FPS  # each forward difference's middle
    per_s = np.stack([np.interp(at, take_t, rates[:, k]) for k in range(2)], axis=1)
    return per_s * np.diff(frame_times)[:, None]


def mounting_rotation(lens: Lens | None, camera_axes: str) -> int | None:
    """Degrees clockwise that turn the frames of a camera mounted as ``lens`` says (its
    orientation in a Project Aria device frame, from the device calibration) upright for the
    wearer, with a trajectory of that device (``camera_axes`` "aria"); None when they do not
    say. Aria's RGB camera: 90."""
    if lens is None or lens.mount is None or camera_axes != "aria":
        return None
    from .trajectory import ARIA_T_DEVICE_CPF

    cam_in_cpf = ARIA_T_DEVICE_CPF[:3, :3].T @ np.asarray(lens.mount)  # CPF: x left, y up, z forward
    up = cam_in_cpf[1, :2]  # the wearer's up in the image (x right, y down)
    turned = [up]
    for _ in range(3):  # each a quarter turn clockwise: (x, y) -> (-y, x)
        turned.append(np.array([-turned[-1][1], turned[-1][0]]))
    return 90 * int(np.argmin([v[1] for v in turned]))  # the one pointing most to the top


def _reconstructed(video: Path, folder, fps, lens, rotation):
    """The trajectory a reconstruction of ``video``'s frames gives (:mod:`.reconstruct`), made in
    ``folder`` (kept, to reuse) or in a temporary one."""
    import tempfile

    from .reconstruct import reconstruct
    from .trajectory import read_trajectory

    if folder is not None:
        return read_trajectory(reconstruct(video, folder, fps=fps, lens=lens, rotation=rotation), "colmap")
    with tempfile.TemporaryDirectory(prefix="kinpoly_reconstruction_") as tmp:
        return read_trajectory(reconstruct(video, tmp, fps=fps, lens=lens, rotation=rotation), "colmap")


def _capture_clock_offset(captured: float | None, duration: float, traj, video: Path) -> tuple[float, str]:
    """The default pairing of a video with a trajectory with timestamps: at the frames' capture
    times when their file names hold them and they start within the trajectory's times (one
    recorder's clock), else from the two starts; with where it came from."""
    t0, t1 = float(traj.times[0]), float(traj.times[-1])
    if captured is None:
        return 0.0, "start"
    if t0 - duration <= captured <= t1:
        return captured - t0, "frame timestamps"
    log.warning("%s: the frames' capture times (%.3f-%.3f s, from their file names) are not within the trajectory's "
                "(%.3f-%.3f s): another clock, so the two are paired from their starts (--time-offset pairs them "
                "otherwise)", video, captured, captured + duration, t0, t1)
    return 0.0, "start"


def _encoder_or_none(path: str | None):
    """The flow encoder (:func:`.flow.load_encoder`), or None when there is no checkpoint: the
    take then has no image features, and a monocular trajectory's scale comes from gait alone."""
    from .flow import load_encoder

    try:
        return load_encoder(path)
    except FileNotFoundError:
        return None


def import_trajectory(head_poses: str | os.PathLike, *, name: str | None = None, fmt: str = "auto",
                      fps: float = 30.0, scale: float | None = None, eye_height: float = 1.6,
                      time_offset: float | None = 0.0, world_to_camera: bool = False, action: str | None = None,
                      body_height: float | None = None, rate: float = 30.0, objects=None) -> ImportResult:
    """Build an egocentric take from a head trajectory alone (a headset's 6-DoF pose, no
    video): no image features, so only a head-trajectory-only policy reads it.

    The take has ``rate`` frames per second (the policy's and the controller's 30 Hz), resampled
    from ``time_offset`` (s after the trajectory's first time) to its end. A trajectory without
    timestamps has one pose every 1/``fps`` s. Without ``scale``, a metric trajectory (Aria, or
    one that says so) keeps its scale and any other is scaled by the wearer's gait
    (:func:`.scale.estimate_metric_scale`, no flow encoder). ``objects``: an objects file or
    :class:`.objects.SceneInput` in the trajectory's world (:mod:`.objects`).
    """
    from .features import head_velocities
    from .trajectory import resample

    head_poses = Path(head_poses)
    time_offset = time_offset or 0.0
    scene = _scene(objects)
    if not (fps > 0 and rate > 0):
        raise EgoDataError(f"{head_poses}: frame rates must be positive, got {fps} and {rate}")
    traj = _read_trajectory(head_poses, fmt, world_to_camera, fps)
    if traj.meta.get("images") is not None:
        raise EgoDataError(f"{head_poses}: its poses are per image of a video ({traj.meta['format']}): import them "
                           f"with the frames (kinpoly ego import-video FRAMES --head-poses {head_poses.name})")
    if traj.times is None:
        traj = replace(traj, times=np.arange(len(traj.pos)) / fps)
    t0 = traj.times[0] + time_offset
    n = int(np.floor((traj.times[-1] - t0) * rate + 1e-3)) + 1
    if n < 3:
        raise EgoDataError(f"{head_poses}: {max(n, 0)} frame(s) at {rate:g} fps from {time_offset:g} s on "
                           f"is too short (at least 3)")
    times = t0 + np.arange(n) / rate
    traj = resample(traj, times)
    report: dict = {"video": None, "trajectory": str(head_poses), "frames": n, "fps": rate}
    track = _metric_head_poses(traj, head_poses, rate, scale, eye_height, body_height, None, report)
    head = track.head_pose
    take = EgoTake(name=name or head_poses.stem, head_pose=head, head_vels=head_velocities(head, rate), fps=rate,
                   action=action, source_clip=None, meta={"import": report, "encoder": None})
    _attach_scene(take, scene, track, times, report)
    return ImportResult(take, report)


def _scene(objects):
    """An objects file read (:func:`.objects.read_objects`), a scene as given, or None."""
    if objects is None or not isinstance(objects, (str, os.PathLike)):
        return objects
    from .objects import read_objects

    return read_objects(objects)


def _attach_scene(take: EgoTake, scene, track, times: np.ndarray, report: dict) -> None:
    """The scene's objects placed with the head's levelling, in the take and its report."""
    if scene is None:
        return
    from .objects import attach_objects

    report["objects"] = attach_objects(take, scene, track.levelling, times)
    report["objects_file"] = scene.source


def _interpolate_frames(x: np.ndarray, frame_times: np.ndarray, n: int) -> np.ndarray:
    """Rows of ``x`` (one per frame, at ``frame_times`` s) linearly interpolated at ``n`` take
    frames (at 1/30 s steps from the first frame)."""
    pos = np.minimum(np.interp(np.arange(n) / TAKE_FPS, frame_times, np.arange(len(x))), len(x) - 1)
    i = np.minimum(pos.astype(int), len(x) - 2)
    w = (pos - i)[:, None]
    return ((1.0 - w) * x[i] + w * x[i + 1]).astype(x.dtype)


def _read_trajectory(path, fmt: str, world_to_camera: bool, fps: float = TAKE_FPS):
    """The trajectory of ``path`` (or a :class:`.trajectory.Trajectory` read already), its
    world-to-camera poses inverted when so given.

    Checks the pose direction (:func:`.trajectory.pose_direction`, in ``meta["pose_direction"]``):
    a head whose up axis is only upright with the poses inverted is an error (the import would
    reject the tilt anyway); a head that moves backwards as read but forwards inverted logs a
    warning naming ``--world-to-camera`` (a person walking backwards looks the same)."""
    from .trajectory import Trajectory, inverse_poses, pose_direction, read_trajectory

    traj = path if isinstance(path, Trajectory) else read_trajectory(path, fmt)
    if world_to_camera and traj.meta.get("format") in ("colmap", "nerfstudio"):
        raise EgoDataError(f"{path}: {traj.meta['format']} poses are read in their own convention "
                           f"(COLMAP's world-to-camera is inverted already): drop --world-to-camera")
    if world_to_camera:
        traj = inverse_poses(traj)
    d = pose_direction(traj, fps)
    traj.meta["pose_direction"] = {"verdict": d["verdict"], **{
        f"{k}_{r}": None if d[r][k] is None else round(d[r][k], 3)
        for r in ("as_read", "inverted") for k in ("forward", "path", "tilt_deg")}}
    a, b = d["as_read"], d["inverted"]
    if world_to_camera:
        read, other = "inverted (--world-to-camera)", "as in the file"
        fix, cond = "drop --world-to-camera", "if they are camera-to-world already"
    else:
        read = "as camera-to-world"
        other = "inverted, as world-to-camera poses (OpenCV solvePnP) are"
        fix, cond = "pass --world-to-camera", "if they are world-to-camera"
    if d["verdict"] == "inverted-tilt":
        raise EgoDataError(
            f"{path}: read {read}, the head's mean up axis is {a['tilt_deg']:.0f} degrees from the world's up "
            f"({traj.world_up.upper()}); read {other}, {b['tilt_deg']:.0f} degrees: the poses are the inverse of "
            f"what was assumed ({fix})")
    if d["verdict"] == "inverted":
        log.warning(
            "%s: read %s, the head moves backwards or sideways relative to where it faces (forward cosine %+.2f); "
            "read %s, it moves the way it faces (%+.2f) along a path %.0f%% shorter: %s, %s (ignore this if "
            "the wearer really walks backwards)", path, read, a["forward"], other, b["forward"],
            100.0 * (1.0 - b["path"] / max(a["path"], 1e-12)), cond, fix)
    return traj


def _metric_head_poses(traj, path: Path, fps: float, scale: float | None, eye_height: float,
                       body_height: float | None, pred_vel, report: dict):
    """The :class:`~.trajectory.HeadTrack` (head poses (T, 7), Z up, metric, and the levelling
    that made them): the trajectory scaled by ``scale``, or (None) by its
    own metric scale or an estimate (gait, and the flow encoder's velocities ``pred_vel`` when
    given). Records the axes, scale and its source in ``report``."""
    from .scale import EYE_HEIGHT_FRACTION, estimate_metric_scale
    from .trajectory import to_head_poses

    report.update({"format": traj.meta.get("format"), "camera_axes": traj.camera_axes, "world_up": traj.world_up,
                   "pose_direction": traj.meta.get("pose_direction")})
    if scale is None:
        if traj.metric:
            scale, report["scale_source"] = 1.0, "metric trajectory"
        else:
            unit = to_head_poses(traj, 1.0, eye_height)
            try:
                scale, report["scale_estimate"] = estimate_metric_scale(
                    unit.head_pose, fps, pred_vel, body_height or eye_height / EYE_HEIGHT_FRACTION)
            except EgoDataError as e:
                raise EgoDataError(f"{path}: {e}") from None
            report["scale_source"] = f"estimated ({' + '.join(report['scale_estimate']['used'])})"
    else:
        report["scale_source"] = "given"
    if not (np.isfinite(scale) and scale > 0):
        raise EgoDataError(f"{path}: the scale must be a positive number, got {scale}")
    track = to_head_poses(traj, scale, eye_height)
    report.update({"scale": float(scale), "first_frame_head_tilt_deg": round(track.up_tilt_deg, 2)})
    speed = np.linalg.norm(np.diff(track.head_pose[:, :3], axis=0), axis=1) * fps
    if speed.max() > MAX_HEAD_SPEED:
        i = int(np.argmax(speed))
        raise EgoDataError(f"{path}: the head moves {speed[i] / fps:.2f} m between frames {i} and {i + 1} "
                           f"({i / fps:.2f} s; {speed[i]:.0f} m/s, faster than a person's "
                           f"{MAX_HEAD_SPEED:g}): a tracking jump, or a wrong scale ({float(scale):.3g}, "
                           f"{report['scale_source']}) or time unit")
    return track


def attach_ground_truth(take: EgoTake, clip) -> dict:
    """Attach a ground-truth body clip to an imported take, for evaluation: its frames at the
    take's times when both know them in one recorder's clock (``meta["capture_start_s"]``: an
    ADT skeleton and a take imported with that recording's trajectory), else the same frames.

    The clip is moved into the take's world by the yaw rotation + translation that best aligns
    its eye positions to the take's head positions (both worlds are Z up; no scale, the clip is
    metric), so ``take.qpos`` / ``take.gt_head_pose`` can be compared with estimates made from
    the take. Returns the alignment and the head position RMSE after it (m).
    """
    from .. import rotations as rot

    where = clip.source or clip.name
    paired = {}
    take_start, gt_start = take.meta.get("import", {}).get("capture_start_s"), clip.meta.get("capture_start_s")
    if take_start is not None and gt_start is not None:
        ahead = (take_start - gt_start) * take.fps  # ground-truth frames before the take's first
        first = int(round(ahead))
        if first < 0 or first + take.num_frames > clip.num_frames:
            raise EgoDataError(f"{where}: the ground truth covers {gt_start:.3f}-{gt_start + clip.num_frames / clip.fps:.3f} "
                               f"s of the recording's clock, the take {take.name} "
                               f"{take_start:.3f}-{take_start + take.num_frames / take.fps:.3f} s")
        clip = clip.slice(first, first + take.num_frames)
        paired = {"paired_by": "capture time", "first_frame": first,
                  "time_error_s": round((first - ahead) / take.fps, 6)}
    elif clip.num_frames != take.num_frames:
        raise EgoDataError(f"{where}: ground truth has {clip.num_frames} frames, "
                           f"the take {take.name} {take.num_frames}")
    gt_head = clip.head_pose()
    a, b = gt_head[:, :2], take.head_pose[:, :2]
    ma, mb = a.mean(0), b.mean(0)
    h = (a - ma).T @ (b - mb)
    yaw = float(np.arctan2(h[0, 1] - h[1, 0], h[0, 0] + h[1, 1]))
    spread = float(np.sqrt(np.mean(np.sum((b - mb) ** 2, axis=1))))
    if spread < MIN_ALIGN_SPREAD:  # a head that stays put says nothing of the yaw: turn the headings together
        fwd_gt, fwd = (rot.quat_to_matrix(x[:, 3:])[:, :2, 0] for x in (gt_head, take.head_pose))
        turn = np.arctan2(fwd[:, 1], fwd[:, 0]) - np.arctan2(fwd_gt[:, 1], fwd_gt[:, 0])
        yaw = float(np.arctan2(np.sin(turn).mean(), np.cos(turn).mean()))
    paired["yaw_from"] = "headings" if spread < MIN_ALIGN_SPREAD else "head path"
    Rz = rot.yaw_matrix(np.array(yaw))
    t = np.r_[mb - Rz[:2, :2] @ ma, np.mean(take.head_pose[:, 2] - gt_head[:, 2])]
    q = clip.qpos.copy()
    q[:, :3] = q[:, :3] @ Rz.T + t
    q[:, 3:7] = rot.quat_continuous(rot.matrix_to_quat(Rz @ rot.quat_to_matrix(q[:, 3:7])))
    head = gt_head.copy()
    head[:, :3] = head[:, :3] @ Rz.T + t
    head[:, 3:] = rot.quat_continuous(rot.matrix_to_quat(Rz @ rot.quat_to_matrix(head[:, 3:])))
    take.qpos, take.gt_head_pose = q, head
    rmse = float(np.sqrt(np.mean(np.sum((head[:, :3] - take.head_pose[:, :3]) ** 2, 1))))
    info = {"source": where, "yaw_rad": yaw, "translation": t.tolist(), "head_rmse_m": rmse,
            "body": clip.body.to_dict(), **paired}
    take.meta["ground_truth"] = info
    take.meta["body"] = clip.body.to_dict()
    take.source_clip = clip.name
    return info
