"""Estimates from a head trajectory *file* with its objects given in a file (``--objects``),
against the same recording as a take, and against the file without its objects.

    MUJOCO_GL=egl .venv/bin/python benchmarks/objects_input.py [--takes kinpoly/assets/takes data/ego:test] [-j 2]

For each take with scene objects (the bundled samples, and the test takes of ``data/ego`` that
have an interaction label) its head poses are written as a CSV and its objects as YAML in a
Y-up world of their own (turned 40 degrees and moved), as a user would have them, then imported
(``import_trajectory(..., objects=...)``, the take's first eye height and wearer) and estimated
by the head-trajectory-only policy in the loop; the ground truth is attached by
``attach_ground_truth`` (yaw + translation). Three rows per take: the take itself, the files
with ``--objects``, the files without. Writes ``benchmarks/results/objects_input.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from report import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODES = ("take", "files_with_objects", "files_without_objects")


def _files(take, folder: Path) -> tuple[Path, Path]:
    """The take's head poses (CSV) and objects (YAML) in a Y-up world turned and moved."""
    import yaml

    from kinpoly import rotations as rot
    from kinpoly.egocentric.trajectory import Y_UP_TO_Z_UP

    A = Y_UP_TO_Z_UP.T @ rot.yaw_matrix(np.array(0.7))
    b = np.array([3.0, -1.0, 2.0])

    def moved(p):
        return np.concatenate([p[..., :3] @ A.T + b, rot.matrix_to_quat(A @ rot.quat_to_matrix(p[..., 3:7]))], -1)

    head = moved(take.head_pose)
    rows = [",".join(f"{v:.10f}" for v in (i / take.fps, *p)) + ",y" for i, p in enumerate(head)]
    (folder / "head.csv").write_text("\n".join(["time,x,y,z,qw,qx,qy,qz,world_up", *rows]) + "\n")
    objects = []
    for k, d in enumerate(take.meta["objects"]):
        p = moved(take.object_world[0, k])
        objects.append({"kind": d["kind"], "name": d["name"], "pos": p[:3].tolist(), "quat": p[3:].tolist(),
                        "size": d["size"]})
    (folder / "objects.yaml").write_text(yaml.safe_dump({"objects": objects}))
    return folder / "head.csv", folder / "objects.yaml"


def run(job) -> dict:
    import torch

    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.egocentric.video import attach_ground_truth, import_trajectory
    from kinpoly.evaluation import metrics
    from kinpoly.motion.clip import MotionClip
    from kinpoly.policy.estimate import SHIPPED_HEAD_ONLY_POLICY, Estimator

    torch.set_num_threads(1)
    data, split, name, mode = job
    take = EgoDataset(data, split=split)[name]
    take.image_features = None
    if mode != "take":
        with tempfile.TemporaryDirectory() as tmp:
            head, objects = _files(take, Path(tmp))
            imported = import_trajectory(head, scale=1.0, eye_height=float(take.head_pose[0, 2]), action=take.action,
                                         objects=objects if mode == "files_with_objects" else None).take
        imported.name, imported.meta["body"] = take.name, take.meta["body"]  # the same wearer
        attach_ground_truth(imported, MotionClip(name=take.name, qpos=take.qpos, body=take.body, fps=take.fps))
        take = imported
    est = Estimator(SHIPPED_HEAD_ONLY_POLICY).estimate(take)
    s = metrics.score_clip(est.clip, est.ground_truth)
    return {"take": name, "mode": mode, "action": take.action, "frames": take.num_frames,
            "objects": [o.object.kind for o in est.clip.objects], "restarts": len(est.falls),
            **{k: s.get(k) for k in ("mpjpe_mm", "mpjpe_global_mm", "penetration_mm", "skate_mm", "success",
                                     "interaction_success", "head_trans_err_m")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--takes", nargs="+", default=["kinpoly/assets/takes", "data/ego:test"],
                    help="take folders, optionally :split")
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/objects_input.json"))
    args = ap.parse_args()
    from kinpoly.egocentric.take import EgoDataset

    jobs = []
    for spec in args.takes:
        data, _, split = spec.partition(":")
        if not (ROOT / data).exists():
            print(f"skipping {data}: not there")
            continue
        ds = EgoDataset(ROOT / data, split=split or None)
        for name in ds.names:
            take = ds[name]
            if take.meta.get("objects") and take.object_world is not None and take.action != "locomotion" or \
                    data.startswith("kinpoly/assets"):
                jobs += [(str(ROOT / data), split or None, name, m) for m in MODES]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run, jobs))
    for r in rows:
        print(json.dumps(r))
    result = {"command": "MUJOCO_GL=egl .venv/bin/python benchmarks/objects_input.py " + " ".join(
        ["--takes", *args.takes]), "policy": "checkpoints/kinematic_head_only/policy.pt", "rows": rows}
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
