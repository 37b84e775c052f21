"""DeepMimic motion clips (JSON ``{"Loop": ..., "Frames": [[...], ...]}``) with their character file.

The character file (DeepMimic ``data/characters/humanoid3d.txt``, JSON) defines the skeleton:
``Skeleton.Joints[i]`` has ``Name``, ``Type`` (none = root, spherical, revolute, fixed, also
prismatic/planar), ``Parent`` (always < i), ``AttachX/Y/Z`` (offset from the parent joint, in
the parent's frame, metres) and ``AttachThetaX/Y/Z`` (a fixed rotation of the joint frame, radians,
``R = Rz Ry Rx``). ``BodyDefs[i]`` is the rigid body attached to joint i: ``Shape`` (sphere, box,
capsule), ``AttachX/Y/Z``, ``AttachThetaX/Y/Z`` and ``Param0..2`` (full sizes: sphere diameter,
box side lengths, capsule diameter and cylinder length along the body's Y axis).

A frame is ``[duration, root position (3), root rotation (4, quaternion w x y z, world),`` then,
for every other joint in ID order, its parameters: spherical 4 (local quaternion wxyz), revolute 1
(angle in radians about the joint's local Z axis), prismatic 1 (translation along local X),
planar 3 (x, y translation, angle about Z), fixed 0]. This is exactly DeepMimic's cKinTree:
``joint_world = parent_world @ Attach @ R(params)``; for the root, ``Attach @ T(pos) @ R(quat)``.

Positions are in metres, world Y up. In the rest pose (all rotations identity) the character
stands upright facing +X with its right side towards +Z, arms and legs straight down (-Y).

Output joints: every joint of the character file, in ID order, at the joint origin: ``root`` is
the pelvis (the frame's root position), ``right_wrist``/``left_wrist`` the wrists (fixed joints),
``right_ankle``/``left_ankle`` the ankles, ``neck`` the base of the head. End sites ``<joint>_end``
are added for each leaf joint with a body: box -> the front-bottom-centre of the box (+X/2, -Y/2
in the body frame), which for the feet is the toe tip on the sole; sphere or capsule -> the
surface point continuing the bone direction (parent joint -> joint): ``neck_end`` = top of the
head, ``*_wrist_end`` = hand tip.
``rotations[t, j]`` = joint j's world frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from kinpoly.motion.source import MotionFormatError, SourceMotion, format_errors, read_text
from kinpoly.rotations import quat_to_matrix

CHARACTER_FILE = "humanoid3d_character.json"
_PARAM_SIZE = {"none": 7, "spherical": 4, "revolute": 1, "prismatic": 1, "planar": 3, "fixed": 0}


def _load_json(path: Path) -> dict:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise MotionFormatError(f"{path}: not valid JSON: {e}") from None


def _attach(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """(3,) offset and (3, 3) rotation of an ``Attach*`` description."""
    off = np.array([d.get("AttachX", 0.0), d.get("AttachY", 0.0), d.get("AttachZ", 0.0)], dtype=np.float64)
    theta = [d.get("AttachThetaX", 0.0), d.get("AttachThetaY", 0.0), d.get("AttachThetaZ", 0.0)]
    return off, Rotation.from_euler("xyz", theta).as_matrix()


def read_deepmimic(path: str | Path, character: str | Path | None = None, *, license: str = "",
                   name: str | None = None) -> SourceMotion:
    """Read a DeepMimic motion clip into a :class:`SourceMotion` (metres, Y up).

    Args:
        path: the motion file (``.txt`` or ``.json``).
        character: the character file; default ``humanoid3d_character.json`` beside the motion.

    ``fps`` is ``1 / duration`` of the first frame, rounded to the nearest integer when within
    0.1 % (0.033332 s -> 30). DeepMimic stores a duration per frame; the last one is usually 0.
    ``meta["loop"]`` is the clip's ``Loop`` value ("wrap" or "none") and ``meta["durations"]``
    the per-frame durations.
    """
    with format_errors(path):
        return _read_deepmimic(path, character, license, name)


def _read_deepmimic(path: str | Path, character: str | Path | None, license: str,
                    name: str | None) -> SourceMotion:
    path = Path(path)
    motion = _load_json(path)
    frames = motion.get("Frames") if isinstance(motion, dict) else None
    if not frames:
        raise MotionFormatError(f"{path}: no 'Frames' in the motion file")
    character = Path(character) if character is not None else path.with_name(CHARACTER_FILE)
    if not character.is_file():
        raise MotionFormatError(f"{path}: character file {character.name} not found beside it; "
                                "pass character=")
    try:
        char = _load_json(character)
    except MotionFormatError as e:
        raise MotionFormatError(f"{path}: bad character file: {e}") from None
    joints = char.get("Skeleton", {}).get("Joints") if isinstance(char, dict) else None
    if not joints:
        raise MotionFormatError(f"{path}: character file {character} has no Skeleton.Joints")
    bodies = {int(b["ID"]): b for b in char.get("BodyDefs", []) if "ID" in b}
    names = [j["Name"] for j in joints]
    parents = np.array([int(j["Parent"]) for j in joints])
    types = [j["Type"] for j in joints]
    if any(t not in _PARAM_SIZE for t in types):
        raise MotionFormatError(f"{path}: character file {character.name} has unsupported joint type(s) "
                                f"{set(types) - set(_PARAM_SIZE)}")
    if parents[0] != -1 or np.any(parents[1:] >= np.arange(1, len(joints))) or np.any(parents[1:] < 0):
        raise MotionFormatError(f"{path}: in character file {character.name}, joint 0 must be the only root "
                                "and parents must precede children")
    width = 1 + 7 + sum(_PARAM_SIZE[t] for t in types[1:])
    lengths = [len(f) if isinstance(f, list) else -1 for f in frames]
    bad = [i for i, n in enumerate(lengths) if n != width]
    if bad:
        raise MotionFormatError(f"{path}: frame {bad[0] + 1} has {lengths[bad[0]]} values, "
                                f"{character.name} needs {width}")
    try:
        data = np.array(frames, dtype=np.float64)
    except (TypeError, ValueError):
        raise MotionFormatError(f"{path}: non-numeric value in Frames") from None
    if not np.isfinite(data).all():
        frame = int(np.argwhere(~np.isfinite(data))[0][0]) + 1
        raise MotionFormatError(f"{path}: frame {frame} has a non-finite value")
    if data[0, 0] <= 0:
        raise MotionFormatError(f"{path}: first frame duration must be positive, got {data[0, 0]}")

    fps = 1.0 / data[0, 0]
    if abs(fps - round(fps)) < 1e-3 * fps:
        fps = float(round(fps))
    T, J = len(data), len(joints)
    pos, rot = np.zeros((T, J, 3)), np.zeros((T, J, 3, 3))
    col = 1
    for j, (jd, typ) in enumerate(zip(joints, types)):
        off, A = _attach(jd)
        par = data[:, col: col + (7 if j == 0 else _PARAM_SIZE[typ])]
        col += par.shape[1]
        trans = np.zeros((T, 3))
        if j == 0:
            trans, local = par[:, :3], quat_to_matrix(par[:, 3:7])
        elif typ == "spherical":
            local = quat_to_matrix(par)
        elif typ in ("revolute", "planar"):
            local = Rotation.from_rotvec(np.outer(par[:, -1], [0, 0, 1])).as_matrix()
            if typ == "planar":  # DeepMimic: A * R * T
                trans = np.einsum("tij,tj->ti", local, np.c_[par[:, :2], np.zeros(T)])
        else:  # fixed, prismatic
            local = np.broadcast_to(np.eye(3), (T, 3, 3))
            if typ == "prismatic":
                trans = np.c_[par[:, :1], np.zeros((T, 2))]
        if j == 0:  # root: world = A * T(pos) * R(quat); DeepMimic zeroes the root's attach point
            pos[:, 0] = trans @ A.T
            rot[:, 0] = A @ local
        else:
            p = parents[j]
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], off + trans @ A.T)
            rot[:, j] = rot[:, p] @ A @ local

    end_sites = {}
    for j in range(J):
        if j in parents or j not in bodies or j == 0:
            continue
        b = bodies[j]
        centre, B = _attach(b)
        size = np.array([b.get(f"Param{k}", 0.0) for k in range(3)], dtype=np.float64)
        off, A = _attach(joints[j])
        bone = A.T @ off  # parent joint -> joint, in the joint's frame
        bone = bone / np.linalg.norm(bone) if np.linalg.norm(bone) > 0 else np.array([0.0, -1.0, 0.0])
        shape = str(b.get("Shape", "")).lower()
        if shape == "box":
            point = centre + B @ (np.array([0.5, -0.5, 0.0]) * size)
        elif shape == "sphere":
            point = centre + 0.5 * size[0] * bone
        elif shape == "capsule":
            axis = B[:, 1] * np.sign(B[:, 1] @ bone or 1.0)
            point = centre + (0.5 * size[1] + 0.5 * size[0]) * axis
        else:
            continue
        end_sites[f"{names[j]}_end"] = pos[:, j] + rot[:, j] @ point

    return SourceMotion(
        name=name or path.stem, joint_names=names, parents=parents, positions=pos, fps=fps,
        up_axis="y", source=str(path), license=license, rotations=rot, end_sites=end_sites,
        meta={"format": "deepmimic", "character": str(character), "loop": motion.get("Loop", ""),
              "durations": data[:, 0].copy(), "joint_types": types, "units": "m"})
