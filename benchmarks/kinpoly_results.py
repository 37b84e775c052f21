"""The results table of the egocentric pose estimator (issue #8), on the held-out test takes.

Rows: (a) dynamics-regulated kinematic policy in physics, (b) supervised kinematic policy alone
(no physics), (c) supervised policy tracked by the controller (no dynamics-regulated training),
(d) head-trajectory-only nearest-neighbour baseline, (e) ground truth scored by the same code,
(f, not among the default rows) the dynamics-regulated policy's own motion without physics, then
tracked by the mocap tracker with its feed-forward (``kinpoly estimate --no-feedback``).
Every row is scored by ``kinpoly.evaluation`` (the same code as ``kinpoly eval``).

    .venv/bin/python benchmarks/kinpoly_results.py --data data/ego \\
        --supervised runs/kinematic/checkpoint.pt --dynamics runs/dynamics/checkpoint.pt \\
        --out outputs/results

Writes ``OUT/<row>/`` (the estimate folders), ``benchmarks/results/kinpoly_results.json`` and
``benchmarks/results/kinpoly_results.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from kinpoly.egocentric.take import EgoDataset
from kinpoly.evaluation.commands import _json_safe, evaluate_folders
from kinpoly.motion.clip import ClipFolder, atomic_write_text
from kinpoly.policy.baseline import HeadOnlyBaseline
from kinpoly.policy.estimate import Estimator, estimate_takes, ground_truth_clip

ROOT = Path(__file__).resolve().parents[1]
KEYS = [("mpjpe_mm", "MPJPE (mm)", ".1f"), ("mpjpe_global_mm", "global MPJPE (mm)", ".1f"),
        ("head_trans_err_m", "head err (m)", ".3f"), ("head_rot_err", "head rot err", ".3f"),
        ("root_trans_err_m", "root err (m)", ".3f"), ("accel_error", "accel (mm/fr²)", ".1f"),
        ("velocity_error", "vel (mm/fr)", ".1f"), ("success_rate", "no fall", ".2f"),
        ("interaction", "interaction", ".2f"), ("penetration_mm", "penetration (mm)", ".2f"),
        ("skate_mm", "skate (mm/fr)", ".2f")]


def per_action(summary: dict) -> dict[str, dict]:
    """Means per action (and "all") of the per-clip metrics of an evaluation summary."""
    clips = summary["clips"]
    groups: dict[str, list[dict]] = {"all": list(clips.values())}
    for c in clips.values():
        groups.setdefault(c.get("action") or "none", []).append(c)
    out = {}
    for name, rows in groups.items():
        d = {"takes": len(rows)}
        for k, _, _ in KEYS:
            if k == "success_rate":
                vals = [float(r["success"]) for r in rows if r.get("success") is not None]
            elif k == "interaction":
                vals = [float(r["interaction_success"]) for r in rows if r.get("interaction_success") is not None]
            else:
                vals = [r[k] for r in rows if r.get(k) is not None and np.isfinite(r[k])]
            d[k] = float(np.mean(vals)) if vals else None
        out[name] = d
    return out


def baseline_row(data: str, out: Path) -> tuple[dict, float]:
    base = HeadOnlyBaseline().fit(list(EgoDataset(data, split="train")))
    preds, gts = ClipFolder(out / "clips", create=True), ClipFolder(out / "ground_truth", create=True)
    t0, frames = time.perf_counter(), 0
    for take in EgoDataset(data, split="test"):
        clip = base.predict(take)
        clip.action = take.action
        gt = ground_truth_clip(take)
        clip.objects = gt.objects
        preds.add(clip)
        gts.add(gt)
        frames += clip.num_frames
    return evaluate_folders(out / "clips", out / "ground_truth"), frames / (time.perf_counter() - t0)


def table(rows: dict[str, dict], group: str) -> str:
    head = "| row | " + " | ".join(t for _, t, _ in KEYS) + " |"
    lines = [head, "|" + "---|" * (len(KEYS) + 1)]
    for label, res in rows.items():
        d = res["per_action"].get(group)
        if d is None:
            continue
        cells = ["-" if d.get(k) is None else format(d[k], f) for k, _, f in KEYS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--supervised", default="runs/kinematic/checkpoint.pt")
    ap.add_argument("--dynamics", default="runs/dynamics/checkpoint.pt")
    ap.add_argument("--controller", default=str(ROOT / "checkpoints" / "uhc" / "policy.pt"))
    ap.add_argument("--tracker", default=None,
                    help="row (f)'s controller (default: checkpoints/uhc_mocap_global, full feed-forward)")
    ap.add_argument("--smooth", type=float, default=None,
                    help="row (f)'s smoothing of the policy's motion, Gaussian sigma in frames (default: the estimator's)")
    ap.add_argument("--controller-override", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting of the controller (UHCConfig), e.g. env.controller.root_target_offset=0")
    ap.add_argument("--feedforward", default=None, choices=["off", "static", "full"],
                    help="the controller's feed-forward in rows (a) and (c) (default: the estimator's, off)")
    ap.add_argument("--anchor", action="store_true",
                    help="rows (a) and (c): the feed-forward's previous frame is the simulated pose "
                         "(RegulatedLoop.anchor_on_simulation), not the previous proposal")
    ap.add_argument("--out", default="outputs/results")
    ap.add_argument("--leg-refiner", default=None, help="leg-refiner checkpoint for the physics rows (a, c)")
    ap.add_argument("--rows", default="abcde", help="which rows, e.g. 'ac' or 'a,c' (and f)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "kinpoly_results"))
    args = ap.parse_args()
    args.rows = args.rows.replace(",", "")
    if set(args.rows) - set("abcdef"):
        ap.error(f"--rows {args.rows!r}: rows are a, b, c, d, e and f")
    out = Path(args.out)
    ds = EgoDataset(args.data, split="test")
    takes = [(n, lambda n=n: ds[n]) for n in ds.names]
    rows: dict[str, dict] = {}
    specs = {"a": ("(a) dynamics-regulated (physics)", args.dynamics, True),
             "b": ("(b) supervised, no physics", args.supervised, False),
             "c": ("(c) supervised + controller", args.supervised, True),
             "f": ("(f) dynamics-regulated policy's own motion, then tracked (no feedback)", args.dynamics, True)}
    for key in args.rows:
        t0 = time.perf_counter()
        if key in specs:
            label, ck, physics = specs[key]
            if key == "f":
                est = Estimator(ck, args.tracker, feedback=False, controller_overrides=args.controller_override,
                                smoothing=args.smooth)
            else:
                est = Estimator(ck, args.controller, physics=physics, controller_overrides=args.controller_override,
                                leg_refiner=args.leg_refiner if physics else None, feedforward=args.feedforward,
                                anchor=args.anchor and physics)
            report = estimate_takes(takes, est, out / key, videos=0, progress=True)
            summary, fps = report["evaluation"], report["frames_per_second"]
            failures = report["failures"]
        elif key == "d":
            label = "(d) head-only nearest neighbour"
            summary, fps = baseline_row(args.data, out / "d")
            failures = []
        else:
            label = "(e) ground truth"
            # any row's estimate folder holds the same ground truth (--rows e needs one of them)
            found = [out / r / "ground_truth" for r in "dbacf" if (out / r / "ground_truth").is_dir()]
            if not found:
                raise SystemExit("row e scores the ground truth another row wrote: run it with --rows a,e (or b, c, d)")
            gt_dir = found[0]
            summary, fps, failures = evaluate_folders(gt_dir, gt_dir), None, []
        rows[label] = {"per_action": per_action(summary), "frames_per_second": fps, "failures": failures,
                       "seconds": round(time.perf_counter() - t0, 1)}
        print(label, json.dumps(rows[label]["per_action"]["all"]))
    groups = sorted({g for r in rows.values() for g in r["per_action"]}, key=lambda g: (g != "all", g))
    md = [f"# Egocentric pose estimation on the held-out test takes ({len(ds)} takes of `{args.data}`)\n",
          "Command: `.venv/bin/python benchmarks/kinpoly_results.py " + " ".join(sys.argv[1:]) + "`\n"]
    for g in groups:
        n = max(r["per_action"].get(g, {}).get("takes", 0) for r in rows.values())
        md += [f"\n## {g} ({n} takes)\n", table(rows, g)]
    md.append("\n\nSpeed (frames/s, one core): " + ", ".join(
        f"{k.split(')')[0]}) {v['frames_per_second']:.0f}" for k, v in rows.items() if v["frames_per_second"]))
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.results + ".json", json.dumps(_json_safe(rows), indent=1))
    atomic_write_text(args.results + ".md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
