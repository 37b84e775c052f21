"""A head-trajectory-only baseline: nearest neighbour from head motion to body pose.

Each frame is described by what a head-mounted camera's trajectory alone tells: head height,
the head's tilt (gravity in head axes) and the head's velocities, averaged over a short window
(+-``half_window`` frames). The training frame with the nearest description lends its pose,
expressed relative to the head's heading frame (root offset from the eyes, root orientation
relative to the head's yaw, hinge angles), which is placed under the observed head. No image,
no objects, no physics: the "(d)" row of the results table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.spatial import cKDTree

from .. import rotations as rot
from ..egocentric.take import EgoDataError, EgoTake
from ..humanoid.skeleton import BodyShape
from ..motion.clip import MotionClip


def head_descriptor(head_pose: np.ndarray, head_vels: np.ndarray, half_window: int = 5) -> np.ndarray:
    """(T, 10): height, gravity in head axes (3), head velocities (6), window-averaged."""
    R = rot.quat_to_matrix(head_pose[:, 3:7])
    gravity = np.swapaxes(R, -1, -2)[..., 2]  # world up in head axes
    x = np.concatenate([head_pose[:, 2:3], gravity, head_vels * [1, 1, 1, 0.3, 0.3, 0.3]], axis=1)
    return uniform_filter1d(x, size=2 * half_window + 1, axis=0, mode="nearest")


def relative_pose(qpos: np.ndarray, head_pose: np.ndarray) -> np.ndarray:
    """(T, 3 + 9 + 69): root offset from the eyes and root rotation, both in the head's heading
    frame, and the hinge angles."""
    Hyaw = rot.yaw_matrix(rot.heading_angle(rot.quat_to_matrix(head_pose[:, 3:7])))
    HT = np.swapaxes(Hyaw, -1, -2)
    off = (HT @ (qpos[:, :3] - head_pose[:, :3])[..., None])[..., 0]
    R_rel = HT @ rot.quat_to_matrix(qpos[:, 3:7])
    return np.concatenate([off, R_rel.reshape(-1, 9), qpos[:, 7:]], axis=1)


def pose_from_relative(rel: np.ndarray, head_pose: np.ndarray) -> np.ndarray:
    """(T, 76) qpos placed under ``head_pose`` from :func:`relative_pose`'s (T, 81)."""
    Hyaw = rot.yaw_matrix(rot.heading_angle(rot.quat_to_matrix(head_pose[:, 3:7])))
    root = head_pose[:, :3] + (Hyaw @ rel[:, :3, None])[..., 0]
    R = Hyaw @ rel[:, 3:12].reshape(-1, 3, 3)
    return np.concatenate([root, rot.quat_continuous(rot.matrix_to_quat(R)), rel[:, 12:]], axis=1)


@dataclass
class HeadOnlyBaseline:
    half_window: int = 5
    tree: cKDTree | None = None
    poses: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, takes: list[EgoTake]) -> "HeadOnlyBaseline":
        feats, poses = [], []
        for t in takes:
            if t.qpos is None:
                continue
            head = t.gt_head_pose if t.gt_head_pose is not None else t.head_pose
            feats.append(head_descriptor(t.head_pose, t.head_vels, self.half_window))
            poses.append(relative_pose(t.qpos, head))
        if not feats:
            raise EgoDataError("the baseline needs takes with ground-truth poses")
        x = np.concatenate(feats)
        self.scale = x.std(0) + 1e-6
        self.tree = cKDTree(x / self.scale)
        self.poses = np.concatenate(poses)
        return self

    def predict(self, take: EgoTake, body: BodyShape | None = None) -> MotionClip:
        if self.tree is None:
            raise RuntimeError("fit the baseline first")
        _, idx = self.tree.query(head_descriptor(take.head_pose, take.head_vels, self.half_window) / self.scale)
        q = pose_from_relative(self.poses[idx], take.head_pose)
        body = body or take.body
        return MotionClip(name=take.name, qpos=q, fps=take.fps, body=body, meta={"estimator": "head_only_nn"})
