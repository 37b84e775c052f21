"""The training-free controller: PD on the reference plus inverse-dynamics feed-forward, and a
bounded residual root wrench.

At control step t (interval [t, t+1]) the hinge targets are the reference angles of frame
``t + lead`` shifted by the feed-forward offset of :class:`Reference` (inverse-dynamics torque
and the reference velocity, expressed through the PD servo). The root receives a residual
wrench: a PD on the root's position/orientation error to the reference's current frame
(stiffness/damping below) plus ``root_id_gain`` times the root wrench of the inverse dynamics, clipped to the
residual bound by the simulator. That is what residual force control compensates: the part of
the motion the contacts cannot produce. It needs no checkpoint, gives the baseline, and the
learned policy is a residual on top of it (:mod:`kinpoly.simulation.policy`), so PPO starts
from its success rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

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
    # clips); checkpoints trained before it keep 1 (see ``LEGACY_CONTROLLER``)
    root_target_offset: int = 0


# settings of checkpoints whose saved config predates a field (kinpoly.simulation.evaluate reads it)
LEGACY_CONTROLLER = {"root_target_offset": 1}


def baseline_action(ref: Reference, t: int, cfg: ControllerConfig, qpos: np.ndarray,
                    qvel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ctrl (69), root wrench (6, before clipping)) at reference frame ``t`` for the humanoid
    state (``qpos`` 76, ``qvel`` 75)."""
    tt = min(t + cfg.lead, ref.num_frames - 1)
    ctrl = ref.qpos[tt, 7:].copy()
    if cfg.feedforward:
        ctrl += ref.ff_ctrl[t]
    wrench = ref.root_wrench[t] * cfg.root_id_gain
    if cfg.root_kp or cfg.root_kr:
        target = ref.qpos[min(t + cfg.root_target_offset, ref.num_frames - 1)]
        rot_err = np.empty(3)
        mujoco.mju_subQuat(rot_err, target[3:7], qpos[3:7])  # in the pelvis frame, like qvel[3:6]
        wrench = wrench + np.concatenate([
            cfg.root_kp * (target[:3] - qpos[:3]) + cfg.root_kd * (ref.qvel[t, :3] - qvel[:3]),
            cfg.root_kr * rot_err + cfg.root_kdr * (ref.qvel[t, 3:6] - qvel[3:6])])
    return ctrl, wrench

