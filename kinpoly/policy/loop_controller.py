"""Training the tracking controller inside the dynamics-regulated loop.

The controller (:mod:`kinpoly.simulation`) is trained on mocap, but in the loop
(:mod:`.regulated`) it tracks the kinematic policy's frame-by-frame proposals, which are
noisier than mocap and not physically consistent, and which follow the simulated body. This
trains it where it is used: the same PPO (:func:`kinpoly.simulation.ppo.train`), observation,
action and reward (:mod:`kinpoly.simulation.env`, the reference being the proposals), but
every episode is the loop on a random window of a training take:

- the episode starts on the take's true pose; every control step the controller acts, the
  humanoid is simulated to the next frame, and the (fixed, deterministic) kinematic policy
  proposes the next target and a look-ahead from the simulated pose, exactly as
  :meth:`.regulated.RegulatedLoop.run` does (batched over the worker's environments, so the
  policy costs one network call per step for all of them);
- it ends as a failure where the loop would record a fall: the body more than
  ``fall_distance`` from the proposal, a blow-up, or the simulated eyes more than
  ``head_fall_distance`` from the observed camera (``lost_head``);
- the reward blends tracking the proposals with tracking the take's ground truth (the same
  terms against the true pose, weight ``truth_weight``): in the loop a controller that lets an
  unobserved limb drift is followed by the proposals (they start from the simulated pose), so
  the proposals alone do not penalise it. Measured: with the proposals alone (0) the loop
  fell 25% less often but the arms and feet of standing gestures drifted (MPJPE 145 -> 160 mm).

    kinpoly train loop-controller --config configs/uhc_loop.yaml --init checkpoints/uhc_loop/policy.pt

``feedback=false`` trains for the estimator's other mode (``kinpoly estimate --no-feedback``)
instead: the reference of an episode is the kinematic policy's own motion over the take,
smoothed over ``smoothing`` frames, and the body starts on it, as the estimate does; the reward
still blends in the ground truth, whose legs step where the policy's slide.

The result is an ordinary controller checkpoint (``kinpoly uhc export``) for
``kinpoly estimate --controller``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..egocentric.take import EgoDataError
from ..simulation.env import EnvConfig, compose_action, observe, reward, reward_terms
from ..simulation.policy import ActorCritic
from ..motion.clip import MotionClip
from ..simulation.ppo import RolloutWorker, UHCConfig, train
from ..simulation.reference import prepare_reference
from .dynamics import load_train_takes
from .estimate import NO_FEEDBACK_SMOOTHING
from .model import Observation, integrate, policy_state
from .regulated import RegulatedLoop, motion_targets, pose_on_motion


@dataclass
class LoopControllerConfig(UHCConfig):
    """:class:`~kinpoly.simulation.ppo.UHCConfig` plus where the loop's episodes come from."""

    data: str = "data/ego"  # egocentric dataset; episodes are windows of its training takes
    kinematic: str = "checkpoints/kinematic/policy.pt"  # the (fixed) kinematic policy
    head_fall_distance: float = 0.4  # m, as the loop's lost_head
    truth_weight: float = 0.5  # share of the reward that tracks the ground truth instead of the proposals
    # False: the estimator's no-feedback mode (`kinpoly estimate --no-feedback`): the reference
    # is the kinematic policy's own motion, smoothed over ``smoothing`` frames, not proposals
    # from the simulated pose; the body starts on that motion, as the estimate does.
    feedback: bool = True
    smoothing: float = NO_FEEDBACK_SMOOTHING


class LoopTrackingEnvs:
    """``n`` copies of the loop stepped together (the :class:`~kinpoly.simulation.ppo.EnvList`
    interface): per environment a :class:`RegulatedLoop` with its own simulator; the
    proposals of all of them come from one batched call of the shared kinematic policy.
    ``own_motion`` (take -> (T, 76) poses): no feedback, each environment tracks that motion
    of its take instead of proposals, as ``RegulatedLoop.run(motion=...)`` does."""

    def __init__(self, takes, objects, policy, env_cfg: EnvConfig, n: int, head_fall_distance: float,
                 truth_weight: float = 0.0, own_motion=None):
        if env_cfg.future_frames:
            raise EgoDataError(f"env.future_frames {env_cfg.future_frames}: the loop proposes the reference one "
                               "frame at a time, so a controller trained in it cannot read frames further ahead")
        fps = {float(t.fps) for t in takes}
        if len(fps) != 1:
            raise EgoDataError(f"the loop's takes must share one frame rate, got {sorted(fps)}")
        self.dt = 1.0 / fps.pop()
        self.takes, self.objects, self.policy, self.cfg = takes, objects, policy, env_cfg
        self.hfd, self.truth_weight = head_fall_distance, truth_weight
        # no feedback: take index -> the policy's own (smoothed) motion, made on first use
        self.own_motion, self._motions = own_motion, {}
        self.truth: list = [None] * n  # per environment: the window's ground truth as a Reference
        self.loops = [RegulatedLoop(policy, None, env_cfg) for _ in range(n)]
        self.fk = self.loops[0].fk
        self._lengths = np.array([t.num_frames for t in takes], dtype=np.float64)
        self.set_clip_weights(None)
        self.take_idx = np.zeros(n, int)
        self.start = np.zeros(n, int)
        self.length = np.zeros(n, int)
        self.steps = np.zeros(n, int)
        self.hidden = policy.initial_hidden(n)

    def __len__(self) -> int:
        return len(self.loops)

    def set_clip_weights(self, weights: np.ndarray | None) -> None:
        p = self._lengths if weights is None else self._lengths * np.asarray(weights, np.float64)
        self._p = p / p.sum()

    def reset(self, i: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        k = int(rng.choice(len(self.takes), p=self._p))
        take, loop = self.takes[k], self.loops[i]
        L = min(self.cfg.max_episode_steps + 1, take.num_frames)
        start = int(rng.integers(0, take.num_frames - L + 1))
        if self.own_motion is not None:  # the policy's own motion, as `kinpoly estimate --no-feedback`
            if k not in self._motions:
                self._motions[k] = torch.as_tensor(self.own_motion(take), dtype=torch.float32)
            motion = self._motions[k]
            ref, _ = loop.load_window(take, self.objects[k], start, L, pose_on_motion(motion, start, take.body))
            ref.write(1, torch.cat(motion_targets(motion, start, 0, L)).double().numpy())
            h = self.policy.initial_hidden(1)
        else:
            q0 = loop.first_pose(take, start, from_truth=True)
            ref, _ = loop.load_window(take, self.objects[k], start, L, q0)
            with torch.no_grad():
                q1, q2, h, _ = loop.propose(take, start, 0, L, q0, self.policy.initial_hidden(1), None)
            ref.write(1, torch.cat([q1, q2]).double().numpy())
        loop.sim.reset(0)
        if self.truth_weight:
            self.truth[i] = prepare_reference(MotionClip(name=take.name, fps=take.fps, body=take.body,
                                                         qpos=take.qpos[start:start + L].double().numpy()), "off")
        self.take_idx[i], self.start[i], self.length[i], self.steps[i] = k, start, L, 0
        self.hidden[i] = h[0]
        return observe(loop.sim)

    def _batch_obs(self, idx: list[int], offset: int) -> Observation:
        """Observations of environments ``idx`` at window frame ``sim.t + offset`` (clamped):
        each loop's own (:meth:`RegulatedLoop._obs`), stacked."""
        obs = []
        for i in idx:
            take = self.takes[self.take_idx[i]]
            obs.append(self.loops[i]._obs(take, min(self.start[i] + self.loops[i].sim.t + offset, take.num_frames - 1)))
        cat = lambda k: torch.cat([getattr(o, k) for o in obs])  # noqa: E731
        return Observation(cat("head_pose"), cat("head_vels"), cat("obj"), cat("action"),
                           feature=None if obs[0].feature is None else cat("feature"))

    @torch.no_grad()
    def _propose(self, idx: list[int]) -> None:
        """From the simulated poses of environments ``idx``: the committed proposal for the
        next frame and the look-ahead after it, written into their references."""
        takes = [self.takes[self.take_idx[i]] for i in idx]
        offsets = torch.stack([t.offsets for t in takes])
        eye = torch.stack([t.eye for t in takes])
        q = torch.as_tensor(np.stack([self.loops[i].sim.qpos for i in idx]), dtype=torch.float32)
        h = self.hidden[idx]
        cfg = self.policy.cfg
        mean, h_next = self.policy.step(policy_state(q, self._batch_obs(idx, 1), self.fk, offsets, eye), h)
        q1 = integrate(q, mean, self.dt, cfg)
        mean2, _ = self.policy.step(policy_state(q1, self._batch_obs(idx, 2), self.fk, offsets, eye), h_next)
        q2 = integrate(q1, mean2, self.dt, cfg)
        self.hidden[idx] = h_next
        for j, i in enumerate(idx):
            t = self.loops[i].sim.t
            frames = [q1[j], q2[j]] if t + 2 < self.length[i] else [q1[j]]
            self.loops[i].sim.ref.write(t + 1, torch.stack(frames).double().numpy())

    def _write_own_motion(self, idx: list[int]) -> None:
        """Without feedback: the next two frames of each environment's take motion, written
        as :meth:`RegulatedLoop.run` writes them (so the feed-forward sees the same frames)."""
        for i in idx:
            t = self.loops[i].sim.t
            targets = motion_targets(self._motions[self.take_idx[i]], self.start[i], t, self.length[i])
            self.loops[i].sim.ref.write(t + 1, torch.cat(targets).double().numpy())

    def step(self, actions: np.ndarray) -> list[tuple]:
        out, going = [], []
        for i, (loop, a) in enumerate(zip(self.loops, actions)):
            sim = loop.sim
            reason = sim.step(*compose_action(sim, a, self.cfg))
            take = self.takes[self.take_idx[i]]
            if reason is None and loop.head_distance(take, self.start[i] + sim.t) > self.hfd:
                reason = "lost_head"
            self.steps[i] += 1
            r = 0.0
            if reason != "unstable":
                r = reward(reward_terms(sim, self.cfg.residual_scale), self.cfg.reward)
                if self.truth_weight:
                    r_gt = reward(reward_terms(sim, self.cfg.residual_scale, self.truth[i]), self.cfg.reward)
                    r = (1.0 - self.truth_weight) * r + self.truth_weight * r_gt
                r = float(r)
            term = reason is not None
            trunc = not term and (sim.t + 1 >= self.length[i] or self.steps[i] >= self.cfg.max_episode_steps)
            if not (term or trunc):
                going.append(i)
            out.append([None, r, term, trunc, {"reason": reason, "wrench": float(np.linalg.norm(sim.last_wrench)),
                                               "steps": int(self.steps[i]), "clip": int(self.take_idx[i]),
                                               "completed": bool(trunc)}])
        if going and self.own_motion is None:
            self._propose(going)
        elif going:
            self._write_own_motion(going)
        for i, row in enumerate(out):
            row[0] = observe(self.loops[i].sim)
        return [tuple(r) for r in out]


class LoopRolloutWorker(RolloutWorker):
    """A rollout worker for :func:`kinpoly.simulation.ppo.train` whose environments are the
    loop (:class:`LoopTrackingEnvs`); ``collect`` is the controller worker's."""

    def __init__(self, data: str, names: list[str], kinematic: str, env_cfg: EnvConfig, n_envs: int,
                 hidden: list[int], log_std: float, head_fall_distance: float, truth_weight: float,
                 worker_id: int, feedback: bool = True, smoothing: float = NO_FEEDBACK_SMOOTHING):
        from .estimate import load_policy, policy_motion

        torch.set_num_threads(1)
        policy, context = load_policy(kinematic)
        policy.eval()
        own_motion = None if feedback else functools.partial(policy_motion, policy, context, smoothing=smoothing)
        takes, objects = load_train_takes(data, policy.cfg.feature_dim > 0)
        by_name = {t.name: (t, o) for t, o in zip(takes, objects)}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise EgoDataError(f"{data}: training takes without ground truth: {missing[:5]}")
        self.envs = LoopTrackingEnvs([by_name[n][0] for n in names], [by_name[n][1] for n in names], policy,
                                     env_cfg, n_envs, head_fall_distance, truth_weight, own_motion)
        self.model = ActorCritic(hidden, log_std)
        self.model.eval()
        self.worker_id = worker_id


def train_loop_controller(cfg: LoopControllerConfig, out_dir: str | os.PathLike, **kwargs) -> list[dict]:
    """Train (or resume) a controller in the loop in ``out_dir`` (keyword arguments as
    :func:`kinpoly.simulation.ppo.train`: ``init``, ``inline``, ``ray_address``, ...)."""
    from pathlib import Path

    from ..config import resolve_path

    cfg.kinematic = str(resolve_path(cfg.kinematic))  # checkpoints/kinematic/policy.pt from any directory
    if not Path(cfg.kinematic).is_file():
        raise FileNotFoundError(f"{cfg.kinematic}: no such kinematic-policy checkpoint")
    names = [t.name for t in load_train_takes(cfg.data, use_features=False)[0]]
    if not names:
        raise EgoDataError(f"{cfg.data}: no training takes with ground truth")
    p = cfg.ppo
    args = lambda w: (cfg.data, names, cfg.kinematic, cfg.env, p.envs_per_worker, p.hidden, p.log_std,  # noqa: E731
                      cfg.head_fall_distance, cfg.truth_weight, w, cfg.feedback, cfg.smoothing)
    return train(cfg, cfg.data, out_dir, rollouts=(LoopRolloutWorker, names, args), **kwargs)
