"""Could a tracker that sees a window of the reference undo degraded legs, where one that sees
one frame ahead could not (`benchmarks/results/degraded_legs_tracker.json`)?

A probe, not a controller: the shipped mocap tracker, as a privileged teacher, follows the
true clip while the environment shows a copy with degraded legs (``env.reference_legs``: swing
x U(0.4, 1.0), 0-6 frames late), exactly as ``kinpoly uhc distill`` labels states. At every
visited state we record the student's observation (302, degraded reference, one frame ahead),
the teacher's label in the student's action units, and a window of the shown reference around
the current frame (leg hinges and root position, frames t-10 .. t+10 every 2 frames, in the
body's heading frame). Two MLPs of the same size are fitted to the labels, from the
observation alone and from the observation plus the window, on 80% of the clips, and scored
on the other 20% (and, to see where the information is, from the observation plus the legs'
or the root's part of the window). If the window lowers the held-out error of the leg labels
well below the observation's, it carries what the one-frame tracker lacks.

    python benchmarks/tracker_window_probe.py --steps 2000 --json benchmarks/results/tracker_window_probe.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from kinpoly import rotations as rot
from kinpoly.config import load_config
from kinpoly.motion.augment import LEG_HINGES
from kinpoly.simulation.distill import DistillWorker, teacher_label
from kinpoly.simulation.evaluate import controller_config
from kinpoly.simulation.ppo import UHCConfig, train_clip_names
from report import command_line, write_json

OFFSETS = np.arange(-10, 11, 2)
LEG_LABELS = [i - 7 for i in LEG_HINGES]  # a hinge's label sits at its qpos index - 7


def window_features(sim) -> np.ndarray:
    """The shown reference's legs (relative to the next frame's) and root (relative to the body,
    heading frame) at frames t + OFFSETS, with a flag for frames inside the reference."""
    ref, t = sim.ref, sim.t
    frames = t + OFFSETS
    inside = (frames >= 0) & (frames < ref.num_frames)
    idx = np.clip(frames, 0, ref.num_frames - 1)
    tn = min(t + 1, ref.num_frames - 1)
    legs = ref.qpos[idx][:, LEG_HINGES] - ref.qpos[tn, LEG_HINGES]
    yaw = rot.heading_angle(rot.quat_to_matrix(sim.qpos[3:7]))
    root = (ref.qpos[idx, :3] - sim.qpos[:3]) @ rot.yaw_matrix(yaw)  # world -> the body's heading frame
    return np.concatenate([legs.ravel(), root.ravel(), inside.astype(np.float64)]).astype(np.float32)


def collect(args) -> dict:
    overrides = ["env.reference_legs.probability=1.0", f"env.reference_legs.swing_scale=[{args.swing[0]},{args.swing[1]}]",
                 f"env.reference_legs.delay_frames=[{args.delay[0]},{args.delay[1]}]",
                 "env.controller.root_target_offset=0.4", f"env.action_scale={args.action_scale}"]
    cfg = load_config(UHCConfig, "configs/uhc.yaml", overrides)
    names = train_clip_names(args.motions, "configs/splits/uhc_and_ego_test.txt")
    teacher_cfg = controller_config(checkpoint=args.teacher).env
    worker = DistillWorker(args.motions, names, cfg.env, args.envs, [256, 256], -2.3, 0, args.teacher, teacher_cfg)
    rng = np.random.default_rng(args.seed)
    std = float(np.exp(-2.3))
    obs = np.stack([e.reset(seed=int(rng.integers(2**31)))[0] for e in worker.envs])
    rows = {"obs": [], "window": [], "label": [], "clip": []}
    for _ in range(args.steps):
        obs_t, base_t, base_s = (np.stack(x) for x in zip(*(worker._teacher_view(e) for e in worker.envs)))
        labels = teacher_label(worker.teacher.act(obs_t), base_t, base_s, teacher_cfg, cfg.env)
        rows["obs"].append(obs.copy())
        rows["window"].append(np.stack([window_features(e.sim) for e in worker.envs]))
        rows["label"].append(labels)
        rows["clip"].append([e.ref_index for e in worker.envs])
        action = labels + std * rng.standard_normal(labels.shape).astype(np.float32)
        for i, env in enumerate(worker.envs):
            o, _, term, trunc, _ = env.step(action[i])
            obs[i] = env.reset(seed=int(rng.integers(2**31)))[0] if (term or trunc) else o
    return {k: np.concatenate(v) for k, v in rows.items()}


def fit(x_train, y_train, x_test, y_test, seed: int, epochs: int) -> dict:
    """Held-out squared error (summed over the labels, and over the leg labels) of an MLP."""
    torch.manual_seed(seed)
    mean, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt, yt = torch.tensor((x_train - mean) / sd), torch.tensor(y_train)
    xv, yv = torch.tensor((x_test - mean) / sd), torch.tensor(y_test)
    net = torch.nn.Sequential(torch.nn.Linear(xt.shape[1], 256), torch.nn.SiLU(), torch.nn.Linear(256, 256),
                              torch.nn.SiLU(), torch.nn.Linear(256, yt.shape[1]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 512):
            b = perm[i:i + 512]
            loss = ((net(xt[b]) - yt[b]) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        err = (net(xv) - yv) ** 2
    return {"all": float(err.sum(-1).mean()), "legs": float(err[:, LEG_LABELS].sum(-1).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--motions", default="data/motions_scenes")
    ap.add_argument("--teacher", default="checkpoints/uhc_mocap_global/policy.pt")
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000, help="steps per environment")
    ap.add_argument("--swing", type=float, nargs=2, default=(0.4, 1.0))
    ap.add_argument("--delay", type=int, nargs=2, default=(0, 6))
    ap.add_argument("--action-scale", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    data = collect(args)
    clips = np.unique(data["clip"])
    test_clips = np.random.default_rng(args.seed).permutation(clips)[: max(1, len(clips) // 5)]
    test = np.isin(data["clip"], test_clips)
    y = data["label"]
    n_legs = len(OFFSETS) * len(LEG_HINGES)
    w = data["window"]
    inputs = {"observation": data["obs"],
              "observation + window": np.concatenate([data["obs"], w], axis=1),
              "observation + window of the legs": np.concatenate([data["obs"], w[:, :n_legs]], axis=1),
              "observation + window of the root": np.concatenate([data["obs"], w[:, n_legs:]], axis=1)}
    result = {"command": command_line(__file__, argv),
              "samples": int(len(y)), "test_samples": int(test.sum()), "test_clips": len(test_clips),
              "label_variance": {"all": float(y[test].var(0).sum()), "legs": float(y[test][:, LEG_LABELS].var(0).sum())}}
    for name, x in inputs.items():
        result[name] = fit(x[~test], y[~test], x[test], y[test], args.seed, args.epochs)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(args.json, result, echo=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
