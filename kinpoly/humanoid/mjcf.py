"""MJCF generator: the humanoid (from a :class:`BodyShape`) plus a world with objects.

The humanoid is the first body in the world so that ``qpos[:76]`` / ``qvel[:75]`` are always
the humanoid's; free objects (a pushable box) follow. Capsules model the limbs and boxes the
feet and toes so that foot contact is flat. Masses follow Winter's segment fractions of the
body mass. One PD servo per hinge (MuJoCo ``position`` actuator with the kp, kd and torque limit of
SPEC section 2): ``ctrl`` is the target hinge angle. With the ``implicitfast`` integrator the
damping term is integrated implicitly, which is what makes stiff PD stable at 450 Hz (the role
stable PD plays in the original) while the step loop stays inside MuJoCo.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import mujoco
import numpy as np

from .scene import SceneObject, object_element
from .skeleton import (BODY_INDEX, BODY_NAMES, HINGE_ORDER, NUM_BODIES, PARENTS, QPOS_DIM, BodyShape,
                       gain_arrays)

TIMESTEP = 1.0 / 450.0
HUMANOID_CONTYPE, HUMANOID_CONAFFINITY = 2, 1
_AXIS_VEC = {"x": "1 0 0", "y": "0 1 0", "z": "0 0 1"}


@dataclass(frozen=True)
class ModelOptions:
    """What goes into a generated model besides the humanoid."""

    floor: bool = True
    room: bool = False  # textured walls around the origin (for head-camera video)
    room_half_size: float = 6.0
    head_camera_fovy: float = 100.0
    timestep: float = TIMESTEP
    armature: float = 0.02  # kg m^2, every hinge's least armature (rotor-like inertia)
    # each hinge's armature is at least this x timestep x its servo's kd (see ``hinge_armature``)
    servo_armature_steps: float = 1.0


def _fmt(v) -> str:
    return " ".join(f"{x:.6g}" for x in np.atleast_1d(v))


def _capsule(body: ET.Element, name: str, a, b, radius: float, mass: float) -> None:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.linalg.norm(b - a) < 1e-4:
        ET.SubElement(body, "geom", name=name, type="sphere", pos=_fmt(a), size=_fmt(radius),
                      mass=f"{mass:.6g}", material="body",
                      contype=str(HUMANOID_CONTYPE), conaffinity=str(HUMANOID_CONAFFINITY))
        return
    ET.SubElement(body, "geom", name=name, type="capsule", fromto=_fmt(np.r_[a, b]),
                  size=_fmt(radius), mass=f"{mass:.6g}", material="body",
                  contype=str(HUMANOID_CONTYPE), conaffinity=str(HUMANOID_CONAFFINITY))


def _box(body: ET.Element, name: str, lo, hi, mass: float) -> None:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    ET.SubElement(body, "geom", name=name, type="box", pos=_fmt((lo + hi) / 2),
                  size=_fmt(np.abs(hi - lo) / 2), mass=f"{mass:.6g}", material="body",
                  contype=str(HUMANOID_CONTYPE), conaffinity=str(HUMANOID_CONAFFINITY))


def _body_geoms(body_el: ET.Element, b: int, shape: BodyShape, masses: np.ndarray) -> None:
    """Add the geom(s) of body ``b``: the segment from its joint towards its child."""
    name, s, off = BODY_NAMES[b], shape.scale, shape.offsets
    m = masses[b]
    child = {BODY_NAMES[PARENTS[c]]: c for c in range(NUM_BODIES - 1, 0, -1)}  # first child
    if name == "Pelvis":
        lh, rh = off[BODY_INDEX["L_Hip"]], off[BODY_INDEX["R_Hip"]]
        _capsule(body_el, "Pelvis_geom", lh * [1, 0.9, 0.5], rh * [1, 0.9, 0.5], 0.085 * s, m)
    elif name in ("Torso", "Spine", "Chest"):
        up = off[child[name]] if name != "Chest" else off[BODY_INDEX["Neck"]] * 0.5
        half, r = {"Torso": (0.07, 0.08), "Spine": (0.075, 0.075), "Chest": (0.085, 0.08)}[name]
        mid = up * 0.5
        _capsule(body_el, f"{name}_geom", mid + [0, half * s, 0], mid - [0, half * s, 0], r * s, m)
    elif name == "Head":
        ET.SubElement(body_el, "geom", name="Head_geom", type="sphere",
                      pos=_fmt(np.array([0.02, 0.0, 0.07]) * s), size=_fmt(0.1 * s),
                      mass=f"{m:.6g}", material="body", contype=str(HUMANOID_CONTYPE),
                      conaffinity=str(HUMANOID_CONAFFINITY))
    elif name.endswith("_Ankle"):
        toe = off[child[name]]
        sole = -shape.ankle_height
        _box(body_el, f"{name}_geom", [-0.05 * s, -0.045 * s, sole],
             [toe[0], 0.045 * s, sole + 0.05 * s], m)
    elif name.endswith("_Toe"):
        ankle_to_toe = off[b]
        sole = -(shape.ankle_height + ankle_to_toe[2])  # sole height relative to the toe joint
        sole = min(sole, -0.005)
        _box(body_el, f"{name}_geom", [0.0, -0.045 * s, sole], [0.05 * s, 0.045 * s, sole + 0.025 * s], m)
    elif name.endswith("_Hand"):
        direction = off[b] / max(np.linalg.norm(off[b]), 1e-6)
        _capsule(body_el, f"{name}_geom", direction * 0.01 * s, direction * 0.08 * s, 0.025 * s, m)
    else:
        radius = {"Hip": 0.065, "Knee": 0.05, "Neck": 0.045, "Thorax": 0.045, "Shoulder": 0.045,
                  "Elbow": 0.035, "Wrist": 0.03}[name.split("_")[-1]]
        _capsule(body_el, f"{name}_geom", np.zeros(3), off[child[name]], radius * s, m)


def hinge_armature(opts: ModelOptions) -> np.ndarray:
    """(69) armature of each hinge in hinge order: ``max(armature, servo_armature_steps x
    timestep x kd)``.

    Why: with ``implicitfast`` a servo's damping is integrated implicitly only while its torque
    is inside the limit; a saturated servo exerts a constant torque, so one substep of it
    changes the hinge velocity by ``h limit / I`` (h the timestep, I the inertia the hinge
    moves), while the velocity band in which the servo is not saturated is only ``2 limit /
    kd`` wide. Where ``h kd / I > 2`` the velocity jumps across the band every substep and the
    torque flips between +limit and -limit (chatter): with the SPEC gains that is every hinge
    that moves a light part (ankles ``h kd / I`` = 5.6-7.7 with a foot's 0.02-0.03 kg m^2,
    knee and hip twist, the arm's twists, toes). Measured on held-out mocap with the shipped
    controller: ankle torques flipped on up to half of all substeps of a dash (0.26-1.9 flips
    per substep over the 69 hinges on a kick, a walk, a run, a dash and a spin; none with this
    armature). An armature of at least ``h kd`` keeps ``h kd / I`` below 1 for any body shape
    and pose; it barely changes how the hinges respond, which the overdamped servos set (time
    constant kd / kp = 0.1 s), and adds 1-9% to the inertia of the heavy hinges (hips, spine)."""
    _, kd, _ = gain_arrays()
    return np.maximum(opts.armature, opts.servo_armature_steps * opts.timestep * kd)


def humanoid_element(shape: BodyShape, opts: ModelOptions) -> tuple[ET.Element, list[str]]:
    """The humanoid body tree as an MJCF ``<body>`` and its hinge names in qpos order."""
    masses = shape.body_masses()
    armature = iter(hinge_armature(opts))
    elements: dict[int, ET.Element] = {}
    hinges: list[str] = []
    root = ET.Element("body", name="Pelvis", pos=_fmt([0, 0, shape.pelvis_height()]))
    ET.SubElement(root, "freejoint", name="root")
    _body_geoms(root, 0, shape, masses)
    elements[0] = root
    for b in range(1, NUM_BODIES):
        name = BODY_NAMES[b]
        el = ET.SubElement(elements[PARENTS[b]], "body", name=name, pos=_fmt(shape.offsets[b]))
        for axis in HINGE_ORDER[name]:
            jn = f"{name}_{axis}"
            ET.SubElement(el, "joint", name=jn, type="hinge", axis=_AXIS_VEC[axis],
                          armature=f"{next(armature):.6g}", limited="false")
            hinges.append(jn)
        _body_geoms(el, b, shape, masses)
        elements[b] = el
    head = elements[BODY_INDEX["Head"]]
    ET.SubElement(head, "camera", name="head_camera", pos=_fmt(shape.eye_offset()),
                  xyaxes="0 -1 0 0 0 1", fovy=f"{opts.head_camera_fovy:.6g}")
    ET.SubElement(head, "site", name="eyes", pos=_fmt(shape.eye_offset()), size="0.01")
    ET.SubElement(root, "camera", name="track", mode="trackcom",
                  pos=_fmt([0.0, -3.5, 0.3]), xyaxes="1 0 0 0 0.3 1")
    return root, hinges


def build_xml(shape: BodyShape | None = None, objects: tuple[SceneObject, ...] | list = (),
              opts: ModelOptions | None = None) -> str:
    """MJCF text for the humanoid standing at the origin plus ``objects``."""
    shape = shape or BodyShape()
    opts = opts or ModelOptions()
    mj = ET.Element("mujoco", model="kinpoly_humanoid")
    ET.SubElement(mj, "compiler", angle="radian", autolimits="true")
    ET.SubElement(mj, "option", timestep=f"{opts.timestep:.10g}", integrator="implicitfast")
    size = ET.SubElement(mj, "visual")
    ET.SubElement(size, "global", offwidth="1920", offheight="1080")
    ET.SubElement(size, "quality", shadowsize="2048")
    asset = ET.SubElement(mj, "asset")
    ET.SubElement(asset, "texture", name="grid", type="2d", builtin="checker", width="512",
                  height="512", rgb1="0.32 0.34 0.38", rgb2="0.42 0.44 0.48", mark="edge",
                  markrgb="0.55 0.57 0.6")
    ET.SubElement(asset, "material", name="floor", texture="grid", texrepeat="8 8", reflectance="0.05")
    ET.SubElement(asset, "texture", name="wall", type="2d", builtin="gradient", width="256",
                  height="256", rgb1="0.75 0.7 0.62", rgb2="0.45 0.42 0.38", mark="random",
                  markrgb="0.2 0.2 0.2", random="0.05")
    ET.SubElement(asset, "material", name="wall", texture="wall", texrepeat="4 2")
    ET.SubElement(asset, "texture", name="sky", type="skybox", builtin="gradient",
                  width="128", height="128", rgb1="0.55 0.65 0.8", rgb2="0.1 0.12 0.15")
    ET.SubElement(asset, "material", name="body", rgba="0.85 0.62 0.45 1")
    ET.SubElement(asset, "material", name="object", rgba="0.45 0.55 0.7 1")
    ET.SubElement(asset, "material", name="box", rgba="0.75 0.5 0.2 1")
    world = ET.SubElement(mj, "worldbody")
    ET.SubElement(world, "light", name="sun", pos="0 0 6", dir="0.2 0.3 -1", directional="true",
                  castshadow="true", diffuse="0.8 0.8 0.8")
    if opts.floor:
        ET.SubElement(world, "geom", name="floor", type="plane", size="0 0 0.1", material="floor",
                      contype="3", conaffinity="3", condim="3", friction="1 0.005 0.0001")
    if opts.room:
        h, wall_h = opts.room_half_size, 3.0
        for i, (pos, hs) in enumerate([((h, 0, wall_h / 2), (0.05, h, wall_h / 2)),
                                        ((-h, 0, wall_h / 2), (0.05, h, wall_h / 2)),
                                        ((0, h, wall_h / 2), (h, 0.05, wall_h / 2)),
                                        ((0, -h, wall_h / 2), (h, 0.05, wall_h / 2))]):
            ET.SubElement(world, "geom", name=f"wall{i}", type="box", pos=_fmt(pos), size=_fmt(hs),
                          material="wall", contype="3", conaffinity="3")
    humanoid, hinges = humanoid_element(shape, opts)
    world.append(humanoid)
    for obj in objects:
        world.append(object_element(obj))
    actuators = ET.SubElement(mj, "actuator")
    for jn, kp, kd, lim in zip(hinges, *gain_arrays()):
        ET.SubElement(actuators, "position", name=jn, joint=jn, kp=f"{kp:.6g}", kv=f"{kd:.6g}",
                      forcerange=f"{-lim:.6g} {lim:.6g}", ctrllimited="false")
    ET.indent(mj)
    return ET.tostring(mj, encoding="unicode")


@functools.lru_cache(maxsize=512)  # one humanoid (and scene) per body shape of a dataset
def _compile(xml: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(xml)


def build_model(shape: BodyShape | None = None, objects: tuple[SceneObject, ...] | list = (),
                opts: ModelOptions | None = None) -> mujoco.MjModel:
    """Compile the model (cached by its XML; the returned model must not be modified)."""
    return _compile(build_xml(shape, tuple(objects), opts))


def rest_qpos(shape: BodyShape | None = None) -> np.ndarray:
    """Humanoid qpos (76,) standing in the rest T-pose at the origin, facing +X."""
    shape = shape or BodyShape()
    q = np.zeros(7 + 69)
    q[2] = shape.pelvis_height()
    q[3] = 1.0
    return q


class ScenePoser:
    """Puts a compiled scene (:func:`build_model` of a body and ``objects``) into one frame.

    ``pose(data, qpos, object_poses)`` sets the humanoid's ``qpos`` (76,) and, given
    ``object_poses`` (n_objects, 7: position + wxyz), each object: a free object through its
    joint, a static one by moving its body in the *model* (so the model must be a private copy,
    not :func:`build_model`'s shared one). Zero quaternions become the identity. Kinematics are
    not recomputed: call ``mj_kinematics`` (or ``mj_forward``) after it.
    """

    def __init__(self, model: mujoco.MjModel, objects: tuple[SceneObject, ...] | list = ()):
        self.model = model
        self.objects = list(objects)
        self._body_ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, o.name) for o in self.objects]
        self._free_adr = [int(model.jnt_qposadr[model.joint(f"{o.name}_free").id]) if o.is_free else None
                          for o in self.objects]

    def pose(self, data: mujoco.MjData, qpos: np.ndarray, object_poses: np.ndarray | None = None) -> None:
        qpos = np.asarray(qpos, dtype=np.float64)
        if qpos.shape != (QPOS_DIM,):
            raise ValueError(f"qpos must have shape ({QPOS_DIM},), got {qpos.shape}")
        data.qpos[:QPOS_DIM] = qpos
        if object_poses is None or not self.objects:
            return
        poses = np.asarray(object_poses, dtype=np.float64).reshape(len(self.objects), 7)
        for pose, adr, bid in zip(poses, self._free_adr, self._body_ids):
            q = pose[3:7]
            n = np.linalg.norm(q)
            q = q / n if n > 1e-9 else np.array([1.0, 0.0, 0.0, 0.0])
            if adr is not None:
                data.qpos[adr:adr + 3] = pose[:3]
                data.qpos[adr + 3:adr + 7] = q
            elif bid >= 0:
                self.model.body_pos[bid] = pose[:3]
                self.model.body_quat[bid] = q
