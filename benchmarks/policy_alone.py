"""Kinematic policies alone (no physics, row (b) of the results table) on one split of a take
folder, per take and overall: root-relative and global MPJPE, scored by ``kinpoly.evaluation``.

    .venv/bin/python benchmarks/policy_alone.py runs/kin_a/checkpoint.pt runs/kin_b/checkpoint.pt \\
        --data data/ego --split test --out benchmarks/results/policy_alone

Writes ``OUT.json`` and ``OUT.md`` (one column per checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from kinpoly.egocentric.take import EgoDataset
from kinpoly.evaluation.commands import _json_safe
from kinpoly.motion.clip import atomic_write_text
from kinpoly.policy.estimate import Estimator, estimate_takes
from report import command_line, write_json


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", default="benchmarks/results/policy_alone")
    args = ap.parse_args(argv)
    ds = EgoDataset(args.data, split=args.split)
    if not len(ds):
        raise SystemExit(f"{args.data}: split {args.split!r} has no takes")
    takes = [(n, lambda n=n: ds[n]) for n in ds.names]
    clips = {}
    for ck in args.checkpoints:
        with tempfile.TemporaryDirectory() as tmp:
            rep = estimate_takes(takes, Estimator(ck, physics=False), tmp, videos=0, progress=False)
        clips[ck] = rep["evaluation"]["clips"]
    overall = {ck: {k: float(np.mean([c[k] for c in cl.values()])) for k in ("mpjpe_mm", "mpjpe_global_mm")}
               for ck, cl in clips.items()}
    cmd = command_line(__file__, argv)
    lines = [f"# Kinematic policy alone, {len(ds)} `{args.split}` takes of `{args.data}`", "", f"`{cmd}`", "",
             "MPJPE (mm) per take, root-relative; last rows: means.", "",
             "| take | frames | " + " | ".join(f"`{ck}`" for ck in clips) + " |",
             "|---|---|" + "---|" * len(clips)]
    for n in ds.names:
        lines.append(f"| {n} | {ds[n].num_frames} | " + " | ".join(f"{clips[ck][n]['mpjpe_mm']:.1f}" for ck in clips) + " |")
    for k, label in (("mpjpe_mm", "mean MPJPE"), ("mpjpe_global_mm", "mean global MPJPE")):
        lines.append(f"| **{label}** | | " + " | ".join(f"**{overall[ck][k]:.1f}**" for ck in clips) + " |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), _json_safe({"command": cmd, "overall": overall, "clips": clips}))
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines[-2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
