"""Egocentric data: take type and loader, head features, scenes, build, trajectories, video."""

from __future__ import annotations

import json
from pathlib import Path
import pickle

import numpy as np
import pytest

from kinpoly import rotations as rot
from kinpoly.egocentric.features import (head_local_velocities, head_velocities,
                                         objects_relative_to_head, slam_noise)
from kinpoly.egocentric.take import EgoDataError, EgoDataset, EgoTake
from kinpoly.egocentric.trajectory import (EgoDataError as TrajError, read_trajectory,
                                           to_head_poses, umeyama)


def _yaw_q(yaw):
    return np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], -1)


def _head_track(T=30, fps=30.0, speed=1.0, yaw=np.pi / 2, yaw_rate=0.0):
    t = np.arange(T) / fps
    y = yaw + yaw_rate * t
    pos = np.stack([speed * t * np.cos(yaw), speed * t * np.sin(yaw), np.full(T, 1.6)], 1)
    return np.concatenate([pos, _yaw_q(y)], 1)


# --- features ---------------------------------------------------------------------------------
def test_head_velocities_in_heading_frame():
    v = head_velocities(_head_track(speed=1.2, yaw=np.pi / 2), 30.0)
    assert np.allclose(v[:, :3], [1.2, 0, 0], atol=1e-9)  # forward, whatever the world heading
    w = head_velocities(_head_track(speed=0.0, yaw_rate=0.5), 30.0)
    assert np.allclose(w[:, 3:], [0, 0, 0.5], atol=1e-6)  # yaw: head z = world z
    assert np.allclose(w[-1], w[-2])
    loc = head_local_velocities(_head_track(speed=1.0, yaw=1.0), 30.0)
    assert np.allclose(loc[:, :3], [1.0, 0, 0], atol=1e-9)
    with pytest.raises(ValueError):
        head_velocities(_head_track(T=1), 30.0)


def test_objects_relative_to_head():
    head = _head_track(T=5, speed=0.0, yaw=np.pi / 2)  # facing world +Y
    obj = np.zeros((5, 1, 7))
    obj[:, 0, :3] = [0.0, 2.0, 0.0]  # 2 m in front, on the floor
    obj[:, 0, 3:] = _yaw_q(np.array(np.pi / 2))
    rel = objects_relative_to_head(head, obj)
    assert rel.shape == (5, 1, 7)
    assert np.allclose(rel[:, 0, :3], [2.0, 0.0, -1.6], atol=1e-9)
    assert np.allclose(np.abs(rel[:, 0, 3]), 1.0, atol=1e-9)  # same yaw as the head
    assert objects_relative_to_head(head, None).shape == (5, 0, 7)


def test_slam_noise_drifts_from_exact_start():
    head = _head_track(T=300, speed=1.0)
    noisy = slam_noise(head, 30.0, np.random.default_rng(0))
    assert np.allclose(noisy[0], head[0])
    err = np.linalg.norm(noisy[:, :3] - head[:, :3], axis=1)
    assert 0.001 < err.mean() < 0.2
    assert np.allclose(np.linalg.norm(noisy[:, 3:], axis=1), 1.0)
    assert np.array_equal(noisy, slam_noise(head, 30.0, np.random.default_rng(0)))


# --- take type and loader ------------------------------------------------------------------------
def _take(name="walk-01", T=12, K=1, feats=True):
    head = _head_track(T=T)
    obj = np.zeros((T, K, 7))
    obj[..., 3] = 1.0
    return EgoTake(name=name, head_pose=head, head_vels=head_velocities(head, 30.0), action="step",
                   object_poses=obj, object_kinds=["step"] * K,
                   image_features=np.ones((T, 8), np.float32) if feats else None,
                   qpos=np.zeros((T, 76)), meta={"k": 1})


def test_take_roundtrip_and_torch(tmp_path):
    t = _take()
    t.save(tmp_path / "a.npz")
    u = EgoTake.load(tmp_path / "a.npz")
    assert u.name == t.name and u.action == "step" and u.object_kinds == ["step"]
    for k in ("head_pose", "head_vels", "object_poses", "image_features", "qpos"):
        assert np.array_equal(getattr(u, k), getattr(t, k))
    assert u.action_one_hot.tolist() == [0, 0, 0, 1, 0]
    tt = u.to_torch()
    assert tuple(tt["head_pose"].shape) == (12, 7) and tuple(tt["action_one_hot"].shape) == (12, 5)
    with pytest.raises(EgoDataError, match="head_vels"):
        EgoTake(name="bad", head_pose=np.zeros((4, 7)), head_vels=np.zeros((3, 6)))
    with pytest.raises(EgoDataError, match="not an egocentric take"):
        (tmp_path / "junk.npz").write_bytes(b"nope")
        EgoTake.load(tmp_path / "junk.npz")


def test_dataset_reads_original_kinpoly_pickle(tmp_path):
    """A tiny pickle in the original layout (SPEC 4) + meta YAML -> the same sample type."""
    T = 20
    rng = np.random.default_rng(0)

    def take(action_idx):
        head = _head_track(T=T)
        obj = np.tile([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], (T, 1))
        oh = np.zeros(4)
        oh[action_idx] = 1
        return {"qpos": rng.normal(size=(T, 76)), "qvel": np.zeros((T, 75)), "wbpos": np.zeros((T, 72)),
                "wbquat": np.zeros((T, 96)), "bquat": np.zeros((T, 96)), "head_pose": head,
                "head_vels": head_velocities(head, 30.0), "obj_pose": obj, "action_one_hot": oh,
                "of_feats": np.ones((T, 512))}

    data = {"sit-01": take(0), "push-02": take(1), "step-03": take(3)}
    (tmp_path / "mocap_train.p").write_bytes(pickle.dumps(data))
    (tmp_path / "meta.yml").write_text("train: [sit-01, push-02]\ntest: [step-03]\nobject_names: [chair]\n")
    ds = EgoDataset(kinpoly_pickles=[tmp_path / "mocap_train.p"], meta_yaml=tmp_path / "meta.yml", split="train")
    assert ds.names == ["push-02", "sit-01"]
    s = ds["sit-01"]
    assert isinstance(s, EgoTake) and s.action == "sit" and s.object_kinds == ["chair"]
    assert s.object_poses.shape == (T, 1, 7) and s.image_features.shape == (T, 512)
    assert np.allclose(s.object_poses[0, 0, :3], s.head_pose[0, :3] * 0 + (
        rot.yaw_matrix(-np.pi / 2) @ (np.array([1.0, 0, 0]) - s.head_pose[0, :3])), atol=1e-9)
    test = EgoDataset(kinpoly_pickles=[tmp_path / "mocap_train.p"], meta_yaml=tmp_path / "meta.yml", split="test")
    assert [t.name for t in test] == ["step-03"]


# --- trajectories -----------------------------------------------------------------------------------
def test_opencv_trajectory_to_head_frame(tmp_path):
    """A camera looking along world +Y (OpenCV axes) becomes a head facing +X after levelling,
    with the camera's down axis as world -Z."""
    T = 10
    # camera axes in a Z-up world: z_cam (forward) = +Y, x_cam (right) = +X, y_cam (down) = -Z
    R = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    q = rot.matrix_to_quat(np.tile(R, (T, 1, 1)))  # wxyz
    pos = np.stack([np.zeros(T), np.linspace(0, 0.5, T), np.zeros(T)], 1)
    arr = np.concatenate([pos, q[:, [1, 2, 3, 0]]], 1)  # tx ty tz qx qy qz qw
    np.save(tmp_path / "traj.npy", arr)
    tr = read_trajectory(tmp_path / "traj.npy")
    assert tr.camera_axes == "opencv" and tr.times is None
    track = to_head_poses(tr, scale=2.0, eye_height=1.5)
    assert np.allclose(rot.quat_to_matrix(track.head_pose[:, 3:]), np.eye(3), atol=1e-6)
    assert np.allclose(track.head_pose[-1, :3], [1.0, 0.0, 1.5], atol=1e-6)  # forward, scaled


def test_bad_trajectories_named(tmp_path):
    a = np.tile([0, 0, 0, 0, 0, 0, 1.0], (5, 1))
    a[2, 6] = 2.0
    np.save(tmp_path / "nonunit.npy", a)
    with pytest.raises(TrajError, match="nonunit.npy.*non-unit quaternion at row 2"):
        read_trajectory(tmp_path / "nonunit.npy")
    a[2, 6] = np.nan
    np.save(tmp_path / "nan.npy", a)
    with pytest.raises(TrajError, match="nan.npy.*NaN"):
        read_trajectory(tmp_path / "nan.npy")
    np.save(tmp_path / "cols.npy", np.zeros((5, 5)))
    with pytest.raises(TrajError, match="cols.npy"):
        read_trajectory(tmp_path / "cols.npy")


def test_umeyama_recovers_similarity(rng):
    src = rng.normal(size=(50, 3))
    R = rot.rotvec_to_matrix(np.array([0.3, -0.2, 1.0]))
    dst = 1.7 * src @ R.T + [1, 2, 3]
    s, R2, t = umeyama(src, dst)
    assert abs(s - 1.7) < 1e-9 and np.allclose(R2, R) and np.allclose(t, [1, 2, 3])


def test_aria_trajectories_are_z_up(shared_data):
    """Aria MPS (Z-up world) and ADT (Y-up world): the head's up axis ends up along +Z."""
    for f, up in (("aria_mps_trajectory/closed_loop_trajectory.csv", "z"), ("aria_adt_sample/aria_trajectory.csv", "y")):
        tr = read_trajectory(shared_data / f)
        assert tr.camera_axes == "aria" and tr.world_up == up and tr.metric
        hp = to_head_poses(tr, level_first=False).head_pose
        R = rot.quat_to_matrix(hp[:, 3:])
        assert np.mean(R[:, 2, 2]) > 0.85, f  # head z (up) is vertical
        assert np.mean(np.abs(R[:, 2, 0])) < 0.5, f  # head x (forward) is near horizontal
    tr = read_trajectory(shared_data / "aria_adt_sample/aria_trajectory.csv")
    hp = to_head_poses(tr, level_first=False).head_pose
    assert 1.3 < hp[0, 2] < 1.8  # ADT eye height above the floor (Y-up world -> Z)


# --- head trajectory alone -------------------------------------------------------------------
def test_import_a_headset_trajectory_without_video(tmp_path, shared_data):
    """The Aria MPS trajectory (1 kHz, metric, no video) becomes a 30 Hz take without image
    features; a short or unscalable trajectory is a clear error."""
    from kinpoly.egocentric.video import import_trajectory

    aria = shared_data / "aria_mps_trajectory" / "closed_loop_trajectory.csv"
    res = import_trajectory(aria, action="locomotion")
    take = res.take
    assert take.num_frames == 342 and take.fps == 30.0 and take.image_features is None  # 11.40 s
    assert res.report["scale_source"] == "metric trajectory" and res.report["video"] is None
    assert take.head_pose[0, 2] == pytest.approx(1.6) and take.action == "locomotion"
    walked = np.linalg.norm(np.diff(take.head_pose[:, :2], axis=0), axis=1).sum()
    assert 7.0 < walked < 8.0  # the MPS summary: a 7.67 m trajectory
    assert import_trajectory(aria, rate=10).take.num_frames == 114
    assert import_trajectory(aria, time_offset=10.0).take.num_frames == 42  # 1.39 s left
    with pytest.raises(EgoDataError, match="too short"):
        import_trajectory(aria, time_offset=11.39)
    ares = shared_data / "egoego_ares" / "droid_slam_traj.npy"  # monocular SLAM: no metric scale
    with pytest.raises(EgoDataError, match="pass --scale"):
        import_trajectory(ares)
    assert import_trajectory(ares, scale=2.0).take.num_frames == 140  # one pose per frame at 30 fps
    assert import_trajectory(ares, scale=2.0, fps=60).take.num_frames == 70  # 140 poses at 60 fps: 2.3 s


# --- video import ------------------------------------------------------------------------------------
def test_import_video_errors_name_files(tmp_path, shared_data):
    from kinpoly.egocentric.video import import_video

    ares = shared_data / "egoego_ares"
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(EgoDataError, match="bad.mp4"):
        import_video(tmp_path / "bad.mp4", ares / "droid_slam_traj.npy", scale=1.0)
    np.save(tmp_path / "short.npy", np.load(ares / "droid_slam_traj.npy")[:100])
    with pytest.raises(EgoDataError, match="short.npy: 100 poses for 140 video frames"):
        import_video(ares / "egocentric_video.mp4", tmp_path / "short.npy", scale=1.0)
    with pytest.raises(EgoDataError, match="egocentric_video.mp4: video is at 30.000 fps, expected 25"):
        import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy", scale=1.0, fps=25)


def test_import_ares_video_matches_ground_truth(shared_data):
    """DROID-SLAM head trajectory of the ARES sample vs its ground-truth head: < 8 cm RMSE after
    similarity alignment, best-fit scale near the 1.97 the data README reports."""
    joblib = pytest.importorskip("joblib")
    from kinpoly.egocentric.trajectory import read_trajectory as rt
    from kinpoly.egocentric.video import import_video

    ares = shared_data / "egoego_ares"
    res = import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy", scale=1.0)
    take = res.take
    assert take.num_frames == 140 and take.head_vels.shape == (140, 6)
    # a video from another project, with its own SLAM trajectory: read upright and in step
    assert res.report["video_rotation"]["degrees"] == 0 and res.report["video_rotation"]["agreement"]["0"] > 0.9
    assert res.report["video_lag"]["lag"] == 0
    gt = np.asarray(joblib.load(ares / "demo_ares_data.p")[0]["head_qpos"], dtype=float)
    src = to_head_poses(rt(ares / "droid_slam_traj.npy"), 1.0, 0.0).head_pose[:, :3]
    s, R, t = umeyama(src, gt[:, :3])
    rmse = np.sqrt(np.mean(np.sum((s * src @ R.T + t - gt[:, :3]) ** 2, 1)))
    assert rmse < 0.08 and 1.7 < s < 2.3
    # the levelled world's up agrees with the ground truth's gravity within 15 degrees
    assert np.degrees(np.arccos((R.T @ [0, 0, 1.0])[2])) < 15


def test_head_vels_match_original_convention(shared_data):
    """The ARES ground truth's head_vels: angular part in the head's own frame (ours to 1e-3)."""
    joblib = pytest.importorskip("joblib")
    d = joblib.load(shared_data / "egoego_ares" / "demo_ares_data.p")[0]
    hq = np.asarray(d["head_qpos"], dtype=float)
    ours = head_velocities(hq, 30.0)
    assert np.abs(ours[:, 3:] - np.asarray(d["head_vels"])[:, 3:]).max() < 2e-3
    # linear speed agrees (the heading of SMPL's head axes differs from ours: compare norms)
    assert np.allclose(np.linalg.norm(ours[:, :2], axis=1), np.linalg.norm(np.asarray(d["head_vels"])[:, :2], axis=1), atol=0.05)


def test_import_video_cli_writes_take_folder(tmp_path, shared_data):
    from click.testing import CliRunner

    from kinpoly.cli import main

    ares = shared_data / "egoego_ares"
    res = CliRunner().invoke(main, ["ego", "import-video", str(ares / "egocentric_video.mp4"), "--head-poses",
                                    str(ares / "droid_slam_traj.npy"), "--out", str(tmp_path / "real"),
                                    "--scale", "1.97", "--name", "ares", "--fps", "30",
                                    "--gt", str(ares / "demo_ares_data.p")])
    assert res.exit_code == 0, res.output
    ds = EgoDataset(tmp_path / "real", split="test")
    take = ds["ares"]
    assert take.num_frames == 140 and take.meta["import"]["scale"] == 1.97
    assert take.qpos.shape == (140, 76) and take.gt_head_pose.shape == (140, 7)
    assert take.meta["ground_truth"]["head_rmse_m"] < 0.1
    assert abs(take.head_pose[0, 2] - 1.6) < 1e-9
    res = CliRunner().invoke(main, ["ego", "import-video", str(ares / "egocentric_video.mp4"), "--head-poses",
                                    str(tmp_path / "missing.npy"), "--out", str(tmp_path / "real")])
    assert res.exit_code != 0 and "missing.npy" in res.output


def test_import_trajectory_cli_writes_a_take_folder_without_video(tmp_path, shared_data):
    """`kinpoly ego import-trajectory`: the ARES SLAM trajectory alone (given scale) with its
    ground truth becomes a test take without image features, next to other takes; a ground
    truth of other length is a clear message."""
    from click.testing import CliRunner

    from kinpoly.cli import main

    ares = shared_data / "egoego_ares"
    res = CliRunner().invoke(main, ["ego", "import-trajectory", str(ares / "droid_slam_traj.npy"), "--out",
                                    str(tmp_path / "real"), "--scale", "1.97", "--name", "ares",
                                    "--gt", str(ares / "demo_ares_data.p")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["ego", "import-trajectory", str(shared_data / "aria_mps_trajectory" /
                                    "closed_loop_trajectory.csv"), "--out", str(tmp_path / "real"), "--name", "aria"])
    assert res.exit_code == 0, res.output
    ds = EgoDataset(tmp_path / "real", split="test")
    assert sorted(ds.names) == ["ares", "aria"]
    take = ds["ares"]
    assert take.num_frames == 140 and take.image_features is None and take.qpos.shape == (140, 76)
    assert take.meta["ground_truth"]["head_rmse_m"] < 0.1
    assert ds["aria"].num_frames == 342 and ds["aria"].qpos is None
    res = CliRunner().invoke(main, ["ego", "import-trajectory", str(ares / "droid_slam_traj.npy"), "--out",
                                    str(tmp_path / "x"), "--scale", "1.97", "--fps", "15",
                                    "--gt", str(ares / "demo_ares_data.p")])
    assert res.exit_code != 0 and "ground truth has 140 frames, the take droid_slam_traj 279" in res.output


def test_shipped_flow_encoder_beats_zero_velocity():
    from kinpoly.egocentric.flow import DEFAULT_ENCODER, load_encoder

    if not DEFAULT_ENCODER.is_file():
        pytest.skip("no shipped flow encoder")
    enc = load_encoder()
    assert enc.feature_dim == 512 and DEFAULT_ENCODER.stat().st_size < 5e6
    feats, vel = enc.encode(np.zeros((3, 2, enc.size, enc.size), np.float32))
    assert feats.shape == (3, 512) and vel.shape == (3, 6)
    m = json.loads((DEFAULT_ENCODER.parent / "metrics.json").read_text())["test"]
    assert m["linear_mps"] < m["zero_linear_mps"] and m["angular_radps"] < m["zero_angular_radps"]


def test_csv_and_npz_trajectories_resample(tmp_path):
    from kinpoly.egocentric.trajectory import resample

    t = np.arange(61) / 60.0
    pos = np.stack([t, 0 * t, 1.6 + 0 * t], 1)
    quat = _yaw_q(0.5 * t)
    rows = ["time,x,y,z,qw,qx,qy,qz"] + [",".join(map(str, [t[i], *pos[i], *quat[i]])) for i in range(len(t))]
    (tmp_path / "traj.csv").write_text("\n".join(rows) + "\n")
    np.savez(tmp_path / "traj.npz", time=t, position=pos, quaternion=quat)
    for f in ("traj.csv", "traj.npz"):
        tr = read_trajectory(tmp_path / f)
        assert tr.camera_axes == "head" and tr.metric and tr.times is not None
        r = resample(tr, np.arange(31) / 30.0)
        assert np.allclose(r.pos[:, 0], np.arange(31) / 30.0)
        assert np.allclose(rot.quat_to_matrix(r.quat), rot.quat_to_matrix(_yaw_q(0.5 * np.arange(31) / 30.0)), atol=1e-9)
        with pytest.raises(TrajError, match=f"{f}: trajectory covers"):
            resample(tr, np.arange(40) / 30.0)


def test_ego_yaml_matches_defaults():
    from kinpoly.config import load_config
    from kinpoly.egocentric.build import EgoConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "ego.yaml"
    assert load_config(EgoConfig, path) == EgoConfig()


def test_import_aria_adt_frames_with_timestamps(tmp_path, shared_data):
    """Real Aria glasses frames (ADT, 3 RGB frames) + the Aria trajectory CSV (Y-up world, 30 Hz
    timestamps): metric, Z-up head poses, one per frame."""
    import cv2
    import imageio.v2 as imageio

    from kinpoly.egocentric.video import import_video

    adt = shared_data / "aria_adt_sample"
    frames = sorted((adt / "frames").glob("rgb_*.jpg"))
    imgs = [cv2.resize(imageio.imread(f), (256, 256), interpolation=cv2.INTER_AREA) for f in frames]
    imgs = [np.ascontiguousarray(np.rot90(im, k=-1)) for im in imgs]  # sensor -> upright
    video = tmp_path / "adt.mp4"
    imageio.mimwrite(video, imgs, fps=30, macro_block_size=1, quality=9)
    rgb_t0 = int(frames[0].stem.split("_")[-1]) * 1e-9
    traj_t0 = 87551170910 * 1e-6
    res = import_video(video, adt / "aria_trajectory.csv", time_offset=rgb_t0 - traj_t0)
    take = res.take
    assert take.num_frames == 3 and res.report["scale"] == 1.0 and res.report["world_up"] == "y"
    R = rot.quat_to_matrix(take.head_pose[:, 3:])
    assert R[0, 2, 2] > 0.85  # head up is world up
    assert abs(take.head_pose[0, 2] - 1.6) < 1e-9
