"""The simulation core: the humanoid tracking a :class:`Reference` at 30 Hz in MuJoCo.

**Stable PD.** The 69 hinges are driven by MuJoCo ``position`` actuators (kp, kv = kd, force
range = torque limit; see :mod:`kinpoly.humanoid.mjcf`): ``ctrl`` is the target angle and the
servo applies ``clip(kp (ctrl - q) - kd qdot, +-limit)``. With the ``implicitfast`` integrator
the ``-kd qdot`` term is integrated implicitly (its derivative enters the mass matrix), which is
what stable PD (Tan et al. 2011) achieves in the original code: stiff gains stay stable at the
1/450 s step; each hinge's armature is at least the timestep times its kd
(:func:`~kinpoly.humanoid.mjcf.hinge_armature`), so that a servo at its torque limit, where
MuJoCo no longer integrates its damping implicitly, does not flip between +-limit every
substep. A velocity target ``qdot*`` or a feed-forward torque ``tau`` are expressed by
shifting the target: ``ctrl = q* + (tau + kd qdot*) / kp``. No Python runs inside the 15
physics substeps of one control step (``mj_step(m, d, nstep=15)``).

**Residual force.** An optional 6-d wrench on the root (world-frame force, torque in the pelvis
frame, as MuJoCo's free joint), each component clipped to ``residual_clip``; its magnitude is
reported as a separate cost and can be switched off. The controller's root PD is run by the
root servo of :mod:`kinpoly.simulation.model` (MuJoCo actuators, so every substep stays in C);
a wrench without a PD is held in ``qfrc_applied``.

**Termination.** After each control step the mean distance of the 24 joint positions to the
reference's (or, where set, ``fall_reference``'s: the true clip when the reference tracked is a
degraded copy) exceeds ``fall_distance`` (0.5 m): ``"fell"``. Numerical blow-up (NaN/inf state,
MuJoCo's bad-acceleration warning, or ``|qacc|`` beyond ``max_qacc``) ends the episode as
``"unstable"`` instead of raising; the state is reset to the last good one so that reading it
stays safe. Reaching a teleport of the reference ends it as ``"reference_discontinuity"``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import mujoco
import numpy as np

from ..humanoid.skeleton import NUM_BODIES, NUM_HINGES, QPOS_DIM, QVEL_DIM
from .model import ROOT_SERVO, ROOT_SERVO_GROUP, ROOT_TARGETS, scene_model
from .reference import Reference

_BAD_QACC = int(mujoco.mjtWarning.mjWARN_BADQACC)
_SERVO = slice(NUM_HINGES, NUM_HINGES + len(ROOT_SERVO))  # the root servo's actuators / ctrl
_SERVO_POS, _SERVO_ROT = slice(NUM_HINGES, NUM_HINGES + 3), slice(NUM_HINGES + 3, NUM_HINGES + 6)
_SERVO_OFF = 1 << ROOT_SERVO_GROUP  # opt.disableactuator bit of its group


@dataclass
class SimConfig:
    """Physics settings of tracking (SPEC section 2)."""

    substeps: int = 15  # physics steps per 30 Hz control step (1/450 s each)
    residual_force: bool = True  # apply the root wrench at all
    residual_clip: float = 100.0  # N (force) and N m (torque), per component
    fall_distance: float = 0.5  # m, mean body distance that ends an episode
    max_qacc: float = 1.0e6  # |qacc| beyond this is a blow-up


class TrackingSim:
    """One MuJoCo humanoid following one reference at a time.

    ``t`` is the current reference frame; :meth:`step` advances to ``t + 1``.
    """

    def __init__(self, cfg: SimConfig | None = None):
        self.cfg = cfg or SimConfig()
        self.ref: Reference | None = None
        self.fall_reference: Reference | None = None  # the fall is measured against it instead of ref (same clock)
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._datas: dict[int, mujoco.MjData] = {}
        self.t = 0
        self.last_wrench = np.zeros(6)
        self.body_pos = np.zeros((NUM_BODIES, 3))

    # --- episode control ------------------------------------------------------------------
    @staticmethod
    def compile_scenes(refs) -> None:
        """Compile the scene of every reference now (about 25 ms each, once per process), so
        that a rollout never waits for one."""
        for ref in refs:
            scene_model(ref.clip.body, [t.object for t in ref.clip.objects])

    def load(self, ref: Reference) -> None:
        self.ref, self.fall_reference = ref, None
        tracks = ref.clip.objects
        shared = scene_model(ref.clip.body, [t.object for t in tracks])
        # free objects (a pushable box): their qpos address and reference track
        self._free = [(k, shared.jnt_qposadr[shared.joint(f"{t.object.name}_free").id], t)
                      for k, t in enumerate(tracks) if t.object.is_free]
        # static objects never move: their poses once, free ones overwritten per call
        self._static_poses = np.array([np.r_[t.object.pos, t.object.quat] for t in tracks]).reshape(-1, 7)
        key = id(shared)
        if key not in self._datas:
            if len(self._datas) > 64:
                self._datas.clear()
            model = copy.copy(shared)  # ours: the root servo's gains are written into it
            model.actuator_forcerange[_SERVO] = [-self.cfg.residual_clip, self.cfg.residual_clip]
            targets = [int(model.body_mocapid[model.body(n).id]) for n in ROOT_TARGETS]
            self._datas[key] = (shared, model, mujoco.MjData(model), targets)  # shared: kept alive for its id
        _, self.model, self.data, self._targets = self._datas[key]
        self._servo_gains = None

    def reset(self, frame: int = 0) -> None:
        """Put the humanoid in the reference state of ``frame`` (reference state init)."""
        ref, d = self.ref, self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[:QPOS_DIM] = ref.qpos[frame]
        d.qvel[:QVEL_DIM] = ref.qvel[frame]
        d.ctrl[:NUM_HINGES] = ref.qpos[frame, 7:]
        for _, adr, track in self._free:
            d.qpos[adr:adr + 7] = track.poses[frame]
        mujoco.mj_forward(self.model, d)
        self.t = int(frame)
        self.last_wrench = np.zeros(6)
        self._update_bodies()
        self._good = (d.qpos.copy(), d.qvel.copy())

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray | None = None, frame: int | None = None) -> None:
        """Put the humanoid in an arbitrary state (``qvel`` default zero), e.g. to recover an
        estimate that was lost; objects keep their state. ``frame`` moves the reference clock."""
        d = self.data
        d.qpos[:QPOS_DIM] = qpos
        d.qvel[:QVEL_DIM] = 0.0 if qvel is None else qvel
        d.ctrl[:NUM_HINGES] = np.asarray(qpos)[7:]
        mujoco.mj_forward(self.model, d)
        if frame is not None:
            self.t = int(frame)
        self._update_bodies()
        self._good = (d.qpos.copy(), d.qvel.copy())

    def _update_bodies(self) -> None:
        self.body_pos = self.data.xpos[1:NUM_BODIES + 1].copy()

    def step(self, ctrl: np.ndarray, wrench: np.ndarray | None = None, root_pd=None) -> str | None:
        """Hold PD targets ``ctrl`` (69) and the root ``wrench`` (6, before clipping) for one
        control step. With ``root_pd`` (a :class:`~kinpoly.simulation.controller.RootPD`) the
        root servo runs that PD inside every physics substep, ``wrench`` added and the sum
        clipped there; without, ``wrench`` is held. ``last_wrench`` is the applied wrench (of
        the last substep). Returns the termination reason, or None."""
        m, d, cfg = self.model, self.data, self.cfg
        d.ctrl[:NUM_HINGES] = ctrl
        warn0 = d.warning[_BAD_QACC].number
        if cfg.residual_force and root_pd is not None:
            self._drive_root_servo(root_pd, wrench)
            mujoco.mj_step(m, d, nstep=cfg.substeps)
            self.last_wrench = d.qfrc_actuator[:6].copy()  # the hinge servos act on hinges only
        else:  # the wrench held for the control step (none without the residual force)
            m.opt.disableactuator |= _SERVO_OFF
            w = np.zeros(6) if (wrench is None or not cfg.residual_force) \
                else np.clip(wrench, -cfg.residual_clip, cfg.residual_clip)
            d.qfrc_applied[:6] = w
            self.last_wrench = w
            mujoco.mj_step(m, d, nstep=cfg.substeps)
        self.t += 1
        if (d.warning[_BAD_QACC].number != warn0 or not np.isfinite(d.qpos).all()
                or not np.isfinite(d.qvel).all() or np.abs(d.qacc).max() > cfg.max_qacc):
            d.qpos[:], d.qvel[:] = self._good
            d.qacc[:] = 0.0
            mujoco.mj_kinematics(m, d)
            self._update_bodies()
            return "unstable"
        mujoco.mj_kinematics(m, d)  # body positions of the new state (mj_step leaves the old)
        self._update_bodies()
        self._good = (d.qpos.copy(), d.qvel.copy())
        ref = self.ref
        if ref.discontinuities.size and np.any(ref.discontinuities == self.t - 1):
            return "reference_discontinuity"
        if self.mean_body_distance() > cfg.fall_distance:
            return "fell"
        return None

    def _drive_root_servo(self, pd, wrench: np.ndarray | None) -> None:
        """Point the root servo (:mod:`kinpoly.simulation.model`) at ``pd``'s target with its
        gains; ``wrench`` (world force, torque in the pelvis frame) rides on top, the torque
        rotated into the target's frame, where the servo's torques act."""
        m, d = self.model, self.data
        gains = (pd.kp, pd.kd, pd.kr, pd.kdr)
        if gains != self._servo_gains:
            bias = m.actuator_biasprm
            bias[_SERVO_POS, 1], bias[_SERVO_POS, 2] = -pd.kp, -pd.kd
            bias[_SERVO_ROT, 1], bias[_SERVO_ROT, 2] = -pd.kr, -pd.kdr
            self._servo_gains = gains
        m.opt.disableactuator &= ~_SERVO_OFF
        pos, rot = self._targets
        # the position target keeps the identity orientation MjData starts (and resets) with
        d.mocap_pos[pos] = d.mocap_pos[rot] = pd.target[:3]
        d.mocap_quat[rot] = pd.target[3:7]
        ctrl = d.ctrl[_SERVO]
        np.multiply(pd.velocity[:3], pd.kd, out=ctrl[:3])
        np.multiply(pd.velocity[3:], pd.kdr, out=ctrl[3:])  # reference frame t: the target's
        if wrench is not None:
            ctrl[:3] += wrench[:3]
            to_target = np.empty(4)
            mujoco.mju_negQuat(to_target, pd.target[3:7])
            mujoco.mju_mulQuat(to_target, to_target, d.qpos[3:7])
            torque = np.empty(3)
            mujoco.mju_rotVecQuat(torque, np.asarray(wrench[3:6], dtype=np.float64), to_target)
            ctrl[3:] += torque
        d.qfrc_applied[:6] = 0.0

    # --- state ----------------------------------------------------------------------------
    def mean_body_distance(self) -> float:
        ref = self.ref if self.fall_reference is None else self.fall_reference
        d = self.body_pos - ref.body_pos[self.t]
        return float(np.sqrt(np.einsum("ij,ij->i", d, d)).mean())

    @property
    def qpos(self) -> np.ndarray:
        return self.data.qpos[:QPOS_DIM]

    def object_poses(self) -> np.ndarray:
        """(K, 7) current pose of every scene object of the reference (static ones do not move)."""
        out = self._static_poses.copy()
        for k, adr, _ in self._free:
            out[k] = self.data.qpos[adr:adr + 7]
        return out

    @property
    def qvel(self) -> np.ndarray:
        return self.data.qvel[:QVEL_DIM]

    @property
    def done(self) -> bool:
        """The reference has no next frame."""
        return self.t >= self.ref.num_frames - 1

    def hinge_torques(self) -> np.ndarray:
        """(69) servo torques of the last physics step (N m)."""
        return self.data.actuator_force[:NUM_HINGES].copy()
