"""Motion augmentation: the left-right mirror image of a clip, and legs whose gait is
degraded the way an estimate's is (shrunken swing, late), for training a tracker that must
walk on imperfect references.

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
from ..humanoid.skeleton import BODY_INDEX, BODY_NAMES, HINGE_ORDER, BodyShape, body_hinges, hinge_index, mirror_name
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


# qpos indices of the legs' hinges: hips, knees, ankles and toes of both sides (24)
LEG_HINGES = [i for s in "LR" for b in ("Hip", "Knee", "Ankle", "Toe") for i in body_hinges(f"{s}_{b}")]


def delayed(x: np.ndarray, shift: int) -> np.ndarray:
    """``x`` (T, ...) delayed by ``shift`` >= 0 frames, its first frame held."""
    if shift < 0:
        raise ValueError(f"a delay must be >= 0 frames, got {shift}")
    shift = min(shift, len(x) - 1) if len(x) else 0
    return np.concatenate([np.repeat(x[:1], shift, axis=0), x[:len(x) - shift]]) if shift else x


def swing_scaled(x: np.ndarray, scale: float, window: int) -> np.ndarray:
    """``x`` (T, J) with its swing about a centred moving average over ``window`` frames (edges
    held) scaled by ``scale``: below 1 it shrinks the swing as a regression to the mean does, the
    slow part of the motion kept."""
    if scale == 1.0:
        return x
    from scipy.ndimage import uniform_filter1d

    mean = uniform_filter1d(x, size=window, axis=0, mode="nearest")
    return mean + scale * (x - mean)


def degraded_legs(qpos: np.ndarray, scale: float, shift: int, window: int = 31) -> np.ndarray:
    """(T, 76) ``qpos`` whose leg hinges (:data:`LEG_HINGES`) are delayed by ``shift`` frames
    and have their swing scaled by ``scale`` (:func:`swing_scaled`); root and upper body kept."""
    out = np.array(qpos, dtype=np.float64, copy=True)
    legs = delayed(np.unwrap(out[:, LEG_HINGES], axis=0), int(shift))
    out[:, LEG_HINGES] = swing_scaled(legs, float(scale), int(window))
    return out
