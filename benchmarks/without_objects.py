"""The estimate of the held-out test takes with their scene objects and without them (as a
recording given without ``--objects`` is estimated), for a kinematic-policy file.

    MUJOCO_GL=egl .venv/bin/python benchmarks/without_objects.py POLICY [--features] [--modes with without random_table]
        [--actions locomotion] [-j 2] [--out FILE]

Every take ``kinpoly ego build`` makes has an object (the action's, or a distractor table at
least 1 m from the body's path), so "no object" is an input a policy sees only if trained with
``object_dropout``. ``without``: the take's objects removed from the policy's input and from the
simulation, so the estimator shows the policy its placeholder table (``PlaceholderTable``, the
default); ``without_placeholder``: the same with the policy reading "no object". ``random_table``: the policy reads a table at a random place and heading in the
room (uniform in +-3 m, seeded by the take's name), wherever the wearer walks, and the
simulation has no object: against ``with`` on the locomotion takes, whose distractor table
``ego build`` keeps at least 1 m from the body's path, it shows how much the table's placement
tells the policy about the path. ``--features``: the take's image features are read (a policy that reads them);
else they are dropped (the head-trajectory-only policy). Means over takes of MPJPE / global
MPJPE (mm), skate (mm/frame), penetration (mm); falls per 100 frames and takes without a fall.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from report import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(job) -> dict:
    import torch

    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.evaluation import metrics
    from kinpoly.policy.estimate import Estimator

    torch.set_num_threads(1)
    data, name, policy, features, mode = job
    take = EgoDataset(data, split="test")[name]
    if not features:
        take.image_features = None
    T = take.num_frames
    if mode == "random_table":  # in the policy's input only
        from kinpoly import rotations as rot
        from kinpoly.egocentric.features import objects_relative_to_head

        rng = np.random.default_rng(int.from_bytes(name.encode()[-8:].rjust(8, b"\0"), "little"))
        table = np.zeros((T, 1, 7))
        table[:, 0, :2] = rng.uniform(-3.0, 3.0, 2)
        table[:, 0, 3:] = rot.matrix_to_quat(rot.yaw_matrix(np.array(rng.uniform(-np.pi, np.pi))))
        take.object_poses, take.object_kinds, take.object_names = objects_relative_to_head(take.head_pose, table), \
            ["table"], ["table"]
        take.object_world, take.meta["objects"] = None, []
    if mode in ("without", "without_placeholder"):
        take.object_world, take.object_poses = None, np.zeros((T, 0, 7))
        take.object_kinds, take.object_names, take.meta["objects"] = [], [], []
    est = Estimator(policy, placeholder_object=mode != "without_placeholder").estimate(take)
    s = metrics.score_clip(est.clip, est.ground_truth)
    return {"take": name, "mode": mode, "frames": take.num_frames, "falls": len(est.falls),
            **{k: s[k] for k in ("mpjpe_mm", "mpjpe_global_mm", "skate_mm", "penetration_mm")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("policy")
    ap.add_argument("--features", action="store_true", help="the policy reads the takes' image features")
    ap.add_argument("--modes", nargs="+", default=["with", "without"], choices=["with", "without", "without_placeholder", "random_table"])
    ap.add_argument("--actions", nargs="+", default=None, help="only the takes with these action labels")
    ap.add_argument("--data", default=str(ROOT / "data/ego"))
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON file (default: print only)")
    args = ap.parse_args()
    from concurrent.futures import ProcessPoolExecutor

    from kinpoly.egocentric.take import EgoDataset

    ds = EgoDataset(args.data, split="test")
    names = [n for n in ds.names if args.actions is None or ds[n].action in args.actions]
    jobs = [(args.data, n, args.policy, args.features, m) for m in args.modes for n in names]
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(run, jobs))
    summary = {}
    for m in args.modes:
        r = [x for x in rows if x["mode"] == m]
        summary[m] = {"takes": len(r), **{k: float(np.mean([x[k] for x in r])) for k in
                                          ("mpjpe_mm", "mpjpe_global_mm", "skate_mm", "penetration_mm")},
                      "falls_per_100_frames": 100.0 * sum(x["falls"] for x in r) / sum(x["frames"] for x in r),
                      "no_fall": float(np.mean([x["falls"] == 0 for x in r]))}
        print(m, json.dumps({k: round(v, 3) for k, v in summary[m].items()}))
    if args.out:
        cmd = "MUJOCO_GL=egl .venv/bin/python benchmarks/without_objects.py " + " ".join(
            [args.policy, *(["--features"] if args.features else []), "--modes", *args.modes,
             *(["--actions", *args.actions] if args.actions else [])])
        write_json(args.out, {"command": cmd, "summary": summary, "rows": rows})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
