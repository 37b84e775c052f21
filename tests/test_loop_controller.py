"""The tracking controller trained inside the dynamics-regulated loop
(kinpoly/policy/loop_controller.py) on tiny takes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from kinpoly.demo import sample_clips
from kinpoly.egocentric.features import head_velocities
from kinpoly.egocentric.take import EgoTake
from kinpoly.policy.data import take_tensors
from kinpoly.policy.loop_controller import LoopControllerConfig, LoopTrackingEnvs, train_loop_controller
from kinpoly.policy.model import KinematicPolicy, PolicyConfig
from kinpoly.policy.regulated import RegulatedLoop, loop_env_config
from kinpoly.simulation.env import ACT_DIM, EnvConfig
from kinpoly.simulation.ppo import PPOConfig


def _take(k: int, frames: int, name: str) -> EgoTake:
    clip = sample_clips()[k].slice(0, frames)
    head = clip.head_pose()
    return EgoTake(name=name, head_pose=head, head_vels=head_velocities(head, clip.fps), action="locomotion",
                   qpos=clip.qpos, gt_head_pose=head, meta={"body": clip.body.to_dict()})


def _policy() -> KinematicPolicy:
    """A small policy whose proposals depend on the state (not just "keep the pose")."""
    torch.manual_seed(0)
    policy = KinematicPolicy(PolicyConfig(hidden=32, mlp=[32], context_frames=6))
    with torch.no_grad():
        policy.head[-1].weight.normal_(0.0, 0.02)
    return policy


def _run_envs(envs: LoopTrackingEnvs, seeds: list[int]) -> list[tuple[np.ndarray, str | None, int]]:
    """Step every environment with zero actions (the training-free controller) until its
    episode ends: per environment (simulated poses, end reason, steps)."""
    n = len(envs)
    for i, s in enumerate(seeds):
        envs.reset(i, s)
    poses = [[envs.loops[i].sim.qpos.copy()] for i in range(n)]
    ended: dict[int, tuple] = {}
    while len(ended) < n:
        for i, (_, r, term, trunc, info) in enumerate(envs.step(np.zeros((n, ACT_DIM), np.float32))):
            if i in ended:
                continue
            assert 0.0 <= r <= 1.0
            poses[i].append(envs.loops[i].sim.qpos.copy())
            if term or trunc:
                ended[i] = (np.asarray(poses[i]), info["reason"], info["steps"])
    return [ended[i] for i in range(n)]


def test_batched_loop_envs_simulate_what_the_loop_runs():
    """Each of the batched environments (proposals of all of them from one policy call)
    simulates exactly what RegulatedLoop.run does on the same window of its take."""
    takes = [take_tensors(_take(0, 40, "a")), take_tensors(_take(2, 40, "b"))]
    policy = _policy()
    cfg = loop_env_config(dataclasses.replace(EnvConfig(), max_episode_steps=20))
    envs = LoopTrackingEnvs(takes, [[], []], policy, cfg, 3, head_fall_distance=np.inf)
    results = _run_envs(envs, [1, 2, 3])
    assert len({(int(envs.take_idx[i]), int(envs.start[i])) for i in range(3)}) > 1  # different windows
    loop = RegulatedLoop(policy, None, cfg, None, head_fall_distance=np.inf)
    for i, (poses, reason, steps) in enumerate(results):
        take = takes[envs.take_idx[i]]
        ep = loop.run(take, start=int(envs.start[i]), length=int(envs.length[i]), from_truth=True)
        assert reason is None and steps == envs.length[i] - 1  # the window ran to its end
        np.testing.assert_allclose(poses, ep.sim_qpos[:len(poses)], atol=1e-4)  # float32 batching


def test_losing_the_camera_ends_the_episode_as_a_failure():
    takes = [take_tensors(_take(0, 30, "a"))]
    envs = LoopTrackingEnvs(takes, [[]], _policy(), loop_env_config(EnvConfig()), 1, head_fall_distance=0.0)
    (_, reason, steps), = _run_envs(envs, [0])
    assert reason == "lost_head" and steps == 1


def test_loop_controller_training_resumes_exactly(tmp_path):
    from test_regulated import _checkpoint, _write_dataset

    ck = _checkpoint(tmp_path / "sup")
    data = tmp_path / "data"
    _write_dataset(data, [_take(0, 40, "walk")])

    def cfg(iterations):
        c = LoopControllerConfig(data=str(data), kinematic=str(ck), split=None,
                                 ppo=PPOConfig(iterations=iterations, num_workers=1, envs_per_worker=2,
                                               steps_per_env=16, minibatch=16, epochs=1, torch_threads=1))
        c.env = loop_env_config(dataclasses.replace(c.env, max_episode_steps=12))
        return c

    full = train_loop_controller(cfg(2), tmp_path / "a", inline=True, progress=False)
    train_loop_controller(cfg(1), tmp_path / "b", inline=True, progress=False)  # "killed"
    resumed = train_loop_controller(cfg(2), tmp_path / "b", inline=True, progress=False)
    assert len(full) == len(resumed) == 2 and full[-1]["episodes"] > 0
    for k in ("reward", "success_rate", "policy_loss", "value_loss"):
        assert resumed[-1][k] == pytest.approx(full[-1][k], rel=1e-5), k
    # the exported controller loads for the loop like any other (its config names its data too)
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.policy.dynamics import load_controller

    res = CliRunner().invoke(main, ["uhc", "export", "--run", str(tmp_path / "a"), "--checkpoint", "last.pt",
                                    "--out", str(tmp_path / "export")])
    assert res.exit_code == 0, res.output
    env_cfg, controller = load_controller(str(tmp_path / "export" / "policy.pt"))
    assert controller is not None and env_cfg.max_episode_steps == 12 and not env_cfg.controller.feedforward
    with pytest.raises(FileNotFoundError, match="no such kinematic-policy checkpoint"):
        train_loop_controller(dataclasses.replace(cfg(1), kinematic=str(tmp_path / "nope.pt")), tmp_path / "c")


def test_truth_weight_scores_the_truth_not_only_the_proposals():
    """A policy that proposes "stay where you are" is tracked well (high proposal reward) while
    the true walk moves on: the ground-truth share of the reward sees it."""
    takes = [take_tensors(_take(0, 40, "a"))]
    policy = KinematicPolicy(PolicyConfig(hidden=32, mlp=[32], context_frames=6))  # zero output: stand still
    cfg = loop_env_config(dataclasses.replace(EnvConfig(), max_episode_steps=30))

    def rewards(w):
        envs = LoopTrackingEnvs(takes, [[]], policy, cfg, 1, head_fall_distance=np.inf, truth_weight=w)
        envs.reset(0, 0)
        return np.array([envs.step(np.zeros((1, ACT_DIM), np.float32))[0][1] for _ in range(20)])

    proposals, truth = rewards(0.0), rewards(1.0)
    assert proposals[-5:].mean() > 0.6 and truth[-5:].mean() < proposals[-5:].mean() - 0.2
    np.testing.assert_allclose(rewards(0.5), 0.5 * (proposals + truth), atol=1e-9)


def test_envs_without_feedback_simulate_what_the_estimate_runs():
    """With ``own_motion`` (the estimator's no-feedback mode) each environment tracks its take's
    given motion exactly as RegulatedLoop.run(motion=...) does on the same window, and the
    kinematic policy's proposals play no part."""
    takes = [take_tensors(_take(0, 40, "a")), take_tensors(_take(2, 40, "b"))]
    rng = np.random.default_rng(0)
    motions = {t.name: t.qpos.double().numpy() + rng.normal(0.0, 0.01, t.qpos.shape) * (np.arange(76) >= 7)
               for t in takes}
    cfg = loop_env_config(dataclasses.replace(EnvConfig(), max_episode_steps=20), "full")
    envs = LoopTrackingEnvs(takes, [[], []], _policy(), cfg, 3, head_fall_distance=np.inf,
                            own_motion=lambda take: motions[take.name])
    results = _run_envs(envs, [1, 2, 3])
    assert len({(int(envs.take_idx[i]), int(envs.start[i])) for i in range(3)}) > 1
    loop = RegulatedLoop(_policy(), None, cfg, None, head_fall_distance=np.inf)
    for i, (poses, reason, steps) in enumerate(results):
        take = takes[envs.take_idx[i]]
        ep = loop.run(take, start=int(envs.start[i]), length=int(envs.length[i]),
                      motion=torch.as_tensor(motions[take.name], dtype=torch.float32))
        assert reason is None and steps == envs.length[i] - 1
        np.testing.assert_allclose(poses, ep.sim_qpos[:len(poses)], atol=1e-6)
