"""Scene objects given with a head trajectory: a file of the objects a recording's wearer
interacts with, in the trajectory's own world, placed in kinpoly's world with the head.

A take built from mocap (`kinpoly ego build`) knows its objects. A real recording does not: the
user knows where the chair stood or has a tracked box's poses. ``--objects FILE`` (``kinpoly
estimate --head-poses``, ``kinpoly ego import-video`` / ``import-trajectory``, ``kinpoly
stream``) reads them from a YAML or JSON file::

    # in the head trajectory's world and units (the import's scale applies to positions;
    # a Unity or Unreal log's objects keep the engine's own axes and are mirrored with its
    # poses, Unreal's cm made metres)
    objects:
      - kind: chair             # chair, box, table, can, step, platform, bar, rail
        pos: [2.0, 0.4, 0.0]    # its base: the centre of its footprint (bar, rail: the axis)
        quat: [1, 0, 0, 0]      # wxyz, the object's X forward, Y left, Z up; optional
        size: {seat_height: 0.45}   # optional, metres (DEFAULT_SIZES); not scaled
      - kind: box
        track: box.csv          # a moving object: columns time (s, the trajectory's clock;
                                # for a trajectory without times, pose index / fps), x, y, z,
                                # qw, qx, qy, qz; a path relative to this file

``on_floor`` (default: true, but false for ``bar`` and ``rail``, which hang at their axis):
the object stands on the floor, so its base is put at kinpoly's floor (z = 0), which the import
places ``eye_height`` below the first frame's eyes. How far the given height was from it is
reported (``floor_offset_m``): an offset of more than a few centimetres means the eye height or
the object's height is off. An object that stands on the floor must be upright: its Z axis
within ``MAX_TILT_DEG`` of the world's up (in a Y-up world, an upright object's quaternion turns
its Z to the world's Y).

The policy reads the first object relative to the head (:mod:`.features`); the simulation has
them all (:mod:`kinpoly.humanoid.scene`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import rotations as rot
from ..humanoid.scene import OBJECT_KINDS, SceneObject
from .take import EgoDataError, EgoTake
from .trajectory import interpolate_poses

log = logging.getLogger(__name__)

HANGING_KINDS = ("bar", "rail")  # placed at their axis, not standing on the floor
MAX_TILT_DEG = 10.0  # an object standing on the floor leans at most this far from upright
FLOOR_WARNING_M = 0.1  # a given base further than this from the floor is reported as suspect
_KEYS = {"kind", "name", "pos", "quat", "size", "on_floor", "track"}


@dataclass
class ObjectTrackInput:
    """A moving object's poses in the trajectory's world: times (s) and (N, 7) poses (wxyz)."""

    times: np.ndarray
    poses: np.ndarray
    source: str


@dataclass
class SceneInput:
    """Objects as a user gives them (:func:`read_objects`): poses in the trajectory's world."""

    objects: list[SceneObject] = field(default_factory=list)
    tracks: list[ObjectTrackInput | None] = field(default_factory=list)  # None: static
    on_floor: list[bool] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def moving(self) -> list[int]:
        return [k for k, t in enumerate(self.tracks) if t is not None]

    def poses_at(self, times: np.ndarray | None, n: int | None = None) -> np.ndarray:
        """(T, K, 7) poses in the trajectory's world at ``times`` (s, the trajectory's clock;
        None: ``n`` frames of a scene without moving objects)."""
        T = len(times) if times is not None else int(n)
        out = np.zeros((T, len(self), 7))
        for k, (obj, track) in enumerate(zip(self.objects, self.tracks)):
            if track is None:
                out[:, k] = np.r_[obj.pos, obj.quat]
                continue
            if times is None:
                raise EgoDataError(f"{self.source}: {obj.name} moves (its track), which needs the frames' times")
            t = track.times
            if times[0] < t[0] - 1e-3 or times[-1] > t[-1] + 1e-3:
                raise EgoDataError(f"{track.source}: {obj.name}'s track covers {t[0]:.3f}-{t[-1]:.3f} s of the "
                                   f"trajectory's clock, the take {times[0]:.3f}-{times[-1]:.3f} s")
            out[:, k, :3], out[:, k, 3:] = interpolate_poses(t, track.poses[:, :3], track.poses[:, 3:],
                                                             np.clip(times, t[0], t[-1]))
        return out


def read_objects(path: str | os.PathLike) -> SceneInput:
    """Read an objects file (see the module docstring); errors name the file and the object."""
    import yaml

    from ..config import _yaml_problem

    path = Path(path)
    if not path.is_file():
        raise EgoDataError(f"{path}: no such objects file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:  # JSON is YAML
        raise EgoDataError(f"{path}: not a YAML/JSON objects file ({_yaml_problem(e)})") from None
    except UnicodeDecodeError:
        raise EgoDataError(f"{path}: not a text (YAML/JSON) objects file") from None
    items = data.get("objects") if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
        raise EgoDataError(f"{path}: expected a list of objects (or 'objects:' with one), each a mapping with "
                           f"kind and pos (or track)")
    scene = SceneInput(source=str(path))
    names: set[str] = set()
    for i, d in enumerate(items):
        where = f"{path}: object {i + 1}" + (f" ({d['name']})" if d.get("name") else "")
        unknown = set(d) - _KEYS
        if unknown:
            raise EgoDataError(f"{where}: unknown keys {sorted(unknown)} (known: {', '.join(sorted(_KEYS))})")
        kind = d.get("kind")
        if kind not in OBJECT_KINDS:
            raise EgoDataError(f"{where}: kind {kind!r}; one of {', '.join(OBJECT_KINDS)}")
        track = None
        if d.get("track") is not None:
            if "pos" in d or "quat" in d:
                raise EgoDataError(f"{where}: give pos/quat (a static object) or track (a moving one), not both")
            track = _read_track(path.parent / str(d["track"]), where)
            pose = track.poses[0]
        elif "pos" in d:
            pose = np.r_[_vector(d["pos"], 3, where, "pos"), _vector(d.get("quat", (1, 0, 0, 0)), 4, where, "quat")]
            if np.linalg.norm(pose[3:]) < 1e-6:
                raise EgoDataError(f"{where}: quat is zero (wxyz)")
        else:
            raise EgoDataError(f"{where}: needs pos (a static object) or track (a moving one)")
        name = str(d.get("name") or f"{kind}{i}")
        if name in names:
            raise EgoDataError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        try:
            obj = SceneObject(kind=kind, name=name, pos=tuple(pose[:3]), quat=tuple(pose[3:]),
                              size={k: float(v) for k, v in dict(d.get("size") or {}).items()})
        except (ValueError, TypeError) as e:
            raise EgoDataError(f"{where}: {e}") from None
        if any(not (np.isfinite(v) and v > 0) for v in obj.size.values()):
            raise EgoDataError(f"{where}: sizes must be positive metres, got {obj.size}")
        on_floor = d.get("on_floor", kind not in HANGING_KINDS)
        if not isinstance(on_floor, bool):
            raise EgoDataError(f"{where}: on_floor is true or false, got {on_floor!r}")
        scene.objects.append(obj)
        scene.tracks.append(track)
        scene.on_floor.append(on_floor)
    return scene


def _vector(v, n: int, where: str, key: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        a = np.zeros(0)
    if a.shape != (n,) or not np.isfinite(a).all():
        raise EgoDataError(f"{where}: {key} must be {n} finite numbers, got {v!r}")
    return a


def _read_track(path: Path, where: str) -> ObjectTrackInput:
    """A moving object's poses: a CSV with a header ``time, x, y, z, qw, qx, qy, qz`` or an npz
    of ``time`` (N), ``position`` (N, 3), ``quaternion`` (N, 4, wxyz); times in seconds on the
    head trajectory's clock, increasing."""
    import csv

    cols = ("time", "x", "y", "z", "qw", "qx", "qy", "qz")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            keys = {k.strip().lower(): k for k in (rows[0] if rows else {})}
            missing = [c for c in cols if c not in keys]
            if missing:
                raise EgoDataError(f"track {path}: needs the columns {', '.join(cols)} (missing {', '.join(missing)})")
            a = np.array([[float(r[keys[c]]) for c in cols] for r in rows])
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                a = np.c_[np.asarray(z["time"], np.float64).reshape(-1), np.asarray(z["position"], np.float64),
                          np.asarray(z["quaternion"], np.float64)]
        else:
            raise EgoDataError(f"track {path.name}: a .csv (time, x, y, z, qw, qx, qy, qz) or .npz file")
    except FileNotFoundError:
        raise EgoDataError(f"{where}: no such track file {path}") from None
    except EgoDataError as e:
        raise EgoDataError(f"{where}: {e}") from None
    except (OSError, KeyError, ValueError) as e:
        raise EgoDataError(f"{where}: unreadable track {path} ({type(e).__name__}: {e})") from None
    if len(a) < 2 or not np.isfinite(a).all() or (np.diff(a[:, 0]) <= 0).any():
        raise EgoDataError(f"{where}: track {path}: at least 2 finite poses at increasing times (s)")
    if (np.linalg.norm(a[:, 4:], axis=1) < 1e-6).any():
        raise EgoDataError(f"{where}: track {path}: a zero quaternion")
    a[:, 4:] /= np.linalg.norm(a[:, 4:], axis=1, keepdims=True)
    return ObjectTrackInput(a[:, 0], a[:, 1:], str(path))


@dataclass
class PlacedObjects:
    """Objects in kinpoly's world: the scene (poses of frame 0), per-frame world poses (T, K, 7)
    and what placing them did (``report``)."""

    objects: list[SceneObject]
    world: np.ndarray
    report: list[dict]


def place_objects(scene: SceneInput, poses: np.ndarray, levelling, floor: np.ndarray | None = None) -> PlacedObjects:
    """Input-world ``poses`` (T, K, 7) of ``scene``'s objects -> kinpoly's world with the head's
    ``levelling`` (:class:`~.trajectory.Levelling`): objects on the floor moved to z = 0 by the
    offset of their first frame (``floor``: those offsets (K,), e.g. a stream's from its first
    frame). Raises for a tilted object on the floor."""
    T, K = poses.shape[:2]
    world = levelling.poses(poses.reshape(-1, 7)).reshape(T, K, 7)
    world[..., 3:] = rot.quat_continuous(world[..., 3:], axis=0)
    if floor is None:
        floor = floor_offsets(scene, world[0])
    world[..., 2] += floor
    objects, report = [], []
    for k, obj in enumerate(scene.objects):
        objects.append(replace(obj, pos=tuple(world[0, k, :3]), quat=tuple(world[0, k, 3:])))
        report.append({"name": obj.name, "kind": obj.kind, "moving": scene.tracks[k] is not None,
                       "on_floor": scene.on_floor[k], "floor_offset_m": round(float(floor[k]), 4)})
    return PlacedObjects(objects, world, report)


def floor_offsets(scene: SceneInput, first: np.ndarray) -> np.ndarray:
    """(K,) heights that put the objects on the floor at their first levelled poses ``first``
    (K, 7) (0 for hanging ones); raises for a tilted one standing on the floor."""
    out = np.zeros(len(scene))
    for k, obj in enumerate(scene.objects):
        if not scene.on_floor[k]:
            continue
        up = rot.quat_to_matrix(first[k, 3:])[:, 2]
        tilt = float(np.degrees(np.arccos(np.clip(up[2], -1.0, 1.0))))
        if tilt > MAX_TILT_DEG and scene.tracks[k] is None:
            raise EgoDataError(f"{scene.source}: {obj.name} stands on the floor but its Z axis is {tilt:.0f} degrees "
                               f"from the world's up (an object's axes: X forward, Y left, Z up; in a Y-up world "
                               f"an upright object's quaternion turns its Z to the world's Y)")
        out[k] = -first[k, 2]
        if abs(out[k]) > FLOOR_WARNING_M:
            log.warning(
                "%s: %s's base is %.2f m %s the floor the import assumes (eye height below the first eyes); "
                "put on it (on_floor: false keeps it where given)", scene.source, obj.name, abs(out[k]),
                "above" if out[k] < 0 else "below")
    return out


def attach_objects(take: EgoTake, scene: SceneInput, levelling, times: np.ndarray | None) -> list[dict]:
    """Give an imported ``take`` the ``scene``'s objects (its world poses, the poses relative to
    the head that the policy reads, the scene its simulation builds) at the take frames'
    ``times`` (s, the trajectory's clock); returns the placing report."""
    from .features import objects_relative_to_head

    placed = place_objects(scene, scene.poses_at(times, take.num_frames), levelling)
    take.object_world = placed.world
    take.object_poses = objects_relative_to_head(take.head_pose, placed.world)
    take.object_kinds = [o.kind for o in placed.objects]
    take.object_names = [o.name for o in placed.objects]
    take.meta["objects"] = [o.to_dict() for o in placed.objects]
    return placed.report
