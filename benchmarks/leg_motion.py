"""How the legs move in the dynamics-regulated loop: the proposals' and the simulated body's
knee flexion and toe swing against the truth, on the test walks and runs.

Per take (the loop from the true first pose, true restarts, as ``loop_diagnosis.py``): the
standard deviation of each knee's flexion angle (its y hinge) and the toe swing height
(90th minus 10th percentile of each toe's height), for the ground truth, the proposals and
the simulation; and the ratios to the truth.

    .venv/bin/python benchmarks/leg_motion.py --controller checkpoints/uhc/policy.pt \\
        --out benchmarks/results/leg_motion

Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from kinpoly.egocentric.take import EgoDataset
from kinpoly.humanoid.kinematics import forward_kinematics
from kinpoly.humanoid.skeleton import BODY_INDEX, hinge_index
from kinpoly.motion.clip import atomic_write_text
from kinpoly.policy.data import take_tensors
from kinpoly.policy.estimate import Estimator
from kinpoly.policy.regulated import take_objects
from report import command_line, write_json

KNEE_FLEXION = [hinge_index(f"{s}_Knee", "y") for s in "LR"]
TOES = [BODY_INDEX[f"{s}_Toe"] for s in "LR"]


def leg_stats(qpos: np.ndarray, body) -> dict:
    z = forward_kinematics(qpos, body).positions[:, TOES, 2]
    return {"knee_flexion_std": float(np.std(qpos[:, KNEE_FLEXION], axis=0).mean()),
            "toe_swing_m": float((np.percentile(z, 90, axis=0) - np.percentile(z, 10, axis=0)).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--split", default="test")
    ap.add_argument("--policy", default=None, help="kinematic policy (default: the shipped one)")
    ap.add_argument("--controller", default="checkpoints/uhc/policy.pt", help="UHC checkpoint ('' = training-free)")
    ap.add_argument("--match", default="walk,run,dash", help="takes whose name contains one of these")
    ap.add_argument("--out", default="benchmarks/results/leg_motion")
    args = ap.parse_args(argv)
    ds = EgoDataset(args.data, split=args.split)
    keys = args.match.split(",")
    names = [n for n in ds.names if any(k in n for k in keys)]
    if not names:
        raise SystemExit(f"{args.data}: no {args.split} take matches {args.match!r}")
    est = Estimator(checkpoint=args.policy, controller=args.controller)
    rows = []
    for n in names:
        take = ds[n]
        if take.qpos is None:
            continue
        ep = est.loop.run(take_tensors(take, use_features=est.policy.cfg.feature_dim > 0),
                          take_objects(take.meta, take.object_world), from_truth=True)
        row = {"take": n, "frames": take.num_frames, "falls": len(ep.falls)}
        for label, q in (("truth", take.qpos), ("proposals", ep.kin_qpos), ("simulated", ep.sim_qpos)):
            row[label] = leg_stats(np.asarray(q, dtype=np.float64), take.body)
        rows.append(row)
        print(json.dumps(row), flush=True)

    def ratio(label, key):
        return float(np.mean([r[label][key] / max(r["truth"][key], 1e-9) for r in rows]))

    cmd = command_line(__file__, argv)
    lines = [f"# Leg motion in the regulated loop ({len(rows)} {args.split} takes matching {args.match!r})", "",
             f"`{cmd}`", "", f"Kinematic policy: {args.policy or 'the shipped one'}; controller: "
             f"{args.controller or 'training-free'}; from the true first pose, true restarts.", "",
             "| take | falls | knee flexion std (rad): truth / proposals / simulated | toe swing (m): truth / proposals / simulated |",
             "|---|---|---|---|"]
    for r in rows:
        k = " / ".join(f"{r[x]['knee_flexion_std']:.2f}" for x in ("truth", "proposals", "simulated"))
        t = " / ".join(f"{r[x]['toe_swing_m']:.3f}" for x in ("truth", "proposals", "simulated"))
        lines.append(f"| {r['take']} | {r['falls']} | {k} | {t} |")
    summary = {f"{x}_{key}_ratio": ratio(x, key) for x in ("proposals", "simulated")
               for key in ("knee_flexion_std", "toe_swing_m")}
    lines += ["", "Mean ratio to the truth: " + ", ".join(f"{k} {v:.2f}" for k, v in summary.items())]
    write_json(args.out + ".json", {"command": cmd, "rows": rows, "summary": summary})
    atomic_write_text(args.out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
