"""Head-camera recordings as the tools that made them leave them, each read in one command
(kinpoly.egocentric.video): Project Aria's exports (frames as image files named by capture time,
several cameras in one folder, a calibration that says how the camera is mounted, the wearer's
ADT skeleton) and VRS recordings, and the poses per image of a reconstruction (COLMAP,
nerfstudio)."""

from __future__ import annotations

import numpy as np
import pytest

from kinpoly import rotations as rot
from kinpoly.egocentric.lens import load_lens
from kinpoly.egocentric.take import EgoDataError
from kinpoly.egocentric.trajectory import _M
from kinpoly.egocentric.video import (VideoSource, frame_files, frame_timestamps, import_trajectory, import_video,
                                      mounting_rotation, video_name)


def _names(tmp_path, stems):
    for s in stems:
        (tmp_path / f"{s}.png").write_bytes(b"")
    return frame_files(tmp_path)


@pytest.mark.parametrize("stems, want", [
    (["rgb_00_87551170813262", "rgb_01_87551204152300", "rgb_02_87551237472175"], 87551.170813262),  # ns (ADT)
    (["frame_1700000000000000", "frame_1700000000033333"], 1700000000.0),  # us
    (["t1700000000000", "t1700000000016"], 1700000000.0),  # ms, 60 frames/s
])
def test_capture_times_in_file_names(tmp_path, stems, want):
    stamps = frame_timestamps(_names(tmp_path, stems))
    assert stamps[0] == pytest.approx(want) and 10 < 1 / np.diff(stamps).mean() < 70


@pytest.mark.parametrize("stems", [
    ["frame_0001", "frame_0002", "frame_0003"],  # frame numbers
    ["frame_000010", "frame_000020", "frame_000030"],  # every tenth frame's number, not 100 frames/s in ms
    ["a", "b", "c"],  # no digits
    ["a_2000000000000", "b_1000000000000"],  # not increasing in name order
    ["x_1000000000", "x_5000000000"],  # 4 s apart in ns, 4e6 s in ms: no unit gives 1-1000 frames/s
])
def test_names_without_capture_times(tmp_path, stems):
    assert frame_timestamps(_names(tmp_path, stems)) is None


def _write_frames(folder, times_s, size=48, prefix="cam_"):
    """Frames of a texture panning right, named by capture time in ns."""
    import imageio.v2 as imageio

    folder.mkdir(parents=True, exist_ok=True)
    tex = np.random.default_rng(0).integers(0, 255, (size, size * 8, 3), dtype=np.uint8)
    for k, t in enumerate(times_s):
        imageio.imwrite(folder / f"{prefix}{round(t * 1e9)}.png", tex[:, 2 * k:2 * k + size])


def _trajectory(path, t0: float, T: int = 90):
    """TUM rows from ``t0`` s at 30 Hz: a walk forward with a turning head (OpenCV camera axes)."""
    t = t0 + np.arange(T) / 30.0
    yaw = 0.3 * np.sin(np.arange(T) / 30.0 * 2.0)
    R = rot.yaw_matrix(yaw)
    q = rot.matrix_to_quat(R @ _M["opencv"].T)
    pos = np.stack([1.2 * (t - t0), 0 * t, 1.6 + 0 * t], 1)
    np.savetxt(path, np.concatenate([t[:, None], pos, q[:, [1, 2, 3, 0]]], 1), fmt="%.9f")


def test_frames_are_paired_by_their_capture_times(tmp_path, caplog):
    """Frames named by capture time in the trajectory's clock are paired at those times, with no
    --fps and no --time-offset; frames of another clock are paired from the start, with a
    warning; an offset given wins."""
    _trajectory(tmp_path / "traj.txt", 1000.0)
    _write_frames(tmp_path / "frames", 1000.5 + np.arange(30) / 30.0)
    res = import_video(tmp_path / "frames", tmp_path / "traj.txt", scale=1.0, video_rotation=0)
    assert res.report["time_offset"] == {"seconds": pytest.approx(0.5, abs=1e-6), "source": "frame timestamps"}
    assert res.video.fps == pytest.approx(30.0)
    want = import_trajectory(tmp_path / "traj.txt", scale=1.0, time_offset=0.5).take.head_pose[:30]
    got = res.take.head_pose
    np.testing.assert_allclose(got[:, 3:], want[:, 3:], atol=1e-6)  # the same head turns at the same times
    assert res.take.num_frames == 30

    given = import_video(tmp_path / "frames", tmp_path / "traj.txt", scale=1.0, video_rotation=0, time_offset=0.2)
    assert given.report["time_offset"] == {"seconds": 0.2, "source": "given"}
    _write_frames(tmp_path / "other_clock", 5000.0 + np.arange(30) / 30.0)
    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        other = import_video(tmp_path / "other_clock", tmp_path / "traj.txt", scale=1.0, video_rotation=0)
    assert other.report["time_offset"] == {"seconds": 0.0, "source": "start"} and "another clock" in caplog.text
    with pytest.raises(EgoDataError, match="capture times, 30.000 frames/s, not 25"):
        import_video(tmp_path / "frames", tmp_path / "traj.txt", scale=1.0, fps=25.0)


def test_a_pattern_picks_one_cameras_frames(tmp_path):
    """A folder holding two cameras' frames (as an Aria export: rgb_*, slam_left_*) is refused
    with the pattern that picks one; the pattern reads as a video of its own, named after it."""
    times = 1000.0 + np.arange(20) / 30.0
    _write_frames(tmp_path / "frames", times, prefix="rgb_")
    _write_frames(tmp_path / "frames", times + 0.001, size=32, prefix="slam_")
    _trajectory(tmp_path / "traj.txt", 1000.0)
    with pytest.raises(EgoDataError, match="give a pattern of one's files"):
        import_video(tmp_path / "frames", tmp_path / "traj.txt", scale=1.0, fps=30.0, video_rotation=0)
    pattern = tmp_path / "frames" / "rgb_*.png"
    res = import_video(pattern, tmp_path / "traj.txt", scale=1.0, video_rotation=0)
    assert res.take.name == "rgb" == video_name(pattern) and res.take.num_frames == 20
    assert res.report["time_offset"]["source"] == "frame timestamps"
    assert VideoSource.open(pattern).capture_start() == pytest.approx(1000.0)
    with pytest.raises(EgoDataError, match="no image files"):
        VideoSource.open(tmp_path / "frames" / "depth_*.png")


def test_an_aria_calibration_says_which_way_is_up():
    """Aria's RGB camera is mounted turned: its calibration's pose in the device, with an Aria
    trajectory, gives the 90 degrees that turn its frames upright, and a camera turned a quarter
    about its axis (its x axis to where its y axis was: the picture a quarter turn anticlockwise)
    needs a quarter turn more."""
    from dataclasses import replace

    from kinpoly.egocentric.lens import Lens

    mount = np.array([[0.99339, -0.05151, 0.10257], [0.10364, 0.78649, -0.60884], [-0.04931, 0.61545, 0.78663]])
    lens = Lens("fisheye", 610.9, 610.9, 715.1, 716.7, mount=tuple(map(tuple, mount)))
    assert mounting_rotation(lens, "aria") == 90
    assert mounting_rotation(lens, "opencv") is None and mounting_rotation(replace(lens, mount=None), "aria") is None
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # about the optical axis
    for k in range(4):
        turned = replace(lens, mount=tuple(map(tuple, mount @ np.linalg.matrix_power(quarter, k))))
        assert mounting_rotation(turned, "aria") == (90 + 90 * k) % 360


def test_a_real_aria_recording_in_one_command(tmp_path, shared_data):
    """The ADT sample as Aria's tools export it: the RGB frames picked by a pattern from a folder
    of three cameras, named by capture time, the device trajectory and the device calibration:
    one command, no --fps, --time-offset or --video-rotation; the same head poses as pairing by
    hand (tests/test_egocentric.py), the frames turned as the calibration says and resampled
    through its lens."""
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.egocentric.take import EgoDataset

    adt = shared_data / "aria_adt_sample"
    res = CliRunner().invoke(main, ["ego", "import-video", str(adt / "frames" / "rgb_*.jpg"), "--head-poses",
                                    str(adt / "aria_trajectory.csv"), "--video-lens",
                                    str(adt / "device_calibration.json"), "--gt", str(adt / "Skeleton_T.json"),
                                    "--out", str(tmp_path / "adt")])
    assert res.exit_code == 0, res.output
    take = EgoDataset(tmp_path / "adt")["rgb"]
    report = take.meta["import"]
    assert take.num_frames == 3 and report["scale"] == 1.0
    assert report["time_offset"]["source"] == "frame timestamps"
    assert report["time_offset"]["seconds"] == pytest.approx(87551170813262e-9 - 87551170910e-6, abs=1e-6)
    assert report["video_rotation"]["degrees"] == 90 and report["video_rotation"]["source"] == "lens calibration"
    assert report["video_lens"]["view_fovy"] == 100.0 and 105 < report["video_lens"]["covered_fovy"] < 115
    # the wearer's OptiTrack skeleton (120 Hz, the device's clock) at the frames' capture times: its
    # head turned as the trajectory's (device -> central pupil frame) to within 12 degrees
    gt = take.meta["ground_truth"]
    assert gt["paired_by"] == "capture time" and abs(gt["time_error_s"]) < 1 / 120 and gt["yaw_from"] == "headings"
    R, R_gt = rot.quat_to_matrix(take.head_pose[:, 3:]), rot.quat_to_matrix(take.gt_head_pose[:, 3:])
    cos = (np.trace(np.swapaxes(R, 1, 2) @ R_gt, axis1=1, axis2=2) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 12.0
    by_hand = import_video(adt / "frames" / "rgb_*.jpg", adt / "aria_trajectory.csv",
                           time_offset=87551170813262e-9 - 87551170910e-6).take
    np.testing.assert_allclose(take.head_pose, by_hand.head_pose, atol=1e-9)
    assert load_lens(adt / "device_calibration.json").mount is not None


def test_an_adt_skeleton_is_a_motion(tmp_path, shared_data):
    """ADT's body ground truth (OptiTrack joint positions, Y up, 120 Hz, named by the labels file
    beside it) imports as a clip: every body joint mapped, fitted to well under a millimetre,
    keeping its first frame's capture time; a broken file is a one-line error."""
    import json
    import shutil

    from kinpoly.motion.importers import import_file
    from kinpoly.motion.source import MotionFormatError

    clip = import_file(shared_data / "aria_adt_sample" / "Skeleton_T.json")[0]
    assert clip.meta["source_format"] == "adt_skeleton" and clip.meta["source_fps"] == pytest.approx(120, abs=0.1)
    assert clip.meta["capture_start_s"] == pytest.approx(87551175181659e-9)
    assert clip.meta["joint_map"]["Pelvis"] == "Hip" and len(clip.meta["joint_map"]) == 21
    assert clip.retarget_error_mm < 1.0 and 1.6 < clip.body.height < 1.9
    # without the labels file: OptiTrack's standard order, the same clip
    shutil.copy(shared_data / "aria_adt_sample" / "Skeleton_T.json", tmp_path / "Skeleton_T.json")
    alone = import_file(tmp_path / "Skeleton_T.json")[0]
    np.testing.assert_allclose(alone.qpos, clip.qpos, atol=1e-9)
    data = json.loads((tmp_path / "Skeleton_T.json").read_text())
    for edit, message in ((lambda d: d["frames"][3].pop("joints"), "malformed frames"),
                          (lambda d: d["frames"][3].update(joints=d["frames"][3]["joints"][:50]), "malformed frames"),
                          (lambda d: d["frames"].reverse(), "timestamp_ns must increase")):
        broken = json.loads(json.dumps(data))
        edit(broken)
        (tmp_path / "broken.json").write_text(json.dumps(broken))
        with pytest.raises(MotionFormatError, match=message):
            import_file(tmp_path / "broken.json")


def test_a_vrs_recording_is_a_video(tmp_path, shared_data):
    """The ADT sample's own VRS recording (`pip install 'kinpoly[aria]'`): its RGB frames at their
    capture times, through its camera's calibration and mounting, give the take the exported
    frames give; another camera by label; one-line errors for what cannot be read."""
    pytest.importorskip("projectaria_tools.core.data_provider")
    from kinpoly.egocentric.vrs import open_camera

    adt = shared_data / "aria_adt_sample"
    vrs = adt / "video.vrs"
    res = import_video(vrs, adt / "aria_trajectory.csv")
    frames = import_video(adt / "frames" / "rgb_*.jpg", adt / "aria_trajectory.csv",
                          video_lens=adt / "device_calibration.json")
    assert res.take.name == "video" and res.take.num_frames == 3
    np.testing.assert_allclose(res.take.head_pose, frames.take.head_pose, atol=1e-12)
    rep = res.report
    assert rep["time_offset"]["source"] == "frame timestamps" and rep["video_rotation"]["source"] == "lens calibration"
    assert rep["video_lens"]["lens"].endswith("video.vrs#camera-rgb") and rep["video_size"] == [1408, 1408]
    # the recording's calibration is the one the ADT tools exported
    own, exported = load_lens(vrs), load_lens(adt / "device_calibration.json")
    assert own.fx == pytest.approx(exported.fx) and own.radial == pytest.approx(exported.radial)
    np.testing.assert_allclose(own.mount, exported.mount, atol=1e-6)
    # the images: the JPEG export of the same frames
    f = res.take.image_features
    assert np.linalg.norm(f - frames.take.image_features, axis=1).max() < 0.1 * np.linalg.norm(f, axis=1).mean()
    slam = open_camera(f"{vrs}#camera-slam-left")
    t, gray = next(slam.frames())
    assert gray.shape == (480, 640, 3) and t == pytest.approx(87551170910700e-9)
    (tmp_path / "not.vrs").write_text("not a recording")
    for path, message in ((f"{vrs}#camera-depth", r"no stream .camera-depth. \(cameras: camera-et, camera-rgb"),
                          (tmp_path / "missing.vrs", "no such VRS recording"),
                          (tmp_path / "not.vrs", "not a readable VRS recording")):
        with pytest.raises(EgoDataError, match=message):
            open_camera(path)


def test_without_projectaria_tools_a_vrs_is_a_one_line_error(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_aria(name, *args, **kwargs):
        if name.startswith("projectaria_tools"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_aria)
    (tmp_path / "rec.vrs").write_bytes(b"\0" * 16)
    with pytest.raises(EgoDataError, match=r"needs projectaria-tools \(pip install 'kinpoly\[aria\]'\)"):
        VideoSource.open(tmp_path / "rec.vrs")


def _reconstruction(tmp_path, T: int = 60, skip: tuple = (7, 8, 30)):
    """A walking, turning camera (OpenCV axes) at 30 frames/s in a world of another scale and up
    (Y down, as COLMAP's often is), its frames as image files, and the poses of the frames a
    reconstruction registered (not ``skip``) as COLMAP writes them (images.txt, images.bin: world
    to camera, names in no order) and nerfstudio (transforms.json: camera to world, OpenGL axes).
    Returns the TUM rows of every frame (the same poses, one per frame)."""
    import json
    import struct

    t = np.arange(T) / 30.0
    R_head = rot.yaw_matrix(0.4 * np.sin(2.0 * t))
    R_cam = R_head @ _M["opencv"].T  # camera-to-world, Z-up world
    flip = np.diag([1.0, -1.0, -1.0])  # a world with Y and Z turned over, at 0.37 of the metric scale
    R = flip @ R_cam
    c = (np.stack([1.2 * t, 0.1 * np.sin(6 * t), 1.6 + 0.02 * np.sin(12 * t)], 1) @ flip.T) * 0.37
    _write_frames(tmp_path / "frames", 1000.0 + t, prefix="frame_")  # names with 13-digit ns times
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    rows = np.concatenate([c, rot.matrix_to_quat(R)[:, [1, 2, 3, 0]]], 1)
    np.savetxt(tmp_path / "every_frame.txt", rows, fmt="%.12f")
    kept = [i for i in range(T) if i not in skip][::-1]  # COLMAP lists images in its own order
    q_cw = rot.matrix_to_quat(np.swapaxes(R, 1, 2))
    t_cw = -np.einsum("nij,nj->ni", np.swapaxes(R, 1, 2), c)
    lines = ["# Image list with two lines of data per image:", "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME"]
    blob = struct.pack("<Q", len(kept))
    for k, i in enumerate(kept):
        lines += [f"{k + 1} {' '.join(f'{v:.12f}' for v in q_cw[i])} {' '.join(f'{v:.12f}' for v in t_cw[i])} 1 {names[i]}",
                  "12.5 40.25 -1 80.0 22.0 17"]
        blob += struct.pack("<I7dI", k + 1, *q_cw[i], *t_cw[i], 1) + names[i].encode() + b"\0"
        blob += struct.pack("<Q", 2) + struct.pack("<ddq", 12.5, 40.25, -1) + struct.pack("<ddq", 80.0, 22.0, 17)
    (tmp_path / "sparse").mkdir()
    (tmp_path / "sparse" / "images.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "images.bin").write_bytes(blob)
    gl = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes -> OpenGL's
    frames = [{"file_path": f"images/{names[i]}", "transform_matrix": np.vstack([np.c_[R[i] @ gl, c[i]], [0, 0, 0, 1]]).tolist()}
              for i in kept]
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_model": "OPENCV", "frames": frames}))
    return names


@pytest.mark.parametrize("poses", ["sparse", "images.bin", "transforms.json"])
def test_poses_per_image_from_a_reconstruction(tmp_path, poses):
    """COLMAP's (images.txt, images.bin, a folder holding one) and nerfstudio's poses: each frame
    paired with its image's pose by name, the unregistered frames interpolated; the take is the
    one a pose per frame gives."""
    _reconstruction(tmp_path)
    res = import_video(tmp_path / "frames", tmp_path / poses, video_rotation=0, scale=2.7)
    want = import_video(tmp_path / "frames", tmp_path / "every_frame.txt", video_rotation=0, scale=2.7).take
    assert res.report["time_offset"] == {"seconds": 0.0, "source": "image names"}
    assert res.report["capture_start_s"] == pytest.approx(1000.0)  # the frames' names hold their capture times
    registered = np.ones(60, bool)
    registered[[7, 8, 30]] = False
    np.testing.assert_allclose(res.take.head_pose[registered], want.head_pose[registered], atol=1e-6)
    np.testing.assert_allclose(res.take.head_pose, want.head_pose, atol=1e-2)  # the 3 others interpolated


def test_reconstruction_mistakes(tmp_path):
    from kinpoly.egocentric.trajectory import read_trajectory

    _reconstruction(tmp_path, skip=(0, 1))
    # frames at an end without a pose: the take is the frames between (a warning says so)
    cut = import_video(tmp_path / "frames", tmp_path / "sparse" / "images.txt", video_rotation=0, scale=2.7)
    full = import_video(tmp_path / "frames", tmp_path / "every_frame.txt", video_rotation=0, scale=2.7)
    assert cut.report["video_frames_kept"] == [2, 59] and cut.take.num_frames == 58
    assert cut.video.first_frame == 2 and len(list(cut.video.timed_views(16, 16))) == 58  # the panel beside it
    assert cut.report["capture_start_s"] == pytest.approx(1000.0 + 2 / 30)
    np.testing.assert_allclose(rot.quat_to_matrix(cut.take.head_pose[:, 3:])[:, :, 0] @ [0, 0, 1],
                               rot.quat_to_matrix(full.take.head_pose[2:, 3:])[:, :, 0] @ [0, 0, 1], atol=1e-6)
    (tmp_path / "few").mkdir()
    lines = (tmp_path / "sparse" / "images.txt").read_text().splitlines()
    (tmp_path / "few" / "images.txt").write_text("\n".join(lines[:2 + 2 * 20]) + "\n")  # 20 frames of 60
    with pytest.raises(EgoDataError, match="too few .*give the trajectory of a SLAM system"):
        import_video(tmp_path / "frames", tmp_path / "few" / "images.txt", video_rotation=0, scale=1.0)
    with pytest.raises(EgoDataError, match="drop --world-to-camera"):
        import_video(tmp_path / "frames", tmp_path / "images.bin", video_rotation=0, scale=1.0, world_to_camera=True)
    _write_frames(tmp_path / "other", 5.0 + np.arange(10) / 30.0, prefix="img_")
    with pytest.raises(EgoDataError, match="none of its 58 image names is a frame of the video"):
        import_video(tmp_path / "other", tmp_path / "transforms.json", video_rotation=0, scale=1.0)
    with pytest.raises(EgoDataError, match="import them with the frames"):
        import_trajectory(tmp_path / "transforms.json", scale=1.0)
    (tmp_path / "empty.txt").write_text("# no images\n")
    with pytest.raises(EgoDataError, match="no image poses"):
        read_trajectory(tmp_path / "empty.txt", "colmap")
    (tmp_path / "cut.bin").write_bytes((tmp_path / "images.bin").read_bytes()[:100])
    with pytest.raises(EgoDataError, match="unreadable colmap poses"):
        read_trajectory(tmp_path / "cut.bin", "colmap")


def test_a_video_alone_gets_its_trajectory_from_its_frames(tmp_path, shared_data):
    """`kinpoly estimate --video FILE` without --head-poses (`pip install 'kinpoly[reconstruct]'`):
    the trajectory is reconstructed from the frames (kept in OUT/reconstruction, deterministic).
    On the real ARES video it is the DROID-SLAM trajectory that ships with it, to 3 cm after a
    similarity alignment, over every frame."""
    pytest.importorskip("pycolmap")
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.egocentric.trajectory import read_trajectory, to_head_poses, umeyama

    ares = shared_data / "egoego_ares"
    res = CliRunner().invoke(main, ["estimate", "--video", str(ares / "egocentric_video.mp4"), "--no-physics",
                                    "--videos", "0", "--no-progress", "--out", str(tmp_path / "est")])
    assert res.exit_code == 0, res.output
    poses = tmp_path / "est" / "reconstruction" / "sparse" / "images.txt"
    droid = to_head_poses(read_trajectory(ares / "droid_slam_traj.npy"), 1.0, 1.6).head_pose[:, :3]
    ours = import_video(ares / "egocentric_video.mp4", poses).take
    assert ours.num_frames == 140 and ours.meta["import"]["time_offset"]["source"] == "image names"
    assert len(read_trajectory(poses).pos) == 71  # 15 frames/s of the 30, and the last; the others interpolated
    head = ours.head_pose[:, :3]
    s, R, t = umeyama(head, droid[:len(head)] * 2.345, with_scale=True)  # DROID's at its automatic scale
    assert np.linalg.norm((s * (R @ head.T)).T + t - droid[:len(head)] * 2.345, axis=1).mean() < 0.03
    assert 0.9 < s < 1.1  # both scaled by the same estimate (gait, flow encoder)


def test_without_pycolmap_a_video_needs_its_trajectory(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pycolmap(name, *args, **kwargs):
        if name == "pycolmap":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pycolmap)
    _write_frames(tmp_path / "frames", 1000.0 + np.arange(10) / 30.0)
    with pytest.raises(EgoDataError, match=r"needs pycolmap .*or give its trajectory \(--head-poses\)"):
        import_video(tmp_path / "frames", None)


def test_a_video_stored_turned_is_reconstructed_upright(tmp_path, shared_data):
    """A video stored turned (as Aria's RGB camera stores it) and no trajectory: the frames given
    to the mapper are turned upright first (the rotation given, or an Aria calibration's), so
    the reconstructed camera is the wearer's: on ARES stored turned 90 degrees, the head turns
    as with the DROID-SLAM trajectory of the upright video, to a degree or two."""
    pytest.importorskip("pycolmap")
    import imageio.v2 as imageio

    ares = shared_data / "egoego_ares"
    frames = imageio.mimread(ares / "egocentric_video.mp4", memtest=False)
    imageio.mimwrite(tmp_path / "turned.mp4", [np.ascontiguousarray(np.rot90(f)) for f in frames], fps=30,
                     macro_block_size=1, quality=9, ffmpeg_log_level="error")
    res = import_video(tmp_path / "turned.mp4", None, video_rotation=90, reconstruction=tmp_path / "rec")
    droid = import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy").take
    R, R_droid = rot.quat_to_matrix(res.take.head_pose[:, 3:]), rot.quat_to_matrix(droid.head_pose[:, 3:])
    cos = (np.trace(np.swapaxes(R, 1, 2) @ R_droid, axis1=1, axis2=2) - 1) / 2
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).mean() < 2.0


def test_large_jpeg_frames_are_decoded_smaller(tmp_path):
    """Frames much larger than the view read from them (Aria's 1408 x 1408 JPEGs) are decoded at
    a quarter or half their size by libjpeg (2.5 times faster on Aria frames), with the same view
    to within half a grey level on average."""
    import cv2

    from kinpoly.egocentric.lens import Rectifier
    from kinpoly.egocentric.video import encoder_view, read_video

    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8), (0, 0), 6.0)
    (tmp_path / "f").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "f" / f"rgb_{1_000_000_000 + i * 33_333_333}.jpg"), np.roll(big, 8 * i, axis=1))
    full = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((tmp_path / "f").iterdir())]
    assert VideoSource.open(tmp_path / "f")._reduction(128, 128, 100.0) == 4  # 256 px still twice the view
    read = read_video(tmp_path / "f", 128, 128).frames.astype(float)
    assert np.abs(read - np.stack([encoder_view(f, 128, 128) for f in full])).mean() < 0.5
    lens = load_lens("fisheye:120")
    source = VideoSource.open(tmp_path / "f", lens=lens)
    assert source._reduction(128, 128, 100.0) == 2  # the lens's view first shrinks the frame to 169 px
    through = read_video(tmp_path / "f", 128, 128, lens=lens).frames.astype(float)
    rect = Rectifier(lens, (1024, 1024), 128, 128, 100.0)
    assert np.abs(through - np.stack([rect(f) for f in full])).mean() < 0.5
