"""Distil a trained controller into one for other settings (DAgger), as a warm start for PPO.

The motivating case is the dynamics-regulated loop: there the reference is the kinematic
policy's frame-by-frame proposals, whose finite differences are too noisy for the
inverse-dynamics feed-forward of the training-free controller, so the loop runs with the
feed-forward off (:mod:`kinpoly.policy.regulated`). A controller trained *with* it then tracks
badly (the shipped one: 16.7% of held-out clips without it, 83.3% with it). Training one from
scratch without it is what the original needed days for. Instead the student (the same
network, new settings) learns to output what the teacher's whole controller does:

    PD target = ref[t + lead] + ff_T[t] + s_T clip(a_T)   (teacher)
              = ref[t + lead] + ff_S[t] + s_S a_S          (student)

so the student's hinge label is ``(s_T clip(a_T) + base_T - base_S) / s_S`` (clipped to the
action bound), ``base`` being each one's training-free PD target (reference plus feed-forward),
and its root label the teacher's root wrench in the student's units. Both read the same
observation (:func:`kinpoly.simulation.env.observe`), so the teacher can label any state.

DAgger: round 0 follows the teacher, later rounds follow the student (with the policy's
exploration noise), every visited state is labelled by the teacher and added to the data set,
and the student is refit on all of it. The critic is fit to the discounted returns of the
student's rollouts, so that PPO (``kinpoly uhc train`` resumes the run folder this writes)
does not start from a random value function.

The teacher may also be privileged: where the student's environment shows a degraded reference
(``env.reference_legs``: legs that swing less and lag, as an estimate's do), the teacher reads
and follows the true clip, and the student learns to set the true clip's PD targets from the
degraded one (measured: it did not learn to step under the estimate's legs, and lost some
clean tracking; ``benchmarks/results/degraded_legs_tracker.json``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from .controller import baseline_action
from .env import ACT_DIM, OBS_DIM, EnvConfig, HumanoidTrackingEnv, observe
from .policy import ActorCritic, load_policy


@dataclass
class DistillConfig:
    rounds: int = 30
    steps_per_env: int = 512  # per round and environment
    teacher_rounds: int = 1  # the first rounds follow the teacher's actions
    epochs: int = 4  # passes over the aggregated data per round
    minibatch: int = 2048
    lr: float = 3.0e-4
    max_samples: int = 400_000  # oldest samples dropped beyond this
    init_from_teacher: bool = False  # the student starts as a copy of the teacher (same network), its actions rescaled to its units


def teacher_label(teacher_action: np.ndarray, base_teacher: np.ndarray, base_student: np.ndarray,
                  teacher_cfg: EnvConfig, student_cfg: EnvConfig) -> np.ndarray:
    """The student action (N, 75) that yields the teacher's PD targets and root wrench; see the
    module docstring. ``base_*`` (N, 69) are the PD targets each controller's training-free part
    sets (only their difference matters: the feed-forward offsets where both follow one reference)."""
    a = np.clip(teacher_action, -1.0, 1.0)
    hinge = (teacher_cfg.action_scale * a[:, :69] + base_teacher - base_student) / student_cfg.action_scale
    root = a[:, 69:] * teacher_cfg.residual_scale / student_cfg.residual_scale
    return np.clip(np.concatenate([hinge, root], axis=1), -1.0, 1.0).astype(np.float32)


class DistillWorker:
    """Steps ``n_envs`` environments (student settings) and labels every state by the teacher.
    Same constructor/``collect`` shape as the PPO :class:`~kinpoly.simulation.ppo.RolloutWorker`
    so that the PPO pools run it."""

    def __init__(self, motions: str, names: list[str] | None, env_cfg: EnvConfig, n_envs: int,
                 hidden: list[int], log_std: float, worker_id: int, teacher_path: str,
                 teacher_cfg: EnvConfig):
        torch.set_num_threads(1)
        self.cfg, self.teacher_cfg = env_cfg, teacher_cfg
        self.envs = [HumanoidTrackingEnv(motions, env_cfg, names) for _ in range(n_envs)]
        self.model = ActorCritic(hidden, log_std)
        self.model.eval()
        self.teacher, _ = load_policy(teacher_path)
        self.worker_id = worker_id

    def _teacher_view(self, env: HumanoidTrackingEnv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(teacher observation, teacher's and student's training-free PD targets) at the
        environment's state; the teacher reads the true clip where the student is shown a
        degraded one."""
        sim = env.sim
        true = env.true_reference or sim.ref
        base_t = baseline_action(true, sim.t, self.teacher_cfg.controller, sim.qpos, sim.qvel)[0]
        base_s = baseline_action(sim.ref, sim.t, self.cfg.controller, sim.qpos, sim.qvel)[0]
        return observe(sim, true), base_t, base_s

    def collect(self, state_dict: dict, seed: int, iteration: int, n_steps: int, follow_teacher: bool) -> dict:
        self.model.load_state_dict(state_dict)
        n = len(self.envs)
        rng = np.random.default_rng([seed, iteration, self.worker_id])
        obs = np.stack([e.reset(seed=int(rng.integers(2**31)))[0] for e in self.envs])
        std = float(np.exp(self.model.log_std[0].item()))
        out = {"obs": np.zeros((n_steps, n, OBS_DIM), np.float32), "labels": np.zeros((n_steps, n, ACT_DIM), np.float32),
               "rewards": np.zeros((n_steps, n), np.float32), "ended": np.zeros((n_steps, n), np.float32)}
        episodes = []
        for t in range(n_steps):
            obs_t, base_t, base_s = (np.stack(x) for x in zip(*(self._teacher_view(e) for e in self.envs)))
            labels = teacher_label(self.teacher.act(obs_t), base_t, base_s, self.teacher_cfg, self.cfg)
            out["obs"][t], out["labels"][t] = obs, labels
            action = labels if follow_teacher else self.model.act(obs)
            action = action + std * rng.standard_normal(action.shape).astype(np.float32)
            for i, env in enumerate(self.envs):
                o, r, term, trunc, info = env.step(action[i])
                out["rewards"][t, i], out["ended"][t, i] = r, float(term or trunc)
                if term or trunc:
                    episodes.append(bool(trunc and not term))
                    o = env.reset(seed=int(rng.integers(2**31)))[0]
                obs[i] = o
        out["episodes"] = episodes
        return out


def discounted_returns(rewards: np.ndarray, ended: np.ndarray, gamma: float) -> np.ndarray:
    """(T, N) discounted returns, not bootstrapped past an episode's end or the segment's."""
    ret = np.zeros_like(rewards)
    acc = np.zeros(rewards.shape[1], np.float32)
    for t in reversed(range(rewards.shape[0])):
        acc = rewards[t] + gamma * acc * (1.0 - ended[t])
        ret[t] = acc
    return ret


def distill(cfg, teacher_path: str | os.PathLike, motions: str, out_dir: str | os.PathLike,
            dcfg: DistillConfig | None = None, *, inline: bool = False, progress: bool = True) -> list[dict]:
    """Distil the controller in ``teacher_path`` into a new one with the settings of ``cfg`` (a
    ``UHCConfig``); writes ``OUT/last.pt`` (a PPO checkpoint at iteration 0, so ``kinpoly uhc
    train --out OUT`` fine-tunes it) and ``OUT/distill.csv``. Returns one row per round."""
    from tqdm import tqdm

    from ..config import to_dict
    from .evaluate import controller_config
    from .ppo import InlinePool, LocalPool, _save_checkpoint, _write_curves, make_optimizer, start_run

    dcfg = dcfg or DistillConfig()
    teacher_cfg = controller_config(checkpoint=str(teacher_path)).env
    if teacher_cfg.controller.lead != cfg.env.controller.lead:
        raise ValueError(f"teacher reads the reference {teacher_cfg.controller.lead} frames ahead, the student "
                         f"{cfg.env.controller.lead}: the labels would not match")
    if teacher_cfg.future_frames or cfg.env.future_frames:
        raise ValueError("distillation observes the next reference frame only: teacher and student must have "
                         f"no env.future_frames (teacher {teacher_cfg.future_frames}, student {cfg.env.future_frames})")
    out, run, names, n_workers = start_run(cfg, motions, out_dir)
    p = cfg.ppo
    student = ActorCritic(p.hidden, p.log_std)
    teacher, _ = load_policy(teacher_path)
    student.norm.load_state_dict(teacher.norm.state_dict())  # same observation
    if dcfg.init_from_teacher:
        log_std = student.log_std.detach().clone()  # the student's exploration noise is its own setting
        try:
            student.load_state_dict(teacher.state_dict())
        except RuntimeError:
            raise ValueError(f"init_from_teacher: the student's hidden layers {list(p.hidden)} are not the "
                             f"teacher's ({teacher_path})") from None
        student.log_std.data.copy_(log_std)
        # the same PD offsets and root wrench in the student's action units (a larger action
        # scale widens what the student can correct before its action saturates)
        units = torch.tensor([teacher_cfg.action_scale / cfg.env.action_scale] * 69
                             + [teacher_cfg.residual_scale / cfg.env.residual_scale] * 6)
        last = student.actor[-1]
        last.weight.data.mul_(units[:, None])
        last.bias.data.mul_(units)
    opt = torch.optim.Adam(student.parameters(), lr=dcfg.lr)
    worker_args = [(motions, names, cfg.env, p.envs_per_worker, p.hidden, p.log_std, w, str(teacher_path),
                    teacher_cfg) for w in range(n_workers)]
    pool = InlinePool(worker_args, DistillWorker) if inline else LocalPool(worker_args, DistillWorker)
    data_obs, data_lab, data_ret, rows = [], [], [], []
    gen = torch.Generator().manual_seed(cfg.seed)
    t_start = time.perf_counter()
    bar = tqdm(range(dcfg.rounds), disable=not progress, desc="uhc distill", dynamic_ncols=True)
    try:
        for rnd in bar:
            state = {k: v.clone() for k, v in student.state_dict().items()}
            follow = rnd < dcfg.teacher_rounds
            segs = pool.collect(state, cfg.seed, rnd, dcfg.steps_per_env, follow)
            for s in segs:
                data_obs.append(s["obs"].reshape(-1, OBS_DIM))
                data_lab.append(s["labels"].reshape(-1, ACT_DIM))
                data_ret.append(discounted_returns(s["rewards"], s["ended"], p.gamma).reshape(-1))
            # keep only the newest max_samples, as one array per kind
            data_obs, data_lab, data_ret = ([np.concatenate(x)[-dcfg.max_samples:]]
                                            for x in (data_obs, data_lab, data_ret))
            obs, lab, ret = (torch.from_numpy(x[0]) for x in (data_obs, data_lab, data_ret))
            eps = [e for s in segs for e in s["episodes"]]
            n = obs.shape[0]
            student.train()
            losses = []
            for _ in range(dcfg.epochs):
                perm = torch.randperm(n, generator=gen)
                for i in range(0, n, dcfg.minibatch):
                    idx = perm[i:i + dcfg.minibatch]
                    mean, value = student(obs[idx])
                    la = ((mean - lab[idx]) ** 2).sum(-1).mean()
                    lv = 0.5 * ((value - ret[idx]) ** 2).mean()
                    opt.zero_grad()
                    (la + lv).backward()
                    torch.nn.utils.clip_grad_norm_(student.parameters(), p.max_grad_norm)
                    opt.step()
                    losses.append((la.item(), lv.item()))
            student.eval()
            la, lv = np.mean(losses[-max(1, len(losses) // dcfg.epochs):], axis=0)
            row = {"round": rnd + 1, "followed": "teacher" if follow else "student", "samples": int(n),
                   "success_rate": float(np.mean(eps)) if eps else 0.0, "episodes": len(eps),
                   "reward": float(np.mean([s["rewards"].mean() for s in segs])),
                   "action_loss": float(la), "value_loss": float(lv),
                   "wall_s": round(time.perf_counter() - t_start, 1)}
            rows.append(row)
            bar.set_postfix(follow=row["followed"], success=f"{row['success_rate']:.3f}", loss=f"{la:.4f}")
            _write_curves(out / "distill.csv", rows, fields=list(row))
    finally:
        bar.close()
        pool.close()
    cfg_dict = to_dict(cfg)
    _save_checkpoint(out / "last.pt", student, make_optimizer(student, p), 0, [], cfg_dict,
                     {"distilled_from": str(teacher_path), "distill": rows})
    _write_curves(out / "progress.csv", [])
    run.write_metrics({"distill": rows}, name="distill_metrics.json")
    return rows

