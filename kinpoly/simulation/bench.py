"""Throughput of the controller stack, measured in one run on this machine.

- ``bare_substeps_per_s``: ``mj_step`` alone on the very control steps the environment took
  (their states and inputs recorded, then replayed: the same contacts), and the control-step
  equivalent (/15); ``bare_hold_pose_substeps_per_s``: a humanoid holding one pose (it falls
  and lies on the floor), the measure before;
- ``env_steps_per_s``: :class:`HumanoidTrackingEnv` control steps per second in one process
  (training-free controller + observation + reward), with and without policy inference;
- ``ppo_samples_per_s``: samples per second of the PPO rollout workers on every core (rollout
  only, and including the learner's update);
- ratios of each to the bare stepping rate (per process) in the same run: the environment's
  measured alternately with the replay of its own steps, the PPO workers' against the mean of
  the bare rate before and after them (those states are the training-free controller's, not
  the noisy policy's) and, exactly, ``ppo_rollout_physics_share``: the share of the workers'
  rollout time spent in ``mj_step`` (timed inside each worker, on the states it visited).
The machine's load average is recorded: other processes on the cores lower every number.
"""

from __future__ import annotations

import os
import platform
import time

import mujoco
import numpy as np
import torch

from ..humanoid.skeleton import NUM_HINGES, QPOS_DIM
from .env import HumanoidTrackingEnv, obs_dim, observe
from .model import ROOT_SERVO_GROUP
from .policy import ActorCritic
from .ppo import RolloutWorker
from .sim import TrackingSim


def _hold_pose_rate(env: HumanoidTrackingEnv, seconds: float) -> float:
    """``mj_step`` of a humanoid whose hinge servos hold the first pose of a clip, no root
    servo (it falls and lies on the floor: more contacts than tracking has)."""
    env.reset(seed=0, options={"frame": 0})
    m, d = env.sim.model, env.sim.data
    d.ctrl[:NUM_HINGES] = d.qpos[7:QPOS_DIM]
    m.opt.disableactuator |= 1 << ROOT_SERVO_GROUP  # the humanoid alone
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mujoco.mj_step(m, d, nstep=15)
        n += 15
    return n / (time.perf_counter() - t0)


_STATE, _INPUTS = mujoco.mjtState.mjSTATE_INTEGRATION, mujoco.mjtState.mjSTATE_USER


def _env_and_bare_rates(env: HumanoidTrackingEnv, seconds: float, model: ActorCritic | None = None,
                        chunk: int = 30) -> tuple[float, float]:
    """(environment control steps/s, with ``model``'s inference or the training-free controller
    alone; the bare physics of the same control steps/s). Every step's MuJoCo state and inputs
    are recorded and, every ``chunk`` steps, replayed with ``mj_step(nstep=15)`` alone, so both
    rates are of the very same states and contacts, measured alternately (this machine's speed
    drifts by 20% within seconds)."""
    env.reset(seed=1)
    zero = np.zeros(env.action_space.shape, np.float32)
    datas: dict[int, mujoco.MjData] = {}
    n, spent, replay = 0, 0.0, 0.0
    while spent + replay < seconds:
        steps = []
        for _ in range(chunk):
            m, d = env.sim.model, env.sim.data
            before = np.empty(mujoco.mj_stateSize(m, _STATE))
            mujoco.mj_getState(m, d, before, _STATE)
            t0 = time.perf_counter()
            _, _, term, trunc, _ = env.step(zero if model is None else model.act(observe(env.sim, future_frames=env.cfg.future_frames)))
            spent += time.perf_counter() - t0
            inputs = np.empty(mujoco.mj_stateSize(m, _INPUTS))
            mujoco.mj_getState(m, d, inputs, _INPUTS)  # what the step set: targets, servo, wrench
            steps.append((m, before, inputs))
            if term or trunc:
                env.reset()
        for m, before, inputs in steps:
            replay += _replay_step(m, datas.setdefault(id(m), mujoco.MjData(m)), before, inputs)
        n += len(steps)
    return n / spent, n / replay


def _replay_step(m: mujoco.MjModel, d: mujoco.MjData, before: np.ndarray, inputs: np.ndarray) -> float:
    """One recorded control step again, physics alone; the seconds ``mj_step`` took."""
    mujoco.mj_setState(m, d, before, _STATE)
    mujoco.mj_setState(m, d, inputs, _INPUTS)
    t0 = time.perf_counter()
    mujoco.mj_step(m, d, nstep=15)
    return time.perf_counter() - t0


class PhysicsTimedWorker(RolloutWorker):
    """A PPO rollout worker that also returns the seconds its segment spent in ``mj_step``
    (``physics_time``): the bare stepping of the very states the rollout visited."""

    def __init__(self, *args):
        super().__init__(*args)
        self.physics_time = 0.0
        step = mujoco.mj_step

        def timed_step(m, d, nstep=1):  # this worker's process only
            t0 = time.perf_counter()
            step(m, d, nstep=nstep)
            self.physics_time += time.perf_counter() - t0

        mujoco.mj_step = timed_step

    def collect(self, *args) -> dict:
        self.physics_time = 0.0
        seg = super().collect(*args)
        seg["physics_time"] = self.physics_time
        return seg


def run_bench(motions: str, seconds: float = 10.0, ppo_iterations: int = 2,
              names: list[str] | None = None, cfg=None) -> dict:
    """All the numbers of the module docstring, with the settings of ``cfg`` (a UHCConfig)."""
    from .ppo import LocalPool, UHCConfig, make_optimizer, ppo_update

    cfg = cfg or UHCConfig()
    p = cfg.ppo
    torch.set_num_threads(1)
    env = HumanoidTrackingEnv(motions, cfg.env, names)
    model = ActorCritic(p.hidden, p.log_std, obs_dim(cfg.env.future_frames))
    TrackingSim.compile_scenes(env.refs)  # as the PPO workers do: no compiles in what is timed
    env_zero, bare_ctrl = _env_and_bare_rates(env, seconds)
    env_policy, bare_policy = _env_and_bare_rates(env, seconds, model)
    hold = _hold_pose_rate(env, seconds / 2)
    cores = os.cpu_count() or 1
    pool = LocalPool([(motions, names, cfg.env, p.envs_per_worker, p.hidden, p.log_std, w)
                      for w in range(cores)], PhysicsTimedWorker)
    torch.set_num_threads(cores)
    opt = make_optimizer(model, p)
    roll, total, samples, worker_time, physics_time = 0.0, 0.0, 0, 0.0, 0.0
    try:
        for it in range(-1, ppo_iterations):  # -1: the workers' start-up and compiles, not timed
            t0 = time.perf_counter()
            segs = pool.collect(model.state_dict(), 0, it + 1, p.steps_per_env)
            t1 = time.perf_counter()
            obs = torch.as_tensor(np.concatenate([s["obs"].reshape(-1, s["obs"].shape[-1]) for s in segs]))
            act = torch.as_tensor(np.concatenate([s["actions"].reshape(-1, s["actions"].shape[-1]) for s in segs]))
            logp = torch.as_tensor(np.concatenate([s["logp"].ravel() for s in segs]))
            ret = torch.as_tensor(np.concatenate([s["rewards"].ravel() for s in segs]))
            batch = {"obs": obs, "actions": act, "logp": logp, "adv": ret.clone(), "ret": ret}
            ppo_update(model, opt, batch, p, torch.Generator().manual_seed(it + 1))
            if it < 0:
                continue
            roll += t1 - t0
            total += time.perf_counter() - t0
            samples += obs.shape[0]
            worker_time += sum(s["time"] for s in segs)
            physics_time += sum(s["physics_time"] for s in segs)
    finally:
        pool.close()
    torch.set_num_threads(1)
    _, bare_after = _env_and_bare_rates(env, seconds / 2)  # around the PPO run: the machine drifts
    ppo_roll = samples / roll
    return {
        "machine": {"cpus": cores, "processor": platform.processor() or platform.machine(),
                    "load_average_1m": os.getloadavg()[0], "mujoco": mujoco.__version__,
                    "torch": torch.__version__},
        "bare_substeps_per_s": round(15.0 * bare_ctrl, 1),
        "bare_control_steps_per_s": round(bare_ctrl, 1),
        "bare_hold_pose_substeps_per_s": round(hold, 1),
        "env_steps_per_s": round(env_zero, 1),
        "env_steps_per_s_with_policy": round(env_policy, 1),
        "env_to_bare_ratio": round(env_zero / bare_ctrl, 3),
        "env_with_policy_to_bare_ratio": round(env_policy / bare_policy, 3),
        "ppo_workers": cores,
        "ppo_samples_per_s_rollout": round(ppo_roll, 1),
        "ppo_samples_per_s_with_update": round(samples / total, 1),
        "bare_control_steps_per_s_after_ppo": round(bare_after, 1),
        "ppo_rollout_to_bare_ratio": round(ppo_roll / (cores * 0.5 * (bare_ctrl + bare_after)), 3),
        "ppo_rollout_physics_share": round(physics_time / worker_time, 3),
        "seconds_per_measure": seconds,
        "ppo_samples_per_iteration": samples // max(ppo_iterations, 1),
    }
