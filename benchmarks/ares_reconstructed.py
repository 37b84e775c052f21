"""The EgoEgo ARES video estimated from the video alone (its trajectory reconstructed from its
frames, ``kinpoly.egocentric.reconstruct``) against the same estimate from the DROID-SLAM
trajectory that ships with it, both scored against its ground truth.

    .venv/bin/python benchmarks/ares_reconstructed.py [--out benchmarks/results/ares_video_reconstructed.json]

Needs the ``reconstruct`` extra (pycolmap) and ``../shared/data/egoego_ares``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from report import write_json

ROOT = Path(__file__).resolve().parents[1]
ARES = ROOT.parent / "shared/data/egoego_ares"


def estimate(out: Path, *extra: str) -> dict:
    cmd = ["estimate", "--video", str(ARES / "egocentric_video.mp4"), "--gt", str(ARES / "demo_ares_data.p"),
           "--out", str(out), "--videos", "0", "--no-progress", *extra]
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kinpoly.cli", *cmd], check=True, capture_output=True)
    seconds = time.perf_counter() - t
    clip = json.loads((out / "metrics.json").read_text())["evaluation"]
    keep = ("mpjpe_mm", "mpjpe_global_mm", "head_trans_err_m", "head_rot_err", "penetration_mm", "skate_mm")
    return {"command": "kinpoly " + " ".join(c.replace(str(ROOT.parent), "..") for c in cmd),
            "seconds": round(seconds, 1), **{k: clip[k] for k in keep if k in clip}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video_only = estimate(Path(tmp) / "video_only")
        poses = Path(tmp) / "video_only" / "reconstruction" / "sparse" / "images.txt"
        registered = sum(1 for line in poses.read_text().splitlines() if line.rstrip().endswith(".png"))
        given = len(list((Path(tmp) / "video_only" / "reconstruction" / "images").glob("*.png")))
        droid = estimate(Path(tmp) / "droid", "--head-poses", str(ARES / "droid_slam_traj.npy"))
    result = {"video_only": {**video_only, "frames_given_to_the_mapper": given, "registered": registered},
              "droid_slam_trajectory": droid}
    write_json(args.out, result, echo=True)


if __name__ == "__main__":
    main()
