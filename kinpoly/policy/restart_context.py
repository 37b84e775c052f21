"""The restart encoder: the pose at a frame from the observations *up to* it.

When the simulated body loses the camera, the dynamics-regulated loop restarts it on a pose
read from the observations. The context encoder reads the ``context_frames`` (one second)
*after* the restart frame, as at a take's first frame, where nothing came before: a live stream
must then wait that second, and offline the pose is guessed from where the wearer goes, not
from how they got there. A restart encoder has the context encoder's architecture and reads
the second *before* the frame, newest first (:meth:`ContextEncoder.pose_before`); it starts
from the policy's context encoder and is trained with the same pose loss
(:func:`~kinpoly.policy.supervised.context_loss`) on windows of the training takes that end at
the frame to predict. The policy is not changed: :func:`train_restart_context` writes a copy of
the policy file with the encoder added under ``restart_context``, which
:class:`~kinpoly.policy.estimate.Estimator` and the live
:class:`~kinpoly.policy.streaming.StreamingEstimator` use for restarts.
"""

from __future__ import annotations

import copy
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import read_checkpoint
from ..egocentric.take import EgoDataset
from ..motion.clip import atomic_write_bytes
from .data import sample_windows, take_tensors
from .regulated import lift_above_floor
from .supervised import context_loss
from .torch_kinematics import TorchFK


@dataclass
class RestartContextConfig:
    data: str = "data/ego"  # take folder (its train split is used)
    iterations: int = 2000
    batch: int = 32
    lr: float = 3.0e-4
    grad_clip: float = 1.0
    seed: int = 0
    eval_samples: int = 400  # test-split frames scored before and after (0: none)
    threads: int = 1  # torch threads (one core: several trainings side by side do not fight)
    object_dropout: float = 0.0  # share of windows read without their object (as SupervisedConfig's)


@torch.no_grad()
def restart_pose_error(encoder, takes, reverse: bool, samples: int, seed: int = 0) -> dict:
    """Mean errors of restart poses (lifted out of the floor, as the loop uses them) at
    ``samples`` random frames with a second of observations on both sides: root-relative
    MPJPE and root position (mm)."""
    fk, rng = TorchFK(), np.random.default_rng(seed)
    K = encoder.cfg.context_frames
    usable = [t for t in takes if t.num_frames >= 2 * K + 1 and t.qpos is not None]
    mpjpe, root = [], []
    for _ in range(samples if usable else 0):
        t = usable[int(rng.integers(len(usable)))]
        f = int(rng.integers(K, t.num_frames - K))
        q = encoder.pose_before(t, f) if reverse else encoder.take_pose(t, f)
        p, _ = fk(lift_above_floor(q, t.body), t.offsets[None])
        g, _ = fk(t.qpos[f:f + 1], t.offsets[None])
        mpjpe.append(float(((p - p[:, :1]) - (g - g[:, :1])).norm(dim=-1).mean()) * 1e3)
        root.append(float((p[:, 0] - g[:, 0]).norm()) * 1e3)
    return {"mpjpe_mm": float(np.mean(mpjpe)) if mpjpe else None, "root_mm": float(np.mean(root)) if root else None,
            "samples": len(mpjpe)}


def train_restart_context(policy_path: str | Path, out: str | Path, cfg: RestartContextConfig,
                          progress: bool = True) -> dict:
    """Train a restart encoder for the policy at ``policy_path``; write the policy file plus
    the encoder (in the policy file's precision) to ``out``. Returns the record stored with it
    (config, curve, errors before and after on the test split)."""
    from tqdm import tqdm

    from .estimate import _checked_policy

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    blob = read_checkpoint(policy_path, "kinematic-policy checkpoint")
    policy, context = _checked_policy(blob, policy_path)
    features = policy.cfg.feature_dim > 0
    train = [take_tensors(t, use_features=features) for t in EgoDataset(cfg.data, split="train")]
    test = [take_tensors(t, use_features=features) for t in EgoDataset(cfg.data, split="test")]
    encoder = copy.deepcopy(context).train()
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    fk, rng = TorchFK(), np.random.default_rng(cfg.seed)
    record = {"config": asdict(cfg), "policy": str(policy_path),
              "before": {"context_encoder_reading_after": restart_pose_error(context, test, False, cfg.eval_samples),
                         "context_encoder_reading_before": restart_pose_error(context, test, True, cfg.eval_samples)}}
    curve, t0 = [], time.perf_counter()
    K = context.cfg.context_frames
    for it in tqdm(range(1, cfg.iterations + 1), desc="restart encoder", disable=not progress):
        batch = sample_windows(train, cfg.batch, K, rng, object_dropout=cfg.object_dropout)
        q = encoder.read(batch["head_pose"], batch["head_vels"], batch["obj"], batch["action"], batch["feature"],
                         newest_first=True)
        loss = context_loss(q, batch["qpos"][:, -1], batch, fk)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), cfg.grad_clip)
        opt.step()
        curve.append(float(loss.detach()))
    encoder.eval()
    record.update(seconds=round(time.perf_counter() - t0, 1),
                  curve_every_100=[float(np.mean(curve[i:i + 100])) for i in range(0, len(curve), 100)],
                  after=restart_pose_error(encoder, test, True, cfg.eval_samples))
    half = next(iter(blob["context"].values())).dtype == torch.float16
    cast = (lambda t: t.half() if t.is_floating_point() else t) if half else (lambda t: t)  # noqa: E731
    out_blob = {**blob, "restart_context": {k: cast(v.detach()) for k, v in encoder.state_dict().items()},
                "restart_context_training": record}
    buf = io.BytesIO()
    torch.save(out_blob, buf)
    atomic_write_bytes(out, buf.getvalue())
    return record
