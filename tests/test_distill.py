"""Controller distillation (DAgger) into other settings, e.g. without the feed-forward."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from kinpoly.motion.clip import ClipFolder
from kinpoly.simulation.controller import ControllerConfig
from kinpoly.simulation.distill import DistillConfig, DistillWorker, discounted_returns, distill, teacher_label
from kinpoly.simulation.env import EnvConfig, HumanoidTrackingEnv, compose_action
from kinpoly.simulation.ppo import PPOConfig, UHCConfig, train


@pytest.fixture(scope="module")
def walk(shared_data):
    from kinpoly.motion.importers import import_file

    return import_file(shared_data / "cmu_amc" / "02_01.amc")[0].slice(0, 60, name="walk")


def _cfg(feedforward: bool, action_scale: float = 0.25) -> UHCConfig:
    return UHCConfig(split=None, env=EnvConfig(max_episode_steps=20, action_scale=action_scale,
                                               controller=ControllerConfig(feedforward=feedforward)),
                     ppo=PPOConfig(iterations=1, num_workers=1, envs_per_worker=2, steps_per_env=16,
                                   minibatch=32, epochs=1, hidden=[32, 32], torch_threads=1))


def test_label_reproduces_the_teachers_pd_targets_and_wrench(walk):
    teacher, student = _cfg(True).env, _cfg(False, action_scale=0.5).env
    env = HumanoidTrackingEnv([walk], teacher)
    env.reset(seed=0, options={"frame": 10})
    sim = env.sim
    a_t = np.random.default_rng(0).uniform(-0.5, 0.5, 75).astype(np.float32)
    ff = sim.ref.ff_ctrl[sim.t][None]
    label = teacher_label(a_t[None], ff, np.zeros_like(ff), teacher, student)[0]
    ctrl_t, wrench_t, _ = compose_action(sim, a_t, teacher)
    ctrl_s, wrench_s, _ = compose_action(sim, label, student)
    free = np.abs(label[:69]) < 1.0  # the label is clipped to the action bound elsewhere
    assert free.mean() > 0.5
    np.testing.assert_allclose(ctrl_s[free], ctrl_t[free], atol=1e-5)
    np.testing.assert_allclose(wrench_s, wrench_t, atol=1e-3)
    # same settings: the label is the (clipped) teacher action itself
    same = teacher_label(np.array([[2.0] * 75]), ff, ff, teacher, teacher)
    assert np.all(same == 1.0)


def test_discounted_returns_stop_at_episode_ends():
    r = np.ones((3, 1), np.float32)
    ended = np.array([[0.0], [1.0], [0.0]], np.float32)
    np.testing.assert_allclose(discounted_returns(r, ended, 0.5)[:, 0], [1.5, 1.0, 1.0])


def test_distilled_student_imitates_and_ppo_fine_tunes_it(tmp_path, walk):
    folder = ClipFolder(tmp_path / "motions", create=True)
    folder.add(walk)
    motions = str(folder.root)
    train(_cfg(True), motions, tmp_path / "teacher", inline=True, progress=False)
    teacher_path = str(tmp_path / "teacher" / "last.pt")
    student_cfg = _cfg(False)
    rows = distill(student_cfg, teacher_path, motions, tmp_path / "student",
                   DistillConfig(rounds=3, steps_per_env=32, epochs=30, minibatch=16), inline=True, progress=False)
    assert [r["followed"] for r in rows] == ["teacher", "student", "student"]
    assert (tmp_path / "student" / "distill.csv").read_text().count("\n") == 4
    # the student's mean action is closer to the teacher's labels than the zero action
    blob = torch.load(tmp_path / "student" / "last.pt", weights_only=False)
    assert blob["iteration"] == 0 and blob["extra"]["distilled_from"] == teacher_path
    worker = DistillWorker(motions, None, student_cfg.env, 2, [32, 32], -2.3, 0, teacher_path,
                           _cfg(True).env)
    seg = worker.collect(blob["policy"], 1, 99, 16, True)
    obs, lab = seg["obs"].reshape(-1, 302), seg["labels"].reshape(-1, 75)
    worker.model.load_state_dict(blob["policy"])
    err = ((worker.model.act(obs) - lab) ** 2).sum(-1).mean()
    assert err < 0.5 * (lab ** 2).sum(-1).mean()
    # PPO resumes the distilled run folder from iteration 0; during the critic warm-up only the
    # value function learns, so the distilled actor is kept
    ft_cfg = dataclasses.replace(student_cfg, ppo=dataclasses.replace(student_cfg.ppo, critic_warmup=1))
    curves = train(ft_cfg, motions, tmp_path / "student", inline=True, progress=False)
    assert [c["iteration"] for c in curves] == [1]
    after = torch.load(tmp_path / "student" / "last.pt", weights_only=False)["policy"]
    actor = [k for k in after if k.startswith("actor.")]
    critic = [k for k in after if k.startswith("critic.")]
    assert all(torch.equal(after[k], blob["policy"][k]) for k in actor)
    assert not all(torch.equal(after[k], blob["policy"][k]) for k in critic)
