"""Biovision Hierarchy (BVH) reader and writer.

Reading conventions
-------------------
* Joints are returned in file order (depth-first, parents before children); ``End Site``
  blocks are not joints: a non-zero one becomes ``end_sites["<parent>_end"]``.
* Each joint's CHANNELS may be any subset of ``X/Y/Zposition`` and ``X/Y/Zrotation`` in any
  order (3-channel joints, 6-channel root, or 6 channels on every joint as in the Bandai-Namco
  data). Position channels replace the matching component of the joint's OFFSET; rotation
  channels are applied in the order listed, each about the joint's current (rotated) axis,
  i.e. intrinsic Euler angles in degrees: ``Zrotation Xrotation Yrotation`` gives
  ``R = Rz @ Rx @ Ry`` (column vectors), scipy ``Rotation.from_euler("ZXY", ...)``.
* Forward kinematics: ``G_j = G_parent @ R_j`` and ``p_j = p_parent + G_parent @ t_j`` where
  ``t_j`` is the offset (or the position channels). ``rotations[t, j] = G_j`` maps the joint's
  local axes to the file's world axes; it is the identity when every rotation channel is 0,
  so the "rest pose" is the pose described by the OFFSETs alone.
* World axes are the file's own; BVH is conventionally Y up (``up_axis`` argument otherwise).
* Units: positions are converted to metres by ``scale`` (metres per file unit). If neither
  ``scale`` nor ``units`` is given the unit is guessed from the rest-pose size of the body
  (see :func:`guess_scale`).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from kinpoly.motion.clip import atomic_write_text
from kinpoly.motion.source import MotionFormatError, SourceMotion, format_errors, read_text

# "cmu": the CMU database's BVH conversions keep its ASF unit, 1/0.45 inch (a body is ~30 units)
UNIT_SCALES = {"m": 1.0, "dm": 0.1, "cm": 0.01, "mm": 0.001, "in": 0.0254, "inch": 0.0254,
               "ft": 0.3048, "cmu": 0.0254 / 0.45}
# guess_scale's bins: (largest rest-pose extent in file units, the unit below it); beyond: mm
_GUESS_BINS = ((3.0, "m"), (8.0, "ft"), (19.4, "dm"), (45.0, "cmu"), (100.0, "in"), (300.0, "cm"))
_CHANNELS = {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}


@dataclass
class BvhSkeleton:
    """The HIERARCHY block of a BVH file, in file (depth-first) order, in file units."""

    names: list[str] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    offsets: list[np.ndarray] = field(default_factory=list)
    channels: list[list[str]] = field(default_factory=list)
    end_sites: dict[int, list[np.ndarray]] = field(default_factory=dict)  # joint index -> offsets

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)


# --------------------------------------------------------------------------------------- reading
def _parse_hierarchy(text: str, path: str) -> BvhSkeleton:
    tokens = text.replace("{", " { ").replace("}", " } ").split()
    pos = 0
    skel = BvhSkeleton()

    def take(what: str = "token") -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise MotionFormatError(f"{path}: HIERARCHY ends early, expected {what}")
        pos += 1
        return tokens[pos - 1]

    def expect(word: str) -> None:
        got = take(repr(word))
        if got.upper() != word.upper():
            raise MotionFormatError(f"{path}: expected {word!r} in HIERARCHY, got {got!r}")

    def numbers(n: int, what: str) -> np.ndarray:
        vals = [take(what) for _ in range(n)]
        try:
            return np.array(vals, dtype=np.float64)
        except ValueError:
            raise MotionFormatError(f"{path}: bad {what} values {vals}") from None

    def joint(parent: int) -> None:
        name = take("joint name")
        index = len(skel.names)
        skel.names.append(name)
        skel.parents.append(parent)
        skel.offsets.append(np.zeros(3))
        skel.channels.append([])
        expect("{")
        while True:
            word = take("'}'").upper()
            if word == "OFFSET":
                skel.offsets[index] = numbers(3, f"OFFSET of {name}")
            elif word == "CHANNELS":
                count = take(f"channel count of {name}")
                if not count.isdigit():
                    raise MotionFormatError(f"{path}: bad channel count {count!r} for joint {name}")
                chans = [take(f"channels of {name}").capitalize() for _ in range(int(count))]
                bad = [c for c in chans if c not in _CHANNELS]
                if bad:
                    raise MotionFormatError(f"{path}: unknown channel(s) {bad} on joint {name} "
                                            f"(its CHANNELS line declares {count})")
                skel.channels[index] = chans
            elif word == "JOINT":
                joint(index)
            elif word == "END":
                expect("Site")
                expect("{")
                expect("OFFSET")
                skel.end_sites.setdefault(index, []).append(numbers(3, f"End Site OFFSET of {name}"))
                expect("}")
            elif word == "}":
                return
            else:
                raise MotionFormatError(f"{path}: unexpected {word!r} inside joint {name}")

    expect("HIERARCHY")
    while pos < len(tokens):
        expect("ROOT")
        joint(-1)
    if not skel.names:
        raise MotionFormatError(f"{path}: HIERARCHY has no ROOT joint")
    if len(set(skel.names)) != len(skel.names):
        raise MotionFormatError(f"{path}: duplicate joint names in HIERARCHY")
    return skel


def _parse_motion(text: str, num_channels: int, path: str, motion_line: int) -> tuple[np.ndarray, float]:
    """The text after the MOTION keyword -> (T, C) values and the frame time.
    ``motion_line`` is the 1-based line number of the MOTION line (for error messages)."""
    head = re.match(r"\s*Frames:\s*(\S+)\s*\n\s*Frame\s+Time:\s*(\S+)[^\n]*(?:\n|$)", text,
                    flags=re.IGNORECASE)
    if head is None:
        raise MotionFormatError(f"{path}: MOTION block must start with 'Frames:' and 'Frame Time:' lines")
    try:
        num_frames, frame_time = float(head.group(1)), float(head.group(2))
        if not num_frames.is_integer():
            raise ValueError
        num_frames = int(num_frames)
    except (ValueError, OverflowError):
        raise MotionFormatError(f"{path}: bad MOTION header {head.group(0).strip()!r}") from None
    if num_frames <= 0 or not np.isfinite(frame_time) or frame_time <= 0:
        raise MotionFormatError(f"{path}: invalid MOTION header: Frames {num_frames}, "
                                f"Frame Time {frame_time}")
    body = text[head.end():]
    data = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            data = np.loadtxt(io.StringIO(body), ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        pass
    if data is None or data.shape[1] != num_channels or data.shape[0] != num_frames:
        # slow path, only to say precisely what is wrong
        first = motion_line + head.group(0).count("\n")  # line number of the first frame
        lines = [(i, ln.split()) for i, ln in enumerate(body.splitlines()) if ln.strip()]
        for frame, (i, toks) in enumerate(lines):
            where = f"frame {frame + 1} (line {first + i})"
            if len(toks) != num_channels:
                raise MotionFormatError(f"{path}: {where} has {len(toks)} values, "
                                        f"the HIERARCHY declares {num_channels} channels")
            try:
                [float(t) for t in toks]
            except ValueError as e:
                raise MotionFormatError(f"{path}: {where}: {e}") from None
        raise MotionFormatError(f"{path}: header says {num_frames} frames, file has {len(lines)}")
    bad = ~np.isfinite(data)
    if bad.any():
        frame, col = np.argwhere(bad)[0]
        raise MotionFormatError(f"{path}: frame {frame + 1} has a non-finite value ({data[frame, col]}) "
                                f"in channel {col + 1}")
    return data, frame_time


def _rest_positions(skel: BvhSkeleton) -> np.ndarray:
    """Joint and end-site positions from the OFFSETs alone (no rotation), relative to the
    first joint with two or more children (the pelvis, skipping dummy 'reference' roots)."""
    children = [[c for c, p in enumerate(skel.parents) if p == j] for j in range(len(skel.names))]
    start = next((j for j in range(len(skel.names)) if len(children[j]) >= 2), 0)
    pos = {start: np.zeros(3)}
    points = [np.zeros(3)]
    stack = [start]
    while stack:
        j = stack.pop()
        points += [pos[j] + e for e in skel.end_sites.get(j, [])]
        for c in children[j]:
            pos[c] = pos[j] + skel.offsets[c]
            points.append(pos[c])
            stack.append(c)
    return np.array(points)


def guess_scale(skel: BvhSkeleton) -> tuple[float, str]:
    """Guess metres per file unit from the body size in the rest pose.

    The size is the largest axis-aligned extent of the OFFSET-only skeleton below the first
    branching joint (so a dummy root placed far from the body does not count), about the
    body's height (or arm span). An adult of 1.1-2.2 m measures, in file units:
    m 1.1-2.2, ft (0.3048 m) 3.61-7.22, dm 11-22, cmu (1/0.45 inch = 0.05644 m, the CMU
    database's BVH conversions) 19.49-38.98, in 43.3-86.6, cm 110-220, mm 1100-2200.
    So the extent is read as: < 3 -> metres, < 8 -> feet, < 19.4 -> decimetres, < 45 -> CMU
    units, < 100 -> inches, < 300 -> centimetres, otherwise millimetres. 8 lies between the
    tallest adult in feet (7.22) and the shortest in decimetres (11). Only decimetres and CMU
    units overlap for adults (19.49-22): the shortest CMU-unit adult, 1.1 m / 0.05644 m =
    19.49 units, must stay in CMU units, so the edge is 19.4 (a 1.095 m CMU body), which
    leaves decimetres to 1.94 m.

    Read wrong (pass ``units``): CMU-unit bodies under 1.095 m (as decimetres, 1.77x too
    tall), decimetre bodies over 1.94 m (as CMU units), inch bodies under 1.14 m, centimetre
    bodies under 1 m, feet bodies over 2.44 m, and other units.
    """
    pts = _rest_positions(skel)
    extent = float(np.max(pts.max(0) - pts.min(0))) if len(pts) else 0.0
    for limit, unit in _GUESS_BINS:
        if extent < limit:
            return UNIT_SCALES[unit], unit
    return UNIT_SCALES["mm"], "mm"


def _end_name(skel: BvhSkeleton, j: int, k: int) -> str:
    name = f"{skel.names[j]}_end"
    return name if k == 0 else f"{name}{k + 1}"


def read_bvh(path: str | Path, *, units: str | None = None, scale: float | None = None,
             up_axis: str = "y", license: str = "", name: str | None = None) -> SourceMotion:
    """Read a BVH file into a :class:`SourceMotion` (global positions in metres, file axes).

    Args:
        path: the ``.bvh`` file.
        units: the file's length unit, one of ``m dm cm mm in ft cmu``; overrides the guess.
        scale: metres per file unit; overrides ``units`` and the guess.
        up_axis: which file axis points up ("y" for almost every BVH).
        license: stored in the result.
        name: clip name (default: the file stem).

    Returns a SourceMotion with ``rotations`` (T, J, 3, 3) = each joint's global orientation,
    ``end_sites`` for non-zero End Sites, ``fps = 1 / Frame Time`` (rounded to the nearest
    integer when within 0.1 %, e.g. 0.0333333 s -> 30), and ``meta`` with ``units``,
    ``scale``, ``frame_time``, ``channels``, ``offsets`` (J, 3, metres).
    """
    with format_errors(path):
        return _read_bvh(path, units, scale, up_axis, license, name)


def _read_bvh(path: str | Path, units: str | None, scale: float | None, up_axis: str, license: str,
              name: str | None) -> SourceMotion:
    path = Path(path)
    text = read_text(path)
    split = re.search(r"^\s*MOTION\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    if split is None:
        raise MotionFormatError(f"{path}: no MOTION block")
    skel = _parse_hierarchy(text[: split.start()], str(path))
    motion_line = text.count("\n", 0, split.end()) + 1
    data, frame_time = _parse_motion(text[split.end():], skel.num_channels, str(path), motion_line)

    if scale is None:
        if units is not None:
            if units not in UNIT_SCALES:
                raise MotionFormatError(f"{path}: unknown units {units!r}, use one of {sorted(UNIT_SCALES)}")
            scale = UNIT_SCALES[units]
        else:
            scale, units = guess_scale(skel)
    units = units or f"{scale} m"
    positions, rotations = _forward_kinematics(skel, data)

    T, J = data.shape[0], len(skel.names)
    end_sites = {}
    for j, offs in skel.end_sites.items():
        for k, off in enumerate(offs):
            if np.any(off != 0):
                end_sites[_end_name(skel, j, k)] = (positions[:, j] + rotations[:, j] @ off) * scale
    fps = 1.0 / frame_time
    if abs(fps - round(fps)) < 1e-3 * fps:
        fps = float(round(fps))
    return SourceMotion(
        name=name or path.stem, joint_names=list(skel.names), parents=np.array(skel.parents),
        positions=positions * scale, fps=fps, up_axis=up_axis, source=str(path), license=license,
        rotations=rotations, end_sites=end_sites,
        meta={"format": "bvh", "units": units, "scale": scale, "frame_time": frame_time,
              "num_frames": T, "num_joints": J, "channels": [list(c) for c in skel.channels],
              "offsets": np.array(skel.offsets) * scale})


def _forward_kinematics(skel: BvhSkeleton, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, C) channel values -> (T, J, 3) positions in file units and (T, J, 3, 3) rotations."""
    T, J = data.shape[0], len(skel.names)
    positions = np.zeros((T, J, 3))
    rotations = np.zeros((T, J, 3, 3))
    col = 0
    for j in range(J):
        chans = skel.channels[j]
        cols = data[:, col: col + len(chans)]
        col += len(chans)
        trans = np.broadcast_to(skel.offsets[j], (T, 3)).copy()
        rot_axes, rot_cols = "", []
        for k, ch in enumerate(chans):
            axis = "XYZ".index(ch[0])
            if ch.endswith("position"):
                trans[:, axis] = cols[:, k]
            else:
                rot_axes += ch[0]
                rot_cols.append(k)
        local = (Rotation.from_euler(rot_axes, cols[:, rot_cols], degrees=True).as_matrix()
                 if rot_axes else np.broadcast_to(np.eye(3), (T, 3, 3)))
        p = skel.parents[j]
        if p < 0:
            positions[:, j], rotations[:, j] = trans, local
        else:
            positions[:, j] = positions[:, p] + np.einsum("tij,tj->ti", rotations[:, p], trans)
            rotations[:, j] = rotations[:, p] @ local
    return positions, rotations


# --------------------------------------------------------------------------------------- writing
def write_bvh(path: str | Path, joint_names: Sequence[str], parents: Sequence[int], offsets: np.ndarray,
              channels: Sequence[Sequence[str]], motion: np.ndarray, frame_time: float, *,
              end_sites: dict[int, np.ndarray] | None = None, precision: int = 10) -> None:
    """Write a BVH file (atomically, making its folder).

    Args:
        joint_names, parents: the skeleton (parents[j] = -1 for a root). Any order; joints are
            written depth-first (children in index order) and the motion columns follow.
        offsets: (J, 3) joint offsets from the parent joint, in the unit you want in the file.
        channels: per joint, channel names such as ``["Xposition", "Yposition", "Zposition",
            "Zrotation", "Yrotation", "Xrotation"]`` (rotations intrinsic, degrees, in order).
        motion: (T, C) values, columns grouped by joint in the order of ``joint_names`` and, per
            joint, in the order of its ``channels``.
        frame_time: seconds per frame.
        end_sites: joint index -> (3,) End Site offset. Joints with no child and no entry get a
            zero End Site (required by most BVH readers; :func:`read_bvh` skips zero ones).
        precision: significant digits of every number written.
    """
    J = len(joint_names)
    parents = [int(p) for p in parents]
    offsets = np.asarray(offsets, dtype=np.float64).reshape(J, 3)
    motion = np.atleast_2d(np.asarray(motion, dtype=np.float64))
    widths = [len(c) for c in channels]
    if len(parents) != J or len(channels) != J:
        raise ValueError("joint_names, parents and channels must have the same length")
    if motion.shape[1] != sum(widths):
        raise ValueError(f"motion has {motion.shape[1]} columns, channels declare {sum(widths)}")
    for c in channels:
        bad = [x for x in c if x not in _CHANNELS]
        if bad:
            raise ValueError(f"unknown channel names {bad}")
    end_sites = end_sites or {}
    starts = np.concatenate([[0], np.cumsum(widths)])
    children = [[c for c in range(J) if parents[c] == j] for j in range(J)]
    fmt = lambda v: f"{v:.{precision}g}"  # noqa: E731
    lines, order = ["HIERARCHY"], []

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if parents[j] < 0 else 'JOINT'} {joint_names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(fmt(v) for v in offsets[j])}")
        lines.append(f"{pad}  CHANNELS {len(channels[j])} {' '.join(channels[j])}".rstrip())
        order.append(j)
        for c in children[j]:
            emit(c, depth + 1)
        if j in end_sites or not children[j]:
            off = np.asarray(end_sites.get(j, np.zeros(3)), dtype=np.float64)
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {' '.join(fmt(v) for v in off)}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    for r in (j for j in range(J) if parents[j] < 0):
        emit(r, 0)
    if len(order) != J:
        raise ValueError("parents do not form a forest (cycle or bad index)")
    cols = np.concatenate([np.arange(starts[j], starts[j + 1]) for j in order]).astype(int)
    lines += ["MOTION", f"Frames: {motion.shape[0]}", f"Frame Time: {fmt(frame_time)}"]
    lines += [" ".join(fmt(v) for v in row) for row in motion[:, cols]]
    atomic_write_text(path, "\n".join(lines) + "\n")  # parents made; never half a file
