"""Joint positions in SMPL's joint order, as text-to-motion and pose-estimation models write them.

HumanML3D's ``new_joints/*.npy``, and the outputs of models trained on it (MDM, T2M-GPT,
MoMask), are ``(T, 22, 3)`` arrays of global joint positions (T2M-GPT's ``pred_xyz`` with a
batch axis first: one clip per batch element). They are in metres, in a Y-up
world, at 20 frames/s, in SMPL's joint order without the two hands. A ``(T, 24, 3)`` array is
taken as SMPL's full order. MDM's ``results.npy`` is a pickled dict: ``motion`` is
``(N, 22, 3, T)`` with each sample's ``lengths`` and ``text``, so it gives one clip per sample,
named ``<file>_<i>``, with its text as the description.

The files store neither frame rate nor up axis. The defaults are HumanML3D's (20 frames/s, Y
up); pass others with ``fps`` / ``up_axis`` (``kinpoly motion import --npy-fps``,
``--up-axis``). HumanML3D's 263-value feature vectors are not joint positions: the error says
how to recover them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..source import MotionFormatError, SourceMotion

HUMANML3D_FPS = 20.0
# SMPL's joints, in its order, by the names kinpoly.motion.joint_names knows (SMPL convention)
SMPL_JOINTS = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
               "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
               "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
               "left_wrist", "right_wrist", "left_hand", "right_hand")
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


def _load(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:  # an object array: MDM's results dict (a pickle, as .p files are)
        pass
    except Exception as e:  # noqa: BLE001 - numpy raises many types for a damaged file
        raise MotionFormatError(f"{path}: unreadable .npy ({type(e).__name__}: {e})") from None
    try:
        data = np.load(path, allow_pickle=True)
    except Exception as e:  # noqa: BLE001
        raise MotionFormatError(f"{path}: unreadable .npy ({type(e).__name__}: {e})") from None
    return data.item() if data.dtype == object and data.shape == () else data


def _motion(path: Path, positions, name: str, fps: float, up_axis: str, license: str,
            meta: dict) -> SourceMotion:
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 3 or x.shape[1] not in (22, 24):
        hint = (" (HumanML3D's 263-value features: recover the joints first, e.g. its recover_from_ric)"
                if x.ndim == 2 and x.shape[1] == 263 else "")
        raise MotionFormatError(f"{path}: expected joint positions (T, 22 or 24, 3) in SMPL's joint order, "
                                f"got an array of shape {x.shape}{hint}")
    J = x.shape[1]
    return SourceMotion(name=name, joint_names=list(SMPL_JOINTS[:J]), parents=np.array(SMPL_PARENTS[:J]),
                        positions=x, fps=fps, up_axis=up_axis, source=str(path), license=license,
                        meta={"format": "joints", "units": "m", **meta})


def read_joint_positions(path: str | Path, *, fps: float | None = None, up_axis: str | None = None,
                         license: str = "", name: str | None = None) -> list[SourceMotion]:
    """The clip(s) of a joint-position ``.npy`` (see the module docstring). Raises
    MotionFormatError naming the file for anything else."""
    path = Path(path)
    fps = float(fps or HUMANML3D_FPS)
    up_axis = up_axis or "y"
    name = name or path.stem
    data = _load(path)
    if isinstance(data, dict):
        if "motion" not in data:
            raise MotionFormatError(f"{path}: a dict without 'motion' (keys: {', '.join(map(str, data))}); "
                                    f"expected joint positions or MDM's results.npy")
        motion = np.asarray(data["motion"])
        if motion.ndim == 3:
            motion = motion[None]
        if motion.ndim != 4:
            raise MotionFormatError(f"{path}: 'motion' must be (N, J, 3, T) as MDM writes it, got {motion.shape}")
        lengths = np.asarray(data.get("lengths", [motion.shape[-1]] * len(motion))).reshape(-1)
        texts = list(data.get("text", [""] * len(motion)))
        if len(lengths) != len(motion):
            raise MotionFormatError(f"{path}: {len(motion)} samples but {len(lengths)} lengths")
        out = []
        for i, (sample, n) in enumerate(zip(motion, lengths)):
            meta = {"description": str(texts[i])} if i < len(texts) and texts[i] else {}
            out.append(_motion(path, np.moveaxis(sample, -1, 0)[: int(n)], f"{name}_{i:02d}", fps, up_axis,
                               license, meta))
        return out
    data = np.asarray(data)
    if data.ndim == 4:  # a batch: (B, T, J, 3) (T2M-GPT's pred_xyz) or MDM's (N, J, 3, T) bare
        if data.shape[-1] != 3 and data.shape[2] == 3:
            data = np.moveaxis(data, -1, 1)
        if len(data) == 1:
            return [_motion(path, data[0], name, fps, up_axis, license, {})]
        return [_motion(path, x, f"{name}_{i:02d}", fps, up_axis, license, {}) for i, x in enumerate(data)]
    return [_motion(path, data, name, fps, up_axis, license, {})]
