"""Dynamics-regulated training of the kinematic policy (SPEC section 3).

Starting from the supervised checkpoint, every iteration:

1. **Rollouts.** Workers (one per core, subprocesses; or Ray actors with ``ray``) run the
   :class:`~kinpoly.policy.regulated.RegulatedLoop` on random windows of training takes: the
   policy's (noisy, log-std ``log_std``) pose is the controller's target every frame and the
   simulated pose is the next state. Each transition keeps the policy input, hidden state,
   action, the simulated pose it started from, and the SPEC reward.
2. **PPO** on those transitions (clipped surrogate, GAE, a separate value network over the
   policy input). The recurrent policy is updated with the hidden states it had during the
   rollout (one-step truncated back-propagation), so no sequence replay is needed.
3. **Supervised steps on the visited states**: from each simulated pose the policy must
   propose the ground-truth next pose (the SPEC losses of :mod:`.supervised`), i.e. learn to
   correct from where the physics actually put the body (DAgger).

Checkpoints (atomic) hold both networks, the optimiser, the iteration and the curves; a killed
run resumes from the last one with the same numbers (rollout seeds derive from seed and
iteration).
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..config import read_checkpoint, resolve_path
from ..errors import InputError
from ..egocentric.take import EgoDataError
from ..motion.clip import atomic_write_bytes
from .data import TakeTensors
from .model import _mlp, integrate
from .regulated import RegulatedLoop, RewardConfig, loop_env_config, take_objects
from .supervised import LossWeights, losses
from .torch_kinematics import TorchFK


@dataclass
class DynamicsConfig:
    data: str = "data/ego"
    out: str = "runs/dynamics"
    init: str = "runs/kinematic/checkpoint.pt"  # the supervised checkpoint to start from
    controller: str = "checkpoints/uhc/policy.pt"  # tracking controller ("" = training-free)
    # inverse-dynamics feed-forward in the loop (see regulated.py): false/"off", "static", true/"full"
    feedforward: bool | Literal["off", "static", "full"] = False
    anchor_on_simulation: bool = False  # the feed-forward's previous frame is the simulated pose (regulated.py)
    seed: int = 0
    iterations: int = 100
    steps_per_iteration: int = 4000  # transitions over all workers (SPEC: 10k)
    episode_length: int = 150  # frames per rollout episode (a random window of a take)
    workers: int = 0  # rollout processes (0: one per core)
    log_std: float = -3.2  # exploration noise of the 82-d action (SPEC)
    lr: float = 1.0e-5  # policy learning rate (SPEC)
    lr_value: float = 3.0e-4
    epochs: int = 2
    minibatch: int = 512
    clip: float = 0.2
    gamma: float = 0.95
    gae_lambda: float = 0.95
    ppo_weight: float = 1.0  # 0: supervised on visited states only
    supervised_weight: float = 1.0
    threads: int = 1  # learner torch threads
    checkpoint_every: int = 1
    weights: LossWeights = field(default_factory=LossWeights)
    reward: RewardConfig = field(default_factory=RewardConfig)


def load_train_takes(data: str, use_features: bool = True) -> tuple[list[TakeTensors], list[list]]:
    from ..egocentric.take import EgoDataset
    from .data import take_tensors

    ds = EgoDataset(data, split="train")
    takes, objects = [], []
    for t in ds:
        if t.qpos is None or t.num_frames < 3:
            continue
        takes.append(take_tensors(t, use_features))
        objects.append(take_objects(t.meta, t.object_world))
    return takes, objects


def load_controller(path: str | None, overrides=()):
    """(EnvConfig, controller callable or None) of a UHC checkpoint, or the training-free
    controller's defaults when ``path`` is empty; ``overrides``: ``key=value`` settings of its
    ``UHCConfig`` (e.g. ``env.controller.root_target_offset=0``)."""
    from ..simulation.evaluate import PolicyController, controller_config
    from ..simulation.policy import load_policy as load_uhc

    if path:
        path = str(resolve_path(path))  # checkpoints/uhc/policy.pt from any directory
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such controller checkpoint")
        env_cfg = controller_config(checkpoint=path, overrides=overrides).env
        if env_cfg.future_frames:
            raise InputError(f"{path}: this controller reads the reference {env_cfg.future_frames} frames ahead; "
                             "the estimation loop proposes the body one frame at a time (use a controller "
                             "trained without env.future_frames)")
        return env_cfg, PolicyController(load_uhc(path)[0])
    return controller_config(overrides=overrides).env, None


class DynamicsWorker:
    """Runs the regulated loop with its own copy of the policy (see the module docstring)."""

    def __init__(self, cfg: DynamicsConfig, policy_blob: dict, worker_id: int):
        from .estimate import policy_from_blob

        torch.set_num_threads(1)
        self.cfg, self.worker_id = cfg, worker_id
        self.takes, self.objects = load_train_takes(cfg.data, policy_blob["policy_config"]["feature_dim"] > 0)
        self.policy, _ = policy_from_blob(policy_blob)
        env_cfg, controller = load_controller(cfg.controller)
        self.loop = RegulatedLoop(self.policy, None, loop_env_config(env_cfg, cfg.feedforward), controller,
                                  cfg.reward)
        self.loop.anchor_on_simulation = cfg.anchor_on_simulation
        lengths = np.array([t.num_frames for t in self.takes], float)
        self.p = lengths / lengths.sum()

    def collect(self, state_dict: dict, seed: int, iteration: int, n_steps: int) -> dict:
        self.policy.load_state_dict(state_dict)
        rng = np.random.default_rng([seed, iteration, self.worker_id])
        std = float(np.exp(self.cfg.log_std))
        parts: dict[str, list] = {k: [] for k in ("states", "hiddens", "actions", "means", "rewards", "qpos",
                                                  "take", "frame", "last", "terminal")}
        episodes, n, t0 = [], 0, time.perf_counter()
        while n < n_steps:
            i = int(rng.choice(len(self.takes), p=self.p))
            take = self.takes[i]
            L = min(self.cfg.episode_length, take.num_frames, n_steps - n + 1)
            if L < 2:
                break
            start = int(rng.integers(0, take.num_frames - L + 1))
            ep = self.loop.run(take, self.objects[i], start=start, length=L, from_truth=True,
                               noise_std=std, rng=rng, record=True)
            m = len(ep.actions)
            for k in ("states", "hiddens", "actions", "means", "rewards"):
                parts[k].append(getattr(ep, k))
            parts["qpos"].append(ep.sim_qpos[:m].astype(np.float32))
            parts["take"].append(np.full(m, i))
            parts["frame"].append(start + np.arange(m))
            last = np.zeros(m, np.float32)
            last[-1] = 1.0
            parts["last"].append(last)
            terminal = np.zeros(m, np.float32)  # the transition into a fall ends that trajectory
            for f, _ in ep.falls:
                terminal[f - 1] = 1.0
            parts["terminal"].append(terminal)
            episodes.append({"frames": L, "falls": len(ep.falls), "reward": float(ep.rewards.mean()),
                             **ep.reward_terms})
            n += m
        out = {k: np.concatenate(v) for k, v in parts.items()}
        out["episodes"], out["time"] = episodes, time.perf_counter() - t0
        return out


class DynamicsTrainer:
    def __init__(self, cfg: DynamicsConfig, out: str | Path, ray_address: str | None = None,
                 inline: bool = False):
        from .estimate import _checked_policy

        self.cfg, self.out = cfg, Path(out)
        torch.set_num_threads(cfg.threads or 1)
        torch.manual_seed(cfg.seed)
        ckpt = self.out / "checkpoint.pt"
        init = ckpt if ckpt.exists() else resolve_path(cfg.init)
        if not init.is_file():
            raise FileNotFoundError(f"{init}: no supervised kinematic-policy checkpoint to start from "
                                    f"(train one with `kinpoly train kinematic`)")
        blob = read_checkpoint(init, "supervised kinematic-policy checkpoint")
        self.blob = blob
        self.policy, self.context = _checked_policy(blob, init)
        self.policy.train()
        self.fk = TorchFK()
        S = self.policy.state_dim
        self.critic = _mlp([S, 256, 256], 1)
        self.opt = torch.optim.Adam([{"params": self.policy.parameters(), "lr": cfg.lr},
                                     {"params": self.critic.parameters(), "lr": cfg.lr_value}])
        self.iteration, self.curves = 0, []
        if init == ckpt:
            self.critic.load_state_dict(blob["critic"])
            self.opt.load_state_dict(blob["optimizer"])
            self.iteration, self.curves = blob["iteration"], blob["curves"]
        self.takes, _ = load_train_takes(cfg.data, self.policy.cfg.feature_dim > 0)
        if not self.takes:
            raise EgoDataError(f"{cfg.data}: no training takes with ground truth")
        n_workers = cfg.workers or os.cpu_count() or 1
        args = [(cfg, self._policy_blob(), w) for w in range(n_workers)]
        from ..simulation.ppo import InlinePool, LocalPool, RayPool

        self.pool = (InlinePool(args, DynamicsWorker) if inline else
                     RayPool(args, ray_address, DynamicsWorker) if ray_address else LocalPool(args, DynamicsWorker))
        self.n_workers = n_workers

    def _policy_blob(self) -> dict:
        return {"policy": self.policy.state_dict(), "context": self.context.state_dict(),
                "policy_config": self.blob["policy_config"]}

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({**self._policy_blob(), "critic": self.critic.state_dict(), "optimizer": self.opt.state_dict(),
                    "iteration": self.iteration, "curves": self.curves, "stage": "dynamics-regulated"}, buf)
        atomic_write_bytes(self.out / "checkpoint.pt", buf.getvalue())
        tmp = self.out / "curves.csv.tmp"
        with open(tmp, "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=list(self.curves[0]))
            wr.writeheader()
            wr.writerows(self.curves)
        tmp.replace(self.out / "curves.csv")

    def _advantages(self, data: dict) -> tuple[np.ndarray, np.ndarray]:
        from ..simulation.ppo import gae

        with torch.no_grad():
            v = self.critic(self._norm(torch.as_tensor(data["states"]))).squeeze(-1).numpy()
        last, terminal = data["last"], data["terminal"]
        # windows end by truncation (bootstrap from the last state's own value); a fall ends
        # the trajectory (the humanoid is restarted after it)
        adv, ret = gae(data["rewards"][:, None].astype(np.float32), v[:, None], v[:, None],
                       terminal[:, None], np.maximum(last - terminal, 0)[:, None], self.cfg.gamma,
                       self.cfg.gae_lambda)
        return adv[:, 0], ret[:, 0]

    def _norm(self, s: torch.Tensor) -> torch.Tensor:
        return (s - self.policy.state_mean) / self.policy.state_std

    def _supervised_batch(self, take_idx: np.ndarray, frame: np.ndarray) -> tuple[torch.Tensor, dict]:
        """Ground truth of frames (t, t+1) per transition (B, 2, 76) and the loss inputs."""
        gt, off, objw = [], [], []
        for i, f in zip(take_idx, frame):
            t = self.takes[int(i)]
            gt.append(t.qpos[int(f):int(f) + 2])
            off.append(t.offsets)
            objw.append(t.obj_world[int(f):int(f) + 2])
        return torch.stack(gt), {"offsets": torch.stack(off), "obj_world": torch.stack(objw)}

    def update(self, data: dict) -> dict:
        cfg = self.cfg
        adv, ret = self._advantages(data)
        T = lambda k: torch.as_tensor(data[k])  # noqa: E731
        states, hiddens, actions, means_old, qpos = T("states"), T("hiddens"), T("actions"), T("means"), T("qpos")
        adv_t, ret_t = torch.as_tensor(adv), torch.as_tensor(ret)
        std = float(np.exp(cfg.log_std))
        logp_old = (-0.5 * ((actions - means_old) / std) ** 2).sum(-1)
        dt = 1.0 / self.takes[0].fps
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + self.iteration)
        n = states.shape[0]
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "supervised_loss": 0.0, "clip_frac": 0.0}
        count = 0
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, cfg.minibatch):
                idx = perm[s:s + cfg.minibatch]
                mean, _ = self.policy.step(states[idx], hiddens[idx])
                logp = (-0.5 * ((actions[idx] - mean) / std) ** 2).sum(-1)
                ratio = (logp - logp_old[idx]).clamp(max=20).exp()
                a = adv_t[idx]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pl = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                vl = 0.5 * ((self.critic(self._norm(states[idx])).squeeze(-1) - ret_t[idx]) ** 2).mean()
                gt, batch = self._supervised_batch(data["take"][idx.numpy()], data["frame"][idx.numpy()])
                # the visited pose then the proposal from it: the losses' velocity term needs both
                pred = torch.stack([qpos[idx], integrate(qpos[idx], mean, dt, self.policy.cfg)], dim=1)
                sl = losses(pred, gt, batch, self.fk, dt, cfg.weights)["total"]
                loss = cfg.ppo_weight * pl + vl + cfg.supervised_weight * sl
                self.opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(list(self.policy.parameters()) + list(self.critic.parameters()), 1.0)
                self.opt.step()
                stats["policy_loss"] += pl.item()
                stats["value_loss"] += vl.item()
                stats["supervised_loss"] += sl.item()
                stats["clip_frac"] += ((ratio - 1).abs() > cfg.clip).float().mean().item()
                count += 1
        return {k: v / max(count, 1) for k, v in stats.items()}

    def train(self, progress: bool = True, max_iterations: int | None = None) -> list[dict]:
        from tqdm import tqdm

        cfg = self.cfg
        end = cfg.iterations if max_iterations is None else min(cfg.iterations, self.iteration + max_iterations)
        bar = tqdm(total=end, initial=self.iteration, disable=not progress, desc="dynamics-regulated")
        wall0 = self.curves[-1]["wall_s"] if self.curves else 0.0
        t_start = time.perf_counter()
        per_worker = -(-cfg.steps_per_iteration // self.n_workers)
        try:
            while self.iteration < end:
                t0 = time.perf_counter()
                state = {k: v.detach().clone() for k, v in self.policy.state_dict().items()}
                segs = self.pool.collect(state, cfg.seed, self.iteration, per_worker)
                t_roll = time.perf_counter() - t0
                data = {k: np.concatenate([s[k] for s in segs]) for k in segs[0] if k not in ("episodes", "time")}
                eps = [e for s in segs for e in s["episodes"]]
                stats = self.update(data)
                self.iteration += 1
                n = len(data["rewards"])
                row = {"iteration": self.iteration, "samples": n, "reward": float(data["rewards"].mean()),
                       "no_fall_rate": float(np.mean([e["falls"] == 0 for e in eps])),
                       "falls_per_100_frames": 100.0 * sum(e["falls"] for e in eps) / max(1, sum(e["frames"] for e in eps)),
                       **{f"err_{k}": float(np.mean([e[k] for e in eps])) for k in
                          ("head_pos", "head_rot", "pos_kin", "rot_gt")},
                       "samples_per_s": n / t_roll, "wall_s": round(wall0 + time.perf_counter() - t_start, 2), **stats}
                self.curves.append(row)
                if self.iteration % cfg.checkpoint_every == 0 or self.iteration == end:
                    self.save()
                bar.update(1)
                bar.set_postfix(reward=f"{row['reward']:.3f}", no_fall=f"{row['no_fall_rate']:.2f}",
                                sup=f"{stats['supervised_loss']:.3f}", sps=f"{row['samples_per_s']:.0f}")
        finally:
            bar.close()
            self.pool.close()
        return self.curves
