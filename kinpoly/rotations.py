"""Rotation helpers shared by every stage, vectorised over any leading dimensions.

Conventions used throughout kinpoly:
- quaternions are **wxyz** (MuJoCo's order); scipy uses xyzw, so conversions go through here;
- rotation matrices act on column vectors (``v_world = R @ v_local``);
- the humanoid's hinge triplets are intrinsic Euler angles in each body's order
  (``kinpoly.humanoid.skeleton.HINGE_ORDER``), e.g. Z-X-Y: ``R = Rz(a) @ Rx(b) @ Ry(c)``
  (MuJoCo applies the hinges of one body in the order they are declared).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

_EPS = 1e-9


def _flat(x: np.ndarray, tail: int) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float64)
    lead = x.shape[: x.ndim - tail]
    return x.reshape((-1,) + x.shape[x.ndim - tail:]), lead


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) wxyz -> (..., 3, 3). Non-unit quaternions are normalised."""
    f, lead = _flat(q, 1)
    m = Rotation.from_quat(f[:, [1, 2, 3, 0]]).as_matrix()
    return m.reshape(lead + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) wxyz with w >= 0."""
    f, lead = _flat(m, 2)
    q = Rotation.from_matrix(f).as_quat()[:, [3, 0, 1, 2]]
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(lead + (4,))


def quat_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere."""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
    q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(np.shape(angle) + (3, 3))
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    k = 3 - i - j
    out[..., k, k] = 1.0
    out[..., i, i], out[..., i, j] = c, -s
    out[..., j, i], out[..., j, j] = s, c
    return out


def euler_to_matrix(angles: np.ndarray, seq: str) -> np.ndarray:
    """(..., 3) intrinsic Euler angles (radians) in axis order ``seq`` (e.g. "zxy") ->
    (..., 3, 3) = R_seq[0] @ R_seq[1] @ R_seq[2]. Closed form (much faster than scipy)."""
    a = np.asarray(angles, dtype=np.float64)
    r = [_axis_rotation(ax, a[..., k]) for k, ax in enumerate(seq)]
    return r[0] @ r[1] @ r[2]


def matrix_to_euler(m: np.ndarray, seq: str) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) intrinsic angles in axis order ``seq``; middle angle in
    [-pi/2, pi/2]. The other solution is (a + pi, pi - b, c + pi)."""
    f, lead = _flat(m, 2)
    import warnings

    with warnings.catch_warnings():  # gimbal lock warning: the returned angles are still valid
        warnings.simplefilter("ignore", UserWarning)
        e = Rotation.from_matrix(f).as_euler(seq.upper())
    return e.reshape(lead + (3,))


def euler_zyx_to_matrix(angles: np.ndarray) -> np.ndarray:
    """(..., 3) angles (z, y, x) in radians -> (..., 3, 3) = Rz @ Ry @ Rx."""
    return euler_to_matrix(angles, "zyx")


def matrix_to_euler_zyx(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3) intrinsic (z, y, x) angles, y in [-pi/2, pi/2]."""
    return matrix_to_euler(m, "zyx")


def unwrap_angles(angles: np.ndarray, axis: int = 0) -> np.ndarray:
    """Remove 2*pi jumps along ``axis`` (time) so joint angles are continuous."""
    return np.unwrap(angles, axis=axis)


def rotvec_to_matrix(v: np.ndarray) -> np.ndarray:
    f, lead = _flat(v, 1)
    return Rotation.from_rotvec(f).as_matrix().reshape(lead + (3, 3))


def matrix_to_rotvec(m: np.ndarray) -> np.ndarray:
    f, lead = _flat(m, 2)
    return Rotation.from_matrix(f).as_rotvec().reshape(lead + (3,))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between wxyz quaternions, broadcasting over leading dims.

    ``t`` broadcasts against ``q0[..., 0]``. Takes the short way round.
    """
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    small = sin < 1e-6
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(small, 1.0, sin))
    w1 = np.where(small, t, np.sin(t * theta) / np.where(small, 1.0, sin))
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample_times(num_frames: int, fps: float, new_fps: float) -> np.ndarray:
    """Sample times (s) at ``new_fps`` covering a clip of ``num_frames`` at ``fps``."""
    duration = (num_frames - 1) / fps
    n = int(np.floor(duration * new_fps + 1e-6)) + 1
    return np.arange(n) / new_fps


def resample_indices(num_frames: int, fps: float, new_fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output frame at ``new_fps``: the source frames (i0, i1) around it and the
    interpolation weight ``frac`` of i1 (0 when the output falls on a source frame)."""
    pos = resample_times(num_frames, fps, new_fps) * fps
    i0 = np.minimum(np.floor(pos + 1e-9).astype(int), num_frames - 1)
    frac = np.where(pos - i0 > 1e-6, pos - i0, 0.0)
    i1 = np.minimum(i0 + (frac > 0), num_frames - 1)
    return i0, i1, frac


def resample_quats(q: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
    """Resample (T, ..., 4) wxyz quaternion tracks from ``fps`` to ``new_fps`` by slerp."""
    i0, i1, frac = resample_indices(q.shape[0], fps, new_fps)
    frac = frac.reshape((-1,) + (1,) * (q.ndim - 2))
    return quat_slerp(q[i0], q[i1], np.broadcast_to(frac, q[i0].shape[:-1]))


def resample_linear(x: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
    """Resample (T, ...) tracks from ``fps`` to ``new_fps`` by linear interpolation."""
    i0, i1, frac = resample_indices(x.shape[0], fps, new_fps)
    frac = frac.reshape((-1,) + (1,) * (x.ndim - 1))
    return x[i0] * (1.0 - frac) + x[i1] * frac


def heading_angle(m: np.ndarray) -> np.ndarray:
    """Yaw (rad) of a body frame whose forward axis is local +X, about world +Z."""
    m = np.asarray(m)
    return np.arctan2(m[..., 1, 0], m[..., 0, 0])


def yaw_matrix(yaw: np.ndarray) -> np.ndarray:
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.zeros(yaw.shape + (3, 3))
    out[..., 0, 0], out[..., 0, 1] = c, -s
    out[..., 1, 0], out[..., 1, 1] = s, c
    out[..., 2, 2] = 1.0
    return out


def remove_heading(m: np.ndarray) -> np.ndarray:
    """Express rotations in their own heading frame: ``Rz(-yaw) @ R``."""
    return np.swapaxes(yaw_matrix(heading_angle(m)), -1, -2) @ m


def angular_velocity(m: np.ndarray, fps: float, frame: str = "world") -> np.ndarray:
    """Angular velocity (rad/s) of a (T, ..., 3, 3) rotation track by finite differences.

    ``frame="world"`` gives omega in world axes (log(R_{t+1} R_t^T)), ``"local"`` in the body's
    own axes (log(R_t^T R_{t+1})). The last frame repeats the previous value. Returns (T, ..., 3).
    """
    m = np.asarray(m, dtype=np.float64)
    if m.shape[0] < 2:
        return np.zeros(m.shape[:-2] + (3,))
    a, b = m[:-1], m[1:]
    rel = b @ np.swapaxes(a, -1, -2) if frame == "world" else np.swapaxes(a, -1, -2) @ b
    w = matrix_to_rotvec(rel) * fps
    return np.concatenate([w, w[-1:]], axis=0)


def linear_velocity(x: np.ndarray, fps: float) -> np.ndarray:
    """Velocity of (T, ..., 3) positions by forward differences; the last frame repeats."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 2:
        return np.zeros_like(x)
    v = np.diff(x, axis=0) * fps
    return np.concatenate([v, v[-1:]], axis=0)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimal rotation matrices taking unit vectors ``a`` to ``b`` (..., 3) -> (..., 3, 3)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(s, c)
    # opposite vectors: rotate pi about any axis perpendicular to a
    perp = np.cross(a, np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), _EPS)
    axis = np.where(s > 1e-8, axis / np.maximum(s, _EPS), np.where(c < 0, perp, 0.0))
    return rotvec_to_matrix(axis * angle)
