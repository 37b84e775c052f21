"""Forward kinematics of the humanoid, vectorised over frames and over the bodies of each
tree level (9 levels), with no Python loop over bodies. Matches MuJoCo's ``mj_kinematics``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rotations as rot
from .skeleton import (BODY_INDEX, NUM_BODIES, PARENTS, QPOS_DIM, BodyShape, depth_levels,
                       hinge_order_groups)

_LEVELS = depth_levels()
_PARENTS = np.asarray(PARENTS)
_ORDER_GROUPS = hinge_order_groups()


@dataclass
class BodyStates:
    """Per-frame global state of the 24 bodies (world axes, metres, radians, seconds)."""

    positions: np.ndarray  # (T, 24, 3)
    rotations: np.ndarray  # (T, 24, 3, 3)
    fps: float

    @property
    def linear_velocities(self) -> np.ndarray:
        """(T, 24, 3) m/s by finite differences."""
        return rot.linear_velocity(self.positions, self.fps)

    @property
    def angular_velocities(self) -> np.ndarray:
        """(T, 24, 3) rad/s in world axes by finite differences."""
        return rot.angular_velocity(self.rotations, self.fps, frame="world")

    @property
    def quaternions(self) -> np.ndarray:
        """(T, 24, 4) wxyz, continuous in time."""
        return rot.quat_continuous(rot.matrix_to_quat(self.rotations))


def local_rotations(qpos: np.ndarray) -> np.ndarray:
    """(T, 76) qpos -> (T, 24, 3, 3) local rotations (root: its world orientation)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    T = qpos.shape[0]
    out = np.empty((T, NUM_BODIES, 3, 3))
    out[:, 0] = rot.quat_to_matrix(qpos[:, 3:7])
    angles = qpos[:, 7:].reshape(T, NUM_BODIES - 1, 3)
    for seq, idx in _ORDER_GROUPS.items():
        out[:, 1 + idx] = rot.euler_to_matrix(angles[:, idx], seq)
    return out


def hinge_angles(local: np.ndarray) -> np.ndarray:
    """(T, 23, 3, 3) local rotations of the non-root bodies -> (T, 69) hinge angles, each frame
    choosing the Euler solution closest to the previous frame (continuous through +-90 deg of
    the middle hinge and across +-180 deg)."""
    T = local.shape[0]
    out = np.empty(local.shape[:2] + (3,))
    for seq, idx in _ORDER_GROUPS.items():
        out[:, idx] = _continuous_euler(rot.matrix_to_euler(local[:, idx], seq))
    return out.reshape(T, -1)


def _continuous_euler(e: np.ndarray) -> np.ndarray:
    alt = np.stack([e[..., 0] + np.pi, np.pi - e[..., 1], e[..., 2] + np.pi], axis=-1)
    wrap = lambda a, ref: ref + (a - ref + np.pi) % (2 * np.pi) - np.pi  # noqa: E731
    out = np.empty_like(e)
    first_alt = np.sum(np.abs(alt[0] - 2 * np.pi * np.round(alt[0] / (2 * np.pi))), -1) < np.sum(np.abs(e[0]), -1)
    out[0] = np.where(first_alt[:, None], wrap(alt[0], 0.0), e[0])
    for i in range(1, len(e)):
        a, b = wrap(e[i], out[i - 1]), wrap(alt[i], out[i - 1])
        closer = np.sum((a - out[i - 1]) ** 2, -1) <= np.sum((b - out[i - 1]) ** 2, -1)
        out[i] = np.where(closer[:, None], a, b)
    return out


def forward_kinematics(qpos: np.ndarray, shape: BodyShape | None = None, fps: float = 30.0) -> BodyStates:
    """Global body positions and orientations for a (T, 76) or (76,) qpos track."""
    qpos = np.atleast_2d(np.asarray(qpos, dtype=np.float64))
    if qpos.shape[1] != QPOS_DIM:
        raise ValueError(f"qpos must have {QPOS_DIM} columns, got {qpos.shape[1]}")
    shape = shape or BodyShape()
    local = local_rotations(qpos)
    T = qpos.shape[0]
    pos = np.empty((T, NUM_BODIES, 3))
    glob = np.empty_like(local)
    pos[:, 0] = qpos[:, :3]
    glob[:, 0] = local[:, 0]
    for level in _LEVELS[1:]:
        par = _PARENTS[level]
        glob[:, level] = glob[:, par] @ local[:, level]
        pos[:, level] = pos[:, par] + np.einsum("tbij,bj->tbi", glob[:, par], shape.offsets[level])
    return BodyStates(positions=pos, rotations=glob, fps=fps)


def head_pose(states: BodyStates, shape: BodyShape | None = None, at_eyes: bool = True) -> np.ndarray:
    """(T, 7) head pose: position (eyes by default, else the Head joint) + quaternion wxyz."""
    shape = shape or BodyShape()
    h = BODY_INDEX["Head"]
    R = states.rotations[:, h]
    p = states.positions[:, h]
    if at_eyes:
        p = p + R @ shape.eye_offset()
    q = rot.quat_continuous(rot.matrix_to_quat(R))
    return np.concatenate([p, q], axis=1)
