"""Dense optical flow between head-camera frames and the flow encoder (plain PyTorch).

Flow: OpenCV's DIS optical flow (Kroeger et al. 2016) on grayscale frames, the method that
installs and runs here in place of the original's PWC-Net. Each flow field is average-pooled to
a ``size`` x ``size`` grid and expressed in grid cells (pixels * size / width), so videos of any
resolution with the same field of view give comparable inputs.

Encoder: a small CNN (3 strided convolutions, then a linear layer) maps a pooled flow field to a
``feature_dim`` vector (the per-frame image feature, SPEC: 512-d) and a 6-d head velocity
(linear m/s, angular rad/s, in the head's own frame: X forward, Y left, Z up). It is trained
from scratch to regress that velocity (``train_flow_encoder``) on flows of rendered takes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import CHECKPOINTS, read_checkpoint

FLOW_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


class FlowComputer:
    """Streams frames: ``push(rgb)`` returns the pooled flow (2, size, size) from the previous
    frame to this one (None for the first frame)."""

    def __init__(self, size: int = 32, preset: str = "ultrafast"):
        import cv2

        self._cv2 = cv2
        self.size = int(size)
        self.dis = cv2.DISOpticalFlow_create(FLOW_PRESETS[preset])
        self.prev: np.ndarray | None = None

    def reset(self) -> None:
        self.prev = None

    def push(self, rgb: np.ndarray) -> np.ndarray | None:
        cv2 = self._cv2
        gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        out = None
        if self.prev is not None:
            flow = self.dis.calc(self.prev, gray, None)
            out = pool_flow(flow, self.size)
        self.prev = gray
        return out


def pool_flow(flow: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 2) pixel flow -> (2, size, size) float32 in grid cells (area average)."""
    import cv2

    w = flow.shape[1]
    small = cv2.resize(flow, (size, size), interpolation=cv2.INTER_AREA) * (size / w)
    return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32)


def flows_per_frame(pair_flows: np.ndarray) -> np.ndarray:
    """(T-1, 2, s, s) flows of frame pairs (t, t+1) -> (T, ...) one per frame: frame t gets the
    flow t -> t+1 (the interval its forward-difference head velocity covers), the last frame
    repeats the one before (as head velocities do)."""
    return np.concatenate([pair_flows, pair_flows[-1:]], axis=0)


# --- the encoder ------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def make_encoder(size: int = 32, feature_dim: int = 512, width: int = 32):
    """The flow encoder ``nn.Module``: forward(flow (B,2,s,s)) -> (features (B,D), vel (B,6))."""
    torch = _torch()
    nn = torch.nn

    class FlowEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.size, self.feature_dim, self.width = size, feature_dim, width
            c = width
            self.conv = nn.Sequential(
                nn.Conv2d(2, c, 5, stride=2, padding=2), nn.ReLU(),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.ReLU())
            n = 2 * c * (size // 8) ** 2
            self.feature = nn.Sequential(nn.Flatten(), nn.Linear(n, feature_dim), nn.ReLU())
            self.head = nn.Linear(feature_dim, 6)

        def forward(self, flow):
            f = self.feature(self.conv(flow))
            return f, self.head(f)

    return FlowEncoder()


@dataclass
class LoadedEncoder:
    model: object
    size: int
    feature_dim: int
    vel_mean: np.ndarray
    vel_std: np.ndarray
    path: str

    def encode(self, flows: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2, s, s) flows -> (features (N, D) float32, head velocity (N, 6) in m/s, rad/s)."""
        torch = _torch()
        feats, vels = [], []
        with torch.inference_mode():
            for i in range(0, len(flows), batch):
                x = torch.from_numpy(np.ascontiguousarray(flows[i:i + batch], dtype=np.float32))
                f, v = self.model(x)
                feats.append(f.numpy())
                vels.append(v.numpy())
        if not feats:
            return np.zeros((0, self.feature_dim), np.float32), np.zeros((0, 6))
        v = np.concatenate(vels).astype(np.float64) * self.vel_std + self.vel_mean
        return np.concatenate(feats).astype(np.float32), v


DEFAULT_ENCODER = CHECKPOINTS / "flow_encoder" / "flow_encoder.pt"


def load_encoder(path: str | os.PathLike | None = None) -> LoadedEncoder:
    path = Path(path or DEFAULT_ENCODER)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no flow encoder checkpoint (train one with "
                                f"`kinpoly ego train-flow`)")
    ck = read_checkpoint(path, "flow-encoder checkpoint", weights_only=True)
    cfg = ck["config"]
    model = make_encoder(int(cfg["size"]), int(cfg["feature_dim"]), int(cfg["width"]))
    model.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
    model.eval()
    return LoadedEncoder(model, int(cfg["size"]), int(cfg["feature_dim"]),
                         np.asarray(ck["vel_mean"], dtype=np.float64),
                         np.asarray(ck["vel_std"], dtype=np.float64), str(path))


@dataclass
class TrainConfig:
    epochs: int = 8
    batch: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    feature_dim: int = 512
    width: int = 32
    seed: int = 0
    max_frames: int = 200_000


def _zero_and_errors(pred: np.ndarray, target: np.ndarray) -> dict:
    lin = np.linalg.norm(pred[:, :3] - target[:, :3], axis=1)
    ang = np.linalg.norm(pred[:, 3:] - target[:, 3:], axis=1)
    z_lin = np.linalg.norm(target[:, :3], axis=1)
    z_ang = np.linalg.norm(target[:, 3:], axis=1)
    return {"linear_mps": float(lin.mean()), "angular_radps": float(ang.mean()),
            "zero_linear_mps": float(z_lin.mean()), "zero_angular_radps": float(z_ang.mean()),
            "frames": int(len(target))}


def train_flow_encoder(train_flows: np.ndarray, train_vel: np.ndarray, test_flows: np.ndarray,
                       test_vel: np.ndarray, out: str | os.PathLike, cfg: TrainConfig | None = None,
                       log=print) -> dict:
    """Train the encoder to regress head velocity (head frame) from pooled flows; writes
    ``flow_encoder.pt`` (float16 weights) and ``metrics.json`` to ``out``; returns the metrics
    (mean error on the test frames vs predicting zero velocity), and the run record
    (``config.yaml``, ``run.json``: seed, git commit, command)."""
    from ..config import RunDir
    from ..errors import InputError

    torch = _torch()
    cfg = cfg or TrainConfig()
    if len(train_flows) < cfg.batch or not len(test_flows):
        raise InputError(f"flow encoder: {len(train_flows)} training frame pairs (a batch is {cfg.batch}) and "
                         f"{len(test_flows)} test ones; needs a full batch and at least one test pair")
    run = RunDir(out, cfg.__dict__ | {"size": int(train_flows.shape[-1])}, cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    size = train_flows.shape[-1]
    mean, std = train_vel.mean(0), train_vel.std(0) + 1e-6
    model = make_encoder(size, cfg.feature_dim, cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    X = torch.from_numpy(np.ascontiguousarray(train_flows, dtype=np.float32))
    Y = torch.from_numpy(((train_vel - mean) / std).astype(np.float32))
    n = len(X)
    sign = np.array([1, -1, 1, -1, 1, -1], dtype=np.float32)
    mirror_offset = torch.from_numpy(((sign * mean - mean) / std).astype(np.float32))
    steps = cfg.epochs * max(1, n // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    t0 = time.perf_counter()
    step = 0
    for epoch in range(cfg.epochs):
        perm = torch.from_numpy(rng.permutation(n))
        total = 0.0
        model.train()
        for i in range(0, n - cfg.batch + 1, cfg.batch):
            idx = perm[i:i + cfg.batch]
            x = X[idx]
            if rng.random() < 0.5:  # left-right mirror: flow x flips, y-lin/x,z-ang flip
                x = torch.flip(x, dims=[3]) * torch.tensor([-1.0, 1.0]).view(1, 2, 1, 1)
                y = Y[idx] * torch.from_numpy(sign) + mirror_offset
            else:
                y = Y[idx]
            _, pred = model(x)
            loss = torch.nn.functional.smooth_l1_loss(pred, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step < steps - 1:
                sched.step()
            step += 1
            total += loss.item() * len(idx)
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / max(n, 1):.4f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})  # as shipped
    enc = LoadedEncoder(model, size, cfg.feature_dim, mean, std, "")
    _, pred = enc.encode(test_flows)
    metrics = {"test": _zero_and_errors(pred, test_vel)}
    _, pred_tr = enc.encode(train_flows[:20000])
    metrics["train"] = _zero_and_errors(pred_tr, train_vel[:20000])
    metrics["train_seconds"] = round(time.perf_counter() - t0, 1)
    metrics["config"] = cfg.__dict__ | {"size": size}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "config": {"size": size, "feature_dim": cfg.feature_dim,
                                                "width": cfg.width},
                "vel_mean": mean.tolist(), "vel_std": std.tolist(),
                "target": "head velocity in the head frame (m/s, rad/s), forward differences"},
               out / "flow_encoder.pt")
    run.write_metrics(metrics)
    return metrics
