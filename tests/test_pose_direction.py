"""World-to-camera poses read as camera-to-world: the import tells from the motion when a file
reads better inverted (the head walks backwards as read, forwards inverted; an Aria head that is
only upright inverted) and says nothing on static, in-place or correctly read trajectories."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from kinpoly import rotations as rot
from kinpoly.egocentric.take import EgoDataError
from kinpoly.egocentric.trajectory import _M, inverse_poses, pose_direction, read_trajectory
from kinpoly.egocentric.video import import_trajectory

ASSETS = Path(__file__).resolve().parents[1] / "kinpoly" / "assets"
LOGGER = "kinpoly.egocentric.video"


def _walk_take(T: int | None = None):
    """Times, eye positions and R_world_head of the bundled synthetic walk (Z up, m)."""
    with np.load(ASSETS / "takes" / "takes" / "walk_02_01.npz", allow_pickle=True) as z:
        hp = np.asarray(z["head_pose"], np.float64)[:T]
    return np.arange(len(hp)) / 30.0, hp[:, :3], rot.quat_to_matrix(hp[:, 3:])


def _camera_poses(t, pos, R_head, world: str):
    """Camera-to-world (R, t) of an OpenCV camera on the head in a SLAM world (the first
    camera's frame) or a COLMAP-like one (arbitrary rotation and origin)."""
    Rc = R_head @ _M["opencv"].T
    if world == "slam":
        R0, p0 = Rc[0], pos[0]
        return R0.T @ Rc, (pos - p0) @ R0
    W = rot.rotvec_to_matrix(np.array([0.7, -1.9, 0.4]))
    return W @ Rc, pos @ W.T + np.array([2.0, -1.5, 4.0])


def _invert(R, p):
    Rt = np.swapaxes(R, -1, -2)
    return Rt, -(Rt @ p[..., None])[..., 0]


def _write_tum(path, t, R, p) -> Path:
    q = rot.matrix_to_quat(R)
    np.savetxt(path, np.concatenate([t[:, None], p, q[:, [1, 2, 3, 0]]], 1), fmt="%.9f")
    return path


def _write_matrices(path, R, p) -> Path:
    M = np.tile(np.eye(4), (len(R), 1, 1))
    M[:, :3, :3], M[:, :3, 3] = R, p
    np.save(path, M)
    return path


def _import(path, caplog, **kw):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        res = import_trajectory(path, scale=1.0, **kw)
    return res, [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_inverted_walk_warns_and_the_flag_fixes_it(tmp_path, caplog):
    """A synthetic walk stored world-to-camera (TUM text, SLAM world; (T, 4, 4) npy, COLMAP-like
    world) warns naming the file and --world-to-camera; the same file with the flag, or the
    camera-to-world file, imports silently and gives the same take."""
    t, pos, R_head = _walk_take()
    for world, write in (("slam", lambda n, R, p: _write_tum(tmp_path / f"{n}.txt", t, R, p)),
                         ("colmap", lambda n, R, p: _write_matrices(tmp_path / f"{n}.npy", R, p))):
        R, p = _camera_poses(t, pos, R_head, world)
        good = write(f"c2w_{world}", R, p)
        bad = write(f"w2c_{world}", *_invert(R, p))
        res, msgs = _import(bad, caplog)
        assert len(msgs) == 1 and str(bad) in msgs[0] and "pass --world-to-camera" in msgs[0], (world, msgs)
        assert res.report["pose_direction"]["verdict"] == "inverted"
        ref, msgs = _import(good, caplog)
        assert not msgs, (world, msgs)
        assert ref.report["pose_direction"]["verdict"] == "as read"
        fixed, msgs = _import(bad, caplog, world_to_camera=True)
        assert not msgs, (world, msgs)
        np.testing.assert_allclose(fixed.take.head_pose, ref.take.head_pose, atol=1e-5)
        # the flag on a camera-to-world file is the same mistake the other way round
        _, msgs = _import(good, caplog, world_to_camera=True)
        assert len(msgs) == 1 and "drop --world-to-camera" in msgs[0], (world, msgs)


def test_static_and_short_heads_say_nothing(tmp_path, caplog):
    """A head standing still (jitter, looking around) or a walk too short to judge: no verdict,
    read either way."""
    rng = np.random.default_rng(0)
    T = 300
    t = np.arange(T) / 30.0
    yaw = 0.8 * np.sin(0.7 * t) + 0.02 * rng.normal(size=T)
    R = rot.yaw_matrix(yaw) @ _M["opencv"].T
    p = np.array([0.3, -0.2, 1.6]) + rng.normal(scale=0.003, size=(T, 3))
    st, sp, sR = _walk_take(45)  # 1.5 s of walking
    sR, sp = _camera_poses(st, sp, sR, "slam")
    for name, (tt, RR, pp) in {"static": (t, R, p), "short": (st, sR, sp)}.items():
        for direction, (R2, p2) in (("c2w", (RR, pp)), ("w2c", _invert(RR, pp))):
            res, msgs = _import(_write_tum(tmp_path / f"{name}_{direction}.txt", tt, R2, p2), caplog)
            assert not msgs, (name, direction, msgs)
            assert res.report["pose_direction"]["verdict"] is None, (name, direction)


def _write_aria(path, traj) -> Path:
    """An Aria MPS-style CSV (the columns the reader needs) of ``traj``'s poses."""
    header = ",".join(["tracking_timestamp_us"] + [f"t{c}_world_device" for c in "xyz"]
                      + [f"q{c}_world_device" for c in "xyzw"])
    us = np.round(traj.times * 1e6).astype(np.int64)
    rows = [header] + [f"{u},{a[0]:.9f},{a[1]:.9f},{a[2]:.9f},{b[1]:.9f},{b[2]:.9f},{b[3]:.9f},{b[0]:.9f}"
                       for u, a, b in zip(us, traj.pos, traj.quat)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_inverted_headset_trajectory_is_an_error_naming_the_flag(tmp_path, caplog):
    """The bundled Aria MPS walk (Z-up world) inverted: its head is upside down as read (mean up
    axis 136 degrees from +Z, 5 inverted), which the import rejects, now naming --world-to-camera;
    with the flag it imports like the original, which imports silently."""
    asset = ASSETS / "headset" / "aria_mps_closed_loop_trajectory.csv"
    ref, msgs = _import(asset, caplog)
    assert not msgs and ref.report["pose_direction"]["verdict"] is None  # curved walk, head turned: no verdict
    bad = _write_aria(tmp_path / "w2c.csv", inverse_poses(read_trajectory(asset)))
    with pytest.raises(EgoDataError, match=r"w2c\.csv: .*pass --world-to-camera"):
        import_trajectory(bad, scale=1.0)
    fixed, msgs = _import(bad, caplog, world_to_camera=True)
    assert not msgs
    np.testing.assert_allclose(fixed.take.head_pose, ref.take.head_pose, atol=1e-5)


def test_real_trajectories_read_correctly_get_no_verdict_against_them(shared_data):
    """Real files as their formats define them: never judged inverted; the Aria MPS walk read
    inverted is (its head is upside down), the in-place ARES and the 0.17 s ADT clip are not judged."""
    files = {"aria_mps_trajectory/closed_loop_trajectory.csv": "inverted-tilt",
             "egoego_ares/droid_slam_traj.npy": None, "aria_adt_sample/aria_trajectory.csv": None}
    for f, inverted in files.items():
        tr = read_trajectory(shared_data / f)
        assert pose_direction(tr)["verdict"] in (None, "as read"), f
        assert pose_direction(inverse_poses(tr))["verdict"] == inverted, f
