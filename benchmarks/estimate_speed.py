"""Speed of egocentric estimation on one core, image features included.

    MUJOCO_GL=egl .venv/bin/python benchmarks/estimate_speed.py [--data ../shared/data/egoego_ares]

Times, on the EgoEgo ARES head-camera video (140 frames) and its DROID-SLAM trajectory:
reading the video + optical flow + flow encoder (``kinpoly.egocentric.video.import_video``),
then the dynamics-regulated estimate (kinematic policy + controller + MuJoCo) with the shipped
checkpoints; reports frames/s of each part and end to end. One torch thread. No rendering.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

from kinpoly.egocentric.video import import_video  # noqa: E402
from report import write_json  # noqa: E402
from kinpoly.policy.estimate import Estimator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "egoego_ares"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "estimate_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data)
    est = Estimator()  # shipped checkpoints
    t0 = time.perf_counter()
    take = import_video(data / "egocentric_video.mp4", data / "droid_slam_traj.npy").take
    t_import = time.perf_counter() - t0
    est.estimate(take)  # warm-up (model compilation, caches)
    t0 = time.perf_counter()
    result = est.estimate(take)
    t_est = time.perf_counter() - t0
    T = take.num_frames
    out = {"frames": T, "video_flow_features_fps": T / t_import, "estimate_fps": T / t_est,
           "end_to_end_fps": T / (t_import + t_est), "falls": len(result.falls),
           "threads": torch.get_num_threads()}
    write_json(args.json, out, echo=True)


if __name__ == "__main__":
    main()
