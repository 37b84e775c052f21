"""A head-camera video of another shape or orientation than the flow encoder's renders: what it
does to the image features and to the estimate, and whether ``import_video`` puts it right.

    MUJOCO_GL=egl .venv/bin/python benchmarks/video_geometry.py [--work DIR] [-j 2] [--out FILE]

The held-out test takes of ``data/ego`` are rendered again (``kinpoly ego build --save-video``,
the same scenes) as square 128x128 videos, as landscape 16:9 (228x128) and as portrait 9:16
(128x228) videos, all with the build's 100-degree vertical field of view. Each variant below is
written as an MP4 and imported by :func:`kinpoly.egocentric.video.import_video` with the take's
true head trajectory (as DROID-SLAM writes one, scale given); its image features then replace
the take's own, and the shipped estimator runs as ``kinpoly estimate`` does:

* ``square``: the square render (MP4 compression is the only difference from the take);
* ``wide``: cut to its centre square by the import; ``wide_squashed``: squashed to a square
  first (what the import did before it cut);
* ``tall``: squashed to a square by the import; ``tall_cropped``: cut to its centre square
  first (what the import does to a landscape video);
* ``turned_<deg>``: the square render stored turned <deg> degrees anticlockwise, so that
  <deg> clockwise turns it upright (Aria's RGB camera: 90), imported with ``video_rotation``
  "auto" (``*_as_stored``: 0, the frames read as they are, what the import did before);
* ``late_6``: the square render without its first 6 frames, paired row by row with the
  trajectory without its last 6 rows (a video that starts 0.2 s after its trajectory): the
  import's synchronisation check should report a shift of -6 frames;
* ``narrow``: a 70-degree render (a phone's field of view) read as the encoder's 100 degrees;
  ``narrow_fovy_given``: with ``video_fovy`` 70; ``narrow_fovy_auto`` (and ``square_fovy_auto``):
  with the field of view the import finds from the flow and the head's turns;
* ``fisheye``: a 140-degree pinhole render (384x384) resampled through Project Aria's RGB lens
  (its real calibration, ``aria_adt_sample/device_calibration.json``, scaled to 256x256 frames),
  dark outside its image circle (60 degrees off axis) and stored turned as Aria stores it (90),
  imported with that calibration as ``video_lens``; ``fisheye_as_pinhole``: imported without it
  (what the import did before); ``fisheye_fovy_110``: without it but with Aria's nominal
  110-degree field of view as ``video_fovy``, as a user might pass it.

Per variant: the rotation the import chose (how many takes right), the shift the
synchronisation check found and how many takes it warned about (``sync_warnings``; right:
none but on ``late_6``), the flow encoder's head
velocity error against the truth (mean absolute, linear m/s and angular rad/s over the head's
axes), the image features' distance from the take's own (relative), and the estimate's means
over takes (MPJPE / global MPJPE mm, takes without a fall). ``--ares``: also the rotation the
import chooses for the EgoEgo ARES video (upright) and for it turned by each rotation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from report import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARIA_CALIBRATION = ROOT.parent / "shared/data/aria_adt_sample/device_calibration.json"
RENDERS = {"square": (128, 128, 100.0), "wide": (228, 128, 100.0), "tall": (128, 228, 100.0),
           "wide_angle": (384, 384, 140.0), "narrow": (128, 128, 70.0)}  # width, height, vertical field of view
# variant -> (render, transform of the stored frames, import_video's options, estimate it)
VARIANTS = {
    "square": ("square", None, {}, True),
    "wide": ("wide", None, {}, True),
    "wide_squashed": ("wide", "squash", {}, True),
    "tall": ("tall", None, {}, True),
    "tall_cropped": ("tall", "crop", {}, True),
    "turned_90": ("square", 90, {}, True),
    "turned_90_as_stored": ("square", 90, {"video_rotation": 0}, True),
    "turned_180": ("square", 180, {}, False),
    "turned_180_as_stored": ("square", 180, {"video_rotation": 0}, True),
    "turned_270": ("square", 270, {}, False),
    "late_6": ("square", "late", {}, False),
    "fisheye": ("wide_angle", "fisheye", {"video_lens": str(ARIA_CALIBRATION)}, True),
    "fisheye_as_pinhole": ("wide_angle", "fisheye", {}, True),
    "fisheye_fovy_110": ("wide_angle", "fisheye", {"video_fovy": 110.0}, True),
    "square_fovy_auto": ("square", None, {"video_fovy": "auto"}, True),
    "narrow": ("narrow", None, {}, True),
    "narrow_fovy_given": ("narrow", None, {"video_fovy": 70.0}, True),
    "narrow_fovy_auto": ("narrow", None, {"video_fovy": "auto"}, True),
}
LATE = 6  # frames the "late_6" video misses at its start
FISHEYE_SIZE, FISHEYE_CIRCLE = 256, 60.0  # the fisheye frames' side (px) and image circle (degrees off axis)


def _rotation_stored(transform) -> int:
    """Degrees clockwise that turn a variant's stored frames upright."""
    return transform if isinstance(transform, int) else 90 if transform == "fisheye" else 0


def _fisheye_maps(render_size: int, render_fovy: float):
    """Where each pixel of an Aria fisheye frame (stored turned, as Aria stores it) looks in a
    pinhole render turned the same way (a square pinhole turned is one still), NaN outside the
    lens's image circle."""
    from kinpoly.egocentric.lens import Lens, load_lens

    lens = load_lens(ARIA_CALIBRATION).fit(FISHEYE_SIZE, FISHEYE_SIZE)
    u, v = np.meshgrid(np.arange(FISHEYE_SIZE, dtype=float), np.arange(FISHEYE_SIZE, dtype=float))
    rays = lens.unproject(np.stack([u.ravel(), v.ravel()], 1))
    f = render_size / 2 / np.tan(np.radians(render_fovy) / 2)
    c = (render_size - 1) / 2
    px = Lens("pinhole", f, f, c, c).project(rays)
    px[np.degrees(np.arccos(np.clip(rays[:, 2], -1, 1))) > FISHEYE_CIRCLE] = -1e4
    px = px.reshape(FISHEYE_SIZE, FISHEYE_SIZE, 2).astype(np.float32)
    return px[..., 0], px[..., 1]


def _write_video(src: Path, dst: Path, transform) -> None:
    import cv2
    import imageio.v2 as imageio

    frames = [np.asarray(f) for f in imageio.mimread(src, memtest=False)]
    if transform == "fisheye":
        mx, my = _fisheye_maps(frames[0].shape[0], RENDERS["wide_angle"][2])
        frames = [cv2.remap(np.ascontiguousarray(np.rot90(f)), mx, my, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT) for f in frames]
    elif transform == "late":
        frames = frames[LATE:]
    elif transform == "squash":
        frames = [cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in frames]
    elif transform == "crop":
        frames = [f[(len(f) - f.shape[1]) // 2:][:f.shape[1]] for f in frames]  # portrait: its centre square
    elif transform is not None:  # stored turned anticlockwise: turning it clockwise makes it upright
        frames = [np.ascontiguousarray(np.rot90(f, k=transform // 90)) for f in frames]
    imageio.mimwrite(dst, frames, fps=30, macro_block_size=1, quality=9, ffmpeg_log_level="error")


def _slam_npy(path: Path, head_pose: np.ndarray) -> None:
    """(T, 7) ``tx ty tz qx qy qz qw`` camera-to-world in OpenCV camera axes, as DROID-SLAM writes."""
    from kinpoly import rotations as rot
    from kinpoly.egocentric.trajectory import _M

    q = rot.matrix_to_quat(rot.quat_to_matrix(head_pose[:, 3:]) @ _M["opencv"].T)
    np.save(path, np.concatenate([head_pose[:, :3], q[:, [1, 2, 3, 0]]], 1))


class _warnings:
    """Collects the messages the video import logs as warnings."""

    def __enter__(self):
        import logging

        self.messages, self.logger = [], logging.getLogger("kinpoly.egocentric.video")
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.messages.append(record.getMessage())
        self.logger.addHandler(self.handler)
        return self.messages

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)


def run(job) -> dict:
    import torch

    from kinpoly.egocentric.features import head_local_velocities
    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.egocentric.video import import_video
    from kinpoly.evaluation import metrics
    from kinpoly.policy.estimate import Estimator

    torch.set_num_threads(1)
    data, work, name, variant = job
    render, transform, options, estimate = VARIANTS[variant]
    take = EgoDataset(data, split="test")[name]
    tmp = Path(work) / "jobs" / variant
    tmp.mkdir(parents=True, exist_ok=True)
    video, traj = tmp / f"{name}.mp4", tmp / f"{name}.npy"
    _write_video(Path(work) / render / "videos" / f"{name}.mp4", video, transform)
    late = LATE if transform == "late" else 0
    _slam_npy(traj, take.head_pose[:take.num_frames - late])
    with _warnings() as caught:
        res = import_video(video, traj, scale=1.0, **options)
    pred = np.asarray(res.take.meta["predicted_head_local_vels"])
    err = np.abs(pred - head_local_velocities(take.gt_head_pose[late:], take.fps)).mean(0)
    own = take.image_features[late:]
    lag = res.report["video_lag"]
    row = {"take": name, "variant": variant, "frames": take.num_frames,
           "rotation": res.report["video_rotation"]["degrees"],
           "rotation_right": res.report["video_rotation"]["degrees"] == _rotation_stored(transform),
           "agreement": res.report["video_rotation"].get("agreement"),
           "lag": lag["lag"], "lag_right": lag["lag"] == -late,
           "fovy_found": (res.report.get("video_fovy") or {}).get("degrees"),
           "sync_warning": any("not in step" in m for m in caught),
           "linear_velocity_mae": float(err[:3].mean()), "angular_velocity_mae": float(err[3:].mean()),
           "feature_distance": float(np.linalg.norm(res.take.image_features - own, axis=1).mean()
                                     / np.linalg.norm(own, axis=1).mean())}
    video.unlink()
    if estimate:
        take.image_features = res.take.image_features
        est = Estimator().estimate(take)
        s = metrics.score_clip(est.clip, est.ground_truth)
        row.update({"falls": len(est.falls), "mpjpe_mm": s["mpjpe_mm"], "mpjpe_global_mm": s["mpjpe_global_mm"]})
    return row


def ares_rotations(work: Path) -> dict:
    from kinpoly.egocentric.video import import_video

    ares = ROOT.parent / "shared/data/egoego_ares"
    if not ares.is_dir():
        return {}
    out = {}
    for turned in (0, 90, 180, 270):
        video = work / f"ares_{turned}.mp4"
        _write_video(ares / "egocentric_video.mp4", video, turned or None)
        rep = import_video(video, ares / "droid_slam_traj.npy", scale=2.35).report["video_rotation"]
        out[str(turned)] = rep
        print(f"ARES stored turned {turned}: chose {rep['degrees']}, agreement {rep['agreement']}, "
              f"head turn rate {rep['head_turn_rate']} rad/s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT / "data/ego"))
    ap.add_argument("--motions", default=str(ROOT / "data/motions"))
    ap.add_argument("--work", default="/tmp/kinpoly_video_geometry", help="renders and temporary videos")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--ares", action="store_true", help="also the ARES video turned each way")
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON file (default: print only)")
    args = ap.parse_args()
    from concurrent.futures import ProcessPoolExecutor

    from kinpoly.egocentric.take import EgoDataset

    work = Path(args.work)
    names = EgoDataset(args.data, split="test").names
    for render in sorted({VARIANTS[v][0] for v in args.variants}):
        w, h, fovy = RENDERS[render]
        if len(list((work / render / "videos").glob("*.mp4"))) < len(names):
            subprocess.run([sys.executable, "-m", "kinpoly.cli", "ego", "build", "--motions", args.motions,
                            "--out", str(work / render), "--set", f"width={w}", "--set", f"height={h}",
                            "--set", f"fovy={fovy:g}", "--save-video", "--no-progress", "-j", str(args.workers),
                            *[a for n in names for a in ("--clip", n)]], check=True)
    ares = ares_rotations(work) if args.ares else {}
    jobs = [(args.data, str(work), n, v) for v in args.variants for n in names]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run, jobs))
    summary = {}
    for v in args.variants:
        r = [x for x in rows if x["variant"] == v]
        s = {"takes": len(r), "rotation_right": int(sum(x["rotation_right"] for x in r)),
             "lag_right": int(sum(x["lag_right"] for x in r)), "sync_warnings": int(sum(x["sync_warning"] for x in r)),
             **{k: float(np.mean([x[k] for x in r])) for k in
                ("linear_velocity_mae", "angular_velocity_mae", "feature_distance")}}
        found = [x["fovy_found"] for x in r if x.get("fovy_found") is not None]
        if found:
            s["fovy_found_median"], s["fovy_found_iqr"] = float(np.median(found)), np.percentile(found, [25, 75]).tolist()
        if "mpjpe_mm" in r[0]:
            s.update({k: float(np.mean([x[k] for x in r])) for k in ("mpjpe_mm", "mpjpe_global_mm")})
            s["no_fall"] = float(np.mean([x["falls"] == 0 for x in r]))
        summary[v] = s
        print(f"{v:22s}", json.dumps({k: round(x, 4) if isinstance(x, float) else x for k, x in s.items()}), flush=True)
    if args.out:
        cmd = "MUJOCO_GL=egl .venv/bin/python benchmarks/video_geometry.py" + (" --ares" if args.ares else "") + (
            "" if args.variants == list(VARIANTS) else " --variants " + " ".join(args.variants))
        write_json(args.out, {"command": cmd, "summary": summary, "ares": ares, "rows": rows})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
