"""A reference motion prepared for tracking: the clip's states, their finite-difference
velocities and accelerations, body positions, and the inverse-dynamics feed-forward.

Everything the controller and the environment need per reference frame is computed once here,
vectorised where possible, so the per-step cost of tracking is a few array lookups.

Bad input is caught at this boundary: a clip at another frame rate than the 30 Hz control rate,
or one containing NaN/inf (already refused by :class:`~kinpoly.motion.clip.MotionClip`), raises
:class:`ReferenceError` with the clip's name. A root that teleports (moves faster than
``MAX_ROOT_SPEED`` between two frames) is not an error: the frames are recorded in
``Reference.discontinuities`` and an episode that reaches one ends with the reason
``"reference_discontinuity"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..errors import InputError
from ..humanoid.skeleton import BODY_INDEX, QPOS_DIM, QVEL_DIM, gain_arrays
from ..motion.clip import MotionClip
from .model import humanoid_model

CONTROL_FPS = 30.0
# Gaussian (zero-phase) smoothing, in frames, of the velocities the feed-forward of a whole clip
# reads (its accelerations are differences of the smoothed velocities). Finite differences of
# mocap carry frame-to-frame noise that the PD servos' velocity term (kd / kp = 0.1 s) and the
# inverse dynamics amplify: on a Bandai kick the support ankle's twist swings 20-40 degrees a
# frame, its target jumped by up to 120 degrees and the ankle torque flipped between +-200 N m
# every control step. Measured with the shipped controller, not retrained
# (`docs/controller.md`): 1 frame lowers the MPJPE on held-out and training clips by about
# 2 mm; 2 frames is worse than none. The reference's own qvel/qacc (root PD, observations) stay unsmoothed.
FEEDFORWARD_SMOOTHING = 1.0
MAX_ROOT_SPEED = 12.0  # m/s: faster than any human moves; a root jump above it is a teleport


class ReferenceError(InputError):
    """A reference clip cannot be tracked; the message names the clip and the cause."""


@dataclass
class Reference:
    """Per-frame arrays of one reference clip (T frames at 30 Hz).

    ``qvel[t]`` is the forward difference over [t, t+1] (MuJoCo's convention: root angular
    velocity in body axes), ``qacc[t]`` the backward difference of ``qvel`` (zero at t=0).
    ``ff_ctrl[t]`` (69) is the PD target offset that adds the inverse-dynamics hinge torque
    needed to move from frame t to t+1 (see :func:`inverse_dynamics`; read from the velocities
    smoothed by :data:`FEEDFORWARD_SMOOTHING`), ``root_wrench[t]`` (6) the root force/torque the
    same inverse dynamics asks for (the residual force).
    """

    clip: MotionClip
    qpos: np.ndarray  # (T, 76)
    qvel: np.ndarray  # (T, 75)
    qacc: np.ndarray  # (T, 75)
    body_pos: np.ndarray  # (T, 24, 3) world joint positions
    root_rot: np.ndarray  # (T, 3, 3) root orientation
    ff_ctrl: np.ndarray  # (T, 69)
    root_wrench: np.ndarray  # (T, 6)
    discontinuities: np.ndarray  # frame indices t where the root teleports between t and t+1

    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def name(self) -> str:
        return self.clip.name


def check_clip(clip: MotionClip, min_frames: int = 2) -> None:
    """Raise :class:`ReferenceError` if the clip cannot be tracked at the control rate."""
    if abs(clip.fps - CONTROL_FPS) > 1e-6:
        raise ReferenceError(f"{clip.name}: reference is at {clip.fps:g} fps, the controller runs at "
                             f"{CONTROL_FPS:g} Hz; resample it (kinpoly motion import resamples to 30 Hz)")
    if clip.num_frames < min_frames:
        raise ReferenceError(f"{clip.name}: reference has {clip.num_frames} frame(s), needs >= {min_frames}")
    if not np.isfinite(clip.qpos).all():
        raise ReferenceError(f"{clip.name}: reference contains NaN/inf")
    quat_norm = np.linalg.norm(clip.qpos[:, 3:7], axis=1)
    if np.any(np.abs(quat_norm - 1.0) > 1e-3):
        raise ReferenceError(f"{clip.name}: root quaternion not unit length at frame "
                             f"{int(np.argmax(np.abs(quat_norm - 1.0) > 1e-3))}")


FOOT_BODIES = ("L_Ankle", "L_Toe", "R_Ankle", "R_Toe")
CONTACT_HEIGHT = 0.03  # m above its standing height: a foot body this low is taken as in contact
MOMENT_WEIGHT = 10.0  # least-squares cost of a contact moment relative to a force


def inverse_dynamics(model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray,
                     qacc: np.ndarray, contact: np.ndarray, data: mujoco.MjData | None = None) -> np.ndarray:
    """(T, 75) generalised forces that realise ``qacc`` at each state, with the ground
    reaction moved from the root onto the feet.

    ``mj_inverse`` alone attributes the weight of the body to the root (``model`` has MuJoCo's
    contacts off, :func:`~kinpoly.simulation.model.humanoid_model`, so that feet below the
    floor add no penalty force): the returned hinge torques would not hold the body up. Here the root part of the inverse-dynamics force is explained,
    in the least-squares sense, by a 6-d wrench at each foot body in contact (``contact``
    (T, 4) booleans over ``FOOT_BODIES``; moments weighted by ``MOMENT_WEIGHT``, upward
    forces only): hinge torques get ``- J^T f`` and only what the feet cannot explain stays on
    the root, which is what the residual force has to supply.
    """
    d = data if data is not None else mujoco.MjData(model)
    out = np.empty((len(qpos), QVEL_DIM))
    feet = [model.body(n).id for n in FOOT_BODIES]
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    scale = np.r_[np.ones(3), np.full(3, 1.0 / MOMENT_WEIGHT)]
    for t in range(len(qpos)):
        d.qpos[:QPOS_DIM] = qpos[t]
        d.qvel[:QVEL_DIM] = qvel[t]
        d.qacc[:QVEL_DIM] = qacc[t]
        mujoco.mj_inverse(model, d)
        tau = d.qfrc_inverse[:QVEL_DIM].copy()
        on = [b for b, c in zip(feet, contact[t]) if c]
        if on:
            jac = []
            for b in on:
                mujoco.mj_jacBody(model, d, jacp, jacr, b)
                jac += [jacp[:, :QVEL_DIM].copy(), jacr[:, :QVEL_DIM].copy()]
            J = np.concatenate(jac)  # (6k, 75): rows of foot wrenches
            S = np.tile(scale, len(on))
            A = J[:, :6].T * S  # root part, scaled variables
            f = S * np.linalg.lstsq(A, tau[:6], rcond=None)[0]
            fz = f.reshape(-1, 6)[:, 2]
            if np.any(fz < 0):  # a foot cannot pull: drop the pulling ones and solve again
                keep = np.repeat(fz >= 0, 6)
                f = np.zeros_like(f)
                if keep.any():
                    f[keep] = S[keep] * np.linalg.lstsq(A[:, keep], tau[:6], rcond=None)[0]
            tau = tau - J.T @ f
        out[t] = tau
    return out


def foot_contacts(clip: MotionClip, body_pos: np.ndarray) -> np.ndarray:
    """(T, 4) whether each of ``FOOT_BODIES`` is within ``CONTACT_HEIGHT`` of its standing
    height in the reference."""
    idx = [BODY_INDEX[n] for n in FOOT_BODIES]
    rest = clip.body.pelvis_height() + clip.body.rest_positions()[idx, 2]
    return body_pos[:, idx, 2] < rest + CONTACT_HEIGHT


def prepare_reference(clip: MotionClip, feedforward: str = "full",
                      smoothing: float = FEEDFORWARD_SMOOTHING) -> Reference:
    """Validate ``clip`` and precompute what tracking it needs. ``feedforward`` (see
    :func:`feedforward_mode`): ``"full"`` inverse dynamics of the motion, ``"static"`` the
    torques that hold each pose still against gravity, ``"off"`` (``ff_ctrl`` and
    ``root_wrench`` zero, for a controller that reads neither). ``smoothing``: the Gaussian
    width (frames) of the velocities the full feed-forward reads (:data:`FEEDFORWARD_SMOOTHING`;
    0: raw finite differences)."""
    check_clip(clip)
    qpos = clip.qpos.copy()
    qpos[:, 3:7] /= np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    qpos[:, 7:] = np.unwrap(qpos[:, 7:], axis=0)
    qvel = clip.qvel()
    speed = np.linalg.norm(np.diff(qpos[:, :3], axis=0), axis=1) * CONTROL_FPS
    jumps = np.flatnonzero(speed > MAX_ROOT_SPEED)
    # Velocities across a teleport are meaningless: hold them so the feed-forward stays sane.
    for t in jumps:
        qvel[t] = qvel[t - 1] if t > 0 else 0.0
    qacc = _accelerations(qvel, jumps)
    model = humanoid_model(clip.body)
    # Inverse dynamics at the midpoint of each control interval [t, t+1]: the velocity over it
    # and the acceleration at its start.
    states = clip.body_states()
    ff_vel, ff_acc = qvel, qacc  # only the full feed-forward reads velocities
    if feedforward == "full" and smoothing > 0 and len(qvel) > 1:
        ff_vel = _smoothed(qvel, smoothing)
        ff_acc = _accelerations(ff_vel, jumps)
    tau, ff_ctrl = _inverse_dynamics_ff(feedforward, model, clip, qpos, ff_vel, ff_acc, states.positions)
    return Reference(clip=clip, qpos=qpos, qvel=qvel, qacc=qacc, body_pos=states.positions.copy(),
                     root_rot=states.rotations[:, 0].copy(), ff_ctrl=ff_ctrl,
                     root_wrench=tau[:, :6].copy(), discontinuities=jumps)


def _accelerations(qvel: np.ndarray, jumps: np.ndarray) -> np.ndarray:
    """Backward differences of ``qvel`` (T, 75; zero at frame 0), zero around the teleports
    ``jumps`` (frames t and t + 1)."""
    qacc = np.zeros_like(qvel)
    qacc[1:] = np.diff(qvel, axis=0) * CONTROL_FPS
    for t in jumps:
        qacc[t:t + 2] = 0.0
    return qacc


def _smoothed(qvel: np.ndarray, sigma: float) -> np.ndarray:
    """``qvel`` (T, 75) smoothed over frames by a zero-phase Gaussian of ``sigma`` frames."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(qvel, sigma, axis=0, mode="nearest")


FEEDFORWARD_MODES = ("off", "full", "static")


def feedforward_mode(controller_cfg) -> str:
    """The inverse dynamics a :class:`~kinpoly.simulation.controller.ControllerConfig` reads:
    ``"off"`` (no feed-forward, no share of the root wrench), ``"static"``
    (``static_feedforward``) or ``"full"``."""
    if not (controller_cfg.feedforward or controller_cfg.root_id_gain):
        return "off"
    return "static" if controller_cfg.static_feedforward else "full"


def _inverse_dynamics_ff(mode: str, model, clip, qpos, qvel, qacc, body_pos,
                         data=None) -> tuple[np.ndarray, np.ndarray]:
    """(tau (T, 75), ff_ctrl (T, 69)) of frames ``qpos`` for a feed-forward ``mode``. Static:
    the inverse dynamics at zero velocity and acceleration (gravity, the weight moved onto the
    feet in contact), and no velocity target; it reads no finite differences."""
    if mode not in FEEDFORWARD_MODES:
        raise ValueError(f"feed-forward mode {mode!r}: expected one of {FEEDFORWARD_MODES}")
    if mode == "off":
        return np.zeros_like(qvel), np.zeros((len(qvel), QVEL_DIM - 6))
    contact = foot_contacts(clip, body_pos)
    if mode == "static":
        zero = np.zeros_like(qvel)
        tau = inverse_dynamics(model, qpos, zero, zero, contact, data)
        return tau, _feedforward(tau, zero)
    tau = inverse_dynamics(model, qpos, qvel, qacc, contact, data)
    return tau, _feedforward(tau, qvel)


def _feedforward(tau: np.ndarray, qvel: np.ndarray) -> np.ndarray:
    """PD target offsets (T, 69) that add the hinge torques of ``tau`` (T, 75) on top of tracking
    the reference: a position servo produces kp (ctrl - q) - kd qdot, so adding a torque while
    tracking (q_ref, qdot_ref) shifts the target by (tau + kd qdot_ref) / kp."""
    kp, kd, lim = gain_arrays()
    return ((np.clip(tau[:, 6:], -lim, lim) + kd * qvel[:, 6:]) / kp).astype(np.float64)


class OnlineReference(Reference):
    """A reference written while it is tracked, a few frames ahead of the simulation: the
    dynamics-regulated loop, where a kinematic policy proposes each next target from the
    simulated state. :meth:`write` stores frames and updates exactly the derived arrays
    (velocities, accelerations, body positions, inverse dynamics) that depend on them; a
    frame's velocity looks one frame ahead, so the last written frame repeats the previous
    velocity until its successor is written, as at the end of a clip.

    Build it with :meth:`create` from a clip that carries the body, the scene objects and the
    frame count (its poses are placeholders, typically the first pose repeated). Its
    feed-forward reads raw finite differences: the frames after a written one are not known
    yet, so they cannot be smoothed without a lag.
    """

    @classmethod
    def create(cls, clip: MotionClip, feedforward: str = "full") -> "OnlineReference":
        """``feedforward`` as :func:`prepare_reference` (``"off"`` skips the inverse
        dynamics, most of the cost of :meth:`write`)."""
        ref = prepare_reference(clip, feedforward, smoothing=0.0)
        out = cls(**{f: getattr(ref, f) for f in ref.__dataclass_fields__})
        out._model = humanoid_model(clip.body)
        out._data = mujoco.MjData(out._model)
        out._feedforward = feedforward
        return out

    def resize(self, n: int) -> None:
        """Make the reference ``n`` frames long, for a live stream: longer, with zero frames
        after the old ones (a frame is written before it is read); shorter, the first ``n``
        (later writes stop there, as at the end of a clip)."""
        for f in ("qpos", "qvel", "qacc", "body_pos", "root_rot", "ff_ctrl", "root_wrench"):
            a = getattr(self, f)
            setattr(self, f, a[:n] if n <= len(a) else np.concatenate([a, np.zeros((n - len(a),) + a.shape[1:])]))
        self.discontinuities = self.discontinuities[self.discontinuities < n - 1]

    def write(self, t: int, frames: np.ndarray) -> None:
        """Set reference frames ``t .. t + len(frames) - 1`` (clipped to the clip's end)."""
        from .. import rotations as rot
        from ..humanoid.kinematics import forward_kinematics

        T = self.num_frames
        frames = np.atleast_2d(np.asarray(frames, dtype=np.float64))[:max(0, T - t)]
        if not len(frames):
            return
        if not np.isfinite(frames).all():
            raise ReferenceError(f"{self.name}: target pose at frame {t} contains NaN/inf")
        end = t + len(frames)  # exclusive
        q = frames.copy()
        q[:, 3:7] /= np.linalg.norm(q[:, 3:7], axis=1, keepdims=True)
        self.qpos[t:end] = q
        states = forward_kinematics(q, self.clip.body)
        self.body_pos[t:end] = states.positions
        self.root_rot[t:end] = states.rotations[:, 0]
        # velocities over [i, i+1] for i in [t-1, end-2], the last written frame repeats
        a = max(t - 1, 0)
        w = self.qpos[a:end]
        R = rot.quat_to_matrix(w[:, 3:7])
        fps = self.clip.fps
        self.qvel[a:end, :3] = rot.linear_velocity(w[:, :3], fps)
        self.qvel[a:end, 3:6] = rot.angular_velocity(R, fps, frame="local")
        self.qvel[a:end, 6:] = rot.linear_velocity(w[:, 7:], fps)
        if end - a < 2 and a > 0:
            self.qvel[a] = self.qvel[a - 1]
        b = max(a, 1)
        self.qacc[b:end] = (self.qvel[b:end] - self.qvel[b - 1:end - 1]) * fps
        tau, self.ff_ctrl[a:end] = _inverse_dynamics_ff(self._feedforward, self._model, self.clip,
                                                        self.qpos[a:end], self.qvel[a:end], self.qacc[a:end],
                                                        self.body_pos[a:end], self._data)
        self.root_wrench[a:end] = tau[:, :6]

