"""The learned controller: a small Gaussian MLP policy and value function over the tracking
observation, with a running observation normaliser.

The policy is a residual on the training-free controller (see :mod:`kinpoly.simulation.env`):
its last layer starts at zero, so before any training its mean action is 0 and it *is* the
training-free controller; PPO then only has to learn corrections (a warm start without
behaviour cloning). The log-std is fixed (SPEC: -2.3), as in the original.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .env import ACT_DIM, OBS_DIM


class RunningNorm(nn.Module):
    """Observation mean/std from all samples seen (updated only between rollouts)."""

    def __init__(self, dim: int, clip: float = 10.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.clip = clip

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.double()
        b_mean, b_var, b_n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, tot = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / tot
        self.var = (self.var * self.count + b_var * b_n + delta ** 2 * self.count * b_n / tot) / tot
        self.count = tot

    @torch.no_grad()
    def set_dims(self, x: torch.Tensor, dims: slice) -> None:
        """Set the statistics of ``dims`` from the samples ``x`` alone (inputs just added to a
        trained normaliser, whose sample count would keep them at their defaults)."""
        x = x.double()[:, dims]
        self.mean[dims] = x.mean(0)
        self.var[dims] = x.var(0, unbiased=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean.float()) / torch.sqrt(self.var.float() + 1e-8)
        return z.clamp(-self.clip, self.clip)


def _mlp(sizes: list[int], zero_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        nn.init.orthogonal_(lin.weight, 0.01 if last else np.sqrt(2))
        nn.init.zeros_(lin.bias)
        if last and zero_last:
            nn.init.zeros_(lin.weight)
        layers.append(lin)
        if not last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    def __init__(self, hidden: list[int] | tuple[int, ...] = (256, 256), log_std: float = -2.3,
                 obs_dim: int = OBS_DIM, act_dim: int = ACT_DIM):
        super().__init__()
        self.norm = RunningNorm(obs_dim)
        self.actor = _mlp([obs_dim, *hidden, act_dim], zero_last=True)
        self.critic = _mlp([obs_dim, *hidden, 1])
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std)), requires_grad=False)

    @property
    def obs_dim(self) -> int:
        return self.norm.mean.shape[0]

    @property
    def hidden(self) -> list[int]:
        return [m.out_features for m in self.actor if isinstance(m, nn.Linear)][:-1]

    @torch.no_grad()
    def widened(self, obs_dim: int) -> "ActorCritic":
        """A copy that reads ``obs_dim`` inputs, this model's first and more after them: the new
        inputs' weights are zero, so it computes exactly what this one does until training
        teaches it to use them."""
        out = ActorCritic(self.hidden, float(self.log_std[0]), obs_dim, self.log_std.shape[0])
        n = self.obs_dim
        for key, value in self.state_dict().items():
            target = out.state_dict()[key]
            if key in ("actor.0.weight", "critic.0.weight"):
                target.zero_()
                target[:, :n] = value
            elif key.startswith("norm.") and key != "norm.count":
                target[:n] = value
            else:
                target.copy_(value)
        return out

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.norm(obs)
        return self.actor(z), self.critic(z).squeeze(-1)

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        std = self.log_std.exp()
        return (-0.5 * ((action - mean) / std) ** 2 - self.log_std - 0.5 * np.log(2 * np.pi)).sum(-1)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic (mean) action for a (N, obs) or (obs,) array."""
        mean, _ = self(torch.as_tensor(obs, dtype=torch.float32))
        return mean.numpy()


def save_policy(model: ActorCritic, path, extra: dict | None = None) -> None:
    """Weights + architecture (float32), small enough to ship."""
    from ..motion.clip import atomic_write_bytes
    import io

    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hidden": model.hidden,
                "extra": extra or {}}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_policy(path) -> tuple[ActorCritic, dict]:
    from ..config import read_checkpoint
    from ..errors import InputError

    blob = read_checkpoint(path, "controller checkpoint")
    try:
        if "policy" in blob:  # a full training checkpoint
            blob = {"state_dict": blob["policy"], "hidden": blob["hidden"], "extra": blob.get("extra", {})}
        model = ActorCritic(hidden=blob["hidden"], obs_dim=blob["state_dict"]["norm.mean"].shape[0])
        model.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError) as e:
        raise InputError(f"{path}: not a controller checkpoint ({type(e).__name__}: {e})") from None
    model.eval()
    return model, blob.get("extra", {})
