"""Differentiable forward kinematics and rotation helpers in PyTorch for policy training.

The same conventions and body order as :mod:`kinpoly.humanoid.kinematics` (NumPy, used
everywhere else); a test checks the two agree. Batched over any leading dimensions.
"""

from __future__ import annotations

import numpy as np
import torch

from ..humanoid.skeleton import BodyShape, NUM_BODIES, PARENTS, depth_levels, hinge_order_groups

_LEVELS = [torch.as_tensor(lv) for lv in depth_levels()]
_PARENTS = torch.as_tensor(PARENTS)
_GROUPS = {seq: torch.as_tensor(idx) for seq, idx in hinge_order_groups().items()}


def axis_rotation(axis: str, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == "x":
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == "y":
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: torch.Tensor, seq: str) -> torch.Tensor:
    r = [axis_rotation(ax, angles[..., k]) for k, ax in enumerate(seq)]
    return r[0] @ r[1] @ r[2]


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz (normalised here) -> (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    w, x, y, z = q.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_6d(m: torch.Tensor) -> torch.Tensor:
    """Continuous 6-D rotation representation: the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def sixd_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    a, b = d6[..., :3], d6[..., 3:]
    x = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (x * b).sum(-1, keepdim=True) * x
    y = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], dim=-1)


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) wxyz with w >= 0 (robust branch-free form)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    w = torch.sqrt((1 + m00 + m11 + m22).clamp_min(1e-12)) / 2
    x = torch.sqrt((1 + m00 - m11 - m22).clamp_min(1e-12)) / 2
    y = torch.sqrt((1 - m00 + m11 - m22).clamp_min(1e-12)) / 2
    z = torch.sqrt((1 - m00 - m11 + m22).clamp_min(1e-12)) / 2
    x = torch.copysign(x, m[..., 2, 1] - m[..., 1, 2])
    y = torch.copysign(y, m[..., 0, 2] - m[..., 2, 0])
    z = torch.copysign(z, m[..., 1, 0] - m[..., 0, 1])
    q = torch.stack([w, x, y, z], dim=-1)
    return q / q.norm(dim=-1, keepdim=True)


def heading(m: torch.Tensor) -> torch.Tensor:
    """Yaw of a body frame whose forward axis is local +X."""
    return torch.atan2(m[..., 1, 0], m[..., 0, 0])


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    return axis_rotation("z", yaw)


class TorchFK(torch.nn.Module):
    """Forward kinematics of one body shape: qpos (..., 76) -> positions (..., 24, 3) and
    rotations (..., 24, 3, 3)."""

    def __init__(self, shape: BodyShape | None = None):
        super().__init__()
        shape = shape or BodyShape()
        self.register_buffer("offsets", torch.as_tensor(np.asarray(shape.offsets), dtype=torch.float32))

    def local_rotations(self, qpos: torch.Tensor) -> torch.Tensor:
        angles = qpos[..., 7:].reshape(qpos.shape[:-1] + (NUM_BODIES - 1, 3))
        parts = [None] * (NUM_BODIES - 1)
        for seq, idx in _GROUPS.items():
            mats = euler_to_matrix(angles[..., idx, :], seq)
            for k, i in enumerate(idx.tolist()):
                parts[i] = mats[..., k, :, :]
        return torch.stack([quat_to_matrix(qpos[..., 3:7])] + parts, dim=-3)

    def forward(self, qpos: torch.Tensor, offsets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``offsets`` (..., 24, 3) overrides the module's body (e.g. one body per sequence)."""
        local = self.local_rotations(qpos)
        glob = [None] * NUM_BODIES
        pos = [None] * NUM_BODIES
        glob[0], pos[0] = local[..., 0, :, :], qpos[..., :3]
        off = (self.offsets if offsets is None else offsets).to(qpos.dtype)
        for level in _LEVELS[1:]:
            for b in level.tolist():
                p = PARENTS[b]
                glob[b] = glob[p] @ local[..., b, :, :]
                pos[b] = pos[p] + (glob[p] @ off[..., b, :].unsqueeze(-1)).squeeze(-1)
        return torch.stack(pos, dim=-2), torch.stack(glob, dim=-3)
