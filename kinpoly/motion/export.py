"""Export clips for other tools: BVH (Blender, MotionBuilder, ...) and a plain npz.

BVH: the humanoid's 24 joints with their rest offsets, **Y up, centimetres** (what BVH readers
assume by default), root channels ``X/Y/Zposition Zrotation Xrotation Yrotation`` and three
rotation channels per joint (intrinsic Z-X-Y, degrees), frame time 1/fps. End Sites mark the
top of the head and the tips of toes and hands.

npz: ``qpos`` (T, 76), ``positions`` (T, 24, 3) and ``quaternions`` (T, 24, 4, wxyz) of the
bodies in world axes (Z up, m), ``body_names``, ``parents``, ``offsets`` (24, 3) and ``fps``.

AMASS npz: SMPL parameters (``poses`` (T, 72), ``trans``, ``mocap_framerate``, zero ``betas``,
``gender``) for SMPL tools (e.g. ``smplx``: ``global_orient=poses[:, :3]``,
``body_pose=poses[:, 3:]``, ``transl=trans``), the inverse of the AMASS import
(:func:`~kinpoly.motion.smpl.clip_to_smpl`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..humanoid.kinematics import local_rotations
from ..humanoid.skeleton import BODY_INDEX, BODY_NAMES, PARENTS
from .clip import MotionClip, atomic_write_npz
from .formats.bvh import write_bvh
from .smpl import clip_to_smpl

# our Z-up world -> BVH's Y-up world (a proper rotation: x stays, z -> y, y -> -z)
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
_ROT_CHANNELS = ["Zrotation", "Xrotation", "Yrotation"]


def export_bvh(clip: MotionClip, path: str | os.PathLike) -> Path:
    path = Path(path)
    A = Z_UP_TO_Y_UP
    cm = 100.0
    local = A @ local_rotations(clip.qpos) @ A.T  # root entry is its world orientation
    T = clip.num_frames
    euler = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_euler("ZXY", degrees=True).reshape(T, -1, 3)
    euler = np.unwrap(np.radians(euler), axis=0)  # continuous curves in animation editors
    root_pos = clip.qpos[:, :3] @ A.T * cm
    motion = np.concatenate([root_pos, np.degrees(euler).reshape(T, -1)], axis=1)
    offsets = clip.body.offsets @ A.T * cm
    offsets[0] = 0.0
    s = clip.body.scale
    ends = {BODY_INDEX["Head"]: np.array([0.0, 0.0, 0.17]) * s,
            BODY_INDEX["L_Toe"]: np.array([0.05, 0.0, 0.0]) * s,
            BODY_INDEX["R_Toe"]: np.array([0.05, 0.0, 0.0]) * s,
            BODY_INDEX["L_Hand"]: np.array([0.0, 0.08, 0.0]) * s,
            BODY_INDEX["R_Hand"]: np.array([0.0, -0.08, 0.0]) * s}
    channels = [["Xposition", "Yposition", "Zposition"] + _ROT_CHANNELS] + [_ROT_CHANNELS] * (len(BODY_NAMES) - 1)
    write_bvh(path, list(BODY_NAMES), list(PARENTS), offsets, channels, motion, 1.0 / clip.fps,
              end_sites={j: A @ e * cm for j, e in ends.items()})
    return path


def export_npz(clip: MotionClip, path: str | os.PathLike) -> Path:
    path = Path(path)
    st = clip.body_states()
    atomic_write_npz(path, {"qpos": clip.qpos, "positions": st.positions, "quaternions": st.quaternions,
                            "body_names": np.array(BODY_NAMES), "parents": np.array(PARENTS),
                            "offsets": clip.body.offsets, "fps": np.float64(clip.fps)})
    return path


def export_amass(clip: MotionClip, path: str | os.PathLike) -> Path:
    path = Path(path)
    atomic_write_npz(path, clip_to_smpl(clip))
    return path
