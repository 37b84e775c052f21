"""Egocentric takes as policy-ready tensors, and random training windows over them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..egocentric.take import EgoDataError, EgoTake
from ..humanoid.skeleton import BodyShape


@dataclass
class TakeTensors:
    """One take's arrays as float32 tensors (T first)."""

    name: str
    fps: float
    head_pose: torch.Tensor  # (T, 7)
    head_vels: torch.Tensor  # (T, 6)
    obj: torch.Tensor  # (T, 8): first object relative to the head + presence flag
    obj_world: torch.Tensor  # (T, 8): first object's world pose + presence flag
    action: torch.Tensor  # (5,)
    feature: torch.Tensor | None  # (T, D)
    qpos: torch.Tensor | None  # (T, 76) ground truth
    offsets: torch.Tensor  # (24, 3) body
    eye: torch.Tensor  # (3,) eyes relative to the Head joint
    body: BodyShape

    @property
    def num_frames(self) -> int:
        return int(self.head_pose.shape[0])


def _first_object(poses: np.ndarray | None, T: int) -> np.ndarray:
    out = np.zeros((T, 8), dtype=np.float32)
    out[:, 3] = 1.0  # identity quaternion when absent
    if poses is not None and poses.ndim == 3 and poses.shape[1] > 0:
        out[:, :7] = poses[:, 0]
        out[:, 7] = 1.0
    return out


PLACEHOLDER_DISTANCE_M = 2.5  # where the placeholder table goes: this far behind the head
PLACEHOLDER_CLEARANCE_M = 1.5  # closer than this to the head, it moves behind it again


class PlaceholderTable:
    """A table that is not there, for the policy's object input when a take has no objects.

    Every take the policies learned from had an object, a distractor table at least, kept clear
    of the wearer's path; "no object" is an input they read far worse (docs/estimation.md). So
    an estimate without objects shows the policy such a table, which the simulation does not
    have: on the floor, ``PLACEHOLDER_DISTANCE_M`` behind the head's first pose, and moved
    behind the head again whenever the head comes within ``PLACEHOLDER_CLEARANCE_M`` of it.
    Causal (frame by frame), so a live stream places it as an offline estimate does.
    """

    def __init__(self) -> None:
        self.pose: np.ndarray | None = None  # (7) world pose: base on the floor, yaw as the head's then
        self.moves = 0

    def update(self, head_pose: np.ndarray) -> np.ndarray:
        """The table's world pose (7) at a frame with this head pose (7)."""
        from .. import rotations as rot

        head_pose = np.asarray(head_pose, dtype=np.float64)
        first = self.pose is None
        if first or np.linalg.norm(self.pose[:2] - head_pose[:2]) < PLACEHOLDER_CLEARANCE_M:
            yaw = float(rot.heading_angle(rot.quat_to_matrix(head_pose[3:7])))
            self.pose = np.zeros(7)
            self.pose[:2] = head_pose[:2] - PLACEHOLDER_DISTANCE_M * np.array([np.cos(yaw), np.sin(yaw)])
            self.pose[3:] = rot.matrix_to_quat(rot.yaw_matrix(np.array(yaw)))
            self.moves += not first
        return self.pose.copy()

    def relative(self, head_pose: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
        """The policy's object input (8, float64) at a frame: the table relative to the head,
        present; its quaternion in the hemisphere of ``previous`` (the frame before's input)."""
        from .. import rotations as rot
        from ..egocentric.features import objects_relative_to_head

        world = self.update(head_pose)
        rel = objects_relative_to_head(np.asarray(head_pose)[None], world[None, None])[0, 0]
        if previous is not None:
            rel[3:] = rot.quat_continuous(np.stack([previous[3:7], rel[3:]]))[1]
        return np.r_[rel, 1.0]


def placeholder_objects(head_pose: np.ndarray) -> np.ndarray:
    """(T, 8) float32 object input of a whole take from a :class:`PlaceholderTable`, frame by
    frame as a stream computes it."""
    table, rows, previous = PlaceholderTable(), [], None
    for h in np.asarray(head_pose, dtype=np.float64):
        previous = table.relative(h, previous)
        rows.append(previous)
    return np.stack(rows).astype(np.float32)


def take_tensors(take: EgoTake, use_features: bool = True) -> TakeTensors:
    body = take.body
    f = lambda x: torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)  # noqa: E731
    T = take.num_frames
    return TakeTensors(
        name=take.name, fps=take.fps, head_pose=f(take.head_pose), head_vels=f(take.head_vels),
        obj=f(_first_object(take.object_poses, T)), obj_world=f(_first_object(take.object_world, T)),
        action=f(take.action_one_hot),
        feature=f(take.image_features) if use_features and take.image_features is not None else None,
        qpos=f(take.qpos) if take.qpos is not None else None, offsets=f(body.offsets),
        eye=f(body.eye_offset()), body=body)


# quaternion columns (wxyz) of the per-frame arrays a window interpolates when time-warped
_QUAT_COLUMNS = {"head_pose": slice(3, 7), "obj": slice(3, 7), "obj_world": slice(3, 7), "qpos": slice(3, 7)}


def _interpolate(a: torch.Tensor, t: np.ndarray, quat: slice | None) -> torch.Tensor:
    """Rows of ``a`` at fractional frames ``t`` (linear; a quaternion block by normalised
    linear interpolation on the shorter arc)."""
    i = np.minimum(np.floor(t).astype(int), len(a) - 2)
    w = torch.as_tensor(t - i, dtype=a.dtype)[:, None]
    lo, hi = a[i], a[i + 1].clone()
    if quat is not None:
        flip = (lo[:, quat] * hi[:, quat]).sum(-1, keepdim=True) < 0
        hi[:, quat] = torch.where(flip, -hi[:, quat], hi[:, quat])
    out = lo * (1 - w) + hi * w
    if quat is not None:
        out[:, quat] = out[:, quat] / out[:, quat].norm(dim=-1, keepdim=True).clamp_min(1e-9)
    return out


def sample_windows(takes: list[TakeTensors], batch: int, length: int, rng: np.random.Generator,
                   time_warp: float = 0.0, object_dropout: float = 0.0) -> dict:
    """``batch`` random windows of ``length`` frames (takes weighted by length): tensors
    (B, L, ...) plus per-window ``offsets`` (B, 24, 3), ``eye`` (B, 3), ``action`` (B, 5).

    ``object_dropout`` p > 0: each window's object input (``obj``, what the policy reads) is
    "no object" with probability p, its ``obj_world`` (what the losses read) kept: every
    built take has an object (a distractor table at least), so without this a recording given
    without objects is an input the policy never saw.

    ``time_warp`` W > 0: each window is the motion played at a speed drawn log-uniformly from
    [1/(1+W), 1+W] (poses interpolated, head velocities scaled), an augmentation of the
    gait's speed and cadence; image features cannot be warped, so it needs takes without."""
    if time_warp < 0:
        raise ValueError(f"time_warp must be >= 0, got {time_warp}")
    fastest = 1.0 + time_warp
    usable = [t for t in takes if t.num_frames >= (length - 1) * fastest + 1 and t.qpos is not None]
    if not usable:
        raise EgoDataError(f"no take has ground truth and at least {length} frames")
    if time_warp and any(t.feature is not None for t in usable):
        raise ValueError("time_warp cannot warp image features: train without them (use_image_features: false)")
    weights = np.array([t.num_frames - length + 1 for t in usable], dtype=float)
    idx = rng.choice(len(usable), size=batch, p=weights / weights.sum())
    out: dict[str, list] = {k: [] for k in ("head_pose", "head_vels", "obj", "obj_world", "qpos",
                                            "feature", "offsets", "eye", "action")}
    for i in idx:
        t = usable[i]
        if time_warp:
            speed = float(np.exp(rng.uniform(-1.0, 1.0) * np.log(fastest)))
            span = (length - 1) * speed
            frames = rng.uniform(0.0, t.num_frames - 1 - span) + np.arange(length) * speed
            for k in ("head_pose", "head_vels", "obj", "obj_world", "qpos"):
                out[k].append(_interpolate(getattr(t, k), frames, _QUAT_COLUMNS.get(k)))
            out["head_vels"][-1] = out["head_vels"][-1] * speed
            out["feature"].append(None)  # takes with features were refused above
        else:
            s = int(rng.integers(0, t.num_frames - length + 1))
            sl = slice(s, s + length)
            for k in ("head_pose", "head_vels", "obj", "obj_world", "qpos"):
                out[k].append(getattr(t, k)[sl])
            out["feature"].append(t.feature[sl] if t.feature is not None else None)
        out["offsets"].append(t.offsets)
        out["eye"].append(t.eye)
        out["action"].append(t.action)
    batch_t = {k: torch.stack(v) for k, v in out.items() if k != "feature"}
    if object_dropout > 0:
        drop = torch.as_tensor(rng.random(batch) < object_dropout)
        batch_t["obj"][drop] = torch.as_tensor(_first_object(None, 1)[0])
    feats = out["feature"]
    batch_t["feature"] = torch.stack(feats) if all(x is not None for x in feats) else None
    return batch_t
