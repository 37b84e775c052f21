"""Controller distillation (DAgger) into other settings, e.g. without the feed-forward."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from kinpoly.motion.clip import ClipFolder
from kinpoly.simulation.controller import ControllerConfig
from kinpoly.simulation.distill import DistillConfig, DistillWorker, discounted_returns, distill, teacher_label
from kinpoly.simulation.env import EnvConfig, HumanoidTrackingEnv, compose_action, observe
from kinpoly.simulation.policy import ActorCritic
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


def test_privileged_teacher_labels_degraded_episodes_with_the_true_clips_pd_targets(walk):
    from kinpoly.simulation.env import ReferenceLegsConfig

    teacher = _cfg(True).env
    student = dataclasses.replace(teacher, reference_legs=ReferenceLegsConfig(probability=1.0, swing_scale=[0.5, 0.5],
                                                                              delay_frames=[3, 3]))
    env, plain = HumanoidTrackingEnv([walk], student), HumanoidTrackingEnv([walk], teacher)
    env.reset(seed=0, options={"frame": 20})
    plain.reset(seed=0, options={"frame": 20})
    worker = DistillWorker.__new__(DistillWorker)
    worker.cfg, worker.teacher_cfg = student, teacher
    a_t = np.random.default_rng(1).uniform(-0.3, 0.3, 75).astype(np.float32)
    obs_t, base_t, base_s = worker._teacher_view(env)
    # the teacher sees what it would on the true clip (window frame 0 is the clip's frame 20) ...
    plain.sim.set_state(env.sim.qpos, env.sim.qvel, frame=20)
    np.testing.assert_allclose(obs_t, observe(plain.sim), atol=1e-5)
    assert not np.allclose(observe(env.sim), observe(plain.sim), atol=1e-3)  # ... the student the degraded legs
    # and the label makes the student set the teacher's PD targets on the true clip
    label = teacher_label(a_t[None], base_t[None], base_s[None], teacher, student)[0]
    ctrl_t, _, _ = compose_action(plain.sim, a_t, teacher)
    ctrl_s, _, _ = compose_action(env.sim, label, student)
    free = np.abs(label[:69]) < 1.0
    assert free.mean() > 0.5
    np.testing.assert_allclose(ctrl_s[free], ctrl_t[free], atol=1e-5)
    assert np.abs(ctrl_s - compose_action(env.sim, a_t, student)[0]).max() > 0.05  # not the teacher's own action


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
    # a distilled run exports as it is (no PPO curve yet), and the export loads as a controller
    from click.testing import CliRunner

    from kinpoly.cli import main
    from kinpoly.simulation.policy import load_policy

    assert not (tmp_path / "student" / "best.pt").exists()  # no PPO iteration: export ships last.pt by default
    res = CliRunner().invoke(main, ["uhc", "export", "--run", str(tmp_path / "student"),
                                    "--out", str(tmp_path / "student_export")])
    assert res.exit_code == 0, res.output
    assert "shipping" in res.output and "last.pt" in res.output
    model, extra = load_policy(tmp_path / "student_export" / "policy.pt")
    assert extra["train_success_rate"] == rows[-1]["success_rate"]
    assert (tmp_path / "student_export" / "distill_curve.csv").is_file()
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
    # a student started from the teacher sets the teacher's PD offsets in its own action units
    wide = _cfg(True, action_scale=0.5)
    distill(wide, teacher_path, motions, tmp_path / "copy", DistillConfig(rounds=0, init_from_teacher=True),
            inline=True, progress=False)
    copy = ActorCritic([32, 32])
    copy.load_state_dict(torch.load(tmp_path / "copy" / "last.pt", weights_only=False)["policy"])
    teacher_model, _ = load_policy(teacher_path)
    np.testing.assert_allclose(0.5 * copy.act(obs)[:, :69], 0.25 * teacher_model.act(obs)[:, :69], atol=1e-5)
    np.testing.assert_allclose(copy.act(obs)[:, 69:], teacher_model.act(obs)[:, 69:], atol=1e-5)
    assert np.abs(teacher_model.act(obs)).max() > 1e-3  # the teacher's actions are not all zero
    with pytest.raises(ValueError, match="hidden layers"):
        distill(dataclasses.replace(wide, ppo=dataclasses.replace(wide.ppo, hidden=[16, 16])), teacher_path, motions,
                tmp_path / "bad", DistillConfig(rounds=0, init_from_teacher=True), inline=True, progress=False)
