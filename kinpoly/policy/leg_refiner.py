"""Leg refiner: corrects the kinematic policy's hips and knees for the simulated gait.

In the dynamics-regulated loop the proposals' hips and knees are what trips the simulated
body: on the 28 test takes the loop on proposals whose hips and knees are the truth's (the
policy's root, upper body and feet) falls 1.92 times per 100 frames, on the policy's whole
proposals 2.75, on the whole truth 2.04 (``benchmarks/loop_diagnosis.py --proposals parts``).
The policy's knees bend 72% as far as the truth's (``benchmarks/leg_motion.py``), and its state
has the simulated pose but not the simulated body's velocities, so it cannot see where the
simulated gait is.

The refiner is a small MLP that reads, every frame, the simulated body (root height and
heading-free orientation, root velocities, leg hinge angles and velocities) and the proposal
(its root step and leg hinges, and the look-ahead's leg change) and outputs a correction of
the proposal's 12 hip and knee hinges; the same correction goes to the look-ahead pose. It
is trained by DAgger on the training takes: run the loop (the refiner of the previous round
correcting the proposals; none in the first), record each frame's input and the truth's hips
and knees minus the proposal's, aggregate the rounds and regress. The kinematic policy and
the controller are fixed; the refiner only edits what the controller tracks.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import rotations as rot
from ..egocentric.take import EgoDataError
from ..errors import InputError
from ..humanoid.skeleton import body_hinges

HIPS_KNEES = [i for s in "LR" for b in ("Hip", "Knee") for i in body_hinges(f"{s}_{b}")]
LEG_HINGES = [i for s in "LR" for b in ("Hip", "Knee", "Ankle") for i in body_hinges(f"{s}_{b}")]
FEATURE_DIM = 16 + 4 * len(LEG_HINGES)


def refiner_features(targets: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """The refiner's input: the simulated state ``qpos`` (76) / ``qvel`` (75) and the
    controller's ``targets`` (2, 76): the proposal and its look-ahead."""
    R = rot.quat_to_matrix(qpos[3:7])
    Ry = rot.yaw_matrix(rot.heading_angle(R)).T  # world -> heading frame
    legs_v = [i - 1 for i in LEG_HINGES]  # a hinge's velocity sits one before its angle
    return np.concatenate([
        [qpos[2], targets[0, 2] - qpos[2]], (Ry @ (targets[0, :3] - qpos[:3]))[:2],
        rot.remove_heading(R)[:, :2].ravel(), Ry @ qvel[:3], Ry @ qvel[3:6],
        qpos[LEG_HINGES], 0.1 * qvel[legs_v], targets[0, LEG_HINGES], targets[1, LEG_HINGES] - targets[0, LEG_HINGES],
    ]).astype(np.float32)


class LegRefiner(nn.Module):
    def __init__(self, hidden: list[int] | None = None):
        super().__init__()
        hidden = list(hidden or [256, 256])
        layers: list[nn.Module] = []
        d = FEATURE_DIM
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ELU()]
            d = h
        layers.append(nn.Linear(d, len(HIPS_KNEES)))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)  # starts as "no correction"
        self.net = nn.Sequential(*layers)
        self.hidden = hidden
        self.register_buffer("mean", torch.zeros(FEATURE_DIM))
        self.register_buffer("std", torch.ones(FEATURE_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)

    @torch.no_grad()
    def correct(self, targets: np.ndarray, qpos: np.ndarray, qvel: np.ndarray,
                features: np.ndarray | None = None) -> np.ndarray:
        """``targets`` (2, 76) with the hips and knees corrected (a copy); ``features``: their
        :func:`refiner_features`, when already computed."""
        if features is None:
            features = refiner_features(targets, qpos, qvel)
        d = self(torch.as_tensor(features)[None])[0].double().numpy()
        out = np.array(targets, dtype=np.float64, copy=True)
        out[:, HIPS_KNEES] += d
        return out


def save_refiner(model: LegRefiner, path: str | os.PathLike, meta: dict | None = None) -> Path:
    from ..motion.clip import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": "kinpoly-leg-refiner-1", "hidden": model.hidden, "state": model.state_dict(),
                "meta": meta or {}}, buf)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_refiner(path: str | os.PathLike) -> LegRefiner:
    from ..config import read_checkpoint

    blob = read_checkpoint(path, "leg-refiner checkpoint")
    if blob.get("format") != "kinpoly-leg-refiner-1":
        raise InputError(f"{path}: not a leg-refiner checkpoint (kinpoly train leg-refiner writes one)")
    model = LegRefiner(blob["hidden"])
    model.load_state_dict(blob["state"])
    model.eval()
    return model


# --- training (DAgger) ------------------------------------------------------------------------
@dataclass
class RefinerConfig:
    data: str = "data/ego"
    out: str = "runs/leg_refiner"
    policy: str = ""  # kinematic policy ("" = the shipped one)
    controller: str = "checkpoints/uhc/policy.pt"  # tracking controller ("" = training-free)
    seed: int = 0
    rounds: int = 2  # DAgger rounds (the first runs the policy's own legs)
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    epochs: int = 30
    batch: int = 512
    lr: float = 1e-3
    workers: int = 0  # rollout processes, 0 = one per core


def _collect(args) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Worker: run the loop on some training takes; (inputs, hip/knee corrections, falls,
    frames, takes without a fall)."""
    cfg, names, refiner_state = args
    from ..egocentric.take import EgoDataset
    from .data import take_tensors
    from .estimate import Estimator
    from .regulated import take_objects

    torch.set_num_threads(1)
    est = Estimator(cfg.policy or None, cfg.controller)
    model = None
    if refiner_state is not None:
        model = LegRefiner(cfg.hidden)
        model.load_state_dict(refiner_state)
        model.eval()
    X, Y = [], []

    def record(targets, sim, take, frame):
        X.append(refiner_features(targets, sim.qpos, sim.qvel))
        Y.append(take.qpos[frame, HIPS_KNEES].double().numpy() - targets[0, HIPS_KNEES])
        return targets if model is None else model.correct(targets, sim.qpos, sim.qvel, X[-1])

    est.loop.target_filter = record
    ds = EgoDataset(cfg.data, split="train")
    falls = frames = clean = 0
    for n in names:
        take = ds[n]
        if take.qpos is None or take.num_frames < 3:  # nothing to learn from without the truth
            continue
        ep = est.loop.run(take_tensors(take, use_features=est.policy.cfg.feature_dim > 0),
                          take_objects(take.meta, take.object_world), from_truth=True)
        falls, frames, clean = falls + len(ep.falls), frames + take.num_frames, clean + (not ep.falls)
    X = np.asarray(X, np.float32).reshape(-1, FEATURE_DIM)
    return X, np.asarray(Y, np.float32).reshape(-1, len(HIPS_KNEES)), falls, frames, clean


def fit(model: LegRefiner, X: np.ndarray, Y: np.ndarray, cfg: RefinerConfig) -> float:
    """Regress the corrections (normaliser from ``X``); returns the final mean squared error."""
    torch.manual_seed(cfg.seed)
    x, y = torch.as_tensor(X), torch.as_tensor(Y)
    model.mean.copy_(x.mean(0))
    model.std.copy_(x.std(0).clamp_min(1e-3))
    opt = torch.optim.Adam(model.parameters(), cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch):
            b = perm[i:i + cfg.batch]
            loss = ((model(x[b]) - y[b]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def train_refiner(cfg: RefinerConfig, progress: bool = True) -> list[dict]:
    """DAgger rounds into ``cfg.out``: after each round ``refiner.pt`` (the latest) and
    ``refiner_roundN.pt``, ``rounds.json`` and ``data.npz`` (the frames so far, from which a
    killed run resumes after its last finished round). A round's training falls are those of
    its own rollouts, i.e. with the previous round's refiner."""
    import json
    from multiprocessing import get_context

    from tqdm import tqdm

    from ..egocentric.take import EgoDataset
    from ..motion.clip import atomic_write_npz, atomic_write_text

    names = list(EgoDataset(cfg.data, split="train").names)
    if not names:
        raise EgoDataError(f"{cfg.data}: no training takes")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    workers = cfg.workers or os.cpu_count() or 1
    torch.manual_seed(cfg.seed)  # the initial weights
    model, state, X_all, Y_all, rows = LegRefiner(cfg.hidden), None, [], [], []
    if (out / "rounds.json").is_file() and (out / "data.npz").is_file():
        # a killed run resumes after its last finished round (rounds.json is written last): that
        # round's refiner and its frames (data.npz may already hold the next round's too)
        rows = json.loads((out / "rounds.json").read_text())
        if rows:
            model = load_refiner(out / f"refiner_round{len(rows)}.pt")
            state = {k: v.clone() for k, v in model.state_dict().items()}
            with np.load(out / "data.npz") as z:
                X_all, Y_all = [z["X"][:rows[-1]["frames"]]], [z["Y"][:rows[-1]["frames"]]]
    with get_context("spawn").Pool(workers) as pool:
        for r in tqdm(range(len(rows), cfg.rounds), desc="leg refiner (DAgger rounds)", disable=not progress):
            t0 = time.perf_counter()
            parts = pool.map(_collect, [(cfg, names[w::workers], state) for w in range(workers)])
            X_all += [p[0] for p in parts]
            Y_all += [p[1] for p in parts]
            falls, frames, clean = (sum(p[k] for p in parts) for k in (2, 3, 4))
            X, Y = np.concatenate(X_all), np.concatenate(Y_all)
            mse = fit(model, X, Y, cfg)
            state = {k: v.clone() for k, v in model.state_dict().items()}
            rows.append({"round": r + 1, "frames": int(len(X)), "train_falls_per_100_frames": 100.0 * falls / frames,
                         "train_no_fall_rate": clean / len(names), "mse": mse,
                         "mse_without_correction": float((Y ** 2).mean()), "seconds": round(time.perf_counter() - t0, 1)})
            meta = {"rounds": rows, "policy": cfg.policy, "controller": cfg.controller}
            save_refiner(model, out / f"refiner_round{r + 1}.pt", meta)
            atomic_write_npz(out / "data.npz", {"X": X, "Y": Y})  # the aggregated frames, for a resume
            save_refiner(model, out / "refiner.pt", meta)
            atomic_write_text(out / "rounds.json", json.dumps(rows, indent=1))
    return rows
