"""Pose estimation from an egocentric take with a trained kinematic policy (no physics yet:
the dynamics-regulated step, where the tracking controller follows each proposed pose, builds
on this)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..motion.clip import MotionClip
from .data import TakeTensors
from .model import ContextEncoder, KinematicPolicy, PolicyConfig
from .supervised import rollout
from .torch_kinematics import TorchFK


def load_policy(path: str | Path) -> tuple[KinematicPolicy, ContextEncoder]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such kinematic-policy checkpoint")
    ck = torch.load(path, weights_only=False)
    cfg = PolicyConfig(**ck["policy_config"])
    policy, context = KinematicPolicy(cfg), ContextEncoder(cfg)
    policy.load_state_dict(ck["policy"])
    context.load_state_dict(ck["context"])
    return policy.eval(), context.eval()


@torch.no_grad()
def estimate_kinematic(policy: KinematicPolicy, context: ContextEncoder, take: TakeTensors,
                       start_from_truth: bool = False) -> MotionClip:
    """The policy's motion for a whole take: first pose from the context encoder (or the
    ground truth), then one policy step per frame."""
    k = min(policy.cfg.context_frames, take.num_frames)
    batch = {"head_pose": take.head_pose[None], "head_vels": take.head_vels[None], "obj": take.obj[None],
             "action": take.action[None], "offsets": take.offsets[None], "eye": take.eye[None],
             "feature": None if (take.feature is None or policy.cfg.feature_dim == 0) else take.feature[None]}
    if start_from_truth and take.qpos is not None:
        q0 = take.qpos[None, 0]
    else:
        feat = None if batch["feature"] is None else batch["feature"][:, :k]
        q0 = context(batch["head_pose"][:, :k], batch["head_vels"][:, :k], batch["obj"][:, :k],
                     batch["action"].unsqueeze(1).expand(-1, k, -1), feat)
    qpos = rollout(policy, TorchFK(), batch, q0, 1.0 / take.fps)[0].double().numpy()
    return MotionClip(name=take.name, qpos=np.asarray(qpos), fps=take.fps, body=take.body,
                      meta={"estimator": "kinematic_policy"})
