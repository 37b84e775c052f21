"""Live estimation (``kinpoly.policy.streaming.StreamingEstimator``) against the offline one on
the held-out test takes: accuracy, falls, latency and time per pushed pose.

    MUJOCO_GL=egl .venv/bin/python benchmarks/streaming.py [--lookahead 2 5 10 30] [-j 2]

For each setting (the shipped policy that reads image features, pushed with every pose; the
head-trajectory-only one, whose file has a restart encoder, so every lookahead is the same and
only 2 is run; the same without its restart encoder) the offline estimate
(``Estimator.estimate``, the same restart setting) and a stream per ``lookahead`` run on every
test take of ``data/ego``, the stream fed the take's head poses one
at a time in kinpoly's world (``level=False``) with the scene objects. Reported per setting:
means over takes of MPJPE / global MPJPE (mm), takes without a fall, falls per 100 frames, the
largest difference to the offline motion (0 where the stream must equal it), latency in frames
(the frames between a pose's arrival and its simulated frame, start-up excluded), and ms per
push on one core (mean, 99th percentile; start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# setting: (policy file, restart encoder (None: when the file has one), only these lookaheads)
SETTINGS = {"features": ("checkpoints/kinematic/policy.pt", None, None),
            "head_only": ("checkpoints/kinematic_head_only/policy.pt", None, (2,)),
            "head_only_no_restart_encoder": ("checkpoints/kinematic_head_only/policy.pt", False, None)}


def run_take(job) -> dict:
    import torch

    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.evaluation import metrics
    from kinpoly.humanoid.scene import SceneObject
    from kinpoly.policy.estimate import Estimator
    from kinpoly.policy.streaming import StreamingEstimator

    torch.set_num_threads(1)
    data, name, setting, lookaheads = job
    path, restart, only = SETTINGS[setting]
    lookaheads = only or lookaheads
    take = EgoDataset(data)[name]
    features = setting == "features"
    if not features:
        take.image_features = None
    offline = Estimator(ROOT / path, restart_context=restart).estimate(take)
    gt = offline.ground_truth
    rows = {"offline": _scores(metrics.score_clip(offline.clip, gt), offline.falls, take.num_frames)}
    objects = [SceneObject.from_dict(d) for d in take.meta.get("objects") or []] \
        if take.object_world is not None else []
    context = None
    for L in lookaheads:
        stream = StreamingEstimator(ROOT / path, lookahead=L, level=False, objects=objects, action=take.action,
                                    body=take.body, max_frames=take.num_frames, name=name, restart_context=restart)
        context = stream.loop.context.cfg.context_frames
        latency, push_ms = [], []
        for k in range(take.num_frames):
            t0 = time.perf_counter()
            out = stream.push(take.head_pose[k, :3], take.head_pose[k, 3:],
                              feature=take.image_features[k] if features else None,
                              object_poses=take.object_world[k] if objects else None)
            dt = time.perf_counter() - t0
            if k > context:  # after the first context window (start-up)
                push_ms.append(1e3 * dt)
                latency += [k - f.frame for f in out]
        stream.close()
        clip = stream.clip()
        falls = [tuple(f) for f in clip.meta["falls"]]
        row = _scores(metrics.score_clip(clip, gt), falls, take.num_frames)
        row.update(max_diff_to_offline=float(np.abs(clip.qpos - offline.clip.qpos).max()),
                   latency_frames=latency, push_ms=push_ms)
        rows[f"lookahead_{L}"] = row
    return {"take": name, "frames": take.num_frames, "rows": rows, "context_frames": context}


def _scores(s: dict, falls, frames: int) -> dict:
    return {"mpjpe_mm": s["mpjpe_mm"], "mpjpe_global_mm": s["mpjpe_global_mm"], "falls": len(falls),
            "frames": frames}


def main() -> None:
    from kinpoly.egocentric.take import EgoDataset
    from report import command_line, write_json
    from kinpoly.processes import process_map

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT / "data" / "ego"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--lookahead", type=int, nargs="+", default=[2, 5, 10, 30])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "streaming.json"))
    args = ap.parse_args()
    names = EgoDataset(args.data, split=args.split).names
    result = {"command": command_line(__file__, env="MUJOCO_GL=egl"),
              "measured": f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()}-core machine",
              "takes": len(names), "split": args.split}
    for policy in args.settings:
        jobs = [(args.data, n, policy, tuple(args.lookahead)) for n in names]
        takes = list(process_map(run_take, jobs, args.workers))
        summary = {}
        for key in takes[0]["rows"]:
            rows = [t["rows"][key] for t in takes]
            s = {"mpjpe_mm": float(np.mean([r["mpjpe_mm"] for r in rows])),
                 "mpjpe_global_mm": float(np.mean([r["mpjpe_global_mm"] for r in rows])),
                 "no_fall": float(np.mean([r["falls"] == 0 for r in rows])),
                 "falls_per_100_frames": 100.0 * sum(r["falls"] for r in rows) / sum(r["frames"] for r in rows)}
            if key != "offline":
                lat = np.concatenate([r["latency_frames"] for r in rows])
                ms = np.concatenate([r["push_ms"] for r in rows])
                s.update(max_diff_to_offline=max(r["max_diff_to_offline"] for r in rows),
                         takes_equal_to_offline=sum(r["max_diff_to_offline"] == 0 for r in rows),
                         latency_frames_median=float(np.median(lat)), latency_frames_max=int(lat.max()),
                         push_ms_mean=float(ms.mean()), push_ms_p99=float(np.percentile(ms, 99)))
            summary[key] = s
            print(policy, key, json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}))
        result[policy] = {"summary": summary, "context_frames": takes[0]["context_frames"],
                          "per_take": {t["take"]: {k: {m: v for m, v in r.items() if m not in ("latency_frames", "push_ms")}
                                                   for k, r in t["rows"].items()} for t in takes}}
    write_json(args.json, result)


if __name__ == "__main__":
    main()
