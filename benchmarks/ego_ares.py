"""Real egocentric input on the EgoEgo ARES sample: head-trajectory error and metric scale.

    MUJOCO_GL=egl .venv/bin/python benchmarks/ego_ares.py [--data ../shared/data/egoego_ares] [--json out.json]

Imports ``egocentric_video.mp4`` + ``droid_slam_traj.npy`` (DROID-SLAM run without extra flags:
camera-to-world, OpenCV axes, arbitrary scale) with ``kinpoly.egocentric.video.import_video``
and compares the resulting head trajectory with the ground-truth head (``head_qpos`` of
``demo_ares_data.p``):

- best-fit scale: the scale of the similarity (Umeyama) alignment of the unit-scale SLAM
  head positions to the ground truth, and the position RMSE after that alignment;
- auto scale: the importer's estimate (flow encoder head velocity), its ratio to the best fit,
  and the RMSE after a rigid alignment with the scale fixed to the estimate;
- gravity: the angle between the importer's estimated world up and the true up (ground-truth
  +Z carried into the SLAM world by the best-fit rotation);
- rotation: the mean geodesic angle between ground-truth and imported head rotations after
  the best fixed world rotation and fixed head-axes offset (the ground truth's head axes are
  SMPL's, not ours).
No data of this sample is written into the repository.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from kinpoly import rotations as rot  # noqa: E402
from kinpoly.egocentric.trajectory import read_trajectory, to_head_poses, umeyama  # noqa: E402
from kinpoly.egocentric.video import import_video  # noqa: E402
from report import command_line, write_json  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "egoego_ares"


def _project_so3(m):
    u, _, vt = np.linalg.svd(m)
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    return u @ d @ vt


def evaluate(data: Path, video_fovy: float | None = None) -> dict:
    import joblib

    gt = joblib.load(data / "demo_ares_data.p")[0]
    gt_head = np.asarray(gt["head_qpos"], dtype=np.float64)
    res = import_video(data / "egocentric_video.mp4", data / "droid_slam_traj.npy", name="ares",
                       video_fovy=video_fovy)
    take, rep = res.take, res.report
    auto = rep["scale"]
    # unit-scale levelled SLAM head positions (same frame as the imported take, scale 1)
    traj = read_trajectory(data / "droid_slam_traj.npy")
    unit = to_head_poses(traj, 1.0, 0.0)
    src = unit.head_pose[:, :3]
    s_fit, R_fit, t_fit = umeyama(src, gt_head[:, :3], with_scale=True)
    err_fit = np.linalg.norm((s_fit * (R_fit @ src.T)).T + t_fit - gt_head[:, :3], axis=1)
    s1, R1, t1 = umeyama(src * auto, gt_head[:, :3], with_scale=False)
    err_auto = np.linalg.norm((R1 @ (src * auto).T).T + t1 - gt_head[:, :3], axis=1)
    err_unit = umeyama(src, gt_head[:, :3], with_scale=False)
    # gravity: our levelled world's up is +Z; the true up in that frame is R_fit^T z
    true_up = R_fit.T @ np.array([0.0, 0.0, 1.0])
    grav_err = float(np.degrees(np.arccos(np.clip(true_up[2], -1, 1))))
    # rotations: R_gt_i ~ R_fit R_ours_i X
    Rg = rot.quat_to_matrix(gt_head[:, 3:7])
    Ro = rot.quat_to_matrix(take.head_pose[:, 3:7])
    Ro_unit = rot.quat_to_matrix(unit.head_pose[:, 3:7])
    A = R_fit
    X = _project_so3(np.sum(np.swapaxes(A @ Ro_unit, -1, -2) @ Rg, axis=0))
    rel = np.swapaxes(Rg, -1, -2) @ (A @ Ro_unit @ X)
    ang = np.degrees(np.linalg.norm(rot.matrix_to_rotvec(rel), axis=1))
    del Ro
    path_len = float(np.sum(np.linalg.norm(np.diff(gt_head[:, :3], axis=0), axis=1)))
    return {
        "frames": take.num_frames,
        "best_fit_scale": round(s_fit, 4),
        "auto_scale": round(float(auto), 4),
        "auto_over_best": round(float(auto) / s_fit, 3),
        "auto_scale_detail": rep.get("scale_estimate"),
        "rmse_after_similarity_m": round(float(np.sqrt(np.mean(err_fit ** 2))), 4),
        "mean_err_after_similarity_m": round(float(err_fit.mean()), 4),
        "rmse_auto_scale_rigid_m": round(float(np.sqrt(np.mean(err_auto ** 2))), 4),
        "gravity_error_deg": round(grav_err, 2),
        "rotation_err_deg_mean": round(float(ang.mean()), 2),
        "rotation_err_deg_max": round(float(ang.max()), 2),
        "gt_head_path_m": round(path_len, 3),
        "gt_head_extent_m": np.round(np.ptp(gt_head[:, :3], axis=0), 3).tolist(),
        "video_fovy": video_fovy,
        "note": f"unit-scale rigid alignment: see rmse_auto_scale_rigid_m (scale {auto:.3f}); "
                f"rigid fit at scale 1 has rotation det {np.linalg.det(err_unit[1]):.0f}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--video-fovy", type=float, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    out = evaluate(a.data, a.video_fovy)
    write_json(a.json, {"command": command_line(__file__), **out}, echo=True)


if __name__ == "__main__":
    main()
