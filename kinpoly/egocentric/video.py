"""``kinpoly ego import-video``: a real head-camera video + its camera trajectory -> an
:class:`~kinpoly.egocentric.take.EgoTake` (the same sample type as the synthetic takes).

Steps: read the video (every frame, its fps), read the trajectory (:mod:`.trajectory`), pair one
pose per frame (by timestamps, or one row per frame when the file has none), convert to
kinpoly's head frame and a Z-up world, compute DIS flow on frames resized to the encoder's
image size, encode it (image features and a metric head-velocity estimate), estimate the metric
scale of a monocular trajectory from the wearer's gait and that velocity (:mod:`.scale`, unless
``scale`` is given), and derive the head features. Errors name the file and what does not match.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .take import EgoDataError, EgoTake

log = logging.getLogger(__name__)

TAKE_FPS = 30.0  # frame rate of imported takes: the policy's and the controller's
# Fastest plausible eye speed (m/s; sprinters reach about 12): a faster step between frames is a
# tracking jump (relocalisation, a wrong time unit or scale), which no body can follow.
MAX_HEAD_SPEED = 15.0
VIDEO_SIZE = (128, 128)  # (width, height) head-camera frames are resized to before optical flow


def read_video(path: str | os.PathLike, width: int, height: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """All frames resized to (height, width) RGB uint8 (T, H, W, 3), the fps, original size."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise EgoDataError(f"{path}: no such video file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise EgoDataError(f"{path}: unreadable video (OpenCV/FFmpeg cannot open it)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames, size = [], (0, 0)
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        size = (bgr.shape[1], bgr.shape[0])
        small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    cap.release()
    if not frames:
        raise EgoDataError(f"{path}: unreadable video (no frame could be decoded)")
    if not (1.0 <= fps <= 1000.0):
        raise EgoDataError(f"{path}: the video reports an invalid frame rate ({fps})")
    return np.stack(frames), fps, size


@dataclass
class ImportResult:
    take: EgoTake
    report: dict


def import_video(video: str | os.PathLike, head_poses: str | os.PathLike, *, name: str | None = None,
                 fmt: str = "auto", fps: float | None = None, scale: float | None = None,
                 eye_height: float = 1.6, time_offset: float = 0.0, width: int = VIDEO_SIZE[0],
                 height: int = VIDEO_SIZE[1],
                 video_fovy: float | None = None, encoder_fovy: float = 100.0, encoder: str | None = None,
                 world_to_camera: bool = False, action: str | None = None,
                 flow_preset: str = "ultrafast", body_height: float | None = None,
                 objects=None) -> ImportResult:
    """Build an egocentric take from a head-camera video and its camera trajectory.

    The take is at ``TAKE_FPS`` (30 Hz, what the policy and controller run at): a video at
    another rate is resampled in time (head poses at the 30 Hz times, image features
    interpolated between the video frames, its optical flow rescaled to a 1/30 s interval).
    ``fps``: the expected video frame rate (an error if the file says otherwise by > 1%).
    ``time_offset``: trajectory time (s) of the first video frame, for timestamped formats
    (default: the trajectory's first time). ``video_fovy``: the video's vertical field of view;
    flow is rescaled to the encoder's ``encoder_fovy`` (default: assumed equal).
    ``body_height``: the wearer's standing height (m) for the gait scale prior (default:
    ``eye_height`` / 0.936). Without ``scale``, a monocular trajectory's scale is estimated
    (:func:`.scale.estimate_metric_scale`: gait, and the flow encoder when a checkpoint
    exists); ``report["scale_estimate"]`` has each component. ``objects``: an objects file or
    :class:`.objects.SceneInput` in the trajectory's world (:mod:`.objects`).
    """
    from .features import head_velocities
    from .flow import FlowComputer, flows_per_frame, load_encoder
    from .trajectory import resample

    video, head_poses = Path(video), Path(head_poses)
    frames, vfps, size = read_video(video, width, height)
    if fps is not None and abs(vfps - fps) > 0.01 * fps:
        raise EgoDataError(f"{video}: video is at {vfps:.3f} fps, expected {fps}")
    T = len(frames)
    if T < 3:
        raise EgoDataError(f"{video}: {T} frame(s) is too short for features (at least 3)")
    scene = _scene(objects)
    traj = _read_trajectory(head_poses, fmt, world_to_camera, vfps)
    same_rate = abs(vfps - TAKE_FPS) < 1e-6  # one take frame per video frame
    n = T if same_rate else int(np.floor((T - 1) / vfps * TAKE_FPS + 1e-3)) + 1  # take frames
    if traj.times is None:  # the trajectory's clock: the video's, from 0
        if len(traj.pos) != T:
            raise EgoDataError(f"{head_poses}: {len(traj.pos)} poses for {T} video frames in {video} "
                               f"(a trajectory without timestamps needs one pose per frame)")
        times = np.arange(n) / TAKE_FPS
        if not same_rate:
            traj = resample(replace(traj, times=np.arange(T) / vfps), times)
    else:
        times = traj.times[0] + time_offset + np.arange(n) / TAKE_FPS
        traj = resample(traj, times)
    # flows and encoder
    fc = FlowComputer(32, flow_preset)
    pair = np.stack([f for f in (fc.push(im) for im in frames) if f is not None])
    if video_fovy is not None:
        pair = pair * (np.tan(np.radians(video_fovy) / 2) / np.tan(np.radians(encoder_fovy) / 2))
    feats = pred_vel = None
    enc_path = None
    try:
        enc = load_encoder(encoder)
        if enc.size != pair.shape[-1]:
            fc = FlowComputer(enc.size, flow_preset)
            pair = np.stack([f for f in (fc.push(im) for im in frames) if f is not None])
        if not same_rate:  # the flow of a 1/30 s interval, as the encoder was trained on
            pair = pair * np.float32(vfps / TAKE_FPS)
        feats, pred_vel = enc.encode(flows_per_frame(pair))
        if not same_rate:  # per video frame -> per take frame
            feats, pred_vel = (_interpolate_frames(x, vfps, n) for x in (feats, pred_vel))
        enc_path = enc.path
    except FileNotFoundError:
        pass  # no encoder: no image features; the scale comes from gait alone
    report: dict = {"video": str(video), "trajectory": str(head_poses), "frames": n, "fps": TAKE_FPS,
                    "video_frames": T, "video_fps": vfps, "video_size": list(size)}
    track = _metric_head_poses(traj, head_poses, TAKE_FPS, scale, eye_height, body_height, pred_vel, report)
    head = track.head_pose
    take = EgoTake(name=name or video.stem, head_pose=head, head_vels=head_velocities(head, TAKE_FPS), fps=TAKE_FPS,
                   action=action, image_features=feats, source_clip=None,
                   meta={"import": report, "encoder": enc_path,
                         "predicted_head_local_vels": None if pred_vel is None else np.round(pred_vel, 5).tolist()})
    _attach_scene(take, scene, track, times, report)
    return ImportResult(take, report)


def import_trajectory(head_poses: str | os.PathLike, *, name: str | None = None, fmt: str = "auto",
                      fps: float = 30.0, scale: float | None = None, eye_height: float = 1.6,
                      time_offset: float = 0.0, world_to_camera: bool = False, action: str | None = None,
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
    scene = _scene(objects)
    if not (fps > 0 and rate > 0):
        raise EgoDataError(f"{head_poses}: frame rates must be positive, got {fps} and {rate}")
    traj = _read_trajectory(head_poses, fmt, world_to_camera, fps)
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


def _interpolate_frames(x: np.ndarray, fps: float, n: int) -> np.ndarray:
    """Rows of ``x`` (one per frame at ``fps``) linearly interpolated at ``n`` take frames."""
    pos = np.minimum(np.arange(n) * (fps / TAKE_FPS), len(x) - 1)
    i = np.minimum(pos.astype(int), len(x) - 2)
    w = (pos - i)[:, None]
    return ((1.0 - w) * x[i] + w * x[i + 1]).astype(x.dtype)


def _read_trajectory(path: Path, fmt: str, world_to_camera: bool, fps: float = TAKE_FPS):
    """The trajectory of ``path``, its world-to-camera poses inverted when so given.

    Checks the pose direction (:func:`.trajectory.pose_direction`, in ``meta["pose_direction"]``):
    a head whose up axis is only upright with the poses inverted is an error (the import would
    reject the tilt anyway); a head that moves backwards as read but forwards inverted logs a
    warning naming ``--world-to-camera`` (a person walking backwards looks the same)."""
    from .trajectory import inverse_poses, pose_direction, read_trajectory

    traj = read_trajectory(path, fmt)
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
        other = "inverted, as world-to-camera poses (OpenCV solvePnP, COLMAP images.txt) are"
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
    """Attach a ground-truth body clip (same frames) to an imported take, for evaluation.

    The clip is moved into the take's world by the yaw rotation + translation that best aligns
    its eye positions to the take's head positions (both worlds are Z up; no scale, the clip is
    metric), so ``take.qpos`` / ``take.gt_head_pose`` can be compared with estimates made from
    the take. Returns the alignment and the head position RMSE after it (m).
    """
    from .. import rotations as rot

    if clip.num_frames != take.num_frames:
        raise EgoDataError(f"{clip.source or clip.name}: ground truth has {clip.num_frames} frames, "
                           f"the take {take.name} {take.num_frames}")
    gt_head = clip.head_pose()
    a, b = gt_head[:, :2], take.head_pose[:, :2]
    ma, mb = a.mean(0), b.mean(0)
    h = (a - ma).T @ (b - mb)
    yaw = float(np.arctan2(h[0, 1] - h[1, 0], h[0, 0] + h[1, 1]))
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
    info = {"source": clip.source or clip.name, "yaw_rad": yaw, "translation": t.tolist(),
            "head_rmse_m": rmse, "body": clip.body.to_dict()}
    take.meta["ground_truth"] = info
    take.meta["body"] = clip.body.to_dict()
    take.source_clip = clip.name
    return info
