"""Metric scale of monocular head trajectories (kinpoly.egocentric.scale): gait, flow, combined."""

from __future__ import annotations

import numpy as np
import pytest

from kinpoly import rotations as rot
from kinpoly.egocentric.features import head_local_velocities, slam_noise
from kinpoly.egocentric.scale import (FLOW_BIAS, REFERENCE_HEIGHT, WALK_RATIO, estimate_metric_scale, gait_scale,
                                      gait_windows)
from kinpoly.egocentric.take import EgoDataError
from kinpoly.egocentric.trajectory import _M, Trajectory, to_head_poses

FPS = 30.0


def _walker(seconds=10.0, cadence=110.0, height=REFERENCE_HEIGHT, bob=0.04, yaw_rate=0.15, surge=0.15,
            running=False):
    """Metric head poses (T, 7) of a walker whose step length follows the walk ratio: the head
    bobs ``bob`` peak-to-peak once per step, sways sideways once per stride, and the forward
    speed oscillates by ``surge`` m/s, slowest at the top (walking) or at the bottom
    (``running``), along a path turning at ``yaw_rate`` rad/s."""
    t = np.arange(int(seconds * FPS)) / FPS
    w = 2 * np.pi * cadence / 60.0
    speed = WALK_RATIO * height / REFERENCE_HEIGHT * cadence * cadence / 60.0
    fwd = speed + (surge if running else -surge) * np.cos(w * t)
    yaw = yaw_rate * t
    heading = np.stack([np.cos(yaw), np.sin(yaw)], 1)
    xy = np.cumsum(fwd[:, None] * heading, 0) / FPS
    xy += 0.02 * np.sin(w * t / 2)[:, None] * np.stack([-np.sin(yaw), np.cos(yaw)], 1)
    z = 1.6 + bob / 2 * np.cos(w * t)
    q = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], 1)
    return np.concatenate([xy, z[:, None], q], 1)


def _slam(head, rng, scale):
    """The head track as a monocular SLAM would give it: metres / ``scale``, a random rotation and
    translation, OpenCV camera axes, unknown gravity; levelled at unit scale as the importer does."""
    R = rot.rotvec_to_matrix(rng.normal(size=3))
    pos = (head[:, :3] @ R.T + rng.normal(0, 3, 3)) / scale
    cam = R @ rot.quat_to_matrix(head[:, 3:]) @ _M["opencv"].T
    traj = Trajectory(pos, rot.matrix_to_quat(cam), None, "opencv", "auto", False, "test")
    return to_head_poses(traj, 1.0).head_pose


@pytest.mark.parametrize("seed", range(6))
def test_gait_recovers_known_scale(seed):
    """Any scale (0.2..5), rotation, translation, cadence and turn rate: within 5%."""
    rng = np.random.default_rng(seed)
    scale = float(np.exp(rng.uniform(np.log(0.2), np.log(5.0))))
    head = _walker(cadence=rng.uniform(90, 130), yaw_rate=rng.uniform(-0.3, 0.3))
    g = gait_scale(_slam(head, rng, scale)[:, :3], FPS, REFERENCE_HEIGHT)
    assert g["scale"] is not None, g
    assert abs(g["scale"] / scale - 1) < 0.05
    assert g["walking_windows"] == g["windows"]


def test_gait_scale_with_slam_noise_and_body_height(rng):
    """SLAM drift and jitter (the build's defaults) cost little; a taller wearer's longer steps
    are recovered when the body height is given."""
    head = _walker(height=1.85, cadence=105)
    noisy = slam_noise(head, FPS, rng)
    g = gait_scale(_slam(noisy, rng, 2.0)[:, :3], FPS, 1.85)
    assert abs(g["scale"] / 2.0 - 1) < 0.1
    assert abs(g["cadence_spm"] - 105) < 3


def test_gait_scale_invariant_to_similarity_pose(rng):
    """Rotation and translation of the SLAM world change nothing; scaling it divides the scale."""
    head = _walker()
    a = gait_scale(_slam(head, np.random.default_rng(1), 1.5)[:, :3], FPS, 1.7)["scale"]
    b = gait_scale(_slam(head, np.random.default_rng(2), 1.5)[:, :3], FPS, 1.7)["scale"]
    c = gait_scale(_slam(head, np.random.default_rng(2), 3.0)[:, :3], FPS, 1.7)["scale"]
    assert abs(a / b - 1) < 1e-6 and abs(c / b - 2) < 1e-6


def test_non_walking_motion_is_not_gait(rng):
    """Running (slowest at the bottom), walking on the spot and standing still give no gait."""
    run = _walker(cadence=150, running=True)
    assert gait_windows(run[:, :3], FPS)["walking"].sum() == 0
    on_spot = _walker(cadence=110, yaw_rate=0.0)
    on_spot[:, :2] = 0.01 * rng.normal(size=(len(on_spot), 2))
    assert gait_scale(on_spot[:, :3], FPS, 1.7)["scale"] is None
    g = gait_scale(np.tile([0.0, 0.0, 1.6], (90, 1)), FPS, 1.7)
    assert g["scale"] is None and "no walking" in g["reason"]
    assert "shorter" in gait_scale(np.zeros((20, 3)), FPS, 1.7)["reason"]


def test_static_trajectory_asks_for_scale():
    head = np.tile([0.0, 0.0, 1.6, 1.0, 0.0, 0.0, 0.0], (120, 1))
    with pytest.raises(EgoDataError, match="no walking.*flow: no flow encoder.*pass --scale"):
        estimate_metric_scale(head, FPS)
    with pytest.raises(EgoDataError, match="gait: no walking.*flow: the trajectory does not move"):
        estimate_metric_scale(head, FPS, np.zeros((120, 6)))


def test_flow_alone_needs_motion_and_combination_weights(rng):
    """Flow only (no walking): the speed ratio over its bias; a nearly still encoder is
    unusable. Both: the inverse-variance weighted log-mean, between the two and closer to the
    flow scale (the smaller log-uncertainty)."""
    head = _walker()
    unit = _slam(head, rng, 2.0)
    pred = head_local_velocities(head, FPS)  # metric head-frame velocity, as a perfect encoder
    # an encoder reading 0.5 x FLOW_BIAS of the true speed: de-biased, a flow scale of 1.0
    scale, rep = estimate_metric_scale(unit, FPS, 0.5 * FLOW_BIAS * pred)
    assert rep["used"] == ["gait", "flow"]
    g, f = rep["gait"]["scale"], rep["flow"]["scale"]
    assert abs(g / 2.0 - 1) < 0.05 and abs(f / 1.0 - 1) < 0.05
    assert f < scale < g and np.log(scale / f) < np.log(g / scale)
    still = np.tile([0.0, 0.0, 1.6, 1.0, 0.0, 0.0, 0.0], (120, 1))
    still[:, 0] = np.linspace(0, 1, 120)  # slides without a gait
    scale, rep = estimate_metric_scale(still, FPS, np.tile([0.5, 0, 0, 0, 0, 0], (120, 1)))
    # 0.5 m/s over 1/119 unit/frame, de-biased
    assert rep["used"] == ["flow"] and abs(scale - 0.5 / (FPS / 119) / FLOW_BIAS) < 1e-6
    with pytest.raises(EgoDataError, match="nearly still"):
        estimate_metric_scale(still, FPS, np.tile([0.05, 0, 0, 0, 0, 0], (120, 1)))


def test_ares_import_reports_scale_components(shared_data):
    """The importer's call site: without --scale the report names each component; the ARES
    sample's head bobs without progressing (not walking), so the flow encoder alone decides."""
    from kinpoly.egocentric.flow import DEFAULT_ENCODER
    from kinpoly.egocentric.video import import_video

    if not DEFAULT_ENCODER.is_file():
        pytest.skip("no flow encoder checkpoint")
    ares = shared_data / "egoego_ares"
    res = import_video(ares / "egocentric_video.mp4", ares / "droid_slam_traj.npy")
    est = res.report["scale_estimate"]
    assert est["gait"]["scale"] is None and "no walking" in est["gait"]["reason"]
    assert est["used"] == ["flow"] and res.report["scale"] == est["scale"] == est["flow"]["scale"]
    assert res.report["scale_source"] == "estimated (flow)"
