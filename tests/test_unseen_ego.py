"""Egocentric input a user brings (trajectory files, videos, take folders, output folders): each
either gives the right take / estimate or a one-line error, never a traceback, a half-written
output folder or a silently wrong result. Every input is synthesised here."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from kinpoly import rotations as rot
from kinpoly.egocentric.take import EgoDataError, EgoTake, write_manifest
from kinpoly.egocentric.trajectory import _M, find_trajectory, read_trajectory
from kinpoly.egocentric.video import import_trajectory, import_video

T = 150  # 5 s at 30 Hz


def _walk(T: int = T):
    """Times (s), eye positions (Z up, m) and R_world_head of a 1.2 m/s walk with head bob and yaw sway."""
    t = np.arange(T) / 30.0
    yaw = 0.2 * np.sin(0.5 * t)
    pos = np.stack([1.2 * t, 0.3 * np.sin(0.4 * t), 1.6 + 0.02 * np.sin(2 * np.pi * 1.8 * t)], 1)
    R = rot.yaw_matrix(yaw) @ rot.quat_to_matrix(np.array([np.cos(0.05), 0.0, np.sin(0.05), 0.0]))  # 5.7 deg pitch
    return t, pos, R


def _tum_rows(T: int = T) -> np.ndarray:
    """(T, 8) TUM rows ``t tx ty tz qx qy qz qw``: camera-to-world, OpenCV camera axes."""
    t, pos, R = _walk(T)
    q = rot.matrix_to_quat(R @ _M["opencv"].T)
    return np.concatenate([t[:, None], pos, q[:, [1, 2, 3, 0]]], 1)


def _head_csv(path, t, pos, quat, extra: str = "") -> None:
    rows = [f"{a:.6f},{p[0]:.6f},{p[1]:.6f},{p[2]:.6f},{q[0]:.8f},{q[1]:.8f},{q[2]:.8f},{q[3]:.8f}{extra}"
            for a, p, q in zip(t, pos, quat)]
    header = "time,x,y,z,qw,qx,qy,qz" + (",world_up" if extra else "")
    path.write_text("\n".join([header] + rows) + "\n")


def _imported(path, **kw) -> np.ndarray:
    return import_trajectory(path, scale=1.0, **kw).take.head_pose


def test_tum_text_variants_read_alike(tmp_path):
    """TUM text with ``#`` comments, comma separated, with timestamps in ms or ns, or as
    (T, 4, 4) / (T, 7) arrays gives the same take as plain TUM text in seconds."""
    a = _tum_rows()
    np.savetxt(tmp_path / "plain.txt", a, fmt="%.9f")
    ref = _imported(tmp_path / "plain.txt")
    assert ref.shape == (T, 7)
    np.savetxt(tmp_path / "comments.txt", a, fmt="%.9f", header="timestamp tx ty tz qx qy qz qw\nfrom a tracker")
    np.savetxt(tmp_path / "comma.csv", a, fmt="%.9f", delimiter=",")
    ms = a.copy()
    ms[:, 0] = ms[:, 0] * 1e3 + 12345.0
    np.savetxt(tmp_path / "ms.txt", ms, fmt="%.6f")
    ns = np.round(a[:, 0] * 1e9).astype(np.int64) + 1686767222002923694  # epoch ns: float64 keeps ~0.2 us
    (tmp_path / "ns.txt").write_text("".join(f"{n} " + " ".join(f"{v:.9f}" for v in r[1:]) + "\n"
                                             for n, r in zip(ns, a)))
    M = np.tile(np.eye(4), (T, 1, 1))
    M[:, :3, :3] = rot.quat_to_matrix(a[:, [7, 4, 5, 6]])
    M[:, :3, 3] = a[:, 1:4]
    np.save(tmp_path / "matrices.npy", M)
    np.save(tmp_path / "rows.npy", a[:, 1:])
    for name in ("comments.txt", "comma.csv", "ms.txt", "ns.txt", "matrices.npy", "rows.npy"):
        h = _imported(tmp_path / name)
        assert h.shape == ref.shape, name
        np.testing.assert_allclose(h, ref, atol=1e-4, err_msg=name)
    assert read_trajectory(tmp_path / "ns.txt").meta["time_unit"] == "ns"
    assert read_trajectory(tmp_path / "ms.txt").meta["time_unit"] == "ms"


def test_a_folder_holding_the_trajectory(tmp_path):
    """An output folder (Aria MPS puts its trajectory in ``slam/``) reads as the file in it; the
    closed-loop trajectory is preferred over the open-loop one."""
    a = _tum_rows()
    (tmp_path / "rec" / "slam").mkdir(parents=True)
    np.savetxt(tmp_path / "rec" / "slam" / "trajectory.txt", a, fmt="%.9f")
    np.savetxt(tmp_path / "plain.txt", a, fmt="%.9f")
    np.testing.assert_array_equal(_imported(tmp_path / "rec"), _imported(tmp_path / "plain.txt"))
    assert read_trajectory(tmp_path / "rec").source.endswith("trajectory.txt")
    for name in ("open_loop_trajectory.csv", "closed_loop_trajectory.csv"):
        (tmp_path / "mps" / "slam").mkdir(parents=True, exist_ok=True)
        (tmp_path / "mps" / "slam" / name).write_text("tracking_timestamp_us\n")
    assert find_trajectory(tmp_path / "mps").name == "closed_loop_trajectory.csv"
    (tmp_path / "empty").mkdir()
    with pytest.raises(EgoDataError, match="a folder without a trajectory file"):
        read_trajectory(tmp_path / "empty")


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.__setitem__((slice(80, None), 0), a[80:, 0] + 4.0), "no pose for"),  # a 4 s gap
    (lambda a: a.__setitem__((41, 0), a[40, 0]), "strictly increasing (row 41"),  # duplicate time
    (lambda a: a.__setitem__(([40, 41],), a[[41, 40]]), "strictly increasing (row 41"),  # back in time
    (lambda a: a.__setitem__((60, 2), np.nan), "NaN/inf (first at row 60)"),
    (lambda a: a.__setitem__((slice(None), slice(4, None)), a[:, 4:] * 2.0), "non-unit quaternion"),
    (lambda a: a.__setitem__((slice(90, None), 1), a[90:, 1] + 5.0), "the head moves 5."),  # a teleport
])
def test_bad_trajectories_are_one_line_errors(tmp_path, edit, message):
    a = _tum_rows()
    edit(a)
    np.savetxt(tmp_path / "traj.txt", a, fmt="%.9f")
    with pytest.raises(EgoDataError, match=re.escape(message)) as e:
        import_trajectory(tmp_path / "traj.txt", scale=1.0)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("rows", [0, 1, 2])
def test_too_few_poses(tmp_path, rows):
    np.savetxt(tmp_path / "traj.txt", _tum_rows()[:rows], fmt="%.9f")
    with pytest.raises(EgoDataError, match="empty|at least"):
        import_trajectory(tmp_path / "traj.txt", scale=1.0)


def test_declared_y_up_world(tmp_path):
    """A Y-up world in a CSV: its ``world_up`` column is read; without it the take would lie on
    its side, which is an error naming the convention, not a silently wrong take."""
    t, pos, R = _walk()
    Wyz = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # Z-up -> Y-up
    q = rot.matrix_to_quat(Wyz @ R)
    _head_csv(tmp_path / "zup.csv", t, pos, rot.matrix_to_quat(R))
    _head_csv(tmp_path / "yup_col.csv", t, pos @ Wyz.T, q, extra=",y")
    _head_csv(tmp_path / "yup.csv", t, pos @ Wyz.T, q)
    np.testing.assert_allclose(_imported(tmp_path / "yup_col.csv"), _imported(tmp_path / "zup.csv"), atol=1e-5)
    with pytest.raises(EgoDataError, match="mean up axis is 9[0-9] degrees"):
        import_trajectory(tmp_path / "yup.csv")


def test_static_trajectory(tmp_path):
    """A head that never moves: a monocular one cannot be scaled by gait (an error asking for
    --scale, no division by zero); a metric one gives a take that stands still."""
    a = np.repeat(_tum_rows()[:1], T, 0)
    a[:, 0] = np.arange(T) / 30.0
    np.savetxt(tmp_path / "static.txt", a, fmt="%.9f")
    with pytest.raises(EgoDataError, match="pass --scale"):
        import_trajectory(tmp_path / "static.txt")
    t, pos, R = _walk()
    _head_csv(tmp_path / "static.csv", t, np.repeat(pos[:1], T, 0), np.repeat(rot.matrix_to_quat(R[:1]), T, 0))
    take = import_trajectory(tmp_path / "static.csv").take
    assert np.isfinite(take.head_vels).all() and np.abs(take.head_pose[:, :3] - take.head_pose[0, :3]).max() < 1e-9


def _video(path, frames: int, fps: float, size=(64, 48)):
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (size[1], size[0] * 4, 3), dtype=np.uint8)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1, quality=8) as w:
        for k in range(frames):  # a texture panning right at 60 px/s
            x = int(round(k * 60.0 / fps))
            w.append_data(tex[:, x:x + size[0]])


@pytest.mark.parametrize("fps, frames, expected", [(60.0, 61, 31), (30000 / 1001, 31, 31), (24.0, 25, 31)])
def test_video_at_other_frame_rates_makes_a_30_hz_take(tmp_path, fps, frames, expected):
    """The controller runs at 30 Hz: a 60 / 29.97 / 24 fps video becomes a 30 Hz take (it was a
    take at the video's rate, which every estimate then failed on)."""
    _video(tmp_path / "v.mp4", frames, fps)
    np.savetxt(tmp_path / "traj.txt", _tum_rows(31), fmt="%.9f")  # 1 s of poses with timestamps
    take = import_video(tmp_path / "v.mp4", tmp_path / "traj.txt", scale=1.0).take
    assert take.fps == 30.0 and take.num_frames == expected
    assert take.image_features.shape[0] == expected and np.isfinite(take.image_features).all()
    ref = import_trajectory(tmp_path / "traj.txt", scale=1.0).take.head_pose[:expected]
    np.testing.assert_allclose(take.head_pose, ref, atol=1e-6)


def test_video_errors(tmp_path):
    np.savetxt(tmp_path / "traj.txt", _tum_rows(40)[:, 1:], fmt="%.9f")  # 40 poses, no timestamps
    _video(tmp_path / "v.mp4", 30, 30.0)
    (tmp_path / "text.mp4").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    for video, message in (("v.mp4", "40 poses for 30 video frames"), ("text.mp4", "unreadable video"),
                           ("empty.mp4", "unreadable video"), ("missing.mp4", "no such video")):
        with pytest.raises(EgoDataError, match=message):
            import_video(tmp_path / video, tmp_path / "traj.txt", scale=1.0)


def _turning_camera(tmp_path, turned_by: tuple[int, ...] = (0,), T: int = 90, amplitude: float = 0.35,
                    skip: int = 0, fovy: float = 100.0):
    """A camera whose head yaws and pitches over a still, textured wall: the wall pans across
    the 128 px, 100-degree view (``amplitude`` rad of yaw). Writes ``traj.npy`` (DROID-SLAM
    layout, one row per frame), ``traj.txt`` (TUM, with times) and, per rotation in
    ``turned_by``, ``v<deg>.mp4``: the frames after the first ``skip``, stored turned that many
    degrees anticlockwise, so that as many clockwise make them upright."""
    import cv2
    import imageio.v2 as imageio

    rng = np.random.default_rng(0)
    wall = cv2.GaussianBlur(rng.integers(0, 255, (600, 900, 3), dtype=np.uint8), (0, 0), 2.0)
    t = np.arange(T) / 30.0
    yaw, pitch = amplitude * np.sin(2 * np.pi * 0.7 * t), amplitude / 3 * np.sin(2 * np.pi * 0.45 * t + 1.0)
    px = 64.0 / np.tan(np.radians(fovy / 2))  # pixels per radian at the image centre
    frames = [wall[int(round(230 - px * b)):][:128, int(round(380 - px * a)):][:, :128] for a, b in zip(yaw, pitch)]
    R = rot.yaw_matrix(yaw) @ rot.quat_to_matrix(np.stack([np.cos(pitch / 2), 0 * t, np.sin(pitch / 2), 0 * t], 1))
    q = rot.matrix_to_quat(R @ _M["opencv"].T)
    rows = np.concatenate([np.stack([0.3 * t, 0 * t, 1.6 + 0 * t], 1), q[:, [1, 2, 3, 0]]], 1)
    np.save(tmp_path / "traj.npy", rows)
    np.savetxt(tmp_path / "traj.txt", np.concatenate([t[:, None], rows], 1), fmt="%.9f")
    for deg in turned_by:
        imageio.mimwrite(tmp_path / f"v{deg}.mp4", [np.ascontiguousarray(np.rot90(f, k=deg // 90)) for f in frames[skip:]],
                         fps=30, macro_block_size=1, quality=9, ffmpeg_log_level="error")


def test_a_turned_camera_is_turned_upright(tmp_path):
    """Frames stored turned (Aria's RGB camera is mounted at 90 degrees) show the head's yaw as
    vertical flow, which the encoder reads as pitch: the import finds the rotation whose flow
    turns the way the trajectory does, and its features are then those of the upright video."""
    _turning_camera(tmp_path, (0, 90, 180, 270))
    upright = import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0)
    assert upright.report["video_rotation"]["degrees"] == 0
    norm = np.linalg.norm(upright.take.image_features, axis=1).mean()

    def distance(take):
        return np.linalg.norm(take.image_features - upright.take.image_features, axis=1).mean() / norm

    for deg in (90, 180, 270):
        res = import_video(tmp_path / f"v{deg}.mp4", tmp_path / "traj.npy", scale=1.0)
        r = res.report["video_rotation"]
        assert r["degrees"] == deg and r["source"] == "auto" and r["agreement"][str(deg)] > 0.7, r
        as_stored = import_video(tmp_path / f"v{deg}.mp4", tmp_path / "traj.npy", scale=1.0, video_rotation=0)
        assert as_stored.report["video_rotation"] == {"degrees": 0, "source": "given"}
        # the same features as upright but for the MP4 compression of a turned picture
        assert distance(res.take) < 0.1 < 0.5 < distance(as_stored.take)
    with pytest.raises(EgoDataError, match="video rotation must be one of 0, 90, 180, 270"):
        import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0, video_rotation=45)


def test_a_stream_turns_its_video_as_told(tmp_path):
    """`kinpoly stream --video FILE --video-rotation 90`: a live stream cannot look ahead to find
    the rotation, so it is given; the frames the stream reads are then upright."""
    import imageio.v2 as imageio

    from kinpoly.policy.commands import _video_frames

    _turning_camera(tmp_path, (0, 90), T=30)
    upright = np.stack(imageio.mimread(tmp_path / "v0.mp4")).astype(float)
    read = np.stack(list(_video_frames(str(tmp_path / "v90.mp4"), 90))).astype(float)
    as_stored = np.stack(list(_video_frames(str(tmp_path / "v90.mp4")))).astype(float)
    assert read.shape == upright.shape == as_stored.shape  # square frames: only their content turns
    assert np.abs(read - upright).mean() < 0.2 * np.abs(as_stored - upright).mean()


@pytest.mark.parametrize("fovy", [100.0, 70.0])
def test_the_field_of_view_found_from_the_flow(tmp_path, fovy, caplog):
    """`--video-fovy auto`: a head turning over a wall moves the picture's middle by the focal
    length times the turn, which gives the field of view (a phone's 70 degrees, the renders'
    100); the features are then those of the field of view given. Without it the one found is
    reported, and a warning names the option when it is far from the 100 assumed."""
    _turning_camera(tmp_path, T=90, fovy=fovy)
    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        assumed = import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0).report["video_fovy"]
    assert assumed["source"] == "assumed" and assumed["degrees"] == 100.0
    assert abs(assumed["found"] - fovy) < 0.1 * fovy and ("--video-fovy" in caplog.text) == (fovy == 70.0)
    auto = import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0, video_fovy="auto")
    found = auto.report["video_fovy"]
    # within 10% (the 70-degree wall is found at 75: its flow, 1.4 times the 100-degree one's, is read a little
    # short; on the renders of the test takes the median is 70.1, benchmarks/results/video_geometry_fovy.json)
    assert found["source"] == "auto" and abs(found["degrees"] - fovy) < 0.1 * fovy and found["explained"] > 0.8, found
    given = import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0, video_fovy=fovy).take
    norm = np.linalg.norm(given.image_features, axis=1).mean()
    assert np.linalg.norm(auto.take.image_features - given.image_features, axis=1).mean() < 0.1 * norm


def test_a_head_that_does_not_turn_keeps_the_video_as_stored(tmp_path):
    """Without head rotation the flow cannot tell which way is up: the frames stay as stored."""
    _turning_camera(tmp_path, (90,), amplitude=0.002)
    r = import_video(tmp_path / "v90.mp4", tmp_path / "traj.npy", scale=1.0).report["video_rotation"]
    assert r["degrees"] == 0 and r["head_turn_rate"] < 0.1


def test_a_video_out_of_step_with_its_trajectory_is_reported(tmp_path, caplog):
    """A video that starts 0.2 s into its trajectory, paired from the trajectory's start: the
    import warns with the --time-offset that puts the two in step (and is quiet with it);
    --time-offset auto pairs them so."""
    _turning_camera(tmp_path, T=150, skip=6)
    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        lag = import_video(tmp_path / "v0.mp4", tmp_path / "traj.txt", scale=1.0).report["video_lag"]
    assert lag["lag"] == -6 and lag["agreement"] > 0.7 > 0.6 > lag["agreement_unshifted"], lag
    assert "pass --time-offset 0.200" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="kinpoly.egocentric.video"):
        right = import_video(tmp_path / "v0.mp4", tmp_path / "traj.txt", scale=1.0, time_offset=0.2)
    assert right.report["video_lag"]["lag"] == 0 and "time-offset" not in caplog.text
    # --time-offset auto pairs the two at the offset it finds: the take paired by hand
    auto = import_video(tmp_path / "v0.mp4", tmp_path / "traj.txt", scale=1.0, time_offset="auto")
    assert auto.report["time_offset"] == {"seconds": 0.2, "source": "auto"}
    np.testing.assert_allclose(auto.take.head_pose, right.take.head_pose, atol=1e-9)
    with pytest.raises(EgoDataError, match="--time-offset auto needs a trajectory with timestamps"):
        import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0, time_offset="auto")
    res = _run(["estimate", "--head-poses", tmp_path / "traj.txt", "--time-offset", "auto", "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "--time-offset auto goes with --video" in res.output
    res = _run(["ego", "import-video", tmp_path / "v0.mp4", "--head-poses", tmp_path / "traj.txt", "--time-offset",
                "soon", "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "'soon' is neither a number of seconds nor auto" in res.output


def test_a_variable_frame_rate_video_is_read_at_its_frame_times(tmp_path):
    """Phones record at a variable frame rate: here 1.5 s at 30 frames/s, then 1.5 s at 15. The
    take pairs each frame with the pose of its own time, not of its place at the mean rate, and
    reads the flow of each pair per 1/30 s: it is the take of the same camera filmed evenly."""
    import subprocess

    import imageio.v2 as imageio
    import imageio_ffmpeg

    _turning_camera(tmp_path)
    frames = imageio.mimread(tmp_path / "v0.mp4")
    for name, part, fps in (("a.mp4", frames[:45], 30), ("b.mp4", frames[45::2], 15)):
        imageio.mimwrite(tmp_path / name, part, fps=fps, macro_block_size=1, quality=9, ffmpeg_log_level="error")
    (tmp_path / "parts.txt").write_text("file 'a.mp4'\nfile 'b.mp4'\n")
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "concat", "-safe", "0",
                    "-i", str(tmp_path / "parts.txt"), "-c", "copy", str(tmp_path / "vfr.mp4")], check=True)
    even = import_video(tmp_path / "v0.mp4", tmp_path / "traj.txt", scale=1.0)
    res = import_video(tmp_path / "vfr.mp4", tmp_path / "traj.txt", scale=1.0)
    assert res.report["video_frames"] == 68 and res.report["frames"] == 90  # 3 s at 30 Hz, as the even video
    assert res.report["variable_frame_rate"]["frame_interval_ms"] == pytest.approx([33.333, 66.667], abs=0.01)
    assert "variable_frame_rate" not in even.report
    np.testing.assert_allclose(res.take.head_pose, even.take.head_pose, atol=1e-9)
    pred = {k: np.asarray(r.take.meta["predicted_head_local_vels"])[:, 5] for k, r in (("vfr", res), ("even", even))}
    assert np.corrcoef(pred["vfr"], pred["even"])[0, 1] > 0.95  # the same yaw rates, frame for frame
    assert res.report["video_lag"]["lag"] == 0


def test_the_input_video_beside_an_estimate_keeps_its_own_time(tmp_path):
    """The estimate's video (30 frames/s) shows, at each of its frames, the input frame nearest
    its time: a 15 frames/s folder of frames shows each one twice."""
    import imageio.v2 as imageio

    from kinpoly.egocentric.video import VideoSource
    from kinpoly.policy.estimate import _append_video_panel

    (tmp_path / "frames").mkdir()
    for k in range(10):  # input frame k is grey level 20 k
        imageio.imwrite(tmp_path / "frames" / f"{k:02d}.png", np.full((48, 64, 3), 20 * k, np.uint8))
    imageio.mimwrite(tmp_path / "est.mp4", [np.zeros((32, 32, 3), np.uint8)] * 20, fps=30, macro_block_size=1,
                     ffmpeg_log_level="error")
    _append_video_panel(tmp_path / "est.mp4", VideoSource.open(tmp_path / "frames", fps=15.0), 32, 32)
    shown = [float(f[24:, 40:].mean()) for f in imageio.mimread(tmp_path / "est.mp4")]
    np.testing.assert_allclose(shown, [20 * (i // 2) for i in range(20)], atol=4)


def test_what_the_flow_encoder_reads_of_a_frame():
    """A 16:9 frame keeps its centre square (the encoder's square view of its vertical field of
    view) instead of being squashed; a portrait frame is squashed whole (its centre square would
    see less than the encoder's view)."""
    from kinpoly.egocentric.video import encoder_view

    img = np.zeros((90, 160, 3), np.uint8)
    img[:, 35:125] = 255  # the centre square white, the sides black
    assert (encoder_view(img, 32, 32) == 255).all()
    tall = np.zeros((160, 90, 3), np.uint8)
    tall[:40] = 255  # the top quarter white
    seen = encoder_view(tall, 32, 32)
    assert (seen[:7] == 255).all() and (seen[9:] == 0).all()


def test_a_folder_of_frames_is_a_video(tmp_path):
    """Datasets that ship frames as image files (EPIC-Kitchens, EgoBody, ADT): a folder in name
    order at the --fps given gives the take the same video as an MP4 of those frames."""
    import imageio.v2 as imageio

    _turning_camera(tmp_path)
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(imageio.get_reader(tmp_path / "v0.mp4")):
        imageio.imwrite(tmp_path / "frames" / f"frame_{i:05d}.png", f)
    (tmp_path / "frames" / "notes.txt").write_text("not a frame\n")
    res = import_video(tmp_path / "frames", tmp_path / "traj.npy", scale=1.0, fps=30.0)
    ref = import_video(tmp_path / "v0.mp4", tmp_path / "traj.npy", scale=1.0)
    assert res.report["video_frames"] == 90 and res.report["video_size"] == [128, 128]
    np.testing.assert_allclose(res.take.image_features, ref.take.image_features, atol=1e-5)
    with pytest.raises(EgoDataError, match="file names hold no capture times have no frame rate: give it"):
        import_video(tmp_path / "frames", tmp_path / "traj.npy", scale=1.0)
    with pytest.raises(EgoDataError, match="frame rate must be between 1 and 1000, got 0"):
        import_video(tmp_path / "frames", tmp_path / "traj.npy", scale=1.0, fps=0.0)
    imageio.imwrite(tmp_path / "frames" / "frame_99999.png", np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(EgoDataError, match="frame_99999.png: 64x64, but the frames before it are 128x128"):
        import_video(tmp_path / "frames", tmp_path / "traj.npy", scale=1.0, fps=30.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EgoDataError, match="needs image files"):
        import_video(tmp_path / "empty", tmp_path / "traj.npy", scale=1.0, fps=30.0)


def _run(args):
    from kinpoly.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_estimate_refuses_before_writing(tmp_path):
    """Output folder that is a file, a policy that needs video features for a trajectory alone,
    a missing checkpoint: one-line errors, and no output folder is made."""
    np.savetxt(tmp_path / "traj.txt", _tum_rows(), fmt="%.9f")
    (tmp_path / "file").write_text("")
    from kinpoly.policy.estimate import SHIPPED_POLICY

    cases = [(["--out", tmp_path / "file"], "is a file"),
             (["--out", tmp_path / "o1", "--checkpoint", SHIPPED_POLICY], "reads image features"),
             (["--out", tmp_path / "o2", "--checkpoint", tmp_path / "none.pt"], "no such")]
    for extra, message in cases:
        res = _run(["estimate", "--head-poses", tmp_path / "traj.txt", "--scale", "1", "--no-physics",
                    "--videos", "0", "--no-progress"] + extra)
        assert res.exit_code == 1 and message in res.output, res.output
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_estimate_from_a_turned_folder_of_frames(tmp_path):
    """`kinpoly estimate --video FOLDER --fps`: the frames of a camera mounted turned, as image
    files; the estimate turns them upright and shows them so beside the estimate."""
    import imageio.v2 as imageio

    from kinpoly.egocentric.video import encoder_view

    _turning_camera(tmp_path, (0, 90))
    (tmp_path / "frames").mkdir()
    for i, f in enumerate(imageio.get_reader(tmp_path / "v90.mp4")):
        imageio.imwrite(tmp_path / "frames" / f"{i:04d}.png", f)
    args = ["estimate", "--video", tmp_path / "frames", "--head-poses", tmp_path / "traj.npy", "--scale", "1",
            "--no-physics", "--no-progress"]
    res = _run(args + ["--videos", "0", "--out", tmp_path / "no_fps"])
    assert res.exit_code == 1 and "hold no capture times have no frame rate: give it (--fps)" in res.output, res.output
    res = _run(args + ["--fps", "30", "--videos", "1", "--out", tmp_path / "out"])
    assert res.exit_code == 0, res.output
    assert "video_rotation: auto" in (tmp_path / "out" / "config.yaml").read_text()
    shown = imageio.mimread(tmp_path / "out" / "videos" / "frames.mp4")[0][40:, -240:].astype(float)  # below the label
    upright, turned = (encoder_view(next(iter(imageio.get_reader(tmp_path / f"v{d}.mp4"))), 240, 240)[40:]
                       for d in (0, 90))
    assert np.abs(shown - upright).mean() < 0.5 * np.abs(shown - turned).mean()


def test_hand_made_take_folder(tmp_path):
    """A take folder made by hand: a take without head velocities, name or objects is read; a
    missing file, NaN head poses or unreadable meta fail that take only, with the reason."""
    from kinpoly.policy.commands import _takes_without_features

    t, pos, R = _walk(60)
    head = np.concatenate([pos, rot.matrix_to_quat(R)], 1)
    (tmp_path / "takes").mkdir()
    np.savez(tmp_path / "takes" / "plain.npz", head_pose=head, meta=np.array(json.dumps({"fps": 30})))
    bad = head.copy()
    bad[7, 3:] = np.nan
    np.savez(tmp_path / "takes" / "nan.npz", head_pose=bad, meta=np.array(json.dumps({"fps": 30})))
    np.savez(tmp_path / "takes" / "meta.npz", head_pose=head, meta=np.array("{oops"))
    names = ["plain", "nan", "meta", "missing"]
    write_manifest(tmp_path, [{"name": n, "file": f"takes/{n}.npz", "frames": 60, "image_features": None}
                              for n in names], {"test": names}, [])
    take = EgoTake.load(tmp_path / "takes" / "plain.npz")
    assert take.name == "plain" and take.head_vels.shape == (60, 6) and take.object_poses.shape == (60, 0, 7)
    assert _takes_without_features(tmp_path)  # -> the head-trajectory-only policy by default
    res = _run(["estimate", "--take", tmp_path, "--out", tmp_path / "out", "--no-physics", "--videos", "0",
                "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["takes"] == 1 and "kinematic_head_only" in report["checkpoint"]
    reasons = {f["take"]: f["reason"] for f in report["failures"]}
    assert set(reasons) == {"nan", "meta", "missing"}
    assert "NaN" in reasons["nan"] and "meta" in reasons["meta"] and "No such file" in reasons["missing"]


def test_existing_output_folder_scores_only_this_run(tmp_path):
    """Estimates written into a folder that holds an earlier run's takes: the metrics are of
    this run's takes (they were of every clip in the folder)."""
    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.policy.estimate import Estimator, estimate_takes
    from kinpoly.config import PACKAGE_DIR

    ds = EgoDataset(PACKAGE_DIR / "assets" / "takes")
    est = Estimator(None, physics=False)
    first, second = ds.names[0], ds.names[1]
    estimate_takes([ds[first]], est, tmp_path, videos=0, progress=False)
    report = estimate_takes([ds[second]], est, tmp_path, videos=0, progress=False)
    assert (tmp_path / "clips" / f"{first}.npz").is_file()  # kept, but not scored
    assert list(report["evaluation"]["clips"]) == [second] and report["evaluation"]["num_clips"] == 1


def test_killed_estimate_resumes(tmp_path):
    """`kinpoly estimate --resume` after a run killed between two takes: the complete take is
    read back (its files untouched), the missing one estimated, and the metrics are those of an
    uninterrupted run; with other settings nothing is read back."""
    from kinpoly.config import PACKAGE_DIR
    from kinpoly.policy.estimate import SHIPPED_HEAD_ONLY_POLICY

    takes, out = PACKAGE_DIR / "assets" / "takes", tmp_path / "out"
    args = ["estimate", "--take", takes, "--out", out, "--no-physics", "--videos", "0", "--no-progress"]
    assert _run(args).exit_code == 0
    full = json.loads((out / "metrics.json").read_text())
    names = list(full["evaluation"]["clips"])
    kept, lost = names[0], names[-1]
    (out / "clips" / f"{lost}.npz").unlink()  # killed before the last take's clip was written
    stamp = (out / "clips" / f"{kept}.npz").stat().st_mtime_ns
    res = _run(args + ["--resume"])
    assert res.exit_code == 0, res.output
    again = json.loads((out / "metrics.json").read_text())
    assert lost not in again["resumed"] and set(again["resumed"]) == set(names) - {lost}
    assert (out / "clips" / f"{kept}.npz").stat().st_mtime_ns == stamp
    assert "read back" in (out / "metrics.md").read_text()
    for key in ("mpjpe_mm", "mpjpe_global_mm", "skate_mm", "num_clips"):
        assert again["evaluation"][key] == pytest.approx(full["evaluation"][key])
    other = _run(args + ["--resume", "--checkpoint", SHIPPED_HEAD_ONLY_POLICY])
    assert other.exit_code == 0 and json.loads((out / "metrics.json").read_text())["resumed"] == []
