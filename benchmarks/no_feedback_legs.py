"""What the tracker needs from the legs: row (f) (``kinpoly estimate --no-feedback``: the
kinematic policy's own motion, smoothed, tracked by the mocap tracker with its feed-forward) on
the test takes, with the legs (hips, knees, ankles, toes: 24 hinges) and optionally the root of
the tracked motion replaced before tracking.

Legs (``--legs``):

- ``policy``: unchanged (row (f) itself);
- ``truth``: the ground truth's, optionally delayed by ``--shift`` frames (how exact must
  legs be?);
- ``head``: regressed from the observed head trajectory over frames ``t + lo .. t + hi``
  (``--window``) by a small MLP fitted here to the training takes' truth;
- ``pelvis``: regressed the same way from the tracked motion's own pelvis trajectory (legs
  made to fit the root they are tracked under).

Root (``--root``): ``policy`` or ``truth`` (position and orientation). ``--scale S``: the
legs' swing about their centred moving average over ``--scale-window`` frames is scaled by S
(below 1 shrinks the truth's swing as a regression to the mean does; above 1 amplifies a
shrunken one). ``--first-frames N``: the edits apply to each take's first N frames only (the
rest is the policy's motion), e.g. to see what the policy's cold start costs.

    .venv/bin/python benchmarks/no_feedback_legs.py --legs truth --out /tmp/legs_truth \\
        --results benchmarks/results/no_feedback_legs/truth

Writes RESULTS.json / RESULTS.md: the evaluation's summary over all takes, the falls (loop
restarts) per take and how the tracked knees agree with the truth's; OUT holds the estimates
(``kinpoly estimate``'s layout). ``--summarise DIR`` tables every RESULTS.json in DIR into
DIR/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from kinpoly import rotations as rot
from kinpoly.egocentric.take import EgoDataset
from kinpoly.humanoid.skeleton import hinge_index
from kinpoly.motion.clip import atomic_write_text
from kinpoly.policy.estimate import Estimator, estimate_takes
from kinpoly.motion.augment import LEG_HINGES as LEGS, delayed, swing_scaled  # legs: hips, knees, ankles, toes (24)
from report import command_line, write_json

KNEES = [hinge_index(f"{s}_Knee", "y") for s in "LR"]
KEYS = ("mpjpe_mm", "mpjpe_global_mm", "head_trans_err_m", "accel_error", "success_rate", "interaction",
        "penetration_mm", "skate_mm")


def trajectory_window(pos: np.ndarray, quat: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(T, F) per frame t: positions at t+lo..t+hi relative to t and orientations (first two
    matrix columns), both in t's heading frame, and the height at t (edges held)."""
    T = len(pos)
    R = rot.quat_to_matrix(np.asarray(quat, np.float64))
    HT = np.swapaxes(rot.yaw_matrix(rot.heading_angle(R)), -1, -2)  # (T, 3, 3)
    idx = np.clip(np.arange(T)[:, None] + np.arange(lo, hi + 1)[None], 0, T - 1)  # (T, W)
    rel = np.einsum("tij,twj->twi", HT, pos[idx] - pos[:, None])
    Rw = np.einsum("tij,twjk->twik", HT, R[idx])[..., :2]
    return np.concatenate([rel.reshape(T, -1), Rw.reshape(T, -1), pos[:, 2:3]], axis=1)


class LegRegressor:
    """A small MLP from a trajectory window to the 24 leg hinges, fitted to the truth."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0, steps: int = 4000):
        torch.manual_seed(seed)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        X = torch.tensor((x - self.mean) / self.std, dtype=torch.float32)
        Y = torch.tensor(y, dtype=torch.float32)
        self.net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 256), torch.nn.SiLU(),
                                       torch.nn.Linear(256, 256), torch.nn.SiLU(), torch.nn.Linear(256, Y.shape[1]))
        opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        g = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            i = torch.randint(0, len(X), (512,), generator=g)
            loss = ((self.net(X[i]) - Y[i]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return self.net(torch.tensor((x - self.mean) / self.std, dtype=torch.float32))


def knee_agreement(pred: np.ndarray, truth: np.ndarray) -> dict:
    """Knee flexion of the tracked motion against the truth's, both knees averaged: swing
    (standard deviation) ratio and correlation; None where the truth's knees barely move
    (swing under 0.1 rad)."""
    if truth.std(0).mean() < 0.1:
        return {"swing_ratio": None, "correlation": None}
    return {"swing_ratio": float((pred.std(0) / truth.std(0)).mean()),
            "correlation": float(np.mean([np.corrcoef(pred[:, j], truth[:, j])[0, 1] for j in range(2)]))}


def summarise(folder: Path) -> str:
    """A markdown table of the runs whose results are in ``folder``, most takes clean first."""
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    runs.sort(key=lambda r: (-r["takes_without_falls"], r["falls"]))
    f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    lines = ["# What the tracker needs from the legs (row (f)'s setting, test takes)", "",
             "Written by `python benchmarks/no_feedback_legs.py --summarise " + str(folder) + "`; each row's "
             "command is in its JSON file. Knee swing and correlation: the knee flexion of the motion given to the "
             "tracker against the truth's, on the takes whose knees swing. Tracker: the controller (shipped: "
             "checkpoints/uhc_mocap_global).", "",
             "| policy | tracker | legs | root | delay (frames) | swing x | frames edited | takes without a fall | falls "
             "| MPJPE (mm) | global MPJPE (mm) | skate (mm/frame) | knee swing / truth | knee correlation |", "|" + "---|" * 14]
    for r in runs:
        o, k = r["overall"], r["knees"]
        policy = r.get("policy", "shipped")
        policy = policy if policy == "shipped" else Path(policy).parent.name or policy
        tracker = r.get("tracker", "shipped")  # runs recorded before the option: the shipped mocap tracker
        tracker = tracker if tracker == "shipped" else Path(tracker).parent.name or tracker
        edited = f"first {r['first_frames']}" if r.get("first_frames") else "all"
        lines.append(f"| {policy} | {tracker} | {r['legs']} | {r['root']} | {r['shift']} | {r['scale']:g} | {edited} | "
                     f"{r['takes_without_falls']} of {r['takes']} | {r['falls']} | {f(o['mpjpe_mm'], '.1f')} | "
                     f"{f(o['mpjpe_global_mm'], '.1f')} | "
                     f"{f(o['skate_mm'], '.2f')} | {f(k['swing_ratio'], '.2f')} | {f(k['correlation'], '.2f')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--policy", default=None, help="kinematic policy (default: the shipped one)")
    ap.add_argument("--tracker", default=None, help="controller (default: row (f)'s, checkpoints/uhc_mocap_global)")
    ap.add_argument("--legs", choices=("policy", "truth", "head", "pelvis"), default="policy")
    ap.add_argument("--root", choices=("policy", "truth"), default="policy")
    ap.add_argument("--window", type=int, nargs=2, default=(-15, 15), metavar=("LO", "HI"),
                    help="frames of the trajectory window of --legs head|pelvis, relative to t")
    ap.add_argument("--shift", type=int, default=0, help="--legs truth: delay in frames")
    ap.add_argument("--scale", type=float, default=1.0, help="swing amplitude factor of the legs")
    ap.add_argument("--scale-window", type=int, default=31, help="frames of the moving average --scale is about")
    ap.add_argument("--first-frames", type=int, default=0, help="edit only each take's first N frames (0: all)")
    ap.add_argument("--takes", default="", help="comma-separated take names (default: the whole test split)")
    ap.add_argument("--out", default="outputs/no_feedback_legs")
    ap.add_argument("--results", default="benchmarks/results/no_feedback_legs/run")
    ap.add_argument("--summarise", default=None, metavar="DIR", help="table the results in DIR, run nothing")
    args = ap.parse_args(argv)
    if args.summarise:
        atomic_write_text(Path(args.summarise) / "README.md", summarise(Path(args.summarise)))
        return 0
    if args.shift and args.legs != "truth":
        ap.error("--shift delays the true legs: it needs --legs truth")
    lo, hi = args.window

    def features(take, motion: torch.Tensor) -> np.ndarray:
        if args.legs == "head":
            return trajectory_window(take.head_pose[:, :3], take.head_pose[:, 3:7], lo, hi)
        q = motion.double().numpy()
        return trajectory_window(q[:, :3], q[:, 3:7], lo, hi)

    regressor = None
    if args.legs in ("head", "pelvis"):
        train = EgoDataset(args.data, split="train")
        xs, ys = [], []
        for n in train.names:
            t = train[n]
            if t.qpos is not None:
                xs.append(features(t, torch.as_tensor(t.qpos)))
                ys.append(t.qpos[:, LEGS])
        regressor = LegRegressor(np.concatenate(xs), np.concatenate(ys))

    def edit(motion: torch.Tensor, take) -> torch.Tensor:
        whole = edit_all(motion, take)
        if args.first_frames:
            whole[args.first_frames:] = motion[args.first_frames:]
        truth = np.asarray(take.qpos[:, KNEES], np.float64)
        knees[take.name] = knee_agreement(whole[:, KNEES].double().numpy(), truth)
        return whole

    def edit_all(motion: torch.Tensor, take) -> torch.Tensor:
        motion = motion.clone()
        if args.root == "truth":
            motion[:, :7] = torch.as_tensor(take.qpos[:, :7], dtype=motion.dtype)
        if args.legs == "truth":
            legs = delayed(np.asarray(take.qpos[:, LEGS], np.float64), args.shift)
        elif regressor is not None:
            legs = regressor(features(take, motion)).double().numpy()
        else:
            legs = motion[:, LEGS].double().numpy()
        motion[:, LEGS] = torch.as_tensor(swing_scaled(legs, args.scale, args.scale_window), dtype=motion.dtype)
        return motion

    est = Estimator(args.policy, args.tracker, feedback=False)
    est.motion_filter = edit
    falls: dict[str, int] = {}
    knees: dict[str, dict] = {}
    estimate = est.estimate

    def counted(take):
        e = estimate(take)
        falls[e.name] = len(e.falls)
        return e

    est.estimate = counted
    ds = EgoDataset(args.data, split="test")
    names = args.takes.split(",") if args.takes else ds.names
    t0 = time.perf_counter()
    report = estimate_takes([(n, lambda n=n: ds[n]) for n in names], est, args.out, videos=0)
    summary = report["evaluation"]
    inter = [float(c["interaction_success"]) for c in summary["clips"].values()
             if c.get("interaction_success") is not None]
    overall = {k: summary.get(k) for k in KEYS} | {"interaction": float(np.mean(inter)) if inter else None}
    cmd = command_line(__file__, argv)
    result = {"command": cmd, "policy": args.policy or "shipped", "tracker": args.tracker or "shipped", "legs": args.legs, "root": args.root,
              "window": [lo, hi], "shift": args.shift, "first_frames": args.first_frames,
              "scale": args.scale, "scale_window": args.scale_window, "takes": len(falls),
              "takes_without_falls": sum(v == 0 for v in falls.values()),
              "falls": sum(falls.values()), "overall": overall, "falls_per_take": falls,
              "knees": {k: float(np.mean(v)) if (v := [r[k] for r in knees.values() if r[k] is not None]) else None
                        for k in ("swing_ratio", "correlation")},
              "knee_takes": sum(r["swing_ratio"] is not None for r in knees.values()), "knees_per_take": knees,
              "seconds": time.perf_counter() - t0}
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.results + ".json", result)
    f2 = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    lines = [f"# Row (f) with edited legs: legs {args.legs}, root {args.root}, shift {args.shift}, "
             f"swing x{args.scale}", "", f"`{cmd}`", "",
             f"{result['takes_without_falls']} of {result['takes']} takes without a fall, {result['falls']} falls "
             f"in all. Knee flexion against the truth's on the {result['knee_takes']} takes whose knees swing: "
             f"swing ratio {f2(result['knees']['swing_ratio'])}, correlation {f2(result['knees']['correlation'])}.",
             "", "| " + " | ".join(KEYS) + " |", "|" + "---|" * len(KEYS),
             "| " + " | ".join("-" if overall.get(k) is None else f"{overall[k]:.3f}" for k in KEYS) + " |", ""]
    atomic_write_text(args.results + ".md", "\n".join(lines))
    print(json.dumps({k: result[k] for k in ("takes", "takes_without_falls", "falls", "knees", "overall")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
