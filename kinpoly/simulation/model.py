"""Compiled models per body shape, cached by ``BodyShape.key()`` (and the scene's MJCF).

Every clip carries its own fitted body; simulation builds the MuJoCo model of that body with
the project's :func:`~kinpoly.humanoid.mjcf.build_xml` (PD servos on the 69 hinges, floor,
``implicitfast``, 1/450 s) and reuses it for every clip of the same body. Models are shared and
must not be modified; each simulator owns its own ``MjData`` (and a copy of the model where it
sets the root servo's gains).

**Root servo.** A tracking scene (:func:`scene_model`) adds the residual root wrench as six
MuJoCo actuators after the 69 hinge servos, so that the root PD runs inside MuJoCo's physics
step (every substep, no Python between substeps): ``general`` actuators with a site
transmission from a site at the pelvis origin (``root_servo``) to a reference site on a mocap
body that the simulator puts at the root's target pose each control step. Three act on the
position, against a world-aligned target (``root_target_position``): their length is the
world-frame position error and their force a world-frame force at the pelvis origin. Three act
on the orientation, against the target orientation (``root_target_orientation``): their
length is the rotation vector from the target to the pelvis in the target's frame, their force
a torque in that frame. Each force is ``ctrl + b1 length + b2 velocity`` (``biasprm`` holds
-stiffness, -damping; ``ctrl`` the damping times the target velocity plus any residual),
clipped to ``forcerange``. They are in actuator group :data:`ROOT_SERVO_GROUP`, which the
simulator disables (``opt.disableactuator``) when the root gets no servo.
"""

from __future__ import annotations

import copy
import functools
import xml.etree.ElementTree as ET

import mujoco
import numpy as np

from ..humanoid.mjcf import build_model, build_xml
from ..humanoid.skeleton import BodyShape

_CACHE: dict[tuple, mujoco.MjModel] = {}
MAX_CACHED = 512

ROOT_SERVO = ("root_fx", "root_fy", "root_fz", "root_tx", "root_ty", "root_tz")
ROOT_SERVO_GROUP = 3
ROOT_TARGETS = ("root_target_position", "root_target_orientation")


def scene_model(body: BodyShape, objects=()) -> mujoco.MjModel:
    """The tracking model of ``body`` with the scene ``objects`` (SceneObject) around it and the
    root servo (module docstring). Compiled models are cached by their MJCF (do not modify).
    The humanoid's qpos/qvel come first; each free object (a box) adds 7/6 more; the 69 hinge
    servos are ``ctrl[:69]``, the root servo ``ctrl[69:75]``."""
    objects = tuple(objects)
    if objects:
        return _compile_scene(build_xml(body, objects))
    return _cached(("scene", body.key()), lambda: _compile_scene(build_xml(body)))


def humanoid_model(body: BodyShape) -> mujoco.MjModel:
    """The compiled model of ``body``, hinge servos only, with MuJoCo's contacts disabled
    (cached, do not modify): what inverse dynamics reads.

    Inverse dynamics (:func:`kinpoly.simulation.reference.inverse_dynamics`) solves the ground
    reaction explicitly, as wrenches on the feet in contact. With MuJoCo's soft contacts on,
    ``mj_inverse`` also subtracted the floor's penalty force on every foot below the floor:
    on a kinematic policy's proposals, whose feet dip into it, tens of kN per frame (the root
    wrench of a standing bow 60 kN against 0 on its truth, measured on the 28 test takes), which
    the feed-forward turned into hinge torques."""

    def build() -> mujoco.MjModel:
        m = copy.deepcopy(build_model(body))  # build_model's model is cached and shared
        m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
        return m

    return _cached(("humanoid", body.key()), build)


def body_weight_n(body: BodyShape) -> float:
    """The humanoid's weight (N): its whole mass times gravity. The yardstick of the residual
    root force, which is help from outside the body (SPEC section 2: success must not rely on it)."""
    m = build_model(body)
    return float(m.body_subtreemass[1] * np.linalg.norm(m.opt.gravity))


def _cached(key: tuple, build) -> mujoco.MjModel:
    m = _CACHE.get(key)
    if m is None:
        if len(_CACHE) >= MAX_CACHED:
            _CACHE.pop(next(iter(_CACHE)))
        m = _CACHE[key] = build()
    return m


def _gear(i: int) -> str:
    return " ".join("1" if k == i else "0" for k in range(6))


@functools.lru_cache(maxsize=MAX_CACHED)
def _compile_scene(xml: str) -> mujoco.MjModel:
    mj = ET.fromstring(xml)
    world = mj.find("worldbody")
    pelvis = world.find("body[@name='Pelvis']")
    ET.SubElement(pelvis, "site", name="root_servo", size="0.01", group="5")
    for name in ROOT_TARGETS:  # after every other body: body and joint indices stay as they were
        target = ET.SubElement(world, "body", name=name, mocap="true")
        ET.SubElement(target, "site", name=name, size="0.01", group="5")
    actuators = mj.find("actuator")
    for i, name in enumerate(ROOT_SERVO):  # gains and force range are set by the simulator
        ET.SubElement(actuators, "general", name=name, site="root_servo", refsite=ROOT_TARGETS[i // 3],
                      gear=_gear(i), gainprm="1", biastype="affine", biasprm="0 0 0",
                      ctrllimited="false", forcelimited="true", forcerange="-1 1",
                      group=str(ROOT_SERVO_GROUP))
    return mujoco.MjModel.from_xml_string(ET.tostring(mj, encoding="unicode"))
