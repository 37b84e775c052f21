"""The training-free controller: PD on the reference plus inverse-dynamics feed-forward, and a
bounded residual root wrench.

At control step t (interval [t, t+1]) the hinge targets are the reference angles of frame
``t + lead`` shifted by the feed-forward offset of :class:`Reference` (inverse-dynamics torque
and the reference velocity, expressed through the PD servo). The root receives a residual
wrench: a PD on the root's position/orientation error to the reference's current frame
(stiffness/damping below) plus ``root_id_gain`` times the root wrench of the inverse dynamics, clipped to the
residual bound by the simulator (run every physics substep by its root servo, :class:`RootPD`;
see ``ControllerConfig.root_pd_rate``). That is what residual force control compensates: the part of
the motion the contacts cannot produce. It needs no checkpoint, gives the baseline, and the
learned policy is a residual on top of it (:mod:`kinpoly.simulation.policy`), so PPO starts
from its success rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..rotations import quat_slerp
from .reference import Reference


@dataclass
class ControllerConfig:
    lead: int = 2  # PD target = reference frame t + lead (measured: 2 beats 0, 1 and 3)
    feedforward: bool = True  # add the inverse-dynamics hinge torque
    # the feed-forward holds the reference pose still against gravity (inverse dynamics at zero
    # velocity and acceleration, the weight on the feet in contact) instead of the motion's full
    # inverse dynamics: no finite differences, so it stays sane on noisy frame-by-frame targets
    static_feedforward: bool = False
    root_id_gain: float = 0.0  # fraction of the inverse-dynamics root wrench applied
    root_kp: float = 6000.0  # N/m, root position error -> force
    root_kd: float = 600.0  # N s/m
    root_kr: float = 1500.0  # N m/rad, root orientation error -> torque
    root_kdr: float = 80.0  # N m s/rad
    # the root PD's position/orientation target is reference frame t + this. 0: the frame the
    # body is in now (the velocity term carries the motion). 1 (before this field existed) pulls
    # a body that is on the reference towards the next frame, a constant push of kp x one
    # frame's displacement, so in steady motion the body ran one frame ahead of the reference
    # (measured on held-out mocap: a run 8 cm ahead, the root closest to frame t+1 on 19 of 26
    # clips); checkpoints trained before it keep 1 (see ``LEGACY_CONTROLLER``). Fractional
    # offsets interpolate between frames (position linearly, orientation by slerp)
    root_target_offset: float = 0
    # where the root PD is evaluated. "substep": every physics substep (450 Hz), on the state of
    # that substep. "control" (before this field existed): once per 30 Hz control step, the
    # wrench held for its 15 substeps; the pelvis, hung between stiff hip and spine servos, has
    # a small effective inertia, so held for 1/30 s the orientation PD overshoots every step:
    # the root torque alternated +-100 N m from one step to the next (a limit cycle at the
    # clip) and a humanoid holding one pose still shuffled its feet (skate 3.3 mm/frame against
    # 0.02; mean residual wrench 33 against 0.9 N / N m; tests/test_simulation.py). A simulation defect, not a
    # controller design choice, so checkpoints trained with it run with the fix too (measured in
    # docs/controller.md: the same or better on every metric but one clip of one checkpoint)
    root_pd_rate: str = "substep"

    def __post_init__(self) -> None:
        if self.root_pd_rate not in ROOT_PD_RATES:  # checked when a config is loaded, not per step
            raise ValueError(f"root_pd_rate {self.root_pd_rate!r}: expected one of {ROOT_PD_RATES}")


# settings of checkpoints whose saved config predates a field (kinpoly.simulation.evaluate reads it)
LEGACY_CONTROLLER = {"root_target_offset": 1}
ROOT_PD_RATES = ("substep", "control")


class RootPD:
    """The root PD of one control step: the target root pose (7: position, quaternion wxyz),
    the reference root velocity (6: linear in the world, angular in the pelvis frame) and the
    gains. With ``root_pd_rate`` "substep" the simulator's root servo (MuJoCo actuators,
    :mod:`kinpoly.simulation.model`) runs it every physics substep; :meth:`wrench` evaluates it
    at one state (the "control" rate, and tests)."""

    def __init__(self, target: np.ndarray, velocity: np.ndarray, kp: float, kd: float, kr: float, kdr: float):
        self.target = np.array(target[:7], dtype=np.float64)
        self.velocity = np.array(velocity[:6], dtype=np.float64)
        self.kp, self.kd, self.kr, self.kdr = float(kp), float(kd), float(kr), float(kdr)

    def wrench(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """kp (p* - p) + kd (v* - v) and kr rot_err + kdr (w* - w) at root state ``qpos[:7]``,
        ``qvel[:6]`` (the torque and ``rot_err`` in the pelvis frame, like ``qvel[3:6]``)."""
        out = np.empty(6)
        out[:3] = self.kp * (self.target[:3] - qpos[:3]) + self.kd * (self.velocity[:3] - qvel[:3])
        mujoco.mju_subQuat(out[3:], self.target[3:7], np.asarray(qpos[3:7], dtype=np.float64))
        out[3:] = self.kr * out[3:] + self.kdr * (self.velocity[3:] - qvel[3:6])
        return out


def root_target(ref: Reference, t: float) -> np.ndarray:
    """The reference root pose (7) at a possibly fractional frame ``t``, clamped to the clip."""
    t = min(max(float(t), 0.0), ref.num_frames - 1.0)
    i = int(np.floor(t))
    f = t - i
    if f == 0.0:
        return ref.qpos[i, :7]
    q0, q1 = ref.qpos[i, :7], ref.qpos[i + 1, :7]
    return np.concatenate([q0[:3] + f * (q1[:3] - q0[:3]), quat_slerp(q0[3:7], q1[3:7], f)])


def baseline_action(ref: Reference, t: int, cfg: ControllerConfig, qpos: np.ndarray,
                    qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray, RootPD | None]:
    """(ctrl (69), root wrench (6, before clipping), root PD) at reference frame ``t`` for the
    humanoid state (``qpos`` 76, ``qvel`` 75). With ``root_pd_rate`` "substep" the root PD is
    returned for the simulator to add every substep; with "control" it is already in the
    wrench (evaluated at this state) and None is returned."""
    tt = min(t + cfg.lead, ref.num_frames - 1)
    ctrl = ref.qpos[tt, 7:].copy()
    if cfg.feedforward:
        ctrl += ref.ff_ctrl[t]
    wrench = ref.root_wrench[t] * cfg.root_id_gain
    pd = None
    if cfg.root_kp or cfg.root_kr:
        pd = RootPD(root_target(ref, t + cfg.root_target_offset), ref.qvel[t],
                    cfg.root_kp, cfg.root_kd, cfg.root_kr, cfg.root_kdr)
        if cfg.root_pd_rate == "control":
            wrench, pd = wrench + pd.wrench(qpos, qvel), None
    return ctrl, wrench, pd
