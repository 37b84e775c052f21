"""The metrics of the original Kin-Poly evaluation (SPEC section 5), vectorised over frames.

Every number kinpoly publishes comes from this module. Conventions: positions in metres in,
errors out in the unit each docstring states; arrays are (T, 24, 3) body positions in
``BODY_NAMES`` order or (T, 3, 3) rotation matrices; "per frame" metrics use finite differences
between consecutive frames, so clips must share a frame rate (30 Hz in the project).

Per-clip values are means over the clip's frames; the overall value of a set of clips is the
mean over clips, as in the original evaluation script. Definitions, and where they deliberately
differ from the original code, are written in each function's docstring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import mujoco
import numpy as np

from ..errors import InputError
from ..humanoid.kinematics import head_pose
from ..humanoid.mjcf import build_model
from ..humanoid.scene import SEAT_KINDS, SceneObject
from ..humanoid.skeleton import BODY_INDEX, BODY_NAMES, NUM_BODIES, QPOS_DIM, BodyShape
from ..motion.clip import MotionClip, ObjectTrack

FOOT_CONTACT_HEIGHT = 0.033  # m, H of the skate metric
PENETRATION_MARGIN = 0.005  # m, contact depth tolerated before it counts as penetration
FALL_DISTANCE = 0.5  # m, mean body distance to ground truth that ends an episode (SPEC 2)
PUSH_DISTANCE = 0.1  # m, box displacement for a successful push
STEP_RISE = 0.1  # m, pelvis rise for a successful step
AVOID_HEAD_DISTANCE = 0.5  # m, final head distance to ground truth for a successful avoid
SIT_BODIES = ("Pelvis", "L_Hip", "R_Hip", "Torso", "Spine")
FOOT_BODIES = ("L_Ankle", "R_Ankle", "L_Toe", "R_Toe")
TOE_BODIES = ("L_Toe", "R_Toe")
_TOES = [BODY_INDEX[b] for b in TOE_BODIES]
_HEAD = BODY_INDEX["Head"]

# Stable names of the per-clip numbers (JSON keys of ``kinpoly eval``).
POSE_KEYS = ("mpjpe_mm", "mpjpe_global_mm", "root_rot_err", "root_trans_err_m", "head_rot_err",
             "head_trans_err_m", "accel_error", "velocity_error")
PHYSICAL_KEYS = ("skate_mm", "penetration_mm")


class MetricError(InputError):
    """A clip (or a pair of clips) cannot be scored; the message names the clip and the cause."""


class LengthMismatch(MetricError):
    """A prediction and its ground truth have different frame counts."""


# --- pose errors -----------------------------------------------------------------------------
def rotation_error(r_pred: np.ndarray, r_gt: np.ndarray) -> np.ndarray:
    """Per-frame Frobenius error ``||I - R_pred R_gt^T||_F`` of (..., 3, 3) rotations (unitless).

    For a relative rotation of angle theta it equals ``2 sqrt(2) |sin(theta / 2)|``: 0 when the
    rotations agree, 2 at 90 degrees, at most ``2 sqrt(2)`` (180 degrees). Symmetric in its
    arguments. Only the rotation part: translation is reported separately (SPEC 5).
    """
    rel = np.asarray(r_pred) @ np.swapaxes(np.asarray(r_gt), -1, -2)
    return np.linalg.norm(np.eye(3) - rel, axis=(-2, -1))


def orientation_error(r_pred: np.ndarray, r_gt: np.ndarray) -> float:
    """Mean over frames of :func:`rotation_error` (unitless, in [0, 2 sqrt(2)])."""
    return float(np.mean(rotation_error(r_pred, r_gt)))


def translation_error(p_pred: np.ndarray, p_gt: np.ndarray) -> float:
    """Mean over frames of the Euclidean distance of (T, 3) positions, in metres."""
    return float(np.mean(np.linalg.norm(np.asarray(p_pred) - np.asarray(p_gt), axis=-1)))


def joint_errors(pos_pred: np.ndarray, pos_gt: np.ndarray, root_relative: bool = True) -> np.ndarray:
    """(T, J) distance of every body in every frame, in mm.

    ``root_relative`` subtracts each frame's root (body 0, the pelvis) from both poses first
    (position only, no rotation alignment: the original's MPJPE); otherwise global positions.
    """
    a, b = np.asarray(pos_pred, dtype=np.float64), np.asarray(pos_gt, dtype=np.float64)
    if root_relative:
        a, b = a - a[:, :1], b - b[:, :1]
    return np.linalg.norm(a - b, axis=-1) * 1000.0


def mpjpe(pos_pred: np.ndarray, pos_gt: np.ndarray, root_relative: bool = True) -> float:
    """Mean per-joint position error over frames and the 24 bodies, in mm.

    Root-relative by default (MPJPE); ``root_relative=False`` is the global MPJPE of UHC.
    """
    return float(np.mean(joint_errors(pos_pred, pos_gt, root_relative)))


def velocity_error(pos_pred: np.ndarray, pos_gt: np.ndarray) -> float:
    """Mean over the T-1 frame pairs and the bodies of ``|dp_pred - dp_gt|`` with
    ``dp_t = p_{t+1} - p_t`` (global positions), in mm/frame. NaN for fewer than 2 frames."""
    a, b = np.asarray(pos_pred), np.asarray(pos_gt)
    if len(a) < 2:
        return float("nan")
    return float(np.mean(np.linalg.norm(np.diff(a, axis=0) - np.diff(b, axis=0), axis=-1)) * 1000.0)


def acceleration_error(pos_pred: np.ndarray, pos_gt: np.ndarray) -> float:
    """Mean over the T-2 inner frames and the bodies of ``|a_pred - a_gt|`` with the second
    difference ``a_t = p_{t-1} - 2 p_t + p_{t+1}`` (global positions), in mm/frame^2.
    NaN for fewer than 3 frames."""
    a, b = np.asarray(pos_pred), np.asarray(pos_gt)
    if len(a) < 3:
        return float("nan")
    d = np.diff(a, n=2, axis=0) - np.diff(b, n=2, axis=0)
    return float(np.mean(np.linalg.norm(d, axis=-1)) * 1000.0)


def fall_frame(pos_pred: np.ndarray, pos_gt: np.ndarray, threshold: float = FALL_DISTANCE) -> int | None:
    """First frame whose mean body distance to ground truth exceeds ``threshold`` (m), else
    None: the termination rule of the controller (SPEC 2), which counts as a fall."""
    far = np.mean(np.linalg.norm(np.asarray(pos_pred) - np.asarray(pos_gt), axis=-1), axis=-1) > threshold
    return int(np.argmax(far)) if far.any() else None


# --- physical plausibility ---------------------------------------------------------------------
def toe_rest_heights(shape: BodyShape) -> np.ndarray:
    """(2,) height (m) of the L/R toe joints above the floor when the body stands at rest."""
    return shape.pelvis_height() + shape.rest_positions()[_TOES, 2]


def foot_skate(toe_pos: np.ndarray, ground: np.ndarray | float = 0.0,
               height: float = FOOT_CONTACT_HEIGHT) -> float:
    """Foot skate of (T, K, 3) toe positions, in mm/frame.

    With ``h_t = z_t - ground`` a toe's height above where it rests when standing (``ground``
    per toe, see :func:`toe_rest_heights`), a frame pair (t, t+1) of a toe is in contact when
    ``h_t < H`` and ``h_{t+1} < H`` (H = 0.033 m). Its skate is the horizontal displacement
    ``|xy_{t+1} - xy_t|`` weighted by ``2 - 2^(h/H)`` with ``h = (h_t + h_{t+1}) / 2`` (weight 1
    on the floor, falling to 0 at H; up to 2 below the floor, unclamped as in the original).
    The result is the mean over **all** T-1 frame pairs (pairs out of contact count 0) and the
    K toes, x 1000. The original divides the sum by T instead of T-1, grounds the toe by its
    mean height over the first 3 frames (here: by the body's own standing toe height) and only
    counts frames whose root is above 0.65 m (not done here: a seated person's feet slide too).
    NaN for fewer than 2 frames.
    """
    toe_pos = np.asarray(toe_pos, dtype=np.float64)
    if len(toe_pos) < 2:
        return float("nan")
    h = toe_pos[..., 2] - np.asarray(ground)  # (T, K)
    contact = (h[:-1] < height) & (h[1:] < height)
    weight = 2.0 - np.power(2.0, 0.5 * (h[:-1] + h[1:]) / height)
    disp = np.linalg.norm(np.diff(toe_pos[..., :2], axis=0), axis=-1)
    return float(np.mean(np.where(contact, np.abs(disp * weight), 0.0)) * 1000.0)


def clip_skate(clip: MotionClip) -> float:
    """:func:`foot_skate` of a clip's two toe joints, grounded at the body's standing toe height
    (mm/frame)."""
    return foot_skate(clip.body_states().positions[:, _TOES], toe_rest_heights(clip.body))


@dataclass
class ContactScan:
    """Contacts of the humanoid with the floor and the scene objects over a clip.

    ``penetration``: (T,) per frame, the sum over the frame's humanoid-vs-world contacts of
    ``max(0, -dist - 0.005)`` (m). ``touched[b, k]``: body b touched object k at some frame.
    Per frame: ``body_contact`` (T, 24) whether each body touches the floor or an object,
    ``object_contact`` (T, K) whether the humanoid touches each object.
    """

    penetration: np.ndarray
    touched: np.ndarray
    objects: list[ObjectTrack]
    body_contact: np.ndarray | None = None
    object_contact: np.ndarray | None = None

    def touches(self, bodies, kind: str) -> bool:
        """Did any of ``bodies`` (names) touch any object of ``kind`` at some frame?"""
        cols = [k for k, t in enumerate(self.objects) if t.object.kind == kind]
        rows = [BODY_INDEX[b] for b in bodies]
        return bool(self.touched[np.ix_(rows, cols)].any())


@dataclass
class _ContactModel:
    model: mujoco.MjModel
    data: mujoco.MjData
    body_of_geom: np.ndarray  # humanoid body index of each geom, -1 if not the humanoid's
    object_of_geom: np.ndarray  # track index of each geom, -1 for the floor / humanoid
    free_qpos: list[int | None]  # qpos address of each track's free joint (None: static)


_MODELS: dict[tuple, _ContactModel] = {}


def _placed(track: ObjectTrack) -> SceneObject:
    """The object as the model places it: static objects at their first pose."""
    o = track.object
    if o.is_free:
        return o
    pose = track.poses[0]
    if np.linalg.norm(pose[3:]) < 1e-6:
        raise MetricError(f"object {o.name}: pose has a zero quaternion")
    return SceneObject(o.kind, o.name, tuple(pose[:3]), tuple(pose[3:]), dict(o.size))


def _contact_model(shape: BodyShape, objects: list[SceneObject]) -> _ContactModel:
    """The compiled model of ``shape`` + ``objects`` (the project's ``build_model``), cached."""
    key = (shape.key(), json.dumps([o.to_dict() for o in objects], sort_keys=True))
    if key not in _MODELS:
        if len(_MODELS) >= 16:
            _MODELS.pop(next(iter(_MODELS)))
        m = build_model(shape, objects)
        names = [m.body(i).name for i in range(m.nbody)]
        assert names[1:NUM_BODIES + 1] == list(BODY_NAMES), "humanoid must be bodies 1..24"
        body_of_body = np.full(m.nbody, -1)
        body_of_body[1:NUM_BODIES + 1] = np.arange(NUM_BODIES)
        object_of_body = np.full(m.nbody, -1)
        for k, o in enumerate(objects):
            object_of_body[names.index(o.name)] = k
        free = [int(m.jnt_qposadr[m.joint(f"{o.name}_free").id]) if o.is_free else None
                for o in objects]
        _MODELS[key] = _ContactModel(m, mujoco.MjData(m), body_of_body[m.geom_bodyid],
                                     object_of_body[m.geom_bodyid], free)
    return _MODELS[key]


def scan_contacts(clip: MotionClip, tracks: list[ObjectTrack] | None = None) -> ContactScan:
    """Pose the humanoid (and the objects) of every frame in MuJoCo and collect its contacts.

    Uses the same ``build_model`` as simulation; per frame only ``mj_kinematics`` and
    ``mj_collision`` run (no dynamics), which gives the contacts ``mj_forward`` would.
    ``tracks`` (default: the clip's own) give the object poses: free objects follow their
    poses per frame, static ones stay at their first pose. Only contacts between a humanoid
    geom and a non-humanoid geom (floor, objects) count.
    """
    tracks = clip.objects if tracks is None else tracks
    T = clip.num_frames
    for t in tracks:
        if len(t.poses) != T:
            raise MetricError(f"{clip.name}: object {t.object.name} has {len(t.poses)} poses for {T} frames")
        if not np.isfinite(t.poses).all():
            raise MetricError(f"{clip.name}: object {t.object.name} poses contain NaN/inf")
    cm = _contact_model(clip.body, [_placed(t) for t in tracks])
    m, d = cm.model, cm.data
    free = [(adr, t.poses) for adr, t in zip(cm.free_qpos, tracks) if adr is not None]
    qpos = clip.qpos
    frames, g1s, g2s, dists = [], [], [], []
    for f in range(T):
        d.qpos[:QPOS_DIM] = qpos[f]
        for adr, poses in free:
            d.qpos[adr:adr + 7] = poses[f]
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        if d.ncon:
            c = d.contact
            g1s.append(c.geom1.copy())
            g2s.append(c.geom2.copy())
            dists.append(c.dist.copy())
            frames.append(np.full(d.ncon, f))
    touched = np.zeros((NUM_BODIES, len(tracks)), dtype=bool)
    body_contact = np.zeros((T, NUM_BODIES), dtype=bool)
    object_contact = np.zeros((T, len(tracks)), dtype=bool)
    if not frames:
        return ContactScan(np.zeros(T), touched, list(tracks), body_contact, object_contact)
    frame, g1, g2, dist = (np.concatenate(x) for x in (frames, g1s, g2s, dists))
    b1, b2 = cm.body_of_geom[g1], cm.body_of_geom[g2]
    keep = (b1 >= 0) != (b2 >= 0)  # exactly one side is the humanoid
    body = np.where(b1 >= 0, b1, b2)[keep]
    other = np.where(b1 >= 0, g2, g1)[keep]
    pen = np.maximum(0.0, -dist[keep] - PENETRATION_MARGIN)
    penetration = np.bincount(frame[keep], weights=pen, minlength=T)
    obj = cm.object_of_geom[other]
    touched[body[obj >= 0], obj[obj >= 0]] = True
    body_contact[frame[keep], body] = True
    object_contact[frame[keep][obj >= 0], obj[obj >= 0]] = True
    return ContactScan(penetration, touched, list(tracks), body_contact, object_contact)


def penetration(scan: ContactScan) -> float:
    """Mean over frames of the per-frame penetration of a :class:`ContactScan`, in mm."""
    return float(np.mean(scan.penetration) * 1000.0)


# --- interaction and falls ---------------------------------------------------------------------
def interaction_success(pred: MotionClip, scan: ContactScan, gt: MotionClip | None = None) -> bool | None:
    """Did the predicted motion do what its action label asks (not counting falls)?

    - sit: a seat geom (a chair, or a rail sat on: ``SEAT_KINDS``) touches a
      Pelvis/L_Hip/R_Hip/Torso/Spine geom at some frame;
    - push: a box (from the prediction's own object poses) moves more than 0.1 m from its
      first position at some frame;
    - avoid: no humanoid geom touches the can at any frame AND the final eye position is
      within 0.5 m of the ground truth's (the original only checked the first 12 geoms);
    - step: an Ankle/Toe geom touches the step at some frame AND the root (pelvis) rises more
      than 0.1 m above its first-frame height at some frame;
    - locomotion: always (only the no-fall condition applies); unlabelled clips: None.
    Raises :class:`MetricError` when the scene lacks the object (or avoid lacks ground truth).
    """
    action = pred.action
    need = {"sit": SEAT_KINDS, "avoid": ("can",), "step": ("step",)}.get(action)
    if need and not any(t.object.kind in need for t in scan.objects):
        raise MetricError(f"{pred.name}: {action} needs a {' or '.join(need)} in the scene, none found")
    if action == "sit":
        return any(scan.touches(SIT_BODIES, kind) for kind in SEAT_KINDS)
    if action == "push":
        boxes = [t.poses[:, :3] for t in pred.objects if t.object.kind == "box"]
        if not boxes:
            raise MetricError(f"{pred.name}: push needs the box poses of the prediction, none found")
        return any(np.max(np.linalg.norm(p - p[0], axis=1)) > PUSH_DISTANCE for p in boxes)
    if action == "avoid":
        if gt is None:
            raise MetricError(f"{pred.name}: avoid needs the ground truth's final head position")
        head_gap = np.linalg.norm(pred.head_pose()[-1, :3] - gt.head_pose()[-1, :3])
        return (not scan.touches(BODY_NAMES, "can")) and bool(head_gap <= AVOID_HEAD_DISTANCE)
    if action == "step":
        rise = np.max(pred.qpos[:, 2] - pred.qpos[0, 2])
        return scan.touches(FOOT_BODIES, "step") and bool(rise > STEP_RISE)
    if action == "locomotion":
        return True
    return None


def detect_fall(pred: MotionClip, gt: MotionClip | None = None) -> int | None:
    """Frame at which the prediction fell, or None: ``meta["failed"]`` from simulation (at
    ``meta["fail_frame"]``, else its last frame) or :func:`fall_frame` against ground truth."""
    if pred.meta.get("failed"):
        return int(pred.meta.get("fail_frame", pred.num_frames - 1))
    if gt is None:
        return None
    return fall_frame(pred.body_states().positions, gt.body_states().positions)


# --- whole clips -------------------------------------------------------------------------------
def check_pair(pred: MotionClip, gt: MotionClip) -> MotionClip:
    """Validate a prediction against its ground truth; returns the ground truth to score with.

    The clips must share fps and length; the one exception is a simulation that failed
    (``meta["failed"]``) and stopped early, which is scored on the frames it has.
    """
    if abs(pred.fps - gt.fps) > 1e-6:
        raise MetricError(f"{pred.name}: prediction is at {pred.fps} fps, ground truth at {gt.fps} fps")
    if pred.num_frames != gt.num_frames:
        if pred.meta.get("failed") and pred.num_frames < gt.num_frames:
            return gt.slice(0, pred.num_frames)
        raise LengthMismatch(f"{pred.name}: prediction has {pred.num_frames} frames, "
                          f"ground truth {gt.num_frames}")
    return gt


def score_physical(clip: MotionClip) -> dict:
    """Penetration (mm) and foot skate (mm/frame) of one clip on its own (e.g. ground truth)."""
    return {"frames": clip.num_frames, "skate_mm": clip_skate(clip),
            "penetration_mm": penetration(scan_contacts(clip))}


def score_clip(pred: MotionClip, gt: MotionClip | None = None) -> dict:
    """Every metric of one predicted clip against its ground truth.

    Returns a dict with the ``POSE_KEYS`` (None without ground truth): ``mpjpe_mm`` and
    ``mpjpe_global_mm`` (mm), ``root_rot_err`` / ``head_rot_err`` (Frobenius, unitless),
    ``root_trans_err_m`` / ``head_trans_err_m`` (m; the head is the eye point, i.e. the camera
    the method observes, with the Head body's orientation), ``accel_error`` (mm/frame^2),
    ``velocity_error`` (mm/frame); the ``PHYSICAL_KEYS`` ``skate_mm`` (mm/frame) and
    ``penetration_mm`` (mm) of the prediction; ``per_joint_mpjpe_mm`` (root-relative, mm, per
    body name), ``fell`` / ``fall_frame``,
    ``success`` (no fall), ``interaction_success`` (the action's criterion AND no fall; None
    when it does not apply or cannot be computed) and ``problems`` (messages for what could not
    be computed). Object poses come from the prediction, or from the ground truth when the
    prediction carries none (static scenes of a purely kinematic prediction).
    Raises :class:`MetricError` when the pair cannot be scored at all.
    """
    out: dict = {"action": pred.action, "frames": pred.num_frames}
    if gt is not None:
        gt = check_pair(pred, gt)
        sp, sg = pred.body_states(), gt.body_states()
        pp, pg = sp.positions, sg.positions
        hp, hg = head_pose(sp, pred.body), head_pose(sg, gt.body)
        out.update({
            "mpjpe_mm": mpjpe(pp, pg),
            "mpjpe_global_mm": mpjpe(pp, pg, root_relative=False),
            "root_rot_err": orientation_error(sp.rotations[:, 0], sg.rotations[:, 0]),
            "root_trans_err_m": translation_error(pp[:, 0], pg[:, 0]),
            "head_rot_err": orientation_error(sp.rotations[:, _HEAD], sg.rotations[:, _HEAD]),
            "head_trans_err_m": translation_error(hp[:, :3], hg[:, :3]),
            "accel_error": acceleration_error(pp, pg),
            "velocity_error": velocity_error(pp, pg),
            "per_joint_mpjpe_mm": dict(zip(BODY_NAMES, np.mean(joint_errors(pp, pg), axis=0).tolist())),
        })
    else:
        out.update({k: None for k in POSE_KEYS})
    scan = scan_contacts(pred, pred.objects or (gt.objects if gt is not None else []))
    out["skate_mm"] = clip_skate(pred)
    out["penetration_mm"] = penetration(scan)
    fall = detect_fall(pred, gt)
    out["fell"], out["fall_frame"], out["success"] = fall is not None, fall, fall is None
    out["problems"] = []
    try:
        ok = interaction_success(pred, scan, gt)
        out["interaction_success"] = None if ok is None else bool(ok and fall is None)
    except MetricError as e:
        out["interaction_success"] = None
        out["problems"].append(str(e))
    return out
