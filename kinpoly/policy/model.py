"""The kinematic policy (SPEC section 3): a recurrent network that, every frame, reads the
current pose and the egocentric observation and proposes the next pose.

Per-frame state (104 + D values, built by :func:`policy_state`, batched):

==================================  ====  =============================================
current root height                 1     m
current root orientation, heading   6     6-D rotation (first two matrix columns) in the
removed                                   root's own heading frame
current hinge angles                69    rad
head position error                 3     observed eye position minus the current pose's
                                          eye position, in the root's heading frame (m)
head orientation error              6     R_head_current^T R_head_observed, 6-D
head velocities                     6     observed ``EgoTake.head_vels``: linear in the
                                          heading frame (m/s), angular in the head frame
object pose relative to the head    8     position (m) + quaternion wxyz in the head's
                                          heading frame, + 1 if an object is present
action one-hot                      5     sit, push, avoid, step, locomotion
image feature                       D     optional, per frame (flow encoder)
==================================  ====  =============================================

Network: GRU cell (state -> ``hidden``, 1024) then an MLP ([512, 256]) to an 82-d action:
hinge-angle change (69), root orientation change in the heading frame (6-D residual, 6), root
height change (1), root linear velocity in the heading frame (3) and root angular velocity
(3; only yaw rate is integrated). :func:`integrate` turns it into the next pose at dt = 1/fps.
Residual outputs start near "keep the current pose", which makes early training stable.

A :class:`ContextEncoder` (GRU over the first frames' observations) predicts the first pose:
root height, heading-free root orientation, hinge angles and the root's offset from the eyes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .torch_kinematics import (TorchFK, heading, matrix_to_6d, matrix_to_quat, quat_to_matrix,
                               sixd_to_matrix, yaw_matrix)
from ..humanoid.skeleton import BODY_INDEX

NUM_ACTIONS = 5
STATE_DIM = 104
ACTION_DIM = 82
HEAD = BODY_INDEX["Head"]


@dataclass
class PolicyConfig:
    feature_dim: int = 0  # image feature size (0: no image features)
    hidden: int = 1024
    mlp: list[int] = field(default_factory=lambda: [512, 256])
    context_frames: int = 30
    joint_step: float = 0.2  # scale of the per-frame hinge change output (rad)
    height_step: float = 0.05  # scale of the per-frame root height change (m)


def _mlp(sizes: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(sizes[-1], out))
    return nn.Sequential(*layers)


@dataclass
class Observation:
    """One frame of egocentric input for a batch (all tensors (B, ...))."""

    head_pose: torch.Tensor  # (B, 7) observed eyes + quaternion
    head_vels: torch.Tensor  # (B, 6)
    obj: torch.Tensor  # (B, 8) object pose relative to the head + presence flag
    action: torch.Tensor  # (B, 5)
    feature: torch.Tensor | None = None  # (B, D)


def policy_state(qpos: torch.Tensor, obs: Observation, fk: TorchFK, offsets: torch.Tensor,
                 eye: torch.Tensor) -> torch.Tensor:
    """The (B, 104 + D) state of the table in the module docstring."""
    R = quat_to_matrix(qpos[:, 3:7])
    Ryaw = yaw_matrix(heading(R))
    RyawT = Ryaw.transpose(-1, -2)
    pos, rots = fk(qpos, offsets)
    R_head = rots[:, HEAD]
    eye_now = pos[:, HEAD] + (R_head @ eye.unsqueeze(-1)).squeeze(-1)
    head_err = (RyawT @ (obs.head_pose[:, :3] - eye_now).unsqueeze(-1)).squeeze(-1)
    rot_err = matrix_to_6d(R_head.transpose(-1, -2) @ quat_to_matrix(obs.head_pose[:, 3:7]))
    parts = [qpos[:, 2:3], matrix_to_6d(RyawT @ R), qpos[:, 7:], head_err, rot_err,
             obs.head_vels, obs.obj, obs.action]
    if obs.feature is not None:
        parts.append(obs.feature)
    return torch.cat(parts, dim=-1)


def integrate(qpos: torch.Tensor, out: torch.Tensor, dt: float, cfg: PolicyConfig) -> torch.Tensor:
    """Next pose from the current one and the 82-d network output."""
    R = quat_to_matrix(qpos[:, 3:7])
    yaw = heading(R)
    Ryaw = yaw_matrix(yaw)
    R_hf = Ryaw.transpose(-1, -2) @ R
    joints = qpos[:, 7:] + cfg.joint_step * out[:, :69]
    R_hf_new = sixd_to_matrix(matrix_to_6d(R_hf) + out[:, 69:75])
    z = qpos[:, 2:3] + cfg.height_step * out[:, 75:76]
    v = out[:, 76:79]
    xy = qpos[:, :2] + dt * (Ryaw @ v.unsqueeze(-1)).squeeze(-1)[:, :2]
    yaw_new = yaw + dt * out[:, 81]
    R_new = yaw_matrix(yaw_new) @ R_hf_new
    return torch.cat([xy, z, matrix_to_quat(R_new), joints], dim=-1)


class KinematicPolicy(nn.Module):
    def __init__(self, cfg: PolicyConfig | None = None):
        super().__init__()
        self.cfg = cfg or PolicyConfig()
        self.state_dim = STATE_DIM + self.cfg.feature_dim
        self.gru = nn.GRUCell(self.state_dim, self.cfg.hidden)
        self.head = _mlp([self.cfg.hidden] + list(self.cfg.mlp), ACTION_DIM)
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        self.register_buffer("state_mean", torch.zeros(self.state_dim))
        self.register_buffer("state_std", torch.ones(self.state_dim))

    def initial_hidden(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.cfg.hidden, device=self.state_std.device)

    def step(self, state: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (state - self.state_mean) / self.state_std
        hidden = self.gru(x, hidden)
        return self.head(hidden), hidden


class ContextEncoder(nn.Module):
    """GRU over the first frames' observations -> the first pose (see module docstring)."""

    def __init__(self, cfg: PolicyConfig | None = None, hidden: int = 256):
        super().__init__()
        self.cfg = cfg or PolicyConfig()
        self.in_dim = 7 + 6 + 8 + NUM_ACTIONS + self.cfg.feature_dim + 1  # +1: head height
        self.gru = nn.GRU(self.in_dim, hidden, batch_first=True)
        self.out = _mlp([hidden, 256], 1 + 6 + 69 + 3)

    def forward(self, head_pose: torch.Tensor, head_vels: torch.Tensor, obj: torch.Tensor,
                action: torch.Tensor, feature: torch.Tensor | None = None) -> torch.Tensor:
        """Inputs (B, K, ...) for the first K frames -> first qpos (B, 76)."""
        R0 = quat_to_matrix(head_pose[:, 0, 3:7])
        yaw0 = heading(R0)
        Ryaw0T = yaw_matrix(yaw0).transpose(-1, -2)
        rel = head_pose[..., :3] - head_pose[:, :1, :3]
        rel = (Ryaw0T.unsqueeze(1) @ rel.unsqueeze(-1)).squeeze(-1)
        Rh = Ryaw0T.unsqueeze(1) @ quat_to_matrix(head_pose[..., 3:7])
        x = [rel, matrix_to_quat(Rh), head_vels, obj, action, head_pose[..., 2:3]]
        if feature is not None:
            x.append(feature)
        _, h = self.gru(torch.cat(x, dim=-1))
        y = self.out(h[-1])
        z, r6, joints, off = y[:, :1] + 0.9, y[:, 1:7], y[:, 7:76], y[:, 76:79]
        R_hf = sixd_to_matrix(r6 + torch.tensor([1.0, 0, 0, 0, 1.0, 0]))
        Ryaw0 = yaw_matrix(yaw0)
        root_xy = head_pose[:, 0, :2] + (Ryaw0 @ off.unsqueeze(-1)).squeeze(-1)[:, :2]
        return torch.cat([root_xy, z, matrix_to_quat(Ryaw0 @ R_hf), joints], dim=-1)

    def take_pose(self, take, start: int = 0) -> torch.Tensor:
        """The (1, 76) pose at frame ``start`` of a take (``TakeTensors``), from its next
        ``context_frames`` observations (image features when the encoder reads them)."""
        k = min(self.cfg.context_frames, take.num_frames - start)
        return self._window(take, slice(start, start + k), reverse=False)

    def pose_before(self, take, frame: int) -> torch.Tensor:
        """The (1, 76) pose at ``frame`` from the ``context_frames`` observations up to it,
        newest first: what a *restart* encoder reads (trained so by
        :mod:`kinpoly.policy.restart_context`), which needs no frame after ``frame``."""
        return self._window(take, slice(max(0, frame - self.cfg.context_frames + 1), frame + 1), reverse=True)

    def read(self, head_pose: torch.Tensor, head_vels: torch.Tensor, obj: torch.Tensor, action: torch.Tensor,
             feature: torch.Tensor | None = None, newest_first: bool = False) -> torch.Tensor:
        """The (B, 76) pose at the first frame of windows of observations (B, K, ...), with the
        takes' actions (B, 5); ``newest_first``: at the last frame, the window read backwards
        (a restart encoder's input)."""
        if newest_first:
            head_pose, head_vels, obj = head_pose.flip(1), head_vels.flip(1), obj.flip(1)
            feature = None if feature is None else feature.flip(1)
        return self(head_pose, head_vels, obj, action[:, None].expand(-1, head_pose.shape[1], -1), feature)

    def _window(self, take, sl: slice, reverse: bool) -> torch.Tensor:
        feat = take.feature[None, sl] if (take.feature is not None and self.cfg.feature_dim) else None
        return self.read(take.head_pose[None, sl], take.head_vels[None, sl], take.obj[None, sl], take.action[None],
                         feat, newest_first=reverse)


def without_image_features(policy: KinematicPolicy, context: ContextEncoder) -> tuple[KinematicPolicy, ContextEncoder]:
    """The same policy and context encoder reading no image features: the feature inputs
    (the last ``feature_dim`` of each network's input) are dropped, every other weight is
    kept. A start for fine-tuning a head-trajectory-only policy."""
    d = policy.cfg.feature_dim
    cfg = PolicyConfig(**{**policy.cfg.__dict__, "feature_dim": 0})
    new_policy, new_context = KinematicPolicy(cfg), ContextEncoder(cfg, hidden=context.gru.hidden_size)
    if d == 0:
        new_policy.load_state_dict(policy.state_dict())
        new_context.load_state_dict(context.state_dict())
        return new_policy, new_context
    state = policy.state_dict()
    for k in ("gru.weight_ih", "state_mean", "state_std"):
        state[k] = state[k][..., :-d]
    new_policy.load_state_dict(state)
    state = context.state_dict()
    state["gru.weight_ih_l0"] = state["gru.weight_ih_l0"][:, :-d]
    new_context.load_state_dict(state)
    return new_policy, new_context
