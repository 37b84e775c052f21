"""Retargeting: any source skeleton's joint trajectories -> humanoid ``qpos`` at 30 Hz.

Steps (all vectorised over frames):

0. **Leading frames.** A first frame the motion jumps out of (the T-pose frame that CMU BVH
   conversions start with) is left out: :func:`leading_pose_jumps`.
1. **Axes.** Convert the file's world to ours (Z up, metres).
2. **Joint map.** :func:`kinpoly.motion.joint_names.map_joints` pairs humanoid bodies with
   source joints by name.
3. **Body.** ``body="fit"`` (default) fits the humanoid's rest offsets to the source skeleton:
   the rigid parts (pelvis -> hips, pelvis -> chest, chest -> neck/collars/shoulders) are
   measured in the source's own pelvis and chest frames, limb and neck segments take the
   source's bone lengths, and the height follows. ``body=BodyShape(...)`` keeps a given body
   and instead scales the source uniformly to it (by leg + trunk length).
4. **Rotations.** Pelvis and chest orientations come from frames spanned by their child
   joints (hips, shoulders; the pelvis's turned onto the spine where a rig's hips sit level
   with its root joint, as LAFAN1's do); every other body takes the smallest rotation ("swing") from its
   parent's orientation that points it at its next mapped joint, and limbs get their twist
   from the plane of the bend (knee, elbow, foot), so knees bend forward and feet stay flat.
   The spine's bend is spread over its three bodies.
5. **Euler angles.** Local rotations become hinge angles, choosing for each frame the
   one of the two equivalent solutions closest to the previous frame and unwrapping 2*pi, so
   that angles stay continuous through +-90 degrees (deep knee bends) for a PD controller.
6. **Resample** to 30 Hz (root position linearly, every rotation by slerp), bend each toe up
   on the frames where its rigid tip would dig below the lowest level the feet reach
   (:func:`flex_toes`: sources rarely have a joint below the toe to aim it at), and put the
   lowest sole point of the clip on the floor (z = 0).
7. **Error.** Mean and max distance (mm) between the humanoid's and the source's mapped
   joints, after scaling, at the output frames: the clip's ``retarget_error_mm``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import rotations as rot
from ..humanoid.kinematics import forward_kinematics, hinge_angles
from ..humanoid.skeleton import (BODY_INDEX, BODY_NAMES, NUM_BODIES, PARENTS, BodyShape, default_offsets,
                                 hinge_index)
from .clip import MotionClip
from .joint_names import map_joints
from .source import MotionFormatError, SourceMotion

_I = BODY_INDEX
_CHILDREN = {b: [c for c in range(NUM_BODIES) if PARENTS[c] == b] for b in range(NUM_BODIES)}
_SPINE = ("Torso", "Spine", "Chest")
# Twist from the bend plane: body -> (second segment (from, to), bend normal in rest frame).
# The bend normal is  normalize(first_segment x second_segment)  in the body's rest frame.
# The shank has none: it flexes about the thigh's axis (see solve_rotations), and the foot is
# too often nearly in line with it (pointed toes) to define a plane.
_BEND = {
    "L_Hip": (("L_Knee", "L_Ankle"), (0, 1, 0)), "R_Hip": (("R_Knee", "R_Ankle"), (0, 1, 0)),
    "L_Ankle": (("L_Ankle", "L_Knee"), (0, -1, 0)), "R_Ankle": (("R_Ankle", "R_Knee"), (0, -1, 0)),
    "L_Shoulder": (("L_Elbow", "L_Wrist"), (0, 0, -1)), "R_Shoulder": (("R_Elbow", "R_Wrist"), (0, 0, 1)),
}
_MIN_BEND = np.sin(np.radians(25.0))
SPINE_OFF_UP = np.radians(60.0)  # see _hips_up_off_spine
LEAD_JUMP_SPEED = 8.0  # m/s, mean over joints: see leading_pose_jumps
MIN_SPAN = 0.02  # m: a left/right joint pair closer than this gives no lateral axis
FIT_HEIGHT_RANGE = (0.7, 2.5)  # m: a fitted body outside it means the file's units were misread
TOE_CLEARANCE = 0.009  # default toe joint height above the sole, fraction of height  # below this bend the twist blends back to the swing


@dataclass(frozen=True)
class RetargetOptions:
    fps: float = 30.0
    ground: bool = True
    mass: float | None = None  # fitted body mass; default scales 70 kg with height squared


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _frame(up: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Rotation whose columns are (forward, left, up) built from an up and a left vector."""
    z = _unit(up)
    y = _unit(lateral - np.sum(lateral * z, axis=-1, keepdims=True) * z)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def _to_z_up(x: np.ndarray, up_axis: str) -> np.ndarray:
    if up_axis == "z":
        return x
    return np.stack([x[..., 0], -x[..., 2], x[..., 1]], axis=-1)  # +90 deg about X: y -> z


class _Targets:
    """Mapped source positions, Z up, indexed by humanoid body name."""

    def __init__(self, source: SourceMotion, mapping: dict[str, str], frames: np.ndarray):
        self.pos: dict[str, np.ndarray] = {}
        for body, joint in mapping.items():
            x = source.end_sites[joint] if joint in source.end_sites else \
                source.positions[:, source.joint_index(joint)]
            self.pos[body] = _to_z_up(np.asarray(x, dtype=np.float64)[frames], source.up_axis)

    def __contains__(self, body: str) -> bool:
        return body in self.pos

    def __getitem__(self, body: str) -> np.ndarray:
        return self.pos[body]

    def scale(self, s: float) -> None:
        self.pos = {k: v * s for k, v in self.pos.items()}


def _spine_top(t: _Targets) -> str:
    return next(b for b in ("Chest", "Neck", "Head") if b in t)


def _pelvis_up(pos, use_hips: bool, top: str) -> np.ndarray:
    if use_hips:  # pelvis above the hip line: a frame rigid with the pelvis
        return pos["Pelvis"] - 0.5 * (pos["L_Hip"] + pos["R_Hip"])
    return pos[top] - pos["Pelvis"]  # pelvis on the hip line: fall back on the spine


def _spine_lean(F: np.ndarray, pos, top: str) -> np.ndarray:
    """Angle (rad) of the spine (pelvis -> ``top``) from frame F's up, about F's left axis."""
    spine = np.einsum("...ji,...j->...i", F, pos[top] - pos["Pelvis"])
    return np.arctan2(spine[..., 0], spine[..., 2])


def _pelvis_frame(pos, use_hips: bool, top: str, onto_spine: bool = False) -> np.ndarray:
    """Pelvis orientation (columns forward, left, up) from the hips and the pelvis joint, or
    from the spine when the pelvis joint is on the hip line. ``onto_spine`` (see
    :func:`_hips_up_off_spine`) turns it about the hips' axis onto the spine's median direction."""
    F = _frame(_pelvis_up(pos, use_hips, top), pos["L_Hip"] - pos["R_Hip"])
    if not onto_spine:
        return F
    lean = np.median(_spine_lean(F, pos, top))
    c, s = np.cos(lean), np.sin(lean)
    return F @ np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _hips_up_off_spine(t: "_Targets", use_hips: bool, top: str) -> bool:
    """True if the three-point pelvis frame's up is not the body's up: the spine leans more than
    SPINE_OFF_UP from it even in its most upright frames. Its up is where the pelvis joint sits
    off the hip line, which some rigs put level with the hips, behind or in front (LAFAN1: 1.9 cm
    in front, a 90 degree lean); in the 192 shared clips the lean is at most 33 degrees there.
    Decided on the source alone, so that the source and the rest skeleton use the same rule."""
    F = _pelvis_frame(t, use_hips, top)
    return use_hips and float(np.percentile(np.abs(_spine_lean(F, t, top)), 5)) > SPINE_OFF_UP


def _hips_span_pelvis(t: "_Targets", min_off: float = 0.01) -> bool:
    """True if the pelvis joint sits clearly off the hip line (by ``min_off``: 1 cm for noisy
    mocap), so the pelvis frame can be taken from the three points alone, which move rigidly
    together."""
    lateral = _unit(t["L_Hip"] - t["R_Hip"])
    up = _pelvis_up(t, True, "")
    off_line = up - np.sum(up * lateral, -1, keepdims=True) * lateral
    return bool(np.median(np.linalg.norm(off_line, axis=-1)) > min_off)


def _chest_pair(t: _Targets) -> tuple[str, str] | None:
    """The left/right joints that give the chest its lateral axis: the collars, or the shoulders
    where a rig has no collars or puts both at the spine (one point, no axis)."""
    for side in ("Thorax", "Shoulder"):
        pair = f"L_{side}", f"R_{side}"
        if pair[0] in t and pair[1] in t and np.median(np.linalg.norm(t[pair[0]] - t[pair[1]], axis=-1)) > MIN_SPAN:
            return pair
    return None


def _chest_frame(pos, chest: str, top: str, pair: tuple[str, str]) -> np.ndarray:
    return _frame(pos[top] - pos[chest], pos[pair[0]] - pos[pair[1]])


# --- body fitting --------------------------------------------------------------------------
def _chain(ancestor: int, body: int) -> list[int]:
    """Bodies from just below ``ancestor`` down to ``body`` (inclusive)."""
    out = [body]
    while PARENTS[out[-1]] != ancestor:
        out.append(PARENTS[out[-1]])
        if out[-1] < 0:
            raise ValueError("not an ancestor")
    return out[::-1]


def _mapped_ancestor(body: int, mapped: set[int]) -> int:
    a = PARENTS[body]
    while a not in mapped:
        a = PARENTS[a]
    return a


def _set_chain(offsets: np.ndarray, chain: list[int], vector: np.ndarray) -> None:
    """Rotate and scale the default offsets of ``chain`` so that they add up to ``vector``."""
    total = offsets[chain].sum(axis=0)
    R = rot.rotation_between(total, vector)
    offsets[chain] = (offsets[chain] @ R.T) * (np.linalg.norm(vector) / max(np.linalg.norm(total), 1e-9))


def _set_chain_length(offsets: np.ndarray, chain: list[int], length: float) -> None:
    total = np.linalg.norm(offsets[chain].sum(axis=0))
    offsets[chain] *= length / max(total, 1e-9)


def fit_body(t: _Targets, mass: float | None = None) -> BodyShape:
    """Humanoid body whose rest skeleton matches the source's bone lengths and rigid parts.
    Raises MotionFormatError if that body's height is outside ``FIT_HEIGHT_RANGE`` (a file whose
    length unit was misread)."""
    mapped = {_I[b] for b in t.pos}
    leg = np.median(np.linalg.norm(t["L_Knee"] - t["L_Hip"], axis=-1)
                    + np.linalg.norm(t["L_Ankle"] - t["L_Knee"], axis=-1))
    default = default_offsets(1.75)
    s = leg / np.linalg.norm(default[_I["L_Knee"]] + default[_I["L_Ankle"]])
    off = default * s
    top = _spine_top(t)
    use_hips = _hips_span_pelvis(t)
    Fp = _pelvis_frame(t, use_hips, top, _hips_up_off_spine(t, use_hips, top))
    in_pelvis = lambda b: np.mean(np.einsum("tji,tj->ti", Fp, t[b] - t["Pelvis"]), axis=0)  # noqa: E731
    for b in ("L_Hip", "R_Hip"):
        off[_I[b]] = in_pelvis(b)
    anchor, done = "Pelvis", set()
    for m in [b for b in _SPINE if b in t] or [top]:  # spine segments, in the pelvis frame
        rel = in_pelvis(m) - (in_pelvis(anchor) if anchor != "Pelvis" else 0.0)
        chain = _chain(_I[anchor], _I[m])
        dist = np.linalg.norm(t[m] - t[anchor], axis=-1)
        # direction from the mean vector; length from the distances (the mean of a swinging
        # vector is shorter), and with unmapped joints inside, long enough to reach the farthest
        rel = _unit(rel) * (np.percentile(dist, 99) if len(chain) > 1 else np.median(dist))
        _set_chain(off, chain, rel)
        anchor = m
        done.add(_I[m])
    pair = _chest_pair(t)
    if "Chest" in t and pair is not None and ("Neck" in t or "Head" in t):
        up = "Neck" if "Neck" in t else "Head"
        Fc = _chest_frame(t, "Chest", up, pair)
        in_chest = lambda b: np.mean(np.einsum("tji,tj->ti", Fc, t[b] - t["Chest"]), axis=0)  # noqa: E731
        _set_chain(off, _chain(_I["Chest"], _I[up]), in_chest(up))
        for side in "LR":
            sh = f"{side}_Shoulder"
            if sh in t:
                _set_chain(off, _chain(_I["Chest"], _I[sh]), in_chest(sh))
                if f"{side}_Thorax" in t:  # keep the measured collar point, shoulder length only
                    off[_I[f"{side}_Thorax"]] = in_chest(f"{side}_Thorax")
                    off[_I[sh]] = default[_I[sh]] * (np.median(np.linalg.norm(
                        t[sh] - t[f"{side}_Thorax"], axis=-1)) / np.linalg.norm(default[_I[sh]]))
        done |= {_I[up], _I["L_Shoulder"], _I["R_Shoulder"], _I["L_Thorax"], _I["R_Thorax"]}
    done |= {_I["L_Hip"], _I["R_Hip"]}
    for b in sorted(mapped - done - {0}):
        a = _mapped_ancestor(b, mapped)
        if a == 0 and b in (_I["Chest"], _I["Neck"], _I["Head"]):
            continue
        length = np.median(np.linalg.norm(t[BODY_NAMES[b]] - t[BODY_NAMES[a]], axis=-1))
        if BODY_NAMES[b].endswith("_Thorax") and BODY_NAMES[a] in ("Pelvis", *_SPINE):
            # a collar hung from the spine without a chest frame (mostly: no chest joint): its
            # direction as measured in the pelvis frame, as the spine's segments are (the
            # default's points off to the side)
            rel = in_pelvis(BODY_NAMES[b]) - (in_pelvis(BODY_NAMES[a]) if a else 0.0)
            _set_chain(off, _chain(a, b), _unit(rel) * length)
            continue
        _set_chain_length(off, _chain(a, b), length)
    # feet: in stance (ankle near its lowest) the foot is flat, so the ankle -> toe vector then
    # gives the toe offset in the foot's rest frame, and the ankle's height above the sole
    drops = []
    for side in "LR":
        ankle, toe = f"{side}_Ankle", f"{side}_Toe"
        if ankle in t and toe in t:
            z = t[ankle][:, 2]
            stance = z <= np.percentile(z, 10) + 0.01
            v = t[toe][stance] - t[ankle][stance]
            horiz, drop = np.median(np.linalg.norm(v[:, :2], axis=-1)), np.median(-v[:, 2])
            off[_I[toe]] = [horiz, 0.0, -drop]
            drops.append(drop)
    # symmetrise left/right: mean lengths, mirrored directions
    for b, name in enumerate(BODY_NAMES):
        if name.startswith("L_"):
            r = _I["R_" + name[2:]]
            mean = 0.5 * (off[b] + off[r] * [1, -1, 1])
            off[b], off[r] = mean, mean * [1, -1, 1]
    # height: the Head joint sits at 0.9 H, the ankle at ANKLE_HEIGHT_FRACTION * H
    rest = np.zeros((NUM_BODIES, 3))
    for b in range(1, NUM_BODIES):
        rest[b] = rest[PARENTS[b]] + off[b]
    head_above_ankle = rest[_I["Head"], 2] - rest[_I["L_Ankle"], 2]
    height = float(head_above_ankle / (0.9 - 0.039))
    if not FIT_HEIGHT_RANGE[0] <= height <= FIT_HEIGHT_RANGE[1]:  # also NaN
        raise MotionFormatError(f"the source skeleton is {height:.3g} m tall, not a person's "
                                f"{FIT_HEIGHT_RANGE[0]}-{FIT_HEIGHT_RANGE[1]} m")
    # the toe joint sits TOE_CLEARANCE * height above the sole (as in the default body)
    ankle_height = float(np.mean(drops)) + TOE_CLEARANCE * height if drops else None
    return BodyShape(height=height, mass=mass or 70.0 * (height / 1.75) ** 2, offsets=off,
                     ankle_height=ankle_height)


# --- rotations -------------------------------------------------------------------------------
def _swing(G_parent: np.ndarray, rest_dir: np.ndarray, target_dir: np.ndarray) -> np.ndarray:
    cur = G_parent @ rest_dir
    return rot.rotation_between(cur, target_dir) @ G_parent


def _twist_to_bend(G: np.ndarray, first: np.ndarray, second: np.ndarray, normal_rest,
                   modulo_half_turn: bool = False) -> np.ndarray:
    """Twist G about the unit ``first`` segment so its rest bend normal matches the bend plane."""
    n = np.cross(_unit(first), _unit(second))
    strength = np.linalg.norm(n, axis=-1)
    axis = _unit(first)
    cur = G @ np.asarray(normal_rest, dtype=float)
    cur = _unit(cur - np.sum(cur * axis, -1, keepdims=True) * axis)
    want = _unit(n - np.sum(n * axis, -1, keepdims=True) * axis)
    if modulo_half_turn:
        # a knee bent the "wrong" way (hyper-extension, a glitch) must not spin the thigh half a
        # turn: take the plane's normal on the side nearer the swing's (twist modulo 180 deg)
        want = np.where(np.sum(cur * want, -1, keepdims=True) < 0, -want, want)
    angle = np.arctan2(np.sum(np.cross(cur, want) * axis, -1), np.sum(cur * want, -1))
    weight = np.clip(strength / _MIN_BEND, 0.0, 1.0)
    return rot.rotvec_to_matrix(axis * (angle * weight)[:, None]) @ G


def _two_bone(root: np.ndarray, target: np.ndarray, pole: np.ndarray, a: float, b: float) -> np.ndarray:
    """Middle joint of a two-segment chain (lengths a, b) from ``root`` reaching ``target``,
    bending towards ``pole``; out-of-reach targets give the straight (or folded) chain."""
    v = target - root
    d = np.clip(np.linalg.norm(v, axis=-1), abs(a - b) + 1e-6, a + b - 1e-6)
    u = _unit(v)
    w = pole - root
    w = w - np.sum(w * u, -1, keepdims=True) * u
    cos_a = np.clip((a * a + d * d - b * b) / (2 * a * d), -1.0, 1.0)[:, None]
    return root + a * (cos_a * u + np.sqrt(1 - cos_a ** 2) * _unit(w))


def solve_rotations(t: _Targets, shape: BodyShape) -> tuple[np.ndarray, np.ndarray]:
    """Global body orientations (T, 24, 3, 3) and root positions (T, 3) for the targets."""
    T = len(t["Pelvis"])
    rest = shape.rest_positions()
    rest_d = {b: rest[b] for b in range(NUM_BODIES)}
    G = np.zeros((T, NUM_BODIES, 3, 3))
    P = np.zeros((T, NUM_BODIES, 3))  # positions as placed so far
    rest_named = {n: rest[i] for i, n in enumerate(BODY_NAMES)}
    top = _spine_top(t)
    use_hips = _hips_span_pelvis(t)
    # a given body whose hips sit level with its pelvis has no up from the three points: its
    # frame then follows its spine, and the source's is turned onto the source's spine to match
    rest_use_hips = use_hips and _hips_span_pelvis(rest_named, 1e-4)
    onto_spine = use_hips and (_hips_up_off_spine(t, use_hips, top) or not rest_use_hips)
    G[:, 0] = (_pelvis_frame(t, use_hips, top, onto_spine)
               @ _pelvis_frame(rest_named, rest_use_hips, top, onto_spine and rest_use_hips).T)
    P[:, 0] = t["Pelvis"]
    mapped = {_I[b] for b in t.pos}
    pair = _chest_pair(t)
    chest_up = "Neck" if "Neck" in t else ("Head" if "Head" in t else None)
    G_chest = None
    if "Chest" in t and pair is not None and chest_up is not None:
        Fc_rest = _chest_frame(rest_named, "Chest", chest_up, pair)
        G_chest = _chest_frame(t, "Chest", chest_up, pair) @ Fc_rest.T

    def aim(b: int) -> int | None:
        """Next mapped body down the main chain from b (None if none)."""
        stack = list(_CHILDREN[b])
        while stack:
            c = stack.pop(0)
            if c in mapped:
                return c
            stack = _CHILDREN[c][:1] + stack
        return None

    spread_spine = G_chest is not None and "Torso" not in t and "Spine" not in t
    for b in range(1, NUM_BODIES):
        name = BODY_NAMES[b]
        p = PARENTS[b]
        P[:, b] = P[:, p] + G[:, p] @ shape.offsets[b]
        if name == "Chest" and G_chest is not None:
            G[:, b] = G_chest
            continue
        if name in _SPINE and spread_spine:
            if name == "Torso":  # spread pelvis -> chest rotation over the three spine joints
                rel = rot.matrix_to_rotvec(np.swapaxes(G[:, 0], -1, -2) @ G_chest)
                parts = [G[:, 0] @ rot.rotvec_to_matrix(rel * k / 3.0) for k in (1, 2)]
                # two-bone IK: put the Spine joint where both segments reach the chest target,
                # on the side of the spread guess, then swing each segment onto it
                o_s, o_c = shape.offsets[_I["Spine"]], shape.offsets[_I["Chest"]]
                guess = P[:, b] + parts[0] @ o_s
                mid = _two_bone(P[:, b], t["Chest"], guess, np.linalg.norm(o_s), np.linalg.norm(o_c))
                G[:, b] = _swing(parts[0], o_s, mid - P[:, b])
                G[:, _I["Spine"]] = _swing(parts[1], o_c, t["Chest"] - mid)
            continue
        target = aim(b)
        if target is None:
            G[:, b] = G[:, p]
            continue
        rest_dir = rest_d[target] - rest_d[b]
        want = t[BODY_NAMES[target]] - P[:, b]
        start = G[:, p]
        parent = BODY_NAMES[p]
        if parent in _BEND and _BEND[parent][0][0] == name:
            # knee / elbow: first rotate about the parent's flexion axis (whose twist was set from
            # this very bend), so deep flexion never goes through an ill-defined 150+ deg swing
            axis = start @ np.asarray(_BEND[parent][1], dtype=float)
            cur = start @ rest_dir
            tp = want - np.sum(want * axis, -1, keepdims=True) * axis
            angle = np.arctan2(np.sum(axis * np.cross(cur, tp), -1), np.sum(cur * tp, -1))
            start = rot.rotvec_to_matrix(axis * angle[:, None]) @ start
        G[:, b] = _swing(start, rest_dir, want)
        if name in _BEND:
            (a, c), normal = _BEND[name]
            if a in t and c in t:
                G[:, b] = _twist_to_bend(G[:, b], want, t[c] - t[a], normal, name.endswith(("_Hip", "_Ankle")))
    return G, t["Pelvis"]


def _sole_corners(shape: BodyShape, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Sole corners of one side's foot box (in the ankle body's frame) and toe box (in the toe
    body's frame), as the humanoid's geoms place them (:mod:`kinpoly.humanoid.mjcf`)."""
    s = shape.scale
    toe = shape.offsets[_I[f"{side}_Toe"]]
    foot = np.array([[x, y, -shape.ankle_height] for x in (-0.05 * s, toe[0]) for y in (-0.045 * s, 0.045 * s)])
    toe_sole = min(-(shape.ankle_height + toe[2]), -0.005)
    tip = np.array([[x, y, toe_sole] for x in (0.0, 0.05 * s) for y in (-0.045 * s, 0.045 * s)])
    return foot, tip


def _lowest(positions: np.ndarray, rotations: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """(T,) lowest z of ``corners`` on a body at (T, 3) ``positions``, (T, 3, 3) ``rotations``."""
    return (positions[:, None] + np.einsum("tij,kj->tki", rotations, corners))[..., 2].min(1)


def _sole_lows(st, shape: BodyShape) -> dict[str, np.ndarray]:
    """Per frame, the lowest sole point (z) of each foot box ("L_Ankle", "R_Ankle") and toe box
    ("L_Toe", "R_Toe") of the body states ``st``."""
    return {f"{side}_{part}": _lowest(st.positions[:, _I[f"{side}_{part}"]], st.rotations[:, _I[f"{side}_{part}"]],
                                      corners)
            for side in "LR" for part, corners in zip(("Ankle", "Toe"), _sole_corners(shape, side))}


def sole_height(qpos: np.ndarray, shape: BodyShape) -> np.ndarray:
    """Lowest point (z) of the foot and toe boxes' soles per frame."""
    return np.min(list(_sole_lows(forward_kinematics(qpos, shape), shape).values()), axis=0)


TOE_FLEX_MAX = np.radians(60.0)  # a toe bends at most this far to stay on the floor


def flex_toes(qpos: np.ndarray, shape: BodyShape) -> np.ndarray:
    """``qpos`` with each toe turned about its own lateral axis (its last hinge, Y) just far
    enough that its tip stays above the lowest level the foot boxes reach in the clip (at most
    :data:`TOE_FLEX_MAX`), as a real toe bends against the floor at push-off. A toe turns the
    way that lifts its tip over the clip as a whole: up for feet on the floor, down for feet
    turned over (a crawl's).

    Most sources have no joint below the toe to aim it at, so an imported toe is rigid with
    its foot and its tip digs in whenever the heel lifts. Put on the floor by its lowest
    point, such a clip then floats by that dip everywhere else (a real LAFAN1 walk 4.5 cm,
    the Bandai walks about 1.5 cm); the simulated body stands on the floor under it and
    the controller has to hold it up to the reference. Frames whose toe tip stays above
    the level are unchanged."""
    qpos = np.array(qpos, dtype=np.float64)
    st = forward_kinematics(qpos, shape)
    lows = _sole_lows(st, shape)
    level = min(float(lows[f"{side}_Ankle"].min()) for side in "LR")
    angles = np.linspace(0.0, TOE_FLEX_MAX, 61)
    turn = lambda a: rot.euler_to_matrix(np.array([0.0, 0.0, a]), "zxy")  # noqa: E731 - about the toe's Y
    for side in "LR":
        b = _I[f"{side}_Toe"]
        tip = _sole_corners(shape, side)[1]
        pos, R_toe = st.positions[:, b], st.rotations[:, b]
        low = lows[f"{side}_Toe"]
        dips = low < level
        if not dips.any():
            continue
        for sign in (-1.0, 1.0):  # a negative angle bends a toe up (it points forward, +X)
            if _lowest(pos, R_toe @ turn(sign * TOE_FLEX_MAX), tip).mean() > low.mean():
                break
        ok = np.stack([_lowest(pos[dips], R_toe[dips] @ turn(sign * a), tip) for a in angles], axis=1) >= level
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), len(angles) - 1)  # (dipping frames,)
        qpos[dips, hinge_index(f"{side}_Toe", "y")] += sign * angles[first]
    return qpos


def ground(qpos: np.ndarray, shape: BodyShape) -> np.ndarray:
    """Toes bent where they would dig in (:func:`flex_toes`), then the clip moved up or down so
    its lowest sole point is on the floor (z = 0)."""
    qpos = flex_toes(qpos, shape)
    qpos[:, 2] -= sole_height(qpos, shape).min()
    return qpos


def leading_pose_jumps(source: SourceMotion) -> int:
    """How many first frames are a pose the clip jumps out of: its joints (relative to the root)
    move on by more than LEAD_JUMP_SPEED on average, and 5 times the clip's median, into the
    next frame. The CMU BVH conversions (cgspeed, Holden's) start with one T-pose frame, which
    the motion leaves in 1/120 s (42 m/s); the shared clips' first frames move at most 3.2 m/s."""
    P = source.positions - source.positions[:, :1]
    speed = np.linalg.norm(np.diff(P, axis=0), axis=-1).mean(axis=1) * source.fps
    if len(speed) < 4:
        return 0
    limit = max(LEAD_JUMP_SPEED, 5.0 * float(np.median(speed)))
    lead = 0
    while lead < 2 and lead < len(speed) - 2 and speed[lead] > limit:
        lead += 1
    return lead


def _drop_first(source: SourceMotion, n: int) -> SourceMotion:
    return replace(source, positions=source.positions[n:],
                   rotations=None if source.rotations is None else source.rotations[n:],
                   end_sites={k: v[n:] for k, v in source.end_sites.items()})


def retarget(source: SourceMotion, body: BodyShape | str = "fit",
             options: RetargetOptions | None = None) -> MotionClip:
    """Retarget a source motion onto the humanoid; see the module docstring for the steps."""
    opts = options or RetargetOptions()
    where = source.source or source.name
    bad = ~np.isfinite(source.positions).all(axis=(1, 2))
    if bad.any():
        raise MotionFormatError(f"{where}: {bad.sum()} frame(s) contain NaN/inf (first: frame {np.argmax(bad)})")
    dropped = leading_pose_jumps(source)
    source = _drop_first(source, dropped) if dropped else source
    mapping = map_joints(source)
    i0, i1, frac = rot.resample_indices(source.num_frames, source.fps, opts.fps)
    times = np.arange(len(i0)) / opts.fps
    needed = np.unique(np.concatenate([i0, i1]))
    t = _Targets(source, mapping, needed)

    if isinstance(body, BodyShape):
        shape = body
        ref = forward_kinematics(np.r_[0, 0, 0, 1, 0, 0, 0, np.zeros(69)], shape).positions[0]
        ours = (np.linalg.norm(ref[_I["L_Hip"]] - ref[_I["L_Ankle"]]) + np.linalg.norm(ref[_I["Neck"]] - ref[0]))
        top = "Neck" if "Neck" in t else _spine_top(t)
        theirs = np.median(np.linalg.norm(t["L_Hip"] - t["L_Knee"], axis=-1) + np.linalg.norm(t["L_Knee"] - t["L_Ankle"], axis=-1)
                           + np.linalg.norm(t[top] - t["Pelvis"], axis=-1))
        scale = ours / theirs
        t.scale(scale)
    elif body == "fit":
        try:
            shape, scale = fit_body(t, opts.mass), 1.0
        except MotionFormatError as e:
            hint = (f" (lengths read as {source.meta['units']}: pass the file's units, e.g. --units cm)"
                    if source.meta.get("format") == "bvh" else "")
            raise MotionFormatError(f"{where}: {e}{hint}") from None
    else:
        raise ValueError(f"body must be 'fit' or a BodyShape, got {body!r}")

    G, root = solve_rotations(t, shape)
    degenerate = ~(np.linalg.det(G) > 0.5)  # also NaN: an axis taken from coinciding joints
    if degenerate.any():
        frame, body = np.argwhere(degenerate)[0]
        raise MotionFormatError(f"{where}: the orientation of {BODY_NAMES[body]} is undefined at frame "
                                f"{frame} (the source joints it is aimed from coincide)")
    local = np.swapaxes(G[:, PARENTS[1:]], -1, -2) @ G[:, 1:]
    # interpolate to the output frames: root linearly, rotations by slerp
    k0, k1 = np.searchsorted(needed, i0), np.searchsorted(needed, i1)
    q_all = rot.matrix_to_quat(np.concatenate([G[:, :1], local], axis=1))
    q = rot.quat_slerp(q_all[k0], q_all[k1], np.broadcast_to(frac[:, None], (len(times), NUM_BODIES)))
    root_pos = root[k0] * (1 - frac[:, None]) + root[k1] * frac[:, None]
    hinges = hinge_angles(rot.quat_to_matrix(q[:, 1:]))
    qpos = np.concatenate([root_pos, rot.quat_continuous(q[:, 0]), hinges], axis=1)
    if opts.ground:
        qpos = ground(qpos, shape)

    # error of the fit itself, at the solved source frames (resampling is not retargeting error)
    q_src = np.concatenate([root, q_all[:, 0], hinge_angles(local)], axis=1)
    solved = forward_kinematics(q_src, shape).positions
    err = np.stack([np.linalg.norm(solved[:, _I[n]] - x, axis=-1) for n, x in t.pos.items()], axis=1) * 1000.0
    per_joint = {name: round(float(v), 2) for name, v in zip(t.pos, err.mean(axis=0))}
    worst_frame, worst_joint = np.unravel_index(np.argmax(err), err.shape)
    return MotionClip(
        name=source.name, qpos=qpos, fps=opts.fps, body=shape, source=source.source,
        license=source.license, retarget_error_mm=round(float(err.mean()), 3),
        retarget_max_error_mm=round(float(err.max()), 3),
        meta={"source_fps": source.fps, "source_frames": source.num_frames + dropped, "scale": scale,
              "joint_map": mapping, "source_format": source.meta.get("format", ""),
              "retarget_joint_error_mm": per_joint,
              "retarget_worst": {"frame": int(worst_frame), "joint": list(t.pos)[worst_joint]},
              **({"dropped_leading_frames": dropped} if dropped else {}),
              # the recorder's clock time of the first frame kept (an ADT skeleton's: its video's clock)
              **({"capture_start_s": source.meta["capture_start_s"] + dropped / source.fps}
                 if "capture_start_s" in source.meta else {})},
    )
