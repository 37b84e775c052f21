"""Where the dynamics-regulated loop falls: the kinematic policy's proposals or the controller.

On the held-out test takes, each controller runs the loop twice from the true first pose (and
restarts on the true pose after a fall): once on the kinematic policy's proposals (what
`kinpoly estimate` does) and once on the *true* next poses as proposals
(``RegulatedLoop.run(truth_proposals=True)``), i.e. with a perfect kinematic policy. Falls
left with true proposals are the controller's; the rest are the policy's. ``--proposals
open-loop`` adds a third run: the policy's own motion without physics (from the true first
pose) as fixed references, i.e. how trackable the policy's motion is without the feedback.
``--proposals parts`` runs the loop on proposals that are partly true (the true root, legs,
hips and knees, knees, or upper body; the rest the policy's), to see which part of the
proposals makes the body fall.

    .venv/bin/python benchmarks/loop_diagnosis.py --controller checkpoints/uhc/policy.pt \\
        --controller runs/uhc_noff/best.pt --out benchmarks/results/loop_diagnosis

Writes ``OUT.json`` and ``OUT.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from kinpoly.egocentric.take import EgoDataset
from kinpoly.humanoid.skeleton import QPOS_DIM, body_hinges
from kinpoly.motion.clip import atomic_write_text
from kinpoly.policy.data import take_tensors
from kinpoly.policy.estimate import Estimator, estimate_kinematic
from kinpoly.policy.regulated import take_objects
from report import command_line, write_json

ROOT = Path(__file__).resolve().parents[1]


PROPOSALS = {"policy": "kinematic policy", "truth": "ground truth", "open-loop": "policy's motion, open loop",
             "true-root": "true root, policy's joints", "true-legs": "true legs, policy's root and upper body",
             "true-hips-knees": "true hips and knees, the rest the policy's",
             "true-knees": "true knees, the rest the policy's",
             "true-upper": "true upper body, policy's root and legs"}
PARTS = ("true-root", "true-legs", "true-hips-knees", "true-knees", "true-upper")
_LEG_BODIES = {"true-legs": ("Hip", "Knee", "Ankle", "Toe"), "true-hips-knees": ("Hip", "Knee"), "true-knees": ("Knee",)}


def truth_mask(proposals: str):
    """``RegulatedLoop.run``'s ``truth_proposals`` for a kind of proposals. The open-loop run
    replaces the take's truth by the policy's open-loop motion, so its targets are "true"."""
    if proposals == "policy":
        return False
    if proposals in ("truth", "open-loop"):
        return True
    mask = np.zeros(QPOS_DIM, dtype=bool)
    if proposals == "true-root":
        mask[:7] = True
        return mask
    for b in _LEG_BODIES.get(proposals, _LEG_BODIES["true-legs"]):
        for side in "LR":
            mask[body_hinges(f"{side}_{b}")] = True
    if proposals == "true-upper":
        mask[7:] = ~mask[7:]
    return mask


def run(controller: str, policy: str | None, takes: list, proposals: str, feedforward: str = "off",
        overrides=(), leg_refiner: str | None = None, anchor: bool = False) -> dict:
    est = Estimator(checkpoint=policy, controller=controller, feedforward=feedforward, controller_overrides=overrides,
                    leg_refiner=leg_refiner, anchor=anchor)
    frames, falls, clean, reasons, t0 = 0, 0, 0, Counter(), time.perf_counter()
    for take in takes:
        tt = take_tensors(take, use_features=est.policy.cfg.feature_dim > 0)
        if proposals == "open-loop":  # the policy's motion takes the truth's place as the reference
            tt = dataclasses.replace(tt, qpos=torch.as_tensor(
                estimate_kinematic(est.policy, est.context, tt, start_from_truth=True).qpos, dtype=torch.float32))
        ep = est.loop.run(tt, take_objects(take.meta, take.object_world), from_truth=True,
                          truth_proposals=truth_mask(proposals))
        frames += take.num_frames
        falls += len(ep.falls)
        clean += not ep.falls
        reasons.update(r for _, r in ep.falls)
    return {"controller": controller or "training-free", "controller_overrides": list(overrides),
            "proposals": PROPOSALS[proposals], "feedforward": feedforward, "leg_refiner": leg_refiner, "anchor": anchor,
            "takes": len(takes), "frames": frames, "falls_per_100_frames": 100.0 * falls / max(frames, 1),
            "no_fall_rate": clean / max(len(takes), 1), "reasons": dict(reasons),
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--split", default="test")
    ap.add_argument("--policy", default=None, help="kinematic policy (default: the shipped one)")
    ap.add_argument("--controller", action="append", required=True, help="UHC checkpoint ('' = training-free); repeatable")
    ap.add_argument("--proposals", choices=("both", "all", "parts", *PROPOSALS), default="both",
                    help="both: policy and truth; all: also open-loop; parts: partly true proposals")
    ap.add_argument("--feedforward", choices=("off", "full", "static"), default="off",
                    help="the controller's inverse-dynamics feed-forward in the loop")
    ap.add_argument("--controller-override", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of every controller (UHCConfig), e.g. env.controller.root_target_offset=0")
    ap.add_argument("--leg-refiner", default=None, help="leg-refiner checkpoint (kinpoly train leg-refiner)")
    ap.add_argument("--anchor", action="store_true",
                    help="rewrite the reference frame the body is at to the simulated pose before each proposal "
                         "(RegulatedLoop.anchor_on_simulation)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/loop_diagnosis"))
    args = ap.parse_args(argv)
    takes = [t for t in EgoDataset(args.data, split=args.split) if t.qpos is not None and t.num_frames >= 3]
    rows = []
    for c in args.controller:
        kinds = {"both": ("policy", "truth"), "all": ("policy", "truth", "open-loop"),
                 "parts": PARTS}.get(args.proposals, (args.proposals,))
        for kind in kinds:
            rows.append(run(c, args.policy, takes, kind, args.feedforward, args.controller_override, args.leg_refiner,
                            args.anchor))
            print(json.dumps(rows[-1]), flush=True)
    cmd = command_line(__file__, argv)
    lines = [f"# Where the regulated loop falls ({len(takes)} {args.split} takes)", "", f"`{cmd}`", "",
             f"Kinematic policy: {args.policy or 'the shipped one'}; every take from its true first pose; "
             f"feed-forward {args.feedforward}; leg refiner: {args.leg_refiner or 'none'}.", "",
             "| controller | proposals | falls / 100 frames | takes without a fall | reasons |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['controller']} | {r['proposals']} | {r['falls_per_100_frames']:.2f} | "
                     f"{r['no_fall_rate']:.0%} | {', '.join(f'{k} {v}' for k, v in r['reasons'].items()) or '-'} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), {"command": cmd, "rows": rows})
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
