"""Foundation benchmark: retargeting error per dataset, import speed, FK and rendering speed.

    .venv/bin/python benchmarks/foundation_bench.py [../shared/data] [--out benchmarks/results/foundation.json]

Single process, one core for import (the CLI parallelises over files). Writes the JSON and
prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from kinpoly.humanoid.kinematics import forward_kinematics
from kinpoly.humanoid.skeleton import BodyShape
from kinpoly.motion.importers import find_motion_files, import_file
from report import command_line, write_json

DATASETS = ("bandai", "cmu_amc", "interactions", "deepmimic")


def bench_import(shared: Path) -> dict:
    out = {}
    for name in DATASETS:
        files = find_motion_files([shared / name])
        rows, t_total, seconds = [], 0.0, 0.0
        for f in files:
            t0 = time.perf_counter()
            clip = import_file(f)[0]
            t_total += time.perf_counter() - t0
            seconds += clip.duration
            default = import_file(f, body=BodyShape())[0]
            rows.append((clip.retarget_error_mm, clip.retarget_max_error_mm, default.retarget_error_mm))
        r = np.array(rows)
        out[name] = {"files": len(files), "motion_seconds": round(seconds, 1),
                     "import_seconds": round(t_total, 2), "x_real_time_per_core": round(seconds / t_total, 1),
                     "fit_mean_error_mm": round(float(r[:, 0].mean()), 2),
                     "fit_max_clip_error_mm": round(float(r[:, 0].max()), 2),
                     "fit_worst_joint_frame_mm": round(float(r[:, 1].max()), 1),
                     "default_body_mean_error_mm": round(float(r[:, 2].mean()), 1),
                     "default_body_max_clip_error_mm": round(float(r[:, 2].max()), 1)}
    return out


def bench_fk() -> dict:
    rng = np.random.default_rng(0)
    q = np.zeros((18000, 76))
    q[:, 3] = 1.0
    q[:, 7:] = rng.uniform(-1, 1, (18000, 69))
    t0 = time.perf_counter()
    forward_kinematics(q)
    dt = time.perf_counter() - t0
    return {"frames": 18000, "seconds": round(dt, 3), "frames_per_second": round(18000 / dt)}


def bench_render() -> dict:
    from kinpoly.demo import sample_clips
    from kinpoly.visualization.render import ClipRenderer, tracking_camera

    clip = sample_clips()[0]
    out = {}
    for label, kw in (("third_person_320x240", dict(width=320, height=240)),
                      ("head_camera_128x128", dict(width=128, height=128, view="head"))):
        with ClipRenderer.for_clip(clip, **kw) as r:
            track = tracking_camera(clip) if kw.get("view") != "head" else None
            r.frame(clip.qpos[0])
            t0 = time.perf_counter()
            for i in range(clip.num_frames):
                if track is not None:
                    track.apply(r.camera, i)
                r.frame(clip.qpos[i])
            out[label] = round(clip.num_frames / (time.perf_counter() - t0), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("shared", nargs="?", default="../shared/data", type=Path)
    ap.add_argument("--out", default="benchmarks/results/foundation.json", type=Path)
    args = ap.parse_args()
    res = {"command": command_line(__file__, env="MUJOCO_GL=egl"), "import": bench_import(args.shared),
           "forward_kinematics": bench_fk(), "render_frames_per_second": bench_render()}
    write_json(args.out, res)
    print("| dataset | files | motion (s) | mean error (mm) | worst clip (mm) | worst joint-frame (mm) "
          "| one fixed body: mean / worst clip (mm) | import speed (x real time, 1 core) |")
    print("|---|---|---|---|---|---|---|---|")
    for k, v in res["import"].items():
        print(f"| {k} | {v['files']} | {v['motion_seconds']} | {v['fit_mean_error_mm']} | {v['fit_max_clip_error_mm']} "
              f"| {v['fit_worst_joint_frame_mm']} | {v['default_body_mean_error_mm']} / {v['default_body_max_clip_error_mm']} "
              f"| {v['x_real_time_per_core']} |")
    print(json.dumps({k: res[k] for k in ("forward_kinematics", "render_frames_per_second")}))


if __name__ == "__main__":
    main()
