"""Humanoid model: structure, forward kinematics against MuJoCo, standing, scenes."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinpoly import rotations as rot
from kinpoly.humanoid.kinematics import forward_kinematics, head_pose
from kinpoly.humanoid.mjcf import ModelOptions, build_model, build_xml, rest_qpos
from kinpoly.humanoid.scene import OBJECT_KINDS, SceneObject
from kinpoly.humanoid.skeleton import (BODY_NAMES, BODY_TO_SMPL, PARENTS, SMPL_NAMES,
                                       SMPL_TO_BODY, BodyShape, gain_arrays, joint_names)


def test_structure_matches_spec():
    m = build_model()
    assert (m.nq, m.nv, m.nu) == (76, 75, 69)
    assert m.opt.timestep == pytest.approx(1 / 450)
    names = [m.body(i).name for i in range(1, 25)]
    assert names == list(BODY_NAMES)
    assert [m.joint(i).name for i in range(1, 70)] == joint_names()
    assert sorted(BODY_NAMES) == sorted(SMPL_NAMES)
    assert [BODY_NAMES[i] for i in BODY_TO_SMPL] == list(SMPL_NAMES)
    assert [SMPL_NAMES[i] for i in SMPL_TO_BODY] == list(BODY_NAMES)
    for b in range(1, 24):
        assert PARENTS[b] < b  # depth-first: parents first
    kp, kd, lim = gain_arrays()
    assert m.actuator_gainprm[:, 0] == pytest.approx(kp)
    assert m.actuator_forcerange[:, 1] == pytest.approx(lim)
    hip = joint_names().index("L_Hip_z")
    assert (kp[hip], kd[hip], lim[hip]) == (500, 50, 200)


@pytest.mark.parametrize("height,mass", [(1.75, 70.0), (1.5, 50.0), (1.95, 95.0)])
def test_body_shape_scales(height, mass):
    shape = BodyShape(height=height, mass=mass)
    m = build_model(shape)
    assert m.body_subtreemass[1] == pytest.approx(mass, rel=1e-4)
    d = mujoco.MjData(m)
    d.qpos[:] = rest_qpos(shape)
    mujoco.mj_forward(m, d)
    top = max(d.geom_xpos[g][2] + m.geom_size[g][0] for g in range(m.ngeom) if m.geom(g).name == "Head_geom")
    assert top == pytest.approx(height, abs=0.03 * height)
    lowest = min(d.geom_xpos[g][2] - m.geom_size[g][2] for g in range(m.ngeom) if m.geom(g).name.endswith("Ankle_geom"))
    assert lowest == pytest.approx(0.0, abs=1e-6)  # soles on the floor at rest


def test_bad_body_shape_is_rejected():
    with pytest.raises(ValueError, match="height"):
        BodyShape(height=4.0)
    with pytest.raises(ValueError, match="NaN"):
        BodyShape(offsets=np.full((24, 3), np.nan))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_forward_kinematics_matches_mujoco(seed):
    rng = np.random.default_rng(seed)
    m = build_model()
    d = mujoco.MjData(m)
    q = rest_qpos()
    q[:3] = rng.normal(size=3)
    q[3:7] = rng.normal(size=4)
    q[3:7] /= np.linalg.norm(q[3:7])
    q[7:] = rng.uniform(-np.pi, np.pi, 69)
    d.qpos[:] = q
    mujoco.mj_kinematics(m, d)
    states = forward_kinematics(q[None])
    np.testing.assert_allclose(states.positions[0], d.xpos[1:25], atol=1e-9)
    np.testing.assert_allclose(states.rotations[0], d.xmat[1:25].reshape(-1, 3, 3), atol=1e-9)
    eye = d.site_xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "eyes")]
    np.testing.assert_allclose(head_pose(states)[0, :3], eye, atol=1e-9)


def test_stands_five_seconds_under_pd_at_rest():
    m = build_model()
    d = mujoco.MjData(m)
    d.qpos[:] = rest_qpos()
    d.ctrl[:] = 0.0  # position servos hold every hinge at the rest angle
    mujoco.mj_forward(m, d)
    z0 = d.qpos[2]
    for _ in range(150):  # 5 s of 30 Hz control, 15 physics steps each
        mujoco.mj_step(m, d, nstep=15)
        assert np.isfinite(d.qpos).all()
    assert d.qpos[2] == pytest.approx(z0, abs=0.02)  # pelvis did not drop: still standing
    assert np.linalg.norm(d.qpos[:2]) < 0.1
    up = rot.quat_to_matrix(d.qpos[3:7])[:, 2]
    assert up[2] > np.cos(np.radians(5))


def test_every_object_kind_loads_and_supports_a_box():
    objs = [SceneObject(kind=k, name=f"{k}_{i}", pos=(2.0 * i + 2, 0, 0)) for i, k in enumerate(OBJECT_KINDS)]
    m = build_model(objects=objs, opts=ModelOptions(room=True))
    assert m.nq == 76 + 7  # only the box is free
    d = mujoco.MjData(m)
    d.qpos[:76] = rest_qpos()
    box = [o for o in objs if o.kind == "box"][0]
    d.qpos[76:79] = np.array(box.pos) + [0, 0, 0.5]
    d.qpos[79] = 1.0
    mujoco.mj_forward(m, d)
    for _ in range(90):
        mujoco.mj_step(m, d, nstep=15)
    assert d.qpos[78] == pytest.approx(box.dims["side"] / 2, abs=5e-3)  # the box rests on the floor


def test_scene_object_errors():
    with pytest.raises(ValueError, match="unknown object kind"):
        SceneObject(kind="sofa")
    with pytest.raises(ValueError, match="unknown size keys"):
        SceneObject(kind="chair", size={"radius": 1})


def test_xml_is_deterministic():
    assert build_xml() == build_xml()


def _fake_smpl_model(path, scale=1.0):
    """A tiny SMPL-format model: a box mesh and a regressor that puts the 24 joints at the
    default body's rest joints (in SMPL axes: Y up, facing +Z, +X left)."""
    from kinpoly.humanoid.skeleton import BODY_TO_SMPL

    shape = BodyShape(height=1.7)
    rest = shape.rest_positions() + [0, 0, shape.pelvis_height()]
    to_smpl = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])  # ours -> SMPL
    joints_smpl = (rest @ to_smpl.T)[list(BODY_TO_SMPL)]
    corners = np.array([[x, y, z] for x in (-0.2, 0.2) for y in (0.0, 1.7) for z in (-0.1, 0.1)])
    v = np.concatenate([joints_smpl, corners])  # joints are vertices; the regressor picks them
    reg = np.zeros((24, len(v)))
    reg[np.arange(24), np.arange(24)] = 1.0
    shapedirs = np.zeros(v.shape + (2,))
    shapedirs[..., 0] = v * (scale - 1.0)  # beta 0 scales the whole body
    faces = np.array([[24, 26, 25], [25, 26, 27], [28, 29, 30], [29, 31, 30], [24, 25, 28], [25, 29, 28],
                      [26, 30, 27], [27, 30, 31], [24, 28, 26], [26, 28, 30], [25, 27, 29], [27, 31, 29]])
    np.savez(path, v_template=v, shapedirs=shapedirs, J_regressor=reg, f=faces)
    return shape


def test_body_from_smpl_model_file(tmp_path):
    from kinpoly.humanoid.smpl_body import body_from_smpl

    ref = _fake_smpl_model(tmp_path / "SMPL_FAKE.npz", scale=1.1)
    body = body_from_smpl(tmp_path / "SMPL_FAKE.npz")
    np.testing.assert_allclose(body.offsets[1:], ref.offsets[1:], atol=1e-9)
    assert body.height == pytest.approx(1.7)
    assert body.mass == pytest.approx(0.4 * 1.7 * 0.2 * 985.0)  # the box's volume x density
    tall = body_from_smpl(tmp_path / "SMPL_FAKE.npz", betas=[1.0])
    np.testing.assert_allclose(tall.offsets[1:], ref.offsets[1:] * 1.1, atol=1e-9)
    assert build_model(tall).nq == 76
    with pytest.raises(ValueError, match="not an SMPL model"):
        np.savez(tmp_path / "bad.npz", x=np.zeros(3))
        body_from_smpl(tmp_path / "bad.npz")
