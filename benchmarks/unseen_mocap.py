"""Real mocap files of rigs the project was not built on: does each import as a sensible clip,
and does the shipped mocap tracker follow it?

    MUJOCO_GL=egl .venv/bin/python benchmarks/unseen_mocap.py FILE_OR_DIR ... \
        [--body fit|default] [--checkpoint checkpoints/uhc_mocap_global/policy.pt] [--json OUT]

For every file (any format ``kinpoly motion import`` reads): the import as a user runs it
(fitted body by default), how many of the humanoid's 24 bodies found a joint by name, the
fitted height, the retargeting error, the share of upright frames, leading frames left out,
how high the soles stand above the floor at the first frame, and then the clip tracked from its
first frame by the controller (as ``kinpoly uhc eval``). A file that does not import is a row
with its one-line error. Writes a JSON (default ``benchmarks/results/unseen_mocap.json``) and
prints a markdown table.

The files themselves are not in the repository (their licences do not allow it);
``benchmarks/results/unseen_mocap.json`` names where each came from.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from report import write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def import_row(path: Path, body) -> tuple[dict, object | None]:
    from kinpoly.humanoid.skeleton import NUM_BODIES
    from kinpoly.motion.importers import try_import, upright_share
    from kinpoly.motion.retarget import sole_height

    clips, error = try_import(path, body=body)
    if error is not None:
        return {"file": path.name, "error": error}, None
    clip = clips[0]
    return {
        "file": path.name, "clip": clip.name, "frames": clip.num_frames,
        "source_fps": clip.meta.get("source_fps"),
        "bodies_mapped": f"{len(clip.meta.get('joint_map', {}))}/{NUM_BODIES}",
        "height_m": round(clip.body.height, 2),
        "retarget_error_mm": clip.retarget_error_mm, "retarget_max_error_mm": clip.retarget_max_error_mm,
        "upright": round(upright_share(clip), 2),
        "dropped_leading_frames": clip.meta.get("dropped_leading_frames", 0),
        "sole_at_start_cm": round(float(sole_height(clip.qpos[:1], clip.body)[0]) * 100, 1),
    }, clip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--body", choices=("fit", "default"), default="fit")
    ap.add_argument("--checkpoint", default=str(ROOT / "checkpoints/uhc_mocap_global/policy.pt"))
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/unseen_mocap.json")
    ap.add_argument("--sources", type=Path, help="A file naming where each mocap file came from, "
                    "copied into the JSON.")
    args = ap.parse_args()

    from kinpoly.humanoid.skeleton import BodyShape
    from kinpoly.motion.importers import find_motion_files
    from kinpoly.simulation.evaluate import evaluate, load_controller
    from kinpoly.simulation.reference import prepare_reference

    body = BodyShape() if args.body == "default" else "fit"
    rows, refs = [], []
    for path in find_motion_files(args.paths):
        row, clip = import_row(path, body)
        rows.append(row)
        if clip is not None:
            refs.append(prepare_reference(clip))
    cfg, policy = load_controller(args.checkpoint)
    result, _ = evaluate(refs, cfg.env, policy, workers=os.cpu_count() or 1)
    for row in rows:
        tracked = result["per_clip"].get(row.get("clip"))
        if tracked:
            row.update({"tracked": tracked["success"], "simulated_frames": tracked["simulated_frames"],
                        "mpjpe_global_mm": round(tracked["mpjpe_global_mm"], 1),
                        "mpjpe_mm": round(tracked["mpjpe_mm"], 1)})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    out = {"command": "benchmarks/unseen_mocap.py " + " ".join(str(p) for p in args.paths)
                      + f" --body {args.body} --checkpoint {args.checkpoint}",
           "git_commit": commit, "body": args.body, "checkpoint": args.checkpoint,
           "sources": args.sources.read_text() if args.sources else None,
           "overall": {"files": len(rows), "imported": len(refs),
                       "tracked": int(sum(r.get("tracked", False) for r in rows)),
                       "mpjpe_global_mm": round(float(np.mean([r["mpjpe_global_mm"] for r in rows
                                                               if "mpjpe_global_mm" in r])), 1) if refs else None},
           "files": rows}
    write_json(args.json, out)
    cols = ["file", "bodies_mapped", "height_m", "retarget_error_mm", "dropped_leading_frames",
            "sole_at_start_cm", "tracked", "simulated_frames", "frames", "mpjpe_global_mm", "mpjpe_mm"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, r.get("error", "") if c == "bodies_mapped" else "")) for c in cols) + " |")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
