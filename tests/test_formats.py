"""Mocap importers: real files in ../shared/data, synthetic files for conventions and bad input."""

from __future__ import annotations

import csv
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from kinpoly.motion.formats import (SUPPORTED_SUFFIXES, guess_license, read_amc, read_asf, read_bvh,
                                    read_deepmimic, read_source_motion, write_bvh)
from kinpoly.motion.source import MotionFormatError, SourceMotion

DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared mocap data not found at {DATA}")


# ------------------------------------------------------------------------------------ helpers
def points(m: SourceMotion, exclude: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every joint and end site, name -> (T, 3)."""
    pts = {n: m.positions[:, j] for j, n in enumerate(m.joint_names) if n not in exclude}
    pts.update(m.end_sites)
    return pts


def up(m: SourceMotion) -> int:
    return "xyz".index(m.up_axis)


def bone_lengths(m: SourceMotion) -> dict[str, np.ndarray]:
    """Joint name -> (T,) distance to its parent joint."""
    return {n: np.linalg.norm(m.positions[:, j] - m.positions[:, m.parents[j]], axis=-1)
            for j, n in enumerate(m.joint_names) if m.parents[j] >= 0}


def mirror_pairs(names) -> list[tuple[str, str]]:
    """Left/right joint pairs for the naming schemes of the test data (x_L/x_R, lx/rx, left_x/right_x)."""
    pairs = []
    for n in names:
        for left, right in ((r"(.*)_L$", r"\1_R"), (r"^l(.+)$", r"r\1"), (r"^left_(.*)$", r"right_\1")):
            other = re.sub(left, right, n)
            if other != n and other in names:
                pairs.append((n, other))
                break
    return pairs


def check_skeleton(m: SourceMotion, *, lr_tol: float, exclude: tuple[str, ...] = ()) -> None:
    """Bones keep their length over time (std < 1 mm) and mirror bones match within lr_tol.
    Bones hanging from an ``exclude``d joint (e.g. a floor-level reference root) are skipped."""
    lengths = {n: ln for n, ln in bone_lengths(m).items()
               if m.joint_names[m.parents[m.joint_names.index(n)]] not in exclude}
    for n, ln in lengths.items():
        assert ln.std() < 1e-3, f"{m.name}: bone {n} length varies (std {ln.std():.4f} m)"
    pairs = mirror_pairs(list(lengths))
    assert len(pairs) >= 4, f"{m.name}: expected left/right limbs, found {pairs}"
    for a, b in pairs:
        assert abs(lengths[a].mean() - lengths[b].mean()) < lr_tol, \
            f"{m.name}: {a} {lengths[a].mean():.3f} m vs {b} {lengths[b].mean():.3f} m"
    assert np.isfinite(m.positions).all() and m.rotations is not None
    assert np.allclose(m.rotations[0] @ np.swapaxes(m.rotations[0], -1, -2), np.eye(3), atol=1e-9)


def check_body(m: SourceMotion, head: str, feet: list[str], *, head_allowance: float = 0.0,
               exclude: tuple[str, ...] = (), min_height: float | None = 1.4,
               feet_low: bool = True) -> float:
    """Check the body height of the most upright frame (top of the head above the lowest point;
    ``head_allowance``: crown height above the ``head`` point) is in [min_height, 2.0] m and
    return it; ``min_height=None`` skips this (clips that never stand). Also check that a foot
    point is (nearly) the lowest body point in most frames (``exclude``: joints that are not body
    points, e.g. a floor-level reference root)."""
    ax = up(m)
    lowest = np.min([p[:, ax] for p in points(m).values()], axis=0)
    height = float(np.max(points(m)[head][:, ax] - lowest)) + head_allowance
    if min_height is not None:
        assert min_height <= height <= 2.0, f"{m.name}: standing height {height:.3f} m"
    if feet_low:
        body = points(m, exclude)
        feet = [f for f in feet + [f"{f}_end" for f in feet] if f in body]
        lowest_body = np.min([p[:, ax] for p in body.values()], axis=0)
        gap = np.min([body[f][:, ax] for f in feet], axis=0) - lowest_body
        assert np.median(gap) < 0.02, f"{m.name}: feet are {np.median(gap):.3f} m above the lowest point"
    return height


# ------------------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def bandai():
    files = sorted((DATA / "bandai").glob("*.bvh"))
    t0 = time.perf_counter()
    motions = [read_source_motion(f)[0] for f in files]
    return files, motions, time.perf_counter() - t0


@needs_data
def test_bandai_bvh_all_parse(bandai):
    files, motions, seconds = bandai
    assert len(files) >= 150  # the README says 153; the folder holds 152 .bvh files
    assert seconds < 30, f"parsing the {len(files)} Bandai files took {seconds:.1f} s"
    heights = []
    for f, m in zip(files, motions):
        header = f.read_text()
        frames = int(re.search(r"Frames:\s*(\d+)", header).group(1))
        frame_time = float(re.search(r"Frame Time:\s*(\S+)", header).group(1))
        assert m.num_frames == frames
        assert m.fps == pytest.approx(1 / frame_time, rel=1e-3) and m.fps == 30  # README: 30 fps
        assert m.meta["units"] == "cm" and m.up_axis == "y"
        assert m.license == "CC BY-NC 4.0"
        assert len(m.joint_names) == 22 and m.joint_names[:3] == ["joint_Root", "Hips", "Spine"]
        for site, xyz in m.end_sites.items():  # only 11 files have non-zero End Sites (Head, hands, toes)
            joint = m.positions[:, m.joint_names.index(site.removesuffix("_end"))]
            assert np.linalg.norm(xyz - joint, axis=-1).std() < 1e-6
        check_skeleton(m, lr_tol=0.01, exclude=("joint_Root",))
        # joint_Root is a floor-level reference (y = 0), not a body point; the Head joint is at the base
        # of the skull, the crown is >= 10 cm higher.
        # Some clips never stand straight (dash, stooped "old" style): 1.2 m per clip, 1.4 m for the actor.
        heights.append(check_body(m, "Head", ["Toes_L", "Toes_R", "Foot_L", "Foot_R"], head_allowance=0.10,
                                  exclude=("joint_Root",), min_height=1.2))
    assert 1.4 <= max(heights) <= 2.0, f"actor height {max(heights):.3f} m"


@needs_data
def test_bvh_speed_longest_file():
    longest = max((DATA / "bandai").glob("*.bvh"), key=lambda f: f.stat().st_size)
    read_bvh(longest)  # warm up
    t0 = time.perf_counter()
    m = read_bvh(longest)
    seconds = time.perf_counter() - t0
    assert m.num_frames > 1800
    assert seconds < 0.5, f"{longest.name} ({m.num_frames} frames) took {seconds:.3f} s"


def _cmu_readme_frames(folder: Path) -> dict[str, int]:
    text = (folder / "README.md").read_text()
    return {name: int(n) for name, n in re.findall(r"\|\s*`(\d+_\d+\.amc)`\s*\|[^|\n]*\|\s*(\d+)\s*\|", text)}


def _amc_files():
    if not DATA.is_dir():
        return []
    return sorted((DATA / "cmu_amc").glob("*.amc")) + sorted((DATA / "interactions").glob("*.amc"))


@pytest.fixture(scope="module")
def interaction_labels():
    with open(DATA / "interactions" / "labels.csv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@needs_data
@pytest.mark.parametrize("amc", _amc_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_cmu_amc_parse(amc, interaction_labels):
    m = read_source_motion(amc)[0]
    if amc.parent.name == "interactions":
        label = interaction_labels[amc.name]
        assert m.num_frames == int(label["frames"]) and m.fps == float(label["fps"])
    else:
        assert m.num_frames == _cmu_readme_frames(amc.parent)[amc.name] and m.fps == 120
    assert m.meta["first_frame_number"] == 1 and m.meta["last_frame_number"] == m.num_frames
    assert m.joint_names[0] == "root" and len(m.joint_names) == 31 and m.up_axis == "y"
    # bone lengths are the ASF lengths in metres: 1 unit = 0.0254 / 0.45 m
    skel = read_asf(m.meta["asf"])
    lengths = bone_lengths(m)
    for name, bone in skel.bones.items():
        assert lengths[name].mean() == pytest.approx(bone.length * 0.0254 / 0.45, abs=1e-9)
    # CMU's own ASFs are slightly asymmetric (01.asf: lfemur 7.16 vs rfemur 7.44 units = 1.6 cm)
    check_skeleton(m, lr_tol=0.02)
    check_body(m, "head", ["ltoes", "rtoes", "lfoot", "rfoot"])


@needs_data
def test_amc_speed():
    amc = DATA / "interactions" / "01_05.amc"
    t0 = time.perf_counter()
    m = read_amc(amc)
    seconds = time.perf_counter() - t0
    assert m.num_frames > 4000
    assert seconds < 3.0, f"{amc.name} ({m.num_frames} frames) took {seconds:.2f} s"


def _deepmimic_files():
    return sorted((DATA / "deepmimic").glob("humanoid3d_*.txt")) if DATA.is_dir() else []


@needs_data
@pytest.mark.parametrize("clip", _deepmimic_files(), ids=lambda p: p.stem)
def test_deepmimic_parse(clip):
    import json

    m = read_source_motion(clip)[0]
    frames = json.loads(clip.read_text())["Frames"]
    assert m.num_frames == len(frames)
    assert m.fps == pytest.approx(1 / frames[0][0], rel=1e-3)
    assert m.license == "MIT" and m.up_axis == "y"
    assert set(m.end_sites) == {"neck_end", "right_ankle_end", "left_ankle_end", "right_wrist_end",
                                "left_wrist_end"}
    check_skeleton(m, lr_tol=1e-9)  # the character is exactly symmetric
    # root position and orientation are the frame's own values
    assert np.allclose(m.positions[:, 0], np.array(frames)[:, 1:4])
    lying = clip.stem in ("humanoid3d_crawl",)  # never stands up
    on_ground = clip.stem in ("humanoid3d_crawl", "humanoid3d_getup_facedown", "humanoid3d_getup_faceup")
    check_body(m, "neck_end", ["left_ankle_end", "right_ankle_end"], min_height=None if lying else 1.4,
               feet_low=not on_ground)


@needs_data
def test_read_source_motion_dispatch_and_license():
    assert guess_license(DATA / "bandai" / "x.bvh") == "CC BY-NC 4.0"
    assert guess_license(DATA / "deepmimic" / "x.txt") == "MIT"
    assert guess_license(DATA / "cmu_amc" / "02_01.amc") == ""
    m = read_source_motion(DATA / "cmu_amc" / "02_01.amc", license="CMU: free for research")[0]
    assert m.license == "CMU: free for research"
    m = read_source_motion(DATA / "cmu_amc" / "02_01.amc", asf=DATA / "cmu_amc" / "02.asf", fps=60)[0]
    assert m.fps == 60
    assert {".bvh", ".amc", ".txt", ".json"} <= set(SUPPORTED_SUFFIXES)


# ------------------------------------------------------------------------------------ conventions
def _simple_bvh(tmp_path: Path, *, root_rot: str, values: str, child_offset: str = "0 10 0",
                end: str = "0 5 0", name: str = "s.bvh") -> Path:
    p = tmp_path / name
    p.write_text(f"""HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {root_rot}
  JOINT Chest
  {{
    OFFSET {child_offset}
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {{
      OFFSET {end}
    }}
  }}
  JOINT Leg
  {{
    OFFSET 0 -90 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {{
      OFFSET 0 0 0
    }}
  }}
}}
MOTION
Frames: 1
Frame Time: 0.0083333
{values}
""")
    return p


def test_bvh_rotation_order_is_intrinsic(tmp_path):
    # Zrotation Xrotation: R = Rz(90) @ Rx(90); Rx(90) (0,1,0) = (0,0,1); Rz(90) (0,0,1) = (0,0,1)
    p = _simple_bvh(tmp_path, root_rot="Zrotation Xrotation Yrotation", values="1 2 3 90 90 0 0 0 0 0 0 0")
    m = read_bvh(p, units="cm")
    assert m.fps == 120
    assert np.allclose(m.positions[0, 0], [0.01, 0.02, 0.03])
    assert np.allclose(m.positions[0, 1], [0.01, 0.02, 0.03 + 0.1])
    assert np.allclose(m.rotations[0, 0], Rotation.from_euler("z", 90, degrees=True).as_matrix()
                       @ Rotation.from_euler("x", 90, degrees=True).as_matrix())
    assert list(m.end_sites) == ["Chest_end"]  # the zero End Site of Leg is dropped
    assert np.allclose(m.end_sites["Chest_end"][0], [0.01, 0.02, 0.03 + 0.15])
    # the other channel order gives the other answer: Rx(90) @ Rz(90) (0,1,0) = (-1,0,0)
    p = _simple_bvh(tmp_path, root_rot="Xrotation Zrotation Yrotation", values="0 0 0 90 90 0 0 0 0 0 0 0")
    assert np.allclose(read_bvh(p, units="cm").positions[0, 1], [-0.1, 0, 0])


def test_bvh_units_guess(tmp_path):
    cm = _simple_bvh(tmp_path, root_rot="Zrotation Xrotation Yrotation", values="0 " * 12, name="cm.bvh")
    m = _simple_bvh(tmp_path, root_rot="Zrotation Xrotation Yrotation", values="0 " * 12, name="m.bvh",
                    child_offset="0 0.5 0", end="0 0.3 0")
    m_text = m.read_text().replace("OFFSET 0 -90 0", "OFFSET 0 -0.9 0")
    m.write_text(m_text)
    assert read_bvh(cm).meta["units"] == "cm" and read_bvh(cm).meta["scale"] == 0.01
    assert read_bvh(m).meta["units"] == "m" and read_bvh(m).meta["scale"] == 1.0
    assert np.allclose(read_bvh(m).positions[0, 2], [0, -0.9, 0])
    assert np.allclose(read_bvh(cm, scale=1.0).positions[0, 2], [0, -90, 0])


def test_bvh_position_channels_override_offset(tmp_path):
    p = tmp_path / "six.bvh"
    write_bvh(p, ["root", "a"], [-1, 0], np.array([[0, 0, 0], [0, 50, 0]]),
              [["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]] * 2,
              np.array([[0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0]]), 1 / 30, end_sites={1: np.array([0, 0, 7])})
    m = read_bvh(p, units="cm")
    assert np.allclose(m.positions[0, 1], [0, 0.2, 0])  # Yposition 20 replaces the 50 offset
    assert np.allclose(m.end_sites["a_end"][0], [0, 0.2, 0.07])


# the round-trip skeleton: a 6-channel root, ZYX joints, given in non-depth-first order
_NAMES = ["root", "leg", "spine", "foot", "arm", "head"]
_PARENTS = [-1, 0, 0, 1, 2, 2]
_OFFSETS = np.array([[0, 0, 0], [10, -5, 0], [0, 12, 0], [0, -40, 3], [15, 20, 0], [0, 25, 2]], dtype=float)
_ZYX = ["Zrotation", "Yrotation", "Xrotation"]
_CHANNELS = [["Xposition", "Yposition", "Zposition"] + _ZYX] + [_ZYX] * 5


def _reference_fk(motion: np.ndarray) -> np.ndarray:
    """Plain per-frame FK with R = Rz @ Ry @ Rx, in file units."""
    out = np.zeros((len(motion), len(_NAMES), 3))
    for t, row in enumerate(motion):
        glob_r, glob_p, col = {}, {}, 0
        for j in range(len(_NAMES)):
            vals = row[col: col + len(_CHANNELS[j])]
            col += len(_CHANNELS[j])
            z, y, x = np.radians(vals[-3:])
            rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
            ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
            rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
            p = _PARENTS[j]
            if p < 0:
                glob_p[j], glob_r[j] = vals[:3], rz @ ry @ rx
            else:
                glob_p[j], glob_r[j] = glob_p[p] + glob_r[p] @ _OFFSETS[j], glob_r[p] @ rz @ ry @ rx
            out[t, j] = glob_p[j]
    return out


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.just(sum(len(c) for c in _CHANNELS))),
              elements=st.floats(-180, 180, allow_nan=False)))
def test_bvh_write_read_round_trip(tmp_path_factory, motion):
    path = tmp_path_factory.mktemp("rt") / "rt.bvh"
    write_bvh(path, _NAMES, _PARENTS, _OFFSETS, _CHANNELS, motion, 1 / 30)
    m = read_bvh(path, units="cm")
    expected = _reference_fk(motion) * 0.01
    order = [m.joint_names.index(n) for n in _NAMES]
    assert m.joint_names == ["root", "leg", "foot", "spine", "arm", "head"]  # depth first in the file
    assert m.parents[m.joint_names.index("foot")] == m.joint_names.index("leg")
    assert np.abs(m.positions[:, order] - expected).max() < 1e-6
    assert m.num_frames == len(motion) and m.fps == 30


def _asf_text(length_unit: float = 0.45, angle: str = "deg") -> str:
    """A two-bone ASF skeleton; ``angle`` "rad" writes its axis angles in radians."""
    side = 90.0 if angle == "deg" else np.pi / 2
    return f"""# test skeleton
:version 1.10
:name test
:units
  mass 1.0
  length {length_unit}
  angle {angle}
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name up
     direction 0 1 0
     length 10
     axis 0 0 0 XYZ
    dof rx ry rz
  end
  begin
     id 2
     name side
     direction 1 0 0
     length 5
     axis 0 0 {side} XYZ
    dof rx
    limits (-180 180)
  end
:hierarchy
  begin
    root up
    up side
  end
"""


def _amc_text(frames: list[str]) -> str:
    return ":FULLY-SPECIFIED\n:DEGREES\n" + "".join(f"{i + 1}\n{f}" for i, f in enumerate(frames))


def test_acclaim_forward_kinematics(tmp_path):
    (tmp_path / "07.asf").write_text(_asf_text())
    (tmp_path / "07_01.amc").write_text(_amc_text([
        "root 1 2 3 0 0 0\nup 0 0 0\nside 0\n",
        "root 0 0 0 0 0 90\nup 0 0 0\nside 0\n",  # root turned 90 deg about Z
        "root 0 0 0 0 0 0\nup 0 0 0\nside 90\n",  # side rotates about its local x = world y
        "root 0 0 0 0 0 0\n",  # bones missing: zeros
        "root 0 0 0 0 0 0\nup 0 0 0\nside 0\n",  # (a last frame without them would be a cut file)
    ]))
    m = read_source_motion(tmp_path / "07_01.amc")[0]
    u = 0.0254 / 0.45
    assert m.joint_names == ["root", "up", "side"] and list(m.parents) == [-1, 0, 1]
    assert m.fps == 120 and m.meta["asf"].endswith("07.asf")
    assert np.allclose(m.positions[0], np.array([[1, 2, 3], [1, 12, 3], [6, 12, 3]]) * u)
    assert np.allclose(m.positions[1], np.array([[0, 0, 0], [-10, 0, 0], [-10, 5, 0]]) * u)
    assert np.allclose(m.positions[2, 2], np.array([0, 10, -5]) * u)
    assert np.allclose(m.positions[3], np.array([[0, 0, 0], [0, 10, 0], [5, 10, 0]]) * u)


# ------------------------------------------------------------------------------------ bad input
def _good_bvh(tmp_path: Path) -> Path:
    p = tmp_path / "good.bvh"
    rng = np.random.default_rng(0)
    write_bvh(p, _NAMES, _PARENTS, _OFFSETS, _CHANNELS, rng.uniform(-30, 30, (5, 21)), 1 / 30)
    return p


def _raises(path: Path, match: str = "", **kw) -> str:
    with pytest.raises(MotionFormatError) as e:
        read_source_motion(path, **kw)
    msg = str(e.value)
    assert path.name in msg, msg
    assert re.search(match, msg), msg
    return msg


@pytest.mark.parametrize("suffix", [".bvh", ".amc", ".txt"])
def test_empty_file(tmp_path, suffix):
    (tmp_path / "09.asf").write_text(_asf_text())
    (tmp_path / "humanoid3d_character.json").write_text('{"Skeleton": {"Joints": []}}')
    p = tmp_path / f"09_01{suffix}"
    p.write_text("")
    _raises(p, "empty|no frames|no 'Frames'|Joints")


def test_bvh_truncated(tmp_path):
    p = _good_bvh(tmp_path)
    text = p.read_text()
    p.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # cut the last frame in half
    _raises(p, r"frame 5 \(line \d+\) has \d+ values")


def test_bvh_missing_frames(tmp_path):
    p = _good_bvh(tmp_path)
    p.write_text("\n".join(p.read_text().splitlines()[:-2]) + "\n")
    _raises(p, "header says 5 frames, file has 3")


def test_bvh_nan(tmp_path):
    p = _good_bvh(tmp_path)
    lines = p.read_text().splitlines()
    vals = lines[-2].split()
    vals[4] = "nan"
    lines[-2] = " ".join(vals)
    p.write_text("\n".join(lines) + "\n")
    _raises(p, "frame 4 has a non-finite value")


def test_bvh_wrong_channel_count(tmp_path):
    p = _good_bvh(tmp_path)
    lines = p.read_text().splitlines()
    lines[-3] += " 1.0"
    p.write_text("\n".join(lines) + "\n")
    _raises(p, r"frame 3 \(line \d+\) has 22 values, the HIERARCHY declares 21")


def test_bvh_bad_hierarchy(tmp_path):
    p = _good_bvh(tmp_path)
    p.write_text(p.read_text().replace("CHANNELS 3 Zrotation", "CHANNELS 3 Wrotation", 1))
    _raises(p, "unknown channel")
    p.write_text("HIERARCHY\nROOT a\n{\n OFFSET 0 0\n")
    _raises(p, "no MOTION")


def test_amc_without_asf(tmp_path):
    p = tmp_path / "05_01.amc"
    p.write_text(_amc_text(["root 0 0 0 0 0 0\n"]))
    _raises(p, "05.asf")


def test_amc_unknown_bone(tmp_path):
    (tmp_path / "07.asf").write_text(_asf_text())
    p = tmp_path / "07_02.amc"
    p.write_text(_amc_text(["root 0 0 0 0 0 0\nup 0 0 0\n", "root 0 0 0 0 0 0\nelbow 1 2 3\n"]))
    _raises(p, "frame 2.*unknown bone 'elbow'")


def test_amc_wrong_value_count(tmp_path):
    (tmp_path / "07.asf").write_text(_asf_text())
    p = tmp_path / "07_03.amc"
    p.write_text(_amc_text(["root 0 0 0 0 0 0\nup 0 0 0\n", "root 0 0 0 0 0 0\nup 1 2\n"]))
    _raises(p, "frame 2: bone up has 2 values")
    p.write_text(_amc_text(["root 0 0 0 0 0 0\nup 0 0 0\n", "root 0 0 0 0 0 0\nup 1 nan 2\n"]))
    _raises(p, "frame 2: bone up has a non-numeric or non-finite value")


def test_deepmimic_bad_frames(tmp_path):
    if not (DATA / "deepmimic").is_dir():
        pytest.skip(f"shared mocap data not found at {DATA}")
    shutil.copy(DATA / "deepmimic" / "humanoid3d_character.json", tmp_path)
    p = tmp_path / "clip.txt"
    p.write_text('{"Loop": "none", "Frames": [[0.033' + ", 0" * 43 + "], [0.033, 1, 2]]}")
    _raises(p, "frame 2 has 3 values")
    p.write_text('{"Loop": "none", "Frames": [[0.033' + ", 0" * 43 + "]")
    _raises(p, "not valid JSON")
    p.write_text('{"Loop": "none", "Frames": [[0.033' + ", 0" * 43 + "]]}")
    (tmp_path / "humanoid3d_character.json").unlink()
    _raises(p, "character file")


def test_unsupported_suffix(tmp_path):
    p = tmp_path / "clip.fbx"
    p.write_text("x")
    _raises(p, "unsupported file type")
    _raises(tmp_path / "missing.bvh", "no such file")


def test_direct_readers_name_the_file(tmp_path):
    p = tmp_path / "x.asf"
    p.write_text(":bonedata\n begin\n name\n end\n")
    with pytest.raises(MotionFormatError, match="x.asf"):
        read_asf(p)
    q = tmp_path / "y.txt"
    q.write_text('{"Frames": [[1]]}')
    (tmp_path / "c.json").write_text('{"Skeleton": {"Joints": [{"Name": "root"}]}}')
    with pytest.raises(MotionFormatError, match="y.txt"):
        read_deepmimic(q, tmp_path / "c.json")
