"""Is the kinematic policy limited by being causal and autoregressive? A probe: an offline,
non-autoregressive regressor (non-causal dilated temporal convolutions, 125-frame receptive
field, i.e. +-2 s of past *and future*) from the observed head trajectory (height, tilt,
velocities), action and first object, optionally the image features, to each frame's body pose
relative to the head (root offset and orientation in the head's heading frame, 69 hinges).
Trained on the train takes, root-relative MPJPE (``kinpoly.evaluation``) on the test takes
every 1000 iterations, per-take means as `benchmarks/policy_alone.py`.

    .venv/bin/python benchmarks/sequence_regressor.py --features --out benchmarks/results/sequence_regressor_features
    .venv/bin/python benchmarks/sequence_regressor.py --out benchmarks/results/sequence_regressor_head_only
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from kinpoly import rotations as rot
from kinpoly.egocentric.take import EgoDataset
from kinpoly.evaluation.metrics import mpjpe
from kinpoly.motion.clip import MotionClip
from kinpoly.policy.baseline import pose_from_relative, relative_pose
from kinpoly.policy.data import _first_object, _interpolate
from kinpoly.policy.torch_kinematics import sixd_to_matrix
from report import command_line, write_json


def inputs(take, features: bool) -> np.ndarray:
    R = rot.quat_to_matrix(take.head_pose[:, 3:7])
    HT = np.swapaxes(rot.yaw_matrix(rot.heading_angle(R)), -1, -2)
    parts = [take.head_pose[:, 2:3], (HT @ R)[..., :2].reshape(len(R), 6), take.head_vels,
             np.tile(take.action_one_hot, (len(R), 1)), _first_object(take.object_poses, len(R))]
    if features:
        parts.append(take.image_features)
    return np.concatenate(parts, 1).astype(np.float32)


def targets(take) -> np.ndarray:
    rel = relative_pose(take.qpos, take.head_pose)
    R6 = rel[:, 3:12].reshape(-1, 3, 3)[..., :2].reshape(-1, 6)
    return np.concatenate([rel[:, :3], R6, rel[:, 12:]], 1).astype(np.float32)


def to_qpos(y: np.ndarray, take) -> np.ndarray:
    """The pose under the take's head from a :func:`targets` row (rotation: the first two
    columns, row by row)."""
    cols = torch.as_tensor(y[:, 3:9], dtype=torch.float64)
    R = sixd_to_matrix(torch.cat([cols[:, 0::2], cols[:, 1::2]], dim=-1)).numpy()
    return pose_from_relative(np.concatenate([y[:, :3], R.reshape(-1, 9), y[:, 9:]], 1), take.head_pose)


class TemporalConvNet(torch.nn.Module):
    def __init__(self, din: int, dout: int, width: int = 128, dilations=(1, 2, 4, 8, 16)):
        super().__init__()
        self.inp = torch.nn.Conv1d(din, width, 1)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(width, width, 5, dilation=d, padding=2 * d,
                                                         padding_mode="replicate") for d in dilations)
        self.mix = torch.nn.ModuleList(torch.nn.Conv1d(width, width, 1) for _ in dilations)
        self.drop = torch.nn.Dropout(0.1)
        self.out = torch.nn.Conv1d(width, dout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, din) -> (B, T, dout)
        act = torch.nn.functional.silu
        h = self.inp(x.transpose(1, 2))
        for conv, mix in zip(self.convs, self.mix):
            h = h + mix(self.drop(act(conv(act(h)))))
        return self.out(act(h)).transpose(1, 2)


def warp(a: torch.Tensor, start: int, n: int, speed: float, vel_cols=None) -> torch.Tensor:
    """``n`` frames of ``a`` from ``start`` played at ``speed`` (linear interpolation); the
    normalised velocity columns ``vel_cols`` scaled by ``speed`` (about their zero)."""
    if speed == 1.0:
        return a[start:start + n]
    out = _interpolate(a, start + np.arange(n) * speed, None)
    if vel_cols is not None:
        zero = torch.tensor(vel_cols[1], dtype=a.dtype)  # the normalised value of a zero velocity
        out[:, vel_cols[0]] = zero + (out[:, vel_cols[0]] - zero) * speed
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/ego")
    ap.add_argument("--features", action="store_true", help="also read the image features")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-warp", type=float, default=0.0,
                    help="augment: each window played at a speed drawn from [1/(1+W), 1+W] "
                         "(resampled, head velocities scaled; not with --features)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.time_warp and args.features:
        ap.error("--time-warp cannot warp image features")
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    train_set, test_set = EgoDataset(args.data, split="train"), EgoDataset(args.data, split="test")
    train, test = [train_set[n] for n in train_set.names], [test_set[n] for n in test_set.names]
    X, Y = [inputs(t, args.features) for t in train], [targets(t) for t in train]
    Xte = [inputs(t, args.features) for t in test]
    xm, xs = np.concatenate(X).mean(0), np.concatenate(X).std(0) + 1e-6
    ym, ys = np.concatenate(Y).mean(0), np.concatenate(Y).std(0) + 1e-6
    Xn = [torch.tensor((x - xm) / xs) for x in X]
    vel = slice(7, 13)  # head velocities in ``inputs``: after height (1) and tilt (6)
    vel_cols = (vel, -xm[vel] / xs[vel])
    Yn = [torch.tensor((y - ym) / ys) for y in Y]
    net = TemporalConvNet(X[0].shape[1], Y[0].shape[1])
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.iterations)
    lengths = np.array([len(x) for x in Xn])
    rng = np.random.default_rng(args.seed)
    L, B = 120, 32

    @torch.no_grad()
    def score(takes, xs_in) -> list[float]:
        net.eval()
        out = []
        for take, x in zip(takes, xs_in):
            y = net(torch.tensor((x - xm) / xs)[None])[0].numpy() * ys + ym
            pred = MotionClip(name=take.name, qpos=to_qpos(y, take), fps=take.fps, body=take.body)
            gt = MotionClip(name=take.name, qpos=take.qpos, fps=take.fps, body=take.body)
            out.append(float(mpjpe(pred.body_states().positions, gt.body_states().positions)))
        net.train()
        return out

    curve, t0 = [], time.time()
    for it in range(1, args.iterations + 1):
        xb, yb = [], []
        for k in rng.choice(len(Xn), B, p=lengths / lengths.sum()):
            T = len(Xn[k])
            speed = np.exp(rng.uniform(-1, 1) * np.log1p(args.time_warp)) if args.time_warp else 1.0
            n = min(L, int((T - 1) / speed) + 1)  # frames after warping
            s = rng.integers(0, int(np.floor(T - 1 - (n - 1) * speed)) + 1)
            x, y = warp(Xn[k], s, n, speed, vel_cols), warp(Yn[k], s, n, speed)
            if n < L:  # pad short takes by holding their last frame
                x, y = torch.cat([x, x[-1:].expand(L - n, -1)]), torch.cat([y, y[-1:].expand(L - n, -1)])
            xb.append(x)
            yb.append(y)
        xb, yb = torch.stack(xb), torch.stack(yb)
        loss = torch.nn.functional.mse_loss(net(xb + 0.05 * torch.randn_like(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 1000 == 0 or it == args.iterations:
            row = {"iteration": it, "loss": float(loss.detach()), "test_mpjpe_mm": float(np.mean(score(test, Xte))),
                   "seconds": round(time.time() - t0)}
            curve.append(row)
            print(row, flush=True)
    final = {"train_mpjpe_mm": float(np.mean(score(train, X))), "test_mpjpe_mm": curve[-1]["test_mpjpe_mm"],
             "test_per_take": dict(zip(test_set.names, score(test, Xte)))}
    cmd = command_line(__file__, argv)
    write_json(args.out + ".json", {"command": cmd, "features": args.features, "curve": curve, **final})
    print({k: v for k, v in final.items() if k != "test_per_take"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
