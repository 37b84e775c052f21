"""Rotation helpers: conversions, Euler sequences, slerp, resampling (property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from kinpoly import rotations as rot

angles = st.lists(st.floats(-3.1, 3.1), min_size=3, max_size=3)


@settings(max_examples=60, deadline=None)
@given(angles, st.sampled_from(["zyx", "zxy", "xyz"]))
def test_euler_matches_scipy_and_round_trips(a, seq):
    a = np.array(a)
    m = rot.euler_to_matrix(a, seq)
    np.testing.assert_allclose(m, Rotation.from_euler(seq.upper(), a).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rot.euler_to_matrix(rot.matrix_to_euler(m, seq), seq), m, atol=1e-9)
    alt = np.array([a[0] + np.pi, np.pi - a[1], a[2] + np.pi])  # the other Euler solution
    np.testing.assert_allclose(rot.euler_to_matrix(alt, seq), m, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1))
def test_quaternion_round_trip_is_wxyz(q):
    q = np.array(q) / np.linalg.norm(q)
    m = rot.quat_to_matrix(q)
    np.testing.assert_allclose(m, Rotation.from_quat(q[[1, 2, 3, 0]]).as_matrix(), atol=1e-12)
    back = rot.matrix_to_quat(m)
    assert back[0] >= 0
    np.testing.assert_allclose(np.abs(back @ q), 1.0, atol=1e-9)


def test_slerp_endpoints_midpoint_and_short_way():
    q0 = np.array([1.0, 0, 0, 0])
    q1 = rot.matrix_to_quat(rot.euler_to_matrix([np.pi / 2, 0, 0], "zyx"))
    np.testing.assert_allclose(rot.quat_slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(np.abs(rot.quat_slerp(q0, q1, 1.0) @ q1), 1.0, atol=1e-12)
    mid = rot.quat_to_matrix(rot.quat_slerp(q0, -q1, 0.5))  # -q1 is the same rotation
    np.testing.assert_allclose(mid, rot.euler_to_matrix([np.pi / 4, 0, 0], "zyx"), atol=1e-9)


def test_resampling_120_to_30_picks_every_fourth_frame():
    x = np.arange(121.0)[:, None]
    np.testing.assert_allclose(rot.resample_linear(x, 120, 30)[:, 0], np.arange(0, 121, 4))
    i0, i1, frac = rot.resample_indices(5, 20, 30)  # upsampling interpolates
    assert len(i0) == 7 and frac[1] == pytest.approx(2 / 3)


def test_rotation_between_and_velocities():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    R = rot.rotation_between(a, b)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, a / np.linalg.norm(a, axis=1, keepdims=True)),
                               b / np.linalg.norm(b, axis=1, keepdims=True), atol=1e-9)
    opposite = rot.rotation_between(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]))
    np.testing.assert_allclose(opposite @ [1.0, 0, 0], [-1.0, 0, 0], atol=1e-9)
    spin = rot.euler_to_matrix(np.stack([np.linspace(0, 1, 31), np.zeros(31), np.zeros(31)], 1), "zyx")
    np.testing.assert_allclose(rot.angular_velocity(spin, 30.0)[:, 2], 1.0, atol=1e-9)  # 1 rad/s about z
    np.testing.assert_allclose(rot.heading_angle(spin), np.linspace(0, 1, 31), atol=1e-12)
