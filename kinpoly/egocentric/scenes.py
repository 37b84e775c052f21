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
- **Seat rails.** Where no chair fits a seat (the CMU playground takes sit on a climbing
  frame's top: the legs pass below that level around it while climbing), the seat is a
  ``rail``, a horizontal capsule the evaluation counts as a seat (:func:`fit_seat_rail`): on
  dense geom samples (21 per capsule) it searches the rail's direction (across the heading
  first), radius, forward offset and lateral extent, with its top as high as the sitter allows
  and no body sample of *any* frame (climbing past it, hands gripping it, sliding off it)
  inside it deeper than 6.5 mm, then checks it with MuJoCo. It must seat the sitter: the
  pelvis, or both thighs, within 2 cm above it in at least half of the sit frames, touching
  in some. Otherwise the seat is skipped and the scene's ``missing`` gives the measured reason
  (the best valid rail's support; where and how deep the body enters the rail that would seat
  the sitter).
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
:class:`ScenePlacementError` with the reason; it is reported, never faked. A sit take whose
seat cannot be placed but which stands on rungs keeps them, and lists the seat with its
reason in :attr:`SceneResult.missing` (its sit criterion cannot be scored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from .. import rotations as rot
from ..errors import InputError
from ..humanoid.mjcf import build_model
from ..humanoid.scene import SEAT_KINDS, SceneObject
from ..humanoid.skeleton import BODY_INDEX, BODY_NAMES, NUM_BODIES, QPOS_DIM
from ..motion.clip import MotionClip, ObjectTrack

MAX_PENETRATION_M = 0.01  # the reference body may touch an object at most this deep


class ScenePlacementError(InputError):
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


@dataclass(frozen=True)
class RailConfig:
    """The seat-rail search (:func:`fit_seat_rail`; a seat where no chair fits). Kept out of
    :class:`SceneConfig` so that the dataset's settings hash (``EgoConfig.digest``) is
    unchanged by it."""

    radii: tuple[float, ...] = (0.03, 0.05)
    min_length: float = 0.1  # m, cylinder part
    max_length: float = 0.8
    search_m: float = 0.3  # m, forward/back offsets searched around the seat points
    max_depth_m: float = 0.0065  # m, deepest any body sample may enter the rail
    max_gap_m: float = 0.02  # m, pelvis or both thighs this close above it: supported
    min_support: float = 0.5  # of the sit frames supported, to seat the sitter
    yaw_offsets_deg: tuple[float, ...] = (0.0, 45.0, -45.0, 90.0)  # from across the heading


RAIL = RailConfig()


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


def sample_geoms(clip: MotionClip, stride: int = 1, capsule_points: int = 5,
                 box_points: int = 2) -> GeomSamples:
    """Sample points of the humanoid's geoms at every ``stride``-th frame: ``capsule_points``
    along each capsule's axis, each sphere's centre, a ``box_points``-per-edge grid over each
    box's surface (2: its corners). Dense samples (21 per capsule: at most 1 mm between the
    sampled spheres' union and the capsule) are needed against thin objects such as rails."""
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
            for s in np.linspace(-1.0, 1.0, capsule_points):
                pts.append(xpos[:, j] + s * size[1] * xmat[:, j, :, 2])
                rad.append(size[0]); body.append(b)
        elif t == mujoco.mjtGeom.mjGEOM_SPHERE:
            pts.append(xpos[:, j]); rad.append(size[0]); body.append(b)
        else:  # box surface (corners for box_points=2)
            ax = np.linspace(-1.0, 1.0, box_points)
            for c in np.array(np.meshgrid(ax, ax, ax)).T.reshape(-1, 3):
                if np.abs(c).max() < 1.0:
                    continue
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


@dataclass
class RailFit:
    """A seat rail fitted under a sitter (see :func:`fit_seat_rail`), in world coordinates."""

    centre: np.ndarray  # (3,) axis midpoint
    yaw: float  # the rail lies across this direction (its local +X)
    radius: float
    length: float  # of the cylinder part (the capsule adds ``radius`` at each end)
    sit_frames: int  # frames of the sit runs
    supported_frames: int  # sit frames with the pelvis, or both thighs, within max_gap_m
    touch_frames: int  # sit frames in which a pelvis/thigh geom touches it (from above)
    median_gap_m: dict[str, float]  # per seat body: median over the sit frames of its clearance


_SEAT_PARTS = {"pelvis": [BODY_INDEX["Pelvis"]], "left thigh": [BODY_INDEX["L_Hip"]],
               "right thigh": [BODY_INDEX["R_Hip"]]}


def _rail_clearance(points: np.ndarray, radius: np.ndarray, centre: np.ndarray, yaw: float,
                    rb: float, length: float) -> np.ndarray:
    """Clearance (m, negative inside) of sample spheres ``points`` (..., 3) / ``radius`` from a
    capsule of radius ``rb`` whose axis (``length`` long, centred at ``centre``) lies across
    ``yaw``."""
    d = points - centre
    ds = d[..., :2] @ np.array([np.cos(yaw), np.sin(yaw)])
    dl = np.maximum(0.0, np.abs(d[..., :2] @ np.array([-np.sin(yaw), np.cos(yaw)])) - length / 2)
    return np.sqrt(ds ** 2 + dl ** 2 + d[..., 2] ** 2) - radius - rb


@dataclass
class _RailSamples:
    """Body samples near a candidate rail direction: lateral coordinate ``L``, height ``Z``,
    radius ``R``, frame, seat part (row of ``_SEAT_PARTS`` or -1) and whether the sample is a
    seat sample of a sit frame."""

    L: np.ndarray
    Z: np.ndarray
    R: np.ndarray
    frame: np.ndarray
    part: np.ndarray
    isseat: np.ndarray


@dataclass
class _RailCells:
    """Per lateral cell (``edges``) of a rail: the forbidden axis heights (``diff``: +1/-1 per
    cell and height bin of ``nz`` bins of ``dz`` from ``zlo``), the highest axis the sitter's
    seat samples allow (``up``) and the resting bounds per seat part and sit frame (``rest``).
    ``frame_col`` maps a frame to its sit-frame column (-1: not a sit frame); ``pa`` is the
    allowed depth and ``gap`` the support gap."""

    edges: np.ndarray
    zlo: float
    dz: float
    nz: int
    frame_col: np.ndarray
    pa: float
    gap: float

    def __post_init__(self):
        nc, n_sit = len(self.edges) - 1, int(np.sum(self.frame_col >= 0))
        self.diff = np.zeros(nc * (self.nz + 1), np.int64)
        self.up = np.full(nc, np.inf)
        self.rest = np.full((4, nc, n_sit), np.inf)

    def add(self, smp: _RailSamples, idx: np.ndarray, d2: np.ndarray, rb: float) -> None:
        """Accumulate the samples ``idx`` (``d2``: their squared distance to the rail's axis
        along the search direction) for a rail of radius ``rb``."""
        edges, nz, pa, gap = self.edges, self.nz, self.pa, self.gap
        nc, cw = len(edges) - 1, edges[1] - edges[0]
        Lm, Zm, Rm, d2m = smp.L[idx], smp.Z[idx], smp.R[idx], d2[idx]
        # (sample, cell) pairs within reach across the rail
        r_out = Rm + rb + gap
        c0 = np.clip(np.floor((Lm - r_out - edges[0]) / cw).astype(int), 0, nc)
        c1 = np.clip(np.ceil((Lm + r_out - edges[0]) / cw).astype(int), 0, nc)
        cnt = c1 - c0
        pi = np.repeat(np.arange(len(Lm)), cnt)
        ci = c0[pi] + np.arange(len(pi)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        Lp, Zp, Rp = Lm[pi], Zm[pi], Rm[pi]
        dl = np.maximum(0.0, np.maximum(edges[ci] - Lp, Lp - edges[ci + 1]))
        h2 = d2m[pi] + dl ** 2  # squared horizontal distance to the cell's axis
        # forbidden axis heights: |z - zc| < sqrt((R + rb - pa)^2 - h2)
        q = (Rp + rb - pa) ** 2 - h2
        k = q > 0
        hh = np.sqrt(q[k])
        lo, hi, ck = Zp[k] - hh, Zp[k] + hh, ci[k]
        a = np.clip(np.floor((lo - self.zlo) / self.dz).astype(int) + 1, 0, nz)
        b = np.clip(np.ceil((hi - self.zlo) / self.dz).astype(int), 0, nz)
        self.diff += np.bincount(ck * (nz + 1) + a, minlength=len(self.diff))
        self.diff -= np.bincount(ck * (nz + 1) + b, minlength=len(self.diff))
        seat = smp.isseat[idx][pi]
        np.minimum.at(self.up, ck[seat[k]], lo[seat[k]])
        # resting on it from above (normal within 45 degrees of vertical), within ``gap`` (rows:
        # pelvis, left thigh, right thigh) or touching (row 3): the axis above
        # z - sqrt((R + rb + gap)^2 - h2)
        over = (h2 <= 0.5 * (Rp + rb) ** 2) & seat
        col = self.frame_col[smp.frame[idx][pi]]
        pp = smp.part[idx][pi]
        for p, extra in ((0, gap), (1, gap), (2, gap), (3, 0.0)):
            q0 = (Rp + rb + extra) ** 2 - h2
            sel = (q0 > 0) & over & ((pp == p) if p < 3 else True)
            np.minimum.at(self.rest[p], (ci[sel], col[sel]), Zp[sel] - np.sqrt(q0[sel]))


def fit_seat_rail(sit: np.ndarray, g: GeomSamples, level: float, yaw: float, origin: np.ndarray,
                  cfg: RailConfig = RAIL) -> tuple[RailFit | None, str]:
    """The horizontal rail (a capsule) that seats the sitter of the ``sit`` frames (T,) best
    without the body entering it deeper than ``cfg.max_depth_m`` at *any* frame.

    Candidates: a rail across the sitter's heading ``yaw`` (then turned by
    ``cfg.yaw_offsets_deg`` if none seats the sitter), radius from ``cfg.radii``, at
    forward offsets within ``cfg.search_m`` of ``origin`` (the seat support points'
    median), spanning any run of 2 cm cells across it (``cfg.min_length`` to
    ``max_length``). Its axis is as high as the sit frames allow (no pelvis/thigh sample
    deeper than the limit), and it is valid when no body sample of any frame (``g`` must be
    dense: the climb, the hands gripping the frame, the descent) enters it deeper than that.
    A sit frame is *supported* when the pelvis, or both thighs, rest within
    ``cfg.max_gap_m`` above it; the valid rail supporting the most sit frames wins (then
    the one touching most, then the longer). It seats the sitter when it supports at least
    ``cfg.min_support`` of the sit frames and touches them in some frame; otherwise
    ``(None, reason)`` gives the measured reason: the best rail's support, or where the body
    enters the rail that would seat the sitter.
    """
    T = g.points.shape[0]
    sit_idx = np.flatnonzero(sit)
    if not len(sit_idx):
        return None, "no sit frames"
    frame_col = np.full(T, -1)
    frame_col[sit_idx] = np.arange(len(sit_idx))
    part_of = np.full(len(g.body), -1)
    for p, bodies in enumerate(_SEAT_PARTS.values()):
        part_of[np.isin(g.body, bodies)] = p
    seat_body = np.isin(g.body, _SEAT)
    reach = float(g.radius.max()) + max(cfg.radii) + cfg.max_gap_m
    span, cw, dz = cfg.search_m, 0.02, 0.001
    zlo, nz = level - 0.35, 701
    min_cells = max(1, int(round(cfg.min_length / cw)))
    max_cells = int(round(cfg.max_length / cw))
    pa, gap = cfg.max_depth_m, cfg.max_gap_m
    best, best_any = None, None  # (key, (yaw, rb, s0, e0, e1, zc))
    for oi, off in enumerate(cfg.yaw_offsets_deg):
        if best is not None and best[0][0] >= cfg.min_support * len(sit_idx) and best[0][1]:
            break  # a rail across a preferred direction seats the sitter
        yw = yaw + np.radians(off)
        fwd = np.array([np.cos(yw), np.sin(yw)])
        left = np.array([-np.sin(yw), np.cos(yw)])
        rel = g.points[..., :2] - origin
        S, L, Z = rel @ fwd, rel @ left, g.points[..., 2]
        seat = np.broadcast_to(seat_body, S.shape) & sit[:, None]
        low = seat & (np.abs(Z - level) < 0.1)
        lat_seat = L[low] if low.any() else L[seat]
        c_lo = np.floor((np.percentile(lat_seat, 1) - 0.2) / cw) * cw
        c_hi = np.ceil((np.percentile(lat_seat, 99) + 0.2) / cw) * cw
        edges = np.arange(c_lo, c_hi + cw / 2, cw)
        nc = len(edges) - 1
        near = (np.abs(S) < span + reach) & (L > c_lo - reach) & (L < c_hi + reach) & \
            (np.abs(Z - level) < 0.35 + reach)
        fi, pi_ = np.nonzero(near)
        S = S[near]
        smp = _RailSamples(L=L[near], Z=Z[near], R=g.radius[pi_], frame=fi, part=part_of[pi_],
                           isseat=seat[near])
        for ri, rb in enumerate(cfg.radii):
            for s0 in np.arange(-span, span + 1e-9, 0.02):
                d2 = (S - s0) ** 2
                m = d2 < (smp.R + rb + gap) ** 2
                if not (m & smp.isseat).any():
                    continue
                cells = _RailCells(edges, zlo, dz, nz, frame_col, pa, gap)
                for ch in np.array_split(np.flatnonzero(m), max(1, int(np.sum(m)) // 100_000)):
                    cells.add(smp, ch, d2, rb)
                diff, up, rest = cells.diff, cells.up, cells.rest
                forb = np.cumsum(diff.reshape(nc, nz + 1), axis=1)[:, :nz] > 0
                cum = np.concatenate([np.zeros((1, nz), int), np.cumsum(forb, axis=0)])
                for i in range(nc - min_cells + 1):
                    j1 = min(nc, i + max_cells)
                    zc_up = np.minimum.accumulate(up[i:j1])  # rail over cells i..j
                    tmin = np.minimum.accumulate(rest[:, i:j1], axis=1)
                    zb = np.floor((np.minimum(zc_up, zlo + (nz - 1) * dz) - zlo) / dz)
                    okz = np.isfinite(zc_up) & (zb >= 0)
                    okz[:min_cells - 1] = False
                    if not okz.any():
                        continue
                    js = np.flatnonzero(okz)
                    zb = zb[js].astype(int)
                    zc = zlo + zb * dz
                    r = tmin[:, js] < zc[None, :, None]
                    supported = np.sum(r[0] | (r[1] & r[2]), axis=1)
                    touch = np.sum(r[3], axis=1)
                    free = (cum[i + js + 1, zb] - cum[i, zb]) == 0
                    # ranking: supported frames, then touching frames, then length (ties: the
                    # earlier radius and direction)
                    score = supported * 1e8 + touch * 1e4 + js
                    for pick, is_free in ((np.argmax(score), False),
                                          (np.argmax(np.where(free, score, -1)), True)):
                        if is_free and not free[pick]:
                            continue
                        key = (int(supported[pick]), int(touch[pick]), int(js[pick]) + 1)
                        cand = (key, (yw, rb, s0, edges[i], edges[i + js[pick] + 1], zc[pick]))
                        if is_free and (best is None or key > best[0]):
                            best = cand
                        if not is_free and (best_any is None or key > best_any[0]):
                            best_any = cand

    def fit_of(c) -> RailFit:
        (supported, touch, *_), (yw, rb, s0, e0, e1, zc) = c
        fwd = np.array([np.cos(yw), np.sin(yw)])
        left = np.array([-np.sin(yw), np.cos(yw)])
        centre = np.r_[origin + s0 * fwd + (e0 + e1) / 2 * left, zc]
        gaps = {}
        for name, bodies in _SEAT_PARTS.items():
            sel = np.isin(g.body, bodies)
            cl = _rail_clearance(g.points[sit_idx][:, sel], g.radius[sel], centre, yw, rb, e1 - e0)
            gaps[name] = float(np.median(cl.min(1)))
        return RailFit(centre, float(yw), float(rb), float(e1 - e0), len(sit_idx), supported, touch, gaps)

    n = len(sit_idx)
    if best is not None and best[0][0] >= cfg.min_support * n and best[0][1] > 0:
        return fit_of(best), ""
    why = []
    if best is not None:
        f = fit_of(best)
        why.append(f"the best rail that no frame enters supports the pelvis or both thighs in "
                   f"{f.supported_frames}/{n} sit frames and touches them in {f.touch_frames} "
                   f"(needs {cfg.min_support:.0%} and one)")
    if best_any is not None and best_any[0][0] > 0:
        f = fit_of(best_any)
        cl = _rail_clearance(g.points, g.radius, f.centre, f.yaw, f.radius, f.length)
        depth = np.maximum(0.0, -cl)  # (T, P)
        worst = depth.max(1)
        bad = np.flatnonzero(worst > pa)
        if len(bad):
            t = int(bad[np.argmax(worst[bad])])
            part = BODY_NAMES[int(g.body[int(np.argmax(depth[t]))])]
            spans = np.split(bad, np.flatnonzero(np.diff(bad) > 1) + 1)
            hits = np.array([np.isin(np.arange(NUM_BODIES), g.body[depth[t_] > pa]) for t_ in bad])
            order = np.argsort(-hits.sum(0), kind="stable")
            who = ", ".join(f"{BODY_NAMES[b]} {int(hits[:, b].sum())}" for b in order[:4] if hits[:, b].any())
            why.append(f"a rail that seats the sitter ({f.supported_frames}/{n} frames, top "
                       f"{f.centre[2] + f.radius:.2f} m) is entered by the body in {len(bad)} "
                       f"other frames ({', '.join(f'{s[0]}-{s[-1]}' for s in spans[:6])}"
                       f"{', ...' if len(spans) > 6 else ''}; frames per body: {who}), deepest "
                       f"{worst[t] * 100:.1f} cm ({part}, frame {t})")
    return None, "; ".join(why) or "no rail under the sitter's pelvis/thighs"


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
    # what the action needs but could not be placed, with the measured reason (e.g. a sit
    # take without a seat: its evaluation's sit criterion cannot be scored)
    missing: list[str] = field(default_factory=list)

    def report(self) -> dict:
        return {"action": self.action, "detected": self.detected,
                "objects": [t.object.to_dict() for t in self.tracks],
                # SPEC penetration (beyond the 5 mm tolerance): any contact is at most 5 mm deeper
                "max_object_penetration_m": round(self.max_penetration_m, 5),
                "notes": self.notes, "missing": self.missing}


def _seat_rail(clip: MotionClip, gd: GeomSamples, cluster: list[SupportRun], yaw: float,
               level: float, name: str, floor: np.ndarray) -> tuple[ObjectTrack | None, str]:
    """A ``rail`` seat for a seat cluster where no chair fits (:func:`fit_seat_rail` on the dense
    samples ``gd``), checked with MuJoCo: (track, note) or (None, the measured reason)."""
    from ..evaluation.metrics import SIT_BODIES, scan_contacts

    T = clip.num_frames
    sit = np.zeros(T, bool)
    for r in cluster:
        sit[r.start:r.stop] = True
    fit, why = fit_seat_rail(sit, gd, level, yaw, np.median(np.concatenate([r.xy for r in cluster]), 0))
    if fit is None:
        return None, why
    rows = [BODY_INDEX[b] for b in SIT_BODIES]
    for drop_mm in range(6):  # the dense samples are within 1 mm of the geoms; MuJoCo decides
        centre = fit.centre - np.array([0.0, 0.0, drop_mm / 1000])
        obj = SceneObject("rail", name, tuple(centre), _yaw_quat(fit.yaw),
                          {"radius": fit.radius, "length": round(fit.length, 4)})
        tr = _static(obj, T)
        scan = scan_contacts(clip, [tr])
        pen = float(np.max(np.maximum(0.0, scan.penetration - floor)))
        if pen <= _PEN_LIMIT:
            break
    if pen > _PEN_LIMIT:
        return None, (f"the fitted rail (top {fit.centre[2] + fit.radius:.2f} m) is penetrated by "
                      f"{(pen + 0.005) * 100:.1f} cm in the MuJoCo check")
    if not scan.touched[rows, 0].any():
        return None, "the fitted rail does not touch the sitter's pelvis/thighs in the MuJoCo check"
    gaps = ", ".join(f"{k} {v * 100:.1f}" for k, v in fit.median_gap_m.items())
    off = (np.degrees(fit.yaw - yaw) + 180) % 360 - 180
    return tr, (f"top {centre[2] + fit.radius:.2f} m, {fit.length:.2f} m long, radius "
                f"{fit.radius:.2f} m, across the heading{f' turned {off:.0f} deg' if abs(off) > 0.5 else ''}; "
                f"pelvis or both thighs within {RAIL.max_gap_m * 100:.0f} cm of it in "
                f"{fit.supported_frames}/{fit.sit_frames} sit frames, touching in {fit.touch_frames}; "
                f"median clearance (cm): {gaps}")


def _support_objects(clip, g, runs, cfg, notes, floor, missing=None) -> list[ObjectTrack]:
    tracks = []
    T = clip.num_frames
    gd = None  # dense samples, for seat rails
    for k, cluster in enumerate(_cluster(runs, cfg)):
        level = min(r.level for r in cluster)
        xy = np.concatenate([r.xy for r in cluster])
        w = np.array([r.stop - r.start for r in cluster], float)
        hd = np.array([r.heading for r in cluster])
        yaw = float(np.arctan2(np.sum(w * np.sin(hd)), np.sum(w * np.cos(hd))))
        fp = _footprint(xy, yaw, level, g, cfg)
        frames = ", ".join(f"{r.start}-{r.stop}" for r in sorted(cluster, key=lambda r: r.start))
        seat_only = all(r.kind == "seat" for r in cluster)
        if seat_only:
            # a seat: a chair (a high one is a bar stool / bench: same object kind); where no
            # chair fits (a climbing frame: the body passes around and below it), a rail
            name = f"chair{k}" if k else "chair"
            if fp is None:
                why_chair = "the body passes below the seat level around the seat"
            else:
                centre, half = fp
                obj = SceneObject("chair", name, (float(centre[0]), float(centre[1]), 0.0), _yaw_quat(yaw),
                                  {"seat_height": level, "seat_depth": float(2 * half[0]),
                                   "seat_width": float(2 * half[1])})
                tr = _static(obj, T)
                pen = object_penetration(clip, [tr], floor).max()
                if pen > _PEN_LIMIT:
                    obj = SceneObject("chair", obj.name, obj.pos, obj.quat, {**obj.size, "back_height": 0.02})
                    tr = _static(obj, T)
                    notes.append(f"{obj.name}: back rest dropped (the torso would hit it)")
                    pen = object_penetration(clip, [tr], floor).max()
                if pen <= _PEN_LIMIT:
                    notes.append(f"{obj.name}: seat {level:.2f} m, {2 * half[0]:.2f} x {2 * half[1]:.2f} m, "
                                 f"supports frames {frames}")
                    tracks.append(tr)
                    continue
                why_chair = f"the body would penetrate a chair by {(pen + 0.005) * 100:.1f} cm"
            if gd is None:
                gd = sample_geoms(clip, capsule_points=21, box_points=5)
            tr, why = _seat_rail(clip, gd, cluster, yaw, level, f"rail{k}", floor)
            if tr is None:
                notes.append(f"seat at {level:.2f} m (frames {frames}) skipped: no chair fits "
                             f"({why_chair}); no rail either: {why}")
                if missing is not None:
                    missing.append(f"seat at {level:.2f} m (frames {frames}): {why}")
                continue
            notes.append(f"{tr.object.name}: seat rail (no chair fits: {why_chair}): {why}; sit frames {frames}")
            tracks.append(tr)
            continue
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
        pos = (float(centre[0]), float(centre[1]), 0.0)
        kind = "step" if level <= 0.35 else "platform"
        obj = SceneObject(kind, f"{kind}{k}", pos, _yaw_quat(yaw),
                          {"height": level, "length": float(2 * half[0]), "width": float(2 * half[1])})
        tr = _static(obj, T)
        pen = object_penetration(clip, [tr], floor).max()
        lowest = min(float(np.min(r.bottoms)) for r in cluster)
        if pen > _PEN_LIMIT and level - lowest < 0.03:
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
    missing: list[str] = []
    tracks += _support_objects(clip, g, runs, cfg, notes, floor, missing)  # every level it stands or sits on
    if action == "sit" and not any(t.object.kind in SEAT_KINDS for t in tracks):
        missing[:] = [f"seat (sit): {m}" for m in missing] or ["seat (sit): no sitting pose found"]
    else:
        missing.clear()  # a seat of another sit run was placed
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
    return SceneResult(action, tracks, intervals, detected, worst, notes, missing)


def clip_in_scene(clip: MotionClip, cfg: SceneConfig | None = None) -> tuple[MotionClip, dict]:
    """``clip`` with the objects its labelled action interacts with (seats, steps, climbing-frame
    bars, a pushed box, an obstacle to duck under), for tracking it in physics: a controller
    that follows a climb in an empty room must hold the body up in the air with its residual
    force alone. A clip without an action label comes back as it is; one whose scene cannot be
    placed without objects; the report says which and why. No distractor objects are added."""
    from dataclasses import replace

    if clip.action is None:
        return clip, {"clip": clip.name, "objects": [t.object.kind for t in clip.objects], "note": "no action label"}
    cfg = replace(cfg or SceneConfig(), distractor=False)
    try:
        scene = synthesize_scene(clip, cfg)
    except ScenePlacementError as e:
        return replace(clip, objects=[]), {"clip": clip.name, "objects": [], "note": str(e)}
    note = "; ".join(scene.notes) or ("" if scene.tracks else f"{scene.action}: nothing to place")
    return (replace(clip, objects=scene.tracks),
            {"clip": clip.name, **scene.report(), "objects": [t.object.kind for t in scene.tracks], "note": note})
