"""The one motion type inside kinpoly, its on-disk format and a folder of clips with an index.

A :class:`MotionClip` is a humanoid ``qpos`` track (T x 76: root position, root quaternion
wxyz, 69 hinge angles in MuJoCo body order) at ``fps`` (30 Hz after import) plus the body it
was made for, provenance (name, source, licence), an optional action label with its time
intervals, optional object tracks and the retargeting error. Everything else (body positions
and orientations, head pose, velocities) is derived by forward kinematics, vectorised.

On disk, one clip is one ``<name>.npz`` holding the arrays (``qpos``, ``object_poses``) and a
JSON string ``meta`` with the rest. A clip folder has an ``index.json`` summarising its clips
(name, file, frames, fps, action, source, licence, retargeting error) so tools can list a
dataset without opening every file. Every write is atomic (temporary file + rename), so a
killed run never leaves a half-written clip or index.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..humanoid.kinematics import BodyStates, forward_kinematics, head_pose
from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import QPOS_DIM, BodyShape
from .. import rotations as rot
from ..errors import InputError, did_you_mean

ACTIONS = ("sit", "push", "avoid", "step", "locomotion")
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
# mocap formats `kinpoly motion import` reads that are never a clip file (clips are .npz, as AMASS files are)
MOCAP_SUFFIXES = (".bvh", ".amc", ".txt", ".json", ".npy", ".p", ".pkl")


class ClipError(InputError):
    """A clip is invalid or cannot be read. The message names the clip or file."""


@dataclass
class ObjectTrack:
    """An object in the clip's scene and its pose per frame ((T, 7): position + quat wxyz)."""

    object: SceneObject
    poses: np.ndarray

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, dtype=np.float64)
        if self.poses.ndim != 2 or self.poses.shape[1] != 7:
            raise ClipError(f"object {self.object.name}: poses must be (T, 7), got {self.poses.shape}")


@dataclass
class MotionClip:
    name: str
    qpos: np.ndarray
    fps: float = 30.0
    body: BodyShape = field(default_factory=BodyShape)
    source: str = ""
    license: str = ""
    action: str | None = None
    action_intervals: list[tuple[float, float]] = field(default_factory=list)
    objects: list[ObjectTrack] = field(default_factory=list)
    retarget_error_mm: float | None = None
    retarget_max_error_mm: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.qpos = np.asarray(self.qpos, dtype=np.float64)
        if self.qpos.ndim != 2 or self.qpos.shape[1] != QPOS_DIM:
            raise ClipError(f"{self.name}: qpos must be (T, {QPOS_DIM}), got {self.qpos.shape}")
        if self.qpos.shape[0] < 1:
            raise ClipError(f"{self.name}: clip has no frames")
        bad = ~np.isfinite(self.qpos).all(axis=1)
        if bad.any():
            raise ClipError(f"{self.name}: {bad.sum()} frame(s) contain NaN/inf (first at frame {np.argmax(bad)})")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ClipError(f"{self.name}: invalid frame rate {self.fps}")
        if self.action is not None and self.action not in ACTIONS:
            raise ClipError(f"{self.name}: unknown action {self.action!r}; known: {', '.join(ACTIONS)}")
        for track in self.objects:
            if len(track.poses) != len(self.qpos):
                raise ClipError(f"{self.name}: object {track.object.name} has {len(track.poses)} poses "
                                f"for {len(self.qpos)} frames")
        self._states: BodyStates | None = None

    # --- derived quantities -------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def body_states(self) -> BodyStates:
        """Global positions/orientations of the 24 bodies (computed once, then cached)."""
        if self._states is None:
            self._states = forward_kinematics(self.qpos, self.body, self.fps)
        return self._states

    def head_pose(self) -> np.ndarray:
        """(T, 7) eye position + head orientation (wxyz) per frame."""
        return head_pose(self.body_states(), self.body)

    def object_poses_at(self, frame: int) -> np.ndarray | None:
        """(n_objects, 7) poses of the clip's objects at ``frame``; None without objects."""
        if not self.objects:
            return None
        return np.stack([t.poses[frame] for t in self.objects])

    def qvel(self) -> np.ndarray:
        """(T, 75) generalised velocities in MuJoCo's convention (root angular in body axes)."""
        q = self.qpos
        root_r = rot.quat_to_matrix(q[:, 3:7])
        lin = rot.linear_velocity(q[:, :3], self.fps)
        ang = rot.angular_velocity(root_r, self.fps, frame="local")
        hinge = rot.linear_velocity(np.unwrap(q[:, 7:], axis=0), self.fps)
        return np.concatenate([lin, ang, hinge], axis=1)

    def smoothed(self, sigma: float) -> "MotionClip":
        """The body's motion low-passed over time by a zero-phase Gaussian of ``sigma`` frames:
        root position, root quaternion (signs made continuous, renormalised) and hinge angles
        (unwrapped). Offline: each frame reads about 3 sigma frames ahead. 0 returns the clip."""
        if sigma < 0 or not np.isfinite(sigma):
            raise ValueError(f"smoothing sigma must be >= 0 frames, got {sigma}")
        if sigma == 0 or self.num_frames < 2:
            return self
        from scipy.ndimage import gaussian_filter1d

        q = self.qpos.copy()
        quat = q[:, 3:7].copy()
        flips = np.cumsum(np.r_[False, np.sum(quat[1:] * quat[:-1], axis=1) < 0]) % 2 == 1
        quat[flips] *= -1
        quat = gaussian_filter1d(quat, sigma, axis=0, mode="nearest")
        q[:, :3] = gaussian_filter1d(q[:, :3], sigma, axis=0, mode="nearest")
        q[:, 3:7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
        q[:, 7:] = gaussian_filter1d(np.unwrap(q[:, 7:], axis=0), sigma, axis=0, mode="nearest")
        return replace(self, qpos=q)

    def slice(self, start: int, stop: int, name: str | None = None) -> "MotionClip":
        objs = [ObjectTrack(t.object, t.poses[start:stop]) for t in self.objects]
        t0, t1 = start / self.fps, stop / self.fps
        intervals = [(max(a, t0) - t0, min(b, t1) - t0) for a, b in self.action_intervals if b > t0 and a < t1]
        return replace(self, name=name or self.name, qpos=self.qpos[start:stop], objects=objs,
                       action_intervals=intervals)

    # --- serialisation ------------------------------------------------------------------
    def metadata(self) -> dict:
        return {
            "format_version": FORMAT_VERSION, "name": self.name, "fps": self.fps,
            "frames": self.num_frames, "body": self.body.to_dict(), "source": self.source,
            "license": self.license, "action": self.action,
            "action_intervals": [list(map(float, iv)) for iv in self.action_intervals],
            "objects": [t.object.to_dict() for t in self.objects],
            "retarget_error_mm": self.retarget_error_mm,
            "retarget_max_error_mm": self.retarget_max_error_mm, "meta": self.meta,
        }

    def summary(self, file: str | None = None) -> dict:
        keys = ("name", "fps", "frames", "source", "license", "action", "retarget_error_mm",
                "retarget_max_error_mm")
        meta = self.metadata()
        out = {k: meta[k] for k in keys}
        out["seconds"] = round(self.duration, 4)
        out["objects"] = [o["kind"] for o in meta["objects"]]
        if self.meta.get("mirror_of"):  # a mirrored clip (kinpoly.motion.augment) names its source
            out["mirror_of"] = self.meta["mirror_of"]
        if file:
            out["file"] = file
        return out

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = {"qpos": self.qpos.astype(np.float64)}
        if self.objects:
            arrays["object_poses"] = np.stack([t.poses for t in self.objects])
        arrays["meta"] = np.array(json.dumps(self.metadata()))
        atomic_write_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MotionClip":
        path = Path(path)
        if not path.exists():
            raise ClipError(f"{path}: no such clip file")
        if path.suffix.lower() in MOCAP_SUFFIXES:
            raise ClipError(f"{path}: a mocap file, not a kinpoly clip: import it first "
                            f"(`kinpoly motion import {path} --out DIR`)")
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                qpos = z["qpos"]
                obj_poses = z["object_poses"] if "object_poses" in z.files else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # EOFError: empty file
            raise ClipError(f"{path}: not a kinpoly clip ({e})") from None
        try:
            objects = [ObjectTrack(SceneObject.from_dict(o), obj_poses[i]) for i, o in enumerate(meta["objects"])]
            return cls(name=meta["name"], qpos=qpos, fps=float(meta["fps"]),
                       body=BodyShape.from_dict(meta["body"]), source=meta.get("source", ""),
                       license=meta.get("license", ""), action=meta.get("action"),
                       action_intervals=[tuple(iv) for iv in meta.get("action_intervals", [])],
                       objects=objects, retarget_error_mm=meta.get("retarget_error_mm"),
                       retarget_max_error_mm=meta.get("retarget_max_error_mm"), meta=meta.get("meta", {}))
        except ClipError as e:
            raise ClipError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:  # metadata of another shape
            raise ClipError(f"{path}: not a kinpoly clip (bad metadata: {type(e).__name__}: {e})") from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write a compressed ``.npz`` atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class ClipFolder:
    """A folder of clips with an ``index.json``. Iterating yields clip names in index order."""

    def __init__(self, root: str | os.PathLike, create: bool = False):
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise ClipError(f"{self.root}: no such clip folder")
        self._index = self._read_index()

    def _read_index(self) -> dict[str, dict]:
        index_path = self.root / INDEX_FILE
        if index_path.exists():
            try:
                entries = json.loads(index_path.read_text())["clips"]
                return {e["name"]: e for e in entries if (self.root / e["file"]).exists()}
            except (ValueError, KeyError) as e:
                raise ClipError(f"{index_path}: unreadable index ({e})") from None
        # no index: scan the folder (e.g. clips copied by hand)
        out = {}
        for p in sorted(self.root.glob("*.npz")):
            try:
                out[p.stem] = MotionClip.load(p).summary(file=p.name) | {"name": p.stem}
            except ClipError:
                continue
        return out

    def __iter__(self):
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, name: str) -> bool:
        return name in self._index

    def entries(self) -> list[dict]:
        return list(self._index.values())

    def path(self, name: str) -> Path:
        if name not in self._index:
            raise ClipError(f"{self.root}: no clip named {name!r}{did_you_mean(name, self._index)}")
        return self.root / self._index[name]["file"]

    def load(self, name: str) -> MotionClip:
        return MotionClip.load(self.path(name))

    def add(self, clip: MotionClip, write_index: bool = True) -> Path:
        path = clip.save(self.root / f"{clip.name}.npz")
        self._index[clip.name] = clip.summary(file=path.name)
        if write_index:
            self.write_index()
        return path

    def write_index(self) -> None:
        body = {"format_version": FORMAT_VERSION, "clips": [self._index[k] for k in sorted(self._index)]}
        atomic_write_text(self.root / INDEX_FILE, json.dumps(body, indent=1))

    def summary(self) -> dict:
        """Counts and retargeting error over the folder (from the index, no clip is opened)."""
        entries = self.entries()
        errs = [e["retarget_error_mm"] for e in entries if e.get("retarget_error_mm") is not None]
        maxes = [e.get("retarget_max_error_mm") or e["retarget_error_mm"] for e in entries
                 if e.get("retarget_error_mm") is not None]
        per_action: dict[str, int] = {}
        for e in entries:
            per_action[e.get("action") or "unlabelled"] = per_action.get(e.get("action") or "unlabelled", 0) + 1
        return {
            "clips": len(entries),
            "frames": int(sum(e["frames"] for e in entries)),
            "seconds": round(float(sum(e["frames"] / e["fps"] for e in entries)), 3),
            "mean_retarget_error_mm": round(float(np.mean(errs)), 3) if errs else None,
            "max_retarget_error_mm": round(float(np.max(errs)), 3) if errs else None,
            "max_joint_retarget_error_mm": round(float(np.max(maxes)), 3) if maxes else None,
            "per_action": per_action,
        }


def resolve_clip(spec: str | os.PathLike) -> MotionClip:
    """One clip given as a ``.npz`` path (suffix optional) or as ``FOLDER/name`` in a clip
    folder, as the commands take it."""
    path = Path(spec)
    if path.is_file():
        return MotionClip.load(path)
    if path.suffix != ".npz" and path.with_name(path.name + ".npz").is_file():
        return MotionClip.load(path.with_name(path.name + ".npz"))
    if path.is_dir():
        raise ClipError(f"{spec}: a folder; give one clip of it (FOLDER/name or a clip .npz)")
    if path.parent.is_dir() and path.suffix != ".npz":
        folder = ClipFolder(path.parent)
        if path.name in folder:
            return folder.load(path.name)
        raise ClipError(f"{spec}: no clip file, and no clip named {path.name!r} in {path.parent}"
                        f"{did_you_mean(path.name, folder)}")
    raise ClipError(f"{spec}: no such clip file (give a clip .npz or FOLDER/name)")


def load_clips(path: str | os.PathLike) -> list[MotionClip]:
    """Load one clip file or every clip of a folder."""
    path = Path(path)
    if path.is_file():
        return [MotionClip.load(path)]
    folder = ClipFolder(path)
    return [folder.load(n) for n in folder]
