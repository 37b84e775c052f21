"""Automatic metric scale of monocular head trajectories, on held-out takes with known scale.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ego_scale.py [--data data/ego] [--split test] \
        [--seed 0] [--json benchmarks/results/ego_scale.json] [--md benchmarks/results/ego_scale.md]

Each take's ground-truth head trajectory (metres, ``gt_head_pose``) becomes a SLAM-like camera
trajectory: SLAM noise (``features.slam_noise`` with the build's default drift and jitter,
added in metres), then an unknown similarity (scale log-uniform in 0.2..5, uniformly random
rotation, translation ~ N(0, 3) per axis), written as camera-to-world poses in OpenCV camera
axes with unknown gravity, as DROID-SLAM gives them. It goes through the importer's own path
(``to_head_poses(..., scale=1)``: levelling by the mean head up axis) and each estimator
returns a scale; the benchmark reports ``estimated / true`` per take and, per group (all,
action, motion), the number of takes, how many got an estimate, the median ratio, its
interquartile range and the fraction within +-20% (of all takes: no estimate counts as a miss),
also split by whether the gait estimator found walking.

Estimators: ``old`` (flow encoder speed ratio as the importer had it, run on the take's stored
pooled flows), ``flow`` (the same, only when the encoder sees motion), ``gait`` (walk ratio at
the default 1.71 m wearer), ``gait_true_height`` (the same with the take's true body height:
separates the method's error from the stature prior), ``pendulum`` (the Zijlstra-Hof
cross-check reported with the gait estimate) and ``combined`` (what ``kinpoly ego
import-video`` now uses). Deterministic given ``--seed``: each take draws from
``take_rng(seed, name)``. Without ``data/ego`` it falls back to the bundled takes
(``kinpoly/assets/takes``, all of them; they store no flows, so only the gait estimators run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = ("old", "flow", "gait", "gait_true_height", "pendulum", "combined")


def motion_of(name: str) -> str:
    """Motion label from a take name: Bandai ``dataset-1_<motion>_<style>_NNN``, CMU
    ``SS_TT`` -> ``cmu``, DeepMimic ``humanoid3d_<motion>``, else the name's first word."""
    if name.startswith("dataset-"):
        return name.split("_")[1]
    if re.fullmatch(r"\d+_\d+", name):
        return "cmu"
    if name.startswith("humanoid3d_"):
        return "deepmimic"
    return name.split("_")[0]


def slam_like(gt_head: np.ndarray, fps: float, rng: np.random.Generator):
    """(Trajectory in SLAM units, true scale = metres per SLAM unit)."""
    from kinpoly import rotations as rot
    from kinpoly.egocentric.build import NoiseConfig
    from kinpoly.egocentric.features import slam_noise
    from kinpoly.egocentric.trajectory import _M, Trajectory

    n = NoiseConfig()
    noisy = slam_noise(gt_head, fps, rng, drift_m_per_s=n.drift_m_per_s, drift_deg_per_s=n.drift_deg_per_s,
                       jitter_m=n.jitter_m, jitter_deg=n.jitter_deg)
    c = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
    q = rng.normal(size=4)
    R = rot.quat_to_matrix(q / np.linalg.norm(q))
    t = rng.normal(0.0, 3.0, size=3)
    pos = c * (noisy[:, :3] @ R.T + t)
    R_cam = R @ rot.quat_to_matrix(noisy[:, 3:7]) @ _M["opencv"].T
    traj = Trajectory(pos, rot.quat_continuous(rot.matrix_to_quat(R_cam)), None, "opencv", "auto", False, "slam-like")
    return traj, 1.0 / c


def evaluate_take(take, seed: int, encoder) -> dict:
    from kinpoly.egocentric.build import take_rng
    from kinpoly.egocentric.features import head_local_velocities
    from kinpoly.egocentric.flow import flows_per_frame
    from kinpoly.egocentric.scale import EYE_HEIGHT_FRACTION, estimate_metric_scale, flow_scale, gait_scale
    from kinpoly.egocentric.take import EgoDataError
    from kinpoly.egocentric.trajectory import estimate_scale, to_head_poses

    gt = take.gt_head_pose if take.gt_head_pose is not None else take.head_pose
    traj, true = slam_like(gt, take.fps, take_rng(seed, take.name))
    head = to_head_poses(traj, 1.0).head_pose
    default_height = 1.6 / EYE_HEIGHT_FRACTION
    pred = None
    if encoder is not None and "flow" in take.extras:
        pred = encoder.encode(flows_per_frame(take.extras["flow"].astype(np.float32)))[1]
    est: dict = dict.fromkeys(ESTIMATORS)
    gait = gait_scale(head[:, :3], take.fps, default_height)
    est["gait"] = gait["scale"]
    est["pendulum"] = gait.get("pendulum_scale")
    est["gait_true_height"] = gait_scale(head[:, :3], take.fps, take.body.height)["scale"]
    if pred is not None:
        v = head_local_velocities(head, take.fps)[:-1, :3]
        est["old"] = estimate_scale(v, pred[:-1, :3])[0]
        est["flow"] = flow_scale(v, pred[:-1, :3])["scale"]
    try:
        est["combined"], rep = estimate_metric_scale(head, take.fps, pred, default_height)
        used = "+".join(rep["used"])
    except EgoDataError:
        used = "none"
    ratio = {k: (None if v is None else round(float(v) / true, 4)) for k, v in est.items()}
    return {"name": take.name, "action": take.action or "unlabelled", "motion": motion_of(take.name),
            "frames": take.num_frames, "seconds": round(take.num_frames / take.fps, 2),
            "body_height": round(take.body.height, 3), "true_scale": round(true, 4), "ratio": ratio,
            "combined_used": used, "walking_windows": gait["walking_windows"], "windows": gait["windows"],
            "cadence_spm": None if gait["scale"] is None else round(gait["cadence_spm"], 1)}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for k in ESTIMATORS:
        r = np.array([x["ratio"][k] for x in rows if x["ratio"][k] is not None], dtype=np.float64)
        if len(r) == 0:
            out[k] = {"takes": len(rows), "estimated": 0}
            continue
        q = np.percentile(r, [25, 50, 75])
        out[k] = {"takes": len(rows), "estimated": int(len(r)), "median": round(float(q[1]), 3),
                  "iqr": [round(float(q[0]), 3), round(float(q[2]), 3)],
                  "within_20pct": round(float(np.sum(np.abs(np.log(r)) <= np.log(1.2)) / len(rows)), 3),
                  "within_20pct_of_estimated": round(float(np.mean(np.abs(np.log(r)) <= np.log(1.2))), 3)}
    return out


def markdown(result: dict) -> str:
    lines = [f"# Automatic metric scale on {result['takes']} {result['split']} takes of `{result['data']}`", "",
             f"Command: `{result['command']}`", "",
             "Ratio = estimated / true scale of a SLAM-like copy of each take's head trajectory "
             "(SLAM noise, random similarity with scale 0.2..5). `within 20%` counts takes without "
             "an estimate as misses; `est.` is how many takes got one."]
    if result["split"] == "train":
        lines.append("This is the development split: the log-uncertainties of `kinpoly/egocentric/scale.py` "
                     "(GAIT_LOG_SIGMA, FLOW_LOG_SIGMA) are the RMS log-errors measured here.")
    lines.append("")
    groups = [("all", result["summary"]["all"])]
    groups += [(k, v) for k, v in result["summary"]["walking"].items()]
    groups += [(f"action: {k}", v) for k, v in result["summary"]["action"].items()]
    groups += [(f"motion: {k}", v) for k, v in result["summary"]["motion"].items()]
    for title, s in groups:
        n = next(iter(s.values()))["takes"]
        lines += [f"## {title} ({n} takes)", "", "| estimator | est. | median ratio | IQR | within 20% |",
                  "|---|---|---|---|---|"]
        for k, v in s.items():
            if v["estimated"] == 0:
                lines.append(f"| {k} | 0 | - | - | 0.00 |")
            else:
                lines.append(f"| {k} | {v['estimated']} | {v['median']:.2f} | {v['iqr'][0]:.2f}-{v['iqr'][1]:.2f} "
                             f"| {v['within_20pct']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    import torch

    from kinpoly.egocentric.flow import load_encoder
    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.motion.clip import atomic_write_text

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "ego")
    ap.add_argument("--split", default="test", help="test, train or all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    a = ap.parse_args()
    data, split = a.data, (None if a.split == "all" else a.split)
    if not (data / "manifest.json").is_file():
        data, split = ROOT / "kinpoly" / "assets" / "takes", None
    try:
        encoder = load_encoder()
    except FileNotFoundError:
        encoder = None
    ds = EgoDataset(data, split)
    rows = [evaluate_take(t, a.seed, encoder) for t in ds]
    summary: dict = {"all": summarise(rows), "walking": {
        "walking found": summarise([r for r in rows if r["ratio"]["gait"] is not None]),
        "no walking found": summarise([r for r in rows if r["ratio"]["gait"] is None])}, "action": {}, "motion": {}}
    for key in ("action", "motion"):
        for v in sorted({r[key] for r in rows}):
            summary[key][v] = summarise([r for r in rows if r[key] == v])
    try:
        shown = str(data.relative_to(ROOT))
    except ValueError:
        shown = str(data)
    result = {"data": shown, "split": split or "all", "takes": len(rows), "seed": a.seed,
              "encoder": None if encoder is None else os.path.relpath(encoder.path, ROOT),
              "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ego_scale.py "
                         f"--split {a.split} --seed {a.seed}",
              "summary": summary, "takes_detail": rows}
    text = json.dumps(result, indent=1)
    print(json.dumps(summary["all"], indent=1))
    if a.json:
        atomic_write_text(a.json, text)
    if a.md:
        atomic_write_text(a.md, markdown(result))


if __name__ == "__main__":
    main()
