"""Egocentric build throughput: frames/s end to end, split into rendering, flow and encoding.

    MUJOCO_GL=egl .venv/bin/python benchmarks/ego_throughput.py --motions data/motions \
        [--clips 12] [--workers 2] [--size 128] [--json out.json]

Builds the first ``--clips`` clips of a clip folder into a temporary take folder (head camera at
``--size`` x ``--size``, flow, encoder features with the shipped encoder) with ``--workers``
processes and reports: wall-clock frames/s for the whole build, and per worker-second the time
spent in scene synthesis, rendering (incl. renderer setup), DIS flow and encoding.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    from kinpoly.egocentric.build import EgoConfig, build_dataset
    from kinpoly.egocentric.flow import DEFAULT_ENCODER
    from report import command_line, write_json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--motions", type=Path, default=Path("data/motions"))
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    cfg = EgoConfig(width=a.size, height=a.size, features=DEFAULT_ENCODER.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        rep = build_dataset(a.motions, Path(tmp) / "ego", cfg, workers=a.workers, progress=False, limit=a.clips)
        wall = time.perf_counter() - t0
    t = rep["timing_s"]
    n = max(rep["new_frames"], 1)
    out = {"frames": rep["new_frames"], "takes": rep["new_takes"], "failures": len(rep["failures"]),
           "workers": a.workers, "cpus": os.cpu_count(), "size": a.size, "wall_s": round(wall, 2),
           "frames_per_s": round(rep["new_frames"] / wall, 1),
           "frames_per_s_per_worker": round(rep["new_frames"] / wall / a.workers, 1),
           "worker_seconds": t,
           "per_stage_frames_per_s": {k: (round(n / v, 1) if v > 0 else None) for k, v in t.items()},
           "load_average_1min_at_end": round(os.getloadavg()[0], 2), "features": cfg.features}
    write_json(a.json, {"command": command_line(__file__, env="MUJOCO_GL=egl"), **out}, echo=True)


if __name__ == "__main__":
    main()
