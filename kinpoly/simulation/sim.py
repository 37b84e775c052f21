"""The simulation core: the humanoid tracking a :class:`Reference` at 30 Hz in MuJoCo.

**Stable PD.** The 69 hinges are driven by MuJoCo ``position`` actuators (kp, kv = kd, force
range = torque limit; see :mod:`kinpoly.humanoid.mjcf`): ``ctrl`` is the target angle and the
servo applies ``clip(kp (ctrl - q) - kd qdot, +-limit)``. With the ``implicitfast`` integrator
the ``-kd qdot`` term is integrated implicitly (its derivative enters the mass matrix), which is
what stable PD (Tan et al. 2011) achieves in the original code: stiff gains stay stable at the
1/450 s step. A velocity target ``qdot*`` or a feed-forward torque ``tau`` are expressed by
shifting the target: ``ctrl = q* + (tau + kd qdot*) / kp``. No Python runs inside the 15
physics substeps of one control step (``mj_step(m, d, nstep=15)``).

**Residual force.** An optional 6-d wrench on the root (``qfrc_applied[:6]``: world-frame force,
torque in the pelvis frame, as MuJoCo's free joint), clipped to ``residual_clip``; its
magnitude is reported as a separate cost and can be switched off.

**Termination.** After each control step the mean distance of the 24 joint positions to the
reference's exceeds ``fall_distance`` (0.5 m): ``"fell"``. Numerical blow-up (NaN/inf state,
MuJoCo's bad-acceleration warning, or ``|qacc|`` beyond ``max_qacc``) ends the episode as
``"unstable"`` instead of raising; the state is reset to the last good one so that reading it
stays safe. Reaching a teleport of the reference ends it as ``"reference_discontinuity"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..humanoid.skeleton import NUM_BODIES, QPOS_DIM, QVEL_DIM
from .model import scene_model
from .reference import Reference

_BAD_QACC = int(mujoco.mjtWarning.mjWARN_BADQACC)


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
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._datas: dict[int, mujoco.MjData] = {}
        self.t = 0
        self.last_wrench = np.zeros(6)
        self.body_pos = np.zeros((NUM_BODIES, 3))

    # --- episode control ------------------------------------------------------------------
    def load(self, ref: Reference) -> None:
        self.ref = ref
        tracks = ref.clip.objects
        self.model = scene_model(ref.clip.body, [t.object for t in tracks])
        # free objects (a pushable box): their qpos address and reference track
        self._free = [(k, self.model.jnt_qposadr[self.model.joint(f"{t.object.name}_free").id], t)
                      for k, t in enumerate(tracks) if t.object.is_free]
        # static objects never move: their poses once, free ones overwritten per call
        self._static_poses = np.array([np.r_[t.object.pos, t.object.quat] for t in tracks]).reshape(-1, 7)
        key = id(self.model)
        if key not in self._datas:
            if len(self._datas) > 64:
                self._datas.clear()
            self._datas[key] = mujoco.MjData(self.model)
        self.data = self._datas[key]

    def reset(self, frame: int = 0) -> None:
        """Put the humanoid in the reference state of ``frame`` (reference state init)."""
        ref, d = self.ref, self.data
        mujoco.mj_resetData(self.model, d)
        d.qpos[:QPOS_DIM] = ref.qpos[frame]
        d.qvel[:QVEL_DIM] = ref.qvel[frame]
        d.ctrl[:] = ref.qpos[frame, 7:]
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
        d.ctrl[:] = np.asarray(qpos)[7:]
        mujoco.mj_forward(self.model, d)
        if frame is not None:
            self.t = int(frame)
        self._update_bodies()
        self._good = (d.qpos.copy(), d.qvel.copy())

    def _update_bodies(self) -> None:
        self.body_pos = self.data.xpos[1:NUM_BODIES + 1].copy()

    def step(self, ctrl: np.ndarray, wrench: np.ndarray | None = None, root_pd=None) -> str | None:
        """Hold PD targets ``ctrl`` (69) and the root ``wrench`` (6, before clipping) for one
        control step; ``root_pd`` (a :class:`~kinpoly.simulation.controller.RootPD`, optional)
        adds its wrench at every substep's state, the sum clipped there. ``last_wrench`` is the
        applied wrench (its mean over the substeps). Returns the termination reason, or None."""
        m, d, cfg = self.model, self.data, self.cfg
        d.ctrl[:] = ctrl
        warn0 = d.warning[_BAD_QACC].number
        if cfg.residual_force and root_pd is not None:
            base = np.zeros(6) if wrench is None else np.asarray(wrench, dtype=np.float64)
            total, lim = np.zeros(6), cfg.residual_clip
            # views into MjData, written in place every substep (measured: 10-25% of the
            # environment's speed, with the extra foot contacts of a body that no longer shakes)
            pos, quat, vel, w = d.qpos[:3], d.qpos[3:7], d.qvel[:6], d.qfrc_applied[:6]
            force, torque = w[:3], w[3:]
            for _ in range(cfg.substeps):
                root_pd.write(pos, quat, vel, force, torque)
                np.add(w, base, out=w)
                np.clip(w, -lim, lim, out=w)
                np.add(total, w, out=total)
                mujoco.mj_step(m, d)
            self.last_wrench = total / cfg.substeps
        else:  # the wrench held for the control step (none without the residual force)
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

    # --- state ----------------------------------------------------------------------------
    def mean_body_distance(self) -> float:
        return float(np.mean(np.linalg.norm(self.body_pos - self.ref.body_pos[self.t], axis=1)))

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
        return self.data.actuator_force.copy()
