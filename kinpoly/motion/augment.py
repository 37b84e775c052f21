"""Motion augmentation: the left-right mirror image of a clip.

The humanoid's world and rest-pose body frames are Z up, X forward, Y left (see
``kinpoly.humanoid.skeleton``), so mirroring is the reflection ``M = diag(1, -1, 1)``:

- positions: ``y -> -y``;
- rotations: ``R -> M R M``. For a rotation about x or z this flips the angle, about y it
  keeps it; as a quaternion (w, x, y, z) -> (w, -x, y, -z);
- hinges: body b takes the angles of its left/right counterpart, with its x and z hinges
  negated (a body's local rotation is the product of its hinge rotations, and
  ``M (A B C) M = (M A M)(M B M)(M C M)``);
- the body: offset of b = M times the offset of b's counterpart (the default body is
  symmetric, so it maps to itself).

The mirror of a physically valid motion is physically valid (gravity and the floor are
symmetric), so it doubles the motion a model learns from at no labelling cost.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import BODY_INDEX, BODY_NAMES, HINGE_ORDER, BodyShape, hinge_index, mirror_name
from .clip import MotionClip, ObjectTrack

_REFLECT = np.array([1.0, -1.0, 1.0])
_QUAT_SIGN = np.array([1.0, -1.0, 1.0, -1.0])


def _hinge_map() -> tuple[np.ndarray, np.ndarray]:
    """(source index, sign) per hinge: mirrored hinges[i] = sign[i] * hinges[source[i]]."""
    src, sign = [], []
    for b in BODY_NAMES[1:]:
        m = mirror_name(b)
        for axis in HINGE_ORDER[b]:
            src.append(hinge_index(m, axis) - 7)
            sign.append(1.0 if axis == "y" else -1.0)
    return np.array(src), np.array(sign)


_HINGE_SRC, _HINGE_SIGN = _hinge_map()
_BODY_SRC = np.array([BODY_INDEX[mirror_name(b)] for b in BODY_NAMES])


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror (..., 7) poses: position + quaternion wxyz."""
    pose = np.asarray(pose, dtype=np.float64)
    return np.concatenate([pose[..., :3] * _REFLECT, pose[..., 3:7] * _QUAT_SIGN], axis=-1)


def mirror_qpos(qpos: np.ndarray) -> np.ndarray:
    """Mirror (..., 76) humanoid qpos (root pose + 69 hinges)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    hinges = qpos[..., 7:][..., _HINGE_SRC] * _HINGE_SIGN
    return np.concatenate([mirror_pose(qpos[..., :7]), hinges], axis=-1)


def mirror_body(body: BodyShape) -> BodyShape:
    return replace(body, offsets=body.offsets[_BODY_SRC] * _REFLECT)


def mirror_clip(clip: MotionClip, name: str | None = None) -> MotionClip:
    """The clip's left-right mirror image, named ``name`` (default ``<name>_mirror``).

    Objects keep their shapes (every object kind is built symmetric about its local XZ plane;
    the chair, for one, faces its local +X) and have their poses mirrored; action labels and intervals are unchanged.
    """
    objects = []
    for track in clip.objects:
        o = track.object
        pose = mirror_pose(np.array([*o.pos, *o.quat]))
        obj = SceneObject(o.kind, o.name, tuple(pose[:3]), tuple(pose[3:]), dict(o.size))
        objects.append(ObjectTrack(obj, mirror_pose(track.poses)))
    meta = {**clip.meta, "mirror_of": clip.name}
    return replace(clip, name=name or f"{clip.name}_mirror", qpos=mirror_qpos(clip.qpos),
                   body=mirror_body(clip.body), objects=objects, meta=meta)
