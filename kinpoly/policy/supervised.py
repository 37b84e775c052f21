"""Supervised training of the kinematic policy (SPEC section 3) on egocentric takes.

Each iteration samples windows of ground-truth takes, starts from the true first pose and
unrolls the policy on its own predictions (so it learns to recover from its own drift), and
minimises the SPEC's weighted losses at every frame: root position (50), root rotation (50),
joint rotations (1), root velocity (1), end effectors relative to the root (10), and, when the
take has an object, hands/pelvis position relative to the object (1) and pelvis rotation
relative to the object (10). (With the object's pose given, as here, the last term equals the
root rotation loss restricted to frames with an object: the Frobenius distance is invariant to
the known object rotation. It becomes a separate signal only where object poses are themselves
estimated; it is kept so the weights match the SPEC.) The context encoder learns the first
pose from the first frames.

Checkpoints (atomic) hold the networks, the optimiser, the iteration, the random state and
the curves, so a killed run resumes exactly where it stopped.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..humanoid.skeleton import BODY_INDEX
from ..motion.augment import LEG_HINGES
from ..motion.clip import atomic_write_bytes
from .data import TakeTensors, sample_windows
from .model import (ContextEncoder, KinematicPolicy, Observation, PolicyConfig, integrate, policy_state,
                    without_image_features)
from .torch_kinematics import TorchFK, heading, quat_to_matrix, yaw_matrix

END_EFFECTORS = [BODY_INDEX[b] for b in ("L_Hand", "R_Hand", "L_Toe", "R_Toe", "Head")]
FEET = [BODY_INDEX[b] for b in ("L_Ankle", "R_Ankle", "L_Toe", "R_Toe")]
OBJECT_BODIES = [BODY_INDEX[b] for b in ("L_Hand", "R_Hand", "Pelvis")]


@dataclass
class LossWeights:
    root_pos: float = 50.0
    root_rot: float = 50.0
    pose: float = 1.0
    velocity: float = 1.0
    end_effector: float = 10.0
    object_pos: float = 1.0
    object_rot: float = 10.0
    context: float = 1.0
    # Beyond the SPEC: world-frame foot velocity (ankles and toes) against the truth. The SPEC
    # losses leave feet free to slide (end effectors are matched relative to the root), and
    # sliding proposals are what the controller cannot walk on. 0 = the SPEC's losses.
    foot_velocity: float = 0.0
    # Beyond the SPEC: world height of the ankles and toes against the truth. With the eyes
    # pinned by the head losses, a policy that regresses to a crouched average posture lifts
    # its feet (measured on the test takes, policy alone: median lowest foot 8-12 cm above the
    # floor on walks, 3 cm in the truth; 4.7 cm over all takes with weight 30, truth 5.3). It
    # makes the proposals' legs right; the loop's falls measured the same with and without it
    # (checkpoints/kinematic/README.md). 0 = the SPEC's losses.
    foot_height: float = 0.0
    # Beyond the SPEC: world-frame acceleration of every body against the truth's ((m/s^2)^2,
    # second differences over the unrolled window). The policy's frame-to-frame jitter is what a
    # tracking controller chases (its feet skate) and what makes its inverse-dynamics
    # feed-forward unusable on the proposals. 0 = the SPEC's losses.
    acceleration: float = 0.0
    # Beyond the SPEC: how far each leg hinge (hips, knees, ankles, toes) swings over the
    # unrolled window (its standard deviation over time) against the truth's. Phase-agnostic:
    # where the gait phase is uncertain the SPEC's losses are lowest for legs that swing less
    # (a regression to the mean), and a tracking controller falls on legs that swing 70% as far
    # as the truth's as often as on the policy's (benchmarks/no_feedback_legs.py). 0 = the SPEC's losses.
    leg_swing: float = 0.0


@dataclass
class SupervisedConfig:
    data: str = "data/ego"  # egocentric take folder (kinpoly ego build)
    out: str = "runs/kinematic"
    # weights to start from when ``out`` has no checkpoint yet: a supervised, dynamics-regulated
    # or exported (``kinpoly train export``) kinematic-policy checkpoint of the same architecture,
    # for a further stage with other settings; the optimiser and the curves start fresh ("": a
    # new policy)
    init: str = ""
    seed: int = 0
    iterations: int = 2000
    batch: int = 32
    window: int = 60
    lr: float = 1e-4
    grad_clip: float = 1.0
    use_image_features: bool = True
    checkpoint_every: int = 50
    threads: int = 0  # torch threads (0: torch's default)
    # std of the perturbation added to each unrolled pose before it is fed back (hinges and root
    # rotation in rad, root position x0.3 in m): teaches the policy to pull back towards the
    # truth from states it did not propose itself, like the simulated states of the
    # dynamics-regulated loop (0: off)
    state_noise: float = 0.0
    # windows played at speeds from 1/(1+W) to 1+W (kinpoly.policy.data.sample_windows): more
    # gait speeds and cadences than the takes have; without image features only (0: off)
    time_warp: float = 0.0
    # share of windows whose object input is "no object" (kinpoly.policy.data.sample_windows):
    # a recording may come without its objects, which no built take does (0: off)
    object_dropout: float = 0.0
    weights: LossWeights = field(default_factory=LossWeights)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


def observations(batch: dict, t: int) -> Observation:
    return Observation(head_pose=batch["head_pose"][:, t], head_vels=batch["head_vels"][:, t],
                       obj=batch["obj"][:, t], action=batch["action"],
                       feature=None if batch["feature"] is None else batch["feature"][:, t])


def perturb(q: torch.Tensor, std: float) -> torch.Tensor:
    """``q`` with Gaussian noise on the root position (0.3 std, m), root quaternion and hinges."""
    noise = torch.randn_like(q) * std
    noise[:, :3] *= 0.3
    p = q + noise
    return torch.cat([p[:, :3], p[:, 3:7] / p[:, 3:7].norm(dim=-1, keepdim=True), p[:, 7:]], dim=-1)


def rollout(policy: KinematicPolicy, fk: TorchFK, batch: dict, q0: torch.Tensor, dt: float,
            state_noise: float = 0.0) -> torch.Tensor:
    """Unroll the policy from ``q0`` over the batch's observations: (B, L, 76), frame 0 = q0.
    With ``state_noise`` each pose is perturbed (:func:`perturb`) before the next step reads it."""
    q, h = q0, policy.initial_hidden(q0.shape[0])
    out = [q]
    for t in range(batch["head_pose"].shape[1] - 1):
        fed = perturb(q, state_noise) if state_noise > 0 else q
        state = policy_state(fed, observations(batch, t + 1), fk, batch["offsets"], batch["eye"])
        action, h = policy.step(state, h)
        q = integrate(fed, action, dt, policy.cfg)
        out.append(q)
    return torch.stack(out, dim=1)


def losses(pred: torch.Tensor, gt: torch.Tensor, batch: dict, fk: TorchFK, dt: float,
           w: LossWeights) -> dict[str, torch.Tensor]:
    """The SPEC's supervised losses of a predicted sequence (B, L, 76) against the truth."""
    offsets = batch["offsets"].unsqueeze(1)
    p_pos, p_rot = fk(pred, offsets)
    g_pos, g_rot = fk(gt, offsets)
    out = {
        "root_pos": ((pred[..., :3] - gt[..., :3]) ** 2).sum(-1).mean(),
        "root_rot": ((p_rot[..., 0, :, :] - g_rot[..., 0, :, :]) ** 2).sum((-1, -2)).mean(),
        "pose": ((fk.local_rotations(pred)[..., 1:, :, :] - fk.local_rotations(gt)[..., 1:, :, :]) ** 2)
        .sum((-1, -2)).mean(),
        "velocity": (((pred[:, 1:, :3] - pred[:, :-1, :3]) - (gt[:, 1:, :3] - gt[:, :-1, :3])) / dt)
        .pow(2).sum(-1).mean(),
    }
    Ryaw_p = yaw_matrix(heading(p_rot[..., 0, :, :])).transpose(-1, -2)
    Ryaw_g = yaw_matrix(heading(g_rot[..., 0, :, :])).transpose(-1, -2)
    ee_p = (Ryaw_p.unsqueeze(-3) @ (p_pos[..., END_EFFECTORS, :] - p_pos[..., :1, :]).unsqueeze(-1)).squeeze(-1)
    ee_g = (Ryaw_g.unsqueeze(-3) @ (g_pos[..., END_EFFECTORS, :] - g_pos[..., :1, :]).unsqueeze(-1)).squeeze(-1)
    out["end_effector"] = ((ee_p - ee_g) ** 2).sum(-1).mean()
    v_p, v_g = (p_pos[:, 1:, FEET] - p_pos[:, :-1, FEET]) / dt, (g_pos[:, 1:, FEET] - g_pos[:, :-1, FEET]) / dt
    out["foot_velocity"] = ((v_p - v_g) ** 2).sum(-1).mean()
    out["foot_height"] = ((p_pos[..., FEET, 2] - g_pos[..., FEET, 2]) ** 2).mean()
    if pred.shape[1] > 2:
        acc = lambda x: (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]) / dt ** 2  # noqa: E731
        out["acceleration"] = ((acc(p_pos) - acc(g_pos)) ** 2).sum(-1).mean()
    else:
        out["acceleration"] = torch.zeros(())
    if pred.shape[1] > 2:  # a swing needs frames (the dynamics stage scores pairs)
        swing = lambda x: (x[..., LEG_HINGES].var(1) + 1e-6).sqrt()  # noqa: E731  (B, 24) rad
        out["leg_swing"] = ((swing(pred) - swing(gt)) ** 2).sum(-1).mean()
    else:
        out["leg_swing"] = torch.zeros(())
    has_obj = batch["obj_world"][..., 7]  # (B, L)
    if has_obj.any():
        obj_pos = batch["obj_world"][..., :3].unsqueeze(-2)
        d_p = p_pos[..., OBJECT_BODIES, :] - obj_pos
        d_g = g_pos[..., OBJECT_BODIES, :] - obj_pos
        mask = has_obj.unsqueeze(-1)
        out["object_pos"] = (((d_p - d_g) ** 2).sum(-1) * mask).sum() / (mask.sum() * len(OBJECT_BODIES))
        R_obj = quat_to_matrix(batch["obj_world"][..., 3:7]).transpose(-1, -2)
        rel_p, rel_g = R_obj @ p_rot[..., 0, :, :], R_obj @ g_rot[..., 0, :, :]
        out["object_rot"] = (((rel_p - rel_g) ** 2).sum((-1, -2)) * has_obj).sum() / has_obj.sum()
    else:
        out["object_pos"] = out["object_rot"] = torch.zeros(())
    out["total"] = sum(getattr(w, k) * v for k, v in out.items())
    return out


def context_loss(pred_q0: torch.Tensor, gt_q0: torch.Tensor, batch: dict, fk: TorchFK) -> torch.Tensor:
    offsets = batch["offsets"]
    p_pos, p_rot = fk(pred_q0, offsets)
    g_pos, g_rot = fk(gt_q0, offsets)
    return (((p_pos - g_pos) ** 2).sum(-1).mean() * 10.0 + ((p_rot - g_rot) ** 2).sum((-1, -2)).mean())


def normalise_states(policy: KinematicPolicy, takes: list[TakeTensors], fk: TorchFK, rng) -> None:
    """Set the policy's input normalisation from ground-truth states of the training takes."""
    batch = sample_windows(takes, min(64, 8 * len(takes)), 2, rng)
    with torch.no_grad():
        s = policy_state(batch["qpos"][:, 0], observations(batch, 1), fk, batch["offsets"], batch["eye"])
    policy.state_mean.copy_(s.mean(0))
    policy.state_std.copy_(s.std(0).clamp_min(1e-2))


class SupervisedTrainer:
    """Train (or resume) a kinematic policy + context encoder into ``out``."""

    def __init__(self, cfg: SupervisedConfig, takes: list[TakeTensors], out: str | Path):
        self.cfg, self.takes, self.out = cfg, takes, Path(out)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        feats = [t.feature for t in takes]
        use = cfg.use_image_features and all(f is not None for f in feats)
        pcfg = cfg.policy
        pcfg.feature_dim = int(feats[0].shape[1]) if use else 0
        if not use:
            for t in takes:
                t.feature = None
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.fk = TorchFK()
        self.policy = KinematicPolicy(pcfg)
        self.context = ContextEncoder(pcfg)
        params = list(self.policy.parameters()) + list(self.context.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.lr)
        self.iteration, self.curves = 0, []
        self.dt = 1.0 / takes[0].fps
        if (self.out / "checkpoint.pt").exists():
            self._load(self.out / "checkpoint.pt")
        elif cfg.init:
            self._load_weights(Path(cfg.init))
        else:
            normalise_states(self.policy, takes, self.fk, self.rng)

    def _state(self) -> dict:
        return {"policy": self.policy.state_dict(), "context": self.context.state_dict(),
                "optimizer": self.opt.state_dict(), "iteration": self.iteration,
                "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "curves": self.curves, "policy_config": self.cfg.policy.__dict__ | {"mlp": list(self.cfg.policy.mlp)}}

    def _load_weights(self, path: Path) -> None:
        """Policy and context-encoder weights (and input normalisation) of another checkpoint."""
        from .estimate import load_policy  # here: estimate imports this module (rollout)

        policy, context = load_policy(path)
        if policy.cfg.feature_dim and not self.cfg.policy.feature_dim:  # a head-trajectory-only policy
            policy, context = without_image_features(policy, context)
        theirs, ours = policy.cfg, self.cfg.policy
        differ = [k for k in ("feature_dim", "hidden", "mlp", "context_frames", "joint_step", "height_step")
                  if getattr(theirs, k) != getattr(ours, k)]
        if differ:
            raise InputError(f"{path}: its policy differs from the config in "
                             + ", ".join(f"{k} ({getattr(theirs, k)} vs {getattr(ours, k)})" for k in differ))
        self.policy.load_state_dict(policy.state_dict())
        self.context.load_state_dict(context.state_dict())

    def _load(self, path: Path) -> None:
        from ..config import read_checkpoint

        ck = read_checkpoint(path, "supervised training checkpoint")
        needs = {"policy", "context", "optimizer", "iteration", "rng", "torch_rng", "policy_config"}
        if not needs <= set(ck):
            raise InputError(f"{path}: not a supervised training checkpoint (kinpoly train kinematic writes one)")
        theirs, ours = ck["policy_config"], self.cfg.policy
        differ = [k for k in ("feature_dim", "hidden", "mlp", "context_frames") if k in theirs
                  and theirs[k] != getattr(ours, k)]
        if differ:
            raise InputError(f"{path}: its policy differs from the config in "
                             + ", ".join(f"{k} ({theirs[k]} vs {getattr(ours, k)})" for k in differ)
                             + ": resume with the same settings, or train into another --out")
        self.policy.load_state_dict(ck["policy"])
        self.context.load_state_dict(ck["context"])
        self.opt.load_state_dict(ck["optimizer"])
        self.iteration, self.curves = ck["iteration"], ck["curves"]
        self.rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])

    def save(self) -> Path:
        buf = io.BytesIO()
        torch.save(self._state(), buf)
        path = self.out / "checkpoint.pt"
        atomic_write_bytes(path, buf.getvalue())
        with open(self.out / "curves.csv.tmp", "w", newline="") as f:
            if self.curves:
                keys = list(dict.fromkeys(k for row in self.curves for k in row))  # a resumed run may log more
                wr = csv.DictWriter(f, fieldnames=keys)
                wr.writeheader()
                wr.writerows(self.curves)
        Path(self.out / "curves.csv.tmp").replace(self.out / "curves.csv")
        return path

    def train_iteration(self) -> dict:
        cfg = self.cfg
        batch = sample_windows(self.takes, cfg.batch, cfg.window, self.rng, cfg.time_warp, cfg.object_dropout)
        gt = batch["qpos"]
        pred = rollout(self.policy, self.fk, batch, gt[:, 0], self.dt, cfg.state_noise)
        terms = losses(pred[:, 1:], gt[:, 1:], {**batch, "obj_world": batch["obj_world"][:, 1:]},
                       self.fk, self.dt, cfg.weights)
        k = min(cfg.policy.context_frames, cfg.window)
        q0 = self.context.read(batch["head_pose"][:, :k], batch["head_vels"][:, :k], batch["obj"][:, :k],
                               batch["action"], None if batch["feature"] is None else batch["feature"][:, :k])
        terms["context"] = context_loss(q0, gt[:, 0], batch, self.fk)
        total = terms["total"] + cfg.weights.context * terms["context"]
        self.opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(list(self.policy.parameters()) + list(self.context.parameters()),
                                       cfg.grad_clip)
        self.opt.step()
        self.iteration += 1
        row = {"iteration": self.iteration, **{k: float(v.detach()) for k, v in terms.items()}}
        self.curves.append(row)
        return row

    def train(self, progress: bool = True) -> list[dict]:
        from tqdm import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=self.cfg.iterations, initial=self.iteration, disable=not progress, desc="kinematic")
        t0, start = time.perf_counter(), self.iteration
        while self.iteration < self.cfg.iterations:
            row = self.train_iteration()
            bar.update(1)
            frames = self.cfg.batch * self.cfg.window * (self.iteration - start)
            bar.set_postfix(loss=f"{row['total']:.3f}", root=f"{row['root_pos']:.4f}",
                            frames_per_s=f"{frames / (time.perf_counter() - t0):.0f}")
            if self.iteration % self.cfg.checkpoint_every == 0 or self.iteration == self.cfg.iterations:
                self.save()
        bar.close()
        return self.curves
