"""Throughput of the controller stack, measured in one run on this machine.

- ``bare_substeps_per_s``: ``mj_step`` of the humanoid model alone (one process, tracking
  targets held), and the control-step equivalent (/15);
- ``env_steps_per_s``: :class:`HumanoidTrackingEnv` control steps per second in one process
  (training-free controller + observation + reward), with and without policy inference;
- ``ppo_samples_per_s``: samples per second of the PPO rollout workers on every core (rollout
  only, and including the learner's update);
- ratios of each to the bare stepping rate (per process) in the same run.
The machine's load average is recorded: other processes on the cores lower every number.
"""

from __future__ import annotations

import os
import platform
import time

import mujoco
import numpy as np
import torch

from ..humanoid.skeleton import QPOS_DIM
from .env import HumanoidTrackingEnv, observe
from .policy import ActorCritic


def _bare_rate(env: HumanoidTrackingEnv, seconds: float) -> float:
    env.reset(seed=0, options={"frame": 0})
    m, d = env.sim.model, env.sim.data
    d.ctrl[:] = d.qpos[7:QPOS_DIM]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        mujoco.mj_step(m, d, nstep=15)
        n += 15
    return n / (time.perf_counter() - t0)


def _env_rate(env: HumanoidTrackingEnv, seconds: float, model: ActorCritic | None) -> float:
    env.reset(seed=1)
    n, t0 = 0, time.perf_counter()
    zero = np.zeros(env.action_space.shape, np.float32)
    while time.perf_counter() - t0 < seconds:
        a = model.act(observe(env.sim)) if model is not None else zero
        _, _, term, trunc, _ = env.step(a)
        n += 1
        if term or trunc:
            env.reset()
    return n / (time.perf_counter() - t0)


def run_bench(motions: str, seconds: float = 10.0, ppo_iterations: int = 2,
              names: list[str] | None = None, cfg=None) -> dict:
    """All the numbers of the module docstring, with the settings of ``cfg`` (a UHCConfig)."""
    from .ppo import LocalPool, UHCConfig, make_optimizer, ppo_update

    cfg = cfg or UHCConfig()
    p = cfg.ppo
    torch.set_num_threads(1)
    env = HumanoidTrackingEnv(motions, cfg.env, names)
    model = ActorCritic(p.hidden, p.log_std)
    bare = _bare_rate(env, seconds)
    env_zero = _env_rate(env, seconds, None)
    env_policy = _env_rate(env, seconds, model)
    bare_after = _bare_rate(env, seconds / 2)  # drift check: load from other processes
    bare_ctrl = 0.5 * (bare + bare_after) / 15.0
    cores = os.cpu_count() or 1
    pool = LocalPool([(motions, names, cfg.env, p.envs_per_worker, p.hidden, p.log_std, w)
                      for w in range(cores)])
    torch.set_num_threads(cores)
    opt = make_optimizer(model, p)
    roll, total, samples = 0.0, 0.0, 0
    try:
        for it in range(ppo_iterations):
            t0 = time.perf_counter()
            segs = pool.collect(model.state_dict(), 0, it, p.steps_per_env)
            t1 = time.perf_counter()
            obs = torch.as_tensor(np.concatenate([s["obs"].reshape(-1, s["obs"].shape[-1]) for s in segs]))
            act = torch.as_tensor(np.concatenate([s["actions"].reshape(-1, s["actions"].shape[-1]) for s in segs]))
            logp = torch.as_tensor(np.concatenate([s["logp"].ravel() for s in segs]))
            ret = torch.as_tensor(np.concatenate([s["rewards"].ravel() for s in segs]))
            batch = {"obs": obs, "actions": act, "logp": logp, "adv": ret.clone(), "ret": ret}
            ppo_update(model, opt, batch, p, torch.Generator().manual_seed(it))
            roll += t1 - t0
            total += time.perf_counter() - t0
            samples += obs.shape[0]
    finally:
        pool.close()
    ppo_roll = samples / roll
    return {
        "machine": {"cpus": cores, "processor": platform.processor() or platform.machine(),
                    "load_average_1m": os.getloadavg()[0], "mujoco": mujoco.__version__,
                    "torch": torch.__version__},
        "bare_substeps_per_s": round(0.5 * (bare + bare_after), 1),
        "bare_control_steps_per_s": round(bare_ctrl, 1),
        "env_steps_per_s": round(env_zero, 1),
        "env_steps_per_s_with_policy": round(env_policy, 1),
        "env_to_bare_ratio": round(env_zero / bare_ctrl, 3),
        "env_with_policy_to_bare_ratio": round(env_policy / bare_ctrl, 3),
        "ppo_workers": cores,
        "ppo_samples_per_s_rollout": round(ppo_roll, 1),
        "ppo_samples_per_s_with_update": round(samples / total, 1),
        "ppo_rollout_to_bare_ratio": round(ppo_roll / (cores * bare_ctrl), 3),
        "seconds_per_measure": seconds,
        "ppo_samples_per_iteration": samples // max(ppo_iterations, 1),
    }
