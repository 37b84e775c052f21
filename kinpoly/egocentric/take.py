"""The one egocentric sample type (:class:`EgoTake`), its on-disk format and the loader.

An egocentric take is what the kinematic policy reads (SPEC sections 3-4): the observed head
trajectory (camera pose, eyes, Z up, quaternion wxyz), head velocities, the objects of the
scene relative to the head, the action label, optional per-frame image features, and, when the
take was made from mocap, the ground-truth body (``qpos``) and ground-truth head pose.

On disk a take is one ``<name>.npz`` (arrays + a JSON ``meta`` string, written atomically) and a
take folder has a ``manifest.json`` (takes, frames, actions, train/test split, failures).
:class:`EgoDataset` reads such a folder, and also the original Kin-Poly pickles (one pickle per
split, ``"<action>-<take>"`` keys, SPEC section 4) with their meta YAML, into the same type.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..motion.clip import ACTIONS, atomic_write_npz, atomic_write_text

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class EgoDataError(InputError):
    """An egocentric take, folder or input file is invalid; the message names the file."""


def action_one_hot(action: str | None) -> np.ndarray:
    """(5,) one-hot over ``ACTIONS`` (sit, push, avoid, step, locomotion); zeros if unknown."""
    out = np.zeros(len(ACTIONS), dtype=np.float32)
    if action in ACTIONS:
        out[ACTIONS.index(action)] = 1.0
    return out


@dataclass
class EgoTake:
    """One egocentric take. Arrays are per frame (T first) at ``fps``.

    - ``head_pose`` (T, 7): observed eye position (m) + head quaternion wxyz, world Z up; the
      head frame is X forward, Y left, Z up (a camera looking along +X).
    - ``head_vels`` (T, 6): head linear velocity in the head's heading frame (yaw-only frame),
      then angular velocity in the head's own frame, finite differences ``t -> t+1``, last row
      repeated (the original data's convention).
    - ``object_poses`` (T, K, 7): each object's position and orientation in the head's heading
      frame (relative to the eyes); ``object_kinds``/``object_names`` (K,).
    - ``action``: one of ``ACTIONS`` or None; ``action_one_hot`` derives from it.
    - ``image_features`` (T, D) optional; ``gt_head_pose`` (T, 7), ``qpos`` (T, 76) optional
      ground truth; ``object_world`` (T, K, 7) optional world poses of the objects.
    - ``extras``: any other named arrays stored with the take (``flow`` (T-1, 2, s, s) pooled
      optical flow and ``head_local_vels`` (T-1, 6) when built with ``save_flow``).
    """

    name: str
    head_pose: np.ndarray
    head_vels: np.ndarray
    fps: float = 30.0
    action: str | None = None
    object_poses: np.ndarray | None = None
    object_kinds: list[str] = field(default_factory=list)
    object_names: list[str] = field(default_factory=list)
    object_world: np.ndarray | None = None
    image_features: np.ndarray | None = None
    gt_head_pose: np.ndarray | None = None
    qpos: np.ndarray | None = None
    source_clip: str | None = None
    meta: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # other per-take arrays (e.g. pooled flows)

    def __post_init__(self) -> None:
        self.head_pose = np.asarray(self.head_pose, dtype=np.float64)
        self.head_vels = np.asarray(self.head_vels, dtype=np.float64)
        T = self.head_pose.shape[0] if self.head_pose.ndim == 2 else -1
        if self.head_pose.ndim != 2 or self.head_pose.shape[1] != 7:
            raise EgoDataError(f"{self.name}: head_pose must be (T, 7), got {self.head_pose.shape}")
        if self.head_vels.shape != (T, 6):
            raise EgoDataError(f"{self.name}: head_vels must be ({T}, 6), got {self.head_vels.shape}")
        if self.object_poses is None:
            self.object_poses = np.zeros((T, 0, 7))
        self.object_poses = np.asarray(self.object_poses, dtype=np.float64)
        if self.object_poses.ndim != 3 or self.object_poses.shape[0] != T or self.object_poses.shape[2] != 7:
            raise EgoDataError(f"{self.name}: object_poses must be ({T}, K, 7), got {self.object_poses.shape}")
        K = self.object_poses.shape[1]
        if len(self.object_kinds) != K:
            self.object_kinds = (list(self.object_kinds) + ["object"] * K)[:K]
        if len(self.object_names) != K:
            self.object_names = [f"object{i}" for i in range(K)]
        for key in ("image_features", "gt_head_pose", "qpos", "object_world"):
            v = getattr(self, key)
            if v is not None:
                v = np.asarray(v)
                if len(v) != T:
                    raise EgoDataError(f"{self.name}: {key} has {len(v)} frames, head_pose {T}")
                setattr(self, key, v)
        if self.action is not None and self.action not in ACTIONS:
            raise EgoDataError(f"{self.name}: unknown action {self.action!r}")
        if not np.isfinite(self.head_pose).all():
            bad = ~np.isfinite(self.head_pose).all(1)
            raise EgoDataError(f"{self.name}: head_pose contains NaN/inf ({int(bad.sum())} frame(s), the first "
                               f"{int(np.argmax(bad))})")
        norm = np.linalg.norm(self.head_pose[:, 3:], axis=1)
        if T and np.abs(norm - 1.0).max() > 1e-2:
            i = int(np.argmax(np.abs(norm - 1.0)))
            raise EgoDataError(f"{self.name}: head_pose frame {i} has a non-unit quaternion (norm {norm[i]:.4f}; "
                               f"head_pose is x y z qw qx qy qz)")

    @property
    def num_frames(self) -> int:
        return int(self.head_pose.shape[0])

    @property
    def action_one_hot(self) -> np.ndarray:
        return action_one_hot(self.action)

    @property
    def body(self):
        """The wearer's :class:`~kinpoly.humanoid.skeleton.BodyShape` (``meta["body"]``; the
        default body when the take does not say, e.g. an imported video without ground truth)."""
        from ..humanoid.skeleton import BodyShape

        return BodyShape.from_dict(self.meta["body"]) if "body" in self.meta else BodyShape()

    def to_torch(self) -> dict:
        """The arrays as float32 torch tensors (keys as the attributes; None left out)."""
        import torch

        out = {"head_pose": self.head_pose, "head_vels": self.head_vels,
               "object_poses": self.object_poses, "action_one_hot": np.broadcast_to(
                   self.action_one_hot, (self.num_frames, len(ACTIONS)))}
        for key in ("image_features", "gt_head_pose", "qpos"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.float32) for k, v in out.items()}

    # --- on disk --------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"format_version": FORMAT_VERSION, "name": self.name, "fps": self.fps,
                "frames": self.num_frames, "action": self.action,
                "object_kinds": list(self.object_kinds), "object_names": list(self.object_names),
                "source_clip": self.source_clip, "meta": self.meta}

    def summary(self, file: str | None = None) -> dict:
        out = {"name": self.name, "frames": self.num_frames, "fps": self.fps, "action": self.action,
               "objects": list(self.object_kinds), "source_clip": self.source_clip,
               "image_features": None if self.image_features is None else int(self.image_features.shape[1])}
        if file:
            out["file"] = file
        return out

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        arrays = {"head_pose": self.head_pose, "head_vels": self.head_vels,
                  "object_poses": self.object_poses}
        for key in ("image_features", "gt_head_pose", "qpos", "object_world"):
            if getattr(self, key) is not None:
                arrays[key] = getattr(self, key)
        arrays.update({k: np.asarray(v) for k, v in self.extras.items()})
        arrays["meta"] = np.array(json.dumps(self.metadata(), sort_keys=True))
        atomic_write_npz(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EgoTake":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 - zip/format errors come in many types
            raise EgoDataError(f"{path}: not an egocentric take ({type(e).__name__}: {e})") from None
        if "meta" not in arrays or "head_pose" not in arrays:
            raise EgoDataError(f"{path}: not an egocentric take (no meta/head_pose)")
        try:
            meta = json.loads(str(arrays.pop("meta")))
            fps = float(meta["fps"])
        except (ValueError, TypeError, KeyError) as e:
            raise EgoDataError(f"{path}: its meta is not a JSON object with the take's fps "
                               f"({type(e).__name__}: {e})") from None
        if not (np.isfinite(fps) and fps > 0):
            raise EgoDataError(f"{path}: fps must be a positive number, got {fps}")
        if "head_vels" not in arrays:  # derived from the head poses (e.g. a take made by hand)
            from .features import head_velocities

            head = np.asarray(arrays["head_pose"], dtype=np.float64)
            ok = head.ndim == 2 and head.shape[1] == 7 and len(head) >= 2 and np.isfinite(head).all()
            # a bad head_pose gets placeholder velocities: __post_init__ says what is wrong with it
            arrays["head_vels"] = head_velocities(head, fps) if ok else np.zeros((len(head) if head.ndim else 0, 6))
        known = {"head_pose", "head_vels", "object_poses", "image_features", "gt_head_pose", "qpos", "object_world"}
        extras = {k: arrays.pop(k) for k in list(arrays) if k not in known}
        return cls(extras=extras, name=meta.get("name", path.stem), fps=fps, action=meta.get("action"),
                   object_kinds=meta.get("object_kinds", []), object_names=meta.get("object_names", []),
                   source_clip=meta.get("source_clip"), meta=meta.get("meta", {}), **arrays)


def write_manifest(root: str | os.PathLike, takes: list[dict], split: dict[str, list[str]],
                   failures: list[dict], info: dict | None = None) -> Path:
    """``manifest.json``: per-take summaries, the train/test split and the failures."""
    root = Path(root)
    body = {"format_version": FORMAT_VERSION, "takes": sorted(takes, key=lambda t: t["name"]),
            "split": {k: sorted(v) for k, v in split.items()}, "failures": failures,
            "info": info or {}}
    atomic_write_text(root / MANIFEST, json.dumps(body, indent=1, default=float))
    return root / MANIFEST


def read_manifest(root: str | os.PathLike) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise EgoDataError(f"{path}: no manifest (not an egocentric dataset folder)")
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise EgoDataError(f"{path}: unreadable manifest ({e})") from None


def dataset_info(root: str | os.PathLike) -> dict:
    """Counts of a take folder from its manifest: takes, frames, per action, per split."""
    m = read_manifest(root)
    per_action: dict[str, dict] = {}
    for t in m["takes"]:
        a = per_action.setdefault(t.get("action") or "unlabelled", {"takes": 0, "frames": 0})
        a["takes"] += 1
        a["frames"] += int(t["frames"])
    return {"takes": len(m["takes"]), "frames": int(sum(t["frames"] for t in m["takes"])),
            "per_action": per_action, "split": {k: len(v) for k, v in m.get("split", {}).items()},
            "failures": len(m.get("failures", [])), "info": m.get("info", {})}


# --- the original Kin-Poly pickles ------------------------------------------------------------
def _take_from_kinpoly(key: str, d: dict, where: str, object_names: list[str] | None) -> EgoTake:
    if not isinstance(d, dict) or "head_pose" not in d:
        raise EgoDataError(f"{where} take {key!r}: no 'head_pose' (T x 7)")
    head = np.asarray(d["head_pose"], dtype=np.float64)
    T = len(head)
    if "head_vels" in d:
        vels = np.asarray(d["head_vels"], dtype=np.float64)
    else:
        from .features import head_velocities

        vels = head_velocities(head, 30.0)
    action = key.split("-")[0].lower()
    action = action if action in ACTIONS else None
    if "action_one_hot" in d and action is None:
        oh = np.asarray(d["action_one_hot"]).reshape(-1, len(ACTIONS))[0]
        action = ACTIONS[int(np.argmax(oh))] if oh.any() else None
    obj_world = None
    kinds: list[str] = []
    if d.get("obj_pose") is not None:
        obj_world = np.asarray(d["obj_pose"], dtype=np.float64).reshape(T, -1, 7)
        from ..motion.kinpoly_pickle import OBJECT_OF_ACTION

        kinds = [OBJECT_OF_ACTION.get(action or "", "object")] * obj_world.shape[1]
    from .features import objects_relative_to_head

    rel = objects_relative_to_head(head, obj_world) if obj_world is not None else None
    feats = None
    for k in ("of_feats", "image_features", "img_feats", "of_feat"):
        if d.get(k) is not None:
            feats = np.asarray(d[k], dtype=np.float32).reshape(T, -1) if len(d[k]) == T else None
            break
    qpos = np.asarray(d["qpos"], dtype=np.float64) if d.get("qpos") is not None else None
    names = list(object_names or [])[: len(kinds)] if kinds else []
    return EgoTake(name=str(key), head_pose=head, head_vels=vels, fps=30.0, action=action,
                   object_poses=rel, object_kinds=kinds, object_names=names, object_world=obj_world,
                   image_features=feats, gt_head_pose=head.copy(), qpos=qpos,
                   meta={"source": where, "format": "kinpoly_pickle",
                         "note": "qpos uses the original humanoid's hinge conventions"})


def read_kinpoly_takes(pickles: list[str | os.PathLike], meta_yaml: str | os.PathLike | None = None
                       ) -> tuple[list[EgoTake], dict[str, list[str]]]:
    """Takes of original Kin-Poly pickles (+ the meta YAML's ``train``/``test`` lists)."""
    import yaml

    split: dict[str, list[str]] = {}
    object_names = None
    if meta_yaml is not None:
        try:
            meta = yaml.safe_load(Path(meta_yaml).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise EgoDataError(f"{meta_yaml}: unreadable meta YAML ({e})") from None
        split = {k: [str(x) for x in meta[k]] for k in ("train", "test") if isinstance(meta.get(k), list)}
        object_names = meta.get("object_names") or meta.get("objects")
    takes = []
    for p in map(Path, pickles):
        try:
            with open(p, "rb") as f:
                data = pickle.load(f)
        except Exception as e:  # noqa: BLE001
            raise EgoDataError(f"{p}: unreadable pickle ({type(e).__name__}: {e})") from None
        if not isinstance(data, dict):
            raise EgoDataError(f"{p}: expected a dict of takes keyed '<action>-<take>'")
        takes += [_take_from_kinpoly(str(k), v, str(p), object_names) for k, v in data.items()]
    return takes, split


class EgoDataset:
    """Egocentric takes of one split: a take folder built by kinpoly (``manifest.json``), or
    original Kin-Poly pickles (``kinpoly_pickles=[...]``, ``meta_yaml=...``).

    ``len(ds)``, ``ds[i]`` / ``ds["name"]`` -> :class:`EgoTake`, iteration, ``ds.names``.
    ``split`` is ``"train"``, ``"test"``, another list of the manifest's ``split`` (e.g.
    ``"test_mirror"``) or ``None`` (all takes).
    """

    def __init__(self, root: str | os.PathLike | None = None, split: str | None = None, *,
                 kinpoly_pickles: list[str | os.PathLike] | None = None,
                 meta_yaml: str | os.PathLike | None = None):
        self._takes: dict[str, EgoTake] = {}
        self._files: dict[str, Path] = {}
        if kinpoly_pickles:
            takes, splits = read_kinpoly_takes(kinpoly_pickles, meta_yaml)
            keep = set(splits.get(split, [t.name for t in takes])) if split else None
            self._takes = {t.name: t for t in takes if keep is None or t.name in keep}
            self.names = sorted(self._takes)
            self.split_lists = splits
            return
        if root is None:
            raise EgoDataError("EgoDataset needs a take folder or kinpoly_pickles")
        self.root = Path(root)
        m = read_manifest(self.root)
        self.split_lists = m.get("split", {})
        if split and split not in self.split_lists:
            raise EgoDataError(f"{self.root}: no split {split!r} in its manifest (has: "
                               f"{', '.join(self.split_lists) or 'none'})")
        keep = set(self.split_lists.get(split, [])) if split else None
        for t in m["takes"]:
            if keep is None or t["name"] in keep:
                self._files[t["name"]] = self.root / t["file"]
        self.names = sorted(self._files)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return (self[n] for n in self.names)

    def __getitem__(self, key: int | str) -> EgoTake:
        name = self.names[key] if isinstance(key, (int, np.integer)) else key
        if name in self._takes:
            return self._takes[name]
        if name not in self._files:
            raise KeyError(name)
        return EgoTake.load(self._files[name])
