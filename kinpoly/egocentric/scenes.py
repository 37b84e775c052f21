"""Scene synthesis: place the objects a clip interacts with, consistently with its motion.

For each clip the objects follow from its action label (from the clip, else from the detection
rules below) and from where the body is *supported above the floor*:

- **Support detection.** The humanoid is posed in MuJoCo frame by frame and each geom is
  sampled (5 points along each capsule, sphere centre, box corners, with their radius). A foot is
  *planted* when its horizontal and vertical speed stay below 0.3 m/s; a planted foot whose
  sole is more than ``step_min_height`` (8 cm) above the floor stands on a level. The body
  *sits* when the thighs are near horizontal (knee from 0.25 m below to 0.12 m above hip
  height: legs may dangle) and the pelvis is slow for at least twice ``min_support_frames``, with the bottom of the pelvis/thighs more than 0.2 m above the floor. Runs of at
  least ``min_support_frames`` frames count; runs at the same height (within 6 cm) and close
  together (within 0.8 m) are one object (the same platform climbed three times).
- **Support objects.** Each cluster becomes a box-shaped object whose top is the lowest
  support point of the cluster (10th percentile of the sole/seat bottoms over the runs),
  whose yaw is the body heading there, and whose footprint covers the support points, grown
  outwards (at most ``grow_m`` per side) while no part of the body goes below the top inside
  it at any frame. A seat only used for sitting becomes a ``chair`` (its back
  dropped if the torso would hit it; the kind is ``chair`` whatever the seat height, so that
  the evaluation's sit criterion applies), a level stood on becomes a ``step`` (<= 0.35 m) or
  a ``platform``. Where no solid block fits (the legs pass below the level there at other
  frames: ladders and climbing frames) the support becomes a rung, a ``bar`` across the
  heading under the support points; a level where neither fits is skipped with a note.
- **push**: frames with both hands at least 0.25 m in front of the pelvis, between 0.4 and
  1.5 m high, at most 0.6 m apart, while the pelvis moves forwards; the free ``box`` stands
  at the hands, its top above them, and moves with them during the push.
- **avoid**: a ``can`` beside the path in the middle of the labelled interval (or the clip),
  the candidate nearest to the path that the body clears by at least ``avoid_clearance_m``.
- **locomotion**: no object, or (``distractor``) a table at least 1 m from the body path.
- **Detection rules** for an unlabelled clip: sit runs -> sit; else level-foot runs -> step;
  else locomotion (push and avoid cannot be told from the motion alone and are not guessed).

Every scene is checked with :func:`kinpoly.evaluation.metrics.scan_contacts`: the reference body
must not penetrate any object by more than 1 cm (its per-frame object penetration beyond the
metric's 5 mm tolerance stays <= 5 mm). A scene that cannot be placed raises
:class:`ScenePlacementError` with the reason; it is reported, never faked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from .. import rotations as rot
from ..humanoid.mjcf import build_model
from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import BODY_INDEX, NUM_BODIES, QPOS_DIM
from ..motion.clip import MotionClip, ObjectTrack

MAX_PENETRATION_M = 0.01  # the reference body may touch an object at most this deep


class ScenePlacementError(ValueError):
    """The objects a clip's action needs cannot be placed consistently with its motion."""


@dataclass
class SceneConfig:
    step_min_height: float = 0.12  # m, a planted sole higher than this stands on something
    seat_min_height: float = 0.2  # m, a seat lower than this is the floor
    min_support_frames: int = 8
    level_tolerance: float = 0.06  # m, runs at heights within this are one level
    grow_m: float = 0.3  # m, how far a footprint may grow beyond its support points
    margin_m: float = 0.06  # m, footprint margin around support points
    avoid_clearance_m: float = 0.05
    avoid_offsets_m: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
    distractor: bool = True
    distractor_clearance_m: float = 1.0


@dataclass
class GeomSamples:
    """Sample points of the humanoid's geoms per frame: ``points`` (T, P, 3), ``radius`` (P,),
    ``body`` (P,) body index of each point."""

    points: np.ndarray
    radius: np.ndarray
    body: np.ndarray

    def bottoms(self, bodies: list[int]) -> np.ndarray:
        """(T,) lowest point (z - r) over the points of ``bodies``."""
        sel = np.isin(self.body, bodies)
        return np.min(self.points[:, sel, 2] - self.radius[sel], axis=1)


def sample_geoms(clip: MotionClip, stride: int = 1) -> GeomSamples:
    model = build_model(clip.body)
    data = mujoco.MjData(model)
    geoms = [g for g in range(model.ngeom) if 1 <= model.geom_bodyid[g] <= NUM_BODIES]
    frames = range(0, clip.num_frames, stride)
    xpos = np.empty((len(frames), len(geoms), 3))
    xmat = np.empty((len(frames), len(geoms), 3, 3))
    for i, f in enumerate(frames):
        data.qpos[:QPOS_DIM] = clip.qpos[f]
        mujoco.mj_kinematics(model, data)
        xpos[i] = data.geom_xpos[geoms]
        xmat[i] = data.geom_xmat[geoms].reshape(-1, 3, 3)
    pts, rad, body = [], [], []
    for j, g in enumerate(geoms):
        size, b = model.geom_size[g], int(model.geom_bodyid[g]) - 1
        t = model.geom_type[g]
        if t == mujoco.mjtGeom.mjGEOM_CAPSULE:
            for s in (-1.0, -0.5, 0.0, 0.5, 1.0):
                pts.append(xpos[:, j] + s * size[1] * xmat[:, j, :, 2])
                rad.append(size[0]); body.append(b)
        elif t == mujoco.mjtGeom.mjGEOM_SPHERE:
            pts.append(xpos[:, j]); rad.append(size[0]); body.append(b)
        else:  # box corners
            for c in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).T.reshape(-1, 3):
                pts.append(xpos[:, j] + xmat[:, j] @ (c * size))
                rad.append(0.0); body.append(b)
    return GeomSamples(np.stack(pts, 1), np.array(rad), np.array(body))


def _runs(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, stop) of the runs of True at least ``min_len`` long."""
    m = np.concatenate([[False], mask, [False]]).astype(int)
    d = np.diff(m)
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops) if b - a >= min_len]


def _smooth(x: np.ndarray, k: int = 5) -> np.ndarray:
    if len(x) < k:
        return x
    pad = np.concatenate([np.repeat(x[:1], k // 2, 0), x, np.repeat(x[-1:], k // 2, 0)])
    ker = np.ones(k) / k
    return np.stack([np.convolve(pad[:, j], ker, "valid") for j in range(x.shape[1])], 1)


_FEET = {"L": [BODY_INDEX["L_Ankle"], BODY_INDEX["L_Toe"]], "R": [BODY_INDEX["R_Ankle"], BODY_INDEX["R_Toe"]]}
_SEAT = [BODY_INDEX["Pelvis"], BODY_INDEX["L_Hip"], BODY_INDEX["R_Hip"]]


@dataclass
class SupportRun:
    kind: str  # "foot" or "seat"
    start: int
    stop: int
    level: float  # m, support height
    xy: np.ndarray  # (N, 2) support points
    heading: float
    bottoms: np.ndarray  # (stop - start,) support bottom per frame


def find_supports(clip: MotionClip, g: GeomSamples, cfg: SceneConfig) -> list[SupportRun]:
    """Runs of frames where a foot stands, or the body sits, above the floor."""
    states = clip.body_states()
    pos = states.positions
    fps = clip.fps
    heading = rot.heading_angle(states.rotations[:, 0])
    runs: list[SupportRun] = []
    for side, bodies in _FEET.items():
        bottom = g.bottoms(bodies)
        flat = np.abs(g.bottoms(bodies[:1]) - g.bottoms(bodies[1:])) < 0.04
        ankle = _smooth(pos[:, bodies[0]])
        v = np.linalg.norm(np.diff(ankle, axis=0, append=ankle[-1:]) * fps, axis=1)
        planted = (v < 0.3) & flat & (bottom > cfg.step_min_height)
        for a, b in _runs(planted, cfg.min_support_frames):
            level = float(np.percentile(bottom[a:b], 10))
            sel = np.isin(g.body, bodies)
            xy = g.points[a:b][:, sel, :2].reshape(-1, 2)
            runs.append(SupportRun("foot", a, b, level, xy, float(np.median(heading[a:b])), bottom[a:b]))
    hip_z = (pos[:, BODY_INDEX["L_Hip"], 2] + pos[:, BODY_INDEX["R_Hip"], 2]) / 2
    knee_z = (pos[:, BODY_INDEX["L_Knee"], 2] + pos[:, BODY_INDEX["R_Knee"], 2]) / 2
    pel = _smooth(pos[:, 0])
    vp = np.linalg.norm(np.diff(pel, axis=0, append=pel[-1:]) * fps, axis=1)
    # the seat: pelvis and thigh points, without the thighs' knee ends (legs may dangle)
    sel = np.isin(g.body, _SEAT)
    pts = g.points[:, sel]
    knees = pos[:, [BODY_INDEX["L_Knee"], BODY_INDEX["R_Knee"]]]
    near_knee = np.min(np.linalg.norm(pts[:, :, None] - knees[:, None], axis=-1), -1) < 0.15
    bottoms = np.where(near_knee, np.inf, pts[..., 2] - g.radius[sel])
    seat_bottom = bottoms.min(1)
    sitting = ((knee_z - hip_z) > -0.25) & ((knee_z - hip_z) < 0.12) & (vp < 0.3) & \
        (seat_bottom > cfg.seat_min_height)
    for a, b in _runs(sitting, 2 * cfg.min_support_frames):
        level = float(np.percentile(seat_bottom[a:b], 10))
        low = bottoms[a:b] < level + 0.05
        if low.any():
            runs.append(SupportRun("seat", a, b, level, pts[a:b][low][:, :2], float(np.median(heading[a:b])),
                                   seat_bottom[a:b]))
    return runs


def _cluster(runs: list[SupportRun], cfg: SceneConfig) -> list[list[SupportRun]]:
    clusters: list[list[SupportRun]] = []
    for r in sorted(runs, key=lambda r: r.level):
        for c in clusters:
            lv = min(x.level for x in c)
            cxy = np.concatenate([x.xy for x in c])
            gap = np.maximum(0, np.maximum(cxy.min(0) - r.xy.max(0), r.xy.min(0) - cxy.max(0)))
            if abs(r.level - lv) < cfg.level_tolerance and np.linalg.norm(gap) < 0.8:
                c.append(r)
                break
        else:
            clusters.append([r])
    return clusters


def _footprint(support_xy: np.ndarray, yaw: float, level: float, g: GeomSamples,
               cfg: SceneConfig, tol: float = 0.005) -> tuple[np.ndarray, np.ndarray] | None:
    """Rectangle (centre xy, half extents) in the frame rotated by ``yaw`` that covers the
    support points and that no body point enters below ``level - tol``; None if impossible."""
    c, s = np.cos(yaw), np.sin(yaw)
    Rt = np.array([[c, s], [-s, c]])
    sup = support_xy @ Rt.T
    lo, hi = sup.min(0), sup.max(0)
    below = (g.points[..., 2] - g.radius) < level - tol  # (T, P)
    fp = g.points[..., :2][below] @ Rt.T
    fr = np.broadcast_to(g.radius, below.shape)[below]
    for margin in (cfg.margin_m, cfg.margin_m / 2, 0.0):
        box_lo, box_hi = lo - margin, hi + margin

        def clear(a, b):
            inside = np.all((fp + fr[:, None] > a) & (fp - fr[:, None] < b), axis=1)
            return not inside.any()

        if not clear(box_lo, box_hi):
            continue
        step = 0.02
        for _ in range(int(cfg.grow_m / step)):  # grow each side while it stays clear
            grew = False
            for axis in range(2):
                for sign in (-1, 1):
                    a, b = box_lo.copy(), box_hi.copy()
                    if sign < 0:
                        a[axis] -= step
                    else:
                        b[axis] += step
                    if (b - a)[axis] <= 1.2 + (hi - lo)[axis] and clear(a, b):
                        box_lo, box_hi, grew = a, b, True
            if not grew:
                break
        centre = (box_lo + box_hi) / 2
        return centre @ Rt, (box_hi - box_lo) / 2
    return None


def _yaw_quat(yaw: float) -> tuple[float, float, float, float]:
    return (float(np.cos(yaw / 2)), 0.0, 0.0, float(np.sin(yaw / 2)))


def _static(obj: SceneObject, T: int) -> ObjectTrack:
    return ObjectTrack(obj, np.tile(np.r_[obj.pos, obj.quat], (T, 1)))


def object_penetration(clip: MotionClip, tracks: list[ObjectTrack],
                       floor: np.ndarray | None = None) -> np.ndarray:
    """(T,) per-frame penetration (m, beyond the metric's 5 mm tolerance) of the reference
    body into ``tracks`` only: scan with the objects minus scan of the floor alone (pass the
    floor-only scan as ``floor`` to reuse it)."""
    from ..evaluation.metrics import scan_contacts

    with_obj = scan_contacts(clip, tracks).penetration
    if floor is None:
        floor = scan_contacts(clip, []).penetration
    return np.maximum(0.0, with_obj - floor)


_PEN_LIMIT = MAX_PENETRATION_M - 0.005  # per-frame penetration beyond the 5 mm tolerance


@dataclass
class SceneResult:
    action: str
    tracks: list[ObjectTrack]
    intervals: list[tuple[float, float]]
    detected: bool  # the action came from the detection rules
    max_penetration_m: float  # max per-frame object penetration beyond 5 mm
    notes: list[str] = field(default_factory=list)

    def report(self) -> dict:
        return {"action": self.action, "detected": self.detected,
                "objects": [t.object.to_dict() for t in self.tracks],
                # SPEC penetration (beyond the 5 mm tolerance): any contact is at most 5 mm deeper
                "max_object_penetration_m": round(self.max_penetration_m, 5),
                "notes": self.notes}


def _support_objects(clip, g, runs, cfg, notes, floor) -> list[ObjectTrack]:
    tracks = []
    T = clip.num_frames
    for k, cluster in enumerate(_cluster(runs, cfg)):
        level = min(r.level for r in cluster)
        xy = np.concatenate([r.xy for r in cluster])
        w = np.array([r.stop - r.start for r in cluster], float)
        hd = np.array([r.heading for r in cluster])
        yaw = float(np.arctan2(np.sum(w * np.sin(hd)), np.sum(w * np.cos(hd))))
        fp = _footprint(xy, yaw, level, g, cfg)
        frames = ", ".join(f"{r.start}-{r.stop}" for r in sorted(cluster, key=lambda r: r.start))
        if fp is None:
            # no solid block fits (a ladder or climbing frame: the legs pass below the level
            # there): a rung, a bar across the heading under the support points
            radius = SceneObject("bar").dims["radius"]
            c = np.median(xy, axis=0)
            obj = SceneObject("bar", f"bar{k}", (float(c[0]), float(c[1]), level - radius),
                              _yaw_quat(yaw), {"length": 0.8})
            tr = _static(obj, T)
            if object_penetration(clip, [tr], floor).max() > _PEN_LIMIT:
                notes.append(f"level at {level:.2f} m (frames {frames}) skipped: neither a block "
                             f"nor a rung fits (the body passes through it)")
                continue
            notes.append(f"{obj.name}: rung at {level:.2f} m (no block fits), supports frames {frames}")
            tracks.append(tr)
            continue
        centre, half = fp
        seat_only = all(r.kind == "seat" for r in cluster)
        pos = (float(centre[0]), float(centre[1]), 0.0)
        if seat_only:  # a seat (a high one is a bar stool / bench: same object kind)
            obj = SceneObject("chair", f"chair{k}" if k else "chair", pos, _yaw_quat(yaw),
                              {"seat_height": level, "seat_depth": float(2 * half[0]),
                               "seat_width": float(2 * half[1])})
        else:
            kind = "step" if level <= 0.35 else "platform"
            obj = SceneObject(kind, f"{kind}{k}", pos, _yaw_quat(yaw),
                              {"height": level, "length": float(2 * half[0]), "width": float(2 * half[1])})
        tr = _static(obj, T)
        pen = object_penetration(clip, [tr], floor).max()
        if obj.kind == "chair" and pen > _PEN_LIMIT:
            obj = SceneObject("chair", obj.name, obj.pos, obj.quat, {**obj.size, "back_height": 0.02})
            tr = _static(obj, T)
            notes.append(f"{obj.name}: back rest dropped (the torso would hit it)")
            pen = object_penetration(clip, [tr], floor).max()
        lowest = min(float(np.min(r.bottoms)) for r in cluster)
        if pen > _PEN_LIMIT and level - lowest < 0.03 and obj.kind != "chair":
            # the top at the 10th percentile of the support: retry at its lowest point
            obj = SceneObject(obj.kind, obj.name, obj.pos, obj.quat, {**obj.size, "height": lowest - 0.002})
            tr = _static(obj, T)
            pen = object_penetration(clip, [tr], floor).max()
            level = lowest - 0.002
        if pen > _PEN_LIMIT:
            notes.append(f"{obj.name} at {level:.2f} m (frames {frames}) skipped: the body would "
                         f"penetrate it by {(pen + 0.005) * 100:.1f} cm")
            continue
        notes.append(f"{obj.name}: top {level:.2f} m, {2 * half[0]:.2f} x {2 * half[1]:.2f} m, "
                     f"supports frames {frames}")
        tracks.append(tr)
    return tracks


def _push_box(clip: MotionClip, cfg: SceneConfig, notes: list[str]) -> tuple[ObjectTrack, tuple[int, int]]:
    st = clip.body_states()
    pos, T = st.positions, clip.num_frames
    heading = rot.heading_angle(st.rotations[:, 0])
    fwd = np.stack([np.cos(heading), np.sin(heading)], 1)
    lh, rh = pos[:, BODY_INDEX["L_Hand"]], pos[:, BODY_INDEX["R_Hand"]]
    mid = (lh + rh) / 2
    ahead = np.minimum(np.sum((lh[:, :2] - pos[:, 0, :2]) * fwd, 1), np.sum((rh[:, :2] - pos[:, 0, :2]) * fwd, 1))
    vel = np.diff(_smooth(pos[:, 0]), axis=0, append=pos[-1:, 0]) * clip.fps
    moving = np.sum(vel[:, :2] * fwd, 1) > 0.1
    ok = (ahead > 0.25) & (mid[:, 2] > 0.4) & (mid[:, 2] < 1.5) & (np.linalg.norm(lh - rh, axis=1) < 0.6) & moving
    runs = _runs(ok, 10)
    if not runs:
        raise ScenePlacementError(
            f"{clip.name}: push: no frames with both hands >= 0.25 m in front of the pelvis at "
            f"0.4-1.5 m while walking forwards (push rule); no box placed")
    a, b = max(runs, key=lambda r: r[1] - r[0])
    side = float(np.clip(np.max(mid[a:b, 2]) + 0.1, 0.3, 1.0))
    yaw = float(heading[a])
    f0 = np.array([np.cos(yaw), np.sin(yaw)])
    centre = mid[:, :2] + f0 * (side / 2 + 0.04)
    centre[:a] = centre[a]
    centre[b:] = centre[b - 1]
    centre = _smooth(centre, 5)
    poses = np.zeros((T, 7))
    poses[:, :2] = centre
    poses[:, 2] = side / 2
    poses[:, 3:] = _yaw_quat(yaw)
    obj = SceneObject("box", "box", tuple(poses[0, :3]), _yaw_quat(yaw), {"side": side})
    notes.append(f"box: side {side:.2f} m, pushed over frames {a}-{b} "
                 f"({np.linalg.norm(centre[b - 1] - centre[a]):.2f} m)")
    return ObjectTrack(obj, poses), (a, b)


def _avoid_can(clip: MotionClip, g: GeomSamples, cfg: SceneConfig, notes: list[str]) -> ObjectTrack:
    st = clip.body_states()
    T = clip.num_frames
    can = SceneObject("can")
    r_can, h_can = can.dims["radius"], can.dims["height"]
    iv = clip.action_intervals
    mid_t = (iv[0][0] + iv[-1][1]) / 2 if iv else clip.duration / 2
    frames = np.clip(np.round(np.linspace(mid_t - 1.5, mid_t + 1.5, 13) * clip.fps).astype(int), 0, T - 1)
    low = (g.points[..., 2] - g.radius) < h_can
    P = g.points[::2, :, :2]
    L = low[::2]
    R = np.broadcast_to(g.radius, L.shape)
    best = None
    order = np.argsort(np.abs(frames - frames[len(frames) // 2]), kind="stable")
    for d in cfg.avoid_offsets_m:
        for f in frames[order]:
            hd = rot.heading_angle(st.rotations[f, 0])
            left = np.array([-np.sin(hd), np.cos(hd)])
            for sgn in (1, -1):
                c = st.positions[f, 0, :2] + sgn * d * left
                dist = np.linalg.norm(P - c, axis=-1) - R - r_can
                clearance = float(dist[L].min()) if L.any() else np.inf
                if clearance >= cfg.avoid_clearance_m:
                    best = (c, clearance, f, d)
                    break
            if best:
                break
        if best:
            break
    if best is None:
        raise ScenePlacementError(f"{clip.name}: avoid: no can position within 1 m of the path "
                                  f"that the body clears by {cfg.avoid_clearance_m} m")
    c, clearance, f, d = best
    obj = SceneObject("can", "can", (float(c[0]), float(c[1]), 0.0))
    notes.append(f"can: {d:.2f} m beside the path at frame {f}, clearance {clearance:.2f} m")
    return _static(obj, T)


def _distractor(clip: MotionClip, g: GeomSamples, cfg: SceneConfig, rng: np.random.Generator,
                notes: list[str]) -> list[ObjectTrack]:
    T = clip.num_frames
    xy = g.points[::3, :, :2].reshape(-1, 2)
    centre = xy.mean(0)
    table = SceneObject("table")
    reach = np.hypot(table.dims["length"], table.dims["width"]) / 2
    for _ in range(30):
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.0, 3.0)
        c = centre + dist * np.array([np.cos(ang), np.sin(ang)])
        if np.linalg.norm(xy - c, axis=1).min() - reach >= cfg.distractor_clearance_m and np.all(np.abs(c) < 4.5):
            obj = SceneObject("table", "table", (float(c[0]), float(c[1]), 0.0), _yaw_quat(rng.uniform(0, np.pi)))
            notes.append(f"table (distractor) {np.linalg.norm(xy - c, axis=1).min() - reach:.2f} m from the body")
            return [_static(obj, T)]
    notes.append("no room for a distractor")
    return []


def detect_action(clip: MotionClip, runs: list[SupportRun]) -> tuple[str, list[tuple[float, float]]]:
    """The detection rules for unlabelled clips (see the module docstring)."""
    for kind, action in (("seat", "sit"), ("foot", "step")):
        rs = [r for r in runs if r.kind == kind]
        if rs:
            return action, [(r.start / clip.fps, r.stop / clip.fps) for r in sorted(rs, key=lambda r: r.start)]
    return "locomotion", []


def synthesize_scene(clip: MotionClip, cfg: SceneConfig | None = None,
                     rng: np.random.Generator | None = None) -> SceneResult:
    """Objects for ``clip`` (world poses per frame), its action and a placement report.

    Raises :class:`ScenePlacementError` when the action's object cannot be placed or the
    reference body would penetrate an object by more than 1 cm.
    """
    cfg = cfg or SceneConfig()
    rng = rng or np.random.default_rng(0)
    g = sample_geoms(clip)
    runs = find_supports(clip, g, cfg)
    detected = clip.action is None
    if detected:
        action, intervals = detect_action(clip, runs)
    else:
        action, intervals = clip.action, list(clip.action_intervals)
    notes: list[str] = []
    tracks: list[ObjectTrack] = []
    from ..evaluation.metrics import scan_contacts

    floor = scan_contacts(clip, []).penetration
    tracks += _support_objects(clip, g, runs, cfg, notes, floor)  # every level it stands on
    if action in ("sit", "step") and not tracks:
        raise ScenePlacementError(f"{clip.name}: {action}: no support above the floor could be "
                                  f"placed (no seat or raised foot found, or none fits): "
                                  f"{'; '.join(notes) or 'no support runs'}")
    if action == "push":
        box, (a, b) = _push_box(clip, cfg, notes)
        pen = object_penetration(clip, [box], floor)
        if pen.max() > _PEN_LIMIT:
            raise ScenePlacementError(
                f"{clip.name}: push: a box at the hands (frames {a}-{b}) would be penetrated by "
                f"{(pen.max() + 0.005) * 100:.1f} cm at frame {int(np.argmax(pen))} (the motion is "
                f"not a push of an object)")
        tracks.append(box)
        if not intervals:
            intervals = [(a / clip.fps, b / clip.fps)]
    elif action == "avoid":
        tracks.append(_avoid_can(clip, g, cfg, notes))
    elif action == "locomotion" and not tracks and cfg.distractor:
        tracks += _distractor(clip, g, cfg, rng, notes)
    pen = object_penetration(clip, tracks, floor) if tracks else np.zeros(clip.num_frames)
    worst = float(pen.max()) if len(pen) else 0.0
    if worst > MAX_PENETRATION_M - 0.005 + 1e-9:
        f = int(np.argmax(pen))
        raise ScenePlacementError(f"{clip.name}: the reference body penetrates the placed objects by "
                                  f"{(worst + 0.005) * 100:.1f} cm at frame {f} (limit 1 cm)")
    return SceneResult(action, tracks, intervals, detected, worst, notes)
