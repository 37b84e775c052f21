"""Mocap files the project has never seen: every variation of a format either imports as the
same sensible clip (upright, person-sized, right duration, 30 Hz) or fails with a one-line
error naming the file, listed by ``motion import`` while the other files go on.

All inputs are synthesised here: a walk on a Mixamo-style BVH rig, written with the project's
own :func:`write_bvh` in any channel layout, AMASS-style npz files, a small ASF/AMC pair and
Kin-Poly pickles.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from kinpoly.cli import main
from kinpoly.humanoid.kinematics import forward_kinematics
from kinpoly.humanoid.mjcf import rest_qpos
from kinpoly.humanoid.skeleton import BodyShape
from kinpoly.motion.clip import ClipError, ClipFolder
from kinpoly.motion.formats import read_amc, read_bvh, write_bvh
from kinpoly.motion.formats.bvh import BvhSkeleton, guess_scale
from kinpoly.motion.importers import find_motion_files, import_file, upright_share
from kinpoly.motion.source import MotionFormatError
from test_formats import _asf_text  # the two-bone ASF skeleton of the format tests

# ----------------------------------------------------------------------------- a BVH walk
# name, parent, offset in cm (Y up, facing +Z, the body's left is +X)
RIG = [
    ("Hips", None, (0, 0, 0)), ("Spine", "Hips", (0, 10, 0)), ("Spine1", "Spine", (0, 15, 0)),
    ("Neck", "Spine1", (0, 25, 0)), ("Head", "Neck", (0, 10, 0)),
    ("LeftShoulder", "Spine1", (5, 20, 0)), ("LeftArm", "LeftShoulder", (12, 0, 0)),
    ("LeftForeArm", "LeftArm", (28, 0, 0)), ("LeftHand", "LeftForeArm", (25, 0, 0)),
    ("RightShoulder", "Spine1", (-5, 20, 0)), ("RightArm", "RightShoulder", (-12, 0, 0)),
    ("RightForeArm", "RightArm", (-28, 0, 0)), ("RightHand", "RightForeArm", (-25, 0, 0)),
    ("LeftUpLeg", "Hips", (9, -5, 0)), ("LeftLeg", "LeftUpLeg", (0, -42, 0)),
    ("LeftFoot", "LeftLeg", (0, -42, 0)), ("LeftToeBase", "LeftFoot", (0, -6, 13)),
    ("RightUpLeg", "Hips", (-9, -5, 0)), ("RightLeg", "RightUpLeg", (0, -42, 0)),
    ("RightFoot", "RightLeg", (0, -42, 0)), ("RightToeBase", "RightFoot", (0, -6, 13)),
]
ENDS = {"Head": (0, 18, 0), "LeftHand": (10, 0, 0), "RightHand": (-10, 0, 0),
        "LeftToeBase": (0, 0, 5), "RightToeBase": (0, 0, 5)}
Y_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # a Z-up export of the same world


def _euler(axis: str, deg) -> np.ndarray:
    return Rotation.from_euler(axis, np.reshape(deg, (-1, 1)), degrees=True).as_matrix()


def walk_bvh(path: Path, *, fps: float = 30.0, seconds: float = 2.0, frames: int | None = None,
             order: str = "ZXY", pos_order: str = "XYZ", six_everywhere: bool = False,
             unit: float = 0.01, z_up: bool = False, rig=RIG, ends=ENDS, rename=None) -> Path:
    """A 1 Hz walk at 1.2 m/s, hips 0.95 m high, written with rotation channels in ``order``,
    root position channels in ``pos_order``, lengths in ``unit`` metres."""
    T = frames if frames is not None else int(round(seconds * fps)) + 1
    ph = 2 * np.pi * np.arange(T) / fps
    names = [r[0] for r in rig]
    local = {n: np.tile(np.eye(3), (T, 1, 1)) for n in names}
    local.update({
        "Hips": Rotation.from_euler("yx", np.c_[10 * np.sin(ph / 2), 3 * np.sin(ph)], degrees=True).as_matrix(),
        "LeftUpLeg": _euler("x", -25 * np.sin(ph)), "RightUpLeg": _euler("x", 25 * np.sin(ph)),
        "LeftLeg": _euler("x", 30 + 25 * np.sin(ph + 1)), "RightLeg": _euler("x", 30 - 25 * np.sin(ph + 1)),
        "LeftArm": _euler("z", -70 + 0 * ph), "RightArm": _euler("z", 70 + 0 * ph),
        "LeftForeArm": _euler("y", 20 + 10 * np.sin(ph)), "RightForeArm": _euler("y", -20 - 10 * np.sin(ph)),
    })
    A = Y_TO_Z_UP if z_up else np.eye(3)
    to_file = 0.01 / unit
    root = np.c_[np.zeros(T), 95 + 2 * np.cos(2 * ph), 120 * np.arange(T) / fps] @ A.T * to_file
    rot_ch = [f"{a}rotation" for a in order]
    pos_ch = [f"{a}position" for a in pos_order]
    channels, columns = [], []
    for j, (name, parent, off) in enumerate(rig):
        eul = Rotation.from_matrix(A @ local[name] @ A.T).as_euler(order, degrees=True)
        pos = root if parent is None else np.tile(A @ np.array(off, float) * to_file, (T, 1))
        chans = pos_ch + rot_ch if parent is None or six_everywhere else rot_ch
        channels.append(chans)
        columns.append(np.stack([pos[:, "XYZ".index(c[0])] if c.endswith("position") else eul[:, order.index(c[0])]
                                 for c in chans], axis=1))
    offsets = np.array([A @ np.array(off, float) * to_file for _, _, off in rig])
    parents = [-1 if p is None else names.index(p) for _, p, _ in rig]
    end_sites = {names.index(n): A @ np.array(e, float) * to_file for n, e in ends.items() if n in names}
    rename = rename or {}
    write_bvh(path, [rename.get(n, n) for n in names], parents, offsets, channels, np.concatenate(columns, axis=1),
              1.0 / fps, end_sites=end_sites)
    return path


def positions(clip) -> np.ndarray:
    return clip.body_states().positions


def check_sensible(clip, seconds: float) -> None:
    """30 Hz, the source's duration, upright, a person's height, feet on the floor."""
    p = positions(clip)
    assert clip.fps == 30.0
    assert clip.num_frames == int(np.floor(seconds * 30 + 1e-6)) + 1
    assert upright_share(clip) > 0.95
    assert 1.5 < clip.body.height < 1.9, clip.body.height
    assert abs(p[..., 2].min()) < 0.05  # grounded
    assert 1.3 < np.median(p[:, 1:, 2].max(1) - p[..., 2].min(1)) < 1.8


def one_line_error(path: Path, match: str, error=MotionFormatError, **kw) -> str:
    """import_file raises a MotionFormatError naming the file (the CLI lists it on one line)."""
    with pytest.raises(error) as e:
        import_file(path, **kw)
    msg = str(e.value)
    assert path.name in msg and re.search(match, msg), msg
    return msg


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The walk with the usual layout (ZXY rotations, 6-channel root, cm, Y up, 30 Hz)."""
    path = walk_bvh(tmp_path_factory.mktemp("base") / "walk.bvh")
    clip = import_file(path)[0]
    check_sensible(clip, 2.0)
    return clip


def _edit(text: str, how: str) -> str | bytes:
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "tabs_blank_lines_trailing_space":
        lines = [ln.replace("  ", "\t").replace(" ", "\t ") + " \t" for ln in text.splitlines()]
        return "\n\n".join(lines) + "\n"
    if how == "bom":
        return b"\xef\xbb\xbf" + text.encode()
    if how == "lowercase_keywords":
        return text.replace("HIERARCHY", "hierarchy").replace("MOTION", "Motion").replace("Frame Time", "frame time")
    if how == "frames_as_float":
        return re.sub(r"Frames: (\d+)", r"Frames: \1.0", text)
    if how == "extra_end_sites":  # End Sites on joints with children too
        return re.sub(r"(\n(\s*)CHANNELS[^\n]*)(?=\n\s*JOINT)", r"\1\n\2End Site\n\2{\n\2  OFFSET 0 1 0\n\2}", text)
    raise ValueError(how)


@pytest.mark.parametrize("layout", [dict(order="XYZ"), dict(order="YXZ"), dict(order="ZYX"), dict(order="YZX"),
                                    dict(six_everywhere=True, pos_order="ZXY", order="XZY"),
                                    dict(rename={n: f"mixamorig:{n}" for n, _, _ in RIG})])
def test_bvh_channel_layouts_give_the_same_clip(base, tmp_path, layout):
    """Any rotation order, 6 channels on every joint, odd position order, Mixamo names."""
    clip = import_file(walk_bvh(tmp_path / "walk.bvh", **layout))[0]
    np.testing.assert_allclose(positions(clip), positions(base), atol=1e-6)


@pytest.mark.parametrize("how", ["crlf", "tabs_blank_lines_trailing_space", "bom", "lowercase_keywords",
                                 "frames_as_float", "extra_end_sites"])
def test_bvh_text_variants_give_the_same_clip(base, tmp_path, how):
    path = walk_bvh(tmp_path / "walk.bvh")
    text = _edit(path.read_text(), how)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    clip = import_file(path)[0]
    np.testing.assert_allclose(positions(clip), positions(base), atol=1e-6)


@pytest.mark.parametrize("fps", [120, 60, 25, 24, 29.97])
def test_bvh_frame_rates_resample_to_30hz(base, tmp_path, fps):
    clip = import_file(walk_bvh(tmp_path / "walk.bvh", fps=fps))[0]
    check_sensible(clip, 2.0)
    assert clip.meta["source_fps"] == pytest.approx(fps, rel=1e-6)
    # the same motion, sampled at other instants: within interpolation error of the 30 Hz file
    assert np.abs(positions(clip) - positions(base)).max() < 0.01


UNITS = {"mm": 0.001, "cm": 0.01, "dm": 0.1, "m": 1.0, "in": 0.0254, "ft": 0.3048, "cmu": 0.0254 / 0.45}


@pytest.mark.parametrize("unit", ["mm", "cm", "dm", "m", "in", "ft", "cmu"])
def test_bvh_units_are_guessed(base, tmp_path, unit):
    """Millimetres to metres, inches, feet and the CMU BVH conversions' 1/0.45 inch all give the
    same 1.7 m body (inches and CMU units read as centimetres before: a 0.7 m child, or an
    error; decimetres and feet as CMU units: a 1 m child, or a 0.3 m body refused)."""
    path = walk_bvh(tmp_path / "walk.bvh", unit=UNITS[unit])
    assert read_bvh(path).meta["units"] == unit
    np.testing.assert_allclose(positions(import_file(path)[0]), positions(base), atol=1e-6)


@pytest.mark.parametrize("unit", ["dm", "ft"])
def test_bvh_decimetres_and_feet_import_at_their_height(base, tmp_path, unit):
    """A walk in decimetres (17 units tall) or feet (5.7 units) is a 1.7 m body, as in cm."""
    clip = import_file(walk_bvh(tmp_path / f"walk_{unit}.bvh", unit=UNITS[unit]))[0]
    check_sensible(clip, 2.0)
    assert clip.body.height == pytest.approx(base.body.height, rel=1e-6)


def _chain(height: float) -> BvhSkeleton:
    """A skeleton that is one vertical chain ``height`` file units tall (extent = height)."""
    return BvhSkeleton(names=["Hips", "Spine", "Head"], parents=[-1, 0, 1],
                       offsets=[np.zeros(3), np.array([0, height / 2, 0]), np.array([0, height / 2, 0])],
                       channels=[["Xposition", "Yposition", "Zposition"], [], []])


@pytest.mark.parametrize("unit, lo, hi", [  # heights (m) each unit is guessed right for
    ("m", 0.3, 2.9), ("ft", 0.92, 2.43), ("dm", 0.81, 1.93), ("cmu", 1.1, 2.53), ("in", 1.15, 2.53),
    ("cm", 1.01, 2.99), ("mm", 0.31, 2.5)])
def test_bvh_unit_guess_covers_adults(unit, lo, hi):
    """guess_scale's bins, as its docstring works them out: adults of 1.1-2.2 m are guessed
    right in every unit (decimetres only to 1.93 m: 19.4 dm and more is a CMU-unit adult, and
    inches from 1.15 m), and the units guessed before feet and decimetres keep their bodies."""
    for h in np.linspace(lo, hi, 30):
        assert guess_scale(_chain(h / UNITS[unit])) == (UNITS[unit], unit), (unit, h)
    assert guess_scale(_chain(1.1 / UNITS["cmu"]))[1] == "cmu"  # the shortest CMU adult, 19.49 units
    assert guess_scale(_chain(1.95 / UNITS["dm"]))[1] == "cmu"  # a 1.95 m body in dm: read wrong


def test_bvh_units_option_dm(base, tmp_path):
    """`motion import --units dm` reads the file in decimetres: right for a decimetre walk, and
    a centimetre walk read so is a 17 m body, refused with the unit it was read in."""
    dm = walk_bvh(tmp_path / "walk_dm.bvh", unit=0.1)
    cm = walk_bvh(tmp_path / "walk_cm.bvh")
    out = tmp_path / "clips"
    r = CliRunner().invoke(main, ["motion", "import", str(dm), "--units", "dm", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0 and (out / "walk_dm.npz").is_file(), r.output
    np.testing.assert_allclose(positions(ClipFolder(out).load("walk_dm")), positions(base), atol=1e-6)
    r = CliRunner().invoke(main, ["motion", "import", str(cm), "--units", "dm", "--out", str(out), "--no-progress"])
    assert r.exit_code == 1 and "walk_cm.bvh" in r.output and "read as dm" in r.output, r.output
    np.testing.assert_allclose(positions(import_file(cm, units="cm")[0]), positions(base), atol=1e-6)


def test_bvh_wrong_units_name_the_remedy(base, tmp_path):
    """A unit misread (here feet given as cm: a 6 cm body) is a clear error suggesting --units,
    and with the right unit the clip is right. The CLI option passes it through."""
    path = walk_bvh(tmp_path / "feet.bvh", unit=0.3048)
    one_line_error(path, r"m tall.*read as cm.*--units", units="cm")
    np.testing.assert_allclose(positions(import_file(path, units="ft")[0]), positions(base), atol=1e-6)
    out = tmp_path / "clips"
    r = CliRunner().invoke(main, ["motion", "import", str(path), "--units", "ft", "--out", str(out), "--no-progress"])
    assert r.exit_code == 0 and (out / "feet.npz").is_file(), r.output


def test_bvh_z_up_export(base, tmp_path):
    path = walk_bvh(tmp_path / "walk.bvh", z_up=True)
    np.testing.assert_allclose(positions(import_file(path, up_axis="z")[0]), positions(base), atol=1e-6)
    assert upright_share(import_file(path)[0]) < 0.2  # without the flag: lying, which import reports


def _drop(rig, name):
    """The rig without joint ``name``: its children hang from its parent."""
    off = dict((n, o) for n, _, o in rig)[name]
    parent = dict((n, p) for n, p, _ in rig)[name]
    return [(n, parent, tuple(np.add(o, off))) if p == name else (n, p, o) for n, p, o in rig if n != name]


def _fingers():
    out = []
    for side, sx in (("Left", 1), ("Right", -1)):
        for finger in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
            prev = f"{side}Hand"
            for k in (1, 2, 3):
                out.append((f"{side}Hand{finger}{k}", prev, (sx * 3, 0, 0)))
                prev = out[-1][0]
    return out


@pytest.mark.parametrize("variant", ["no_toes", "no_hands", "no_neck", "fingers", "no_end_sites",
                                     "collars_at_spine"])
def test_bvh_skeleton_variants_import_sensibly(tmp_path, variant):
    rig, ends, rename = RIG, ENDS, None
    if variant == "no_toes":
        rig = _drop(_drop(RIG, "LeftToeBase"), "RightToeBase")
        ends = {**ENDS, "LeftFoot": (0, -6, 13), "RightFoot": (0, -6, 13)}
    elif variant == "no_hands":
        rig = _drop(_drop(RIG, "LeftHand"), "RightHand")
    elif variant == "no_neck":
        rig = _drop(RIG, "Neck")
    elif variant == "fingers":
        rig = RIG + _fingers()
    elif variant == "no_end_sites":
        ends = {}
    elif variant == "collars_at_spine":  # both collar joints on the spine: one point, no axis
        at = {"LeftShoulder": (0, 20, 0), "RightShoulder": (0, 20, 0), "LeftArm": (17, 0, 0), "RightArm": (-17, 0, 0)}
        rig = [(n, p, at.get(n, o)) for n, p, o in RIG]
        rename = {"Spine1": "Chest"}  # so that the chest's frame is taken from the collars
    clip = import_file(walk_bvh(tmp_path / "walk.bvh", rig=rig, ends=ends, rename=rename))[0]
    check_sensible(clip, 2.0)


def _root_angle_deg(a, b) -> np.ndarray:
    """Per-frame angle between two clips' root orientations."""
    ra = Rotation.from_quat(a.qpos[:, 3:7], scalar_first=True)
    rb = Rotation.from_quat(b.qpos[:, 3:7], scalar_first=True)
    return np.degrees((ra.inv() * rb).magnitude())


@pytest.mark.parametrize("body", ["fit", "default", "hips_level"])
def test_bvh_hips_level_with_the_root_joint(base, tmp_path, body):
    """LAFAN1's rig puts the hip joints level with the root joint, 2 cm in front of it. The
    pelvis must still stand upright (not pitched 90 degrees with the hips bent to match)."""
    moved = {"LeftUpLeg": (9, 0, 2), "RightUpLeg": (-9, 0, 2)}
    rig = [(n, p, moved.get(n, o)) for n, p, o in RIG]
    shape = "fit" if body == "fit" else BodyShape()
    if body == "hips_level":  # a given body whose hips are level with its pelvis too: no up from them
        shape.offsets[[1, 5], 2] = 0.0
    clip = import_file(walk_bvh(tmp_path / "walk.bvh", rig=rig), body=shape)[0]
    if body == "fit":  # a given body keeps its own proportions, so not the source's height
        check_sensible(clip, 2.0)
    reference = base if body == "fit" else import_file(walk_bvh(tmp_path / "ref.bvh"), body=shape)[0]
    assert _root_angle_deg(clip, reference).max() < 10.0
    hips = np.degrees(np.abs(clip.qpos[:, 7:10]))  # L_Hip's three hinges
    assert hips.max() < 45.0, hips.max()


@pytest.mark.parametrize("collars", ["beside_the_spine", "at_the_neck"])
def test_bvh_collars_without_a_chest_joint_keep_their_place(tmp_path, collars):
    """A rig with no chest joint (Hips, Spine, Spine1, Neck): the collars hang from the spine, to
    the side of it or, as a Kinect v1 export has them, at the base of the neck. They were
    fitted in the default direction: 36 mm and 99 mm off here (67 mm on a real Kinect export)."""
    rig = RIG
    if collars == "at_the_neck":
        at = {"LeftShoulder": (0, 25, 0), "RightShoulder": (0, 25, 0), "LeftArm": (17, -5, 0), "RightArm": (-17, -5, 0)}
        rig = [(n, p, at.get(n, o)) for n, p, o in RIG]
    clip = import_file(walk_bvh(tmp_path / "walk.bvh", rig=rig))[0]
    check_sensible(clip, 2.0)
    err = clip.meta["retarget_joint_error_mm"]
    worst = max(err["L_Thorax"], err["L_Shoulder"], err["R_Thorax"], err["R_Shoulder"])
    assert worst < {"beside_the_spine": 15.0, "at_the_neck": 30.0}[collars], err


def test_bvh_xsens_mvn_rig(tmp_path):
    """Xsens MVN's BVH export: hips exactly level with the root joint, four chest joints, the
    upper arm named "Shoulder" below a "Collar"."""
    geometry = {"LeftUpLeg": (8, 0, 0), "RightUpLeg": (-8, 0, 0), "Spine": (0, 10, 0), "Spine1": (0, 11, 0)}
    rig = [(n, p, geometry.get(n, o)) for n, p, o in RIG]
    i = [n for n, _, _ in rig].index("Spine1") + 1
    rig = rig[:i] + [("Chest3", "Spine1", (0, 10, 0)), ("Chest4", "Chest3", (0, 10, 0))] + rig[i:]
    rig = [(n, "Chest4" if p == "Spine1" and n != "Chest3" else p, o) for n, p, o in rig]
    rename = {"Spine": "Chest", "Spine1": "Chest2", "LeftShoulder": "LeftCollar", "LeftArm": "LeftShoulder",
              "LeftForeArm": "LeftElbow", "LeftHand": "LeftWrist", "LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee",
              "LeftFoot": "LeftAnkle", "LeftToeBase": "LeftToe"}
    rename.update({k.replace("Left", "Right"): v.replace("Left", "Right") for k, v in rename.items()})
    clip = import_file(walk_bvh(tmp_path / "mvn.bvh", rig=rig, rename=rename, fps=60.0))[0]
    check_sensible(clip, 2.0)
    assert clip.retarget_error_mm < 1.0
    m = clip.meta["joint_map"]
    assert (m["Torso"], m["Spine"], m["Chest"], m["L_Thorax"], m["L_Shoulder"]) == (
        "Chest", "Chest2", "Chest4", "LeftCollar", "LeftShoulder")


def test_bvh_coinciding_hips_are_a_one_line_error(tmp_path):
    rig = [(n, p, (0, -5, 0) if n.endswith("UpLeg") else o) for n, p, o in RIG]
    one_line_error(walk_bvh(tmp_path / "walk.bvh", rig=rig), "orientation of Pelvis is undefined")


def test_bvh_leading_t_pose_frame_is_left_out(tmp_path):
    """CMU BVH conversions start with one T-pose frame, which the motion leaves in 1/120 s."""
    walk = walk_bvh(tmp_path / "walk.bvh", fps=120.0, seconds=1.0)
    head, motion = walk.read_text().split("Frame Time:")
    lines = motion.strip().splitlines()
    first = lines[1].split()
    t_pose = " ".join(first[:3] + ["0"] * (len(first) - 3))  # root where the walk starts, no rotation
    with_t_pose = tmp_path / "with_t_pose.bvh"
    with_t_pose.write_text(head.replace(f"Frames: {len(lines) - 1}", f"Frames: {len(lines)}")
                           + "Frame Time:" + "\n".join([lines[0], t_pose] + lines[1:]) + "\n")
    plain, clip = import_file(walk)[0], import_file(with_t_pose)[0]
    assert clip.meta["dropped_leading_frames"] == 1 and "dropped_leading_frames" not in plain.meta
    np.testing.assert_allclose(clip.qpos, plain.qpos, atol=1e-9)
    result = CliRunner().invoke(main, ["motion", "import", str(with_t_pose), "--out", str(tmp_path / "out"),
                                       "--no-progress"])
    assert result.exit_code == 0 and "T-pose frame" in result.output, result.output


def test_bvh_one_frame(tmp_path):
    clip = import_file(walk_bvh(tmp_path / "pose.bvh", frames=1))[0]
    assert clip.num_frames == 1 and upright_share(clip) == 1.0 and 1.5 < clip.body.height < 1.9


def _bvh_bad(tmp_path: Path, case: str) -> Path:
    path = walk_bvh(tmp_path / "bad.bvh")
    text = path.read_text()
    lines = text.splitlines()
    if case == "zero_frames":
        text = text[: text.index("MOTION")] + "MOTION\nFrames: 0\nFrame Time: 0.0333333\n"
    elif case == "truncated":
        text = text[: len(text) - 200]
    elif case in ("nan", "inf"):
        lines[-3] = " ".join([case] + lines[-3].split()[1:])
        text = "\n".join(lines) + "\n"
    elif case == "frame_time_1e30":
        text = re.sub(r"Frame Time: \S+", "Frame Time: 1e30", text)
    elif case == "frame_time_1e-30":
        text = re.sub(r"Frame Time: \S+", "Frame Time: 1e-30", text)
    elif case == "png":
        return path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))) and path
    elif case == "utf16":
        return path.write_bytes(text.encode("utf-16")) and path
    elif case == "zero_size_skeleton":
        text = re.sub(r"OFFSET [^\n]*", "OFFSET 0 0 0", text)
    path.write_text(text)
    return path


@pytest.mark.parametrize("case, match", [
    ("zero_frames", "Frames 0"), ("truncated", r"frame \d+ \(line \d+\) has \d+ values"),
    ("nan", "non-finite"), ("inf", "non-finite"), ("frame_time_1e30", "implausible frame rate"),
    ("frame_time_1e-30", "implausible frame rate"), ("png", "not a text file"), ("utf16", "not a text file"),
    ("zero_size_skeleton", "0 m tall")])
def test_bvh_bad_files_are_one_line_errors(tmp_path, case, match):
    one_line_error(_bvh_bad(tmp_path, case), match)


# ------------------------------------------------------------------------------ AMASS npz
def amass_walk(T: int = 61, fps: float = 30.0, n: int = 156) -> tuple[np.ndarray, np.ndarray]:
    ph = 2 * np.pi * np.arange(T) / fps
    poses = np.zeros((T, n))
    poses[:, :3] = [np.pi / 2, 0, 0]  # model Y up -> AMASS world Z up
    poses[:, 3], poses[:, 6] = -0.4 * np.sin(ph), 0.4 * np.sin(ph)  # hips
    poses[:, 12], poses[:, 15] = 0.5 + 0.4 * np.sin(ph + 1), 0.5 - 0.4 * np.sin(ph + 1)  # knees
    trans = np.c_[np.zeros(T), 1.2 * np.arange(T) / fps, 0.95 + 0.02 * np.cos(2 * ph)]
    return poses, trans


@pytest.fixture(scope="module")
def amass_base(tmp_path_factory):
    p, tr = amass_walk()
    path = tmp_path_factory.mktemp("amass") / "walk.npz"
    np.savez(path, poses=p, trans=tr, mocap_framerate=np.array(30.0))
    clip = import_file(path)[0]
    check_sensible(clip, 2.0)
    return clip


@pytest.mark.parametrize("kind", ["smpl_72", "smplx_165", "smplx_G_keys", "float32_frame_rate_key",
                                  "fps_one_element_array", "poses_TJ3"])
def test_amass_layouts_give_the_same_clip(amass_base, tmp_path, kind):
    p, tr = amass_walk(n=165 if kind.startswith("smplx") else 156)
    if kind == "smpl_72":  # SMPL: 23 body joints (hands at 22, 23), no finger joints
        p = p[:, :72]
    arrays = dict(poses=p, trans=tr, mocap_framerate=np.array(30.0))
    if kind == "smplx_G_keys":  # AMASS SMPL-X "G": no poses, separate parameter groups
        arrays = dict(root_orient=p[:, :3], pose_body=p[:, 3:66], pose_hand=p[:, 75:], pose_jaw=p[:, 66:69],
                      trans=tr, mocap_frame_rate=np.array(30.0), betas=np.zeros(16), gender=np.array("neutral"))
    elif kind == "float32_frame_rate_key":
        arrays = dict(poses=p.astype(np.float32), trans=tr.astype(np.float32), mocap_frame_rate=np.float32(30))
    elif kind == "fps_one_element_array":
        arrays["mocap_framerate"] = np.array([30.0])
    elif kind == "poses_TJ3":
        arrays["poses"] = p.reshape(len(p), -1, 3)
    np.savez(tmp_path / "walk.npz", **arrays)
    np.testing.assert_allclose(positions(import_file(tmp_path / "walk.npz")[0]), positions(amass_base), atol=1e-5)


@pytest.mark.parametrize("fps", [60, 120, 250])
def test_amass_frame_rates_resample_to_30hz(amass_base, tmp_path, fps):
    p, tr = amass_walk(T=2 * fps + 1, fps=fps)
    np.savez(tmp_path / "walk.npz", poses=p, trans=tr, mocap_framerate=np.array(float(fps)))
    clip = import_file(tmp_path / "walk.npz")[0]
    check_sensible(clip, 2.0)
    np.testing.assert_allclose(positions(clip), positions(amass_base), atol=1e-4)  # 250 Hz: interpolated


def test_amass_one_frame(tmp_path):
    p, tr = amass_walk(T=1)
    np.savez(tmp_path / "pose.npz", poses=p, trans=tr, mocap_framerate=np.array(30.0))
    clip = import_file(tmp_path / "pose.npz")[0]
    assert clip.num_frames == 1 and upright_share(clip) == 1.0


@pytest.mark.parametrize("case, match", [
    ("nan", "NaN"), ("zero_frames", r"T >= 1"), ("fps_string", "mocap_framerate is not numeric"),
    ("fps_two_numbers", "must be one number"), ("no_trans", "missing trans"),
    ("trans_T2", r"trans \(T, 3\)"), ("poses_strings", "poses is not numeric"), ("fps_1e6", "implausible")])
def test_amass_bad_files_are_one_line_errors(tmp_path, case, match):
    p, tr = amass_walk()
    arrays = dict(poses=p, trans=tr, mocap_framerate=np.array(30.0))
    if case == "nan":
        p[5, 7] = np.nan
    elif case == "zero_frames":
        arrays.update(poses=p[:0], trans=tr[:0])
    elif case == "fps_string":
        arrays["mocap_framerate"] = np.array("thirty")
    elif case == "fps_two_numbers":
        arrays["mocap_framerate"] = np.array([30.0, 60.0])
    elif case == "no_trans":
        del arrays["trans"]
    elif case == "trans_T2":
        arrays["trans"] = tr[:, :2]
    elif case == "poses_strings":
        arrays["poses"] = np.full((3, 72), "a")
    elif case == "fps_1e6":
        arrays["mocap_framerate"] = np.array(1e6)
    np.savez(tmp_path / "walk.npz", **arrays)
    one_line_error(tmp_path / "walk.npz", match)


def test_amass_shape_files_are_not_motions(tmp_path):
    """AMASS keeps a shape.npz (betas) beside each subject's takes: folders skip it."""
    p, tr = amass_walk()
    np.savez(tmp_path / "walk.npz", poses=p, trans=tr, mocap_framerate=np.array(30.0))
    np.savez(tmp_path / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    assert find_motion_files([tmp_path]) == [tmp_path / "walk.npz"]


@pytest.mark.parametrize("meta", [{"name": "x"}, {"name": "x", "fps": 30, "body": {}, "objects": []}])
def test_clip_npz_with_foreign_metadata(tmp_path, meta):
    """An npz with ``qpos`` and ``meta`` that another tool wrote: an error naming it, not a KeyError."""
    np.savez(tmp_path / "clip.npz", qpos=np.zeros((5, 76)), meta=np.array(json.dumps(meta)))
    one_line_error(tmp_path / "clip.npz", "not a kinpoly clip", error=ClipError)


# ------------------------------------------------------------------------------ ASF / AMC
def _amc(first: int = 1, radians: bool = False, frames: int = 6) -> str:
    k = np.pi / 180 if radians else 1.0
    out = [":FULLY-SPECIFIED", ":RADIANS" if radians else ":DEGREES"]
    for i in range(frames):
        a = 10.0 * i
        out += [str(first + i), f"root {i} 2 3 {a * k} {2 * a * k} 0", f"up {a * k} 0 {-a * k}", f"side {3 * a * k}"]
    return "\n".join(out) + "\n"


def test_amc_radians_and_frame_numbering(tmp_path):
    """An ASF in radians (``angle rad``, axis angles in radians; AMC with or without its own
    :RADIANS line) and frame numbers starting at 0 or 100 read as the usual degrees file."""
    (tmp_path / "07.asf").write_text(_asf_text())
    (tmp_path / "07_01.amc").write_text(_amc())
    ref = read_amc(tmp_path / "07_01.amc")
    for name, asf, amc in [("rad", _asf_text(angle="rad"), _amc(radians=True)),
                           ("radnoheader", _asf_text(angle="rad"), _amc(radians=True).replace(":RADIANS\n", "")),
                           ("first0", _asf_text(), _amc(first=0)), ("first100", _asf_text(), _amc(first=100))]:
        d = tmp_path / name
        d.mkdir()
        (d / "07.asf").write_text(asf)
        (d / "07_01.amc").write_text(amc)
        m = read_amc(d / "07_01.amc")
        np.testing.assert_allclose(m.positions, ref.positions, atol=1e-9, err_msg=name)
        assert m.num_frames == 6


def test_amc_frame_rate_option(tmp_path, shared_data):
    """AMC files do not store their frame rate: 120 Hz (CMU) unless `motion import --amc-fps`
    says otherwise, which sets the clip's duration (a real CMU walk, imported at 120 and 60 Hz)."""
    import shutil

    for f in ("02.asf", "02_03.amc"):
        shutil.copy(shared_data / "cmu_amc" / f, tmp_path / f)
    seconds = {}
    for fps in (None, 60):
        dst = tmp_path / f"out{fps}"
        args = ["motion", "import", str(tmp_path / "02_03.amc"), "--out", str(dst), "--no-progress", "-j", "1"]
        r = CliRunner().invoke(main, args + (["--amc-fps", str(fps)] if fps else []))
        assert r.exit_code == 0, r.output
        seconds[fps] = ClipFolder(dst).entries()[0]["seconds"]
    assert seconds[60] == pytest.approx(2 * seconds[None], rel=0.02)


def test_amc_truncated_or_without_its_asf(tmp_path):
    (tmp_path / "subject.asf").write_text(_asf_text())
    amc = tmp_path / "07_01.amc"
    amc.write_text(_amc())
    one_line_error(amc, r"no skeleton file 07\.asf.*found subject\.asf")
    (tmp_path / "07.asf").write_text(_asf_text())
    amc.write_text(_amc()[: _amc().rindex("side")])  # cut before the last frame's last bone
    one_line_error(amc, r"last frame \(6\) lacks bone\(s\) side.*truncated")
    amc.write_text(_amc().rstrip()[:-len("150.0")])  # cut inside the last line, after the bone name
    one_line_error(amc, "frame 6: bone side has 0 values")
    (tmp_path / "07.asf").write_text(_asf_text()[:300])  # a cut skeleton: the error names both files
    amc.write_text(_amc())
    msg = one_line_error(amc, "bad skeleton file")
    assert "07.asf" in msg


# ------------------------------------------------------------------------- Kin-Poly pickles
def _take(T: int = 20) -> dict:
    q = np.tile(rest_qpos(), (T, 1))
    q[:, 0] = np.linspace(0, 0.5, T)
    wbpos = forward_kinematics(q, BodyShape()).positions.reshape(T, 72)
    return {"qpos": q, "wbpos": wbpos, "obj_pose": np.tile([1.0, 0, 0.45, 1, 0, 0, 0], (T, 1))}


def test_kinpoly_pickle_good(tmp_path):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps({"sit-01": _take(), "push-02": {"wbpos": _take()["wbpos"].tolist()}}))
    clips = import_file(path)
    assert [c.meta["original_key"] for c in clips] == ["sit-01", "push-02"]
    assert clips[0].objects and clips[0].num_frames == 20 and upright_share(clips[0]) == 1.0


@pytest.mark.parametrize("data, match", [
    ({"sit-01": {"qpos": np.zeros((5, 76))}}, "no 'wbpos'"),
    ([_take()], "expected a dict of takes"),
    ({}, "no takes"),
    ({"sit-01": {"wbpos": [["x"] * 72] * 3}}, "not numeric"),
    ({"sit-01": {**_take(), "obj_pose": np.zeros((20, 5))}}, "obj_pose must be"),
    ({"sit-01": {**_take(), "obj_pose": np.zeros((10, 7))}}, "obj_pose must be"),
    ({"sit-01": {**_take(), "obj_pose": np.zeros((20, 7))}}, "zero quaternions"),
    ({"sit-01": {"wbpos": np.zeros((3, 70))}}, r"wbpos must be \(T, 72\)"),
    ({0: {"root_orient": np.zeros((5, 3)), "body_pose": np.zeros((5, 63)), "trans": np.zeros((4, 3))}},
     "SMPL parameters must be"),
])
def test_kinpoly_pickle_bad_structures_are_one_line_errors(tmp_path, data, match):
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(data))
    one_line_error(path, match)


# --------------------------------------------------------------------------- a mixed folder
def test_import_folder_lists_bad_files_and_goes_on(tmp_path):
    src = tmp_path / "mocap"
    (src / "sub").mkdir(parents=True)
    walk_bvh(src / "good.bvh")
    p, tr = amass_walk()
    np.savez(src / "sub" / "good_amass.npz", poses=p, trans=tr, mocap_framerate=np.array(30.0))
    (src / "empty.bvh").write_bytes(b"")
    (src / "image.bvh").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (src / "image.p").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")  # a multi-line unpickling error
    np.savez(src / "sub" / "bad_fps.npz", poses=p, trans=tr, mocap_framerate=np.array("x"))
    walk_bvh(src / "feet.bvh", unit=0.3048)  # guessed: imports
    walk_bvh(src / "tiny.bvh", unit=0.004)  # 4 mm units, read as mm: a 0.4 m body, refused
    out = tmp_path / "clips"
    r = CliRunner().invoke(main, ["motion", "import", str(src), "--out", str(out), "--no-progress", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and "imported 3 clip(s)" in r.output
    failed = r.output.split("5 file(s) failed:\n")[1].strip().splitlines()
    assert len(failed) == 5, r.output
    for name in ("empty.bvh", "image.bvh", "image.p", "bad_fps.npz", "tiny.bvh"):
        assert sum(name in line for line in failed) == 1, (name, failed)
    assert "--units" in next(line for line in failed if "tiny.bvh" in line)


# ------------------------------------------------------------------ `motion info` without clips
def _info_error(folder: Path, *args: str) -> str:
    r = CliRunner().invoke(main, ["motion", "info", str(folder), *args])
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in r.output, r.output
    return lines[0]


def test_motion_info_of_a_folder_without_clips_is_an_error(tmp_path):
    """An empty folder (or one of unrelated files) is not a clip folder: one `Error:` line that
    says what a clip folder holds and which command makes one, not "0 clips" and exit 0."""
    for args in ((), ("--json",)):
        msg = _info_error(tmp_path, *args)
        assert "no clips" in msg and "index.json" in msg and "kinpoly motion import" in msg, msg
    (tmp_path / "notes.md").write_text("not a clip")
    (tmp_path / "broken.npz").write_bytes(b"")  # not a clip either (was "Aborted!": np.load EOFError)
    assert "kinpoly motion import" in _info_error(tmp_path)


def test_motion_info_of_raw_mocap_says_import_first(tmp_path):
    """A folder of mocap files that were never imported: the error names them and the import."""
    walk_bvh(tmp_path / "walk.bvh")
    (tmp_path / "sub").mkdir()
    walk_bvh(tmp_path / "sub" / "run.bvh")
    msg = _info_error(tmp_path)
    assert "no clips" in msg and "2 mocap file(s)" in msg and "walk.bvh" in msg and "run.bvh" in msg, msg
    assert f"kinpoly motion import {tmp_path} --out" in msg and "import them first" in msg, msg


# ----------------------------------------------------------------------------- joint positions (.npy)
def _smpl_joints_y_up(clip) -> np.ndarray:
    """A clip's joint positions as HumanML3D writes them: SMPL's order, Y up."""
    from kinpoly.humanoid.skeleton import BODY_TO_SMPL

    p = positions(clip)[:, list(BODY_TO_SMPL)]
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], -1)


def test_joint_positions_npy_imports_as_the_motion(base, tmp_path):
    """HumanML3D / MDM / T2M-GPT joints ((T, 22, 3), Y up, float32) give back the motion."""
    joints = _smpl_joints_y_up(base)
    np.save(tmp_path / "walk.npy", joints[:, :22].astype(np.float32))
    clip = import_file(tmp_path / "walk.npy", npy_fps=30.0)[0]
    check_sensible(clip, 2.0)
    err = np.linalg.norm(positions(clip) - positions(base), axis=-1)  # hands too, not given
    assert err.mean() < 0.01, err.mean()
    # 20 frames/s (HumanML3D's) is the default; 24 joints are SMPL's full order
    np.save(tmp_path / "walk24.npy", joints[::3])
    assert import_file(tmp_path / "walk24.npy")[0].num_frames == int(np.floor((len(joints[::3]) - 1) / 20 * 30)) + 1


def test_mdm_results_give_a_clip_per_sample(base, tmp_path):
    joints = _smpl_joints_y_up(base)[:, :22]  # (T, 22, 3)
    motion = np.stack([np.moveaxis(joints, 0, -1)] * 2)  # MDM: (N, 22, 3, T)
    np.save(tmp_path / "results.npy", {"motion": motion, "lengths": np.array([40, 61]),
                                       "text": ["a person walks forward", "walking"]}, allow_pickle=True)
    clips = import_file(tmp_path / "results.npy", npy_fps=30.0)
    assert [c.name for c in clips] == ["results_00", "results_01"]
    assert [c.num_frames for c in clips] == [40, 61]
    assert clips[0].meta["description"] == "a person walks forward"
    # T2M-GPT's pred_xyz: a batch axis first
    np.save(tmp_path / "pred_xyz.npy", joints[None])
    one = import_file(tmp_path / "pred_xyz.npy", npy_fps=30.0)
    assert [c.name for c in one] == ["pred_xyz"] and one[0].num_frames == len(joints)
    np.testing.assert_allclose(one[0].qpos, clips[1].qpos, atol=1e-6)


@pytest.mark.parametrize("array, match", [
    (np.zeros((50, 263)), "263-value features"), (np.zeros((50, 17, 3)), r"\(T, 22 or 24, 3\)"),
    ({"poses": 1}, "without 'motion'")])
def test_joint_position_mistakes_are_one_line_errors(tmp_path, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    one_line_error(path, match)


def test_import_lists_clips_whose_feet_stay_above_the_floor(tmp_path):
    """One frame whose whole body sits 8 cm lower (a glitch, or a landing the mocap got
    wrong) puts the floor 8 cm under every other frame: the import says so, naming the clip."""
    from kinpoly.motion.importers import feet_above_floor

    walk_bvh(tmp_path / "in" / "walk.bvh")
    text = (tmp_path / "in" / "walk.bvh").read_text().splitlines()
    first = next(i for i, line in enumerate(text) if line.startswith("Frame Time")) + 1
    row = text[first + 20].split()
    row[1] = f"{float(row[1]) - 8.0:.4f}"  # root Y (cm) of one frame
    text[first + 20] = " ".join(row)
    (tmp_path / "in" / "dip.bvh").write_text("\n".join(text) + "\n")
    res = CliRunner().invoke(main, ["motion", "import", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                    "--no-progress", "-j", "1"])
    assert res.exit_code == 0, res.output
    folder = ClipFolder(tmp_path / "out")
    assert feet_above_floor(folder.load("walk")) < 0.01
    assert 0.06 < feet_above_floor(folder.load("dip")) < 0.09
    warning = next(line for line in res.output.splitlines() if "above the floor" in line)
    assert "1 clip(s)" in warning and "dip (" in warning and "walk" not in warning
