"""Per-frame head features: velocities in the heading frame, objects relative to the head,
and SLAM-like noise on a camera trajectory. Pure NumPy, vectorised over frames.

Conventions: head pose (T, 7) = eye position + quaternion wxyz of the head frame (X forward,
Y left, Z up), world Z up. The *heading frame* of a frame is the world rotated by the head's
yaw only (its forward axis projected on the floor), placed at the eyes.
"""

from __future__ import annotations

import numpy as np

from .. import rotations as rot


def heading_rotation(quat: np.ndarray) -> np.ndarray:
    """(T, 3, 3) yaw-only rotations of head quaternions (T, 4) wxyz."""
    return rot.yaw_matrix(rot.heading_angle(rot.quat_to_matrix(quat)))


def head_velocities(head_pose: np.ndarray, fps: float) -> np.ndarray:
    """(T, 6): linear velocity (m/s) in the heading frame of frame t, then angular velocity
    (rad/s) in the head's own frame (``log(R_t^T R_{t+1})``), forward differences t -> t+1,
    the last row a copy of the one before. This is the convention of the original data:
    checked on the EgoEgo ARES sample, whose ``head_vels`` angular part equals this to 1e-3
    rad/s. Needs at least 2 frames."""
    head_pose = np.asarray(head_pose, dtype=np.float64)
    if len(head_pose) < 2:
        raise ValueError(f"head velocities need at least 2 frames, got {len(head_pose)}")
    R = rot.quat_to_matrix(head_pose[:, 3:7])
    H = rot.yaw_matrix(rot.heading_angle(R))
    lin = rot.linear_velocity(head_pose[:, :3], fps)
    ang = rot.angular_velocity(R, fps, frame="local")
    Ht = np.swapaxes(H, -1, -2)
    return np.concatenate([(Ht @ lin[..., None])[..., 0], ang], axis=1)


def head_local_velocities(head_pose: np.ndarray, fps: float) -> np.ndarray:
    """(T, 6): linear and angular velocity in the head's own frame (what a head camera sees:
    X forward, Y left, Z up), forward differences, last row repeated. The flow encoder's target."""
    head_pose = np.asarray(head_pose, dtype=np.float64)
    R = rot.quat_to_matrix(head_pose[:, 3:7])
    lin = rot.linear_velocity(head_pose[:, :3], fps)
    lin_local = (np.swapaxes(R, -1, -2) @ lin[..., None])[..., 0]
    ang = rot.angular_velocity(R, fps, frame="local")
    return np.concatenate([lin_local, ang], axis=1)


def objects_relative_to_head(head_pose: np.ndarray, object_world: np.ndarray | None) -> np.ndarray:
    """(T, K, 7): object positions (m) and quaternions wxyz in the head's heading frame.

    ``object_world`` (T, K, 7) world poses; None or K = 0 gives (T, 0, 7).
    """
    head_pose = np.asarray(head_pose, dtype=np.float64)
    T = len(head_pose)
    if object_world is None:
        return np.zeros((T, 0, 7))
    obj = np.asarray(object_world, dtype=np.float64).reshape(T, -1, 7)
    if obj.shape[1] == 0:
        return np.zeros((T, 0, 7))
    H = heading_rotation(head_pose[:, 3:7])  # (T, 3, 3)
    Ht = np.swapaxes(H, -1, -2)[:, None]
    pos = (Ht @ (obj[..., :3] - head_pose[:, None, :3])[..., None])[..., 0]
    Ro = rot.quat_to_matrix(obj[..., 3:7])
    q = rot.matrix_to_quat(Ht @ Ro)
    q = rot.quat_continuous(q, axis=0)
    return np.concatenate([pos, q], axis=-1)


def slam_noise(head_pose: np.ndarray, fps: float, rng: np.random.Generator, *,
               drift_m_per_s: float = 0.02, drift_deg_per_s: float = 0.5,
               jitter_m: float = 0.005, jitter_deg: float = 0.3) -> np.ndarray:
    """A SLAM-like estimate of a head trajectory: slow drift (random walks in position and
    yaw/pitch/roll whose standard deviation grows as ``drift * sqrt(t)``) plus white jitter.
    Frame 0 is exact (a SLAM estimate starts at its own origin). Returns (T, 7)."""
    head_pose = np.asarray(head_pose, dtype=np.float64)
    T = len(head_pose)
    dt = 1.0 / fps
    step_p = rng.normal(0.0, drift_m_per_s * np.sqrt(dt), size=(T, 3))
    step_r = rng.normal(0.0, np.radians(drift_deg_per_s) * np.sqrt(dt), size=(T, 3))
    step_p[0] = step_r[0] = 0.0
    drift_p, drift_r = np.cumsum(step_p, 0), np.cumsum(step_r, 0)
    jit_p = rng.normal(0.0, jitter_m, size=(T, 3))
    jit_r = rng.normal(0.0, np.radians(jitter_deg), size=(T, 3))
    jit_p[0] = jit_r[0] = 0.0
    R = rot.quat_to_matrix(head_pose[:, 3:7])
    Rn = rot.rotvec_to_matrix(drift_r + jit_r) @ R
    out = np.empty_like(head_pose)
    out[:, :3] = head_pose[:, :3] + drift_p + jit_p
    out[:, 3:] = rot.quat_continuous(rot.matrix_to_quat(Rn))
    return out
