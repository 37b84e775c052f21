"""Aria Digital Twin (ADT) body skeletons: the wearer's OptiTrack skeleton that comes with a
Project Aria recording, as ``projectaria_tools``' ``AriaDigitalTwinSkeletonProvider`` exports it.

``Skeleton_<name>.json``: ``{"frames": [{"timestamp_ns", "joints": 51 x [x, y, z], "markers":
...}, ...], "dt_optitrack_minus_device_ns": {...}}``: joint positions in metres in the ADT world
(Y up), 120 frames/s, each frame's time in the recording device's capture clock (the clock of
its video frames and trajectory). ``skeleton_labels.json`` beside it names the joints
(``joint_labels``) and bones (``joint_connections``); without it, OptiTrack's standard order
(below) is taken. Positions only: the body is fitted to them as to other joint positions
(:mod:`kinpoly.motion.retarget`). The fingers (unconnected in the bone list) are left out.

The clip keeps the first frame's capture time (``meta["capture_start_s"]``), so that a take
imported from the same recording is paired with it by time (``kinpoly ego import-video --gt``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..source import MotionFormatError, SourceMotion, read_text

LABELS_FILE = "skeleton_labels.json"
# OptiTrack Motive's 51-joint skeleton, in ADT's order (hands: thumb, index, middle, ring, pinky x 3)
_FINGERS = [f"{f}{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in (1, 2, 3)]
OPTITRACK_JOINTS = (["Skeleton", "Ab", "Chest", "Neck", "Head"]
                    + [f"L{j}" for j in ("Shoulder", "UArm", "FArm", "Hand", *_FINGERS)]
                    + [f"R{j}" for j in ("Shoulder", "UArm", "FArm", "Hand", *_FINGERS)]
                    + [f"{s}{j}" for s in "LR" for j in ("Thigh", "Shin", "Foot", "Toe")])
OPTITRACK_BONES = ([(4, 3), (3, 2), (2, 1), (1, 0), (0, 43), (43, 44), (44, 45), (45, 46), (0, 47), (47, 48),
                    (48, 49), (49, 50), (2, 5), (5, 6), (6, 7), (7, 8), (2, 24), (24, 25), (25, 26), (26, 27)])
# names kinpoly.motion.joint_names resolves (Motive calls its root "Hip"; ADT's export "Skeleton")
_RENAME = {"Skeleton": "Hip"}


def is_adt_skeleton(data) -> bool:
    """Whether parsed JSON is an ADT skeleton export."""
    frames = data.get("frames") if isinstance(data, dict) else None
    return isinstance(frames, list) and bool(frames) and isinstance(frames[0], dict) and "joints" in frames[0]


def read_adt_skeleton(path: str | Path, *, license: str = "", name: str | None = None) -> SourceMotion:
    """The skeleton of an ADT ``Skeleton_*.json`` (module docstring); a one-line error naming
    the file for anything else."""
    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise MotionFormatError(f"{path}: not valid JSON: {e}") from None
    if not is_adt_skeleton(data):
        raise MotionFormatError(f"{path}: not an ADT skeleton (no 'frames' with 'joints')")
    labels, bones = list(OPTITRACK_JOINTS), OPTITRACK_BONES
    if (path.parent / LABELS_FILE).is_file():
        try:
            meta = json.loads(read_text(path.parent / LABELS_FILE))
            labels, bones = list(meta["joint_labels"]), [tuple(b) for b in meta["joint_connections"]]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise MotionFormatError(f"{path.parent / LABELS_FILE}: unreadable joint labels ({type(e).__name__}: {e})") from None
    try:
        joints = np.array([f["joints"] for f in data["frames"]], dtype=np.float64)
        stamps = np.array([f["timestamp_ns"] for f in data["frames"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise MotionFormatError(f"{path}: malformed frames ({type(e).__name__}: {e}); each needs "
                                f"'timestamp_ns' and 'joints' ({len(labels)} x 3)") from None
    if joints.ndim != 3 or joints.shape[1:] != (len(labels), 3):
        raise MotionFormatError(f"{path}: joints are {joints.shape[1:]} per frame, the labels name {len(labels)}")
    if len(stamps) < 2 or not (np.diff(stamps) > 0).all():
        raise MotionFormatError(f"{path}: the frames' timestamp_ns must increase (at least 2 frames)")
    order, parents = _tree(bones, len(labels), path)
    fps = float(1e9 / np.median(np.diff(stamps)))
    return SourceMotion(name=name or path.stem, joint_names=[_RENAME.get(labels[j], labels[j]) for j in order],
                        parents=parents, positions=joints[:, order], fps=fps, up_axis="y", source=str(path),
                        license=license,
                        meta={"format": "adt_skeleton", "units": "m", "capture_start_s": float(stamps[0] * 1e-9)})


def _tree(bones, count: int, path: Path) -> tuple[list[int], np.ndarray]:
    """The joints the bones connect, parents first from the root (joint 0), and their parents."""
    links: dict[int, set[int]] = {}
    for a, b in bones:
        if not (0 <= a < count and 0 <= b < count):
            raise MotionFormatError(f"{path}: bone ({a}, {b}) names a joint beyond the {count} labelled")
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)
    order, parent_of, queue = [0], {0: -1}, [0]
    while queue:
        j = queue.pop(0)
        for k in sorted(links.get(j, ())):
            if k not in parent_of:
                parent_of[k] = j
                order.append(k)
                queue.append(k)
    index = {j: i for i, j in enumerate(order)}
    return order, np.array([index.get(parent_of[j], -1) for j in order])
