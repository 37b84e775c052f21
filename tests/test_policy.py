"""Kinematic policy: torch kinematics, state, training step, resume, estimation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kinpoly.demo import sample_clips
from kinpoly.egocentric.features import head_velocities
from kinpoly.egocentric.take import EgoTake
from kinpoly.humanoid.kinematics import forward_kinematics
from kinpoly.humanoid.skeleton import BodyShape
from kinpoly.policy.data import take_tensors
from kinpoly.policy.estimate import estimate_kinematic, load_policy
from kinpoly.policy.model import STATE_DIM, Observation, PolicyConfig, integrate, policy_state
from kinpoly.policy.supervised import SupervisedConfig, SupervisedTrainer
from kinpoly.policy.torch_kinematics import TorchFK, matrix_to_quat, quat_to_matrix


def _takes():
    out = []
    for clip in sample_clips():
        head = clip.head_pose()
        out.append(EgoTake(name=clip.name, head_pose=head, head_vels=head_velocities(head, clip.fps),
                           action=clip.action, qpos=clip.qpos, meta={"body": clip.body.to_dict()}))
    return [take_tensors(t) for t in out]


def test_torch_fk_matches_numpy():
    rng = np.random.default_rng(0)
    q = np.zeros((50, 76))
    q[:, :3] = rng.normal(size=(50, 3))
    quat = rng.normal(size=(50, 4))
    q[:, 3:7] = quat / np.linalg.norm(quat, axis=1, keepdims=True)
    q[:, 7:] = rng.uniform(-3, 3, (50, 69))
    shape = BodyShape(height=1.6)
    ref = forward_kinematics(q, shape)
    pos, R = TorchFK(shape).double()(torch.as_tensor(q), torch.as_tensor(shape.offsets))
    np.testing.assert_allclose(pos.numpy(), ref.positions, atol=1e-9)
    np.testing.assert_allclose(R.numpy(), ref.rotations, atol=1e-9)
    np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(R)).numpy(), ref.rotations, atol=1e-6)


def test_zero_action_keeps_the_pose_and_state_shape():
    takes = _takes()
    t = takes[0]
    cfg = PolicyConfig(hidden=32, mlp=[32])
    q = t.qpos[:4]
    same = integrate(q, torch.zeros(4, 82), 1 / 30, cfg)
    torch.testing.assert_close(same[:, 7:], q[:, 7:])
    torch.testing.assert_close(quat_to_matrix(same[:, 3:7]), quat_to_matrix(q[:, 3:7]), atol=1e-5, rtol=0)
    obs = Observation(head_pose=t.head_pose[:4], head_vels=t.head_vels[:4], obj=t.obj[:4],
                      action=t.action.expand(4, -1))
    s = policy_state(q, obs, TorchFK(), t.offsets.expand(4, -1, -1), t.eye.expand(4, -1))
    assert s.shape == (4, STATE_DIM)
    assert s[:, 76:79].abs().max() < 1e-4  # the true pose sees its own head: no position error


def test_foot_velocity_loss_sees_sliding_feet_not_offsets():
    """The foot-velocity loss is zero for the truth shifted in space (same motion) and counts
    feet that slide; it enters the total only with its weight."""
    from kinpoly.policy.supervised import LossWeights, losses, sample_windows

    batch = sample_windows(_takes(), 2, 12, np.random.default_rng(0))
    gt, fk = batch["qpos"], TorchFK()
    shifted = gt.clone()
    shifted[..., :2] += 0.3
    out = losses(shifted, gt, batch, fk, 1 / 30, LossWeights())
    assert out["foot_velocity"] < 1e-8 and out["root_pos"] > 0.01
    sliding = gt.clone()
    sliding[..., 0] += torch.linspace(0, 0.5, gt.shape[1])  # the whole body glides 0.5 m
    slid = losses(sliding, gt, batch, fk, 1 / 30, LossWeights())
    weighted = losses(sliding, gt, batch, fk, 1 / 30, LossWeights(foot_velocity=2.0))
    assert slid["foot_velocity"] > 1.0  # (0.5 m / 11 frames * 30 fps)^2 ~ 1.9
    torch.testing.assert_close(weighted["total"] - slid["total"], 2.0 * slid["foot_velocity"])


def test_foot_height_loss_sees_lifted_feet_not_sliding():
    """The foot-height loss counts feet above (or below) the true ones, not a horizontal glide,
    and enters the total only with its weight."""
    from kinpoly.policy.supervised import LossWeights, losses, sample_windows

    batch = sample_windows(_takes(), 2, 12, np.random.default_rng(0))
    gt, fk = batch["qpos"], TorchFK()
    glide = gt.clone()
    glide[..., 0] += 0.3
    assert losses(glide, gt, batch, fk, 1 / 30, LossWeights())["foot_height"] < 1e-10
    lifted = gt.clone()
    lifted[..., 2] += 0.1  # the whole body 10 cm up: every foot 10 cm too high
    out = losses(lifted, gt, batch, fk, 1 / 30, LossWeights())
    torch.testing.assert_close(out["foot_height"], torch.tensor(0.01), rtol=1e-4, atol=0)
    weighted = losses(lifted, gt, batch, fk, 1 / 30, LossWeights(foot_height=3.0))
    torch.testing.assert_close(weighted["total"] - out["total"], 3.0 * out["foot_height"])


def test_acceleration_loss_sees_jitter_not_steady_motion():
    """The acceleration loss is zero for the truth moved at a constant velocity (a glide has no
    acceleration) and counts a root that jitters 1 cm every other frame: each body's second
    difference is 2 cm, i.e. 0.02 * 900 = 18 m/s^2, squared 324; it enters the total only with
    its weight."""
    from kinpoly.policy.supervised import LossWeights, losses, sample_windows

    batch = sample_windows(_takes(), 2, 12, np.random.default_rng(0))
    gt, fk = batch["qpos"], TorchFK()
    glide = gt.clone()
    glide[..., 0] += torch.linspace(0, 0.5, gt.shape[1])
    assert losses(glide, gt, batch, fk, 1 / 30, LossWeights())["acceleration"] < 1e-6
    jitter = gt.clone()
    jitter[:, 1::2, 0] += 0.01
    out = losses(jitter, gt, batch, fk, 1 / 30, LossWeights())
    torch.testing.assert_close(out["acceleration"], torch.tensor(324.0), rtol=1e-3, atol=0)
    weighted = losses(jitter, gt, batch, fk, 1 / 30, LossWeights(acceleration=1e-3))
    torch.testing.assert_close(weighted["total"] - out["total"], 1e-3 * out["acceleration"])


def test_leg_swing_loss_sees_shrunken_swings_not_phase():
    """The leg-swing loss is (near) zero for legs swinging as far as the truth's in another
    phase and counts legs whose swing is halved; other hinges do not count; it enters the total
    only with its weight; on two-frame pairs (the dynamics stage) it is zero."""
    from kinpoly.policy.supervised import LEG_HINGES, LossWeights, losses

    T = 40
    t = torch.arange(T, dtype=torch.float32)[:, None] / 30
    pose = _takes()[0].qpos[:1]
    batch = {"offsets": _takes()[0].offsets[None], "obj_world": torch.zeros(1, T, 8)}
    fk = TorchFK()

    def legs(amplitude, delay=0.0):  # (1, T, 76): the pose, legs swinging at 1.5 Hz
        q = pose.repeat(T, 1)
        q[:, LEG_HINGES] += amplitude * torch.sin(2 * np.pi * 1.5 * (t - delay))
        return q[None]

    gt = legs(0.4)
    late = losses(legs(0.4, delay=1 / 3), gt, batch, fk, 1 / 30, LossWeights())
    assert late["leg_swing"] < 1e-3 and late["pose"] > 0.1  # the phase costs pose, not swing
    shrunk = legs(0.2)
    out = losses(shrunk, gt, batch, fk, 1 / 30, LossWeights())
    half = float((0.2 * torch.sin(2 * np.pi * 1.5 * t)).std())  # each of the 24 hinges swings this much less
    torch.testing.assert_close(out["leg_swing"], torch.tensor(24 * half ** 2), rtol=1e-3, atol=0)
    weighted = losses(shrunk, gt, batch, fk, 1 / 30, LossWeights(leg_swing=5.0))
    torch.testing.assert_close(weighted["total"] - out["total"], 5.0 * out["leg_swing"])
    others = gt.clone()
    rest = [i for i in range(7, 76) if i not in LEG_HINGES]
    others[..., rest] += 0.3 * torch.sin(2 * np.pi * t)
    assert losses(others, gt, batch, fk, 1 / 30, LossWeights())["leg_swing"] < 1e-8
    pairs = {**batch, "obj_world": batch["obj_world"][:, :2]}
    assert losses(shrunk[:, :2], gt[:, :2], pairs, fk, 1 / 30, LossWeights(leg_swing=5.0))["leg_swing"] == 0


def _small_config(iterations):
    return SupervisedConfig(iterations=iterations, batch=4, window=12, lr=1e-3, checkpoint_every=2, threads=1,
                            policy=PolicyConfig(hidden=64, mlp=[64], context_frames=6))


def test_training_fits_a_batch(tmp_path, monkeypatch):
    import kinpoly.policy.supervised as sup

    takes = _takes()
    fixed = sup.sample_windows(takes, 4, 12, np.random.default_rng(0))
    monkeypatch.setattr(sup, "sample_windows", lambda *a, **k: fixed)
    curves = SupervisedTrainer(_small_config(20), takes, tmp_path / "run").train(progress=False)
    assert curves[-1]["total"] < curves[0]["total"] / 3
    assert curves[-1]["context"] < curves[0]["context"] / 3


def test_training_resumes_exactly_and_estimates(tmp_path):
    takes = _takes()
    full = SupervisedTrainer(_small_config(4), takes, tmp_path / "a").train(progress=False)
    SupervisedTrainer(_small_config(2), takes, tmp_path / "b").train(progress=False)  # "killed" at 2
    resumed = SupervisedTrainer(_small_config(4), takes, tmp_path / "b").train(progress=False)
    assert [r["total"] for r in resumed] == pytest.approx([r["total"] for r in full], rel=1e-5)
    policy, context = load_policy(tmp_path / "a" / "checkpoint.pt")
    clip = estimate_kinematic(policy, context, takes[0])
    assert clip.num_frames == takes[0].num_frames and np.isfinite(clip.qpos).all()


def test_training_starts_from_another_checkpoints_weights(tmp_path):
    """``init``: a new stage starts from an exported policy's weights (fresh optimiser and
    curves) and refuses a checkpoint of another architecture with a message naming the field."""
    from kinpoly.policy.estimate import export_policy

    takes = _takes()
    SupervisedTrainer(_small_config(2), takes, tmp_path / "a").train(progress=False)
    export_policy(tmp_path / "a" / "checkpoint.pt", tmp_path / "shipped.pt", half=False)
    cfg = _small_config(1)
    cfg.init = str(tmp_path / "shipped.pt")
    stage = SupervisedTrainer(cfg, takes, tmp_path / "b")
    before, _ = load_policy(tmp_path / "shipped.pt")
    for k, v in before.state_dict().items():
        torch.testing.assert_close(stage.policy.state_dict()[k], v)
    assert stage.iteration == 0 and stage.curves == []
    cfg.policy = PolicyConfig(hidden=32, mlp=[64], context_frames=6)
    with pytest.raises(ValueError, match="hidden"):
        SupervisedTrainer(cfg, takes, tmp_path / "c")
    cfg.init = str(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError):
        SupervisedTrainer(cfg, takes, tmp_path / "d")


def test_head_only_baseline_recovers_training_poses():
    from kinpoly.evaluation.metrics import mpjpe
    from kinpoly.policy.baseline import HeadOnlyBaseline

    clips = sample_clips()
    takes = []
    for clip in clips:
        head = clip.head_pose()
        takes.append(EgoTake(name=clip.name, head_pose=head, head_vels=head_velocities(head, clip.fps),
                             qpos=clip.qpos, meta={"body": clip.body.to_dict()}))
    base = HeadOnlyBaseline().fit(takes)
    pred = base.predict(takes[0])
    gt = clips[0].body_states().positions
    assert mpjpe(pred.body_states().positions, gt, root_relative=False) < 5.0  # mm: its own frames
    np.testing.assert_allclose(pred.head_pose()[:, :3], takes[0].head_pose[:, :3], atol=1e-6)


def test_dropping_image_features_keeps_every_other_weight(tmp_path):
    """A head-trajectory-only policy made from one that reads image features acts as that
    policy does with its features at their training mean; a stage with
    ``use_image_features=false`` starts from it."""
    from kinpoly.policy.estimate import export_policy
    from kinpoly.policy.model import ContextEncoder, KinematicPolicy, without_image_features

    torch.manual_seed(0)
    cfg = PolicyConfig(hidden=16, mlp=[16], context_frames=4, feature_dim=8)
    policy, context = KinematicPolicy(cfg), ContextEncoder(cfg)
    for p in list(policy.parameters()) + list(context.parameters()):
        torch.nn.init.normal_(p, std=0.3)
    policy.state_mean.normal_()
    slim, slim_context = without_image_features(policy, context)
    assert slim.cfg.feature_dim == 0 and policy.cfg.feature_dim == 8
    state = torch.randn(3, STATE_DIM)
    full = torch.cat([state, policy.state_mean[-8:].expand(3, -1)], dim=1)
    h = torch.randn(3, 16)
    for a, b in zip(policy.step(full, h), slim.step(state, h)):
        torch.testing.assert_close(a, b)
    x = [torch.randn(2, 4, n) for n in (7, 6, 8, 5)]
    with torch.no_grad():
        torch.testing.assert_close(context(*x, feature=torch.zeros(2, 4, 8)), slim_context(*x))
        assert not torch.allclose(context(*x, feature=torch.ones(2, 4, 8)), slim_context(*x))

    takes = _takes()  # no image features
    torch.save({"policy": policy.state_dict(), "context": context.state_dict(),
                "policy_config": cfg.__dict__ | {"mlp": list(cfg.mlp)}}, tmp_path / "with_features.pt")
    export_policy(tmp_path / "with_features.pt", tmp_path / "shipped.pt", half=False)
    run = SupervisedConfig(iterations=1, batch=2, window=8, threads=1, init=str(tmp_path / "shipped.pt"),
                           policy=PolicyConfig(hidden=16, mlp=[16], context_frames=4))
    stage = SupervisedTrainer(run, takes, tmp_path / "head_only")
    for k, v in slim.state_dict().items():
        torch.testing.assert_close(stage.policy.state_dict()[k], v)


def test_time_warped_windows_play_the_motion_at_another_speed():
    """``time_warp``: each window is its take played at one speed in [1/(1+W), 1+W]: the root
    and head advance that much faster per frame, the head velocities are scaled by it,
    quaternions stay unit; W = 0 draws the plain windows; image features are refused."""
    from kinpoly.policy.data import sample_windows

    takes = _takes()
    plain = sample_windows(takes, 6, 20, np.random.default_rng(3))
    again = sample_windows(takes, 6, 20, np.random.default_rng(3), 0.0)
    for k in ("qpos", "head_pose", "head_vels"):
        torch.testing.assert_close(plain[k], again[k])
    warped = sample_windows(takes, 64, 20, np.random.default_rng(3), 0.5)
    q, head = warped["qpos"], warped["head_pose"]
    assert torch.allclose(q[..., 3:7].norm(dim=-1), torch.ones(()), atol=1e-5)
    assert torch.allclose(head[..., 3:7].norm(dim=-1), torch.ones(()), atol=1e-5)
    # per window: the speed from the head's travel against the takes' own head velocities
    step = (head[:, 1:, :2] - head[:, :-1, :2]).norm(dim=-1).mean(1)
    vel = warped["head_vels"][:, :-1, :2].norm(dim=-1).mean(1) / 30.0
    moving = step > 1e-3
    assert moving.sum() > 10
    torch.testing.assert_close(step[moving], vel[moving], rtol=0.15, atol=0)  # velocities scaled with the motion
    # a head moving at a constant 1 m/s: each window's step is its speed / 30 fps
    t0 = takes[0]
    T = t0.num_frames
    head = t0.head_pose.clone()
    head[:, 0] = torch.arange(T) / 30.0
    vels = torch.zeros(T, 6)
    vels[:, 0] = 1.0
    line = t0.__class__(**{**t0.__dict__, "head_pose": head, "head_vels": vels})
    w = sample_windows([line], 200, 20, np.random.default_rng(0), 0.5)
    speed = (w["head_pose"][:, 1:, 0] - w["head_pose"][:, :-1, 0]).mean(1) * 30.0
    assert speed.min() >= 1 / 1.5 - 1e-4 and speed.max() <= 1.5 + 1e-4
    assert speed.min() < 0.75 and speed.max() > 1.35  # drawn across the range
    torch.testing.assert_close(w["head_vels"][:, :, 0], speed[:, None].expand(-1, 20))
    with_features = [t.__class__(**{**t.__dict__, "feature": torch.zeros(t.num_frames, 4)}) for t in takes]
    with pytest.raises(ValueError, match="image features"):
        sample_windows(with_features, 2, 20, np.random.default_rng(0), 0.25)


def test_object_dropout_hides_the_object_from_the_policys_input_only():
    """``object_dropout`` p: a share p of windows read "no object" (``obj``: zero pose, identity
    quaternion, flag 0), their ``obj_world`` (the losses') kept; p = 0 draws the plain windows."""
    from kinpoly.policy.data import sample_windows

    def with_object(t):  # a table 2 m ahead of the head, as the policy reads it
        obj = torch.tensor([2.0, 0.0, -1.6, 1.0, 0.0, 0.0, 0.0, 1.0]).expand(t.num_frames, 8).clone()
        return t.__class__(**{**t.__dict__, "obj": obj, "obj_world": obj.clone()})

    takes = [with_object(t) for t in _takes()]
    plain = sample_windows(takes, 64, 20, np.random.default_rng(3))
    torch.testing.assert_close(sample_windows(takes, 64, 20, np.random.default_rng(3), object_dropout=0.0)["obj"],
                               plain["obj"])
    dropped = sample_windows(takes, 64, 20, np.random.default_rng(3), object_dropout=0.3)
    for k in ("qpos", "head_pose", "obj_world"):
        torch.testing.assert_close(dropped[k], plain[k])  # the same windows
    absent = dropped["obj"][..., 7] == 0  # (B, L)
    assert bool((absent.all(1) | (~absent).all(1)).all())  # whole windows
    n = int(absent.all(1).sum())
    assert 8 <= n <= 32  # about 30% of 64
    torch.testing.assert_close(dropped["obj"][absent.all(1)][..., :7],
                               torch.tensor([0.0, 0, 0, 1, 0, 0, 0]).expand(n, 20, 7))
    torch.testing.assert_close(dropped["obj"][~absent.all(1)], plain["obj"][~absent.all(1)])
    assert bool((sample_windows(takes, 16, 20, np.random.default_rng(0), object_dropout=1.0)["obj"][..., 7] == 0).all())


def test_the_placeholder_table_stays_behind_the_wearer():
    """A take without objects shows the policy a table that is not there: on the floor 2.5 m
    behind the first head pose, moved behind the head whenever the head comes within 1.5 m."""
    from kinpoly import rotations as rot
    from kinpoly.policy.data import (PLACEHOLDER_CLEARANCE_M, PLACEHOLDER_DISTANCE_M, PlaceholderTable,
                                     placeholder_objects)

    T = 200
    head = np.zeros((T, 7))
    head[:, 0] = -np.arange(T) * 0.03  # walking backwards (facing +X) at 0.9 m/s
    head[:, 1] = 1.0
    head[:, 2] = 1.6
    head[:, 3] = 1.0
    table = PlaceholderTable()
    poses = np.stack([table.update(h) for h in head])
    np.testing.assert_allclose(poses[0, :3], [-PLACEHOLDER_DISTANCE_M, 1.0, 0.0])
    assert table.moves >= 2  # walked back into it, and again
    dist = np.linalg.norm(poses[:, :2] - head[:, :2], axis=1)
    assert dist.min() >= PLACEHOLDER_CLEARANCE_M - 1e-9 and dist.max() <= PLACEHOLDER_DISTANCE_M + 1e-9
    obj = placeholder_objects(head)
    assert obj.shape == (T, 8) and obj.dtype == np.float32 and (obj[:, 7] == 1).all()
    np.testing.assert_allclose(obj[0, :3], [-PLACEHOLDER_DISTANCE_M, 0.0, -1.6], atol=1e-6)  # behind, on the floor
    turned = head.copy()
    turned[:, 3:] = rot.matrix_to_quat(rot.yaw_matrix(np.full(T, 2.0)))  # the same, heading 2 rad
    np.testing.assert_allclose(placeholder_objects(turned)[0, :3], obj[0, :3], atol=1e-6)  # in the head's frame
