"""Acclaim skeleton (ASF) and motion (AMC) files, e.g. the CMU motion capture database.

Conventions
-----------
* Lengths: ASF ``:units length L`` means one file unit is ``(1 / L) * 0.0254`` metres (CMU:
  L = 0.45, so 1 unit = 5.64 cm). Bone lengths, root translations and translation dofs are
  converted to metres. ``angle deg|rad`` gives the unit of the ASF ``axis``/``orientation``
  angles; the AMC ``:DEGREES``/``:RADIANS`` line gives the unit of the motion (default: the
  ASF's).
* World axes are the ASF's (CMU: Y up, the subject faces roughly +Z in the rest pose).
* Rotations: an order such as ``axis 0 0 20 XYZ`` or ``dof rx ry rz`` means: rotate about X,
  then Y, then Z, about fixed axes, i.e. ``R = Rz @ Ry @ Rx`` (scipy extrinsic "xyz").
* Forward kinematics (the standard Acclaim one): for bone b with axis rotation C and motion
  M (from its dof values, in the order the dofs are listed), ``L = C M C^-1``,
  ``G_b = G_parent L`` and the bone's end point is
  ``end_b = end_parent + G_b @ (direction * length)``. The root is handled the same way with
  C from its ``orientation``/``axis`` and M, translation from the AMC root line (in the ASF
  root ``order``); the ASF root ``position`` is only a rest value and is not added.
  Translation dofs ``tx ty tz`` of a bone move its end point along the bone's local (axis)
  frame and ``l`` adds to its length.

Output joints (:func:`read_amc`): ``"root"`` (the root translation, i.e. the pelvis) followed
by every bone in depth-first :hierarchy order. The position of a bone "joint" is its END
point, which is where its children start. For CMU skeletons that means: ``lhipjoint`` = left
hip joint centre, ``lfemur`` = knee, ``ltibia`` = ankle, ``lfoot`` = ball of the foot,
``ltoes`` = toe tip, ``lowerback``/``upperback``/``thorax`` = points up the spine,
``lowerneck``/``upperneck`` = neck, ``head`` = top of the head, ``lclavicle`` = shoulder,
``lhumerus`` = elbow, ``lradius`` = wrist, ``lwrist``/``lhand`` = hand, ``lfingers`` = finger
tip, ``lthumb`` = thumb tip. ``rotations[t, j]`` is bone j's global rotation G_j (identity in
the ASF rest pose, which is a T-pose for CMU).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from kinpoly.motion.source import MotionFormatError, SourceMotion, format_errors, read_text

CMU_FPS = 120.0
_ROT_DOFS = ("rx", "ry", "rz")
_TRANS_DOFS = ("tx", "ty", "tz")


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray  # (3,) unit vector, ASF world axes, rest pose
    length: float  # file units
    axis: np.ndarray  # (3,) angles of the bone's local frame, ASF angle unit
    axis_order: str = "XYZ"
    dof: list[str] = field(default_factory=list)


@dataclass
class AsfSkeleton:
    """An ASF file. ``bones`` and ``children`` keep file order; lengths are in file units."""

    name: str
    source: str
    length_unit: float = 1.0  # the ASF ":units length" value (default 1: lengths in inches)
    angle_degrees: bool = True
    root_order: list[str] = field(default_factory=lambda: ["TX", "TY", "TZ", "RX", "RY", "RZ"])
    root_axis_order: str = "XYZ"
    root_position: np.ndarray = field(default_factory=lambda: np.zeros(3))
    root_orientation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    bones: dict[str, AsfBone] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    @property
    def metres_per_unit(self) -> float:
        return 0.0254 / self.length_unit

    def joint_order(self) -> list[str]:
        """``root`` then every bone, depth first in :hierarchy order."""
        order, stack = [], ["root"]
        while stack:
            name = stack.pop()
            if name not in order:  # guards against cycles; read_asf rejects them
                order.append(name)
                stack.extend(reversed(self.children.get(name, [])))
        return order


def _clean_lines(text: str) -> list[tuple[int, list[str]]]:
    """(1-based line number, tokens) of every non-empty line, comments removed."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        toks = line.split("#", 1)[0].split()
        if toks:
            out.append((i, toks))
    return out


def _floats(toks: list[str], n: int, where: str) -> np.ndarray:
    if len(toks) < n:
        raise MotionFormatError(f"{where}: expected {n} numbers, got {toks}")
    try:
        return np.array(toks[:n], dtype=np.float64)
    except ValueError:
        raise MotionFormatError(f"{where}: expected numbers, got {toks[:n]}") from None


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an Acclaim ASF skeleton file."""
    with format_errors(path):
        return _read_asf(path)


def _read_asf(path: str | Path) -> AsfSkeleton:
    path = Path(path)
    lines = _clean_lines(read_text(path))
    if not lines:
        raise MotionFormatError(f"{path}: file is empty")
    skel = AsfSkeleton(name=path.stem, source=str(path))
    section, bone = None, None
    for lineno, toks in lines:
        where = f"{path}: line {lineno}"
        key = toks[0]
        if key.startswith(":"):
            section = key.lower()
            if section == ":name" and len(toks) > 1:
                skel.name = toks[1]
            continue
        low = key.lower()
        if section == ":units":
            if low == "length" and len(toks) > 1:
                skel.length_unit = float(_floats(toks[1:], 1, where)[0])
                if skel.length_unit <= 0:
                    raise MotionFormatError(f"{where}: length unit must be positive")
            elif low == "angle" and len(toks) > 1:
                if toks[1].lower() not in ("deg", "rad"):
                    raise MotionFormatError(f"{where}: angle unit must be deg or rad, got {toks[1]!r}")
                skel.angle_degrees = toks[1].lower() == "deg"
        elif section == ":root":
            if low == "order":
                skel.root_order = [t.upper() for t in toks[1:]]
                bad = [t for t in skel.root_order if t not in ("TX", "TY", "TZ", "RX", "RY", "RZ")]
                if bad:
                    raise MotionFormatError(f"{where}: unknown root channel(s) {bad}")
            elif low == "axis":
                skel.root_axis_order = toks[1].upper() if len(toks) > 1 else "XYZ"
            elif low == "position":
                skel.root_position = _floats(toks[1:], 3, where)
            elif low == "orientation":
                skel.root_orientation = _floats(toks[1:], 3, where)
        elif section == ":bonedata":
            if low == "begin":
                bone = {}
            elif low == "end":
                if bone is None or "name" not in bone:
                    raise MotionFormatError(f"{where}: bone block without a name")
                for req in ("direction", "length"):
                    if req not in bone:
                        raise MotionFormatError(f"{path}: bone {bone['name']} has no {req}")
                d = bone["direction"]
                n = np.linalg.norm(d)
                skel.bones[bone["name"]] = AsfBone(
                    name=bone["name"], direction=d / n if n > 0 else d, length=bone["length"],
                    axis=bone.get("axis", np.zeros(3)), axis_order=bone.get("axis_order", "XYZ"),
                    dof=bone.get("dof", []))
                bone = None
            elif bone is not None:
                if low == "name":
                    bone["name"] = toks[1]
                elif low == "direction":
                    bone["direction"] = _floats(toks[1:], 3, where)
                elif low == "length":
                    bone["length"] = float(_floats(toks[1:], 1, where)[0])
                elif low == "axis":
                    bone["axis"] = _floats(toks[1:], 3, where)
                    bone["axis_order"] = toks[4].upper() if len(toks) > 4 else "XYZ"
                elif low == "dof":
                    bone["dof"] = [t.lower() for t in toks[1:]]
                    bad = [t for t in bone["dof"] if t not in _ROT_DOFS + _TRANS_DOFS + ("l",)]
                    if bad:
                        raise MotionFormatError(f"{where}: unknown dof(s) {bad}")
        elif section == ":hierarchy":
            if low in ("begin", "end"):
                continue
            for child in toks[1:]:
                skel.children.setdefault(key, []).append(child)
    if not skel.bones:
        raise MotionFormatError(f"{path}: no :bonedata")
    order = skel.joint_order()
    unknown = [n for n in order if n != "root" and n not in skel.bones]
    if unknown:
        raise MotionFormatError(f"{path}: :hierarchy names unknown bone(s) {unknown}")
    missing = [n for n in skel.bones if n not in order]
    if missing:
        raise MotionFormatError(f"{path}: bone(s) {missing} are not in the :hierarchy under root")
    listed = [c for kids in skel.children.values() for c in kids]
    if len(listed) != len(set(listed)) or "root" in listed:
        raise MotionFormatError(f"{path}: :hierarchy gives a bone two parents (or a parent to root)")
    for order_str in [skel.root_axis_order] + [b.axis_order for b in skel.bones.values()]:
        if not re.fullmatch(r"[XYZ]{3}", order_str) or len(set(order_str)) != 3:
            raise MotionFormatError(f"{path}: bad axis order {order_str!r}")
    return skel


def find_asf(amc_path: str | Path) -> Path:
    """The ASF for ``<subject>_<take>.amc`` is ``<subject>.asf`` in the same folder."""
    amc_path = Path(amc_path)
    subject = amc_path.stem.split("_")[0]
    for cand in (amc_path.with_name(subject + ".asf"), amc_path.with_name(subject + ".ASF")):
        if cand.is_file():
            return cand
    others = sorted(p.name for p in amc_path.parent.glob("*") if p.suffix.lower() == ".asf")
    found = f" (found {', '.join(others[:5])}: rename the subject's own to {subject}.asf)" if others else ""
    raise MotionFormatError(f"{amc_path}: no skeleton file {subject}.asf beside it; an AMC file needs "
                            f"the ASF skeleton of its subject (NN_MM.amc -> NN.asf){found}")


def _parse_amc(path: Path, skel: AsfSkeleton) -> tuple[dict[str, np.ndarray], int, bool | None, list[int]]:
    """Per bone (T, ndof) values (zeros where a frame omits the bone), frame count,
    angle unit flag from the header (True deg, False rad, None absent) and frame numbers."""
    text = read_text(path)
    ndof = {name: len(b.dof) for name, b in skel.bones.items()}
    ndof["root"] = len(skel.root_order)
    rows: dict[str, list[str]] = {n: [] for n in ndof}  # the value part of each line
    frames: dict[str, list[int]] = {n: [] for n in ndof}  # frame index of each line
    lines = text.splitlines()
    degrees, numbers, seen = None, [], set()

    def fail(lineno: int, msg: str) -> MotionFormatError:
        frame = f"frame {numbers[-1]}" if numbers else "before the first frame number"
        return MotionFormatError(f"{path}: line {lineno + 1} ({frame}): {msg}")

    for lineno, line in enumerate(lines):
        parts = line.split(None, 1)
        if not parts or parts[0][0] == "#":
            continue
        name = parts[0]
        if len(parts) == 1 and name.isdigit():
            numbers.append(int(name))
            seen = set()
            continue
        if name[0] == ":":
            degrees = {":DEGREES": True, ":RADIANS": False}.get(name.upper(), degrees)
            continue
        n = ndof.get(name)
        if n is None:
            raise fail(lineno, f"unknown bone {name!r} (not in {skel.source})")
        if not numbers:
            raise fail(lineno, "bone values before the first frame number")
        if name in seen:
            raise fail(lineno, f"bone {name} given twice")
        seen.add(name)
        rows[name].append(parts[1] if len(parts) > 1 else "")
        frames[name].append(len(numbers) - 1)
    T = len(numbers)
    if T == 0:
        raise MotionFormatError(f"{path}: no frames")
    # a frame may omit bones (zeros), but a last frame without bones the one before gives was cut off
    cut = sorted(n for n, f in frames.items() if T - 2 in f[-2:] and f[-1] != T - 1)
    if cut:
        raise MotionFormatError(f"{path}: the last frame ({numbers[-1]}) lacks bone(s) {', '.join(cut[:5])} that "
                                f"frame {numbers[-2]} gives: the file is truncated")
    values = {}
    for name, n in ndof.items():
        values[name] = arr = np.zeros((T, n))
        if not rows[name]:
            continue
        try:
            vals = np.array(" ".join(rows[name]).split(), dtype=np.float64)
        except ValueError:
            vals = None
        if vals is None or vals.size != n * len(rows[name]) or not np.isfinite(vals).all():
            for k, r in enumerate(rows[name]):  # slow path: say which frame is wrong
                toks = r.split()
                where = f"{path}: frame {numbers[frames[name][k]]}: bone {name}"
                if len(toks) != n:
                    raise MotionFormatError(f"{where} has {len(toks)} values, its dof in "
                                            f"{Path(skel.source).name} has {n}")
                try:
                    ok = all(np.isfinite(float(x)) for x in toks)
                except ValueError:
                    ok = False
                if not ok:
                    raise MotionFormatError(f"{where} has a non-numeric or non-finite value: {r.strip()}")
        arr[frames[name]] = vals.reshape(-1, n)
    return values, T, degrees, numbers


def read_amc(path: str | Path, asf: str | Path | AsfSkeleton | None = None, *, fps: float = CMU_FPS,
             up_axis: str = "y", license: str = "", name: str | None = None) -> SourceMotion:
    """Read an AMC motion with its ASF skeleton into a :class:`SourceMotion` (metres, ASF axes).

    Args:
        path: the ``.amc`` file.
        asf: the ASF file or an already parsed :class:`AsfSkeleton`; default
            :func:`find_asf` (``<subject>.asf`` beside ``<subject>_<take>.amc``).
        fps: the capture rate; AMC files do not store it (CMU: 120).
        up_axis: the ASF's up axis (CMU: "y").
    """
    with format_errors(path):
        return _read_amc(path, asf, fps, up_axis, license, name)


def _read_amc(path: str | Path, asf: str | Path | AsfSkeleton | None, fps: float, up_axis: str, license: str,
              name: str | None) -> SourceMotion:
    path = Path(path)
    if asf is None:
        asf = find_asf(path)
    skel = asf
    if not isinstance(skel, AsfSkeleton):
        try:
            skel = read_asf(asf)
        except MotionFormatError as e:
            raise MotionFormatError(f"{path}: bad skeleton file: {e}") from None
    values, T, degrees, numbers = _parse_amc(path, skel)
    if degrees is None:
        degrees = skel.angle_degrees
    unit = skel.metres_per_unit
    order = skel.joint_order()
    index = {n: i for i, n in enumerate(order)}
    J = len(order)
    positions = np.zeros((T, J, 3))
    rotations = np.zeros((T, J, 3, 3))
    parents = np.full(J, -1)

    def local(C: np.ndarray, names: list[str], vals: np.ndarray) -> np.ndarray:
        rot = [k for k, d in enumerate(names) if d in _ROT_DOFS]
        if not rot:
            return np.broadcast_to(np.eye(3), (T, 3, 3))
        M = Rotation.from_euler("".join(names[k][1] for k in rot), vals[:, rot], degrees=degrees).as_matrix()
        return C @ M @ C.T

    # root
    C = Rotation.from_euler(skel.root_axis_order.lower(), skel.root_orientation,
                            degrees=skel.angle_degrees).as_matrix()
    root_names = [d.lower() for d in skel.root_order]
    rv = values["root"]
    for k, d in enumerate(root_names):
        if d in _TRANS_DOFS:
            positions[:, 0, "xyz".index(d[1])] = rv[:, k] * unit
    rotations[:, 0] = local(C, root_names, rv)
    # bones
    for parent, kids in skel.children.items():
        for kid in kids:
            parents[index[kid]] = index[parent]
    for j in range(1, J):
        b = skel.bones[order[j]]
        p = parents[j]
        C = Rotation.from_euler(b.axis_order.lower(), b.axis, degrees=skel.angle_degrees).as_matrix()
        v = values[b.name]
        G = rotations[:, p] @ local(C, b.dof, v)
        rotations[:, j] = G
        length = np.full(T, b.length)
        if "l" in b.dof:
            length = length + v[:, b.dof.index("l")]
        seg = length[:, None] * b.direction
        trans = [k for k, d in enumerate(b.dof) if d in _TRANS_DOFS]
        if trans:
            t = np.zeros((T, 3))
            for k in trans:
                t[:, "xyz".index(b.dof[k][1])] = v[:, k]
            seg = seg + t @ C.T
        positions[:, j] = positions[:, p] + np.einsum("tij,tj->ti", G, seg) * unit
    return SourceMotion(
        name=name or path.stem, joint_names=order, parents=parents, positions=positions, fps=float(fps),
        up_axis=up_axis, source=str(path), license=license, rotations=rotations,
        meta={"format": "amc", "asf": skel.source, "units": "m", "metres_per_unit": unit,
              "angle_unit": "deg" if degrees else "rad", "num_frames": T,
              "first_frame_number": numbers[0], "last_frame_number": numbers[-1],
              "joint_point": "end of bone (root: pelvis)"})
