"""How far the simulated root trails the reference: per clip, the root position error, its
horizontal part along the direction of travel and the time shift (in frames) that best aligns
the simulated root with the reference's.

    python benchmarks/root_lag.py --checkpoint checkpoints/uhc_mocap_global/policy.pt \
        [--motions data/motions_scenes] [--set env.controller.root_target_offset=0] [CLIP ...]
"""
from __future__ import annotations

import click
import numpy as np

DEFAULT_CLIPS = ("dataset-1_walk_active_001", "dataset-1_walk-right_angry_001", "dataset-1_run_tired_001",
                 "dataset-1_walk_feminine_001", "02_06", "01_01")


def root_lag(sim_root: np.ndarray, ref_root: np.ndarray, fps: float) -> dict:
    """Lag statistics of a simulated root path (T, 3) against the reference's (>= T, 3)."""
    s, r = sim_root, ref_root[:len(sim_root)]
    v = np.gradient(r[:, :2], axis=0)
    speed = np.linalg.norm(v, axis=1)
    moving = speed > 0.01
    along = ((s[:, :2] - r[:, :2]) * v / np.maximum(speed, 1e-6)[:, None]).sum(1)
    t = np.arange(len(r), dtype=float)
    inner = slice(5, len(r) - 5)

    def shifted_error(d: float) -> float:
        shifted = np.stack([np.interp(t[inner] + d, t, r[:, k]) for k in range(2)], 1)
        return float(np.linalg.norm(s[inner, :2] - shifted, axis=1).mean())

    shifts = np.arange(-3.0, 3.001, 0.1)
    return {"root_error_mm": 1000 * float(np.linalg.norm(s - r, axis=1).mean()),
            "vertical_mm": 1000 * float(np.mean(s[:, 2] - r[:, 2])),
            "along_travel_mm": 1000 * float(along[moving].mean()) if moving.any() else 0.0,
            "speed_m_s": float(speed[moving].mean() * fps) if moving.any() else 0.0,
            "best_shift_frames": float(shifts[np.argmin([shifted_error(d) for d in shifts])])}


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--motions", default="data/motions_scenes", type=click.Path(exists=True, file_okay=False))
@click.option("--set", "overrides", multiple=True, help="Controller setting, e.g. env.controller.root_target_offset=0.")
@click.argument("clips", nargs=-1)
def main(checkpoint, motions, overrides, clips):
    from kinpoly.motion.clip import ClipFolder
    from kinpoly.simulation.evaluate import load_controller, track
    from kinpoly.simulation.reference import prepare_reference

    cfg, policy = load_controller(checkpoint, None, overrides)
    folder = ClipFolder(motions)
    print(f"root target offset {cfg.env.controller.root_target_offset}")
    for name in clips or DEFAULT_CLIPS:
        ref = prepare_reference(folder.load(name))
        tr = track(ref, cfg.env, policy)
        s = root_lag(tr.clip.qpos[:, :3], ref.clip.qpos[:, :3], ref.clip.fps)
        print(f"{name:32s} root {s['root_error_mm']:5.1f} mm, vertical {s['vertical_mm']:+6.1f}, "
              f"along travel {s['along_travel_mm']:+6.1f} at {s['speed_m_s']:.2f} m/s, "
              f"best shift {s['best_shift_frames']:+.1f} frames{'' if tr.reason is None else ' (' + tr.reason + ')'}")


if __name__ == "__main__":
    main()
