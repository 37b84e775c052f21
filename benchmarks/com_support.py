"""Where a reference clip's centre of mass is, with the humanoid's own masses, relative to one
support foot, frame by frame: the horizontal distance from the centre of mass to the foot's
axis (the line from the ankle to the toe joint, within the segment), in metres.

A clip that keeps its centre of mass well beside the only foot on the floor for many frames,
without the centre of mass accelerating away, cannot be followed by the simulated body
without an external torque of about mass x g x that distance.

    python benchmarks/com_support.py dataset-1_kick_normal_001 --foot L --frames 40:80 \
        [--motions data/motions_scenes] [--json OUT]
"""
from __future__ import annotations

import json

import click
import mujoco
import numpy as np

from kinpoly.motion.clip import ClipFolder
from kinpoly.simulation.model import humanoid_model


def com_to_foot(clip, foot: str, frames: range) -> list[dict]:
    model = humanoid_model(clip.body)
    data = mujoco.MjData(model)
    ankle, toe = model.body(f"{foot}_Ankle").id, model.body(f"{foot}_Toe").id
    rows = []
    for t in frames:
        data.qpos[:76] = clip.qpos[t]
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        com = data.subtree_com[1]
        a, b = data.xpos[ankle, :2], data.xpos[toe, :2]
        ab = b - a
        s = np.clip(np.dot(com[:2] - a, ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
        rows.append({"frame": t, "com": com.round(3).tolist(), "ankle_height": round(float(data.xpos[ankle, 2]), 3),
                     "com_to_foot_m": round(float(np.linalg.norm(com[:2] - (a + s * ab))), 3)})
    return rows


@click.command()
@click.argument("clip")
@click.option("--foot", type=click.Choice(["L", "R"]), default="L", show_default=True)
@click.option("--frames", default=None, help="START:STOP (default: the whole clip)")
@click.option("--motions", default="data/motions_scenes", show_default=True)
@click.option("--json", "json_out", default=None)
def main(clip, foot, frames, motions, json_out):
    c = ClipFolder(motions).load(clip)
    start, stop = (int(x) for x in frames.split(":")) if frames else (0, c.num_frames)
    rows = com_to_foot(c, foot, range(start, min(stop, c.num_frames)))
    mass = float(humanoid_model(c.body).body_subtreemass[1])
    for r in rows:
        click.echo(f"{r['frame']:4d}  com to {foot} foot {r['com_to_foot_m']:.3f} m  "
                   f"(ankle {r['ankle_height']:.2f} m high)")
    d = np.array([r["com_to_foot_m"] for r in rows])
    click.echo(f"mass {mass:.1f} kg; mean {d.mean():.3f} m -> {mass * 9.81 * d.mean():.0f} N m to hold")
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"command": f"python benchmarks/com_support.py {clip} --foot {foot} --frames {start}:{stop}",
                       "mass_kg": round(mass, 2), "frames": rows}, f, indent=1)


if __name__ == "__main__":
    main()
