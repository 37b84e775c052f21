"""The original Kin-Poly data pickles (SPEC section 4), for users who own them.

One pickle per split, keyed ``"<action>-<take>"`` (e.g. ``"sit-03"``); each take has ``qpos``
(T x 76), ``wbpos`` (T x 72: the 24 bodies' world positions in MuJoCo body order), ``head_pose``,
``obj_pose`` (T x 7 per object) and more, at 30 Hz, Z up, metres, quaternions wxyz.

The original humanoid's hinge conventions (and SMPL-mesh body) differ from ours, so takes are
imported through their body *positions* (``wbpos``), retargeted like any mocap; the object
poses are carried over with the object kind that each action implies.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import BODY_NAMES, PARENTS
from .clip import ACTIONS, MotionClip, ObjectTrack
from .source import MotionFormatError, SourceMotion

OBJECT_OF_ACTION = {"sit": "chair", "push": "box", "avoid": "can", "step": "step"}


def _action_of(key: str) -> str | None:
    head = key.split("-")[0].lower()
    return head if head in ACTIONS else None


def read_kinpoly_pickle(path: str | Path, *, license: str = "", body="fit") -> list[MotionClip]:
    """All takes of an original Kin-Poly pickle as clips (errors name the file and the take)."""
    from .retarget import retarget

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as e:
        raise MotionFormatError(f"{path}: unreadable pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not data:
        raise MotionFormatError(f"{path}: expected a dict of takes keyed '<action>-<take>'")
    clips = []
    for key, take in data.items():
        where = f"{path} take {key!r}"
        if not isinstance(take, dict) or "wbpos" not in take:
            raise MotionFormatError(f"{where}: no 'wbpos' (T x 72 body positions)")
        try:
            wbpos = np.asarray(take["wbpos"], dtype=np.float64)
            obj = take.get("obj_pose")
            obj = None if obj is None else np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise MotionFormatError(f"{where}: wbpos / obj_pose are not numeric arrays ({e})") from None
        if wbpos.ndim != 2 or wbpos.shape[1] != 72:
            raise MotionFormatError(f"{where}: wbpos must be (T, 72), got {wbpos.shape}")
        src = SourceMotion(name=str(key), joint_names=list(BODY_NAMES), parents=np.array(PARENTS),
                           positions=wbpos.reshape(-1, 24, 3), fps=30.0, up_axis="z",
                           source=f"{path}:{key}", license=license, meta={"format": "kinpoly_pickle"})
        try:
            clip = retarget(src, body)
        except MotionFormatError as e:
            raise MotionFormatError(f"{where}: {e}") from None
        action = _action_of(str(key))
        clip.action = action
        if obj is not None and action in OBJECT_OF_ACTION:
            if obj.ndim < 2 or len(obj) != len(wbpos) or obj.size == 0 or obj.size % (7 * len(wbpos)):
                raise MotionFormatError(f"{where}: obj_pose must be (T, 7 x objects) for its {len(wbpos)} "
                                        f"frames, got {obj.shape}")
            obj = obj.reshape(len(wbpos), -1, 7)
            if not np.isfinite(obj).all() or (np.linalg.norm(obj[..., 3:], axis=-1) < 1e-6).any():
                raise MotionFormatError(f"{where}: obj_pose has NaN/inf values or zero quaternions")
            # the clip was grounded: objects move with it
            lift = clip.qpos[0, 2] - wbpos[0, 2]
            for i in range(obj.shape[1]):
                poses = obj[:, i].copy()
                poses[:, 2] += lift
                kind = OBJECT_OF_ACTION[action]
                so = SceneObject(kind=kind, name=f"{kind}{i}" if i else kind, pos=tuple(poses[0, :3]),
                                 quat=tuple(poses[0, 3:]))
                clip.objects.append(ObjectTrack(so, poses[: clip.num_frames]))
        clip.meta["original_key"] = str(key)
        clips.append(clip)
    return clips
